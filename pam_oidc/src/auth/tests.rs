use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread;

use oidc_proto::Envelope;
use oidc_proto::client::TrustedOwner;
use oidc_proto::frame::{self, MAX_FRAME_LEN};
use oidc_proto::types::ErrorCode;

use super::*;
use crate::args::Qr;
use crate::testing::{FakeClock, FakeDaemon, Memo, Said, ScriptedUser, no_daemon};

const CODE: &str = "WDJB-MJHT";

fn alice() -> Who {
    Who {
        user: "alice".into(),
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
        tty: Some("ssh".into()),
    }
}

fn login_prompt() -> LoginPrompt {
    LoginPrompt {
        login_id: "login-42".into(),
        verification_uri: "https://idp.example.com/device".into(),
        verification_uri_complete: Some(format!("https://idp.example.com/device?user_code={CODE}")),
        user_code: CODE.into(),
        expires_in: 600,
        host: "web01.example.com".into(),
        qr: Some("█▀▀█\n█▄▄█".into()),
    }
}

fn started() -> Result<Response, ClientError> {
    Ok(Response::LoginStarted(login_prompt()))
}

fn pending() -> Result<Response, ClientError> {
    Ok(Response::LoginPending)
}

fn approved(user: &str) -> Result<Response, ClientError> {
    Ok(Response::LoginApproved {
        user: user.into(),
        offline_pin: None,
    })
}

fn precheck() -> Request {
    Request::LoginPrecheck {
        user: "alice".into(),
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
    }
}

fn wait() -> Request {
    Request::LoginWait {
        login_id: "login-42".into(),
    }
}

fn cancel() -> Request {
    Request::LoginCancel {
        login_id: "login-42".into(),
    }
}

/// Everything one run leaves behind.
struct Run {
    result: Result<(), AuthError>,
    user: ScriptedUser,
    daemon: FakeDaemon,
    clock: FakeClock,
    log: Memo,
}

impl Run {
    fn code(&self) -> PamResultCode {
        self.code_with(&Options::default())
    }

    fn code_with(&self, options: &Options) -> PamResultCode {
        match &self.result {
            Ok(()) => PamResultCode::PAM_SUCCESS,
            Err(e) => e.code(options),
        }
    }

    fn errors(&self) -> Vec<&str> {
        self.user
            .said
            .iter()
            .filter_map(|s| match s {
                Said::Error(e) => Some(e.as_str()),
                _ => None,
            })
            .collect()
    }

    fn cancelled(&self) -> bool {
        self.daemon.asked().contains(&cancel())
    }
}

/// Runs a login for alice against `daemon` (each LoginWait costing 3 s of virtual time).
fn run_with(
    options: &Options,
    user: ScriptedUser,
    script: impl IntoIterator<Item = Result<Response, ClientError>>,
    forever: Option<Response>,
) -> Run {
    let clock = FakeClock::new();
    let mut daemon = FakeDaemon::new(script).taking(&clock, Duration::from_secs(3));
    if let Some(answer) = forever {
        daemon = daemon.then_forever(answer);
    }
    run_against(options, user, daemon, clock)
}

/// Runs a login for alice against `daemon`.
fn run_against(options: &Options, user: ScriptedUser, daemon: FakeDaemon, clock: FakeClock) -> Run {
    run_as(options, alice(), user, daemon, clock)
}

/// [`run`] for `who` with `options`.
fn run_who(
    options: &Options,
    who: Who,
    script: impl IntoIterator<Item = Result<Response, ClientError>>,
) -> Run {
    let clock = FakeClock::new();
    let daemon = FakeDaemon::new(script).taking(&clock, Duration::from_secs(3));
    run_as(options, who, ScriptedUser::answering(), daemon, clock)
}

/// Runs a login for `who` against `daemon`.
fn run_as(
    options: &Options,
    who: Who,
    mut user: ScriptedUser,
    daemon: FakeDaemon,
    clock: FakeClock,
) -> Run {
    let log = Memo::default();
    let result = Login {
        options,
        conv: &mut user,
        clock: &clock,
        log: &log,
    }
    .run(&who, daemon.connector());
    Run {
        result,
        user,
        daemon,
        clock,
        log,
    }
}

