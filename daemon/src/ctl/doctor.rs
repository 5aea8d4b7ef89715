//! `oidcctl doctor`: checks a host's oidcd setup end to end (configuration, provider, clock,
//! daemon, database, nsswitch.conf, PAM stacks, sshd) and says how to fix each problem found.
//!
//! Each check adds [`Finding`]s. An error means logins or lookups do not work, or a local login
//! (root's above all) could be lost; a warning, something that works but deserves a look.
//! [`run`] returns 1 when any finding is an error. The file-based checks take a [`Host`], so
//! tests point them at a temporary directory.
//!
//! # Layout
//! - this file: findings, the report and its printing, the configuration check;
//! - `provider`: discovery, what it advertises, the clock; `daemon`: socket, daemon, database;
//! - `nss_map`: the NSS map the daemon writes;
//! - `nss`: nsswitch.conf and the module; `pam`: the stacks, run as Linux-PAM runs them;
//! - `sshd`: sshd's effective configuration (`sshd -T`) against what logins over SSH need;
//! - `ids`: this host's IDs against the fleet's rule, its pins and a fleet map.

mod daemon;
mod ids;
mod nss;
mod nss_map;
mod pam;
mod provider;
mod sshd;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::service;

use super::{EXIT_FAILED, EXIT_OK};

/// The helper the packages install to edit nsswitch.conf.
const NSSWITCH_HELPER: &str = "/usr/libexec/oidcd/oidc-nsswitch";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Works, but deserves a look. Does not change the exit status.
    Warning,
    /// Logins or lookups fail, or a local login is at risk. Exit status 1.
    Error,
}

/// One result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The check: config, provider, clock, daemon, database, nssmap, ids, nss, pam or sshd.
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to do about it, for warnings and errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The findings so far.
#[derive(Debug, Default)]
pub struct Report {
    /// In the order found.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(
        &mut self,
        check: &'static str,
        severity: Severity,
        message: String,
        fix: Option<String>,
    ) {
        self.findings.push(Finding {
            check,
            severity,
            message,
            fix,
        });
    }

    fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(check, Severity::Ok, message.into(), None);
    }

    fn warn(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Severity::Warning, message.into(), Some(fix.into()));
    }

    fn error(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Severity::Error, message.into(), Some(fix.into()));
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// Where the file-based checks look.
#[derive(Debug, Clone)]
pub struct Host {
    /// nsswitch.conf.
    pub nsswitch: PathBuf,
    /// The PAM service directory.
    pub pam_dir: PathBuf,
    /// Library directories: libnss_oidc.so.2 is looked for in them, pam_oidc.so in their
    /// `security/` subdirectory.
    pub lib_dirs: Vec<PathBuf>,
}

