//! The harness itself: a test namespace changes nothing the host sees, serves the built NSS
//! module to setuid programs too (sudo), and leaves no process or file behind.

use std::path::Path;

use oidcd_tests::{Daemon, DaemonConfig, Namespace, alice_claims, bob_claims, paths};
use serde_json::json;

/// Mounts, files written into the bound copies and local users stay inside the namespace;
/// dropping it ends the holder and removes its temp dir.
#[test]
fn namespace_changes_are_invisible_on_the_host() {
    let lib = paths::multiarch_lib_dir().join("libnss_oidc.so.2");
    let host_nss = std::fs::read_to_string("/etc/nsswitch.conf").unwrap();
    let host_lib = std::fs::metadata(&lib).ok().map(|m| m.len());
    let ns = Namespace::builder()
        .local_user("nsonly:x:4343:4343::/nonexistent:/bin/sh")
        .local_group("nsonly:x:4343:")
        .pam_dir()
        .sudoers_dir()
        .start();
    let nss = ns.sh("grep -E '^(passwd|group):' /etc/nsswitch.conf");
    nss.expect_ok();
    assert_eq!(nss.lines().len(), 2, "{nss}");
    assert!(
        nss.lines().iter().all(|l| l.ends_with("files oidc")),
        "{nss}"
    );
    let size = ns.run("stat", &["-L", "-c", "%s", &lib.to_string_lossy()]);
    size.expect_ok();
    let built = std::fs::metadata(paths::nss_module()).unwrap().len();
    assert_eq!(
        size.stdout.trim(),
        built.to_string(),
        "not the built module inside"
    );

    let run =
        ns.sh("stat -c '%a %U' /run/oidcd && touch /run/oidcd/marker && findmnt -n -o FSTYPE /run");
    run.expect_ok();
    assert_eq!(run.lines(), ["755 root", "tmpfs"], "{run}");
    std::fs::write(
        ns.pam_dir().join("oidcd-harness-test"),
        "auth required pam_permit.so\n",
    )
    .unwrap();
    std::fs::write(ns.sudoers_dir().join("oidcd-harness-test"), "# nothing\n").unwrap();
    ns.run("test", &["-f", "/etc/pam.d/oidcd-harness-test"])
        .expect_ok();
    ns.run("test", &["-f", "/etc/sudoers.d/oidcd-harness-test"])
        .expect_ok();
    ns.getent("passwd", &["nsonly"]).expect_ok();
    let pam = ns.run(
        "pamtester",
        &["oidcd-harness-test", "nsonly", "authenticate"],
    );
    pam.expect_ok();

    // The host sees none of it.
    assert!(!Path::new("/run/oidcd/marker").exists());
    assert!(!Path::new("/etc/pam.d/oidcd-harness-test").exists());
    assert!(!Path::new("/etc/sudoers.d/oidcd-harness-test").exists());
    assert_eq!(
        std::fs::read_to_string("/etc/nsswitch.conf").unwrap(),
        host_nss,
        "the host's nsswitch.conf changed"
    );
    assert_eq!(
        std::fs::metadata(&lib).ok().map(|m| m.len()),
        host_lib,
        "the host's lib dir changed"
    );
    let host = std::process::Command::new("getent")
        .args(["passwd", "nsonly"])
        .output()
        .unwrap();
    assert_eq!(host.status.code(), Some(2));

    let (pid, dir) = (ns.pid(), ns.dir().path().to_path_buf());
    drop(ns);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "holder still runs"
    );
    assert!(!dir.exists(), "temp dir left behind");
}

/// sudo (setuid) sees the module through the namespace: a `%group` rule matches an admin's
/// provider group and the local `sudo` group granted by admin_groups, both known only from
/// initgroups; a user without them is refused.
#[test]
fn sudo_rules_match_groups_served_by_the_module() {
    let ns = Namespace::builder().sudoers_dir().start();
    let mut cfg = DaemonConfig::new();
    cfg.admin_groups(&["oidc-admins"]);
    let d = Daemon::start(&ns, &cfg);
    d.import(&json!([alice_claims(), bob_claims()])).expect_ok();
    let rules = "%oidc-admins ALL=(ALL) NOPASSWD: /usr/bin/true\n\
                 %sudo ALL=(ALL) NOPASSWD: /usr/bin/id\n";
    let file = ns.sudoers_dir().join("oidcd-test");
    std::fs::write(&file, rules).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    ns.run("visudo", &["-cf", "/etc/sudoers.d/oidcd-test"])
        .expect_ok();

    let alice = ns.run("sudo", &["-l", "-U", "alice"]);
    alice.expect_ok();
    assert!(alice.stdout.contains("NOPASSWD: /usr/bin/true"), "{alice}");
    assert!(alice.stdout.contains("NOPASSWD: /usr/bin/id"), "{alice}");
    let bob = ns.run("sudo", &["-l", "-U", "bob"]);
    assert!(bob.stdout.contains("not allowed"), "{bob}");

    let uid = ns
        .getent("passwd", &["alice"])
        .stdout
        .split(':')
        .nth(2)
        .unwrap()
        .to_string();
    let as_alice = ns.run(
        "setpriv",
        &[
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--init-groups",
            "--",
            "sudo",
            "-n",
            "/usr/bin/id",
            "-un",
        ],
    );
    as_alice.expect_ok();
    assert_eq!(as_alice.stdout.trim(), "root", "{as_alice}");
}
