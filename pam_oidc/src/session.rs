//! `session` (`pam_sm_open_session`): whether PAM_USER is a user the daemon serves, so that a
//! stack can run a module for those users only. The shipped stacks and the profile use it to
//! create home directories at the first session:
//!
//! ```text
//! session [success=ignore default=1] pam_oidc.so
//! session optional                   pam_mkhomedir.so umask=0077
//! ```
//!
//! - a user whose passwd entry comes from the daemon → `PAM_SUCCESS` (the next line runs);
//! - anyone else (root, local and system accounts, a linked local account) → `PAM_IGNORE`;
//! - the daemon unreachable, slow or confused → `PAM_IGNORE` too: a session never fails here,
//!   it only goes without the optional next line.
//!
//! The session runs only after `auth` and `account` succeeded, so no home is created for a
//! refused login. One `GetUserByName` within [`crate::local::quick_deadline`].

use std::time::Duration;

use oidc_proto::client::ClientError;
use oidc_proto::{Request, Response};
use pam::constants::PamResultCode;

use crate::auth::{self, Daemon};

/// Whether the daemon has a passwd entry for `user`; `Err` says why it could not tell.
pub fn is_served<D: Daemon>(
    user: &str,
    connect: impl FnOnce(Duration) -> Result<D, ClientError>,
) -> Result<bool, String> {
    if !auth::is_plausible_user(user) {
        return Ok(false);
    }
    let mut daemon = connect(auth::CONNECT_DEADLINE).map_err(|e| e.to_string())?;
    let request = Request::GetUserByName {
        name: user.to_string(),
    };
    match daemon.call(&request, crate::local::quick_deadline(user)) {
        Ok(Response::User(u)) => Ok(u.name == user),
        Ok(Response::NotFound) => Ok(false),
        Ok(other) => Err(format!(
            "oidcd answered get_user_by_name with {}",
            auth::response_kind(&other)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The code for [`is_served`]'s answer.
pub fn code(served: &Result<bool, String>) -> PamResultCode {
    match served {
        Ok(true) => PamResultCode::PAM_SUCCESS,
        Ok(false) | Err(_) => PamResultCode::PAM_IGNORE,
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::types::UnixUser;

    use super::*;
    use crate::testing::{FakeDaemon, no_daemon};

    fn user(name: &str) -> Response {
        Response::User(UnixUser {
            name: name.into(),
            uid: 1_900_000_000,
            gid: 1_900_000_000,
            gecos: String::new(),
            home: format!("/home/{name}"),
            shell: "/bin/bash".into(),
        })
    }

    /// The daemon's user gets success (the next line runs); anyone else, and every failure to
    /// ask, is ignored; root and impossible names are not asked about.
    #[test]
    fn only_the_daemons_users_succeed() {
        let served = is_served("alice", FakeDaemon::new([Ok(user("alice"))]).connector());
        assert_eq!(code(&served), PamResultCode::PAM_SUCCESS);
        for answer in [
            Ok(Response::NotFound),
            Ok(user("mallory")),
            Ok(Response::Unavailable {
                reason: "db".into(),
            }),
            Ok(Response::LoginPending),
            Err(ClientError::Timeout),
        ] {
            let served = is_served("alice", FakeDaemon::new([answer]).connector());
            assert_eq!(code(&served), PamResultCode::PAM_IGNORE, "{served:?}");
        }
        let down = is_served("alice", no_daemon);
        assert!(down.is_err());
        assert_eq!(code(&down), PamResultCode::PAM_IGNORE);
        let root = FakeDaemon::new([Ok(user("root"))]);
        assert_eq!(is_served("root", root.connector()), Ok(false));
        assert!(root.asked().is_empty());
    }
}
