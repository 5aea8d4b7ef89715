//! User story: a person logs in through the real `pam_oidc.so` (driven by pamtester) with the
//! device flow: the prompt shows a URL and code, the person approves at the provider, and
//! PAM succeeds; every way the approval can go wrong ends in a PAM failure with its own
//! message, and the PAM account phase follows the daemon's later decisions.

use std::process::Command;
use std::time::{Duration, Instant};

use oidcd_tests::pam::{self, Approver, PamLogin, Pamtester, SERVICE};
use oidcd_tests::util;
use oidcd_tests::{
    Daemon, DaemonConfig, Namespace, Provider, bob_claims, measure, median, ms, wait_until,
};
use serde_json::json;

/// pam_strerror texts pamtester prints.
const AUTH_ERR: &str = "Authentication failure";
const AUTHINFO_UNAVAIL: &str = "Authentication service cannot retrieve authentication info";
const USER_UNKNOWN: &str = "User not known to the underlying authentication module";
const PERM_DENIED: &str = "Permission denied";

/// The provider without a consent page (consent is not what these tests are about).
fn provider() -> Provider {
    Provider::start(&[("OP_AUTO_CONSENT", "1")])
}

/// A namespace with a bound /etc/pam.d holding the `oidc-test` service (auth and account).
fn namespace() -> Namespace {
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    ns
}

/// The login tests' config: the provider, 0.2 s polls, oidc-admins are admins (local `sudo`).
fn config(op: &Provider) -> DaemonConfig {
    let mut cfg = DaemonConfig::for_provider(op);
    cfg.admin_groups(&["oidc-admins"]);
    cfg
}

/// Asserts that `name` does not resolve (getent exit 2).
#[track_caller]
fn assert_no_user(ns: &Namespace, name: &str) {
    let r = ns.getent("passwd", &[name]);
    assert_eq!(r.code(), 2, "{name} exists:\n{r}");
}

/// alice, approved by alice: pamtester's authenticate and acct_mgmt succeed, the prompt shows
/// URL, code and host, and `id alice` then shows her provider groups and the local `sudo`
/// group. With 0.2 s polls the user waits well under a second after approving, whether Enter
/// comes after the approval or before it.
#[test]
fn approved_login_succeeds_and_id_shows_provider_groups_and_sudo() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    assert_no_user(&ns, "alice");

    // Per login: (approval script returned → pamtester exit, approval started → exit,
    // the script's own time), in ms.
    let (mut after, mut before, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..4 {
        let mut login = PamLogin::new(&ns, SERVICE, "alice")
            .ops(&["authenticate", "acct_mgmt"])
            .approved_by(Approver::user(&op, "alice"));
        let enter_first = round % 2 == 1;
        if enter_first {
            login = login.enter_before_approval();
        }
        let login = login.run();
        login.expect_success();
        let p = login.prompt.as_ref().unwrap();
        assert!(p.url.starts_with(&op.verification_uri()), "{}", p.text);
        assert!(p.url.contains(&p.code), "URL without the code: {}", p.text);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(p.host.as_deref(), Some(host.trim()), "{}", p.text);
        assert!(
            login.output().contains("successfully authenticated"),
            "{login}"
        );
        let figures = (
            login.approval_to_exit_ms().unwrap().round(),
            ms(login.approval_start_to_exit().unwrap()).round(),
            ms(login.approval.as_ref().unwrap().elapsed).round(),
        );
        assert!(figures.0 < 1500.0, "{figures:?}");
        if enter_first { &mut before } else { &mut after }.push(figures);
        totals.push(login.pam.elapsed);
    }

    let id = ns.run("id", &["alice"]);
    id.expect_ok();
    for g in ["(oidc-admins)", "(developers)", "(sudo)"] {
        assert!(id.stdout.contains(g), "{g} missing:\n{id}");
    }
    let logs = d.logs();
    assert!(
        logs.contains("login alice (service oidc-test) approved: sub \"alice\""),
        "{logs}"
    );
    let verdicts: Vec<f64> = logs
        .lines()
        .filter_map(|l| {
            l.split("verdict ")
                .nth(1)?
                .split(" ms")
                .next()?
                .parse()
                .ok()
        })
        .collect();
    measure(&format!(
        "login_pamtester approved (approval_done_to_pam_exit, approval_start_to_pam_exit, \
         approval_script) ms: enter_after_approval={after:?} enter_before_approval={before:?}; \
         daemon tokens_to_verdict={verdicts:?}ms; whole_pamtester_run={:.0}ms (median); \
         poll_interval=200ms",
        ms(median(&totals))
    ));
}

