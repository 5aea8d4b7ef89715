//! `[offline]`: logging in with a local PIN while the identity provider cannot be reached
//! (see [`crate::offline`]). Off unless enabled.

use std::time::Duration;

use serde::Deserialize;

use super::Config;
use super::raw::{RawConfig, S};
use super::validate::Validator;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOffline {
    pub enable: S<bool>,
    pub max_days: S<i64>,
    pub min_length: S<i64>,
    pub max_failures: S<i64>,
    pub lockout: S<i64>,
}

/// `[offline]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineConfig {
    /// Offer an offline PIN after each online login, and accept it while the provider cannot
    /// be reached.
    pub enable: bool,
    /// Days after the last online login during which the PIN is accepted.
    pub max_days: u32,
    /// Fewest characters in a PIN.
    pub min_length: u32,
    /// Wrong PINs in a row after which the PIN is refused for `lockout`.
    pub max_failures: u32,
    /// How long the PIN is refused after `max_failures` wrong ones (each further wrong one
    /// starts it again); an online login ends it.
    pub lockout: Duration,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            enable: false,
            max_days: 3,
            min_length: 6,
            max_failures: 5,
            lockout: Duration::from_secs(300),
        }
    }
}

impl Validator<'_, '_> {
    pub(super) fn offline(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(o) = &raw.offline else { return };
        let oc = &mut c.offline;
        if let Some(v) = &o.enable {
            oc.enable = *v.get_ref();
        }
        self.count(&o.max_days, "offline.max_days", 1, 365, &mut oc.max_days);
        self.count(
            &o.min_length,
            "offline.min_length",
            4,
            64,
            &mut oc.min_length,
        );
        self.count(
            &o.max_failures,
            "offline.max_failures",
            1,
            100,
            &mut oc.max_failures,
        );
        self.seconds_i(&o.lockout, "offline.lockout", 1, 86_400, &mut oc.lockout);
    }
}
