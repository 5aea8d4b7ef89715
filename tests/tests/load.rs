//! User story (load): many processes resolving users at once, from root and from several
//! other users, while people log in through the device flow, get every answer, quickly, and
//! leave the daemon as it was. This is the suite's small version (seconds); the full one,
//! 1,000 clients for 30 s with 100 logins, is `tests/benches/load.rs`.

use std::time::Duration;

use oidcd_tests::load::{self, LoadSpec};
use oidcd_tests::measure;

/// 100 NSS clients (20 as root, 20 each as four other uids) for 3 s while 6 device-flow logins
/// run: no lookup fails, every login succeeds, and afterwards the daemon holds no more threads
/// than before and no more descriptors than before plus its idle connections to the provider.
#[test]
fn concurrent_lookups_and_logins_all_succeed_and_leave_nothing_behind() {
    let spec = LoadSpec {
        root_clients: 20,
        uids: vec![20001, 20002, 20003, 20004],
        clients_per_uid: 20,
        duration: Duration::from_secs(3),
        logins: 6,
        login_parallel: 4,
    };
    let r = load::run(&spec);
    measure(&format!("load small {}", r.line(&spec)));
    assert_eq!(r.errors, 0, "lookups failed under load");
    assert!(r.lookups > 0);
    assert_eq!(
        r.logins_failed,
        0,
        "a login failed under load:\n{}",
        r.first_login_failure.unwrap_or_default()
    );
    // The HTTP client keeps a few connections to the provider alive for the next login.
    let pooled = spec.login_parallel as u64;
    assert!(
        r.after.fds <= r.before.fds + pooled,
        "descriptors left: {r:?}"
    );
    assert!(r.after.threads <= r.before.threads, "threads left: {r:?}");
    assert!(r.p99_ms < 250.0, "p99 {} ms", r.p99_ms);
}
