//! The deliberately faulty provider `tests/op/mock_provider.mjs` (Node's own crypto, no
//! packages) on a free loopback port, for faults the real provider cannot produce. Its device
//! flow approves itself at the second poll; `MOCK_FAULT` picks what goes wrong (the list is in
//! the script's header). Dropping a [`MockProvider`] kills it.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::paths;
use crate::util::{self, TempDir};

/// A running mock provider.
#[derive(Debug)]
pub struct MockProvider {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl MockProvider {
    /// Starts it with `MOCK_FAULT=fault` on a free port and waits for READY.
    pub fn start(fault: &str) -> Self {
        let dir = TempDir::new("mock-op");
        let log = dir.join("mock.log");
        let out = File::create(&log).unwrap();
        let port = util::free_port();
        let mut cmd = Command::new("node");
        cmd.arg(paths::op_dir().join("mock_provider.mjs"))
            .env("MOCK_PORT", port.to_string())
            .env("MOCK_FAULT", fault)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        util::kill_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawn node (is nodejs installed?)");
        let mut m = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let ready = format!("READY {}", m.issuer());
        let deadline = Instant::now() + crate::provider::START_TIMEOUT;
        loop {
            if m.logs().lines().any(|l| l.trim() == ready) {
                return m;
            }
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!(
                    "mock provider exited ({status}) before READY:\n{}",
                    m.logs()
                );
            }
            assert!(Instant::now() < deadline, "mock provider not READY");
            util::sleep(Duration::from_millis(10));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it printed.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The times (ms since the epoch) of the token requests since the last device
    /// authorization, from `GET /stats`.
    pub fn polls(&self) -> Vec<u64> {
        let v: Value = util::http_get_json(self.port, "/stats");
        v["polls"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
