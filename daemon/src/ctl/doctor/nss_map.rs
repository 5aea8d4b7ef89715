//! The NSS map (`/run/oidcd/nss.map`): present when `cache.nss_map` is on and absent when it is
//! off, root's and not writable by others (else the module ignores it), current, kept valid by
//! the heartbeat, and holding as many users and groups as the store.
//!
//! The facts come from the daemon's status answer, which reads the map's header and knows the
//! store and whether the file is the one it keeps. When the daemon cannot be asked, oidcctl
//! reads the file itself with the same code ([`crate::nss_map::inspect`]), so a map left by a
//! dead daemon, or a planted one, is still judged.

use std::path::Path;
use std::time::Duration;

use oidc_proto::client::{self, TrustedOwner};
use oidc_proto::paths::NSS_MAP_PATH;
use oidc_proto::types::{NssMapFile, NssMapState, NssMapStatus, StatusInfo};
use oidc_proto::{Request, Response};

use super::Report;
use crate::config::Config;
use crate::ctl::show::when;

const C: &str = "nssmap";

/// A daemon up for less than this may not have written its first map yet.
const FIRST_MAP: u64 = 10;

/// What the daemon says about the store, to hold the map against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Store {
    /// Users in the store.
    pub users: u64,
    /// Provider groups in the store.
    pub groups: u64,
    /// Seconds since the daemon started.
    pub uptime: u64,
}

/// Checks the map as the daemon's `status` describes it, else (daemon down, or older than this
/// report) as the file and `config` show it.
pub(super) fn check(
    r: &mut Report,
    status: Option<StatusInfo>,
    socket: &Path,
    config: Option<&Config>,
) {
    let Some(mut status) = status.filter(|s| s.nss_map.is_some()) else {
        let enabled = config.is_none_or(|c| c.cache.nss_map);
        let ttl = config.map_or(0, |c| c.cache.nss_map_ttl.as_secs());
        let seen = NssMapStatus {
            enabled,
            path: NSS_MAP_PATH.into(),
            ttl_secs: ttl,
            now: crate::clock::Clock::system().now(),
            file: crate::nss_map::inspect(Path::new(NSS_MAP_PATH)),
            ..NssMapStatus::default()
        };
        judge(r, &seen, None);
        return;
    };
    // A change between the store's count and the map's header shows as a difference: ask
    // once more before calling it one.
    if counts_differ(&status) {
        crate::clock::sleep(Duration::from_secs(1));
        if let Ok(Response::Status(again)) = client::call(
            socket,
            TrustedOwner::Root,
            &Request::Status,
            Duration::from_secs(5),
        ) {
            if again.nss_map.is_some() {
                status = again;
            }
        }
    }
    let store = Store {
        users: status.users,
        groups: status.groups,
        uptime: status.uptime_secs,
    };
    if let Some(m) = &status.nss_map {
        judge(r, m, Some(store));
    }
}

/// Whether a current map holds other counts than the store.
fn counts_differ(s: &StatusInfo) -> bool {
    s.nss_map
        .as_ref()
        .and_then(|m| m.file.as_ref())
        .is_some_and(|f| differs(f, s.users, s.groups))
}

fn differs(f: &NssMapFile, users: u64, groups: u64) -> bool {
    match (f.state, f.users, f.groups) {
        (Some(NssMapState::Current), Some(u), Some(g)) => {
            u != users || g.saturating_sub(u) != groups
        }
        _ => false,
    }
}

/// Why the module ignores the file, if it does.
fn untrusted(f: &NssMapFile) -> Option<String> {
    if !f.regular {
        Some(format!(
            "is {}",
            f.error.as_deref().unwrap_or("not a regular file")
        ))
    } else if f.uid != 0 {
        Some(format!("belongs to uid {}, not root", f.uid))
    } else if f.mode & 0o022 != 0 {
        Some(format!(
            "has mode {:04o}: writable by group or others",
            f.mode
        ))
    } else {
        None
    }
}

