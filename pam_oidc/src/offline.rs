//! `[offline]` in the module: set the offline PIN right after an approved online login when
//! the daemon invites it, and log in with it when the daemon says the provider cannot be used.
//! The daemon decides everything (whether the provider is really unreachable, the PIN's hash,
//! the tries left); the module only asks the user and passes the answer on.

use std::time::Duration;

use oidc_proto::Request;
use oidc_proto::types::LoginFailure;
use oidc_proto::{Response, secret::Secret};

use crate::auth::{AuthError, Clock, Conversation, Daemon, Login, Who};
use crate::prompt;
use crate::syslog::Log;

/// Budget for `OfflineLogin`: the daemon asks the provider once (its HTTP timeout is 10 s),
/// hashes, and pauses a second after a wrong PIN.
pub const OFFLINE_DEADLINE: Duration = Duration::from_secs(20);
/// Budget for `OfflineSetPin` (one Argon2 hash).
pub const SET_PIN_DEADLINE: Duration = Duration::from_secs(10);

impl<C: Conversation, K: Clock, L: Log> Login<'_, C, K, L> {
    /// Asks for the offline PIN and has the daemon check it. An empty answer gives up, as
    /// `ProviderUnavailable` (the stack falls through to its other modules).
    pub(crate) fn offline_login<D: Daemon>(
        &mut self,
        daemon: &mut D,
        who: &Who,
    ) -> Result<(), AuthError> {
        let text = format!(
            "The identity provider cannot be reached.\nOffline PIN for {} (Enter to give up): ",
            prompt::clean(&who.user)
        );
        let pin = self.conv.secret(&text).map_err(AuthError::Conversation)?;
        if pin.expose().is_empty() {
            return Err(AuthError::Failed {
                reason: LoginFailure::ProviderUnavailable,
                message: "no offline PIN given".into(),
            });
        }
        let request = Request::OfflineLogin {
            user: who.user.clone(),
            service: who.service.clone(),
            pin,
        };
        let answer = daemon
            .call(&request, OFFLINE_DEADLINE)
            .map_err(AuthError::Daemon)?;
        self.verdict("offline_login", who, answer)
    }

    /// After an approved login that invites it: asks for a new offline PIN, twice, and sends
    /// it. Nothing here changes the login's success: Enter, a mismatch, a conversation that
    /// cannot ask, or a refusal only mean no PIN is set now.
    pub(crate) fn offer_offline_pin<D: Daemon>(
        &mut self,
        daemon: &mut D,
        login_id: &str,
        min_length: u32,
    ) {
        let first = format!(
            "Set an offline PIN for this host, used only while the identity provider cannot be \
             reached ({min_length} characters or more; Enter to skip): "
        );
        let Ok(pin) = self.conv.secret(&first) else {
            self.debug("offline PIN not offered: the conversation cannot ask");
            return;
        };
        if pin.expose().is_empty() {
            return;
        }
        let Ok(again) = self.conv.secret("Repeat the offline PIN: ") else {
            return;
        };
        if again != pin {
            self.show_error("The PINs differ; no offline PIN was set.");
            return;
        }
        let request = Request::OfflineSetPin {
            login_id: login_id.to_owned(),
            pin: Secret::new(pin.expose()),
        };
        match daemon.call(&request, SET_PIN_DEADLINE) {
            Ok(Response::Done { message }) => {
                let _ = self.conv.info(&prompt::clean(&message));
            }
            Ok(Response::Error { message, .. }) => {
                self.show_error(&format!("No offline PIN was set: {message}"));
            }
            Ok(other) => self.debug(&format!(
                "offline_set_pin answered with {}",
                crate::auth::response_kind(&other)
            )),
            Err(e) => self.debug(&format!("offline_set_pin failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::client::ClientError;
    use oidc_proto::types::LoginPrompt;
    use pam::constants::PamResultCode;

    use super::*;
    use crate::args::Options;
    use crate::testing::{FakeDaemon, Said, ScriptedUser, login_with};

    fn alice() -> Who {
        Who {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: None,
            tty: None,
        }
    }

    fn run(
        user: &mut ScriptedUser,
        script: Vec<Result<Response, ClientError>>,
    ) -> (Result<(), AuthError>, FakeDaemon) {
        login_with(user, &alice(), script)
    }

    fn offline_available() -> Result<Response, ClientError> {
        Ok(Response::OfflineAvailable {
            user: "alice".into(),
        })
    }

    fn secrets(user: &ScriptedUser) -> Vec<&str> {
        user.said
            .iter()
            .filter_map(|s| match s {
                Said::Secret(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The provider unreachable and a PIN set: the module asks for it (echo off) and succeeds
    /// only when the daemon approves exactly this user.
    #[test]
    fn offline_pin_login() {
        let mut user = ScriptedUser::typing(&["493817"]);
        let approved = Ok(Response::LoginApproved {
            user: "alice".into(),
            offline_pin: None,
        });
        let (result, daemon) = run(&mut user, vec![offline_available(), approved]);
        assert!(result.is_ok(), "{result:?}");
        assert!(secrets(&user)[0].contains("Offline PIN for alice"));
        let asked = daemon.asked();
        let Request::OfflineLogin { user: u, pin, .. } = &asked[2] else {
            panic!("{asked:?}")
        };
        assert_eq!((u.as_str(), pin.expose()), ("alice", "493817"));
        assert!(!format!("{asked:?}").contains("493817"), "the PIN in Debug");

        let mut user = ScriptedUser::typing(&["493817"]);
        let other = Ok(Response::LoginApproved {
            user: "bob".into(),
            offline_pin: None,
        });
        let (result, _) = run(&mut user, vec![offline_available(), other]);
        assert!(matches!(result, Err(AuthError::WrongUser { .. })));
    }

    /// Enter instead of a PIN gives up as "provider unavailable" without asking the daemon; a
    /// wrong PIN shows the daemon's message and fails.
    #[test]
    fn offline_pin_refusals() {
        let mut user = ScriptedUser::answering();
        let (result, daemon) = run(&mut user, vec![offline_available()]);
        let e = result.unwrap_err();
        assert_eq!(
            e.code(&Options::default()),
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        );
        assert_eq!(daemon.asked().len(), 2);

        let mut user = ScriptedUser::typing(&["000000"]);
        let wrong = Ok(Response::LoginFailed {
            reason: LoginFailure::Denied,
            message: "wrong PIN (4 left before a lockout)".into(),
        });
        let (result, _) = run(&mut user, vec![offline_available(), wrong]);
        assert_eq!(
            result.unwrap_err().code(&Options::default()),
            PamResultCode::PAM_AUTH_ERR
        );
        assert!(
            user.said
                .contains(&Said::Error("wrong PIN (4 left before a lockout)".into()))
        );
    }

    fn started() -> Result<Response, ClientError> {
        Ok(Response::LoginStarted(LoginPrompt {
            login_id: "login-42".into(),
            verification_uri: "https://idp.example.com/device".into(),
            verification_uri_complete: None,
            user_code: "WDJB-MJHT".into(),
            expires_in: 600,
            host: "web01".into(),
            qr: None,
        }))
    }

    fn invited() -> Result<Response, ClientError> {
        Ok(Response::LoginApproved {
            user: "alice".into(),
            offline_pin: Some(6),
        })
    }

    /// An approval inviting a PIN: asked twice, sent with the login id; the daemon's answer is
    /// shown. Different PINs, or Enter, set nothing; the login succeeds in every case.
    #[test]
    fn offline_pin_is_offered_after_an_approval() {
        let mut user = ScriptedUser::typing(&["493817", "493817"]);
        let done = Ok(Response::Done {
            message: "Offline PIN set".into(),
        });
        let (result, daemon) = run(&mut user, vec![started(), invited(), done]);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(secrets(&user).len(), 2);
        assert!(secrets(&user)[0].contains("6 characters or more"));
        assert_eq!(
            daemon.asked().last(),
            Some(&Request::OfflineSetPin {
                login_id: "login-42".into(),
                pin: Secret::new("493817"),
            })
        );
        assert!(user.said.contains(&Said::Info("Offline PIN set".into())));

        let mut user = ScriptedUser::typing(&["493817", "493818"]);
        let (result, daemon) = run(&mut user, vec![started(), invited()]);
        assert!(result.is_ok());
        assert!(
            !daemon
                .asked()
                .iter()
                .any(|r| matches!(r, Request::OfflineSetPin { .. }))
        );
        assert!(user.said.contains(&Said::Error(
            "The PINs differ; no offline PIN was set.".into()
        )));

        let mut user = ScriptedUser::answering();
        let (result, daemon) = run(&mut user, vec![started(), invited()]);
        assert!(result.is_ok());
        assert_eq!(secrets(&user).len(), 1);
        assert_eq!(daemon.asked().len(), 3);
    }
}
