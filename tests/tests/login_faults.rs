//! User story: a provider that misbehaves never logs anyone in. Against the faulty mock
//! provider (`tests/op/mock_provider.mjs`, which approves its own code at the second poll),
//! each fault ends the pamtester login in a PAM failure with a clear message of its own for
//! the user and a specific line in the daemon's log, creates no user, and leaves the daemon
//! serving; `slow_down` is obeyed and an `interval` of 0 is not. (An unknown CA is
//! `login_providers::tls_provider_with_private_ca`: the real provider can produce it.)

use std::time::Duration;

use oidcd_tests::pam::{self, PamLogin, Pamtester, SERVICE};
use oidcd_tests::{Daemon, DaemonConfig, MockProvider, Namespace, measure, ms};

const AUTH_ERR: &str = "pamtester: Authentication failure";
const AUTHINFO_UNAVAIL: &str =
    "pamtester: Authentication service cannot retrieve authentication info";

/// A namespace with the PAM service and a daemon polling `mock` every 0.2 s.
fn setup(mock: &MockProvider) -> (Namespace, DaemonConfig) {
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    let mut cfg = DaemonConfig::with_issuer(&mock.issuer());
    cfg.set("provider", "client_secret", "\"pam-oidc-secret\"");
    cfg.set("login", "default_poll_interval", "0.2");
    (ns, cfg)
}

/// What a fault must lead to.
struct Expect {
    /// Whether the module got as far as the prompt (faults at discovery or device
    /// authorization end before it).
    prompt: bool,
    /// Shown to the user (PAM_ERROR_MSG).
    user: &'static str,
    /// In the daemon's log.
    log: &'static str,
    /// pamtester's last line (the PAM code).
    code: &'static str,
}

/// Runs one login against `MOCK_FAULT=fault` and checks `want`.
fn fault(fault: &str, want: &Expect) {
    let mock = MockProvider::start(fault);
    let (ns, cfg) = setup(&mock);
    let d = Daemon::start(&ns, &cfg);
    let login = PamLogin::new(&ns, SERVICE, "alice").run();
    assert!(!login.succeeded(), "{fault}: the login succeeded:\n{login}");
    assert_eq!(login.prompt.is_some(), want.prompt, "{fault}:\n{login}");
    login.expect_failure(want.user).expect_failure(want.code);
    if want.user.starts_with("the ID token") {
        login.expect_failure(INVALID);
    }
    let logs = d.logs();
    assert!(
        logs.contains(want.log),
        "{fault}: the daemon's log lacks {:?}:\n{logs}",
        want.log
    );
    assert!(!logs.contains("approved"), "{fault}:\n{logs}");
    let r = ns.getent("passwd", &["alice"]);
    assert_eq!(r.code(), 2, "{fault}: alice was created:\n{r}");
    assert_eq!(d.users().as_array().map(Vec::len), Some(0), "{fault}");
    keeps_serving(&ns, &d);
}

/// The daemon still answers: its status, and a lookup (not found, quickly).
fn keeps_serving(ns: &Namespace, d: &Daemon<'_>) {
    d.oidcctl(&["status"]).expect_ok();
    let r = ns.getent("passwd", &["nobody-here"]);
    assert_eq!(r.code(), 2, "{r}");
    assert!(r.elapsed < Duration::from_millis(200), "{r}");
}

/// What every ID-token validation failure begins with, for the user (then its own reason).
const INVALID: &str = "the identity provider's answer failed validation: ";

/// An ID token signed by a key not in the JWKS (same kid) is refused.
#[test]
fn bad_signature_is_refused() {
    fault(
        "bad_signature",
        &Expect {
            prompt: true,
            user: "the ID token's signature is not valid",
            log: "token rejected: bad ID token signature",
            code: AUTH_ERR,
        },
    );
}

/// A discovery document naming another issuer stops the login before any code is shown, as
/// "cannot authenticate now" (AUTHINFO_UNAVAIL), like any provider that cannot be used.
#[test]
fn discovery_with_another_issuer_is_refused() {
    fault(
        "wrong_issuer",
        &Expect {
            prompt: false,
            user: "unexpected issuer URI `http://127.0.0.1:1/other`",
            log: "discovery: Validation error: unexpected issuer URI",
            code: AUTHINFO_UNAVAIL,
        },
    );
}

/// An ID token from another issuer is refused.
#[test]
fn id_token_from_another_issuer_is_refused() {
    fault(
        "token_issuer",
        &Expect {
            prompt: true,
            user: "the ID token was issued by another provider",
            log: "token rejected: ID token issuer is \"http://127.0.0.1:1/other\"",
            code: AUTH_ERR,
        },
    );
}

/// An expired ID token is refused.
#[test]
fn expired_id_token_is_refused() {
    fault(
        "expired",
        &Expect {
            prompt: true,
            user: "the ID token has expired",
            log: "token rejected: ID token expired",
            code: AUTH_ERR,
        },
    );
}

