//! User story: the host also has accounts from another NSS source (here Debian's
//! `extrausers`, listed before `oidc` as sss, ldap or winbind would be). oidcd never serves a
//! name that source knows, for users or groups: at the login's start (before the provider is
//! asked), at its verdict, in imports, and for provisional entries; each refusal is logged.

use std::time::Duration;

use oidcd_tests::pam::{self, Approver, PamLogin, Pamtester, SERVICE};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, alice_claims, bob_claims};

/// A namespace whose `extrausers` source has a user `alice` (uid 5000) and a group
/// `developers` (gid 5001), and a daemon for `op`.
fn setup(op: &Provider) -> (Namespace, DaemonConfig) {
    let ns = Namespace::builder()
        .pam_dir()
        .other_source(
            &["alice:x:5000:5000:Alice from elsewhere:/home/alice:/bin/sh"],
            &["alice:x:5000:", "developers:x:5001:"],
        )
        .start();
    pam::install_service(&ns, SERVICE, "");
    (ns, DaemonConfig::for_provider(op))
}

/// issue 15 #5: `alice` belongs to another source: her device login is refused before the
/// provider is asked (PAM_USER_UNKNOWN, so that source's own PAM module decides), and an
/// import of her claims is refused; `getent` keeps answering the other source's alice. Before,
/// only /etc/passwd and /etc/group were checked, and the provider's alice logged in as her.
#[test]
fn a_name_another_source_has_is_refused_at_login_and_import() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let (ns, cfg) = setup(&op);
    let d = Daemon::start(&ns, &cfg);
    assert_eq!(
        ns.getent("passwd", &["alice"]).stdout.split(':').nth(2),
        Some("5000")
    );
    let asked_before = op.requests("POST /device/auth");
    let login = PamLogin::new(&ns, SERVICE, "alice")
        .approved_by(Approver::user(&op, "alice"))
        .run();
    assert!(login.prompt.is_none(), "{login}");
    login.expect_failure("User not known to the underlying authentication module");
    assert_eq!(op.requests("POST /device/auth"), asked_before);
    let logs = d.logs();
    assert!(
        logs.contains("alice is an account of another NSS source on this host"),
        "{logs}"
    );
    assert!(
        logs.contains(r#""event":"login_refused","outcome":"not_ours""#),
        "{logs}"
    );

    let r = d.import(&serde_json::json!([alice_claims()]));
    assert_ne!(r.code(), 0, "{r}");
    assert!(
        r.stdout.contains("another NSS source") || r.stderr.contains("another NSS source"),
        "{r}"
    );
    assert_eq!(d.users().as_array().map(Vec::len), Some(0));
    assert_eq!(
        ns.getent("passwd", &["alice"]).stdout.split(':').nth(2),
        Some("5000")
    );
}

/// issue 15 #5 at the verdict and for groups: `bob` appears in the other source while his
/// login waits for approval, and the approval is refused with nothing stored; once he is gone
/// from it, bob logs in, but the provider group `developers`, which the other source has, is
/// not created or given to him.
#[test]
fn a_name_that_appears_elsewhere_meanwhile_is_refused_and_groups_are_skipped() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let (ns, cfg) = setup(&op);
    let d = Daemon::start(&ns, &cfg);
    let passwd = ns.extrausers_dir().join("passwd");
    let original = std::fs::read_to_string(&passwd).unwrap();

    let mut pt = Pamtester::spawn(&ns, SERVICE, "bob", &["authenticate"]);
    let prompt = pt.wait_prompt(pam::PROMPT_TIMEOUT).expect("no prompt");
    std::fs::write(
        &passwd,
        format!("{original}bob:x:5002:5001::/home/bob:/bin/sh\n"),
    )
    .unwrap();
    op.approve(&prompt.code, "bob", "bob-pw", &[]).expect_ok();
    pt.press_enter();
    let (run, _) = pt.finish(Duration::from_secs(30));
    assert_ne!(run.code(), 0, "{run}");
    assert!(run.stderr.contains("another NSS source"), "{run}");
    assert!(
        d.logs()
            .contains(r#"the name "bob" is already an account or group of another NSS source"#),
        "{}",
        d.logs()
    );
    assert_eq!(d.users().as_array().map(Vec::len), Some(0));

    std::fs::write(&passwd, &original).unwrap();
    PamLogin::new(&ns, SERVICE, "bob")
        .approved_by(Approver::user(&op, "bob"))
        .run()
        .expect_success();
    let logs = d.logs();
    assert!(
        logs.contains(
            r#"group "developers" skipped: the name "developers" is already an account or group of another NSS source"#
        ),
        "{logs}"
    );
    let group = ns.getent("group", &["developers"]);
    assert_eq!(group.stdout.split(':').nth(2), Some("5001"), "{group}");
    let bob = &d.users()[0];
    assert_eq!(bob["unix"]["name"], "bob");
    assert_eq!(bob["groups"], serde_json::json!([]), "{bob}");
    // The import path skips the group the same way.
    let r = d.import(&serde_json::json!([bob_claims()]));
    r.expect_ok();
}

/// issue 15 #5 for sshd's provisional entries: with the other source *after* `oidc`
/// (`files oidc extrausers`), a provisional entry would shadow that source's `alice` for
/// sshd. None is made for her; a name nobody has still gets one. (`getent`, run as root, is
/// made to count as sshd through `login.ssh_programs`.)
#[test]
fn a_name_another_source_has_gets_no_provisional_entry() {
    let op = Provider::start(&[]);
    let (ns, mut cfg) = setup(&op);
    cfg.set("login", "ssh_programs", r#"["/usr/bin/getent"]"#);
    let d = Daemon::start(&ns, &cfg);
    ns.set_nss_sources("files oidc extrausers");
    let alice = ns.getent("passwd", &["alice"]);
    assert_eq!(
        alice.stdout.split(':').nth(2),
        Some("5000"),
        "{alice}\n{}",
        d.logs()
    );
    assert!(
        !d.logs().contains("provisional entry for alice"),
        "{}",
        d.logs()
    );
    let fresh = ns.getent("passwd", &["newcomer"]);
    fresh.expect_ok();
    assert!(
        d.logs().contains("provisional entry for newcomer (uid"),
        "{}",
        d.logs()
    );
    // Not root: never sshd, whatever it runs.
    let nobody = ns.run_as(65534, 65534, "getent", &["passwd", "othernewcomer"]);
    assert_eq!(nobody.code(), 2, "{nobody}");
}
