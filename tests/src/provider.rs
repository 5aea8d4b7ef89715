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
//! `OP_ALICE_GROUPS`) are described in `provider.mjs`; TLS is [`Provider::start_on`] with a
//! [`Tls`]. `GET /test/stats` counts the requests it served ([`Provider::requests`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::paths;
use crate::tls::Tls;
use crate::util::{self, Run, TempDir};

/// How long the provider may take to print READY (0.4–1.2 s measured; more on a busy box).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

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
    log: std::path::PathBuf,
    ca: Option<PathBuf>,
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
    pub fn start_on(port: u16, env: &[(&str, &str)], tls: Option<&Tls>) -> Self {
        let op = paths::op_dir();
        assert!(
            op.join("node_modules/oidc-provider").is_dir(),
            "{}/node_modules is missing: run `npm ci` in {} (tests/run does it)",
            op.display(),
            op.display()
        );
        let dir = TempDir::new("op");
        let log = dir.join("provider.log");
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .current_dir(&op)
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
        let mut p = Self {
            child,
            port,
            log,
            ca: tls.map(|t| t.ca().to_path_buf()),
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = format!("READY {}", p.issuer());
        loop {
            if p.logs().lines().any(|l| l.trim() == ready) {
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("provider exited ({status}) before READY:\n{}", p.logs());
            }
            assert!(
                Instant::now() < deadline,
                "provider not READY after {START_TIMEOUT:?}:\n{}",
                p.logs()
            );
            util::sleep(Duration::from_millis(10));
        }
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

    /// The issuer URL (`http://127.0.0.1:PORT`, or `https://` with TLS; no trailing slash).
    pub fn issuer(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
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

    /// Where a person enters the user code.
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.issuer())
    }

    /// What the provider printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