/// Denying at the provider's consent page ends the login with the daemon's denial message
/// and a PAM failure; no user is created.
#[test]
fn denial_at_consent_fails_with_the_denial_message() {
    let op = Provider::start_default(); // with the consent page
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let login = PamLogin::new(&ns, SERVICE, "alice")
        .approved_by(Approver::user(&op, "alice").with_flags(&["--deny"]))
        .run();
    login
        .expect_failure("the login was denied at the identity provider")
        .expect_failure(AUTH_ERR);
    assert!(d.logs().contains("denied at the provider"), "{}", d.logs());
    assert_no_user(&ns, "alice");
}

/// A code nobody approves ends when it expires (`OP_DEVICE_TTL=3`): a PAM failure saying the
/// login was not approved in time, after about three seconds, not a hang.
#[test]
fn unapproved_code_expires_with_a_clear_failure() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1"), ("OP_DEVICE_TTL", "3")]);
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let login = PamLogin::new(&ns, SERVICE, "alice").run();
    assert!(!login.succeeded(), "{login}");
    let out = login.output();
    assert!(
        out.contains("not approved in time") || out.contains("expired"),
        "{login}"
    );
    assert!(out.contains(AUTH_ERR), "{login}");
    assert!(login.pam.elapsed < Duration::from_secs(10), "{login}");
    let logs = d.logs();
    assert!(
        logs.contains("not approved within") || logs.contains("the code expired"),
        "{logs}"
    );
    assert_no_user(&ns, "alice");
    measure(&format!(
        "login_pamtester expired pam_failure_after={:.0}ms device_ttl=3s",
        ms(login.pam.elapsed)
    ));
}

/// bob approving alice's code is a failure whose message names bob, never a success; neither
/// alice nor bob exists afterwards.
#[test]
fn another_person_approving_fails_and_names_them() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let login = PamLogin::new(&ns, SERVICE, "alice")
        .approved_by(Approver::user(&op, "bob"))
        .run();
    login.approval.as_ref().unwrap().expect_ok();
    login
        .expect_failure("bob approved this login, not alice")
        .expect_failure(AUTH_ERR);
    assert!(
        d.logs()
            .contains("the identity that approved it (sub \"bob\") is bob, not alice"),
        "{}",
        d.logs()
    );
    assert_no_user(&ns, "alice");
    assert_no_user(&ns, "bob");
}

/// Sets `[access] key = value`, has `user` approve their own login, and checks that it fails
/// with `message` shown, that the daemon's log holds `logged`, and that no user was created.
fn refused_by_access_gate(key: &str, value: &str, user: &str, message: &str, logged: &str) {
    let op = provider();
    let ns = namespace();
    let mut cfg = config(&op);
    cfg.set("access", key, value);
    let d = Daemon::start(&ns, &cfg);
    let login = PamLogin::new(&ns, SERVICE, user)
        .approved_by(Approver::user(&op, user))
        .run();
    login.expect_failure(message).expect_failure(AUTH_ERR);
    assert!(d.logs().contains(logged), "{}", d.logs());
    assert_no_user(&ns, user);
}

/// With `allowed_groups = ["oidc-admins"]`, bob (only in developers) is refused with the
/// allowed-groups message.
#[test]
fn user_outside_allowed_groups_is_refused() {
    refused_by_access_gate(
        "allowed_groups",
        "[\"oidc-admins\"]",
        "bob",
        "not a member of any group in access.allowed_groups",
        "login bob (service oidc-test) refused",
    );
}

/// With `allowed_email_domains = ["example.com"]`, alice (example.test) is refused with the
/// email-domain message.
#[test]
fn email_domain_not_allowed_is_refused() {
    refused_by_access_gate(
        "allowed_email_domains",
        "[\"example.com\"]",
        "alice",
        "\"alice@example.test\" is not in a domain listed in access.allowed_email_domains",
        "allowed_email_domains",
    );
}

/// With `require_email_verified = true`, bob (email not verified) is refused with that
/// message.
#[test]
fn unverified_email_is_refused_when_required() {
    refused_by_access_gate(
        "require_email_verified",
        "true",
        "bob",
        "email address not verified by the provider",
        "require_email_verified",
    );
}