/// The findings for `m`; `store` is `None` when the daemon could not be asked.
pub(super) fn judge(r: &mut Report, m: &NssMapStatus, store: Option<Store>) {
    let path = &m.path;
    let running = store.is_some();
    // Just started and no map written yet: the first one is on its way.
    let settling = store.is_some_and(|s| s.uptime < FIRST_MAP)
        && m.written_at.is_none()
        && m.build_error.is_none();
    let rewrite =
        format!("rm {path} && systemctl restart oidcd (it writes a new map, root's, 0644)");
    let Some(f) = &m.file else {
        match (m.enabled, store) {
            (false, _) => r.ok(C, format!("cache.nss_map = false: no map at {path}")),
            (true, None) => r.warn(
                C,
                format!("no map at {path}: while oidcd is down its users do not resolve"),
                "start oidcd (systemctl start oidcd): it writes the map",
            ),
            (true, Some(s)) if settling => r.warn(
                C,
                format!("no map at {path} yet: oidcd started {} s ago", s.uptime),
                "run oidcctl doctor again in a few seconds",
            ),
            (true, Some(_)) => r.error(
                C,
                format!(
                    "cache.nss_map is on but {path} is missing{}: every lookup asks oidcd, and \
                     its users stop resolving whenever it is down",
                    m.build_error
                        .as_deref()
                        .map(|e| format!(" (last build: {e})"))
                        .unwrap_or_default()
                ),
                "see journalctl -u oidcd (a full or read-only /run?), then systemctl restart oidcd",
            ),
        }
        return;
    };
    if let Some(why) = untrusted(f) {
        r.error(
            C,
            format!("{path} {why}: the NSS module ignores it and asks oidcd for every lookup"),
            format!("find out who wrote it; then {rewrite}"),
        );
        return;
    }
    let (Some(state), Some(until), None) = (f.state, f.valid_until, &f.error) else {
        r.error(
            C,
            format!(
                "{path} is not a map oidcd can read: {}",
                f.error.as_deref().unwrap_or("no header")
            ),
            rewrite,
        );
        return;
    };
    let usable = state == NssMapState::Current && until > m.now;
    if !m.enabled {
        if usable {
            r.error(
                C,
                format!(
                    "{path} is present while cache.nss_map = false: the NSS module answers from \
                     it until {}, and nothing updates it",
                    when(until)
                ),
                format!("rm {path}, or systemctl kill -s HUP oidcd (it removes the map)"),
            );
        } else {
            r.warn(
                C,
                format!(
                    "{path} is present while cache.nss_map = false (the module no longer uses it)"
                ),
                format!("rm {path}"),
            );
        }
        return;
    }
    let before = r.findings.len();
    if until <= m.now {
        let age = (m.now - until).unsigned_abs();
        if running {
            r.error(
                C,
                format!(
                    "{path} expired {} ({age} s ago) though oidcd answers: its heartbeat has \
                     stopped, so the module no longer answers from the map",
                    when(until)
                ),
                "systemctl restart oidcd; journalctl -u oidcd says what stopped it",
            );
        } else {
            r.warn(
                C,
                format!(
                    "{path} expired {} ({age} s ago): oidcd is not running to renew it",
                    when(until)
                ),
                "start oidcd (systemctl start oidcd)",
            );
        }
    }
    match state {
        NssMapState::Current => {}
        NssMapState::Behind => {
            if let Some(e) = &m.build_error {
                r.error(
                    C,
                    format!("{path} is behind the store and the next map cannot be written: {e}"),
                    "see journalctl -u oidcd; lookups ask oidcd meanwhile",
                );
            }
        }
        NssMapState::Replaced | NssMapState::Unknown => {
            if running && !settling {
                r.error(
                    C,
                    format!(
                        "{path} is marked replaced and no newer map took its place: every \
                         lookup asks oidcd{}",
                        m.build_error
                            .as_deref()
                            .map(|e| format!(" (last build: {e})"))
                            .unwrap_or_default()
                    ),
                    "see journalctl -u oidcd, then systemctl restart oidcd",
                );
            } else if !running {
                r.warn(
                    C,
                    format!("{path} is marked replaced: lookups ask oidcd, which is not running"),
                    "start oidcd (systemctl start oidcd)",
                );
            }
        }
    }
    if let Some(s) = store {
        if state == NssMapState::Current && !m.held && !settling {
            r.warn(
                C,
                format!("{path} is not the file this oidcd wrote and keeps up to date"),
                format!("find out who wrote it; then {rewrite}"),
            );
        }
        let (u, g) = (f.users.unwrap_or(0), f.groups.unwrap_or(0));
        if differs(f, s.users, s.groups) {
            let message = format!(
                "{path} holds {u} users and {} groups, the store {} users and {} groups",
                g.saturating_sub(u),
                s.users,
                s.groups
            );
            if m.skipped > 0 {
                r.warn(
                    C,
                    format!(
                        "{message}: {} left out of the map (their fields cannot be served)",
                        m.skipped
                    ),
                    "journalctl -u oidcd | grep 'left out' names them",
                );
            } else {
                r.error(
                    C,
                    format!("{message}: lookups answered from the map are out of date"),
                    "systemctl kill -s HUP oidcd (it writes a new map); if it persists, \
                     journalctl -u oidcd",
                );
            }
        }
    }
    if r.findings.len() == before {
        r.ok(
            C,
            format!(
                "{path}: {}, generation {}, {} users, {} groups, valid until {}",
                match state {
                    NssMapState::Current => "current",
                    _ => "behind the store (a new map is being written)",
                },
                f.generation.unwrap_or(0),
                f.users.unwrap_or(0),
                f.groups.unwrap_or(0),
                when(until)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn good() -> NssMapStatus {
        NssMapStatus {
            enabled: true,
            path: "/run/oidcd/nss.map".into(),
            ttl_secs: 300,
            now: NOW,
            file: Some(NssMapFile {
                regular: true,
                uid: 0,
                mode: 0o644,
                size: 1000,
                modified_at: NOW,
                error: None,
                generation: Some(5),
                users: Some(2),
                groups: Some(4),
                valid_until: Some(NOW + 300),
                state: Some(NssMapState::Current),
            }),
            held: true,
            written_at: Some(NOW - 10),
            skipped: 0,
            build_error: None,
        }
    }

    const STORE: Store = Store {
        users: 2,
        groups: 2,
        uptime: 60,
    };

    /// The findings for `m` as (severity, message).
    fn judged(m: &NssMapStatus, store: Option<Store>) -> Vec<(Severity, String)> {
        let mut r = Report::default();
        judge(&mut r, m, store);
        r.findings
            .into_iter()
            .map(|f| (f.severity, f.message))
            .collect()
    }

    fn one(m: &NssMapStatus, store: Option<Store>, severity: Severity, says: &str) {
        let got = judged(m, store);
        assert!(
            got.iter()
                .any(|(s, msg)| *s == severity && msg.contains(says)),
            "no {severity:?} saying {says:?}: {got:?}"
        );
        assert!(
            got.iter().all(|(s, _)| *s <= severity),
            "something worse than {severity:?}: {got:?}"
        );
    }

    /// A current, root-owned 0644 map that matches the store is one ok finding.
    #[test]
    fn a_good_map_is_ok() {
        let got = judged(&good(), Some(STORE));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, Severity::Ok);
        assert!(
            got[0]
                .1
                .contains("current, generation 5, 2 users, 4 groups")
        );
    }

    /// Missing while on is an error with the daemon up (a warning just after its start, or
    /// with the daemon down); missing while off is fine.
    #[test]
    fn missing_map() {
        let mut m = good();
        m.file = None;
        one(&m, Some(STORE), Severity::Error, "is missing");
        let starting = Store { uptime: 2, ..STORE };
        one(&m, Some(starting), Severity::Error, "is missing");
        m.written_at = None;
        one(&m, Some(starting), Severity::Warning, "yet");
        one(&m, None, Severity::Warning, "do not resolve");
        m.build_error = Some("cannot create /run/oidcd/.nss.map.new: No space left".into());
        one(&m, Some(STORE), Severity::Error, "No space left");
        m.enabled = false;
        one(&m, Some(STORE), Severity::Ok, "cache.nss_map = false");
    }

    /// Not root's, writable by group or others, or not a regular file: an error (the module
    /// ignores it), daemon up or down.
    #[test]
    fn wrong_owner_or_mode() {
        for (uid, mode, says) in [
            (1000, 0o644, "uid 1000"),
            (0, 0o664, "mode 0664"),
            (0, 0o646, "mode 0646"),
        ] {
            let mut m = good();
            let f = m.file.as_mut().unwrap();
            (f.uid, f.mode) = (uid, mode);
            one(&m, Some(STORE), Severity::Error, says);
            one(&m, None, Severity::Error, says);
        }
        let mut m = good();
        let f = m.file.as_mut().unwrap();
        f.regular = false;
        f.error = Some("a symbolic link".into());
        one(&m, Some(STORE), Severity::Error, "a symbolic link");
    }

    /// Expired with the daemon answering: the heartbeat has stopped (an error); with the
    /// daemon down, a warning (the daemon check has the error).
    #[test]
    fn expired_map() {
        let mut m = good();
        m.file.as_mut().unwrap().valid_until = Some(NOW - 30);
        one(&m, Some(STORE), Severity::Error, "heartbeat has stopped");
        one(&m, None, Severity::Warning, "not running");
    }

    /// A current map with other counts than the store is an error; with entries left out of
    /// it, a warning naming them; a map behind the store is not compared.
    #[test]
    fn counts_against_the_store() {
        let m = good();
        let more = Store { users: 3, ..STORE };
        one(
            &m,
            Some(more),
            Severity::Error,
            "the store 3 users and 2 groups",
        );
        let fewer_groups = Store { groups: 1, ..STORE };
        one(&m, Some(fewer_groups), Severity::Error, "out of date");
        let mut skipped = good();
        skipped.skipped = 1;
        one(&skipped, Some(more), Severity::Warning, "1 left out");
        let mut behind = good();
        behind.file.as_mut().unwrap().state = Some(NssMapState::Behind);
        one(&behind, Some(more), Severity::Ok, "behind the store");
        behind.build_error = Some("disk full".into());
        one(&behind, Some(more), Severity::Error, "disk full");
    }

    /// Present while `cache.nss_map = false`: an error while the module would still answer
    /// from it, a warning once it would not.
    #[test]
    fn present_while_off() {
        let mut m = good();
        m.enabled = false;
        one(
            &m,
            Some(STORE),
            Severity::Error,
            "while cache.nss_map = false",
        );
        m.file.as_mut().unwrap().state = Some(NssMapState::Replaced);
        one(
            &m,
            Some(STORE),
            Severity::Warning,
            "while cache.nss_map = false",
        );
    }

    /// Marked replaced with no newer map (daemon up a while): an error; a map this daemon
    /// does not keep: a warning; unreadable header: an error.
    #[test]
    fn replaced_foreign_or_unreadable() {
        let mut m = good();
        m.file.as_mut().unwrap().state = Some(NssMapState::Replaced);
        one(&m, Some(STORE), Severity::Error, "marked replaced");
        let mut m = good();
        m.held = false;
        one(
            &m,
            Some(STORE),
            Severity::Warning,
            "not the file this oidcd wrote",
        );
        let mut m = good();
        let f = m.file.as_mut().unwrap();
        f.error = Some("not an oidcd map (bad magic)".into());
        (f.state, f.valid_until) = (None, None);
        one(&m, Some(STORE), Severity::Error, "bad magic");
    }
}
