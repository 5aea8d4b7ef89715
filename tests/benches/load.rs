//! The load test at full size: 1,000 concurrent NSS clients (glibc through libnss_oidc.so.2:
//! 200 as root, 100 each as eight other uids) for 30 s while 100 device-flow logins run
//! against the test provider (pamtester, six at a time). Prints lookups/s, p50/p99/max, errors
//! (must be 0), failed logins (must be 0), and the daemon's memory, descriptors and threads
//! before, at the peak and after; exits 1 if anything failed or was left behind. It stops by
//! itself (about 45 s). Run it on a quiet machine, with release binaries:
//!
//!     cargo build --release --workspace --locked
//!     sudo cargo bench -p oidcd-tests --bench load
//!
//! `LOAD_SECONDS`, `LOAD_LOGINS` and `LOAD_CLIENTS_PER_UID` change the size.

use std::time::Duration;

use oidcd_tests::load::{self, LoadSpec};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("load bench: needs root (mount namespaces, setpriv); run it with sudo");
        std::process::exit(1);
    }
    let per_uid = env("LOAD_CLIENTS_PER_UID", 100) as usize;
    let spec = LoadSpec {
        root_clients: 2 * per_uid,
        uids: (30001..=30008).collect(),
        clients_per_uid: per_uid,
        duration: Duration::from_secs(env("LOAD_SECONDS", 30)),
        logins: env("LOAD_LOGINS", 100) as usize,
        login_parallel: 6,
    };
    println!(
        "binaries: {}; {} NSS clients for {} s, {} logins ({} at a time)",
        oidcd_tests::paths::profile_dir().display(),
        spec.clients(),
        spec.duration.as_secs(),
        spec.logins,
        spec.login_parallel
    );
    let r = load::run(&spec);
    println!("BENCH load {}", r.line(&spec));
    let mut failed = false;
    if r.errors > 0 {
        println!("FAIL: {} lookups failed", r.errors);
        failed = true;
    }
    if r.logins_failed > 0 {
        println!(
            "FAIL: {} logins failed; the first:\n{}",
            r.logins_failed,
            r.first_login_failure.unwrap_or_default()
        );
        failed = true;
    }
    // The HTTP client keeps up to one idle connection per concurrent login to the provider.
    let pooled = spec.login_parallel as u64;
    if r.after.fds > r.before.fds + pooled || r.after.threads > r.before.threads {
        println!("FAIL: descriptors or threads left behind");
        failed = true;
    }
    std::process::exit(i32::from(failed));
}
