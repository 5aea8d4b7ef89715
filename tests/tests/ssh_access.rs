//! User story: everyday SSH access through the shipped `packaging/pam/sshd` stack and the real
//! OpenSSH client. A user's first session gets a home directory from the skeleton (no "Could
//! not chdir to home directory"), a refused login gets none; after one device-flow login, the
//! SSH public keys the provider holds for the user log them in without a prompt (sshd's
//! `AuthorizedKeysCommand` is the built `oidc-authorized-keys`, run as `nobody`), and stop
//! doing so when the key is removed at the provider (at the next refresh) or the user is
//! revoked.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use oidc_proto::frame::{self, MAX_FRAME_LEN};
use oidc_proto::{Envelope, Request};
use oidcd_tests::openssh::OpenSsh;
use oidcd_tests::pam::{Approver, PRESS_ENTER, Prompt, SERVICE};
use oidcd_tests::sshd::{KEYS_COMMAND, RESUME_PROMPT, Sshd, Stack};
use oidcd_tests::{
    Daemon, DaemonConfig, Namespace, Provider, Run, TempDir, hostile, measure, ms, pam, scenario,
    util,
};
use serde_json::json;

/// How long a client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The skeleton's marker file.
const MARKER: &str = ".oidcd-skel-marker";

/// A namespace with the `oidc-test` PAM service (for pamtester logins) and a skeleton holding
/// a marker file bound over /etc/skel (/home is always the namespace's own).
fn namespace() -> Namespace {
    let ns = Namespace::builder()
        .pam_dir()
        .empty_dir("/etc/skel")
        .start();
    pam::install_service(&ns, SERVICE, "");
    std::fs::write(ns.bound("/etc/skel").join(MARKER), "from the skeleton\n").unwrap();
    ns
}

/// `ssh alice@host CMD` with keyboard-interactive, approved at the provider by `who`.
fn device_login(sshd: &Sshd, op: &Provider, who: &str, cmd: &str) -> Run {
    let client = OpenSsh::spawn(sshd, "alice", cmd);
    let text = client
        .wait_prompt(1, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no prompt:\n{}", sshd.logs()));
    assert!(text.contains(PRESS_ENTER), "{text}");
    assert!(
        !text.contains("\\342"),
        "the QR code reached the SSH prompt: {text}"
    );
    let prompt = Prompt::parse(&text, Instant::now()).unwrap_or_else(|| panic!("{text}"));
    let a = Approver::user(op, who);
    op.approve(&prompt.code, a.login, a.password, &[])
        .expect_ok();
    client.answer(1, "");
    // A refused device login falls through to pam_unix's "Password:": an empty answer.
    client.answer(2, "");
    client.finish(CLIENT_TIMEOUT)
}

/// A refused SSH login (bob approves alice's code, or her own first connection, which the
/// fleet's UID rule ends with "connect again") leaves no home behind; alice's first session
/// through the shipped stack starts in a new /home/alice: hers, mode 0700, with the skeleton's
/// files (0600: the stack's `umask=0077`), and sshd says nothing about a missing home.
#[test]
fn the_first_ssh_session_gets_a_home_and_a_refused_login_none() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    let sshd = Sshd::start_with(&ns, Stack::Shipped);
    let home = ns.bound("/home").join("alice");

    let refused = device_login(&sshd, &op, "bob", "id -un");
    assert_ne!(refused.stdout.trim(), "alice", "{refused}");
    assert!(!home.exists(), "a refused login made {}", home.display());

    // The fleet's rule (`login.ssh_first_uid = "fleet"`): alice's first connection creates her
    // account with her fleet UID and is refused ("connect again", with a code), with no
    // session, so no home.
    let first = device_login(&sshd, &op, "alice", "id -un");
    assert_ne!(first.stdout.trim(), "alice", "{first}");
    assert!(!home.exists(), "a refused login made {}", home.display());

    // Her next connection is asked for that code; she presses Enter instead and approves a new
    // device code.
    let cmd = format!("pwd; stat -c '%a %u %U' . {MARKER}; cat {MARKER}");
    let client = OpenSsh::spawn(&sshd, "alice", &cmd);
    let asked = client
        .wait_prompt(1, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no prompt:\n{}", sshd.logs()));
    assert!(asked.contains(RESUME_PROMPT), "{asked}");
    client.answer(1, "");
    let text = client
        .wait_prompt(2, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no device code after Enter:\n{}", d.logs()));
    let prompt = Prompt::parse(&text, Instant::now()).unwrap_or_else(|| panic!("{text}"));
    let a = Approver::user(&op, "alice");
    op.approve(&prompt.code, a.login, a.password, &[])
        .expect_ok();
    client.answer(2, "");
    let run = client.finish(CLIENT_TIMEOUT);
    assert!(
        !run.stderr.contains("Could not chdir"),
        "{run}\n--- sshd ---\n{}",
        sshd.logs()
    );
    let uid = ns
        .getent("passwd", &["alice"])
        .stdout
        .split(':')
        .nth(2)
        .unwrap()
        .to_string();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "/home/alice".to_string(),
            format!("700 {uid} alice"),
            format!("600 {uid} alice"),
            "from the skeleton".to_string(),
        ],
        "{run}\n--- oidcd ---\n{}",
        d.logs()
    );
    assert!(home.join(MARKER).is_file());
}

