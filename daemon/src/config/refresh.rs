//! `[refresh]`: re-reading identities from the provider between logins (see
//! [`crate::lifecycle`]), checked like every other section.

use std::time::Duration;

use serde::Deserialize;

use super::Config;
use super::raw::{RawConfig, S};
use super::validate::Validator;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRefresh {
    pub enable: S<bool>,
    pub interval: S<f64>,
    pub max_concurrent: S<i64>,
    pub retry_min: S<f64>,
    pub retry_max: S<f64>,
    pub entry_ttl: S<i64>,
    pub userinfo_recheck: S<bool>,
}

/// `[refresh]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshConfig {
    /// Refresh identities in the background.
    pub enable: bool,
    /// Time between two refreshes of one identity (each jittered by up to a tenth).
    pub interval: Duration,
    /// Refreshes running at once.
    pub max_concurrent: u32,
    /// Delay before the first retry after a failed refresh; it doubles with each failure.
    pub retry_min: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// How long after the provider last confirmed an identity the PAM account phase still
    /// accepts it without a new confirmation; zero: no limit.
    pub entry_ttl: Duration,
    /// Without a refresh token, re-check the identity at userinfo with the login's access token
    /// while it is valid.
    pub userinfo_recheck: bool,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            enable: true,
            interval: Duration::from_secs(900),
            max_concurrent: 4,
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            entry_ttl: Duration::from_secs(3 * 86_400),
            userinfo_recheck: true,
        }
    }
}

impl Validator<'_, '_> {
    pub(super) fn refresh(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(r) = &raw.refresh else { return };
        let rc = &mut c.refresh;
        if let Some(v) = &r.enable {
            rc.enable = *v.get_ref();
        }
        self.seconds_f(
            &r.interval,
            "refresh.interval",
            1.0,
            86_400.0,
            &mut rc.interval,
        );
        self.count(
            &r.max_concurrent,
            "refresh.max_concurrent",
            1,
            64,
            &mut rc.max_concurrent,
        );
        self.seconds_f(
            &r.retry_min,
            "refresh.retry_min",
            1.0,
            86_400.0,
            &mut rc.retry_min,
        );
        self.seconds_f(
            &r.retry_max,
            "refresh.retry_max",
            1.0,
            604_800.0,
            &mut rc.retry_max,
        );
        if rc.retry_max < rc.retry_min {
            self.r.at(
                r.retry_max
                    .as_ref()
                    .or(r.retry_min.as_ref())
                    .map(|v| v.span()),
                "refresh.retry_max",
                format!(
                    "is less than refresh.retry_min ({} s): retries would never back off",
                    rc.retry_min.as_secs_f64()
                ),
            );
        }
        self.seconds_i(
            &r.entry_ttl,
            "refresh.entry_ttl",
            0,
            365 * 86_400,
            &mut rc.entry_ttl,
        );
        if let Some(v) = &r.userinfo_recheck {
            rc.userinfo_recheck = *v.get_ref();
        }
    }
}
