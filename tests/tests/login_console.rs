//! User story: the logins that happen on a terminal, each on a real pseudo-terminal with the
//! real program: `sudo` asks an oidcd user to approve a device code (host and "sudo" named,
//! approved by that same user, sudo's own timestamp as the grace), `su - alice` from a local
//! user, and `login alice` as on a console (the QR code drawn there, a home made at the first
//! session). Once through the shipped `packaging/pam/{sudo,su,login}`, installed as they are,
//! and once through the stock Debian stacks with the `oidc` profile enabled by the real
//! `pam-auth-update` (on copies of `/etc/pam.d`, `/usr/share/pam-configs` and `/var/lib/pam`
//! bound in the namespace).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use oidcd_tests::pam::{PRESS_ENTER, Prompt};
use oidcd_tests::pty::Pty;
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, measure, ms, paths};
use serde_json::json;

/// How long a prompt or an answer may take to show.
const SHOW: Duration = Duration::from_secs(20);

/// The local user who runs `su`.
const LOCAL_UID: u32 = 4242;

/// Which PAM configuration the namespace gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pam {
    /// `packaging/pam/{sudo,su,login}` as `/etc/pam.d/{sudo,su,login}`, as they are.
    Shipped,
    /// The host's stock stacks, and `pam-auth-update --enable oidc` with `packaging/pam/oidc`.
    Profile,
}

