//! PAM `account`: may a user log in now?
//!
//! A user oidcd created is allowed while the claims from their last login still pass the
//! access gates of the current configuration (so removing a group from `allowed_groups`, or
//! the user from it at their next login, locks them out); a removed user is unknown; a linked
//! local account is allowed while the link exists. A revoked user, or one the provider has not
//! confirmed recently enough, is refused ([`crate::lifecycle::account`]): with
//! `access.max_login_age_days`, a user oidcd cannot refresh whose last login through the
//! provider is older (or who never had one) is refused until the next.

use oidc_proto::Response;
use oidc_proto::types::{AccountStatus, UserRecord};

use crate::config::Config;
use crate::identity::mapping;
use crate::lifecycle;
use crate::state::State;

/// `AccountCheck`.
pub fn check(state: &State, user: &str, service: &str) -> Response {
    let cfg = state.config();
    let found = state.with_store(|s| Ok((s.user_record(user)?, s.link_of(user)?)));
    let account = match found {
        Err(reason) => return Response::Unavailable { reason },
        Ok((Some(stored), _)) => match refusal(state, &cfg, user, &stored) {
            Ok(()) => AccountStatus::Allowed,
            Err(message) => {
                log::warn!("account {user} refused: {message}");
                AccountStatus::Denied { message }
            }
        },
        Ok((None, Some(link))) => {
            if cfg.provider_by_issuer(&link.issuer).is_some() {
                AccountStatus::Linked
            } else {
                AccountStatus::Denied {
                    message: "the account's link belongs to another provider".into(),
                }
            }
        }
        Ok((None, None)) => AccountStatus::Unknown,
    };
    let outcome = match &account {
        AccountStatus::Allowed => "allowed",
        AccountStatus::Linked => "linked",
        AccountStatus::Denied { .. } => "denied",
        AccountStatus::Unknown => "unknown",
    };
    let mut event = crate::audit::record(crate::audit::Event::AccountVerdict, outcome)
        .field("user", user)
        .field("service", service);
    if let AccountStatus::Denied { message } = &account {
        event = event.field("message", message.as_str());
    }
    event.emit();
    Response::Account { account }
}

/// Why the account phase refuses the stored user `user` now (`Ok` when it allows them): revoked,
/// refused by the access gates of their provider's current rules, or not confirmed by the
/// provider recently enough. The SSH keys served for a user follow the same verdict.
pub(crate) fn refusal(
    state: &State,
    cfg: &Config,
    user: &str,
    stored: &UserRecord,
) -> Result<(), String> {
    // The gates of the user's own provider; the host's when it is no longer configured.
    let cfg = cfg
        .provider_by_issuer(&stored.issuer)
        .map_or_else(|| cfg.clone(), |p| cfg.scoped(p));
    let lifecycle = stored.lifecycle.as_ref();
    lifecycle::account::not_revoked(user, lifecycle)
        .and_then(|()| {
            mapping::check_access(&stored.claims, &cfg).map_err(|r| format!("access refused: {r}"))
        })
        .and_then(|()| {
            let now = state.clock.now();
            lifecycle::account::fresh(user, &cfg, lifecycle, stored.last_login_at, now)
        })
}

/// `access.max_login_age_days`: whether the last login through the provider (`None`: never,
/// e.g. an imported user) is recent enough at `now` (Unix seconds); the refusal says what to do.
pub(crate) fn login_age_ok(last_login: Option<i64>, max_days: u32, now: i64) -> Result<(), String> {
    if max_days == 0 {
        return Ok(());
    }
    let again = "log in through the identity provider again (the device code prompt; over SSH: \
                 ssh -o PubkeyAuthentication=no)";
    let Some(at) = last_login else {
        return Err(format!(
            "no login through the identity provider yet, and access.max_login_age_days is \
             {max_days}: {again}"
        ));
    };
    let age_days = now.saturating_sub(at).max(0) / 86_400;
    if age_days >= i64::from(max_days) {
        return Err(format!(
            "the last login through the identity provider was {age_days} days ago, and \
             access.max_login_age_days is {max_days}: {again}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::login_age_ok;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn no_limit_allows_everyone() {
        assert_eq!(login_age_ok(None, 0, NOW), Ok(()));
        assert_eq!(login_age_ok(Some(0), 0, NOW), Ok(()));
    }

    #[test]
    fn the_limit_counts_whole_days() {
        assert_eq!(login_age_ok(Some(NOW), 30, NOW), Ok(()));
        assert_eq!(login_age_ok(Some(NOW - 30 * DAY + 1), 30, NOW), Ok(()));
        let e = login_age_ok(Some(NOW - 30 * DAY), 30, NOW).unwrap_err();
        assert!(e.contains("was 30 days ago"), "{e}");
        assert!(e.contains("ssh -o PubkeyAuthentication=no"), "{e}");
        // A clock set back (a login "in the future") is not held against anyone.
        assert_eq!(login_age_ok(Some(NOW + DAY), 1, NOW), Ok(()));
    }

    #[test]
    fn never_logged_in_is_refused_under_a_limit() {
        let e = login_age_ok(None, 7, NOW).unwrap_err();
        assert!(
            e.starts_with("no login through the identity provider yet"),
            "{e}"
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert!(login_age_ok(Some(i64::MIN), 1, i64::MAX).is_err());
        assert_eq!(login_age_ok(Some(i64::MAX), 1, i64::MIN), Ok(()));
    }
}
