//! User story: a person who has never logged in to this host logs in over SSH (a real
//! OpenSSH sshd with keyboard-interactive and the real PAM and NSS modules): sshd resolves the
//! unknown name through the daemon's provisional entry, the client sees one prompt with URL,
//! code and host, and after the approval the session runs with the provisional UID and the
//! provider's groups. Nobody else gets provisional entries, and a wrong approval is refused.

use std::time::{Duration, Instant};

use oidcd_tests::openssh::OpenSsh;
use oidcd_tests::pam::{Approver, PRESS_ENTER, Prompt};
use oidcd_tests::sshd::{SSHD, SshLogin, Sshd, Stack, ssh_login, ssh_login_with};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, measure, ms};

/// The daemon's config: the provider, 0.2 s polls, oidc-admins are admins (local `sudo`),
/// `login.ssh_first_login` at its default (on).
fn config(op: &Provider) -> DaemonConfig {
    let mut cfg = DaemonConfig::for_provider(op);
    cfg.admin_groups(&["oidc-admins"]);
    cfg
}

/// The UID of the provisional entry the daemon logged for `name`.
fn provisional_uid(d: &Daemon<'_>, name: &str) -> Option<u32> {
    let logs = d.logs();
    let marker = format!("provisional entry for {name} (uid ");
    let start = logs.find(&marker)? + marker.len();
    logs[start..].split(')').next()?.parse().ok()
}

/// The GID of a group as the namespace sees it.
fn gid(ns: &Namespace, group: &str) -> String {
    let r = ns.getent("group", &[group]);
    r.expect_ok();
    r.stdout.split(':').nth(2).unwrap().to_string()
}

/// With `login.ssh_first_uid = "provisional"`, alice's first login over SSH: sshd sees her
/// before authentication (the provisional entry, no "Invalid user"), the client gets one prompt
/// with URL, code and host, and after the approval `id` in the session shows the provisional
/// UID, her provider groups and `sudo`. Her second login keeps the UID; `getent passwd` from
/// any other program never sees provisional entries. (At the default, "fleet", the first login
/// is refused once and the account gets the fleet UID: `fleet::alice_by_ssh_on_one_host_and_at_the_console_on_another_gets_one_uid`.)
#[test]
fn first_ssh_login_of_a_new_user_succeeds_through_the_provisional_entry() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    let mut cfg = config(&op);
    cfg.set("login", "ssh_first_uid", "\"provisional\"");
    let d = Daemon::start(&ns, &cfg);
    let sshd = Sshd::start(&ns);
    // What oidcd checks against login.ssh_programs.
    let exe = std::fs::read_link(format!("/proc/{}/exe", sshd.pid())).unwrap();
    assert_eq!(exe, std::path::Path::new(SSHD));
    assert_eq!(ns.getent("passwd", &["alice"]).code(), 2);

    let first = ssh_login(
        &sshd,
        "alice",
        Some(Approver::user(&op, "alice")),
        Some("id"),
    );
    assert!(
        first.authenticated(),
        "not authenticated:\n{first}\n--- sshd ---\n{}\n--- oidcd ---\n{}",
        sshd.logs(),
        d.logs()
    );
    first.approval.as_ref().unwrap().expect_ok();
    assert_eq!(first.prompts().len(), 1, "{first}");
    let p = first.prompt.as_ref().expect("no prompt with a code");
    assert!(p.url.starts_with(&op.verification_uri()), "{}", p.text);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(p.host.as_deref(), Some(host.trim()), "{}", p.text);

    let uid = provisional_uid(&d, "alice").unwrap_or_else(|| panic!("{}", d.logs()));
    let id = first.command().expect("no command ran");
    assert_eq!(id["rc"], 0, "{first}");
    let out = id["stdout"].as_str().unwrap();
    assert!(
        out.starts_with(&format!("uid={uid}(alice) gid={uid}(alice) groups=")),
        "{out}"
    );
    for g in ["oidc-admins", "developers", "sudo"] {
        let want = format!("{}({g})", gid(&ns, g));
        assert!(out.contains(&want), "{want} missing: {out}");
    }
    let sshd_log = sshd.logs();
    assert!(!sshd_log.contains("Invalid user alice"), "{sshd_log}");
    assert!(
        sshd_log.contains("Accepted keyboard-interactive/pam for alice"),
        "{sshd_log}"
    );
    let pw = ns.getent("passwd", &["alice"]);
    pw.expect_ok();
    assert_eq!(pw.stdout.split(':').nth(2), Some(uid.to_string().as_str()));

    let second = ssh_login(
        &sshd,
        "alice",
        Some(Approver::user(&op, "alice")),
        Some("id -u"),
    );
    assert!(second.authenticated(), "{second}");
    let id2 = second.command().expect("no command ran");
    assert_eq!(id2["stdout"].as_str().unwrap().trim(), uid.to_string());
    assert_eq!(
        d.logs().matches("provisional entry for alice (uid").count(),
        1,
        "a second provisional entry for a known user:\n{}",
        d.logs()
    );
    assert_eq!(ns.getent("passwd", &["nosuchuser"]).code(), 2);

    let t = |l: &SshLogin, ev: &str| {
        l.events
            .iter()
            .find(|e| e["event"] == ev)
            .and_then(|e| e["t"].as_f64())
            .unwrap_or(f64::NAN)
    };
    measure(&format!(
        "login_sshd first_login total={:.0}ms (prompt_at={:.0}ms authenticated_at={:.0}ms, \
         approval_script={:.0}ms) second_login total={:.0}ms",
        ms(first.client.elapsed),
        t(&first, "info_request") * 1000.0,
        t(&first, "auth") * 1000.0,
        ms(first.approval.as_ref().unwrap().elapsed),
        ms(second.client.elapsed)
    ));
}

