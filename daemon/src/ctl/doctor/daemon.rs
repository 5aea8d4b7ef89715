//! The daemon and its files: the socket and its directory, a running daemon of this version
//! with this configuration, and a private database.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oidc_proto::client::{self, ClientError, TrustedOwner};
use oidc_proto::types::StatusInfo;
use oidc_proto::{Request, Response};

use super::Report;
use crate::config::Config;
use crate::service;

/// How long the daemon may take to answer `Status`.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(5);

/// The socket's directory and the socket (root's, reachable by everyone), then `Status`: the
/// daemon runs, speaks this protocol, is this version and uses this file's issuer.
/// The daemon's status, when it answered.
pub(super) fn check_daemon(
    r: &mut Report,
    socket: &Path,
    config: Option<&Config>,
) -> Option<StatusInfo> {
    const D: &str = "daemon";
    let start =
        "systemctl enable --now oidcd; if it does not stay up, journalctl -u oidcd says why";
    if let Some(dir) = socket.parent() {
        match std::fs::metadata(dir) {
            Ok(m) => {
                if let Err(e) = service::check_owned(dir, 0) {
                    r.error(
                        D,
                        e,
                        "remove the directory and restart oidcd (it recreates it)",
                    );
                } else if m.mode() & 0o001 == 0 {
                    r.error(
                        D,
                        format!(
                            "{} is not searchable by others (mode {:04o}): lookups by processes \
                             that are not root fail",
                            dir.display(),
                            m.mode() & 0o7777
                        ),
                        format!("chmod 755 {}", dir.display()),
                    );
                }
            }
            Err(_) => {
                r.error(
                    D,
                    format!("{} does not exist: oidcd is not running", dir.display()),
                    start,
                );
                return None;
            }
        }
    }
    match std::fs::symlink_metadata(socket) {
        Err(_) => {
            r.error(
                D,
                format!("no socket at {}: oidcd is not running", socket.display()),
                start,
            );
            return None;
        }
        Ok(m) if !m.file_type().is_socket() => {
            r.error(
                D,
                format!("{} is not a socket", socket.display()),
                "remove it and restart oidcd",
            );
            return None;
        }
        Ok(m) if m.uid() != 0 => {
            r.error(
                D,
                format!(
                    "{} belongs to uid {}, not root: the modules refuse it",
                    socket.display(),
                    m.uid()
                ),
                "find out who created it; then remove it and restart oidcd",
            );
            return None;
        }
        Ok(m) if m.mode() & 0o666 != 0o666 => r.error(
            D,
            format!(
                "{} has mode {:04o}: processes that are not root cannot look users up",
                socket.display(),
                m.mode() & 0o7777
            ),
            "systemctl restart oidcd (it creates the socket with mode 0666)",
        ),
        Ok(_) => {}
    }
    let status = match client::call(socket, TrustedOwner::Root, &Request::Status, DAEMON_TIMEOUT) {
        Ok(Response::Status(s)) => s,
        Ok(other) => {
            r.error(
                D,
                format!("unexpected answer to status: {other:?}"),
                "systemctl restart oidcd",
            );
            return None;
        }
        Err(e @ ClientError::VersionMismatch { .. }) => {
            r.error(
                D,
                e.to_string(),
                "systemctl restart oidcd, so the installed version runs",
            );
            return None;
        }
        Err(e) => {
            r.error(D, e.to_string(), start);
            return None;
        }
    };
    r.ok(
        D,
        format!(
            "running: version {}, protocol {}, {} user(s), {} group(s)",
            status.daemon_version, status.protocol_version, status.users, status.groups
        ),
    );
    if status.daemon_version != env!("CARGO_PKG_VERSION") {
        r.warn(
            D,
            format!(
                "oidcd {} is running, but oidcctl is {}: the daemon was not restarted after an upgrade",
                status.daemon_version,
                env!("CARGO_PKG_VERSION")
            ),
            "systemctl restart oidcd",
        );
    }
    if let Some(e) = &status.db_error {
        r.error(
            D,
            format!("the database cannot be used: {e}"),
            "see journalctl -u oidcd; fix it, then systemctl kill -s HUP oidcd",
        );
    }
    if let Some(c) = config {
        let file_issuer = c.default_provider().map(|p| p.issuer.as_str());
        let file_issuers: Vec<&str> = c.providers.iter().map(|p| p.issuer.as_str()).collect();
        let running_issuers: Vec<&str> =
            status.providers.iter().map(|p| p.issuer.as_str()).collect();
        if Path::new(&status.config_path) != c.path.as_path() {
            r.warn(
                D,
                format!(
                    "oidcd runs with {}, not {}",
                    status.config_path,
                    c.path.display()
                ),
                "check the unit's command line (systemctl cat oidcd)",
            );
        } else if status.issuer.as_deref() != file_issuer {
            r.warn(
                D,
                format!(
                    "the running oidcd has issuer {}, the file says {}: it has not read the file since it changed",
                    status.issuer.as_deref().unwrap_or("(none)"),
                    file_issuer.unwrap_or("(none)")
                ),
                "systemctl restart oidcd",
            );
        } else if !running_issuers.is_empty() && running_issuers != file_issuers {
            r.warn(
                D,
                format!(
                    "the running oidcd has the providers {}, the file says {}: it has not read \
                     the file since it changed",
                    running_issuers.join(", "),
                    file_issuers.join(", ")
                ),
                "systemctl kill -s HUP oidcd",
            );
        }
        for p in status.providers.iter().filter(|p| p.error.is_some()) {
            r.error(
                D,
                format!(
                    "provider {} ({}) {}",
                    p.id,
                    p.issuer,
                    p.error.as_deref().unwrap_or("")
                ),
                "see journalctl -u oidcd (an unreadable provider.ca_file?)",
            );
        }
    }
    Some(status)
}

