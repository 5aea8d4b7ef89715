//! User story (issue 9, `[offline] enable = true`): after a device-flow login a user sets an
//! offline PIN through the PAM stack; while the identity provider cannot be reached that PIN
//! logs them in, and it is refused when the provider is up, after `offline.max_days`, after
//! revocation and after too many wrong tries. The PIN and its hash never reach a log or NSS.

use std::process::Command;
use std::time::Duration;

use oidcd_tests::pam::{self, PROMPT_TIMEOUT, Pamtester, SERVICE};
use oidcd_tests::util::{self, Run};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, measure, ms};

const PIN: &str = "493817";
/// The PIN alice sets after the administrator cleared the first.
const NEW_PIN: &str = "735102";
const OFFLINE_PROMPT: &str = "Offline PIN for alice";

fn setup() -> (Provider, Namespace, DaemonConfig) {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("offline", "enable", "true");
    cfg.set("offline", "max_failures", "3");
    cfg.set("offline", "lockout", "60");
    (op, ns, cfg)
}

/// alice logs in with the device flow and, asked afterwards, sets `pin` (typed twice).
fn login_setting_pin(ns: &Namespace, op: &Provider, pin: &str) -> Run {
    let mut pt = Pamtester::spawn(ns, SERVICE, "alice", &["authenticate"]);
    let prompt = pt
        .wait_prompt(PROMPT_TIMEOUT)
        .expect("no device-flow prompt");
    op.approve(&prompt.code, "alice", "alice-pw", &[])
        .expect_ok();
    pt.press_enter();
    let p = pt.process();
    assert!(
        p.wait_output(Duration::from_secs(20), |_, err| err
            .contains("Set an offline PIN")),
        "no invitation to set a PIN:\n{}",
        p.stderr()
    );
    p.write(&format!("{pin}\n"));
    assert!(p.wait_output(Duration::from_secs(10), |_, err| {
        err.contains("Repeat the offline PIN")
    }));
    p.write(&format!("{pin}\n"));
    pt.finish(Duration::from_secs(30)).0
}

/// One `pamtester authenticate` of alice answering `pin` at the offline prompt; when no
/// offline prompt comes, the run as it ended.
fn offline_try(ns: &Namespace, pin: &str) -> (bool, Run) {
    let mut pt = Pamtester::spawn(ns, SERVICE, "alice", &["authenticate", "acct_mgmt"]);
    let asked = pt.process().wait_output(Duration::from_secs(20), |_, err| {
        err.contains(OFFLINE_PROMPT)
    });
    if asked {
        pt.process().write(&format!("{pin}\n"));
    }
    (asked, pt.finish(Duration::from_secs(30)).0)
}

fn output(r: &Run) -> String {
    format!("{}\n{}", r.stdout, r.stderr)
}

/// Moves alice's last online login `days` into the past.
fn age_login(d: &Daemon, days: i64) {
    util::run(Command::new(util::python3()).args([
        "-c",
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
         c.execute('UPDATE users SET last_login_at = last_login_at - ? * 86400 WHERE name = \
         \\'alice\\'', (int(sys.argv[2]),)); c.commit()",
        &d.db_path().to_string_lossy(),
        &days.to_string(),
    ]))
    .expect_ok();
}

