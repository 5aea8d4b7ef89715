//! The test OpenID Provider: `node tests/op/provider.mjs` (oidc-provider 9.13.3, pinned by
//! `tests/op/package-lock.json`) on a free loopback port, and the scripted approval of a
//! device code with `tests/tools/approve_device.py`.
//!
//! Accounts: `alice`/`alice-pw` (groups oidc-admins, developers), `bob`/`bob-pw`
//! (developers, email not verified), `00u1c0ffee`/`carol-pw` (preferred_username
//! `carol@example.test`, no groups). Clients: `pam-oidc`/`pam-oidc-secret`, the public
//! `pam-oidc-public` and `pam-oidc-post`/`pam-oidc-post-secret` (client_secret_post).
//! Environment knobs (`OP_GROUPS_IN_ID_TOKEN`, `OP_ID_TOKEN_ALG`, `OP_AUTO_CONSENT`,
//! `OP_DEVICE_TTL`, `OP_ACCESS_TTL`, `OP_KEYS_FILE`, `OP_KID_PREFIX`, `OP_GROUPS_CLAIM`,
//! `OP_ALICE_GROUPS`, `OP_ROTATE_REFRESH`, and the provider shapes: `OP_ISSUER_PATH`,
//! `OP_ACCOUNTS`, `OP_CLIENT_AUTH_METHODS`, `OP_REQUIRE_BODY_CLIENT_ID`, `OP_USER_CODE_MASK`,
//! `OP_DEVICE_ANSWER`, `OP_VERIFICATION_URL`, `OP_GROUPS_SCOPE`, `OP_SLOW_DOWN`, `OP_DENIAL_ERROR`) are described
//! in `provider.mjs`, and so are the test-only administration endpoints
//! ([`Provider::set_account`], [`Provider::forge_next_refresh`], [`Provider::outage`]); TLS is
//! [`Provider::start_on`] with a
//! [`Tls`]. `GET /test/stats` counts the requests it served ([`Provider::requests`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::paths;
use crate::tls::Tls;
use crate::util::{self, Run, TempDir};

/// How long one start of the provider may take to print READY: 0.27–0.33 s idle with the fixed
/// test keys (0.65 s when it generated keys, 3.1 s at worst with four starting at once on two
/// cores).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider's output, in its temp dir.
const LOG_FILE: &str = "provider.log";

/// The confidential client registered at the provider.
pub const CLIENT_ID: &str = "pam-oidc";
/// Its secret.
pub const CLIENT_SECRET: &str = "pam-oidc-secret";
/// The confidential client that authenticates with `client_secret_post`.
pub const POST_CLIENT_ID: &str = "pam-oidc-post";
/// Its secret.
pub const POST_CLIENT_SECRET: &str = "pam-oidc-post-secret";
/// The public client (no secret).
pub const PUBLIC_CLIENT_ID: &str = "pam-oidc-public";

/// A running provider. Dropping it kills it.
#[derive(Debug)]
pub struct Provider {
    child: Child,
    port: u16,
    ca: Option<PathBuf>,
    /// `OP_ISSUER_PATH`, as given (a trailing slash is part of the issuer).
    issuer_path: String,
    _dir: TempDir,
}

impl Provider {
    /// Starts the provider with the default settings.
    pub fn start_default() -> Self {
        Self::start(&[])
    }