/// No provider listening at all: the login fails at once, before any prompt, as
/// AUTHINFO_UNAVAIL with a message saying the provider is unavailable.
#[test]
fn provider_down_at_start_fails_quickly_as_unavailable() {
    let ns = namespace();
    let mut cfg = DaemonConfig::new(); // an issuer on a free port where nothing listens
    cfg.set("login", "default_poll_interval", "0.2");
    let d = Daemon::start(&ns, &cfg);
    let login = PamLogin::new(&ns, SERVICE, "alice").run();
    assert!(
        login.prompt.is_none(),
        "a prompt without a provider:\n{login}"
    );
    login
        .expect_failure("the identity provider cannot be used")
        .expect_failure(AUTHINFO_UNAVAIL);
    assert!(login.pam.elapsed < Duration::from_secs(3), "{login}");
    assert!(
        d.logs()
            .contains("login alice (service oidc-test): provider unreachable")
    );
    measure(&format!(
        "login_pamtester provider_down pam_failure_after={:.0}ms",
        ms(login.pam.elapsed)
    ));
}

/// The provider dies after the prompt was shown: the login fails within seconds (the daemon
/// gives up after a few failed polls), never hangs and never succeeds.
#[test]
fn provider_killed_mid_flow_fails_without_hanging() {
    let mut op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let mut pt = Pamtester::spawn(&ns, SERVICE, "alice", &["authenticate"]);
    pt.wait_prompt(pam::PROMPT_TIMEOUT)
        .expect("no prompt from the module");
    op.kill();
    let killed = Instant::now();
    pt.press_enter();
    let (run, ended) = pt.finish(Duration::from_secs(20));
    assert_ne!(run.code(), 0, "{run}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(out.contains("the identity provider failed"), "{run}");
    assert!(out.contains(AUTHINFO_UNAVAIL), "{run}");
    let after = ended - killed;
    assert!(after < Duration::from_secs(5), "{after:?}");
    assert!(d.logs().contains("poll failed"), "{}", d.logs());
    assert_no_user(&ns, "alice");
    measure(&format!(
        "login_pamtester provider_killed pam_failure_after_kill={:.0}ms",
        ms(after)
    ));
}

/// root is refused by the module itself: PAM_USER_UNKNOWN, no prompt, and neither the daemon
/// nor the provider hears of it.
#[test]
fn root_is_refused_without_asking_the_provider() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let login = PamLogin::new(&ns, SERVICE, "root").run();
    assert!(login.prompt.is_none(), "{login}");
    login.expect_failure(USER_UNKNOWN);
    assert!(!d.logs().contains("login root"), "{}", d.logs());
    assert_eq!(op.requests("POST /device/auth"), 0, "{}", op.stats());
    assert_eq!(op.requests("POST /token"), 0, "{}", op.stats());
}

/// Kills pamtester during a login (at the prompt, or after Enter while the module waits for
/// the verdict) and checks that the daemon logs the `n`th cancellation and stops polling.
/// Returns how long after the kill the cancellation was logged.
fn kill_mid_login(
    op: &Provider,
    ns: &Namespace,
    d: &Daemon<'_>,
    after_enter: bool,
    n: usize,
) -> Duration {
    let mut pt = Pamtester::spawn(ns, SERVICE, "alice", &["authenticate"]);
    pt.wait_prompt(pam::PROMPT_TIMEOUT)
        .expect("no prompt from the module");
    if after_enter {
        pt.press_enter();
    }
    // Let the daemon poll a few times so there is something to stop.
    let before = op.requests("POST /token");
    assert!(wait_until(Duration::from_secs(5), || op
        .requests("POST /token")
        >= before + 3));
    pt.process().signal(libc::SIGKILL);
    let killed = Instant::now();
    let _ = pt.finish(Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(5), || d
            .logs()
            .matches("cancelled; stopped polling")
            .count()
            >= n),
        "no cancellation logged:\n{}",
        d.logs()
    );
    let noticed = killed.elapsed();
    let polls = op.requests("POST /token");
    oidcd_tests::sleep(Duration::from_millis(1500)); // more than 7 poll intervals
    assert_eq!(
        op.requests("POST /token"),
        polls,
        "the daemon kept polling: {}",
        op.stats()
    );
    let st = d.oidcctl_json(&["status"]);
    assert_eq!(st["logins_in_progress"], 0, "{st}");
    noticed
}

/// The PAM conversation goes away (pamtester killed), first while the prompt waits for Enter,
/// then while the module waits for the verdict: each time the daemon logs the login as
/// cancelled and the provider gets no more token requests.
#[test]
fn killed_pam_conversation_cancels_the_login_and_stops_polling() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &config(&op));
    let at_prompt = kill_mid_login(&op, &ns, &d, false, 1);
    let waiting = kill_mid_login(&op, &ns, &d, true, 2);
    // While a LoginWait is in progress the daemon checks the connection every 100 ms.
    assert!(waiting < Duration::from_millis(1000), "{waiting:?}");
    measure(&format!(
        "login_pamtester conversation_killed cancel_logged_after: at_prompt={:.0}ms \
         waiting_for_verdict={:.0}ms",
        ms(at_prompt),
        ms(waiting)
    ));
}