/// The PIN set after an online login works while the provider cannot be reached (and the
/// account phase passes), is refused while it is reachable (a provider that answers but cannot
/// start a login), after `offline.max_days`, after too many wrong tries, and after revocation;
/// neither the PIN nor its hash is in the log or in NSS.
#[test]
fn offline_pin_only_while_the_provider_is_unreachable() {
    let (op, ns, cfg) = setup();
    let d = Daemon::start(&ns, &cfg);
    let set = login_setting_pin(&ns, &op, PIN);
    set.expect_ok();
    assert!(output(&set).contains("Offline PIN set"), "{set}");
    let pin = &d.oidcctl_json(&["user", "show", "alice"])["offline_pin"];
    assert_eq!(
        (&pin["set"], &pin["failures"]),
        (&true.into(), &0.into()),
        "{pin}"
    );
    assert!(pin["locked_until"].is_null(), "{pin}");

    op.outage(Some("reset"));
    let (asked, ok) = offline_try(&ns, PIN);
    assert!(asked, "no offline prompt:\n{ok}");
    ok.expect_ok();
    measure(&format!(
        "offline login_with_pin_ms={:.0} (provider connections reset; Argon2id verify, debug build)",
        ms(ok.elapsed)
    ));
    assert!(
        d.logs()
            .contains("offline login alice approved with the offline PIN")
    );

    // Up, but unable to start a login: the PIN is no way around the provider.
    op.outage(Some("device"));
    let (asked, up) = offline_try(&ns, PIN);
    assert!(asked, "{up}");
    assert_ne!(up.code(), 0, "{up}");
    assert!(
        output(&up).contains("the identity provider is reachable"),
        "{up}"
    );

    op.outage(Some("reset"));
    age_login(&d, 4);
    let (_, old) = offline_try(&ns, PIN);
    assert_ne!(old.code(), 0, "{old}");
    age_login(&d, -4);
    offline_try(&ns, PIN).1.expect_ok();

    for left in ["2 left before a lockout", "1 left before a lockout"] {
        let (_, wrong) = offline_try(&ns, "000000");
        assert!(output(&wrong).contains(left), "{wrong}");
    }
    let (_, locked) = offline_try(&ns, "000000");
    assert!(output(&locked).contains("too many wrong tries"), "{locked}");
    let (asked, after) = offline_try(&ns, PIN);
    assert!(!asked, "offered while locked: {after}");
    assert_ne!(after.code(), 0, "{after}");
    // `user show` tells the administrator why: set, 3 wrong, locked; never the hash.
    let shown = d.oidcctl(&["user", "show", "alice"]);
    shown.expect_ok();
    assert!(
        shown.stdout.contains("offline PIN:    yes (set ")
            && shown.stdout.contains(", 3 wrong in a row, locked until "),
        "{shown}"
    );
    let js = d.oidcctl_json(&["user", "show", "alice"]);
    assert_eq!(js["offline_pin"]["failures"], 3, "{js}");
    assert!(js["offline_pin"]["locked_until"].as_i64().is_some(), "{js}");
    assert!(!js.to_string().contains("argon2") && !shown.stdout.contains("argon2"));

    let logs = d.logs();
    assert!(!logs.contains(PIN) && !logs.contains("$argon2"), "{logs}");
    let pw = ns.getent("passwd", &["alice"]);
    assert!(
        !pw.stdout.contains("argon2") && !pw.stdout.contains(PIN),
        "{pw}"
    );

    // The administrator clears the PIN (forgotten, to be changed, or locked): alice's next
    // online login invites her to set a new one, which works offline.
    op.outage(None);
    let cleared = d.oidcctl(&["user", "clear-pin", "alice"]);
    cleared.expect_ok();
    assert!(
        cleared.stdout.contains("offline PIN of alice cleared"),
        "{cleared}"
    );
    let shown = d.oidcctl(&["user", "show", "alice"]);
    assert!(shown.stdout.contains("offline PIN:    no\n"), "{shown}");
    let again = d.oidcctl(&["user", "clear-pin", "alice"]);
    assert!(again.stdout.contains("alice has no offline PIN"), "{again}");
    assert_ne!(d.oidcctl(&["user", "clear-pin", "nobody-here"]).code(), 0);
    login_setting_pin(&ns, &op, NEW_PIN).expect_ok();
    op.outage(Some("reset"));
    offline_try(&ns, NEW_PIN).1.expect_ok();

    op.outage(None);
    d.oidcctl(&["user", "revoke", "alice"]).expect_ok();
    op.outage(Some("reset"));
    let (asked, revoked) = offline_try(&ns, NEW_PIN);
    assert!(!asked, "offered to a revoked user: {revoked}");
    assert_ne!(revoked.code(), 0, "{revoked}");
    let shown = d.oidcctl(&["user", "show", "alice"]);
    assert!(shown.stdout.contains("offline PIN:    no\n"), "{shown}");
}
