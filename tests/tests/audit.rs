//! User story: an auditor follows every decision oidcd makes from its log alone: one
//! `AUDIT {json}` line per decision, with a stable `event` name, the outcome and who, and
//! nothing secret in it (or anywhere else in the log, at debug level).

use oidcd_tests::pam::{self, PamLogin, SERVICE};
use oidcd_tests::{Daemon, DaemonConfig, MockProvider, Namespace, bob_claims};
use serde_json::Value;

/// The audit events in a daemon log, parsed.
fn events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| {
            l.strip_prefix("AUDIT ")
                .or_else(|| l.strip_prefix("<5>AUDIT "))
        })
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{e}: {j}")))
        .collect()
}

/// The first event named `name` (with `outcome`, when given).
fn find<'a>(events: &'a [Value], name: &str, outcome: Option<&str>) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name && outcome.is_none_or(|o| e["outcome"] == o))
        .unwrap_or_else(|| panic!("no {name} {outcome:?} event in {events:#?}"))
}

/// issue 15 #11: a login approved (started, approved with user, issuer, sub, uid, service),
/// its account phase, a login refused before the provider is asked, a provisional entry, and
/// administrators' changes each leave one structured event; the whole log, at debug level,
/// holds no access token, ID token, device code, client secret or login id.
#[test]
fn every_decision_is_one_event_and_no_secret_is_logged() {
    let mock = MockProvider::start("none");
    let ns = Namespace::builder()
        .pam_dir()
        .local_user("localuser:x:4242:4242::/tmp:/bin/sh")
        .start();
    pam::install_service(&ns, SERVICE, "debug");
    let mut cfg = DaemonConfig::with_issuer(&mock.issuer());
    cfg.set("provider", "client_secret", "\"pam-oidc-secret\"");
    cfg.set("login", "default_poll_interval", "0.2");
    cfg.set("login", "ssh_programs", r#"["/usr/bin/getent"]"#);
    let d = Daemon::start(&ns, &cfg);

    PamLogin::new(&ns, SERVICE, "alice")
        .ops(&["authenticate", "acct_mgmt"])
        .run()
        .expect_success();
    PamLogin::new(&ns, SERVICE, "localuser")
        .run()
        .expect_failure("User not known");
    ns.getent("passwd", &["newcomer"]).expect_ok();
    d.import(&serde_json::json!([bob_claims()])).expect_ok();
    d.oidcctl(&["user", "remove", "bob"]).expect_ok();

    let log = d.logs();
    if std::env::var_os("SHOW_AUDIT").is_some() {
        println!("{log}");
    }
    let all = events(&log);
    for e in &all {
        assert!(e["event"].is_string() && e["outcome"].is_string(), "{e}");
        assert!(e["time"].as_i64().is_some_and(|t| t > 1_600_000_000), "{e}");
    }
    let started = find(&all, "login_started", None);
    assert_eq!(started["user"], "alice");
    assert_eq!(started["service"], SERVICE);
    assert_eq!(started["issuer"], mock.issuer());
    let approved = find(&all, "login_approved", Some("approved"));
    assert_eq!(approved["user"], "alice");
    assert_eq!(approved["sub"], "alice");
    assert_eq!(approved["issuer"], mock.issuer());
    assert_eq!(approved["service"], SERVICE);
    assert!(approved["uid"].as_u64().is_some(), "{approved}");
    let account = find(&all, "account_verdict", Some("allowed"));
    assert_eq!(account["user"], "alice");
    let refused = find(&all, "login_refused", Some("not_ours"));
    assert_eq!(refused["user"], "localuser");
    assert_eq!(refused["reason"], "name_refused");
    let provisional = find(&all, "provisional_entry", Some("created"));
    assert_eq!(provisional["user"], "newcomer");
    let import = find(&all, "admin_change", Some("import"));
    assert_eq!(import["user"], "bob");
    assert_eq!(import["peer_uid"], 0);
    let removed = find(&all, "admin_change", Some("user_remove"));
    assert_eq!(removed["user"], "bob");

    // Nothing secret: not in the events, not anywhere in the log.
    for secret in [
        "mock-access-token",
        "mock-device-code",
        "pam-oidc-secret",
        "eyJ", // any JWT (the ID token) starts with the base64 of '{"'
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    for e in &all {
        let text = e.to_string();
        let hex_run = text
            .as_bytes()
            .split(|b| !b.is_ascii_hexdigit())
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        assert!(hex_run < 32, "something like a login id in {text}");
    }
}
