//! The test OpenID Provider: `node tests/op/provider.mjs` (oidc-provider 9.13.3, pinned by
//! `tests/op/package-lock.json`) on a free loopback port, and the scripted approval of a
//! device code with `tests/tools/approve_device.py`.
//!
//! Accounts: `alice`/`alice-pw` (groups oidc-admins, developers), `bob`/`bob-pw`
//! (developers, email not verified), `00u1c0ffee`/`carol-pw` (preferred_username
//! `carol@example.test`, no groups). Clients: `pam-oidc`/`pam-oidc-secret` and the public
//! `pam-oidc-public`. Environment knobs (`OP_GROUPS_IN_ID_TOKEN`, `OP_ID_TOKEN_ALG`,
//! `OP_AUTO_CONSENT`, `OP_DEVICE_TTL`, `OP_ACCESS_TTL`) are described in `provider.mjs`.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths;
use crate::util::{self, Run, TempDir};

/// How long the provider may take to print READY (0.4–1.2 s measured; more on a busy box).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The confidential client registered at the provider.
pub const CLIENT_ID: &str = "pam-oidc";
/// Its secret.
pub const CLIENT_SECRET: &str = "pam-oidc-secret";

/// A running provider. Dropping it kills it.
#[derive(Debug)]
pub struct Provider {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Provider {
    /// Starts the provider with the default settings.
    pub fn start_default() -> Self {
        Self::start(&[])
    }

    /// Starts the provider with extra environment (`OP_*`), on a free port, and waits for READY.
    pub fn start(env: &[(&str, &str)]) -> Self {
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
        let port = util::free_port();
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .current_dir(&op)
            .env("OP_PORT", port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        util::kill_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawn node (is nodejs installed?)");
        let mut p = Self {
            child,
            port,
            log,
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

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer URL (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
