//! Resuming a first SSH login without a second approval.
//!
//! Under `login.ssh_first_uid = "fleet"`, a user's first SSH connection to a host is refused
//! after the approval, because sshd already holds the name-hashed provisional UID and would run
//! the session as that ([`super::flow`]). The approval itself was good: the account now exists
//! with the UID every host gives it. So the refusal shows a short code, and the next connection
//! of the same user, through the same service and from the same remote host, may give that code
//! instead of approving a new device code.
//!
//! What keeps this as strong as the approval it stands for:
//! - the code was shown only to whoever held the approved connection; it is 8 letters from 20
//!   (34 bits), works once, for [`RESUME_FOR`], and is forgotten after [`MAX_TRIES`] wrong tries
//!   (then a device-flow login is the way in: nobody is locked out);
//! - a connection from another remote host or service is not even asked for it, so a stranger
//!   elsewhere cannot use the tries up;
//! - the account must still be the identity that approved, with the same UID, and pass the
//!   account phase's checks (revocation, access gates, age) at that moment;
//! - codes live in memory only: a restarted daemon asks for a new approval.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::secret::Secret;
use oidc_proto::types::LoginFailure;

use super::login::{Login, failed, failure_name};
use crate::audit::{self, Event};
use crate::state::{State, lock};

/// How long a code works.
pub const RESUME_FOR: Duration = Duration::from_secs(10 * 60);
/// Wrong codes before it is forgotten.
pub const MAX_TRIES: u8 = 3;
/// Codes held at once; the oldest goes first (each stands for an approved login, so strangers
/// cannot fill this).
const MAX_TICKETS: usize = 1024;
/// Pause after a wrong code.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// The letters a code is made of: consonants only (RFC 8628 §6.1: no words, no look-alikes
/// such as 0/O and 1/I).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const CODE_LEN: usize = 8;

/// Codes waiting, by user.
#[derive(Default)]
pub struct Tickets {
    map: Mutex<HashMap<String, Ticket>>,
}

struct Ticket {
    code: [u8; CODE_LEN],
    issuer: String,
    sub: String,
    uid: u32,
    service: String,
    rhost: Option<String>,
    until: Instant,
    tries_left: u8,
}

impl Ticket {
    fn matches(&self, service: &str, rhost: Option<&str>, now: Instant) -> bool {
        self.service == service && self.rhost.as_deref() == rhost && now < self.until
    }
}

impl Tickets {
    /// Codes waiting (for `oidcctl status`).
    pub fn count(&self) -> usize {
        lock(&self.map).len()
    }

    fn insert(&self, user: &str, ticket: Ticket, now: Instant) {
        let mut map = lock(&self.map);
        map.retain(|_, t| now < t.until);
        if map.len() >= MAX_TICKETS && !map.contains_key(user) {
            let oldest = map
                .iter()
                .min_by_key(|(_, t)| t.until)
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                map.remove(&u);
            }
        }
        map.insert(user.to_string(), ticket);
    }
}

/// After `login` was refused only because it held another UID: keeps a code for its next
/// connection, and returns it as shown to the user (`BCDF-GHJK`). `None` when no random bytes
/// could be read (the user then approves a new code).
pub fn issue(state: &State, login: &Login, issuer: &str, sub: &str, uid: u32) -> Option<String> {
    let code = match random_code() {
        Ok(c) => c,
        Err(e) => {
            log::error!("cannot read /dev/urandom for a resume code: {e}");
            return None;
        }
    };
    let now = Instant::now();
    state.resume.insert(
        &login.user,
        Ticket {
            code,
            issuer: issuer.to_string(),
            sub: sub.to_string(),
            uid,
            service: login.service.clone(),
            rhost: login.rhost.clone(),
            until: now + RESUME_FOR,
            tries_left: MAX_TRIES,
        },
        now,
    );
    Some(display(&code))
}