fn run(script: impl IntoIterator<Item = Result<Response, ClientError>>) -> Run {
    run_with(&Options::default(), ScriptedUser::answering(), script, None)
}

/// The happy path: one prompt, Enter, two "pending", "approved" for alice: success, with the
/// requests in order and no cancel.
#[test]
fn approve_path_succeeds() {
    let r = run([started(), pending(), pending(), approved("alice")]);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(r.code(), PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.daemon.asked(),
        [
            precheck(),
            Request::LoginStart {
                user: "alice".into(),
                service: "sshd".into(),
                rhost: Some("192.0.2.7".into()),
                tty: Some("ssh".into()),
            },
            wait(),
            wait(),
            wait(),
        ]
    );
    assert_eq!(
        r.user.said,
        [
            Said::Prompt(prompt::login_prompt(&login_prompt(), false, "sshd")),
            Said::Info(WAITING.into()),
        ]
    );
    assert_eq!(
        r.daemon.timeouts(),
        [
            crate::local::quick_deadline("alice"),
            START_DEADLINE,
            WAIT_DEADLINE,
            WAIT_DEADLINE,
            WAIT_DEADLINE
        ]
    );
}

/// Approved at once after Enter: no "waiting" message at all.
#[test]
fn approved_before_enter_says_nothing_more() {
    let r = run([started(), approved("alice")]);
    assert!(r.result.is_ok());
    assert_eq!(r.user.said.len(), 1);
}

/// An approval for anyone but PAM_USER fails closed, is cancelled and says so.
#[test]
fn approval_for_another_user_is_auth_err() {
    for other in ["bob", "Alice", "alice ", "", "root"] {
        let r = run([started(), pending(), approved(other)]);
        assert!(
            matches!(r.result, Err(AuthError::WrongUser { .. })),
            "{other:?}"
        );
        assert_eq!(r.code(), PamResultCode::PAM_AUTH_ERR);
        assert!(r.cancelled());
        assert_eq!(r.errors(), ["The login was approved for another account."]);
    }
}

/// Each LoginFailed reason during the wait gives its code and shows the daemon's message.
#[test]
fn each_failure_reason_has_its_code_and_message() {
    use LoginFailure as F;
    use PamResultCode as P;
    let cases = [
        (F::Denied, P::PAM_AUTH_ERR),
        (F::Expired, P::PAM_AUTH_ERR),
        (F::WrongUser, P::PAM_AUTH_ERR),
        (F::NotAllowed, P::PAM_AUTH_ERR),
        (F::NameRefused, P::PAM_USER_UNKNOWN),
        (F::ProviderUnavailable, P::PAM_AUTHINFO_UNAVAIL),
        (F::InvalidToken, P::PAM_AUTH_ERR),
        (F::Cancelled, P::PAM_AUTH_ERR),
        (F::UnknownLogin, P::PAM_AUTH_ERR),
        (F::Internal, P::PAM_AUTH_ERR),
    ];
    for (reason, code) in cases {
        let message = format!("no luck: {reason:?}");
        let r = run([
            started(),
            pending(),
            Ok(Response::LoginFailed {
                reason,
                message: message.clone(),
            }),
        ]);
        assert_eq!(r.code(), code, "{reason:?}");
        assert_eq!(r.errors(), [message.as_str()], "{reason:?}");
        // The daemon ended the login itself: nothing to cancel.
        assert!(!r.cancelled(), "{reason:?}");
    }
}

/// With ignore_unknown_user, NameRefused is PAM_IGNORE instead of PAM_USER_UNKNOWN.
#[test]
fn ignore_unknown_user_turns_name_refused_into_ignore() {
    let options = Options {
        ignore_unknown_user: true,
        ..Options::default()
    };
    let refused = Ok(Response::LoginFailed {
        reason: LoginFailure::NameRefused,
        message: "alice is a local account that is not linked".into(),
    });
    let r = run_with(&options, ScriptedUser::answering(), [refused], None);
    assert_eq!(r.code_with(&options), PamResultCode::PAM_IGNORE);
    assert_eq!(r.code(), PamResultCode::PAM_USER_UNKNOWN);
}

