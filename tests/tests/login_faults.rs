//! User story: a provider that misbehaves never logs anyone in. Against the faulty mock
//! provider (`tests/op/mock_provider.mjs`, which approves its own code at the second poll),
//! each fault ends the pamtester login in a PAM failure with a clear message for the user and
//! a specific line in the daemon's log, and creates no user; `slow_down` is obeyed.

use std::time::Duration;

use oidcd_tests::pam::{self, PamLogin, SERVICE};
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
}

/// The message every ID-token validation failure shows the user.
const INVALID: &str = "the identity provider's answer failed validation";

/// An ID token signed by a key not in the JWKS (same kid) is refused.
#[test]
fn bad_signature_is_refused() {
    fault(
        "bad_signature",
        &Expect {
            prompt: true,
            user: INVALID,
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
            user: INVALID,
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
            user: INVALID,
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
            user: INVALID,
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
            user: INVALID,
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
            user: INVALID,
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
