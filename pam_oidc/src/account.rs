//! `account` (may this user log in now?) and `password` (may not be changed here), both
//! answered from one `AccountCheck` request.
//!
//! `account` codes, for stacks like
//! `account [success=ok ignore=ignore user_unknown=ignore authinfo_unavail=ignore default=bad] pam_oidc.so`:
//! - `Allowed` or `Linked` (a local account linked to an identity) → `PAM_SUCCESS`;
//! - `Denied { message }` → the message as `PAM_ERROR_MSG`, then `PAM_PERM_DENIED`;
//! - `Unknown` (not a user the daemon manages) → `PAM_USER_UNKNOWN`, or `PAM_IGNORE` with
//!   `ignore_unknown_user`: local accounts go on to the rest of the stack;
//! - the daemon unreachable, unavailable, another version or confused → `PAM_AUTHINFO_UNAVAIL`.
//!
//! `password` (`pam_sm_chauthtok`): libpam calls the stack twice, first with
//! `PAM_PRELIM_CHECK`, then, only if every module passed it, with `PAM_UPDATE_AUTHTOK`.
//! - Users the daemon manages (allowed or denied): in the preliminary check the module says
//!   why (`PAM_ERROR_MSG`) and returns `PAM_PERM_DENIED`, so `passwd` stops before any module
//!   asks for a new password ("passwd: Permission denied"). Should a stack still reach the
//!   update (a control value that ignored the first answer), `PAM_AUTHTOK_ERR` without a second
//!   message.
//! - Everyone else, and every case where the daemon cannot tell: `PAM_IGNORE`, so `passwd` for
//!   root and local users is decided by `pam_unix` alone. Ignoring is safe: the password stack
//!   grants nothing, and the daemon's users have no local password a module could change.

use std::time::Duration;

use oidc_proto::client::ClientError;
use oidc_proto::types::AccountStatus;
use oidc_proto::{Request, Response};
use pam::constants::PamResultCode;

use crate::args::Options;
use crate::auth::{self, Conversation, Daemon};
use crate::prompt;
use crate::syslog::{Level, Log};

/// Why the account check did not say "allowed". Each variant says its code ([`Self::code`]).
#[derive(Debug)]
pub enum AccountError {
    /// PAM_USER is missing, cannot be a user name, or is root: `PAM_USER_UNKNOWN` (or
    /// `PAM_IGNORE`).
    NoUser,
    /// The daemon does not manage this user: `PAM_USER_UNKNOWN` (or `PAM_IGNORE`).
    Unknown,
    /// The daemon refused the account (message already shown): `PAM_PERM_DENIED`.
    Denied(String),
    /// The daemon could not be asked: `PAM_AUTHINFO_UNAVAIL`.
    Daemon(ClientError),
    /// The daemon cannot answer now, or speaks another version: `PAM_AUTHINFO_UNAVAIL`.
    Unavailable(String),
    /// The daemon answered with another kind of message: `PAM_AUTHINFO_UNAVAIL`.
    Unexpected(&'static str),
}

impl AccountError {
    /// The PAM code this error returns.
    pub fn code(&self, options: &Options) -> PamResultCode {
        match self {
            Self::NoUser | Self::Unknown => auth::unknown_user_code(options),
            Self::Denied(_) => PamResultCode::PAM_PERM_DENIED,
            Self::Daemon(_) | Self::Unavailable(_) | Self::Unexpected(_) => {
                PamResultCode::PAM_AUTHINFO_UNAVAIL
            }
        }
    }
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoUser => f.write_str("not a name oidcd could serve"),
            Self::Unknown => f.write_str("not a user oidcd manages"),
            Self::Denied(why) => write!(f, "account refused: {why}"),
            Self::Daemon(e) => write!(f, "{e}"),
            Self::Unavailable(why) => write!(f, "oidcd cannot check accounts: {why}"),
            Self::Unexpected(got) => write!(f, "oidcd answered account_check with {got}"),
        }
    }
}

/// `pam_sm_acct_mgmt`: asks the daemon whether `user` may log in through `service` now. A
/// refusal's message is shown to the user.
pub fn check<D: Daemon>(
    user: &str,
    service: &str,
    conv: &mut impl Conversation,
    connect: impl FnOnce(Duration) -> Result<D, ClientError>,
) -> Result<(), AccountError> {
    match ask(user, service, connect)? {
        AccountStatus::Allowed | AccountStatus::Linked => Ok(()),
        AccountStatus::Denied { message } => {
            let shown = prompt::clean(&message);
            let shown = if shown.is_empty() {
                "Access denied."
            } else {
                &shown
            };
            // The refusal stands whether or not it could be shown.
            let _ = conv.error(shown);
            Err(AccountError::Denied(message))
        }
        AccountStatus::Unknown => Err(AccountError::Unknown),
    }
}

/// Which call of `pam_sm_chauthtok` this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPhase {
    /// `PAM_PRELIM_CHECK`: may the password be changed at all?
    Preliminary,
    /// `PAM_UPDATE_AUTHTOK`: change it.
    Update,
}