/// bob approving alice's SSH login: not authenticated, the SSH user is told bob approved, and
/// alice exists for nobody but sshd (her provisional entry is sshd's alone).
#[test]
fn another_person_approving_over_ssh_is_not_authenticated() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    let d = Daemon::start(&ns, &config(&op));
    let sshd = Sshd::start(&ns);
    let login = ssh_login(&sshd, "alice", Some(Approver::user(&op, "bob")), Some("id"));
    login.approval.as_ref().unwrap().expect_ok();
    assert!(!login.authenticated(), "{login}");
    // sshd holds the module's error message back until the exchange ends, then sends it as
    // the instruction of a last INFO_REQUEST without prompts.
    assert!(
        login.events.iter().any(|e| e["event"] == "info_request"
            && e["instruction"]
                .as_str()
                .is_some_and(|i| i.contains("bob approved this login, not alice"))),
        "the SSH user was not told who approved:\n{login}"
    );
    assert!(login.command().is_none(), "{login}");
    assert!(d.logs().contains("is bob, not alice"), "{}", d.logs());
    assert!(provisional_uid(&d, "alice").is_some(), "{}", d.logs());
    assert_eq!(ns.getent("passwd", &["alice"]).code(), 2);
    assert_eq!(ns.getent("passwd", &["bob"]).code(), 2);
    assert!(
        !sshd.logs().contains("Accepted keyboard-interactive"),
        "{}",
        sshd.logs()
    );
}

/// The SSH user presses Enter before approving and approves 3.5 s later (the daemon has
/// answered "pending" meanwhile): still one prompt, and the login succeeds (a first login
/// that keeps its provisional UID, `login.ssh_first_uid = "provisional"`). (The module's
/// "Waiting for approval..." is held back by sshd and arrives empty at the end: OpenSSH
/// delivers PAM_TEXT_INFO only with a following prompt.)
#[test]
fn ssh_login_with_enter_before_approval_succeeds() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    let mut cfg = config(&op);
    cfg.set("login", "ssh_first_uid", "\"provisional\"");
    let _d = Daemon::start(&ns, &cfg);
    let sshd = Sshd::start(&ns);
    let login = ssh_login_with(
        &sshd,
        "alice",
        Some(Approver::user(&op, "alice")),
        Some("id -un"),
        Some(Duration::from_millis(3500)),
    );
    assert!(login.authenticated(), "{login}\n{}", sshd.logs());
    assert_eq!(login.prompts().len(), 1, "{login}");
    let cmd = login.command().expect("no command ran");
    assert_eq!(cmd["stdout"], "alice\n", "{login}");
}