/// At `LoginStart`: [`Response::ResumeAvailable`] when a code waits for `user` from this
/// service and remote host, and the program running the login resolved the user to the UID the
/// code was issued for.
pub fn offer(
    state: &State,
    user: &str,
    service: &str,
    rhost: Option<&str>,
    resolved_uid: Option<u32>,
) -> Option<Response> {
    let now = Instant::now();
    let map = lock(&state.resume.map);
    let t = map.get(user)?;
    if !t.matches(service, rhost, now) || resolved_uid != Some(t.uid) {
        return None;
    }
    log::info!("login {user} (service {service}): asking for the code its last connection showed");
    Some(Response::ResumeAvailable {
        user: user.to_string(),
    })
}

/// `LoginResume`.
pub fn resume(
    state: &State,
    user: &str,
    service: &str,
    rhost: Option<&str>,
    code: &Secret,
) -> Response {
    let refused = |reason: LoginFailure, outcome: &str, message: &str| {
        log::warn!("login {user} (service {service}) with a resume code refused: {message}");
        audit::record(Event::LoginRefused, outcome)
            .field("user", user)
            .field("service", service)
            .opt("rhost", rhost)
            .field("reason", failure_name(reason))
            .field("message", message)
            .emit();
        failed(reason, message)
    };
    let now = Instant::now();
    let typed = normalize(code.expose());
    let ticket = {
        let mut map = lock(&state.resume.map);
        let entry = match map.entry(user.to_string()) {
            Entry::Occupied(e) if e.get().matches(service, rhost, now) => e,
            _ => {
                return refused(
                    LoginFailure::Expired,
                    "refused",
                    "no code from an earlier connection is waiting here (it was used, expired \
                     or the daemon restarted): connect again and approve the new code",
                );
            }
        };
        if typed.is_empty() {
            entry.remove();
            log::info!("login {user} (service {service}): resume code given up");
            return Response::Done {
                message: "the code from the last connection is given up".into(),
            };
        }
        if !same_code(&typed, &entry.get().code) {
            let mut entry = entry;
            let t = entry.get_mut();
            t.tries_left = t.tries_left.saturating_sub(1);
            let left = t.tries_left;
            if left == 0 {
                entry.remove();
            }
            drop(map);
            crate::clock::sleep(FAILURE_DELAY);
            let message = if left == 0 {
                "that is not the code the last connection showed; it is now withdrawn: connect \
                 again and approve the new code"
                    .to_string()
            } else {
                format!(
                    "that is not the code the last connection showed ({left} {} left)",
                    if left == 1 { "try" } else { "tries" }
                )
            };
            return refused(LoginFailure::Denied, "wrong_code", &message);
        }
        entry.remove()
    };
    // The account must still be the identity that approved, with the UID sshd holds, and pass
    // the account phase now.
    let stored = match state.with_store(|s| s.user_record(user)) {
        Ok(s) => s,
        Err(reason) => return Response::Unavailable { reason },
    };
    let Some(stored) = stored
        .filter(|s| s.issuer == ticket.issuer && s.sub == ticket.sub && s.unix.uid == ticket.uid)
    else {
        return refused(
            LoginFailure::Expired,
            "refused",
            &format!("{user}'s account changed since the last connection: approve a new code"),
        );
    };
    if let Err(why) = super::account::refusal(state, &state.config(), user, &stored) {
        return refused(LoginFailure::NotAllowed, "refused", &why);
    }
    log::info!(
        "login {user} (service {service}{}) approved with the code its last connection showed: \
         sub {:?}, uid {}",
        rhost.map(|r| format!(", from {r}")).unwrap_or_default(),
        ticket.sub,
        ticket.uid
    );
    audit::record(Event::LoginApproved, "resumed")
        .field("user", user)
        .field("service", service)
        .opt("rhost", rhost)
        .field("issuer", ticket.issuer.as_str())
        .field("sub", ticket.sub.as_str())
        .number("uid", u64::from(ticket.uid))
        .emit();
    Response::LoginApproved {
        user: user.to_string(),
        offline_pin: None,
    }
}