/// Runs a login for alice against a daemon answering `LoginPrecheck` with `answer`, then `script`.
fn run_prechecking(
    answer: Result<Response, ClientError>,
    script: impl IntoIterator<Item = Result<Response, ClientError>>,
) -> Run {
    let clock = FakeClock::new();
    run_against(
        &Options::default(),
        ScriptedUser::answering(),
        FakeDaemon::new(script).prechecking(answer),
        clock,
    )
}

/// issue 15 #9: a frozen daemon is found out by `LoginPrecheck` within its quick deadline (the
/// NSS module's for a local account: `local.rs` tests): AUTHINFO_UNAVAIL (the stack goes on to
/// pam_unix) without `LoginStart` and its 15 s deadline. A refusal there ("not ours") is as
/// quiet as at the start.
#[test]
fn precheck_decides_quickly_before_anything_slow() {
    let r = run_prechecking(Err(ClientError::Timeout), [started()]);
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.daemon.asked(), [precheck()]);
    assert_eq!(r.daemon.timeouts(), [crate::local::quick_deadline("alice")]);
    assert!(r.user.said.is_empty());

    let not_ours = Ok(Response::LoginFailed {
        reason: LoginFailure::NameRefused,
        message: "bob is a local account that is not linked".into(),
    });
    let r = run_prechecking(not_ours, [started()]);
    assert_eq!(r.code(), PamResultCode::PAM_USER_UNKNOWN);
    assert_eq!(r.daemon.asked(), [precheck()]);
    assert!(r.user.said.is_empty());

    let r = run_prechecking(
        Ok(Response::Unavailable {
            reason: "database".into(),
        }),
        [started()],
    );
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.daemon.asked(), [precheck()]);
}

/// A daemon from before `LoginPrecheck` answers it `bad_request`; the login goes on with
/// `LoginStart`, which checks the same. Any other error stops it.
#[test]
fn a_daemon_without_precheck_still_logs_in() {
    let old = Ok(Response::error(
        ErrorCode::BadRequest,
        "malformed request: unknown variant `login_precheck`",
    ));
    let r = run_prechecking(old, [started(), approved("alice")]);
    assert!(r.result.is_ok(), "{:?}", r.result);
    let denied = Ok(Response::error(ErrorCode::PermissionDenied, "root only"));
    let r = run_prechecking(denied, [started(), approved("alice")]);
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.daemon.asked(), [precheck()]);
}

/// A name the daemon refuses at the start (root, a local account) gets no prompt and no
/// message: the next module takes over silently. Other failures at the start are shown.
#[test]
fn failure_at_start() {
    let r = run([Ok(Response::LoginFailed {
        reason: LoginFailure::NameRefused,
        message: "alice is a local account that is not linked".into(),
    })]);
    assert_eq!(r.code(), PamResultCode::PAM_USER_UNKNOWN);
    assert!(r.user.said.is_empty());
    assert_eq!(r.daemon.asked().len(), 2);

    let r = run([Ok(Response::LoginFailed {
        reason: LoginFailure::ProviderUnavailable,
        message: "The identity provider cannot be reached.".into(),
    })]);
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.errors(), ["The identity provider cannot be reached."]);
    assert!(r.user.prompts().is_empty());
}

/// A daemon too busy for another login says so to the user (only names it would serve get
/// that far), and the module answers AUTHINFO_UNAVAIL.
#[test]
fn busy_daemon_is_shown_and_unavailable() {
    let r = run([Ok(Response::error(
        ErrorCode::Busy,
        "too many logins in progress; try again shortly",
    ))]);
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        r.errors(),
        ["too many logins in progress; try again shortly"]
    );
    assert!(r.user.prompts().is_empty());
}