/// An ID token for another client is refused.
#[test]
fn id_token_for_another_client_is_refused() {
    fault(
        "wrong_audience",
        &Expect {
            prompt: true,
            user: "the ID token was issued for another client",
            log: "token rejected: ID token is for [\"another-client\"], not for client \"pam-oidc\"",
            code: AUTH_ERR,
        },
    );
}

/// An unsigned ID token (`alg: none`) is refused.
#[test]
fn unsigned_id_token_is_refused() {
    fault(
        "alg_none",
        &Expect {
            prompt: true,
            user: "the ID token uses a signature algorithm this host does not accept",
            log: "ID token signed with none, not one of the allowed algorithms",
            code: AUTH_ERR,
        },
    );
}

/// An HS256 token keyed with the public key (algorithm confusion) is refused.
#[test]
fn hs256_id_token_is_refused() {
    fault(
        "hs256",
        &Expect {
            prompt: true,
            user: "the ID token uses a signature algorithm this host does not accept",
            log: "ID token signed with HS256, not one of the allowed algorithms",
            code: AUTH_ERR,
        },
    );
}

/// A token endpoint answering 200 with an HTML page instead of JSON is refused, and said so.
#[test]
fn html_token_answer_is_refused() {
    fault(
        "garbage",
        &Expect {
            prompt: true,
            user: "the identity provider failed: invalid answer from the provider",
            log: "HTTP 200 with an HTML page, not JSON",
            code: AUTH_ERR,
        },
    );
}

/// A token endpoint failing with 500 is retried a few times, then the provider is reported
/// unavailable.
#[test]
fn token_endpoint_500_is_unavailable() {
    fault(
        "http_500",
        &Expect {
            prompt: true,
            user: "the identity provider failed: provider unreachable: HTTP 500",
            log: "poll failed (provider unreachable: HTTP 500); retrying",
            code: AUTHINFO_UNAVAIL,
        },
    );
}

/// A device authorization endpoint failing with 500 stops the login before any prompt.
#[test]
fn device_endpoint_500_is_unavailable() {
    fault(
        "device_500",
        &Expect {
            prompt: false,
            user: "the identity provider refused to start a login",
            log: "device authorization: provider unreachable",
            code: AUTHINFO_UNAVAIL,
        },
    );
}

/// Userinfo about another subject than the ID token is refused.
#[test]
fn userinfo_about_another_subject_is_refused() {
    fault(
        "userinfo_sub",
        &Expect {
            prompt: true,
            user: "could not read the user's claims",
            log: "userinfo: token rejected: userinfo is about sub \"mallory\", the ID token about \"alice\"",
            code: AUTH_ERR,
        },
    );
}

/// The provider refusing the client's credentials (401 invalid_client) ends the login.
#[test]
fn invalid_client_is_unavailable() {
    fault(
        "invalid_client",
        &Expect {
            prompt: true,
            user: "provider error invalid_client (HTTP 401): client authentication failed",
            log: "provider error invalid_client (HTTP 401)",
            code: AUTHINFO_UNAVAIL,
        },
    );
}

/// `slow_down` (twice) makes the daemon poll 5 s less often each time (RFC 8628 §3.5), and the
/// login still succeeds.
#[test]
fn slow_down_lengthens_the_poll_interval_and_the_login_succeeds() {
    let mock = MockProvider::start("slow_down");
    let (ns, cfg) = setup(&mock);
    let d = Daemon::start(&ns, &cfg);
    let login = PamLogin::new(&ns, SERVICE, "alice")
        .finish_timeout(Duration::from_secs(40))
        .run();
    login.expect_success();
    ns.getent("passwd", &["alice"]).expect_ok();
    let polls = mock.polls();
    assert_eq!(
        polls.len(),
        4,
        "pending, slow_down, slow_down, tokens: {polls:?}"
    );
    let gaps: Vec<u64> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    // Poll 2 answered slow_down: the next gap is >= 5 s longer; again after poll 3.
    assert!(gaps[1] >= gaps[0] + 5000 - 50, "{gaps:?}");
    assert!(gaps[2] >= gaps[1] + 5000 - 50, "{gaps:?}");
    assert!(
        d.logs().contains("provider asked to slow down"),
        "{}",
        d.logs()
    );
    measure(&format!(
        "login_faults slow_down poll_gaps_ms={gaps:?} login={:.0}ms",
        ms(login.pam.elapsed)
    ));
}

/// An ID token signed with the provider's key but naming a key id its JWKS does not list: the
/// keys are fetched again once, then the login is refused.
#[test]
fn id_token_with_a_kid_not_in_the_jwks_is_refused() {
    fault(
        "unknown_kid",
        &Expect {
            prompt: true,
            user: "the ID token is signed with a key the provider does not publish",
            log: "no signing key \"mock-rotated-away\"",
            code: AUTH_ERR,
        },
    );
}

