//! One login from code to verdict: poll the provider, validate what it returns, bind the
//! identity to the user logging in, apply the gates, store the user.
//!
//! Success needs every step: a token whose signature, issuer, audience and times check out,
//! userinfo about the same subject (when used), claims that map to exactly the name being
//! logged in (or to the local account linked to that identity), and every access gate passed.

use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::LoginFailure;
use serde_json::Value;

use super::login::{Login, failed};
use crate::config::{ClaimSource, Config};
use crate::identity::mapping::{self, Refusal};
use crate::identity::names;
use crate::oidc::device::{self, DeviceAuthorization, Poll};
use crate::oidc::id_token::{self, Expect, Invalid};
use crate::oidc::provider::Discovered;
use crate::oidc::{OidcError, Provider, userinfo};
use crate::state::State;
use crate::store::{NewIds, Source};

/// Transport failures tolerated in a row while polling before the login fails.
const MAX_POLL_FAILURES: u32 = 3;
/// RFC 8628 §3.5: `slow_down` adds five seconds.
const SLOW_DOWN: Duration = Duration::from_secs(5);

/// Refuses, before anything is asked of the provider, a user name that no approval could ever
/// make valid: not a safe name, root, reserved, or a local account that is not linked.
pub fn precheck_user(state: &State, user: &str) -> Result<(), String> {
    let cfg = state.config();
    if user == "root" {
        return Err("root cannot log in through oidcd".into());
    }
    if !names::is_valid_name(user, !cfg.mapping.lowercase_names) {
        return Err(format!("{user:?} is not a name oidcd can serve"));
    }
    let local = state.local()?;
    if local.users.contains_key(user) {
        let linked = state
            .with_store(|s| s.link_of(user))
            .map_err(|e| e.to_string())?
            .is_some();
        if !linked && !cfg.access.link_by_email {
            return Err(format!(
                "{user} is a local account that is not linked to an identity (see oidcctl link)"
            ));
        }
        return Ok(());
    }
    if names::is_reserved_name(user) && !cfg.mapping.allow_names.iter().any(|n| n == user) {
        return Err(format!("{user} is a reserved name"));
    }
    Ok(())
}

/// Polls until the login ends, then records the outcome on `login`.
pub fn run(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    login: &Login,
    authz: &DeviceAuthorization,
) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_loop(state, provider, d, login, authz)
    }));
    let resp = match outcome {
        Ok(Some(resp)) => resp,
        Ok(None) => {
            log::info!("login {} cancelled; stopped polling", login.describe());
            return;
        }
        Err(_) => {
            log::error!(
                "login {}: internal error (panic), refused",
                login.describe()
            );
            failed(LoginFailure::Internal, "internal error")
        }
    };
    login.finish(resp);
}

fn poll_loop(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    login: &Login,
    authz: &DeviceAuthorization,
) -> Option<Response> {
    let cfg = state.config();
    let mut interval = authz.interval.unwrap_or(cfg.login.default_poll_interval);
    let mut failures = 0;
    loop {
        let left = login.deadline.saturating_duration_since(Instant::now());
        if login.sleep_unless_cancelled(interval.min(left)) {
            return None;
        }
        if Instant::now() >= login.deadline {
            log::warn!(
                "login {}: not approved within {}s",
                login.describe(),
                login.deadline.duration_since(login.started).as_secs()
            );
            return Some(failed(
                LoginFailure::Expired,
                "the code was not approved in time",
            ));
        }
        match device::poll(provider, d, &authz.device_code) {
            Ok(Poll::Pending) => failures = 0,
            Ok(Poll::SlowDown) => {
                interval += SLOW_DOWN;
                log::info!(
                    "login {}: provider asked to slow down; polling every {}s",
                    login.describe(),
                    interval.as_secs()
                );
            }
            Ok(Poll::Denied) => {
                log::warn!("login {}: denied at the provider", login.describe());
                return Some(failed(
                    LoginFailure::Denied,
                    "the login was denied at the identity provider",
                ));
            }
            Ok(Poll::Expired) => {
                log::warn!("login {}: the code expired", login.describe());
                return Some(failed(
                    LoginFailure::Expired,
                    "the code expired before it was approved",
                ));
            }
            Ok(Poll::Approved(tokens)) => {
                if login.is_cancelled() {
                    return None;
                }
                let approved_at = Instant::now();
                let resp = complete(
                    state,
                    provider,
                    d,
                    login,
                    &tokens.id_token,
                    &tokens.access_token,
                );
                log::debug!(
                    "login {}: verdict {} ms after the tokens arrived",
                    login.describe(),
                    approved_at.elapsed().as_millis()
                );
                return Some(resp);
            }
            Err(e @ OidcError::Unreachable(_)) if failures + 1 < MAX_POLL_FAILURES => {
                failures += 1;
                log::warn!("login {}: poll failed ({e}); retrying", login.describe());
            }
            Err(e) => {
                log::error!("login {}: {e}", login.describe());
                return Some(failed(
                    e.failure(),
                    &format!("the identity provider failed: {e}"),
                ));
            }
        }
    }
}