/// No daemon: AUTHINFO_UNAVAIL at once, nothing shown, nothing waited for.
#[test]
fn daemon_unreachable_at_start_is_authinfo_unavail() {
    let clock = FakeClock::new();
    let log = Memo::default();
    let mut user = ScriptedUser::answering();
    let result = Login {
        options: &Options::default(),
        conv: &mut user,
        clock: &clock,
        log: &log,
    }
    .run(&alice(), no_daemon);
    let e = result.unwrap_err();
    assert!(matches!(e, AuthError::Daemon(ClientError::NotRunning(_))));
    assert_eq!(
        e.code(&Options::default()),
        PamResultCode::PAM_AUTHINFO_UNAVAIL
    );
    assert!(user.said.is_empty());
    assert_eq!(clock.elapsed(), Duration::ZERO);

    // A daemon that accepts but cannot answer LoginStart is the same.
    for answer in [
        Err(ClientError::Timeout),
        Err(ClientError::VersionMismatch { daemon: vec![2] }),
        Ok(Response::UnsupportedVersion { supported: vec![2] }),
        Ok(Response::Unavailable {
            reason: "no provider configured".into(),
        }),
        Ok(Response::error(ErrorCode::PermissionDenied, "needs root")),
    ] {
        let r = run([answer]);
        assert_eq!(
            r.code(),
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
            "{:?}",
            r.result
        );
        assert!(r.user.said.is_empty());
    }
}

/// The daemon vanishing during the wait fails the login, tries to cancel and tells the user.
#[test]
fn daemon_disappearing_mid_wait_fails_and_cancels() {
    let gone = Err(ClientError::Io(std::io::Error::from(
        std::io::ErrorKind::ConnectionReset,
    )));
    let r = run([started(), pending(), gone]);
    assert!(matches!(r.result, Err(AuthError::Daemon(_))));
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.daemon.asked().last(), Some(&cancel()));
    assert_eq!(
        r.errors(),
        ["The login service stopped answering; login cancelled."]
    );
}

/// A failed conversation (Ctrl-C, client gone) is CONV_ERR, and the login is cancelled
/// without a single LoginWait.
#[test]
fn conversation_error_is_conv_err_and_cancels() {
    let r = run_with(
        &Options::default(),
        ScriptedUser::hanging_up(),
        [started()],
        None,
    );
    assert!(matches!(r.result, Err(AuthError::Conversation(_))));
    assert_eq!(r.code(), PamResultCode::PAM_CONV_ERR);
    assert_eq!(r.daemon.asked()[2..], [cancel()]);
}

/// A login never approved ends at `timeout=`, is cancelled and says so.
#[test]
fn overall_timeout_fails() {
    let options = Options {
        timeout: Duration::from_secs(60),
        ..Options::default()
    };
    let r = run_with(
        &options,
        ScriptedUser::answering(),
        [started()],
        Some(Response::LoginPending),
    );
    assert!(matches!(r.result, Err(AuthError::TimedOut)));
    assert_eq!(r.code(), PamResultCode::PAM_AUTH_ERR);
    assert!(r.cancelled());
    assert_eq!(r.errors(), ["The login was not approved in time."]);
    let waited = r.clock.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited <= Duration::from_secs(63),
        "{waited:?}"
    );
    let waits = r.daemon.asked().iter().filter(|q| **q == wait()).count();
    assert_eq!(waits, 20);
    assert_eq!(
        r.user
            .said
            .iter()
            .filter(|s| **s == Said::Info(WAITING.into()))
            .count(),
        1,
        "the waiting message is shown once"
    );
}

/// The default timeout is 300 s.
#[test]
fn default_timeout_is_five_minutes() {
    let r = run_with(
        &Options::default(),
        ScriptedUser::answering(),
        [started()],
        Some(Response::LoginPending),
    );
    assert!(matches!(r.result, Err(AuthError::TimedOut)));
    let waited = r.clock.elapsed();
    assert!(
        waited >= Duration::from_secs(300) && waited <= Duration::from_secs(303),
        "{waited:?}"
    );
}

/// A code that expires before `timeout=` ends the wait sooner.
#[test]
fn code_expiry_bounds_the_wait() {
    let short = LoginPrompt {
        expires_in: 30,
        ..login_prompt()
    };
    let r = run_with(
        &Options::default(),
        ScriptedUser::answering(),
        [Ok(Response::LoginStarted(short))],
        Some(Response::LoginPending),
    );
    assert!(matches!(r.result, Err(AuthError::TimedOut)));
    assert!(r.clock.elapsed() <= Duration::from_secs(33));
}

