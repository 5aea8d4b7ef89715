//! A throw-away certificate authority and a server certificate for `127.0.0.1`, made with the
//! `openssl` command in a temp dir, for the provider's HTTPS variant.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, TempDir};

/// A CA (`ca.pem`) and a P-256 server certificate for IP 127.0.0.1 that it signed
/// (`server.pem`, `server.key`), valid for two days. The files go when this is dropped.
#[derive(Debug)]
pub struct Tls {
    ca: PathBuf,
    dir: TempDir,
}

impl Tls {
    /// Makes the CA and the server certificate (about 50 ms).
    pub fn new() -> Self {
        // 0755 so the daemon and the provider (both root, but also inside the namespace) and
        // approve_device.py read the same paths.
        let dir = TempDir::with_mode("tls", 0o755);
        dir.write(
            "server.ext",
            "subjectAltName = IP:127.0.0.1\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n",
            0o644,
        );
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        let steps = [
            format!(
                "req -x509 {ec} -days 2 -subj /CN=oidcd-test-CA \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem"
            ),
            format!("req {ec} -subj /CN=127.0.0.1 -keyout server.key -out server.csr"),
            "x509 -req -days 2 -set_serial 2 -in server.csr -CA ca.pem -CAkey ca.key \
             -extfile server.ext -out server.pem"
                .to_string(),
        ];
        for step in steps {
            let mut cmd = Command::new("openssl");
            cmd.current_dir(dir.path()).args(step.split_whitespace());
            util::run(&mut cmd).expect_ok();
        }
        Self {
            ca: dir.join("ca.pem"),
            dir,
        }
    }

    /// The CA certificate (PEM), for `provider.ca_file` and `REQUESTS_CA_BUNDLE`.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

impl Default for Tls {
    fn default() -> Self {
        Self::new()
    }
}