/// A namespace with a local user, a sudoers rule that asks admins to authenticate
/// (`%sudo ALL=(ALL) ALL`, no lecture: sudo would write its "lectured" file on the host), and
/// the PAM configuration `pam` (/home and /var/log are the namespace's own).
fn namespace(pam: Pam) -> Namespace {
    let mut b = Namespace::builder()
        .pam_dir()
        .sudoers_dir()
        .local_user(&format!(
            "localbob:x:{LOCAL_UID}:{LOCAL_UID}:Local Bob:/tmp:/bin/sh"
        ))
        .local_group(&format!("localbob:x:{LOCAL_UID}:"));
    if pam == Pam::Profile {
        b = b
            .copied_dir("/usr/share/pam-configs")
            .copied_dir("/var/lib/pam");
    }
    let ns = b.start();
    let rule = ns.sudoers_dir().join("oidcd-test");
    std::fs::write(&rule, "Defaults lecture=never\n%sudo ALL=(ALL) ALL\n").unwrap();
    std::fs::set_permissions(&rule, std::fs::Permissions::from_mode(0o440)).unwrap();
    let shipped = paths::workspace_dir().join("packaging/pam");
    match pam {
        Pam::Shipped => {
            for name in ["sudo", "su", "login"] {
                std::fs::copy(shipped.join(name), ns.pam_dir().join(name)).unwrap();
            }
        }
        Pam::Profile => {
            let configs = ns.bound("/usr/share/pam-configs");
            // Only the profiles this host has seen, and ours: a profile installed on the host
            // but never enabled (sssd's, say) would be switched on by its Default: yes.
            let seen = std::fs::read_to_string("/var/lib/pam/seen").unwrap_or_default();
            for e in std::fs::read_dir(&configs).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !seen.lines().any(|l| l.trim() == name) {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
            std::fs::copy(shipped.join("oidc"), configs.join("oidc")).unwrap();
            let mut cmd = ns.command("pam-auth-update");
            cmd.args(["--enable", "oidc"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            oidcd_tests::util::run(&mut cmd).expect_ok();
            let auth = std::fs::read_to_string(ns.pam_dir().join("common-auth")).unwrap();
            assert!(auth.contains("pam_oidc.so"), "{auth}");
            let session = std::fs::read_to_string(ns.pam_dir().join("common-session")).unwrap();
            assert!(session.contains("pam_mkhomedir.so umask=0077"), "{session}");
        }
    }
    ns
}

/// The daemon, with alice imported (in oidc-admins, so in the local `sudo` group).
fn daemon<'ns>(ns: &'ns Namespace, op: &Provider) -> Daemon<'ns> {
    let mut cfg = DaemonConfig::for_provider(op);
    cfg.admin_groups(&["oidc-admins"]);
    let d = Daemon::start(ns, &cfg);
    d.import(&json!([oidcd_tests::alice_claims()])).expect_ok();
    d
}

/// The `n`th device prompt on `pty` (1 for the first), once it is whole.
fn nth_prompt(pty: &Pty, n: usize, what: &str) -> Prompt {
    assert!(
        pty.wait_for(PRESS_ENTER, n, SHOW),
        "{what}: no prompt {n}:\n{}",
        pty.output()
    );
    let out = pty.output();
    let start = out.match_indices("Visit ").nth(n - 1).map_or(0, |(i, _)| i);
    Prompt::parse(&out[start..], Instant::now()).unwrap_or_else(|| panic!("{what}:\n{out}"))
}

/// `who` approves the prompt's code at the provider (their own password).
fn approve(op: &Provider, p: &Prompt, who: &str) {
    op.approve(&p.code, who, &format!("{who}-pw"), &[])
        .expect_ok();
}

/// The host name the prompts must show.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// alice's UID and GID.
fn ids(ns: &Namespace, user: &str) -> (String, String) {
    let pw = ns.getent("passwd", &[user]);
    pw.expect_ok();
    let f: Vec<&str> = pw.stdout.trim_end().split(':').collect();
    (f[2].to_string(), f[3].to_string())
}

/// `sudo id -u` as alice on a pty, then `sudo -n id -u`; with `bob_first`, bob approves the
/// first code (refused: not alice), pam_unix's password prompt is answered empty, and sudo
/// asks again. Returns the whole screen and the time from Enter to root.
fn sudo_as_alice(ns: &Namespace, op: &Provider, bob_first: bool) -> (String, Duration) {
    let (uid, gid) = ids(ns, "alice");
    let mut cmd = ns.command("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--init-groups", "--", "sh", "-c"])
        .arg("sudo id -u && echo FIRST-OK && sudo -n id -u && echo GRACE-OK");
    let mut pty = Pty::spawn(&mut cmd);
    let mut n = 1;
    if bob_first {
        let p = nth_prompt(&pty, n, "sudo");
        approve(op, &p, "bob");
        pty.send("\n");
        assert!(
            pty.wait_until(SHOW, |o| o.contains("assword")),
            "no password prompt after bob's approval:\n{}",
            pty.output()
        );
        pty.send("\n");
        n += 1;
    }
    let p = nth_prompt(&pty, n, "sudo");
    assert_eq!(p.host.as_deref(), Some(host().as_str()), "{}", p.text);
    assert!(p.text.contains("to approve sudo on "), "{}", p.text);
    approve(op, &p, "alice");
    let enter = Instant::now();
    pty.send("\n");
    assert!(
        pty.wait_for("FIRST-OK", 1, SHOW),
        "sudo refused alice:\n{}",
        pty.output()
    );
    let to_root = enter.elapsed();
    let (status, out) = pty.finish(SHOW);
    assert!(status.success(), "{out}");
    (out, to_root)
}

/// `su - alice -c CMD` run by the local user on a pty, alice approving.
fn su_alice(ns: &Namespace, op: &Provider, cmd: &str) -> String {
    let mut c = ns.command("setpriv");
    c.arg(format!("--reuid={LOCAL_UID}"))
        .arg(format!("--regid={LOCAL_UID}"))
        .args(["--clear-groups", "--", "su", "-", "alice", "-c", cmd]);
    let mut pty = Pty::spawn(&mut c);
    let p = nth_prompt(&pty, 1, "su");
    assert!(p.text.contains("to approve su on "), "{}", p.text);
    approve(op, &p, "alice");
    pty.send("\n");
    let (status, out) = pty.finish(SHOW);
    assert!(status.success(), "su failed:\n{out}");
    out
}