/// `PAM_PRELIM_CHECK` in `<security/pam_modules.h>` (pam-bindings does not export it).
pub const PAM_PRELIM_CHECK: u32 = 0x4000;

impl PasswordPhase {
    /// The phase named by `pam_sm_chauthtok`'s flags.
    pub fn from_flags(flags: u32) -> Self {
        if flags & PAM_PRELIM_CHECK != 0 {
            Self::Preliminary
        } else {
            Self::Update
        }
    }
}

/// The message shown when a managed user tries to change their password here.
pub fn managed_password_message(user: &str) -> String {
    format!(
        "The password of {} is managed by the identity provider.\nChange it there.",
        prompt::clean(user)
    )
}

/// `pam_sm_chauthtok`: see the module documentation for the codes.
pub fn change_password<D: Daemon>(
    user: &str,
    service: &str,
    phase: PasswordPhase,
    conv: &mut impl Conversation,
    log: &impl Log,
    connect: impl FnOnce(Duration) -> Result<D, ClientError>,
) -> PamResultCode {
    match ask(user, service, connect) {
        Ok(AccountStatus::Allowed | AccountStatus::Denied { .. }) => match phase {
            PasswordPhase::Preliminary => {
                log.log(
                    Level::Notice,
                    &format!("refusing a password change for {user}: managed by the provider"),
                );
                let _ = conv.error(&managed_password_message(user));
                PamResultCode::PAM_PERM_DENIED
            }
            PasswordPhase::Update => PamResultCode::PAM_AUTHTOK_ERR,
        },
        // A linked local account keeps its local password: pam_unix changes it.
        Ok(AccountStatus::Unknown | AccountStatus::Linked) => PamResultCode::PAM_IGNORE,
        Err(e) => {
            log.log(
                Level::Info,
                &format!("password change for {user} left to the other modules: {e}"),
            );
            PamResultCode::PAM_IGNORE
        }
    }
}

