//! `[offline]` (opt-in): a local PIN for logging in while the identity provider cannot be
//! reached.
//!
//! - Set only right after a successful online login, in the same PAM conversation: the
//!   approval carries an invitation ([`Offline::invite`]) tied to that login's id, single use,
//!   valid [`TICKET_TTL`]; users who already have a PIN are not invited again.
//! - Stored only as an Argon2id hash with a random salt (RustCrypto's `argon2`, its default
//!   parameters: 19 MiB, 2 passes), never logged, never sent anywhere.
//! - Accepted only while the provider cannot be reached, which the daemon checks itself at each
//!   try (a fresh request to the discovery document; the module's word is not taken), so the PIN
//!   is never a way around the provider while it is up; only within `offline.max_days` of the
//!   last online login; never for a revoked user (revocation also deletes the PIN).
//! - Rate-limited: one try at a time per user, a one-second pause after a wrong PIN, and after
//!   `offline.max_failures` wrong ones in a row the PIN is refused for `offline.lockout`.
//!
//! The account phase still runs after an offline login, with its `refresh.entry_ttl`.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use oidc_proto::Response;
use oidc_proto::secret::Secret;
use oidc_proto::types::{ErrorCode, LoginFailure};

use crate::lifecycle::account::{date, span};
use crate::state::{State, lock};

/// How long after an approval its invitation to set a PIN stays good.
pub const TICKET_TTL: Duration = Duration::from_secs(120);
/// Pause after a wrong PIN.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// Longest PIN accepted (Argon2 takes any length; this bounds the work a request can ask for).
const MAX_PIN_LEN: usize = 256;

/// Invitations and tries in progress.
#[derive(Default)]
pub struct Offline {
    tickets: Mutex<HashMap<String, (String, Instant)>>,
    trying: Mutex<HashSet<String>>,
}

impl Offline {
    /// After the online login `login_id` of `user` was approved: the minimum PIN length when
    /// the user may now set an offline PIN (offline logins on, the user stored, no PIN yet).
    pub fn invite(&self, state: &State, login_id: &str, user: &str) -> Option<u32> {
        let cfg = state.config();
        if !cfg.offline.enable {
            return None;
        }
        let stored =
            state.with_store(|s| Ok((s.user_by_name(user)?.is_some(), s.offline_pin(user)?)));
        if !matches!(stored, Ok((true, None))) {
            return None;
        }
        let mut tickets = lock(&self.tickets);
        tickets.retain(|_, (_, at)| at.elapsed() < TICKET_TTL);
        tickets.insert(login_id.to_string(), (user.to_string(), Instant::now()));
        Some(cfg.offline.min_length)
    }
}

/// `OfflineSetPin`: stores the PIN's hash for the user whose online login `login_id` was just
/// approved with an invitation.
pub fn set_pin(state: &State, login_id: &str, pin: &Secret) -> Response {
    let cfg = state.config();
    let ticket = lock(&state.offline.tickets).remove(login_id);
    let Some((user, at)) = ticket.filter(|(_, at)| at.elapsed() < TICKET_TTL) else {
        return Response::error(
            ErrorCode::Rejected,
            "no invitation to set an offline PIN for this login (it expired, or was used)",
        );
    };
    let len = pin.expose().chars().count();
    if len < cfg.offline.min_length as usize || pin.expose().len() > MAX_PIN_LEN {
        // The invitation stays for another try within its time.
        lock(&state.offline.tickets).insert(login_id.to_string(), (user, at));
        return Response::error(
            ErrorCode::Rejected,
            format!(
                "the PIN must have {} to {MAX_PIN_LEN} characters",
                cfg.offline.min_length
            ),
        );
    }
    let hashed = match hash(pin.expose()) {
        Ok(h) => h,
        Err(e) => {
            log::error!("offline PIN of {user}: {e}");
            return Response::error(ErrorCode::Internal, "the PIN could not be stored");
        }
    };
    let now = state.clock.now();
    match state.with_store(|s| s.set_offline_pin(&user, &hashed, now)) {
        Ok(true) => {
            log::info!("offline PIN set for {user} after an online login");
            Response::Done {
                message: format!(
                    "Offline PIN set: it logs you in to this host only while the identity \
                     provider cannot be reached, for {} days after your last online login.",
                    cfg.offline.max_days
                ),
            }
        }
        Ok(false) => Response::NotFound,
        Err(reason) => Response::Unavailable { reason },
    }
}

/// The answer to `LoginStart`, `resp`, turned into [`Response::OfflineAvailable`] when the
/// provider could not be used and `user` may try an offline PIN.
pub fn offer(state: &State, user: &str, resp: Response) -> Response {
    let unusable = matches!(
        resp,
        Response::LoginFailed {
            reason: LoginFailure::ProviderUnavailable,
            ..
        }
    );
    if !unusable || !state.config().offline.enable {
        return resp;
    }
    let now = state.clock.now();
    match eligible(state, user, now) {
        Ok(()) => {
            log::info!("login {user}: the provider cannot be used; offering the offline PIN");
            Response::OfflineAvailable {
                user: user.to_string(),
            }
        }
        Err(_) => resp,
    }
}