/// A local user's password login with the real OpenSSH client through the shipped stack: the
/// client's run, and the prompts it showed.
fn password_login(sshd: &Sshd, user: &str, password: &str) -> (oidcd_tests::Run, Vec<String>) {
    let client = OpenSsh::spawn(sshd, user, "id -un");
    client.answer(1, password);
    let run = client.finish(Duration::from_secs(60));
    (run, Vec::new())
}

/// issue 15 #9: with the daemon frozen (SIGSTOP), a local user with a password still logs in
/// over SSH (real OpenSSH client, the shipped `packaging/pam/sshd` stack) within 3 s: the PAM
/// module learns within its quarter-second deadline that the daemon does not answer, in `auth`
/// (`LoginPrecheck`) and in `account`, instead of waiting 15 s for `LoginStart` and 3 s more
/// (27.2 s measured before). The rest of the delay is the NSS module's deadline on each lookup
/// sshd makes for the user (`id localbob` with the daemon frozen is measured beside it). The
/// same login with the daemon running and stopped is measured too.
#[test]
fn a_frozen_daemon_costs_a_local_password_login_under_3s() {
    let ns = Namespace::builder()
        .pam_dir()
        .local_user_with_password("localbob:x:4242:4242:Local Bob:/tmp:/bin/sh", "bob-pw")
        .local_group("localbob:x:4242:")
        .start();
    let mut d = Daemon::start(&ns, &DaemonConfig::new());
    let sshd = Sshd::start_with(&ns, Stack::Shipped);
    let login = |what: &str, d: &Daemon<'_>| {
        let (run, _) = password_login(&sshd, "localbob", "bob-pw");
        assert_eq!(
            run.stdout.trim(),
            "localbob",
            "{what}: not logged in:\n{run}\n--- sshd ---\n{}\n--- oidcd ---\n{}",
            sshd.logs(),
            d.logs()
        );
        run.elapsed
    };
    let up = login("daemon up", &d);
    d.sigstop();
    let frozen = login("daemon frozen", &d);
    let id_frozen = ns.run("id", &["localbob"]).elapsed;
    d.sigcont();
    d.stop();
    let stopped = login("daemon stopped", &d);
    measure(&format!(
        "login_sshd local_password_login daemon_up={:.0}ms daemon_stopped={:.0}ms \
         daemon_frozen={:.0}ms (id_localbob_frozen={:.0}ms)",
        ms(up),
        ms(stopped),
        ms(frozen),
        ms(id_frozen)
    ));
    assert!(
        frozen < Duration::from_secs(3),
        "a frozen daemon delayed a local login by {frozen:?}"
    );
}

