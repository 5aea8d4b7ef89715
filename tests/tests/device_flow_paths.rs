//! User story: the device flow's own paths, as real providers take them, end the way a person
//! expects: the provider's `interval` is honoured, a code the provider expires early ends the
//! login as expired, and Entra ID's `authorization_declined` with its several-line description
//! reads as a denial on one line. (Repeated `slow_down` is
//! `login_faults::slow_down_lengthens_the_poll_interval_and_the_login_succeeds`.)

use std::time::Duration;

use oidcd_tests::pam::{Approver, PROMPT_TIMEOUT, PamLogin, Pamtester, SERVICE};
use oidcd_tests::scenario::pam_namespace;
use oidcd_tests::{Daemon, DaemonConfig, Provider, measure, sleep};

/// A provider `interval` of 1 s is honoured although the daemon's own default is 0.2 s: every
/// poll of the token endpoint comes at least a second after the previous one, and the login
/// succeeds.
#[test]
fn provider_interval_is_honoured() {
    let op = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        ("OP_DEVICE_ANSWER", r#"{"interval": 1}"#),
    ]);
    let ns = pam_namespace();
    let _d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    let mut pt = Pamtester::spawn(&ns, SERVICE, "alice", &["authenticate"]);
    let prompt = pt.wait_prompt(PROMPT_TIMEOUT).expect("a prompt");
    // Let the daemon poll a few times before approving.
    sleep(Duration::from_millis(2500));
    op.approve(&prompt.code, "alice", "alice-pw", &[])
        .expect_ok();
    pt.press_enter();
    let (run, _) = pt.finish(Duration::from_secs(20));
    assert_eq!(run.code(), 0, "{run}");
    let times: Vec<u64> = op.stats()["token_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert!(times.len() >= 3, "{times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 950), "{gaps:?}");
    measure(&format!(
        "device_flow_paths interval=1s poll_gaps_ms={gaps:?}"
    ));
}

/// The provider expires the code after 2 s although it announced 600 s: its `expired_token`
/// ends the login at once as expired, with the expiry message, not as a provider failure.
#[test]
fn expired_token_from_the_provider_ends_the_login_as_expired() {
    let op = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        ("OP_DEVICE_TTL", "2"),
        ("OP_DEVICE_ANSWER", r#"{"expires_in": 600}"#),
    ]);
    let ns = pam_namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    let l = PamLogin::new(&ns, SERVICE, "alice").run();
    l.expect_failure("the code expired before it was approved");
    assert!(l.pam.elapsed < Duration::from_secs(8), "{l}");
    assert!(d.logs().contains("the code expired"), "{}", d.logs());
}

/// Entra ID's denial code `authorization_declined` (not RFC 8628's `access_denied`) with a
/// description over several lines: the user is told the login was denied, with the
/// description on one line, words apart; it is not reported as a failing provider.
#[test]
fn entra_authorization_declined_reads_as_a_denial_on_one_line() {
    let op = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        ("OP_DENIAL_ERROR", "authorization_declined"),
        (
            "OP_DENIAL_DESCRIPTION",
            "AADSTS70000: The user declined the request.\r\nTrace ID: 5f2a\r\nCorrelation ID: 77c1\r\n",
        ),
    ]);
    let ns = pam_namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    let l = PamLogin::new(&ns, SERVICE, "alice")
        .approved_by(Approver::user(&op, "alice").with_flags(&["--abort-code"]))
        .run();
    l.expect_failure(
        "the login was denied at the identity provider (AADSTS70000: The user declined the \
         request. Trace ID: 5f2a Correlation ID: 77c1)",
    );
    assert!(!l.output().contains("identity provider failed"), "{l}");
    assert!(d.logs().contains("denied at the provider"), "{}", d.logs());
}
