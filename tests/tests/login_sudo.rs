//! User story: membership of the provider's admin group becomes the local `sudo` group at
//! login, through NSS only (/etc/group is never written), so a `%sudo` sudoers rule lets an
//! admin run sudo, refuses everyone else, and stops applying once the admin leaves the group
//! at the provider and logs in again.

use std::os::unix::fs::PermissionsExt;

use oidcd_tests::pam::{self, Approver, PamLogin, SERVICE};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, Run, TempDir};

/// A namespace with the PAM service and the rule `%sudo ALL=(ALL) NOPASSWD: ALL` in its bound
/// /etc/sudoers.d, checked with visudo.
fn namespace() -> Namespace {
    let ns = Namespace::builder().pam_dir().sudoers_dir().start();
    pam::install_service(&ns, SERVICE, "");
    let file = ns.sudoers_dir().join("oidcd-test");
    std::fs::write(&file, "%sudo ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
    ns.run("visudo", &["-cf", "/etc/sudoers.d/oidcd-test"])
        .expect_ok();
    ns
}

/// oidc-admins are admins, given the local `sudo` group (the default admin_local_groups).
fn config(op: &Provider) -> DaemonConfig {
    let mut cfg = DaemonConfig::for_provider(op);
    cfg.admin_groups(&["oidc-admins"]);
    cfg
}

/// `user` logs in, approved by themself; panics unless it succeeds.
fn login(ns: &Namespace, op: &Provider, user: &str) {
    PamLogin::new(ns, SERVICE, user)
        .approved_by(Approver::user(op, user))
        .run()
        .expect_success();
}

/// Runs `sudo -n ARGS…` as `user` with the groups initgroups gives them (as a login would).
fn sudo_as(ns: &Namespace, user: &str, args: &[&str]) -> Run {
    let pw = ns.getent("passwd", &[user]);
    pw.expect_ok();
    let f: Vec<&str> = pw.stdout.trim_end().split(':').collect();
    let mut cmd = ns.command("setpriv");
    cmd.arg(format!("--reuid={}", f[2]))
        .arg(format!("--regid={}", f[3]))
        .arg("--init-groups")
        .args(["--", "sudo", "-n"])
        .args(args);
    oidcd_tests::util::run(&mut cmd)
}

/// After logging in, alice (in oidc-admins) runs `sudo -n` as root; bob (developers only)
/// logs in too but sudo refuses him.
#[test]
fn admin_gets_sudo_and_others_do_not() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace();
    let _d = Daemon::start(&ns, &config(&op));
    login(&ns, &op, "alice");
    sudo_as(&ns, "alice", &["true"]).expect_ok();
    let root = sudo_as(&ns, "alice", &["id", "-u"]);
    root.expect_ok();
    assert_eq!(root.stdout.trim(), "0", "{root}");
    let group = ns.run("grep", &["^sudo:", "/etc/group"]);
    assert!(
        !group.stdout.contains("alice"),
        "/etc/group was written: {group}"
    );

    login(&ns, &op, "bob");
    let bob = sudo_as(&ns, "bob", &["true"]);
    assert_ne!(bob.code(), 0, "{bob}");
    assert!(!ns.run("id", &["-Gn", "bob"]).stdout.contains("sudo"));
}

/// alice leaves oidc-admins at the provider (restarted on the same port and keys with
/// `OP_ALICE_GROUPS=developers`); her next login drops `sudo` and sudo refuses her.
#[test]
fn leaving_the_admin_group_removes_sudo_at_the_next_login() {
    let keys = TempDir::new("op-keys");
    let keys_file = keys.join("jwks.json");
    let keys_file = keys_file.to_str().unwrap();
    let mut op = Provider::start(&[("OP_AUTO_CONSENT", "1"), ("OP_KEYS_FILE", keys_file)]);
    let port = op.port();
    let ns = namespace();
    let _d = Daemon::start(&ns, &config(&op));
    login(&ns, &op, "alice");
    sudo_as(&ns, "alice", &["true"]).expect_ok();

    op.kill();
    let op = Provider::start_on(
        port,
        &[
            ("OP_AUTO_CONSENT", "1"),
            ("OP_KEYS_FILE", keys_file),
            ("OP_ALICE_GROUPS", "developers"),
        ],
        None,
    );
    login(&ns, &op, "alice");
    let groups = ns.run("id", &["-Gn", "alice"]);
    assert!(!groups.stdout.contains("sudo"), "{groups}");
    assert!(!groups.stdout.contains("oidc-admins"), "{groups}");
    assert!(groups.stdout.contains("developers"), "{groups}");
    let refused = sudo_as(&ns, "alice", &["true"]);
    assert_ne!(refused.code(), 0, "{refused}");
}

/// With the background refresh every second, alice removed from oidc-admins at the provider
/// loses `sudo` without a new device-flow login: a new session's groups (initgroups, as an SSH
/// key login gets) no longer include it and sudo refuses her, while the account phase still
/// lets her in (she was not revoked).
#[test]
fn leaving_the_admin_group_removes_sudo_at_the_next_refresh() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace();
    let mut cfg = config(&op);
    cfg.set("refresh", "interval", "1");
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice");
    sudo_as(&ns, "alice", &["true"]).expect_ok();

    op.set_account("alice", serde_json::json!({"groups": ["developers"]}));
    let changed = std::time::Instant::now();
    assert!(
        oidcd_tests::wait_until(std::time::Duration::from_secs(20), || !ns
            .run("id", &["-Gn", "alice"])
            .stdout
            .contains("sudo")),
        "alice kept sudo; log:\n{}",
        d.logs()
    );
    oidcd_tests::measure(&format!(
        "login_sudo admin_removed_to_sudo_gone_ms={:.0} (refresh.interval = 1 s)",
        oidcd_tests::ms(changed.elapsed())
    ));
    let refused = sudo_as(&ns, "alice", &["true"]);
    assert_ne!(refused.code(), 0, "{refused}");
    assert!(
        ns.run("id", &["-Gn", "alice"])
            .stdout
            .contains("developers")
    );
    pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]).expect_ok();
}