/// A user who approves and presses Enter only after the deadline still gets one LoginWait,
/// and the approval counts.
#[test]
fn late_enter_still_asks_once() {
    let short = LoginPrompt {
        expires_in: 10,
        ..login_prompt()
    };
    let clock = FakeClock::new();
    let daemon = FakeDaemon::new([Ok(Response::LoginStarted(short)), approved("alice")]);
    // The prompt "takes" 20 s: the user was slow to press Enter.
    struct Slow<'a>(ScriptedUser, &'a FakeClock);
    impl Conversation for Slow<'_> {
        fn prompt(&mut self, text: &str) -> Result<(), ConvError> {
            self.1.advance(Duration::from_secs(20));
            self.0.prompt(text)
        }
        fn info(&mut self, text: &str) -> Result<(), ConvError> {
            self.0.info(text)
        }
        fn error(&mut self, text: &str) -> Result<(), ConvError> {
            self.0.error(text)
        }
        fn secret(&mut self, text: &str) -> Result<Secret, ConvError> {
            self.0.secret(text)
        }
    }
    let mut user = Slow(ScriptedUser::answering(), &clock);
    let result = Login {
        options: &Options::default(),
        conv: &mut user,
        clock: &clock,
        log: &Memo::default(),
    }
    .run(&alice(), daemon.connector());
    assert!(result.is_ok(), "{result:?}");
}

/// A daemon that answers "pending" at once is asked at most once a second, not in a busy loop.
#[test]
fn instant_pending_is_paced() {
    let options = Options {
        timeout: Duration::from_secs(30),
        ..Options::default()
    };
    let clock = FakeClock::new();
    let daemon = FakeDaemon::new([started()]).then_forever(Response::LoginPending);
    let mut user = ScriptedUser::answering();
    let result = Login {
        options: &options,
        conv: &mut user,
        clock: &clock,
        log: &Memo::default(),
    }
    .run(&alice(), daemon.connector());
    assert!(matches!(result, Err(AuthError::TimedOut)));
    let waits = daemon.asked().iter().filter(|q| **q == wait()).count();
    assert!((30..=31).contains(&waits), "{waits}");
    assert_eq!(clock.slept(), Duration::from_secs(30));
}

/// Answers that do not belong to the step fail (AUTHINFO_UNAVAIL), never succeed: above all
/// an "approved" in answer to LoginStart.
#[test]
fn unexpected_answers_fail() {
    for answer in [
        Response::LoginApproved {
            user: "alice".into(),
            offline_pin: None,
        },
        Response::LoginPending,
        Response::NotFound,
        Response::Account {
            account: oidc_proto::types::AccountStatus::Allowed,
        },
        Response::Done {
            message: "ok".into(),
        },
    ] {
        let r = run([Ok(answer.clone())]);
        assert!(
            matches!(r.result, Err(AuthError::Unexpected { .. })),
            "{answer:?}"
        );
        assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert!(r.user.said.is_empty());
    }
    for answer in [
        Response::LoginStarted(login_prompt()),
        Response::NotFound,
        Response::Account {
            account: oidc_proto::types::AccountStatus::Allowed,
        },
    ] {
        let r = run([started(), Ok(answer.clone())]);
        assert!(
            matches!(r.result, Err(AuthError::Unexpected { .. })),
            "{answer:?}"
        );
        assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert!(r.cancelled(), "{answer:?}");
    }
    // The daemon going unavailable mid-wait is the same code, and cancelled.
    let r = run([
        started(),
        Ok(Response::Unavailable {
            reason: "shutting down".into(),
        }),
    ]);
    assert_eq!(r.code(), PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.cancelled());
}

/// A prompt without a code or URL is not shown; the login is cancelled.
#[test]
fn unusable_prompt_is_cancelled() {
    let broken = LoginPrompt {
        user_code: String::new(),
        ..login_prompt()
    };
    let r = run([Ok(Response::LoginStarted(broken))]);
    assert!(matches!(r.result, Err(AuthError::UnusablePrompt)));
    assert!(r.user.prompts().is_empty());
    assert!(r.cancelled());
}

