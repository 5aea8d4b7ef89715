//! User story: the daemon reloads, stops and starts safely. A bad new config is rejected
//! and the old one kept, a good one applied; SIGTERM stops cleanly; a broken or too new
//! database degrades to "unavailable" with a reason instead of a crash; unsafe paths are
//! refused at start.

use std::time::Duration;

use oidcd_tests::daemon::SOCKET;
use oidcd_tests::{Daemon, DaemonConfig, Namespace, TempDir, alice_claims};
use serde_json::json;

const LOG_WAIT: Duration = Duration::from_secs(5);

/// Names listed by `getent passwd` (enumeration).
fn enumerated(ns: &Namespace) -> Vec<String> {
    let r = ns.getent("passwd", &[]);
    r.expect_ok();
    r.lines()
        .iter()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

/// SIGHUP with an invalid new config: the daemon logs why and that it was rejected, keeps
/// the old config (enumeration stays off) and keeps serving.
#[test]
fn sighup_with_bad_config_keeps_old_config_and_serving() {
    let ns = Namespace::new();
    let cfg = DaemonConfig::new();
    let d = Daemon::start(&ns, &cfg);
    d.import(&json!([alice_claims()])).expect_ok();
    let mut bad = cfg.clone();
    bad.set("cache", "enumerate", "\"yes\"");
    d.rewrite_config(&d.config_text_for(&bad));
    d.sighup();
    assert!(
        d.wait_log("rejected", LOG_WAIT),
        "no rejection logged:\n{}",
        d.logs()
    );
    let logs = d.logs();
    assert!(
        logs.contains("cache.enumerate"),
        "the log names the key:\n{logs}"
    );
    ns.getent("passwd", &["alice"]).expect_ok();
    assert!(!enumerated(&ns).contains(&"alice".to_string()));
    let st = d.oidcctl_json(&["status"]);
    assert_eq!(st["enumerate"], false, "{st}");
    assert_eq!(st["users"], 1, "{st}");
}

/// SIGHUP with a valid new config applies it: enumeration turned on lists alice.
#[test]
fn sighup_with_good_config_applies_it() {
    let ns = Namespace::new();
    let cfg = DaemonConfig::new();
    let d = Daemon::start(&ns, &cfg);
    d.import(&json!([alice_claims()])).expect_ok();
    assert!(!enumerated(&ns).contains(&"alice".to_string()));
    let mut good = cfg.clone();
    good.enumerate(true);
    d.rewrite_config(&d.config_text_for(&good));
    d.sighup();
    assert!(
        d.wait_log("configuration reloaded", LOG_WAIT),
        "no reload logged:\n{}",
        d.logs()
    );
    assert!(enumerated(&ns).contains(&"alice".to_string()));
    assert_eq!(d.oidcctl_json(&["status"])["enumerate"], true);
}

/// SIGTERM stops the daemon cleanly (exit 0, socket removed, users still resolved from the NSS
/// map within its TTL);
/// started again on the same database it serves the same user with the same UID.
#[test]
fn sigterm_stops_cleanly_and_restart_keeps_identities() {
    let ns = Namespace::new();
    let mut d = Daemon::start(&ns, &DaemonConfig::new());
    d.import(&json!([alice_claims()])).expect_ok();
    let before = ns.getent("passwd", &["alice"]);
    before.expect_ok();
    let status = d.stop();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.logs());
    assert!(!ns.host_path(SOCKET).exists(), "socket left behind");
    assert!(d.logs().contains("stopped"), "{}", d.logs());
    // Still resolved, from the NSS map (valid for cache.nss_map_ttl after the last heartbeat).
    ns.getent("passwd", &["alice"]).expect_ok();
    d.oidcctl(&["status"]).expect_code(3);

    d.launch();
    let after = ns.getent("passwd", &["alice"]);
    after.expect_ok();
    assert_eq!(after.stdout, before.stdout);
}