/// Validates the tokens and decides.
fn complete(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    login: &Login,
    id_token: &str,
    access_token: &str,
) -> Response {
    let cfg = state.config();
    let validated = match validate(state, provider, d, id_token, &cfg) {
        Ok(v) => v,
        Err(e) => {
            log::error!("login {}: {e}", login.describe());
            return failed(
                LoginFailure::InvalidToken,
                "the identity provider's answer failed validation",
            );
        }
    };
    let userinfo = if cfg.claims.source == ClaimSource::IdToken {
        None
    } else {
        match userinfo::fetch(provider, d, access_token, &validated.sub) {
            Ok(u) => Some(u),
            Err(e) => {
                log::error!("login {}: userinfo: {e}", login.describe());
                return failed(
                    e.failure(),
                    &format!("could not read the user's claims: {e}"),
                );
            }
        }
    };
    let claims = userinfo::merge(cfg.claims.source, &validated.claims, userinfo.as_ref());
    decide(state, login, &claims, &validated.sub)
}

fn validate(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    token: &str,
    cfg: &Config,
) -> Result<id_token::Validated, OidcError> {
    let skew = i64::try_from(cfg.login.clock_skew.as_secs()).unwrap_or(60);
    let expect = Expect {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        allowed_algs: &cfg.login.allowed_algs,
        now: state.clock.now(),
        skew,
    };
    match id_token::validate(token, &d.keys, &expect) {
        Ok(v) => Ok(v),
        Err(Invalid::UnknownKey { kid, message }) => {
            log::info!("{message}: asking the provider for its current keys");
            let fresh = provider.refresh_keys(kid.as_deref())?;
            Ok(id_token::validate(token, &fresh.keys, &expect)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Binds the approved identity to the user logging in and applies the gates.
pub fn decide(state: &State, login: &Login, claims: &Value, sub: &str) -> Response {
    let cfg = state.config();
    let issuer = cfg.provider.as_ref().map_or("", |p| p.issuer.as_str());
    let user = login.user.as_str();
    let provisional_uid = state.provisional_uid(user);
    let local = match state.local() {
        Ok(l) => l,
        Err(e) => {
            log::error!("login {}: {e}", login.describe());
            return failed(LoginFailure::Internal, "cannot read the host's accounts");
        }
    };

    if local.users.contains_key(user) {
        // An existing local account: only through its link.
        drop(local);
        return decide_linked(state, login, &cfg, claims, sub, issuer);
    }

    let mapped = match mapping::map_claims(claims, &cfg, &local) {
        Ok(m) => m,
        Err(r) => {
            let (reason, msg) = refusal(&r);
            log::warn!("login {} refused (sub {sub:?}): {r}", login.describe());
            return failed(reason, &msg);
        }
    };
    if mapped.name != user {
        log::warn!(
            "login {} refused: the identity that approved it (sub {sub:?}) is {}, not {user}",
            login.describe(),
            mapped.name
        );
        return failed(
            LoginFailure::WrongUser,
            &format!(
                "{} approved this login, not {user}: sign in at the provider as {user}",
                mapped.name
            ),
        );
    }
    for note in &mapped.notes {
        log::info!("login {}: {note}", login.describe());
    }
    let ctx = NewIds {
        issuer,
        cfg: &cfg,
        local: &local,
        now: state.clock.now(),
    };
    let applied = state.with_store(|s| {
        let a = s.apply_user_with_uid(&ctx, &mapped, claims, Source::Login, provisional_uid)?;
        s.touch_login(&a.name, ctx.now)?;
        Ok(a)
    });
    drop(local);
    state.invalidate();
    match applied {
        Ok(a) => {
            state.forget_provisional(user);
            let groups: Vec<&str> = mapped.groups.iter().map(|g| g.name.as_str()).collect();
            log::info!(
                "login {} approved: sub {sub:?}, uid {}{}, groups [{}]{}{}",
                login.describe(),
                a.uid,
                if a.created { " (new user)" } else { "" },
                groups.join(", "),
                if mapped.is_admin {
                    format!(", admin ({})", cfg.access.admin_local_groups.join(", "))
                } else {
                    String::new()
                },
                a.renamed_from
                    .map(|old| format!(", renamed from {old}"))
                    .unwrap_or_default()
            );
            Response::LoginApproved {
                user: user.to_string(),
            }
        }
        Err(why) => {
            log::error!("login {} refused: {why}", login.describe());
            failed(LoginFailure::NameRefused, &why)
        }
    }
}

fn decide_linked(
    state: &State,
    login: &Login,
    cfg: &Config,
    claims: &Value,
    sub: &str,
    issuer: &str,
) -> Response {
    let user = login.user.as_str();
    let link = state.with_store(|s| s.link_of(user));
    let linked = match link {
        Ok(Some(l)) => l.issuer == issuer && l.sub == sub,
        Ok(None) => false,
        Err(e) => {
            log::error!("login {}: {e}", login.describe());
            return failed(LoginFailure::Internal, "the identity cache is unavailable");
        }
    };
    let by_email = cfg.access.link_by_email && email_links(cfg, claims, user);
    if !linked && !by_email {
        log::warn!(
            "login {} refused: local account not linked to sub {sub:?}",
            login.describe()
        );
        return failed(
            LoginFailure::WrongUser,
            &format!(
                "the identity that approved this login is not linked to the local account {user}"
            ),
        );
    }
    // The access gates apply to linked accounts too.
    let gate = mapping::check_access(claims, cfg);
    if let Err(r) = gate {
        let (reason, msg) = refusal(&r);
        log::warn!(
            "login {} (linked local account) refused: {r}",
            login.describe()
        );
        return failed(reason, &msg);
    }
    let _ = state.with_store(|s| s.touch_link(user, state.clock.now()));
    log::info!(
        "login {} approved: local account linked to sub {sub:?}{}",
        login.describe(),
        if linked { "" } else { " (by verified email)" }
    );
    Response::LoginApproved {
        user: user.to_string(),
    }
}

/// `access.link_by_email`: the provider verified `user@domain` with `domain` in
/// `access.allowed_email_domains`.
fn email_links(cfg: &Config, claims: &Value, user: &str) -> bool {
    let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        || claims.get("email_verified").and_then(Value::as_str) == Some("true");
    let email = cfg
        .claims
        .email
        .find(claims)
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((local_part, domain)) = email.rsplit_once('@') else {
        return false;
    };
    verified
        && local_part == user
        && cfg
            .access
            .allowed_email_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
}

fn refusal(r: &Refusal) -> (LoginFailure, String) {
    let reason = match r {
        Refusal::NotInAllowedGroups | Refusal::EmailDomain { .. } | Refusal::EmailNotVerified => {
            LoginFailure::NotAllowed
        }
        Refusal::InvalidName { .. } | Refusal::LocalCollision { .. } => LoginFailure::NameRefused,
        Refusal::BadClaim { .. } => LoginFailure::InvalidToken,
        Refusal::LocalFilesUnreadable(_) => LoginFailure::Internal,
    };
    (reason, format!("login refused: {r}"))
}
