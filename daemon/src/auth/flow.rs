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

use super::login::{Login, failed, failure_name};
use super::resume;
use crate::audit::Event;
use crate::config::{ClaimSource, Config, ProviderConfig, SshFirstUid, UidSource};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::{self, Refusal};
use crate::identity::{names, other_sources};
use crate::oidc::device::{self, DeviceAuthorization, Poll};
use crate::oidc::id_token::{self, Expect, Invalid};
use crate::oidc::provider::Discovered;
use crate::oidc::{OidcError, Provider, userinfo};
use crate::state::{State, StoreFailure};
use crate::store::{NewIds, Source, StoreError};

/// Transport failures tolerated in a row while polling before the login fails.
const MAX_POLL_FAILURES: u32 = 3;
/// RFC 8628 §3.5: `slow_down` adds five seconds.
const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The poll interval never grows past this, however often the provider says `slow_down`.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Why [`precheck_user`] says no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrecheckRefusal {
    /// No approval could make this name valid here (root, not a safe name, reserved, a local
    /// account that is not linked): the PAM module stays quiet and the next module decides.
    NotOurs(String),
    /// The host cannot tell now (the identity cache or the account files are unreadable): the
    /// login is "unavailable"; the reason is for the log.
    Unavailable(String),
}

/// Refuses, before anything is asked of the provider, a user name that no approval could ever
/// make valid: not a safe name, root, reserved, or a local account that is not linked. `cfg` is
/// the configuration as the login's provider sees it.
pub fn precheck_user(state: &State, cfg: &Config, user: &str) -> Result<(), PrecheckRefusal> {
    let not_ours = |why: String| Err(PrecheckRefusal::NotOurs(why));
    if user == "root" {
        return not_ours("root cannot log in through oidcd".into());
    }
    if !names::is_valid_name(user, !cfg.mapping.lowercase_names) {
        return not_ours(format!("{user:?} is not a name oidcd can serve"));
    }
    let local_uid = state
        .local()
        .map_err(PrecheckRefusal::Unavailable)?
        .users
        .get(user)
        .copied();
    if let Some(uid) = local_uid {
        let linked = state
            .store(|s| s.link_of(user))
            .map_err(|e| PrecheckRefusal::Unavailable(e.to_string()))?
            .is_some();
        if linked {
            return Ok(());
        }
        if cfg.access.link_by_email {
            return match email_linkable(cfg, user, uid) {
                Ok(()) => Ok(()),
                Err(why) => not_ours(format!(
                    "{user} is a local account that is not linked to an identity, and \
                     access.link_by_email does not reach it: {why}"
                )),
            };
        }
        return not_ours(format!(
            "{user} is a local account that is not linked to an identity (see oidcctl link)"
        ));
    }
    if names::is_reserved_name(user) && !cfg.mapping.allow_names.iter().any(|n| n == user) {
        return not_ours(format!("{user} is a reserved name"));
    }
    Ok(())
}

