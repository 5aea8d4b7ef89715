//! End-to-end test harness for oidcd: real binaries, real glibc, real services.
//!
//! Every test builds its world from these parts and tears it down again, also on panic (each
//! part is a Drop guard that kills what it started, by PID):
//!
//! # Layout
//! - [`paths`]: where the built `oidcd`, `oidcctl`, `libnss_oidc.so` and `pam_oidc.so` are
//!   (the tests do not build them: run `cargo build --workspace` first, as `tests/run` does).
//! - [`ns`]: a private mount namespace held open by a holder process. Inside it `/run` is a
//!   fresh tmpfs, `/etc/nsswitch.conf` names the `oidc` module, the multiarch lib dir is
//!   overlaid with the built `libnss_oidc.so.2`, and optionally `/etc/passwd`, `/etc/group`,
//!   `/etc/shadow`, `/etc/pam.d`, `/etc/sudoers.d` and `/var/lib/extrausers` (a second NSS
//!   source) are bound to copies. The host's `/etc` and `/run` are never written. Commands run
//!   inside it through `nsenter`.
//! - [`daemon`]: a config builder with test defaults and a running `oidcd` in a namespace.
//! - [`provider`]: the test OpenID Provider (`tests/op/provider.mjs`) on a free loopback port
//!   and the scripted approval of a device code (`tests/tools/approve_device.py`).
//! - [`mock`]: the deliberately faulty provider (`tests/op/mock_provider.mjs`) for faults the
//!   real one cannot produce.
//! - [`tls`]: a throw-away CA and a 127.0.0.1 server certificate (openssl) for HTTPS.
//! - [`pam`]: PAM service files naming the built `pam_oidc.so`, and a pamtester driver that
//!   reads the prompt, has the code approved, answers Enter and times the rest.
//! - [`sshd`]: a real sshd in the namespace with its own PAM service name (a minimal stack, or
//!   the shipped `packaging/pam/sshd`), and a paramiko keyboard-interactive client
//!   (`tests/tools/kbdint_client.py`).
//! - [`openssh`]: the real OpenSSH client, answering prompts through `SSH_ASKPASS`, or logging
//!   in with a key.
//! - [`pty`]: a program on a pseudo-terminal (`su`, `login`, `sudo`), typed at like a person.
//! - [`raw`]: a raw socket client for feeding the daemon malformed frames.
//! - [`hostile`]: a hostile local user on the socket (`tests/tools/hostile_peer.py` as an
//!   unprivileged uid), and what the daemon process holds meanwhile (`/proc`).
//! - [`load`]: the load test: concurrent NSS clients and device-flow logins, the daemon's
//!   memory, threads and descriptors before, during and after.
//! - [`fleet`]: the fleet rule's first UID candidate as the daemon computes it, and a search
//!   for two subjects whose UIDs collide (issue 13).
//! - [`scenario`]: steps many login tests share (a namespace with the PAM service, `id -Gn`, a
//!   reload that is waited for).
//! - [`util`]: temporary directories, free ports, running a command with a timeout and
//!   measuring it, interactive commands, waiting for a condition.
//!
//! Figures that tests measure are printed as `MEASURE <test> <case> <name>=<value>` lines
//! (run with `--nocapture`, or read nextest's output for failing tests).

pub mod daemon;
pub mod fleet;
pub mod hostile;
pub mod load;
pub mod mock;
pub mod ns;
pub mod openssh;
pub mod pam;
pub mod paths;
pub mod provider;
pub mod pty;
pub mod raw;
pub mod scenario;
pub mod sshd;
pub mod tls;
pub mod util;

pub use daemon::{Daemon, DaemonConfig};
pub use mock::MockProvider;
pub use ns::{Namespace, NssMode};
pub use pam::{Approver, PamLogin};
pub use provider::Provider;
pub use tls::Tls;
pub use util::{Run, Spawned, TempDir, free_port, measure, median, ms, sleep, wait_until};

/// Claims of the provider's test user alice (the same as `tests/op/provider.mjs` sends), for
/// `oidcctl import`.
pub fn alice_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "alice",
        "preferred_username": "alice",
        "name": "Alice Test",
        "email": "alice@example.test",
        "email_verified": true,
        "groups": ["oidc-admins", "developers"]
    })
}

/// Claims of the provider's test user bob: in `developers` only, email not verified.
pub fn bob_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "bob",
        "preferred_username": "bob",
        "name": "Bob Test",
        "email": "bob@example.test",
        "email_verified": false,
        "groups": ["developers"]
    })
}
