//! A first SSH login's next connection: the daemon refused the last one after its approval,
//! only because sshd held another UID, and showed a code. Here the module asks for that code
//! instead of showing a new device code. The daemon decides everything (the code, where it is
//! valid, the tries left); the module only asks and passes the answer on.

use std::time::Duration;

use oidc_proto::Request;
use oidc_proto::Response;

use crate::auth::{AuthError, Clock, Conversation, Daemon, Login, Who};
use crate::prompt;
use crate::syslog::Log;

/// Budget for `LoginResume`: the daemon pauses a second after a wrong code.
pub const RESUME_DEADLINE: Duration = Duration::from_secs(5);

/// How the code prompt ended, when it did not fail the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// The daemon approved this user with the code.
    Yes,
    /// The user gave the code up (Enter): go on with a device code.
    GivenUp,
}

impl<C: Conversation, K: Clock, L: Log> Login<'_, C, K, L> {
    /// Asks for the code the last connection showed (echo off) and has the daemon check it.
    pub(crate) fn resume_login<D: Daemon>(
        &mut self,
        daemon: &mut D,
        who: &Who,
    ) -> Result<Resumed, AuthError> {
        let text = format!(
            "Your last connection as {} was approved and showed a code.\nCode (Enter to \
             approve a new sign-in instead): ",
            prompt::clean(&who.user)
        );
        let code = self.conv.secret(&text).map_err(AuthError::Conversation)?;
        let given_up = code.expose().trim().is_empty();
        let request = Request::LoginResume {
            user: who.user.clone(),
            service: who.service.clone(),
            rhost: who.rhost.clone(),
            code,
        };
        let answer = daemon
            .call(&request, RESUME_DEADLINE)
            .map_err(AuthError::Daemon)?;
        if given_up {
            // Whatever the daemon answered, the code is not to be asked for again.
            if let Response::Error { message, .. } = &answer {
                self.debug(&format!("giving up the resume code: {message}"));
            }
            return Ok(Resumed::GivenUp);
        }
        self.verdict("login_resume", who, answer)
            .map(|()| Resumed::Yes)
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::client::ClientError;
    use oidc_proto::types::{LoginFailure, LoginPrompt};
    use pam::constants::PamResultCode;

    use super::*;
    use crate::args::Options;
    use crate::testing::{FakeDaemon, Said, ScriptedUser, login_with};

    fn alice() -> Who {
        Who {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            tty: None,
        }
    }

    fn run(
        user: &mut ScriptedUser,
        script: Vec<Result<Response, ClientError>>,
    ) -> (Result<(), AuthError>, FakeDaemon) {
        login_with(user, &alice(), script)
    }

    fn available() -> Result<Response, ClientError> {
        Ok(Response::ResumeAvailable {
            user: "alice".into(),
        })
    }

    fn approved(user: &str) -> Result<Response, ClientError> {
        Ok(Response::LoginApproved {
            user: user.into(),
            offline_pin: None,
        })
    }

    /// The code is asked for with echo off, sent with the service and remote host, and the
    /// login succeeds only when the daemon approves exactly this user.
    #[test]
    fn a_code_resumes_the_login() {
        let mut user = ScriptedUser::typing(&["BCDF-GHJK"]);
        let (result, daemon) = run(&mut user, vec![available(), approved("alice")]);
        assert!(result.is_ok(), "{result:?}");
        let asked = daemon.asked();
        let Request::LoginResume {
            user: u,
            service,
            rhost,
            code,
        } = &asked[2]
        else {
            panic!("{asked:?}")
        };
        assert_eq!(
            (
                u.as_str(),
                service.as_str(),
                rhost.as_deref(),
                code.expose()
            ),
            ("alice", "sshd", Some("192.0.2.7"), "BCDF-GHJK")
        );
        assert!(
            !format!("{asked:?}").contains("BCDF-GHJK"),
            "the code in Debug"
        );
        assert!(matches!(&user.said[0], Said::Secret(t) if t.contains("showed a code")));

        let mut user = ScriptedUser::typing(&["BCDF-GHJK"]);
        let (result, _) = run(&mut user, vec![available(), approved("bob")]);
        assert!(matches!(result, Err(AuthError::WrongUser { .. })));
    }

    /// A wrong code shows the daemon's message and fails (sshd asks again: a new PAM round).
    #[test]
    fn a_wrong_code_fails_with_the_daemons_message() {
        let mut user = ScriptedUser::typing(&["BCDF-GHJL"]);
        let wrong = Ok(Response::LoginFailed {
            reason: LoginFailure::Denied,
            message: "that is not the code the last connection showed (2 tries left)".into(),
        });
        let (result, _) = run(&mut user, vec![available(), wrong]);
        assert_eq!(
            result.unwrap_err().code(&Options::default()),
            PamResultCode::PAM_AUTH_ERR
        );
        assert!(user.said.contains(&Said::Error(
            "that is not the code the last connection showed (2 tries left)".into()
        )));
    }

    /// Enter gives the code up and goes on with a device code, asked for with a second
    /// `LoginStart`; a second offer of a code there is out of place and fails the login.
    #[test]
    fn enter_goes_on_with_a_device_code() {
        let mut user = ScriptedUser::answering();
        let started = Ok(Response::LoginStarted(LoginPrompt {
            login_id: "login-42".into(),
            verification_uri: "https://idp.example.com/device".into(),
            verification_uri_complete: None,
            user_code: "WDJB-MJHT".into(),
            expires_in: 600,
            host: "web01".into(),
            qr: None,
        }));
        let given_up = Ok(Response::Done {
            message: "given up".into(),
        });
        let (result, daemon) = run(
            &mut user,
            vec![available(), given_up, started, approved("alice")],
        );
        assert!(result.is_ok(), "{result:?}");
        let asked = daemon.asked();
        assert!(matches!(&asked[2], Request::LoginResume { code, .. } if code.expose().is_empty()));
        assert!(matches!(&asked[3], Request::LoginStart { .. }), "{asked:?}");
        assert!(user.prompts()[0].contains("WDJB-MJHT"));

        let mut user = ScriptedUser::answering();
        let given_up = Ok(Response::Done {
            message: "given up".into(),
        });
        let (result, _) = run(&mut user, vec![available(), given_up, available()]);
        assert!(
            matches!(result, Err(AuthError::Unexpected { .. })),
            "{result:?}"
        );
    }
}