    /// Starts the provider with extra environment (`OP_*`), on a free port, and waits for READY.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(util::free_port(), env, None)
    }

    /// Starts the provider on `port` (e.g. the port of one that was stopped, so the issuer stays
    /// the same), serving HTTPS with `tls`'s server certificate when given, and waits for READY.
    ///
    /// A start that has not printed READY within [`START_TIMEOUT`] is killed and tried once
    /// more, and what the stuck process was doing goes to stderr and to a MEASURE line. This
    /// caught the one known cause, since removed: Node 20 deadlocking in `generateKeyPairSync`
    /// when a garbage collection ran inside it (the providers now load `test-keys.json`).
    pub fn start_on(port: u16, env: &[(&str, &str)], tls: Option<&Tls>) -> Self {
        let op = paths::op_dir();
        assert!(
            op.join("node_modules/oidc-provider").is_dir(),
            "{}/node_modules is missing: run `npm ci` in {} (tests/run does it)",
            op.display(),
            op.display()
        );
        let started = Instant::now();
        let mut first = match Self::try_start(port, env, tls) {
            Ok(p) => return p,
            Err(stuck) => stuck,
        };
        let diagnosis = first.diagnose();
        first.kill();
        eprintln!(
            "provider on port {port} not READY after {START_TIMEOUT:?}; retrying once.\n\
             {diagnosis}\nits log:\n{}",
            first.logs()
        );
        util::measure(&format!(
            "provider_start retried after {:.0}ms: {}",
            util::ms(started.elapsed()),
            diagnosis.replace('\n', "; ")
        ));
        match Self::try_start(port, env, tls) {
            Ok(p) => p,
            Err(again) => panic!(
                "provider not READY after two tries of {START_TIMEOUT:?}:\n{}\nits log:\n{}",
                again.diagnose(),
                again.logs()
            ),
        }
    }

    /// One start: the running provider once it printed READY, or (still running) when it did
    /// not within [`START_TIMEOUT`]. Panics when node exits first: that is a broken setup, not a
    /// slow machine.
    fn try_start(port: u16, env: &[(&str, &str)], tls: Option<&Tls>) -> Result<Self, Self> {
        let dir = TempDir::new("op");
        let log = dir.join(LOG_FILE);
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .current_dir(paths::op_dir())
            .env("OP_PORT", port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(t) = tls {
            cmd.env("OP_TLS_CERT", t.cert()).env("OP_TLS_KEY", t.key());
        }
        util::kill_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawn node (is nodejs installed?)");
        let issuer_path = env
            .iter()
            .find(|(k, _)| *k == "OP_ISSUER_PATH")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let mut p = Self {
            child,
            port,
            ca: tls.map(|t| t.ca().to_path_buf()),
            issuer_path,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = format!("READY {}", p.issuer());
        loop {
            if p.logs().lines().any(|l| l.trim() == ready) {
                return Ok(p);
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("provider exited ({status}) before READY:\n{}", p.logs());
            }
            if Instant::now() >= deadline {
                return Err(p);
            }
            util::sleep(Duration::from_millis(10));
        }
    }

    /// What the (running) node process is doing, from /proc: state, CPU time used, and where
    /// each thread waits in the kernel; and the main thread's stack when gdb is installed.
    fn diagnose(&self) -> String {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut out = format!(
            "node pid {pid}: state {} utime {} stime {} (clock ticks)",
            fields.first().unwrap_or(&"?"),
            ticks(11),
            ticks(12)
        );
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default();
        for tid in tasks {
            let tid = tid.to_string_lossy();
            let read = |f: &str| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/{f}"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let comm = read("comm");
            let wchan = read("wchan");
            let syscall = read("syscall");
            let syscall = syscall.split_whitespace().next().unwrap_or("?");
            out.push_str(&format!(
                "\n  thread {tid} {comm}: wchan {wchan} syscall {syscall}"
            ));
        }
        if let Ok(o) = Command::new("gdb")
            .args(["-p", &pid.to_string(), "-batch", "-nx", "-ex", "bt 15"])
            .stdin(Stdio::null())
            .output()
        {
            let trace = String::from_utf8_lossy(&o.stdout);
            out.push_str("\nmain thread (gdb):");
            for frame in trace.lines().filter(|l| l.starts_with('#')) {
                out.push_str("\n  ");
                out.push_str(frame);
            }
        }
        out
    }

    /// Kills the provider (SIGKILL) and reaps it: its port refuses connections from now on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer URL (`http://127.0.0.1:PORT`, or `https://` with TLS, then `OP_ISSUER_PATH`
    /// as given).
    pub fn issuer(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{}", self.port, self.issuer_path)
    }

    /// The CA that signed its certificate, when it serves HTTPS.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// `GET /test/stats` (plain HTTP only): `{"requests": {"POST /token": n, …},
    /// "basic_auth": {"POST /token": n, …}, "token_times": [ms since the epoch, …]}`;
    /// `basic_auth` counts the requests that carried HTTP Basic credentials.
    pub fn stats(&self) -> Value {
        util::http_get_json(self.port, "/test/stats")
    }

    /// How many times `method path` was requested (e.g. `"POST /token"`), from [`Self::stats`].
    pub fn requests(&self, what: &str) -> u64 {
        self.stats()["requests"][what].as_u64().unwrap_or(0)
    }

    /// `POST /test/accounts/<id>`: merges `change` into a test account (`{"disabled": true}`,
    /// `{"groups": [...]}`, `{"preferred_username": "x"}`), effective at its next token request.
    pub fn set_account(&self, id: &str, change: Value) -> Value {
        self.post_test(&format!("/test/accounts/{id}"), &change)
    }

    /// `POST /test/forge-refresh`: the next token request is answered with a forged refresh
    /// answer, `"other_sub"` (an ID token about bob, validly signed), `"bad_signature"`, or
    /// `"no_id_token"` (only an access token, which userinfo refuses with 401).
    pub fn forge_next_refresh(&self, mode: &str) -> Value {
        self.post_test("/test/forge-refresh", &serde_json::json!({ "mode": mode }))
    }

    /// `POST /test/outage`: `Some("reset")` resets every connection, `Some("503")` answers 503,
    /// `Some("device")` answers 503 at the device authorization endpoint only (the provider is
    /// up, logins cannot start), `None` ends the outage.
    pub fn outage(&self, mode: Option<&str>) -> Value {
        self.post_test("/test/outage", &serde_json::json!({ "mode": mode }))
    }

    fn post_test(&self, path: &str, body: &Value) -> Value {
        use std::io::{Read, Write};
        let port = self.port;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("POST {path} on port {port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = body.to_string();
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, answer) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        assert!(head.contains(" 200 "), "POST {path}: {raw}");
        serde_json::from_str(answer).unwrap_or_else(|e| panic!("POST {path}: {e}: {answer}"))
    }

    /// Where a person enters the user code.
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.issuer().trim_end_matches('/'))
    }

    /// What the provider printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self._dir.join(LOG_FILE)).unwrap_or_default()
    }

    /// Approves (or with `flags` `--deny`, `--abort-code`, `--wrong-password`, refuses)
    /// `user_code` as `login`/`password`, walking the provider's pages over plain HTTP as a
    /// browser would. Exit 0 means the "Sign-in Success" page was reached.
    pub fn approve(&self, user_code: &str, login: &str, password: &str, flags: &[&str]) -> Run {
        let mut cmd = Command::new(util::python3());
        if let Some(ca) = &self.ca {
            cmd.env("REQUESTS_CA_BUNDLE", ca);
        }
        cmd.arg(paths::approve_script())
            .arg(self.verification_uri())
            .args([user_code, login, password])
            .args(flags);
        util::run(&mut cmd)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