/// One `AccountCheck` on a fresh connection.
fn ask<D: Daemon>(
    user: &str,
    service: &str,
    connect: impl FnOnce(Duration) -> Result<D, ClientError>,
) -> Result<AccountStatus, AccountError> {
    if !auth::is_plausible_user(user) {
        return Err(AccountError::NoUser);
    }
    let mut daemon = connect(auth::CONNECT_DEADLINE).map_err(AccountError::Daemon)?;
    let request = Request::AccountCheck {
        user: user.to_owned(),
        service: service.to_owned(),
    };
    match daemon
        .call(&request, crate::local::quick_deadline(user))
        .map_err(AccountError::Daemon)?
    {
        Response::Account { account } => Ok(account),
        Response::Unavailable { reason } => Err(AccountError::Unavailable(reason)),
        Response::Error { code, message, .. } => {
            Err(AccountError::Unavailable(format!("{code:?}: {message}")))
        }
        Response::UnsupportedVersion { supported } => Err(AccountError::Unavailable(format!(
            "protocol version mismatch: oidcd speaks {supported:?}"
        ))),
        other => Err(AccountError::Unexpected(auth::response_kind(&other))),
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::types::ErrorCode;

    use super::*;
    use crate::testing::{FakeDaemon, Memo, Said, ScriptedUser, no_daemon};

    fn verdict(status: AccountStatus) -> (Result<(), AccountError>, ScriptedUser, FakeDaemon) {
        let daemon = FakeDaemon::new([Ok(Response::Account { account: status })]);
        let mut user = ScriptedUser::answering();
        let result = check("alice", "sshd", &mut user, daemon.connector());
        (result, user, daemon)
    }

    /// Allowed is success, and the request names the user and service.
    #[test]
    fn allowed_is_success() {
        let (result, user, daemon) = verdict(AccountStatus::Allowed);
        assert!(result.is_ok());
        assert!(user.said.is_empty());
        assert_eq!(
            daemon.asked(),
            [Request::AccountCheck {
                user: "alice".into(),
                service: "sshd".into()
            }]
        );
    }

    /// Denied shows the daemon's reason as an error and is PERM_DENIED.
    #[test]
    fn denied_is_perm_denied_with_message() {
        let (result, user, _) = verdict(AccountStatus::Denied {
            message: "alice is not in group ssh-users".into(),
        });
        let e = result.unwrap_err();
        assert_eq!(e.code(&Options::default()), PamResultCode::PAM_PERM_DENIED);
        assert_eq!(
            user.said,
            [Said::Error("alice is not in group ssh-users".into())]
        );
    }

    /// Unknown is USER_UNKNOWN, or IGNORE with ignore_unknown_user, and says nothing.
    #[test]
    fn unknown_user() {
        let (result, user, _) = verdict(AccountStatus::Unknown);
        let e = result.unwrap_err();
        assert_eq!(e.code(&Options::default()), PamResultCode::PAM_USER_UNKNOWN);
        let ignoring = Options {
            ignore_unknown_user: true,
            ..Options::default()
        };
        assert_eq!(e.code(&ignoring), PamResultCode::PAM_IGNORE);
        assert!(user.said.is_empty());
    }

    /// Daemon down, unavailable, erroring, of another version or confused: AUTHINFO_UNAVAIL.
    #[test]
    fn daemon_trouble_is_authinfo_unavail() {
        let mut user = ScriptedUser::answering();
        let e = check("alice", "sshd", &mut user, no_daemon).unwrap_err();
        assert_eq!(
            e.code(&Options::default()),
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        );
        for answer in [
            Ok(Response::Unavailable {
                reason: "db".into(),
            }),
            Ok(Response::error(ErrorCode::PermissionDenied, "needs root")),
            Ok(Response::UnsupportedVersion { supported: vec![2] }),
            Ok(Response::LoginApproved {
                user: "alice".into(),
                offline_pin: None,
            }),
            Ok(Response::NotFound),
            Err(ClientError::Timeout),
            Err(ClientError::VersionMismatch { daemon: vec![2] }),
        ] {
            let daemon = FakeDaemon::new([answer]);
            let e = check("alice", "sshd", &mut user, daemon.connector()).unwrap_err();
            assert_eq!(
                e.code(&Options::default()),
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "{e}"
            );
        }
        assert!(user.said.is_empty());
    }

    /// A missing or impossible user name is unknown without asking the daemon.
    #[test]
    fn impossible_user_is_not_asked() {
        for name in ["", "root", "a b", "a:b", "../x", "a\nb"] {
            let daemon = FakeDaemon::new([]);
            let mut user = ScriptedUser::answering();
            let e = check(name, "sshd", &mut user, daemon.connector()).unwrap_err();
            assert_eq!(e.code(&Options::default()), PamResultCode::PAM_USER_UNKNOWN);
            assert!(daemon.asked().is_empty(), "{name:?}");
        }
    }

    /// A linked local account passes the account check, and its password change is left to
    /// the other modules (its password is the local one).
    #[test]
    fn linked_account_is_allowed_and_keeps_its_local_password() {
        let (result, _, _) = verdict(AccountStatus::Linked);
        assert!(result.is_ok());
        let memo = Memo::default();
        for phase in [PasswordPhase::Preliminary, PasswordPhase::Update] {
            let daemon = FakeDaemon::new([Ok(Response::Account {
                account: AccountStatus::Linked,
            })]);
            let mut user = ScriptedUser::answering();
            let code = change_password("lo", "passwd", phase, &mut user, &memo, daemon.connector());
            assert_eq!(code, PamResultCode::PAM_IGNORE);
            assert!(user.said.is_empty());
        }
    }

    /// A managed user's password change is refused once, in the preliminary check, with a
    /// message; the update phase fails without repeating it.
    #[test]
    fn managed_password_is_refused() {
        let memo = Memo::default();
        for status in [
            AccountStatus::Allowed,
            AccountStatus::Denied {
                message: "x".into(),
            },
        ] {
            let daemon = FakeDaemon::new([Ok(Response::Account {
                account: status.clone(),
            })]);
            let mut user = ScriptedUser::answering();
            let code = change_password(
                "alice",
                "passwd",
                PasswordPhase::Preliminary,
                &mut user,
                &memo,
                daemon.connector(),
            );
            assert_eq!(code, PamResultCode::PAM_PERM_DENIED);
            assert_eq!(
                user.said,
                [Said::Error(
                    "The password of alice is managed by the identity provider.\n\
                     Change it there."
                        .into()
                )]
            );

            let daemon = FakeDaemon::new([Ok(Response::Account { account: status })]);
            let mut user = ScriptedUser::answering();
            let code = change_password(
                "alice",
                "passwd",
                PasswordPhase::Update,
                &mut user,
                &memo,
                daemon.connector(),
            );
            assert_eq!(code, PamResultCode::PAM_AUTHTOK_ERR);
            assert!(user.said.is_empty());
        }
    }

    /// Local users, and any case where the daemon cannot tell, are left to the other modules.
    #[test]
    fn other_passwords_are_ignored() {
        let memo = Memo::default();
        for phase in [PasswordPhase::Preliminary, PasswordPhase::Update] {
            let daemon = FakeDaemon::new([Ok(Response::Account {
                account: AccountStatus::Unknown,
            })]);
            let mut user = ScriptedUser::answering();
            let code = change_password(
                "root",
                "passwd",
                phase,
                &mut user,
                &memo,
                daemon.connector(),
            );
            assert_eq!(code, PamResultCode::PAM_IGNORE);
            let code = change_password("root", "passwd", phase, &mut user, &memo, no_daemon);
            assert_eq!(code, PamResultCode::PAM_IGNORE);
            assert!(user.said.is_empty());
        }
    }

    /// The phase comes from PAM_PRELIM_CHECK in the flags.
    #[test]
    fn phase_from_flags() {
        assert_eq!(
            PasswordPhase::from_flags(0x4000),
            PasswordPhase::Preliminary
        );
        assert_eq!(
            PasswordPhase::from_flags(0x4000 | 0x8000),
            PasswordPhase::Preliminary
        );
        assert_eq!(PasswordPhase::from_flags(0x2000), PasswordPhase::Update);
    }
}