/// The database, its WAL files and their directory: root's, and private.
pub(super) fn check_database(r: &mut Report, db: &Path) {
    const B: &str = "database";
    if let Some(dir) = db.parent() {
        match std::fs::metadata(dir) {
            Err(_) => {
                r.warn(
                    B,
                    format!("{} does not exist yet", dir.display()),
                    "start oidcd: it creates the directory and the database",
                );
                return;
            }
            Ok(m) => {
                if let Err(e) = service::check_owned(dir, 0) {
                    r.error(
                        B,
                        e,
                        format!("chown root:root {0} && chmod 700 {0}", dir.display()),
                    );
                } else if m.mode() & 0o077 != 0 {
                    r.warn(
                        B,
                        format!(
                            "{} has mode {:04o}: others can list it",
                            dir.display(),
                            m.mode() & 0o7777
                        ),
                        format!("chmod 700 {}", dir.display()),
                    );
                }
            }
        }
    }
    let mut found = false;
    let mut problems = false;
    let mut open = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        found = true;
        if let Err(e) = service::check_owned(&path, 0) {
            problems = true;
            r.error(
                B,
                e,
                format!("chown root:root {0} && chmod 600 {0}", path.display()),
            );
        } else if m.mode() & 0o077 != 0 {
            open.push(format!("{} ({:04o})", path.display(), m.mode() & 0o7777));
        }
    }
    if !open.is_empty() {
        problems = true;
        // The unit's UMask=0077 makes them 0600; a daemon started by hand uses the caller's.
        r.warn(
            B,
            format!(
                "readable by others: {}; they hold users' claims",
                open.join(", ")
            ),
            format!("chmod 600 {}*", db.display()),
        );
    }
    if !found {
        r.warn(
            B,
            format!("{} does not exist yet", db.display()),
            "start oidcd: it creates the database",
        );
    } else if !problems {
        r.ok(
            B,
            format!("{} belongs to root and is private", db.display()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;
    use crate::clock::Clock;

    /// Socket and database checks find a missing daemon and loose permissions.
    #[test]
    fn daemon_and_database_paths() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        let mut r = Report::default();
        check_daemon(&mut r, &dir.join("socket"), None);
        assert_eq!(r.count(Severity::Error), 1, "{:?}", r.findings);

        let db = dir.join("cache.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut r = Report::default();
        check_database(&mut r, &db);
        let me = nix::unistd::geteuid().as_raw();
        if me == 0 {
            assert!(
                r.findings
                    .iter()
                    .any(|f| f.severity == Severity::Warning && f.message.contains("0644"))
            );
        } else {
            assert!(r.count(Severity::Error) > 0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "oidcctl-doctor-{}-{}",
            std::process::id(),
            Clock::system().now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&dir, mode).unwrap();
        dir
    }
}
