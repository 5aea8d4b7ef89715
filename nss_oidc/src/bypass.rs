//! The loop guard: lookups made by the daemon itself, or by systemd while it prepares the
//! daemon's unit, must not ask the daemon (it would wait on itself until the deadline).
//!
//! This is the only environment read in the module, and it can only make the module answer
//! *less* (NOTFOUND without asking), so a user who sets these variables before running a setuid
//! program gains nothing.

use std::env;
use std::ffi::OsStr;
use std::sync::OnceLock;

use oidc_proto::paths::{NSS_BYPASS_ENV, UNIT_NAME};

/// The variable systemd sets while it resolves users and groups for a unit it is starting.
pub const SYSTEMD_UNIT_ENV: &str = "SYSTEMD_ACTIVATION_UNIT";

/// True when this process must not ask the daemon: reads the two variables and decides with
/// [`should_bypass`].
pub fn active() -> bool {
    should_bypass(
        env::var_os(NSS_BYPASS_ENV).as_deref(),
        env::var_os(SYSTEMD_UNIT_ENV).as_deref(),
    )
}

/// [`active`] as it was at this process's first lookup. Read once (an environment read on
/// every lookup would cost more than the map lookup itself), it keeps the daemon's own helper
/// processes (`getent` asking the other NSS sources, run with the marker) from finding the
/// daemon's users in the map. A process forked from one that already looked up keeps its
/// parent's answer; before asking the daemon, [`active`] is read again.
pub fn active_at_start() -> bool {
    static AT_START: OnceLock<bool> = OnceLock::new();
    *AT_START.get_or_init(active)
}

/// The decision, given the values of [`NSS_BYPASS_ENV`] and [`SYSTEMD_UNIT_ENV`]: bypass when
/// the marker is set to anything (even empty) or systemd is preparing our own unit.
pub fn should_bypass(marker: Option<&OsStr>, systemd_unit: Option<&OsStr>) -> bool {
    marker.is_some() || systemd_unit == Some(OsStr::new(UNIT_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon's marker bypasses whatever its value, including empty.
    #[test]
    fn marker_with_any_value_bypasses() {
        for v in ["1", "", "no", "0"] {
            assert!(should_bypass(Some(OsStr::new(v)), None), "{v:?}");
        }
    }

    /// Only our own unit name bypasses; other units and prefixes of ours do not.
    #[test]
    fn only_our_unit_bypasses() {
        assert!(should_bypass(None, Some(OsStr::new(UNIT_NAME))));
        for unit in [
            "sshd.service",
            "oidcd",
            "oidcd.service.d",
            "",
            "xoidcd.service",
        ] {
            assert!(!should_bypass(None, Some(OsStr::new(unit))), "{unit:?}");
        }
    }

    /// With neither variable set, the module asks the daemon.
    #[test]
    fn nothing_set_does_not_bypass() {
        assert!(!should_bypass(None, None));
    }
}
