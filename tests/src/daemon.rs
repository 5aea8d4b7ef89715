//! `oidcd` in a namespace: a config builder with test defaults, start and wait for the
//! socket, `oidcctl`, signals, logs. Dropping a [`Daemon`] kills it.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ns::Namespace;
use crate::paths;
use crate::util::{self, Run, TempDir};

/// How long a daemon may take to create its socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket the modules use (compiled in), as seen inside a namespace.
pub const SOCKET: &str = oidc_proto::paths::SOCKET_PATH;

/// An `oidcd.toml` built from sections of `key = value` lines (values are TOML literals).
///
/// Defaults: `[daemon] log_level = "debug"`; `[provider]` with issuer
/// `http://127.0.0.1:<a free port>`, `insecure_http_issuer = true`, `client_id = "pam-oidc"`;
/// `[cache] db_path` inside the daemon's 0700 temp dir (filled in by [`Daemon::new`]); the
/// socket at the compiled-in default. Everything else is the daemon's default.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// TOML written after the sections, as it is (`[[provider]]` tables).
    tail: String,
}

impl DaemonConfig {
    /// The test defaults, with an issuer on a free port where nothing listens.
    pub fn new() -> Self {
        Self::with_issuer(&format!("http://127.0.0.1:{}", util::free_port()))
    }

    /// The test defaults with `issuer` (e.g. [`crate::Provider::issuer`]).
    pub fn with_issuer(issuer: &str) -> Self {
        let mut c = Self {
            sections: BTreeMap::new(),
            tail: String::new(),
        };
        c.set("daemon", "log_level", "\"debug\"");
        c.set("provider", "issuer", &toml_str(issuer));
        c.set("provider", "insecure_http_issuer", "true");
        c.set("provider", "client_id", "\"pam-oidc\"");
        c
    }

    /// The test defaults for logins against `op`: its issuer, the confidential client
    /// `pam-oidc` with its secret, and a 0.2 s poll interval (the provider sends none, and the
    /// daemon's default is 5 s).
    pub fn for_provider(op: &crate::Provider) -> Self {
        let mut c = Self::with_issuer(&op.issuer());
        c.set(
            "provider",
            "client_id",
            &toml_str(crate::provider::CLIENT_ID),
        );
        c.set(
            "provider",
            "client_secret",
            &toml_str(crate::provider::CLIENT_SECRET),
        );
        c.set("login", "default_poll_interval", "0.2");
        c
    }

