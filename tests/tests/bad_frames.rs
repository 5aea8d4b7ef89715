//! User story (hostile input, continued): whatever a local client sends on the socket —
//! malformed frames, or a flood of idle connections — the daemon answers it or drops it and
//! keeps serving everyone else.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use oidcd_tests::daemon::SOCKET;
use oidcd_tests::raw::{error_with, exchange as raw_exchange, frame};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, alice_claims, util};
use serde_json::json;

/// A daemon with alice imported.
fn daemon_with_alice(ns: &Namespace) -> Daemon<'_> {
    let d = Daemon::start(ns, &DaemonConfig::new());
    d.import(&json!([alice_claims()])).expect_ok();
    d
}

/// Malformed frames from a raw client get a clear error or a closed connection; the daemon
/// keeps serving (also while a client holds a half-sent frame) and its data is unchanged.
#[test]
fn malformed_frames_are_answered_or_dropped_and_daemon_keeps_serving() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let users = d.users();

    // Held open for the whole test: announces 100 bytes, sends 3.
    let mut slow = UnixStream::connect(ns.host_path(SOCKET)).unwrap();
    slow.write_all(&[0, 0, 0, 100, b'{', b'"', b'v']).unwrap();

    for len in [2 * 1024 * 1024u32, u32::MAX] {
        let r = raw_exchange(&ns, &len.to_be_bytes(), false);
        let msg = error_with(&r, "bad_request");
        assert!(msg.contains("exceeds"), "{msg}");
        assert!(r.closed, "{r:?}");
    }

    let r = raw_exchange(&ns, &[0, 0, 0, 100, b'{', b'"'], true);
    assert!(r.frames.is_empty() && r.closed, "truncated frame: {r:?}");
    let r = raw_exchange(&ns, &[0, 0], true);
    assert!(r.frames.is_empty() && r.closed, "truncated header: {r:?}");

    for garbage in [
        &b"\xff{[}x"[..],
        b"",
        b"[1,2,3]",
        b"{\"version\":1}",
        b"null",
    ] {
        let r = raw_exchange(&ns, &frame(garbage), false);
        error_with(&r, "bad_request");
        assert!(r.closed, "{r:?}");
    }

    let r = raw_exchange(
        &ns,
        &frame(br#"{"version":99,"body":{"type":"status"}}"#),
        true,
    );
    assert_eq!(r.frames.len(), 1, "{r:?}");
    assert_eq!(
        r.frames[0]["body"],
        json!({"type": "unsupported_version", "supported": [1]})
    );

    for body in [
        &br#"{"version":1,"body":{"type":"format_disk"}}"#[..],
        br#"{"version":1,"body":{"type":"get_user_by_uid","uid":"zero"}}"#,
        br#"{"version":1,"body":{"type":"get_user_by_name"}}"#,
        br#"{"version":1,"body":"status"}"#,
    ] {
        let r = raw_exchange(&ns, &frame(body), true);
        error_with(&r, "bad_request");
    }

    // A well-formed request on the same footing still works, and so does NSS.
    let r = raw_exchange(
        &ns,
        &frame(br#"{"version":1,"body":{"type":"get_user_by_name","name":"alice"}}"#),
        true,
    );
    assert_eq!(r.frames[0]["body"]["type"], "user", "{r:?}");
    ns.getent("passwd", &["alice"]).expect_ok();
    assert_eq!(d.users(), users);
    drop(slow);
    ns.getent("passwd", &["alice"]).expect_ok();
}

/// Opens 300 connections to the daemon's socket and holds them idle (run as `nobody`).
const CONNECTION_HOG: &str = "import socket, time\n\
    held = []\n\
    for _ in range(300):\n\
    \x20   s = socket.socket(socket.AF_UNIX)\n\
    \x20   s.connect('/run/oidcd/socket')\n\
    \x20   held.append(s)\n\
    print('READY', flush=True)\n\
    time.sleep(60)\n";

/// An unprivileged local user who opens many idle connections (the socket is 0666) cannot
/// make the daemon refuse everyone else: lookups and root's oidcctl keep working.
#[test]
fn idle_connections_of_one_user_do_not_starve_lookups() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let mut cmd = ns.command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([util::python3(), "-c", CONNECTION_HOG]);
    let hog = util::spawn(&mut cmd, None);
    // Wait until the daemon has accepted what it will of them.
    assert!(
        util::wait_until(Duration::from_secs(10), || {
            std::fs::read_dir(format!("/proc/{}/fd", hog.pid()))
                .map(|fds| fds.count() >= 300)
                .unwrap_or(false)
        }),
        "the hog did not connect"
    );
    util::sleep(Duration::from_millis(200));
    let r = ns.getent("passwd", &["alice"]);
    let st = d.oidcctl(&["status"]);
    drop(hog);
    r.expect_ok();
    st.expect_ok();
}