/// `access.link_by_email` reaches only ordinary people's accounts: a UID in the range
/// `useradd` gives people (`UID_MIN`..`UID_MAX` of /etc/login.defs, 1000..60000 by default),
/// never a reserved ID, and a name that is neither reserved nor a well-known service or
/// cloud-image account (`backup`, `git`, `ubuntu`...): whoever gets `git@example.com`
/// verified at the provider must not become the host's `git`.
pub fn email_linkable(cfg: &Config, user: &str, uid: u32) -> Result<(), String> {
    if cfg.mapping.allow_names.iter().any(|n| n == user) {
        return Ok(());
    }
    if names::is_reserved_name(user) || names::is_service_account_name(user) {
        return Err(format!(
            "{user} is a system, service or cloud-image account (list it in \
             mapping.allow_names, or link it explicitly with oidcctl link)"
        ));
    }
    let (lo, hi) = crate::identity::local::people_uid_range();
    if !(lo..=hi).contains(&uid) || crate::config::is_reserved_id(uid) {
        return Err(format!(
            "its UID {uid} is outside the range of people's accounts ({lo}-{hi}, UID_MIN and \
             UID_MAX in /etc/login.defs)"
        ));
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
    let (resp, sub) = match outcome {
        Ok(Some(verdict)) => verdict,
        Ok(None) => {
            log::info!("login {} cancelled; stopped polling", login.describe());
            return;
        }
        Err(_) => {
            log::error!(
                "login {}: internal error (panic), refused",
                login.describe()
            );
            (failed(LoginFailure::Internal, "internal error"), None)
        }
    };
    if let Response::LoginFailed { reason, message } = &resp {
        let issuer = provider.config.issuer.as_str();
        let mut event = login
            .audit(Event::LoginRefused, "refused")
            .field("issuer", issuer)
            .field("reason", failure_name(*reason))
            .field("message", message.as_str());
        if let Some(sub) = &sub {
            event = event.field("sub", sub.as_str());
        }
        event.emit();
    }
    login.finish(resp);
}

/// A verdict, with the subject when the token was valid.
type Verdict = (Response, Option<String>);

fn poll_loop(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    login: &Login,
    authz: &DeviceAuthorization,
) -> Option<Verdict> {
    let cfg = state.config();
    let mut interval = authz.interval.unwrap_or(cfg.login.default_poll_interval);
    let mut failures = 0;
    loop {
        let left = login.deadline().saturating_duration_since(Instant::now());
        if login.sleep_unless_cancelled(interval.min(left)) {
            return None;
        }
        if Instant::now() >= login.deadline() {
            log::warn!(
                "login {}: not approved within {}s",
                login.describe(),
                login.deadline().duration_since(login.started).as_secs()
            );
            return Some((
                failed(LoginFailure::Expired, "the code was not approved in time"),
                None,
            ));
        }
        match device::poll(provider, d, &authz.device_code) {
            Ok(Poll::Pending) => failures = 0,
            Ok(Poll::SlowDown) => {
                interval = (interval + SLOW_DOWN).min(MAX_INTERVAL);
                log::info!(
                    "login {}: provider asked to slow down; polling every {}s",
                    login.describe(),
                    interval.as_secs()
                );
            }
            Ok(Poll::Denied(why)) => {
                let why = why.map(|d| format!(" ({d})")).unwrap_or_default();
                log::warn!("login {}: denied at the provider{why}", login.describe());
                return Some((
                    failed(
                        LoginFailure::Denied,
                        &format!("the login was denied at the identity provider{why}"),
                    ),
                    None,
                ));
            }
            Ok(Poll::Expired) => {
                log::warn!("login {}: the code expired", login.describe());
                return Some((
                    failed(
                        LoginFailure::Expired,
                        "the code expired before it was approved",
                    ),
                    None,
                ));
            }
            Ok(Poll::Approved(tokens)) => {
                if !login.begin_decide() {
                    return None;
                }
                let approved_at = Instant::now();
                let verdict = complete(
                    state,
                    provider,
                    d,
                    login,
                    &tokens.id_token,
                    &tokens.access_token,
                );
                let (resp, extra) = verdict;
                let resp = crate::lifecycle::after_login(state, &login.id, resp, &tokens);
                let verdict = (resp, extra);
                log::debug!(
                    "login {}: verdict {} ms after the tokens arrived",
                    login.describe(),
                    approved_at.elapsed().as_millis()
                );
                return Some(verdict);
            }
            Err(e @ OidcError::Unreachable(_)) if failures + 1 < MAX_POLL_FAILURES => {
                failures += 1;
                log::warn!("login {}: poll failed ({e}); retrying", login.describe());
            }
            Err(e) => {
                log::error!("login {}: {e}", login.describe());
                return Some((
                    failed(e.failure(), &format!("the identity provider failed: {e}")),
                    None,
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
) -> Verdict {
    let cfg = state.config().scoped(&provider.config);
    let validated = match validate(state, provider, d, id_token, &cfg) {
        Ok(v) => v,
        Err(TokenError::Provider(e)) => {
            log::error!("login {}: {e}", login.describe());
            return (
                failed(e.failure(), &format!("the identity provider failed: {e}")),
                None,
            );
        }
        Err(TokenError::Invalid(invalid)) => {
            log::error!(
                "login {}: token rejected: {}",
                login.describe(),
                invalid.detail()
            );
            return (
                failed(
                    LoginFailure::InvalidToken,
                    &format!(
                        "the identity provider's answer failed validation: {}",
                        invalid.problem().user_message()
                    ),
                ),
                None,
            );
        }
    };
    let sub = Some(validated.sub.clone());
    let userinfo = if cfg.claims.source == ClaimSource::IdToken {
        None
    } else {
        match userinfo::fetch(provider, d, access_token, &validated.sub) {
            Ok(u) => Some(u),
            Err(e) => {
                log::error!("login {}: userinfo: {e}", login.describe());
                return (
                    failed(
                        e.failure(),
                        &format!("could not read the user's claims: {e}"),
                    ),
                    sub,
                );
            }
        }
    };
    let claims = userinfo::merge(cfg.claims.source, &validated.claims, userinfo.as_ref());
    (
        decide(state, &provider.config, login, &claims, &validated.sub),
        sub,
    )
}

/// Why the ID token was not accepted.
pub(crate) enum TokenError {
    /// The keys could not be fetched again.
    Provider(OidcError),
    /// The token itself.
    Invalid(Invalid),
}

impl From<TokenError> for OidcError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Provider(e) => e,
            TokenError::Invalid(i) => i.into(),
        }
    }
}

/// Validates an ID token (from a login or a refresh) against the provider's keys, fetching
/// them again once when the token names a key we do not have.
pub(crate) fn validate(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    token: &str,
    cfg: &Config,
) -> Result<id_token::Validated, TokenError> {
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
            let deadline = Instant::now() + crate::oidc::http::REQUEST_TIMEOUT;
            let fresh = provider
                .refresh_keys(kid.as_deref(), deadline)
                .map_err(TokenError::Provider)?;
            id_token::validate(token, &fresh.keys, &expect).map_err(TokenError::Invalid)
        }
        Err(e) => Err(TokenError::Invalid(e)),
    }
}

/// Binds the identity `provider` approved to the user logging in and applies the gates.
pub fn decide(
    state: &State,
    provider: &ProviderConfig,
    login: &Login,
    claims: &Value,
    sub: &str,
) -> Response {
    let cfg = state.config().scoped(provider);
    let issuer = provider.issuer.as_str();
    let user = login.user.as_str();
    // A copy: the other NSS sources are asked below, and no lock is held meanwhile.
    let local = match state.local() {
        Ok(l) => l.clone(),
        Err(e) => {
            log::error!("login {}: {e}", login.describe());
            return failed(LoginFailure::Internal, "cannot read the host's accounts");
        }
    };

    if let Some(&local_uid) = local.users.get(user) {
        // An existing local account: only through its link.
        return decide_linked(state, login, &cfg, claims, sub, issuer, local_uid);
    }

    let map = |local: &LocalAccounts| match mapping::map_claims(claims, &cfg, local) {
        Ok(m) => Ok(m),
        Err(r) => {
            let (reason, msg) = refusal(&r);
            log::warn!("login {} refused (sub {sub:?}): {r}", login.describe());
            Err(Box::new(failed(reason, &msg)))
        }
    };
    let first = match map(&local) {
        Ok(m) => m,
        Err(resp) => return *resp,
    };
    // The names this login would take, checked against every other NSS source, then mapped
    // again with those counted as taken.
    let groups: Vec<&str> = first.groups.iter().map(|g| g.name.as_str()).collect();
    let local =
        match other_sources::lookup(&[first.name.as_str()], &groups, other_sources::LOGIN_BUDGET) {
            Ok(known) => local.with_others(known),
            Err(e) => {
                log::error!("login {} refused: {e}", login.describe());
                return failed(
                    LoginFailure::Internal,
                    "login refused: this host cannot check its other account sources now (the \
                 administrator can see why in oidcd's log)",
                );
            }
        };
    let mapped = match map(&local) {
        Ok(m) => m,
        Err(resp) => return *resp,
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
        log::warn!("login {}: {note}", login.describe());
    }
    let ctx = NewIds {
        issuer,
        cfg: &cfg,
        local: &local,
        now: state.clock.now(),
    };
    // The UID the program running the login holds (sshd resolves the user before PAM runs)
    // binds the login only under ssh_first_uid = "provisional": otherwise the identity gets its
    // fleet UID, and a login that began with another is refused below (issue 13).
    let keep_held = cfg.login.ssh_first_uid == SshFirstUid::Provisional
        && cfg.mapping.uid_source == UidSource::Hash;
    let required = login.resolved_uid.filter(|_| keep_held);
    let applied = state.store(|s| {
        let a = s.apply_user(&ctx, &mapped, claims, Source::Login, required)?;
        s.touch_login(&a.name, ctx.now)?;
        Ok(a)
    });
    state.invalidate();
    match applied {
        Ok(a) => {
            state.forget_provisional(user);
            if let Some(held) = login.resolved_uid.filter(|&held| held != a.uid) {
                return held_other_uid(state, login, (&provider.id, issuer, sub), held, a.uid);
            }
            let groups: Vec<&str> = mapped.groups.iter().map(|g| g.name.as_str()).collect();
            log::info!(
                "login {} approved: sub {sub:?} at provider {}, uid {}{}, groups [{}]{}{}",
                login.describe(),
                provider.id,
                a.uid,
                if a.created { " (new user)" } else { "" },
                groups.join(", "),
                if mapped.is_admin {
                    format!(", admin ({})", cfg.access.admin_local_groups.join(", "))
                } else {
                    String::new()
                },
                a.renamed_from
                    .as_ref()
                    .map(|old| format!(", renamed from {old}"))
                    .unwrap_or_default()
            );
            login
                .audit(Event::LoginApproved, "approved")
                .field("issuer", issuer)
                .field("sub", sub)
                .number("uid", u64::from(a.uid))
                .field("account", if a.created { "created" } else { "existing" })
                .emit();
            Response::LoginApproved {
                user: user.to_string(),
                offline_pin: None,
            }
        }
        Err(StoreFailure::Failed(StoreError::Conflict(why))) => {
            log::warn!("login {} refused (sub {sub:?}): {why}", login.describe());
            failed(
                LoginFailure::NameRefused,
                &format!(
                    "login refused: {user} cannot be given to this identity here: its name or \
                     UID is taken (the administrator can see why in oidcd's log)"
                ),
            )
        }
        Err(StoreFailure::Failed(StoreError::ResolvedUidLost(why))) => {
            log::warn!("login {} refused (sub {sub:?}): {why}", login.describe());
            failed(
                LoginFailure::Expired,
                &format!(
                    "login refused: the account {user} changed while this login ran; log in \
                     again"
                ),
            )
        }
        Err(e) => {
            log::error!(
                "login {} refused (sub {sub:?}): cannot store the user: {e}",
                login.describe()
            );
            failed(
                LoginFailure::Internal,
                "login refused: this host cannot record the account now (the administrator can \
                 see why in oidcd's log)",
            )
        }
    }
}

/// A login that began with a UID (sshd's provisional entry) other than the identity's: its
/// account is now recorded with its own UID, the one every host gives it, and this login is
/// refused, since sshd would run the session as the UID it holds. The next connection resolves
/// the account and logs in, with the code shown here instead of a new approval ([`resume`]).
fn held_other_uid(
    state: &State,
    login: &Login,
    (provider, issuer, sub): (&str, &str, &str),
    held: u32,
    uid: u32,
) -> Response {
    let user = login.user.as_str();
    let again = match resume::issue(state, login, issuer, sub, uid) {
        Some(code) => format!(
            "connect again and enter the code {code} when asked (it works once, from here, for \
             {} minutes)",
            resume::RESUME_FOR.as_secs() / 60
        ),
        None => "connect again to log in".to_string(),
    };
    log::warn!(
        "login {} refused: sub {sub:?} at provider {provider} has UID {uid}, the same on every \
         host; the program running the login resolved {user} to UID {held} before the login \
         (a provisional entry) and would run the session as that: {user} now exists here and \
         connects again (login.ssh_first_uid = \"fleet\")",
        login.describe()
    );
    failed(
        LoginFailure::Expired,
        &format!(
            "{user}'s account on this host was set up now with UID {uid}, the one every host \
             gives {user}: {again}"
        ),
    )
}

fn decide_linked(
    state: &State,
    login: &Login,
    cfg: &Config,
    claims: &Value,
    sub: &str,
    issuer: &str,
    local_uid: u32,
) -> Response {
    let user = login.user.as_str();
    let link = match state.store(|s| s.link_of(user)) {
        Ok(l) => l,
        Err(e) => {
            log::error!("login {}: {e}", login.describe());
            return failed(
                LoginFailure::Internal,
                "this host's identity cache is unavailable (see oidcd's log)",
            );
        }
    };
    let linked = link
        .as_ref()
        .is_some_and(|l| l.issuer == issuer && l.sub == sub);
    // An explicit link wins: email reaches only accounts nobody linked.
    let by_email = link.is_none()
        && cfg.access.link_by_email
        && email_linkable(cfg, user, local_uid).is_ok()
        && email_links(cfg, claims, user);
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
    login
        .audit(Event::LoginApproved, "approved")
        .field("issuer", issuer)
        .field("sub", sub)
        .number("uid", u64::from(local_uid))
        .field("account", if linked { "linked" } else { "linked_by_email" })
        .emit();
    Response::LoginApproved {
        user: user.to_string(),
        offline_pin: None,
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
        Refusal::NotInAllowedGroups
        | Refusal::EmailDomain { .. }
        | Refusal::DomainClaim { .. }
        | Refusal::EmailNotVerified
        | Refusal::GroupsUnknown { .. }
        | Refusal::NameFromUnverifiedEmail { .. } => LoginFailure::NotAllowed,
        Refusal::InvalidName { .. }
        | Refusal::LocalCollision { .. }
        | Refusal::OtherSource { .. } => LoginFailure::NameRefused,
        Refusal::BadClaim { .. } => LoginFailure::InvalidToken,
        Refusal::LocalFilesUnreadable(_) => LoginFailure::Internal,
    };
    (reason, format!("login refused: {r}"))
}

#[cfg(test)]
mod tests;