/// issue 15 #4, the reported scenario with the real OpenSSH client and the shipped stack: three
/// `ssh alice@host` connections left at the device prompt, never approved, then alice herself.
/// She logs in. With `login.max_logins_per_source = 3` all four come from one address, so her
/// login evicts the oldest idle one, whose user is told why when they press Enter. Before, the
/// fourth got "too many logins in progress for alice" and a password prompt she cannot answer.
/// (Her first login keeps its provisional UID: `login.ssh_first_uid = "provisional"`.)
#[test]
fn idle_attempts_naming_alice_do_not_lock_her_out() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    let mut cfg = config(&op);
    cfg.set("login", "max_logins_per_source", "3");
    cfg.set("login", "ssh_first_uid", "\"provisional\"");
    let d = Daemon::start(&ns, &cfg);
    let sshd = Sshd::start_with(&ns, Stack::Shipped);
    let prompt_timeout = Duration::from_secs(20);
    let idle: Vec<OpenSsh> = (0..3)
        .map(|_| OpenSsh::spawn(&sshd, "alice", "id -un"))
        .collect();
    for c in &idle {
        let p = c.wait_prompt(1, prompt_timeout);
        assert!(
            p.as_deref().is_some_and(|p| p.contains(PRESS_ENTER)),
            "an idle attempt got no device prompt: {p:?}\n{}",
            d.logs()
        );
    }
    let alice = OpenSsh::spawn(&sshd, "alice", "id -un");
    let text = alice
        .wait_prompt(1, prompt_timeout)
        .unwrap_or_else(|| panic!("alice got no prompt:\n{}", d.logs()));
    let prompt = Prompt::parse(&text, Instant::now()).unwrap_or_else(|| panic!("{text}"));
    op.approve(&prompt.code, "alice", "alice-pw", &[])
        .expect_ok();
    alice.answer(1, "");
    let run = alice.finish(Duration::from_secs(60));
    assert_eq!(
        run.stdout.trim(),
        "alice",
        "alice was locked out:\n{run}\n--- oidcd ---\n{}\n--- sshd ---\n{}",
        d.logs(),
        sshd.logs()
    );
    let logs = d.logs();
    assert_eq!(
        logs.matches("evicted for a newer one from 127.0.0.1")
            .count(),
        1,
        "{logs}"
    );
    // The idle attempts press Enter: the evicted one (the oldest login) is told why.
    for c in &idle {
        c.answer(1, "");
    }
    let told = |c: &OpenSsh| {
        c.prompt(2)
            .is_some_and(|p| p.contains("to make room for newer ones"))
    };
    assert!(
        oidcd_tests::wait_until(prompt_timeout, || idle.iter().any(told)),
        "no idle attempt was told it was evicted: {:?}",
        idle.iter().map(|c| c.prompt(2)).collect::<Vec<_>>()
    );
    drop(idle);
}

/// issue 15 #6 with the real sshd and OpenSSH client, under `login.ssh_first_uid =
/// "provisional"`: while alice waits at the device prompt (sshd holds her provisional UID), an
/// ID-map import gives that UID to mallory. Her entry is withdrawn, and her approved login is
/// refused instead of ending with another UID than the one sshd would run her session as;
/// mallory alone has the UID.
#[test]
fn a_provisional_uid_given_away_meanwhile_refuses_the_ssh_login() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    let mut cfg = config(&op);
    cfg.set("login", "ssh_first_uid", "\"provisional\"");
    let d = Daemon::start(&ns, &cfg);
    let sshd = Sshd::start(&ns);
    let client = OpenSsh::spawn(&sshd, "alice", "id -un");
    let text = client
        .wait_prompt(1, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no prompt:\n{}", d.logs()));
    let uid = provisional_uid(&d, "alice").unwrap_or_else(|| panic!("{}", d.logs()));
    let map = serde_json::json!({
        "format": "oidcd-idmap-1",
        "issuer": op.issuer(),
        "users": [{"sub": "mallory-sub", "name": "mallory", "uid": uid, "gid": uid}],
        "groups": []
    });
    d.import(&map).expect_ok();
    assert!(
        d.wait_log(
            &format!("provisional entry for alice withdrawn: its uid {uid} now belongs to the user mallory"),
            Duration::from_secs(5)
        ),
        "{}",
        d.logs()
    );
    let prompt = Prompt::parse(&text, Instant::now()).unwrap_or_else(|| panic!("{text}"));
    op.approve(&prompt.code, "alice", "alice-pw", &[])
        .expect_ok();
    client.answer(1, "");
    let run = client.finish(Duration::from_secs(60));
    assert_ne!(run.stdout.trim(), "alice", "alice got in:\n{run}");
    assert!(
        d.logs().contains(&format!(
            "alice resolved to UID {uid} when the login began, and the program running it \
             holds that UID: it now belongs to the user mallory"
        )),
        "{}",
        d.logs()
    );
    assert_eq!(ns.getent("passwd", &["alice"]).code(), 2);
    let mallory = ns.getent("passwd", &[&uid.to_string()]);
    assert!(mallory.stdout.starts_with("mallory:"), "{mallory}");
}
