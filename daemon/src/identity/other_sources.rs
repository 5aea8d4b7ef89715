//! Names that NSS sources other than `files` and `oidc` know (sss, ldap, winbind, systemd's
//! dynamic and homed users, extrausers...), so that "never shadow an account" covers them too.
//!
//! How: a short-lived child, `getent passwd NAME...` and `getent group NAME...`, with the
//! loop-guard marker (`OIDCD_NSS_BYPASS`) in its environment, so glibc asks every source in
//! nsswitch.conf and our own module answers "not found" at once without asking this daemon.
//! Why a child rather than `getpwnam_r` here or loading the other modules: the daemon never
//! resolves through NSS itself (style.md §4.6): glibc would load sss, ldap and the rest into
//! the root daemon, with their threads, caches and sockets, and a hung source would hold a
//! daemon thread with no way to stop it. A child is bounded: it is killed when its budget is
//! spent, and its crash is its own. It costs a fork and exec (measured 3.7 ms per `getent`
//! with `files systemd` on the build machine, 50 runs from a Python loop), paid at a login's
//! start and end, at imports, and once per new provisional entry, never on a lookup.
//!
//! A name any source answers for is taken. `getent` exits 2 both for "not found" and when a
//! source is unavailable, so a source that is down hides its names; a source that hangs
//! makes the lookup fail, and the caller refuses the new name (fail closed).

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use oidc_proto::paths::NSS_BYPASS_ENV;

/// Budget at a login's start and at its verdict.
pub const LOGIN_BUDGET: Duration = Duration::from_secs(2);
/// Budget for a new provisional entry: it is made inside sshd's NSS lookup, whose deadline is
/// 250 ms.
pub const PROVISIONAL_BUDGET: Duration = Duration::from_millis(150);
/// Budget for an import (all its names at once).
pub const IMPORT_BUDGET: Duration = Duration::from_secs(10);

/// Names given to one `getent` (well under ARG_MAX with names of up to 256 bytes).
const NAMES_PER_GETENT: usize = 2000;

/// Where glibc's `getent` is.
const GETENT: &[&str] = &["/usr/bin/getent", "/bin/getent"];
/// Most output read from one `getent` (group lines can be long).
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;

/// Names known to some NSS source (other than `oidc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// User names.
    pub users: HashSet<String>,
    /// Group names.
    pub groups: HashSet<String>,
}

impl Known {
    /// Whether any source knows `name` as a user or a group.
    pub fn has_name(&self, name: &str) -> bool {
        self.users.contains(name) || self.groups.contains(name)
    }
}

/// Why the sources could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No `getent` on this host.
    NoGetent,
    /// The child could not be started, or failed in an unexpected way.
    Failed(String),
    /// It did not finish within the budget (a source hangs); it was killed.
    Timeout(Duration),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoGetent => write!(
                f,
                "cannot ask the other NSS sources: no getent in {}",
                GETENT.join(" or ")
            ),
            Self::Failed(why) => write!(f, "cannot ask the other NSS sources: {why}"),
            Self::Timeout(d) => write!(
                f,
                "the NSS sources did not answer within {} ms (is a source in nsswitch.conf \
                 hanging?)",
                d.as_millis()
            ),
        }
    }
}

/// Asks every NSS source (ours bypassed) which of `users` and `groups` it knows, within
/// `budget` for both.
pub fn lookup(users: &[&str], groups: &[&str], budget: Duration) -> Result<Known, LookupError> {
    let getent = GETENT
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or(LookupError::NoGetent)?;
    let mut known = Known::default();
    let started = std::time::Instant::now();
    for (db, names, into) in [
        ("passwd", users, &mut known.users),
        ("group", groups, &mut known.groups),
    ] {
        // In chunks: a command line has a size limit (ARG_MAX), and an import may name
        // 100,000 users.
        for chunk in names.chunks(NAMES_PER_GETENT) {
            let left = budget.saturating_sub(started.elapsed());
            let out = run_getent(getent, db, chunk, left)?;
            let asked: HashSet<&str> = chunk.iter().copied().collect();
            for line in out.lines() {
                if let Some(name) = line.split(':').next() {
                    if asked.contains(name) {
                        into.insert(name.to_string());
                    }
                }
            }
        }
    }
    Ok(known)
}

fn run_getent(
    getent: &str,
    db: &str,
    names: &[&str],
    budget: Duration,
) -> Result<String, LookupError> {
    let mut child = Command::new(getent)
        .arg(db)
        .arg("--")
        .args(names)
        .env(NSS_BYPASS_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| LookupError::Failed(format!("{getent}: {e}")))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("getent".into())
        .spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stdout {
                let _ = s.take(MAX_OUTPUT).read_to_end(&mut out);
            }
            let status = child.wait();
            let _ = tx.send((status, out));
        })
        .map_err(|e| LookupError::Failed(format!("cannot start a thread: {e}")))?;
    let (status, out) = match rx.recv_timeout(budget) {
        Ok(done) => done,
        Err(_) => {
            // The waiting thread has not reaped it, so the PID is still the child's.
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(LookupError::Timeout(budget));
        }
    };
    let status = status.map_err(|e| LookupError::Failed(format!("{getent}: {e}")))?;
    // 0: all found; 2: one or more not found (or their source unavailable).
    match status.code() {
        Some(0 | 2) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Some(code) => Err(LookupError::Failed(format!(
            "{getent} {db} exited with {code}"
        ))),
        None => Err(LookupError::Failed(format!(
            "{getent} {db} was killed by a signal"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's own files answer through the helper (root and its group exist everywhere);
    /// a name nobody has is not known; only the names asked for are reported.
    #[test]
    fn finds_names_that_a_source_knows() {
        let k = lookup(
            &["root", "no-such-user-oidcd-test"],
            &["root", "no-such-group-oidcd-test"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(k.users.contains("root"), "{k:?}");
        assert!(k.groups.contains("root"), "{k:?}");
        assert!(!k.has_name("no-such-user-oidcd-test"));
        assert_eq!(k.users.len(), 1);
        assert_eq!(
            lookup(&[], &[], Duration::from_secs(1)),
            Ok(Known::default())
        );
    }

    /// A budget too small for a child to start is a timeout, not a hang.
    #[test]
    fn a_spent_budget_is_a_timeout() {
        let r = lookup(&["root"], &[], Duration::ZERO);
        assert!(matches!(r, Err(LookupError::Timeout(_)) | Ok(_)), "{r:?}");
    }
}