/// An ID token from another issuer, signed with that issuer's own key and key id.
#[test]
fn id_token_signed_by_another_issuers_key_is_refused() {
    fault(
        "other_issuer",
        &Expect {
            prompt: true,
            user: "the ID token is signed with a key the provider does not publish",
            log: "no signing key \"other-idp-1\"",
            code: AUTH_ERR,
        },
    );
}

/// An ID token whose `nbf` is an hour ahead is refused, with a hint at the clocks.
#[test]
fn id_token_not_valid_yet_is_refused() {
    fault(
        "nbf_future",
        &Expect {
            prompt: true,
            user: "the ID token is not valid yet (check the clocks",
            log: "token rejected: ID token not valid for another",
            code: AUTH_ERR,
        },
    );
}

/// A discovery document that is an HTML page (a login portal in the way) stops the login
/// before any code is shown, and says what it got.
#[test]
fn html_discovery_document_is_refused() {
    fault(
        "html_discovery",
        &Expect {
            prompt: false,
            user: "HTTP 200 with an HTML page, not JSON",
            log: "/.well-known/openid-configuration: HTTP 200 with an HTML page, not JSON",
            code: AUTHINFO_UNAVAIL,
        },
    );
}

/// A 100 MB answer, from the token endpoint and from the JWKS that discovery fetches
/// (openidconnect read that one whole before): reading stops after 1 MiB and the login is
/// refused; the daemon's peak RSS stays under 100 MB.
#[test]
fn a_100_mb_answer_is_not_read() {
    for (fault, prompt, code) in [
        ("huge_body", true, AUTH_ERR),
        ("huge_jwks", false, AUTHINFO_UNAVAIL),
    ] {
        let mock = MockProvider::start(fault);
        let (ns, cfg) = setup(&mock);
        let d = Daemon::start(&ns, &cfg);
        let login = PamLogin::new(&ns, SERVICE, "alice").run();
        assert_eq!(login.prompt.is_some(), prompt, "{fault}: {login}");
        login
            .expect_failure("invalid answer from the provider")
            .expect_failure("answer larger than 1024 KiB, not read")
            .expect_failure(code);
        assert!(
            d.logs().contains("answer larger than 1024 KiB"),
            "{}",
            d.logs()
        );
        assert_eq!(d.users().as_array().map(Vec::len), Some(0));
        keeps_serving(&ns, &d);
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap();
        measure(&format!("login_faults {fault} daemon_vmhwm={hwm_kb}kB"));
        assert!(hwm_kb < 100 * 1024, "{fault}: peak RSS {hwm_kb} kB");
    }
}

/// A provider whose discovery document never ends (one byte every half second): the daemon
/// gives up within its 10 s start budget and answers the PAM module before the module's own
/// 15 s deadline, with a reason; meanwhile it keeps answering everyone else at once.
#[test]
fn a_never_ending_answer_is_cut_off_within_the_start_budget() {
    let mock = MockProvider::start("slow_loris");
    let (ns, cfg) = setup(&mock);
    let d = Daemon::start(&ns, &cfg);
    let pt = Pamtester::spawn(&ns, SERVICE, "alice", &["authenticate"]);
    oidcd_tests::sleep(Duration::from_secs(1));
    keeps_serving(&ns, &d);
    let (run, _) = pt.finish(Duration::from_secs(20));
    assert_ne!(run.code(), 0, "{run}");
    assert!(
        run.stderr.contains("the identity provider cannot be used")
            && run.stderr.contains("no complete answer within"),
        "{run}"
    );
    assert!(
        run.stdout.contains(AUTHINFO_UNAVAIL) || run.stderr.contains(AUTHINFO_UNAVAIL),
        "{run}"
    );
    assert!(run.elapsed < Duration::from_secs(14), "{run}");
    assert!(
        d.logs()
            .contains("openid-configuration: no complete answer within"),
        "{}",
        d.logs()
    );
    assert_eq!(d.users().as_array().map(Vec::len), Some(0));
    keeps_serving(&ns, &d);
    measure(&format!(
        "login_faults slow_loris refused_after={:.0}ms",
        ms(run.elapsed)
    ));
}

/// issue 15 #8: a provider `interval` of 0 does not make the daemon poll in a tight loop: the
/// polls are at least a second apart, and the login succeeds.
#[test]
fn an_interval_of_zero_is_raised_to_a_second() {
    let mock = MockProvider::start("interval_0");
    let (ns, cfg) = setup(&mock);
    let _d = Daemon::start(&ns, &cfg);
    PamLogin::new(&ns, SERVICE, "alice").run().expect_success();
    let polls = mock.polls();
    assert_eq!(polls.len(), 2, "{polls:?}");
    let gap = polls[1] - polls[0];
    assert!(gap >= 950, "polled {gap} ms apart");
}
