//! User story: oidcd is upgraded to a release that speaks another protocol version while
//! long-running processes (sshd, a desktop session, nscd-less daemons) keep this release's
//! modules loaded. Those modules must never misread the new daemon's answers: lookups say
//! "unavailable" at once, logins fail as "service unavailable" with a message that says what
//! to do, and root and local accounts keep working from the files.
//!
//! The "newer daemon" is a small root-run stand-in on the module's socket: the real protocol
//! version 2 does not exist yet. It answers either as docs/protocol.md promises a daemon that
//! does not speak the request's version will (`unsupported_version`, a shape fixed across
//! versions), or with a version-2 envelope around a well-formed version-1 body, which a module
//! must not take at face value.
//!
//! The modules' own version-mismatch messages are checked by their unit tests: there is no
//! syslog to read in the test namespace.

use oidcd_tests::pam::{self, PamLogin, SERVICE};
use oidcd_tests::paths;
use oidcd_tests::util::{self, Spawned};
use oidcd_tests::{Namespace, measure, ms};

/// What pamtester prints for PAM_AUTHINFO_UNAVAIL.
const AUTHINFO_UNAVAIL: &str = "Authentication service cannot retrieve authentication info";

/// Starts a protocol-version-2 stand-in (`tests/tools/fake_daemon.py`, run as root) in `ns`
/// answering as `mode` says: `refuses` (unsupported_version, supported [2]) or `entries` (a
/// version-2 envelope around a uid-0 entry for whatever was asked). Returns it with the path
/// of the log of the requests it received.
fn newer_daemon(ns: &Namespace, mode: &str) -> (Spawned, std::path::PathBuf) {
    let seen = ns.host_path("/run/oidcd/requests.jsonl");
    let mut cmd = ns.command(util::python3());
    cmd.args([
        "-c",
        &paths::fake_daemon_source(),
        "/run/oidcd/socket",
        "2",
        mode,
        "/run/oidcd/requests.jsonl",
    ]);
    (ns.spawn_server(&mut cmd, "/run/oidcd/socket"), seen)
}

/// The checks shared by both kinds of newer daemon.
fn old_modules_refuse_a_newer_daemon(mode: &str) {
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    let (fake, seen) = newer_daemon(&ns, mode);

    let user = ns.getent("passwd", &["alice"]);
    user.expect_code(2);
    assert!(user.stdout.is_empty(), "{user}");
    let group = ns.getent("group", &["developers"]);
    group.expect_code(2);
    assert!(group.stdout.is_empty(), "{group}");
    let by_uid = ns.getent("passwd", &["1894722147"]);
    by_uid.expect_code(2);
    assert!(by_uid.stdout.is_empty(), "{by_uid}");
    // Root and local accounts come from the files, untouched.
    let root = ns.run("id", &["root"]);
    root.expect_ok();
    assert!(root.stdout.starts_with("uid=0(root) gid=0(root)"), "{root}");
    ns.getent("passwd", &["root"]).expect_ok();

    let login = PamLogin::new(&ns, SERVICE, "alice").run();
    assert!(
        login.prompt.is_none(),
        "a prompt from a daemon not understood:\n{login}"
    );
    // The reason ("protocol version mismatch … restart the program or upgrade both") goes to
    // syslog; a person at the prompt only learns that this login method is unavailable.
    login.expect_failure(AUTHINFO_UNAVAIL);

    // The module asked in its own version and was answered, so the refusal above is the
    // module's reading of the answer, not a connection failure.
    let requests = std::fs::read_to_string(&seen).unwrap_or_default();
    assert!(
        requests.lines().count() >= 4
            && requests.lines().all(|l| l.starts_with(r#"{"version":1,"#)),
        "requests the stand-in saw:\n{requests}"
    );
    measure(&format!(
        "protocol_versions {mode} getent={:.1}ms pam_failure_after={:.0}ms",
        ms(user.elapsed),
        ms(login.pam.elapsed)
    ));
    drop(fake);
}

/// A newer daemon that does not speak version 1 says so; the modules report the mismatch.
#[test]
fn old_modules_facing_a_daemon_that_refuses_their_version_fail_closed() {
    old_modules_refuse_a_newer_daemon("refuses");
}

/// A newer daemon that answers in version 2 (here with uid 0 entries): the modules never use
/// an answer from a version they do not speak.
#[test]
fn old_modules_never_use_a_version_2_answer() {
    old_modules_refuse_a_newer_daemon("entries");
}