fn random_code() -> std::io::Result<[u8; CODE_LEN]> {
    let mut code = [0u8; CODE_LEN];
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut n = 0;
    let mut byte = [0u8; 1];
    while n < CODE_LEN {
        urandom.read_exact(&mut byte)?;
        // 240 = 12 × 20: rejecting the rest keeps every letter equally likely.
        if byte[0] < 240 {
            code[n] = ALPHABET[usize::from(byte[0] % 20)];
            n += 1;
        }
    }
    Ok(code)
}

/// `BCDF-GHJK`.
fn display(code: &[u8; CODE_LEN]) -> String {
    let s = String::from_utf8_lossy(code);
    format!("{}-{}", &s[..4], &s[4..])
}

/// What the user typed, without dashes and spaces, in capitals.
fn normalize(typed: &str) -> Vec<u8> {
    typed
        .bytes()
        .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

/// Compares without stopping at the first difference.
fn same_code(typed: &[u8], code: &[u8; CODE_LEN]) -> bool {
    typed.len() == CODE_LEN
        && typed
            .iter()
            .zip(code)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_show_with_a_dash() {
        let a = random_code().unwrap();
        let b = random_code().unwrap();
        assert!(a.iter().all(|c| ALPHABET.contains(c)));
        assert_ne!(a, b, "two codes in a row were equal");
        let shown = display(&a);
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
    }

    #[test]
    fn typed_codes_are_compared_without_dashes_spaces_or_case() {
        let code = *b"BCDFGHJK";
        assert!(same_code(&normalize("bcdf-ghjk"), &code));
        assert!(same_code(&normalize(" BCDF GHJK "), &code));
        assert!(!same_code(&normalize("BCDF-GHJL"), &code));
        assert!(!same_code(&normalize("BCDF-GHJ"), &code));
        assert!(!same_code(&normalize("BCDF-GHJKK"), &code));
        assert!(!same_code(&normalize(""), &code));
    }

    fn ticket(service: &str, rhost: Option<&str>, until: Instant) -> Ticket {
        Ticket {
            code: *b"BCDFGHJK",
            issuer: "https://idp".into(),
            sub: "s".into(),
            uid: 5000,
            service: service.into(),
            rhost: rhost.map(str::to_string),
            until,
            tries_left: MAX_TRIES,
        }
    }

    /// A code is offered only to the same service and remote host, before it expires.
    #[test]
    fn a_code_belongs_to_its_service_remote_host_and_time() {
        let now = Instant::now();
        let t = ticket("sshd", Some("10.0.0.1"), now + RESUME_FOR);
        assert!(t.matches("sshd", Some("10.0.0.1"), now));
        assert!(!t.matches("sshd", Some("10.0.0.2"), now));
        assert!(!t.matches("sshd", None, now));
        assert!(!t.matches("login", Some("10.0.0.1"), now));
        assert!(!t.matches("sshd", Some("10.0.0.1"), now + RESUME_FOR));
    }

    /// The table keeps one code per user, drops expired ones and, when full, the oldest.
    #[test]
    fn the_table_is_bounded() {
        let tickets = Tickets::default();
        let now = Instant::now();
        for i in 0..MAX_TICKETS + 10 {
            let until = now + RESUME_FOR + Duration::from_secs(i as u64);
            tickets.insert(&format!("u{i}"), ticket("sshd", None, until), now);
        }
        assert_eq!(tickets.count(), MAX_TICKETS);
        assert!(!lock(&tickets.map).contains_key("u0"));
        assert!(lock(&tickets.map).contains_key(&format!("u{}", MAX_TICKETS + 9)));
        tickets.insert("late", ticket("sshd", None, now), now + RESUME_FOR * 3);
        assert_eq!(tickets.count(), 1, "expired codes were kept");
    }
}