/// `OfflineLogin`.
pub fn login(state: &State, user: &str, service: &str, pin: &Secret) -> Response {
    let refused = |message: String| {
        log::warn!("offline login {user} (service {service}) refused: {message}");
        Response::LoginFailed {
            reason: LoginFailure::Denied,
            message,
        }
    };
    if !state.config().offline.enable {
        return refused("offline logins are not enabled on this host".into());
    }
    if !lock(&state.offline.trying).insert(user.to_string()) {
        return refused(format!("another offline login of {user} is in progress"));
    }
    let resp = try_pin(state, user, pin, &refused);
    lock(&state.offline.trying).remove(user);
    resp
}

fn try_pin(
    state: &State,
    user: &str,
    pin: &Secret,
    refused: &dyn Fn(String) -> Response,
) -> Response {
    let cfg = state.config();
    let now = state.clock.now();
    if let Err(why) = eligible(state, user, now) {
        return refused(why);
    }
    match provider_reachable(state, user) {
        Ok(false) => {}
        Ok(true) => {
            return refused(
                "the identity provider is reachable: log in with the device code, not the \
                 offline PIN"
                    .into(),
            );
        }
        Err(why) => return refused(why),
    }
    let stored = match state.with_store(|s| s.offline_pin(user)) {
        Ok(Some(p)) => p,
        Ok(None) => return refused(format!("no offline PIN is set for {user}")),
        Err(reason) => return Response::Unavailable { reason },
    };
    if pin.expose().len() <= MAX_PIN_LEN && verify(pin.expose(), stored.hash.expose()) {
        let _ = state.with_store(|s| s.offline_success(user));
        log::warn!(
            "offline login {user} approved with the offline PIN: the identity provider cannot \
             be reached"
        );
        return Response::LoginApproved {
            user: user.to_string(),
            offline_pin: None,
        };
    }
    let lock_until = now.saturating_add(i64::try_from(cfg.offline.lockout.as_secs()).unwrap_or(0));
    let failures = state
        .with_store(|s| s.offline_failure(user, cfg.offline.max_failures, lock_until))
        .unwrap_or(u32::MAX);
    crate::clock::sleep(FAILURE_DELAY);
    let left = cfg.offline.max_failures.saturating_sub(failures);
    refused(if left == 0 {
        format!(
            "wrong PIN; the offline PIN is refused for {} (too many wrong tries)",
            span(lock_until - now)
        )
    } else {
        format!("wrong PIN ({left} left before a lockout)")
    })
}

/// Whether `user` may try an offline PIN at `now` (short of the provider check): stored, not
/// revoked, a PIN set and not locked, an online login within `offline.max_days`.
fn eligible(state: &State, user: &str, now: i64) -> Result<(), String> {
    let cfg = state.config();
    let found = state.with_store(|s| Ok((s.user_record(user)?, s.offline_pin(user)?)));
    let (record, pin) = match found {
        Ok((Some(r), p)) => (r, p),
        Ok((None, _)) => return Err(format!("{user} is not a user of this host")),
        Err(why) => return Err(why),
    };
    if let Some(at) = record.lifecycle.as_ref().and_then(|l| l.revoked_at) {
        return Err(format!("access of {user} was revoked on {}", date(at)));
    }
    let Some(pin) = pin else {
        return Err(format!("no offline PIN is set for {user}"));
    };
    if let Some(until) = pin.locked_until.filter(|u| *u > now) {
        return Err(format!(
            "the offline PIN is refused for another {} after too many wrong tries",
            span(until - now)
        ));
    }
    let max = i64::from(cfg.offline.max_days) * 86_400;
    match record.last_login_at {
        Some(at) if now.saturating_sub(at) < max => Ok(()),
        _ => Err(format!(
            "the last online login of {user} is more than offline.max_days ({}) ago: the \
             offline PIN works again after a login through the identity provider",
            cfg.offline.max_days
        )),
    }
}

/// Asks the provider's discovery document afresh (never the cache): `false` only when it
/// cannot be reached (no connection, a timeout, a 5xx answer).
fn provider_reachable(state: &State, user: &str) -> Result<bool, String> {
    let p = crate::auth::route::provider_for(state, user).map_err(|u| u.message)?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        p.config.issuer.trim_end_matches('/')
    );
    match p.http.get(&url).send() {
        Ok(r) => Ok(!r.status().is_server_error()),
        Err(_) => Ok(false),
    }
}

/// An Argon2id PHC string for `pin`, with a 16-byte salt from /dev/urandom.
fn hash(pin: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `pin` matches the PHC string `stored` (constant-time comparison inside `argon2`).
fn verify(pin: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(pin.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash is Argon2id, salted (two hashes of one PIN differ), verifies only its PIN, and
    /// does not contain the PIN.
    #[test]
    fn argon2id_salted_hashes() {
        let a = hash("493817").unwrap();
        let b = hash("493817").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(!a.contains("493817"));
        assert!(verify("493817", &a));
        assert!(!verify("493818", &a));
        assert!(!verify("493817", "not a hash"));
    }
}