/// By default the QR stays out of sshd's prompt (PAM_TTY "ssh") and comes first on a terminal;
/// `qr` forces it and `noqr` leaves it out everywhere.
#[test]
fn qr_follows_the_terminal_and_the_options() {
    let prompt_of = |qr: Qr, who: Who| {
        let options = Options {
            qr,
            ..Options::default()
        };
        let r = run_who(&options, who, [started(), approved("alice")]);
        r.user.prompts()[0].to_string()
    };
    let console = Who {
        service: "login".into(),
        rhost: None,
        tty: Some("/dev/tty1".into()),
        ..alice()
    };
    let ssh = prompt_of(Qr::Auto, alice());
    assert!(ssh.starts_with("Visit https://"), "{ssh}");
    assert!(!ssh.contains('█'));
    let tty = prompt_of(Qr::Auto, console.clone());
    assert!(tty.starts_with("█▀▀█\n█▄▄█\nVisit "), "{tty}");
    assert!(prompt_of(Qr::Always, alice()).starts_with("█▀▀█"));
    assert!(!prompt_of(Qr::Never, console).contains('█'));
}

/// A user name that cannot be one, and root, are unknown without asking the daemon.
#[test]
fn impossible_user_is_not_asked() {
    let clock = FakeClock::new();
    for name in [
        "",
        "root",
        "a b",
        "x:y",
        "../../x",
        "a\nb",
        &"a".repeat(MAX_USER_LEN + 1),
    ] {
        let daemon = FakeDaemon::new([]);
        let mut user = ScriptedUser::answering();
        let who = Who {
            user: name.into(),
            ..alice()
        };
        let result = Login {
            options: &Options::default(),
            conv: &mut user,
            clock: &clock,
            log: &Memo::default(),
        }
        .run(&who, daemon.connector());
        assert!(matches!(result, Err(AuthError::NoUser)), "{name:?}");
        assert!(daemon.asked().is_empty());
    }
    assert!(is_plausible_user("alice.smith-2"));
    assert!(is_plausible_user("ålice@example.com"));
}

/// Whatever happens, the logs never hold the user code or the verification URL.
#[test]
fn logs_leak_no_code() {
    let runs = [
        run([started(), pending(), approved("alice")]),
        run([started(), approved("bob")]),
        run_with(
            &Options {
                debug: true,
                ..Options::default()
            },
            ScriptedUser::hanging_up(),
            [started()],
            None,
        ),
        run([started(), Err(ClientError::Timeout)]),
    ];
    for r in runs {
        for (_, line) in r.log.lines() {
            assert!(!line.contains(CODE), "{line}");
            assert!(!line.contains("idp.example.com"), "{line}");
        }
        if let Err(e) = &r.result {
            let shown = e.to_string();
            assert!(!shown.contains(CODE), "{shown}");
        }
    }
}

/// The whole loop over the real client and a real socket: frames, envelope and adapter.
#[test]
fn real_client_over_a_socket() {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "pam-oidc-test-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let listener = UnixListener::bind(&path).unwrap();
    let me = TrustedOwner::Uid(std::fs::metadata(&path).unwrap().uid());
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let answers = [
            Response::LoginPossible,
            Response::LoginStarted(login_prompt()),
            Response::LoginPending,
            Response::LoginApproved {
                user: "alice".into(),
                offline_pin: None,
            },
        ];
        let mut asked = Vec::new();
        for answer in answers {
            let env: Envelope<Request> = frame::read_frame(&mut s, MAX_FRAME_LEN).unwrap().unwrap();
            asked.push(env.body);
            frame::write_frame(&mut s, &Envelope::new(answer), MAX_FRAME_LEN).unwrap();
        }
        asked
    });
    let mut user = ScriptedUser::answering();
    let result = Login {
        options: &Options::default(),
        conv: &mut user,
        clock: &SystemClock,
        log: &Memo::default(),
    }
    .run(&alice(), |timeout| Client::connect(&path, me, timeout));
    assert!(result.is_ok(), "{result:?}");
    let asked = server.join().unwrap();
    assert_eq!(asked[0], precheck());
    assert_eq!(asked[2..], [wait(), wait()]);
    let _ = std::fs::remove_dir_all(&dir);
}