impl Host {
    /// This machine.
    pub fn system() -> Self {
        let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
        Self {
            nsswitch: PathBuf::from("/etc/nsswitch.conf"),
            pam_dir: PathBuf::from("/etc/pam.d"),
            lib_dirs: [
                format!("/usr/lib/{multiarch}"),
                format!("/lib/{multiarch}"),
                "/usr/lib64".into(),
                "/lib64".into(),
                "/usr/lib".into(),
                "/lib".into(),
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        }
    }

    /// The first of `lib_dirs` holding `rel`.
    fn find_lib(&self, rel: &str) -> Option<PathBuf> {
        self.lib_dirs
            .iter()
            .map(|d| d.join(rel))
            .find(|p| p.exists())
    }
}

/// Runs every check and prints the findings; returns the exit status. `map`: a fleet map to
/// compare this host's IDs with; `sshd_config`: the file sshd reads instead of its default.
pub fn run(
    config_path: &Path,
    socket: Option<&Path>,
    map: Option<&Path>,
    sshd_config: Option<&Path>,
    json: bool,
) -> u8 {
    let mut r = Report::default();
    let config = check_config(&mut r, config_path);
    if let Some(c) = &config {
        provider::check(&mut r, c);
    }
    let socket = socket
        .map(Path::to_path_buf)
        .or_else(|| config.as_ref().map(|c| c.cache.socket_path.clone()))
        .unwrap_or_else(|| PathBuf::from(oidc_proto::paths::SOCKET_PATH));
    let status = daemon::check_daemon(&mut r, &socket, config.as_ref());
    let db = config.as_ref().map_or_else(
        || PathBuf::from(oidc_proto::paths::DB_PATH),
        |c| c.cache.db_path.clone(),
    );
    daemon::check_database(&mut r, &db);
    nss_map::check(&mut r, status, &socket, config.as_ref());
    ids::check(&mut r, &socket, map);
    let host = Host::system();
    nss::check(&mut r, &host);
    pam::check(&mut r, &host);
    sshd::check(&mut r, &host, config.as_ref(), sshd_config);

    let mut out = std::io::stdout().lock();
    let printed = if json {
        print_json(&mut out, &r)
    } else {
        print_text(&mut out, &r)
    };
    if let Err(e) = printed.and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("oidcctl: {e}");
        }
    }
    if r.count(Severity::Error) > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn print_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    for f in &r.findings {
        let label = match f.severity {
            Severity::Ok => "ok",
            Severity::Warning => "WARN",
            Severity::Error => "ERROR",
        };
        writeln!(out, "{label:<5}  {:<8}  {}", f.check, f.message)?;
        if let Some(fix) = &f.fix {
            writeln!(out, "{:17}fix: {fix}", "")?;
        }
    }
    let (e, w) = (r.count(Severity::Error), r.count(Severity::Warning));
    if e == 0 {
        writeln!(out, "no errors, {w} warning(s)")
    } else {
        writeln!(out, "{e} error(s), {w} warning(s)")
    }
}

fn print_json(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let v = serde_json::json!({
        "ok": r.count(Severity::Error) == 0,
        "errors": r.count(Severity::Error),
        "warnings": r.count(Severity::Warning),
        "findings": r.findings,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)
}

fn check_config(r: &mut Report, path: &Path) -> Option<Config> {
    const C: &str = "config";
    let shown = path.display();
    if let Err(e) = service::check_config_file(path, 0) {
        if std::fs::metadata(path).is_err() {
            r.error(
                C,
                e,
                format!(
                    "install -m 600 /usr/share/doc/oidcd/examples/oidcd.toml {shown} (or: apt \
                     install --reinstall -o Dpkg::Options::=--force-confmiss oidcd)"
                ),
            );
            return None;
        }
        r.error(
            C,
            e,
            format!("chown root:root {shown} && chmod 600 {shown} (oidcd refuses to start)"),
        );
    }
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            let denied = errors
                .0
                .iter()
                .any(|e| e.message.contains("ermission denied"));
            for e in &errors.0 {
                let fix = if denied {
                    "run oidcctl doctor as root (the file may hold the client secret)".to_string()
                } else {
                    format!(
                        "edit {shown} (see oidcd.toml(5)); oidcctl config check lists the same problems"
                    )
                };
                r.error(C, e.to_string(), fix);
            }
            return None;
        }
    };
    r.ok(C, format!("{shown} is valid"));
    if config.providers.is_empty() {
        r.error(
            C,
            "no [provider] configured: lookups work, but nobody can log in",
            format!(
                "uncomment [provider] in {shown} and set issuer and client_id, then \
                 systemctl restart oidcd"
            ),
        );
    }
    for p in config.providers.iter().filter(|p| p.insecure_http_issuer) {
        r.warn(
            C,
            format!("insecure_http_issuer is set: plain HTTP to {}", p.issuer),
            "only for a test provider on this host; use an https:// issuer in production",
        );
    }
    if config.providers.len() > 1 {
        let names: Vec<String> = config
            .providers
            .iter()
            .map(|p| format!("{} ({}, names {})", p.id, p.issuer, p.name_pattern()))
            .collect();
        r.ok(C, format!("providers: {}", names.join("; ")));
    }
    Some(config)
}