/// With `access.max_login_age_days = 30` and no refresh token (`provider.offline_access`
/// off, so the provider issues none): a login through the provider 31 days ago no longer
/// passes the PAM account phase (what SSH public keys and sudo rely on), with a message saying
/// how to get in again; a new login through the provider restores it; an imported user who
/// never logged in through the provider is refused from the start.
#[test]
fn account_phase_refuses_a_login_older_than_max_login_age_until_the_next() {
    let op = provider();
    let ns = namespace();
    let mut cfg = config(&op);
    cfg.set("access", "max_login_age_days", "30");
    cfg.set("provider", "offline_access", "false");
    let d = Daemon::start(&ns, &cfg);
    PamLogin::new(&ns, SERVICE, "alice")
        .ops(&["authenticate", "acct_mgmt"])
        .approved_by(Approver::user(&op, "alice"))
        .run()
        .expect_success();
    pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]).expect_ok();

    // Her last login moves 31 days into the past (as if the daemon had been running since).
    let aged = util::run(Command::new(util::python3()).args([
        "-c",
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
         c.execute(\"UPDATE users SET last_login_at = last_login_at - 31 * 86400 WHERE name = 'alice'\"); \
         c.commit()",
        &d.db_path().to_string_lossy(),
    ]));
    aged.expect_ok();
    let denied = pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]);
    assert_ne!(denied.code(), 0, "{denied}");
    let out = format!("{}{}", denied.stdout, denied.stderr);
    assert!(out.contains(PERM_DENIED), "{denied}");
    assert!(
        out.contains(
            "the last login through the identity provider was 31 days ago, and \
             access.max_login_age_days is 30"
        ),
        "{denied}"
    );
    assert!(d.logs().contains("account alice refused"), "{}", d.logs());
    // She still resolves: only the logins that do not ask the provider are refused.
    ns.getent("passwd", &["alice"]).expect_ok();

    PamLogin::new(&ns, SERVICE, "alice")
        .ops(&["authenticate", "acct_mgmt"])
        .approved_by(Approver::user(&op, "alice"))
        .run()
        .expect_success();
    pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]).expect_ok();

    d.import(&json!([bob_claims()])).expect_ok();
    let never = pam::pamtester(&ns, SERVICE, "bob", &["acct_mgmt"]);
    assert_ne!(never.code(), 0, "{never}");
    assert!(
        format!("{}{}", never.stdout, never.stderr)
            .contains("no login through the identity provider yet"),
        "{never}"
    );
}

/// PAM account after a login: allowed; denied (with the reason) once a SIGHUP'd
/// `allowed_groups` no longer includes any of alice's groups; allowed again when it does;
/// unknown after `oidcctl user remove alice`.
#[test]
fn account_phase_follows_removal_and_group_rules() {
    let op = provider();
    let ns = namespace();
    let cfg = config(&op);
    let d = Daemon::start(&ns, &cfg);
    PamLogin::new(&ns, SERVICE, "alice")
        .approved_by(Approver::user(&op, "alice"))
        .run()
        .expect_success();
    pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]).expect_ok();

    let mut narrow = cfg.clone();
    narrow.set("access", "allowed_groups", "[\"linux-users\"]");
    d.rewrite_config(&d.config_text_for(&narrow));
    d.sighup();
    assert!(d.wait_log("configuration reloaded", Duration::from_secs(5)));
    let denied = pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]);
    assert_ne!(denied.code(), 0, "{denied}");
    let out = format!("{}{}", denied.stdout, denied.stderr);
    assert!(out.contains(PERM_DENIED), "{denied}");
    assert!(
        out.contains("access refused: not a member of any group in access.allowed_groups"),
        "{denied}"
    );

    let mut wide = cfg.clone();
    wide.set(
        "access",
        "allowed_groups",
        "[\"linux-users\", \"developers\"]",
    );
    d.rewrite_config(&d.config_text_for(&wide));
    d.sighup();
    assert!(wait_until(Duration::from_secs(5), || d
        .logs()
        .matches("configuration reloaded")
        .count()
        >= 2));
    pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]).expect_ok();

    d.oidcctl(&["user", "remove", "alice"]).expect_ok();
    let unknown = pam::pamtester(&ns, SERVICE, "alice", &["acct_mgmt"]);
    assert_ne!(unknown.code(), 0, "{unknown}");
    assert!(
        format!("{}{}", unknown.stdout, unknown.stderr).contains(USER_UNKNOWN),
        "{unknown}"
    );
}