/// `login alice` on a pty as a console getty would run it; alice approves, then types a
/// command in her shell. Returns the screen.
fn console_login(ns: &Namespace, op: &Provider) -> String {
    let mut pty = Pty::spawn(ns.command("login").arg("alice"));
    let p = nth_prompt(&pty, 1, "login");
    assert!(p.text.contains("to log in to "), "{}", p.text);
    approve(op, &p, "alice");
    pty.send("\n");
    // login flushes what was typed ahead: type once the shell shows its prompt.
    assert!(
        pty.wait_until(SHOW, |o| o
            .rsplit(PRESS_ENTER)
            .next()
            .is_some_and(|after| after.contains("$ "))),
        "no shell prompt:\n{}",
        pty.output()
    );
    pty.send("echo \"SHELL-OF-$(id -un)-IN-$PWD\"; exit\n");
    assert!(
        pty.wait_for("SHELL-OF-alice-IN-/home/alice", 1, SHOW),
        "no shell for alice:\n{}",
        pty.output()
    );
    let (_, out) = pty.finish(SHOW);
    out
}

/// The shipped sudo stack: alice runs sudo without NOPASSWD and is shown a device code naming
/// this host and sudo, with the QR code (a terminal draws it); bob approving it does not make
/// her root (pam_unix's prompt follows, sudo says "Sorry, try again." and asks again; the
/// daemon logs who approved, and sudo's default `pam_silent` keeps the module's reason off the
/// screen), her own approval does, and `sudo -n` right after needs nothing: sudo's timestamp
/// is the grace.
#[test]
fn sudo_asks_the_calling_user_through_the_shipped_stack() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace(Pam::Shipped);
    let d = daemon(&ns, &op);
    let (out, to_root) = sudo_as_alice(&ns, &op, true);
    assert!(out.contains('█'), "no QR code on the terminal:\n{out}");
    assert!(out.contains("Sorry, try again."), "{out}");
    assert_eq!(out.matches(PRESS_ENTER).count(), 2, "{out}");
    assert!(out.contains("GRACE-OK"), "sudo -n asked again:\n{out}");
    assert!(d.logs().contains("is bob, not alice"), "{}", d.logs());
    measure(&format!(
        "login_console sudo enter_to_root={:.0}ms",
        ms(to_root)
    ));
}

/// The shipped su and login stacks: `su - alice` from a local user asks for alice's approval
/// and starts her login shell in a new /home/alice; `login alice` on a terminal shows the QR
/// code and gives her a shell there.
#[test]
fn su_and_login_through_the_shipped_stacks() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace(Pam::Shipped);
    let _d = daemon(&ns, &op);
    let out = su_alice(&ns, &op, "id -un; pwd; stat -c %a .");
    assert!(out.contains('█'), "no QR code on the terminal:\n{out}");
    let tail: Vec<&str> = out.lines().rev().take(3).map(str::trim).collect();
    assert_eq!(tail, ["700", "/home/alice", "alice"], "{out}");
    let out = console_login(&ns, &op);
    assert!(out.contains('█'), "{out}");
}

/// With the `oidc` profile enabled by pam-auth-update, the stock su, login and sudo stacks ask
/// for the device flow (QR drawn, home made at the first session), and root's `su` to alice
/// still needs no approval (pam_rootok).
#[test]
fn su_login_and_sudo_through_the_pam_auth_update_profile() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace(Pam::Profile);
    let _d = daemon(&ns, &op);
    let out = su_alice(&ns, &op, "id -un; pwd");
    assert!(out.contains('█'), "{out}");
    let tail: Vec<&str> = out.lines().rev().take(2).map(str::trim).collect();
    assert_eq!(tail, ["/home/alice", "alice"], "{out}");
    console_login(&ns, &op);
    let (out, _) = sudo_as_alice(&ns, &op, false);
    assert!(out.contains("GRACE-OK"), "{out}");
    let root = ns.run("su", &["-", "alice", "-c", "id -un"]);
    assert_eq!(root.stdout.trim(), "alice", "{root}");
}