/// A database file full of garbage: the daemon starts anyway, logs why, answers lookups
/// "unavailable" (getent exit 2, not "no such user"), shows the error in `oidcctl status`,
/// and recovers on SIGHUP once the file is moved aside.
#[test]
fn corrupt_database_degrades_to_unavailable_with_a_reason() {
    let ns = Namespace::new();
    let mut d = Daemon::new(&ns, &DaemonConfig::new());
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(d.db_path(), garbage).unwrap();
    d.launch();
    assert!(d.logs().contains("unusable"), "{}", d.logs());
    ns.getent("passwd", &["alice"]).expect_code(2);
    ns.getent("group", &["developers"]).expect_code(2);
    ns.getent("passwd", &["root"]).expect_ok();

    let st = d.oidcctl(&["status"]);
    st.expect_ok();
    assert!(st.stdout.contains("BROKEN"), "{st}");
    let js = d.oidcctl_json(&["status"]);
    let why = js["db_error"].as_str().unwrap_or_else(|| panic!("{js}"));
    assert!(why.contains(&*d.db_path().to_string_lossy()), "{why}");
    let list = d.oidcctl(&["user", "list"]);
    list.expect_code(1);
    assert!(list.stderr.contains("cannot answer"), "{list}");
    let imp = d.import(&json!([alice_claims()]));
    imp.expect_code(1);
    assert!(d.try_wait().is_none(), "the daemon died:\n{}", d.logs());

    std::fs::remove_file(d.db_path()).unwrap();
    d.sighup();
    assert!(
        oidcd_tests::wait_until(LOG_WAIT, || d.oidcctl_json(&["status"])["db_error"]
            .is_null()),
        "{}",
        d.logs()
    );
    d.import(&json!([alice_claims()])).expect_ok();
    ns.getent("passwd", &["alice"]).expect_ok();
}

/// A database written by a newer oidcd (PRAGMA user_version = 99) is refused with a clear
/// message, left untouched, and lookups answer "unavailable".
#[test]
fn database_with_newer_schema_is_refused_clearly() {
    let ns = Namespace::new();
    let mut d = Daemon::new(&ns, &DaemonConfig::new());
    let db = d.db_path().to_string_lossy().into_owned();
    let r = ns.run(
        oidcd_tests::util::python3(),
        &[
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE future (x)'); c.execute('PRAGMA user_version = 99'); \
             c.commit()",
            &db,
        ],
    );
    r.expect_ok();
    std::fs::set_permissions(
        d.db_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    d.launch();
    let logs = d.logs();
    assert!(logs.contains("schema version 99"), "{logs}");
    let js = d.oidcctl_json(&["status"]);
    let why = js["db_error"].as_str().unwrap_or_else(|| panic!("{js}"));
    assert!(why.contains("99") && why.contains("newer"), "{why}");
    ns.getent("passwd", &["alice"]).expect_code(2);
    d.stop();
    let v = ns.run(
        oidcd_tests::util::python3(),
        &[
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA user_version').fetchone()[0])",
            &db,
        ],
    );
    assert_eq!(
        v.stdout.trim(),
        "99",
        "the newer database was modified:\n{v}"
    );
}

/// A socket directory writable by others is refused at start (exit 1, a clear message).
#[test]
fn socket_dir_writable_by_others_refuses_start() {
    let ns = Namespace::new();
    ns.run("chmod", &["0777", "/run/oidcd"]).expect_ok();
    let mut d = Daemon::new(&ns, &DaemonConfig::new());
    let status = d.launch_expecting_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", d.logs());
    let logs = d.logs();
    assert!(
        logs.contains("/run/oidcd") && logs.contains("writable by group or others"),
        "{logs}"
    );
    assert!(!ns.host_path(SOCKET).exists());
}

/// A database directory writable by others, or a database file writable by others, is
/// refused at start.
#[test]
fn db_dir_or_file_writable_by_others_refuses_start() {
    let ns = Namespace::new();
    let open_dir = TempDir::with_mode("db", 0o777);
    let mut cfg = DaemonConfig::new();
    let db = open_dir.join("cache.db");
    cfg.set(
        "cache",
        "db_path",
        &oidcd_tests::daemon::toml_str(&db.to_string_lossy()),
    );
    let mut d = Daemon::new(&ns, &cfg);
    let status = d.launch_expecting_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", d.logs());
    assert!(
        d.logs().contains("writable by group or others"),
        "{}",
        d.logs()
    );
    assert!(
        !db.exists(),
        "a database was created in an unsafe directory"
    );

    let mut d = Daemon::new(&ns, &DaemonConfig::new());
    std::fs::write(d.db_path(), b"").unwrap();
    std::fs::set_permissions(
        d.db_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let status = d.launch_expecting_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", d.logs());
    assert!(
        d.logs().contains(&*d.db_path().to_string_lossy()),
        "{}",
        d.logs()
    );
}