    /// Sets `key = value` in `[section]` (`value` is a TOML literal: `"text"`, `true`, `[..]`).
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> &mut Self {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Removes `key` from `[section]`.
    pub fn unset(&mut self, section: &str, key: &str) -> &mut Self {
        if let Some(s) = self.sections.get_mut(section) {
            s.remove(key);
        }
        self
    }

    /// Removes `[section]` altogether.
    pub fn unset_section(&mut self, section: &str) -> &mut Self {
        self.sections.remove(section);
        self
    }

    /// Appends `toml` after the sections, as it is: `[[provider]]` tables and their
    /// `[provider.*]` sub-tables, which must come last.
    pub fn append(&mut self, toml: &str) -> &mut Self {
        self.tail.push('\n');
        self.tail.push_str(toml);
        self
    }

    /// `[cache] enumerate`.
    pub fn enumerate(&mut self, on: bool) -> &mut Self {
        self.set("cache", "enumerate", &on.to_string())
    }

    /// `[access] admin_groups`.
    pub fn admin_groups(&mut self, groups: &[&str]) -> &mut Self {
        self.set("access", "admin_groups", &toml_list(groups))
    }

    /// The issuer.
    pub fn issuer(&self) -> Option<String> {
        let v = self.sections.get("provider")?.get("issuer")?;
        Some(v.trim_matches('"').to_string())
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from("# written by the oidcd end-to-end tests\n");
        for (section, keys) in &self.sections {
            out.push_str(&format!("\n[{section}]\n"));
            for (k, v) in keys {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        out.push_str(&self.tail);
        out
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
pub fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// One `oidcd` process in a namespace, with its config, database and log in a temp dir.
#[derive(Debug)]
pub struct Daemon<'ns> {
    ns: &'ns Namespace,
    dir: TempDir,
    config_path: PathBuf,
    db_path: PathBuf,
    log_path: PathBuf,
    socket: String,
    child: Option<Child>,
}

impl<'ns> Daemon<'ns> {
    /// Writes the config (with `db_path` in a fresh 0700 dir) and starts the daemon, waiting
    /// for its socket.
    pub fn start(ns: &'ns Namespace, cfg: &DaemonConfig) -> Self {
        let mut d = Self::new(ns, cfg);
        d.launch();
        d
    }

    /// Writes the config but does not start anything: prepare files, then [`Self::launch`].
    pub fn new(ns: &'ns Namespace, cfg: &DaemonConfig) -> Self {
        let dir = TempDir::new("oidcd");
        let db_dir = dir.join("db");
        std::fs::create_dir(&db_dir).unwrap();
        let mut cfg = cfg.clone();
        let db_path = match cfg.sections.get("cache").and_then(|c| c.get("db_path")) {
            Some(p) => PathBuf::from(p.trim_matches('"')),
            None => {
                let p = db_dir.join("cache.db");
                cfg.set("cache", "db_path", &toml_str(&p.to_string_lossy()));
                p
            }
        };
        let socket = cfg
            .sections
            .get("cache")
            .and_then(|c| c.get("socket_path"))
            .map_or(SOCKET.to_string(), |s| s.trim_matches('"').to_string());
        let config_path = dir.write("oidcd.toml", cfg.render(), 0o600);
        let log_path = dir.join("oidcd.log");
        Self {
            ns,
            dir,
            config_path,
            db_path,
            log_path,
            socket,
            child: None,
        }
    }

    /// Starts the daemon (again, after a stop) and waits until its socket accepts connections;
    /// panics with the log if it exits or is not ready within [`START_TIMEOUT`].
    pub fn launch(&mut self) {
        self.spawn();
        let sock = self.ns.host_path(&self.socket);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&sock).is_ok() {
                return;
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "oidcd exited ({status}) before its socket was ready; log:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "oidcd's socket {} not ready after {START_TIMEOUT:?}; log:\n{}",
                self.socket,
                self.logs()
            );
            util::sleep(Duration::from_millis(5));
        }
    }

    /// Starts the daemon without waiting for anything.
    pub fn spawn(&mut self) {
        if let Some(status) = self.try_wait() {
            log_separator(&self.log_path, status);
        }
        assert!(
            self.child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some()),
            "oidcd already running"
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = self.ns.command(paths::oidcd());
        cmd.arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        util::kill_with_parent(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn oidcd"));
    }

    /// Starts the daemon and expects it to refuse: waits for its exit (at most `timeout`) and
    /// returns the status; panics if it keeps running.
    pub fn launch_expecting_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.spawn();
        self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "oidcd still runs after {timeout:?}, expected it to refuse; log:\n{}",
                self.logs()
            )
        })
    }

    /// The exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Waits at most `timeout` for the process to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            util::sleep(Duration::from_millis(5));
        }
    }

    /// The daemon's PID (after start).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("oidcd not started").id()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: libc::c_int) {
        assert!(util::signal(self.pid(), sig), "cannot signal oidcd");
    }

    /// SIGTERM, then waits (10 s at most) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("oidcd ignored SIGTERM for 10 s; log:\n{}", self.logs()))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(10)).expect("SIGKILL");
    }

    /// SIGSTOP: the process freezes; the kernel still queues connections on its socket.
    pub fn sigstop(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn sigcont(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGHUP (reload the config).
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Everything the daemon wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits at most `timeout` for `needle` to appear in the log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        util::wait_until(timeout, || self.logs().contains(needle))
    }

    /// Runs `oidcctl --config <this config> ARGS…` as root inside the namespace.
    pub fn oidcctl(&self, args: &[&str]) -> Run {
        let mut cmd = self.ns.command(paths::oidcctl());
        cmd.arg("--config").arg(&self.config_path).args(args);
        util::run(&mut cmd)
    }

    /// `oidcctl ARGS… --json`, expected to succeed, parsed.
    #[track_caller]
    pub fn oidcctl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.oidcctl(&a).expect_ok().json()
    }

    /// Writes `entries` (a JSON array of claim sets, or an ID map) to a file and runs
    /// `oidcctl import FILE`.
    pub fn import(&self, entries: &Value) -> Run {
        let file = self.dir.write("import.json", entries.to_string(), 0o600);
        self.oidcctl(&["import", &file.to_string_lossy()])
    }

    /// The users as `oidcctl user list --json` shows them.
    pub fn users(&self) -> Value {
        self.oidcctl_json(&["user", "list"])
    }

    /// Replaces the config file (then [`Self::sighup`] to apply it).
    pub fn rewrite_config(&self, text: &str) {
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// The config with `db_path` filled in as [`Self::new`] did, for rewriting.
    pub fn config_text_for(&self, cfg: &DaemonConfig) -> String {
        let mut cfg = cfg.clone();
        cfg.set(
            "cache",
            "db_path",
            &toml_str(&self.db_path.to_string_lossy()),
        );
        cfg.render()
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The daemon's private temp dir (config, log, `db/`).
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    /// The namespace it runs in.
    pub fn ns(&self) -> &'ns Namespace {
        self.ns
    }
}

/// Marks a restart in the log file.
fn log_separator(log: &Path, status: ExitStatus) {
    use std::io::Write;
    if let Ok(mut f) = File::options().append(true).open(log) {
        let _ = writeln!(
            f,
            "----- (test harness) previous run ended: {status}; restarting -----"
        );
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill(); // SIGKILL ends a stopped process too
                let _ = child.wait();
            }
        }
    }
}
