//! What the lifecycle adds to the PAM account phase ([`crate::auth::account`]): a revoked
//! identity is refused; an identity the daemon refreshes is refused once the provider has not
//! confirmed it for `refresh.entry_ttl`; one it cannot refresh (no refresh token, or refresh
//! off) once its last login is older than `access.max_login_age_days`.
//!
//! Expiry is decided here, never in NSS: an expired or revoked user keeps resolving (files keep
//! their owner) and only the logins that do not ask the provider are refused.

use oidc_proto::types::Lifecycle;

use crate::auth::account::login_age_ok;
use crate::config::Config;

/// How to get back in, said with every refusal.
pub const HOW_BACK: &str = "log in through the identity provider again (the device code \
                            prompt; over SSH: ssh -o PubkeyAuthentication=no)";

/// A revoked identity is refused with why and since when.
pub fn not_revoked(user: &str, lc: Option<&Lifecycle>) -> Result<(), String> {
    match lc.and_then(|l| l.revoked_at.map(|at| (at, l.revoked_reason.as_deref()))) {
        None => Ok(()),
        Some((at, reason)) => Err(format!(
            "access of {user} was revoked on {} ({}): {HOW_BACK}",
            date(at),
            reason.unwrap_or("no reason recorded")
        )),
    }
}

/// Whether the provider's last word on the identity is recent enough at `now`.
pub fn fresh(
    user: &str,
    cfg: &Config,
    lc: Option<&Lifecycle>,
    last_login: Option<i64>,
    now: i64,
) -> Result<(), String> {
    let refreshed = cfg.refresh.enable && lc.is_some_and(|l| l.refreshable);
    if !refreshed {
        return login_age_ok(last_login, cfg.access.max_login_age_days, now);
    }
    let ttl = i64::try_from(cfg.refresh.entry_ttl.as_secs()).unwrap_or(i64::MAX);
    if ttl == 0 {
        return Ok(());
    }
    let verified = lc.and_then(|l| l.verified_at).max(last_login);
    let Some(at) = verified else {
        return Err(format!(
            "the identity provider never confirmed {user}: {HOW_BACK}"
        ));
    };
    let age = now.saturating_sub(at);
    if age < ttl {
        return Ok(());
    }
    let last = lc
        .and_then(|l| l.last_refresh_result.as_deref())
        .unwrap_or("none yet");
    Err(format!(
        "the identity provider has not confirmed {user} for {} (last refresh: {last}), and \
         refresh.entry_ttl is {}: access comes back at the next successful refresh, or {HOW_BACK}",
        span(age),
        span(ttl)
    ))
}

/// A length of time for people: seconds, minutes, hours or days.
pub fn span(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// A Unix time as a UTC date.
pub fn date(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn refreshable(verified_at: i64) -> Lifecycle {
        Lifecycle {
            refreshable: true,
            verified_at: Some(verified_at),
            last_refresh_result: Some("provider unreachable: x".into()),
            ..Lifecycle::default()
        }
    }

    /// A revoked identity is refused with the reason and the way back; others pass.
    #[test]
    fn revoked_is_refused_with_the_way_back() {
        assert_eq!(not_revoked("alice", None), Ok(()));
        assert_eq!(not_revoked("alice", Some(&Lifecycle::default())), Ok(()));
        let lc = Lifecycle {
            revoked_at: Some(NOW),
            revoked_reason: Some("the provider refused the refresh token".into()),
            ..Lifecycle::default()
        };
        let e = not_revoked("alice", Some(&lc)).unwrap_err();
        assert!(
            e.starts_with("access of alice was revoked on 2027-01-15"),
            "{e}"
        );
        assert!(e.contains("refused the refresh token"), "{e}");
        assert!(e.contains("ssh -o PubkeyAuthentication=no"), "{e}");
    }

    /// A refreshed identity is good for entry_ttl after the provider last confirmed it, then
    /// refused with the last refresh's result; entry_ttl = 0 never expires.
    #[test]
    fn entry_ttl_bounds_a_refreshed_identity() {
        let mut cfg = Config::default();
        cfg.refresh.entry_ttl = Duration::from_secs(3600);
        let lc = refreshable(NOW - 3599);
        assert_eq!(fresh("alice", &cfg, Some(&lc), None, NOW), Ok(()));
        let lc = refreshable(NOW - 3600);
        let e = fresh("alice", &cfg, Some(&lc), None, NOW).unwrap_err();
        assert!(e.contains("has not confirmed alice for 60 min"), "{e}");
        assert!(e.contains("last refresh: provider unreachable: x"), "{e}");
        assert!(e.contains("refresh.entry_ttl is 60 min"), "{e}");
        // A later login counts as a confirmation.
        assert_eq!(fresh("alice", &cfg, Some(&lc), Some(NOW - 10), NOW), Ok(()));
        cfg.refresh.entry_ttl = Duration::ZERO;
        assert_eq!(fresh("alice", &cfg, Some(&lc), None, NOW), Ok(()));
    }

    /// Without a refresh token (or with refresh off), max_login_age_days decides, not
    /// entry_ttl.
    #[test]
    fn without_refresh_max_login_age_decides() {
        let mut cfg = Config::default();
        cfg.refresh.entry_ttl = Duration::from_secs(60);
        cfg.access.max_login_age_days = 7;
        let no_rt = Lifecycle {
            refreshable: false,
            verified_at: Some(NOW - 86_400),
            ..Lifecycle::default()
        };
        assert_eq!(
            fresh("alice", &cfg, Some(&no_rt), Some(NOW - 86_400), NOW),
            Ok(())
        );
        let e = fresh("alice", &cfg, Some(&no_rt), Some(NOW - 8 * 86_400), NOW).unwrap_err();
        assert!(e.contains("was 8 days ago"), "{e}");
        assert!(fresh("bob", &cfg, None, None, NOW).is_err());
        cfg.refresh.enable = false;
        let rt = refreshable(NOW - 3600);
        assert_eq!(
            fresh("alice", &cfg, Some(&rt), Some(NOW - 3600), NOW),
            Ok(())
        );
    }

    /// Spans read naturally.
    #[test]
    fn spans() {
        assert_eq!(span(5), "5 s");
        assert_eq!(span(600), "10 min");
        assert_eq!(span(3 * 3600), "3 h");
        assert_eq!(span(3 * 86_400), "3 days");
        assert_eq!(span(-5), "0 s");
    }
}