/// alice's key at the provider, as `ssh_public_keys` (a list), and the private key.
struct Key {
    _dir: TempDir,
    private: PathBuf,
    public: String,
}

fn key() -> Key {
    let dir = TempDir::new("sshkey");
    let private = dir.join("id_ed25519");
    util::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
            .arg(&private),
    )
    .expect_ok();
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub"))
        .unwrap()
        .trim()
        .to_string();
    Key {
        _dir: dir,
        private,
        public,
    }
}

/// `ssh -i KEY alice@host id -un` (public key only, no prompt allowed).
fn key_login(sshd: &Sshd, key: &Key) -> Run {
    OpenSsh::spawn_with_key(sshd, "alice", &key.private, "id -un").finish(CLIENT_TIMEOUT)
}

fn logged_in(r: &Run) -> bool {
    r.code() == 0 && r.stdout.trim() == "alice"
}

/// The keys oidcctl shows for alice (`oidcctl user keys alice`, as root).
fn served(d: &Daemon<'_>) -> String {
    let r = d.oidcctl(&["user", "keys", "alice"]);
    r.expect_ok();
    r.stdout
}

/// After one device-flow login, alice's key from the provider logs her in over SSH with no
/// prompt at all (`BatchMode=yes`), through the shipped stack's account phase; the command run
/// as nobody prints exactly that key, and a non-root peer learns nothing else. The key removed
/// at the provider stops working at the next refresh (1 s interval); given back, it works
/// again; `oidcctl user revoke alice` refuses it at once, and `oidcctl user keys` says why.
#[test]
fn provider_keys_log_in_without_a_prompt_until_removed_or_revoked() {
    let key = key();
    let mut alice = oidcd_tests::alice_claims();
    alice["ssh_public_keys"] = json!([key.public]);
    let accounts = json!({ "alice": { "password": "alice-pw", "claims": alice } }).to_string();
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1"), ("OP_ACCOUNTS", &accounts)]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "ssh_keys_claim", "\"ssh_public_keys\"");
    cfg.set("refresh", "interval", "1");
    let d = Daemon::start(&ns, &cfg);
    let sshd = Sshd::start_with_keys(&ns, Stack::Shipped);

    let unknown = key_login(&sshd, &key);
    assert!(!logged_in(&unknown), "a key for an unknown user: {unknown}");
    scenario::login_as(&ns, &op, "alice", "alice")
        .pam
        .expect_ok();

    let started = Instant::now();
    let first = key_login(&sshd, &key);
    assert!(
        logged_in(&first),
        "{first}\n--- sshd ---\n{}\n--- oidcd ---\n{}",
        sshd.logs(),
        d.logs()
    );
    let key_login_ms = ms(started.elapsed());
    let logs = sshd.logs();
    assert!(logs.contains("Accepted publickey for alice"), "{logs}");
    let body = key.public.split(' ').take(2).collect::<Vec<_>>().join(" ");
    assert!(served(&d).starts_with(&format!("# 1 key(s) served\n{body} alice@laptop\n")));
    let as_nobody = ns.run_as(65534, 65534, KEYS_COMMAND, &["alice"]);
    as_nobody.expect_ok();
    assert_eq!(as_nobody.stdout, format!("{body} alice@laptop\n"));
    let ask = Envelope::new(Request::GetSshKeys {
        name: "alice".into(),
    });
    let reply = hostile::send_as(&ns, 65534, &[frame::encode(&ask, MAX_FRAME_LEN).unwrap()]);
    let answer = &reply[0].frames[0]["body"];
    assert_eq!(
        answer,
        &json!({"type": "ssh_keys", "keys": [format!("{body} alice@laptop")]})
    );

    op.set_account("alice", json!({ "ssh_public_keys": [] }));
    let removed = Instant::now();
    assert!(
        util::wait_until(Duration::from_secs(15), || served(&d)
            .starts_with("# 0 key(s) served")),
        "the key is still served:\n{}",
        d.logs()
    );
    let removed_ms = ms(removed.elapsed());
    let refused = key_login(&sshd, &key);
    assert!(
        !logged_in(&refused),
        "a key removed at the provider: {refused}"
    );

    op.set_account("alice", json!({ "ssh_public_keys": [key.public] }));
    assert!(util::wait_until(Duration::from_secs(15), || served(&d)
        .starts_with("# 1 key(s) served")));
    assert!(logged_in(&key_login(&sshd, &key)));

    d.oidcctl(&["user", "revoke", "alice"]).expect_ok();
    let revoked = key_login(&sshd, &key);
    assert!(!logged_in(&revoked), "a revoked user's key: {revoked}");
    let shown = served(&d);
    assert!(
        shown.starts_with("# no key served: access of alice was revoked"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("# stored, not served: {body}")),
        "{shown}"
    );
    let as_nobody = ns.run_as(65534, 65534, KEYS_COMMAND, &["alice"]);
    as_nobody.expect_ok();
    assert_eq!(as_nobody.stdout, "");
    measure(&format!(
        "ssh_access key_login={key_login_ms:.0}ms key_removed_to_not_served={removed_ms:.0}ms \
         (refresh.interval = 1 s)"
    ));
}
