//! PAM `account`: may a user log in now?
//!
//! A user oidcd created is allowed while the claims from their last login still pass the
//! access gates of the current configuration (so removing a group from `allowed_groups`, or
//! the user from it at their next login, locks them out); a removed user is unknown; a linked
//! local account is allowed while the link exists.

use oidc_proto::Response;
use oidc_proto::types::AccountStatus;

use crate::identity::mapping;
use crate::state::State;

/// `AccountCheck`.
pub fn check(state: &State, user: &str) -> Response {
    let cfg = state.config();
    let found = state.with_store(|s| {
        let claims = s.user_record(user)?.map(|r| r.claims);
        let link = s.link_of(user)?;
        Ok((claims, link))
    });
    let account = match found {
        Err(reason) => return Response::Unavailable { reason },
        Ok((Some(claims), _)) => match mapping::check_access(&claims, &cfg) {
            Ok(()) => AccountStatus::Allowed,
            Err(r) => {
                log::warn!("account {user} refused: {r}");
                AccountStatus::Denied {
                    message: format!("access refused: {r}"),
                }
            }
        },
        Ok((None, Some(link))) => {
            let issuer = cfg.provider.as_ref().map_or("", |p| p.issuer.as_str());
            if link.issuer == issuer {
                AccountStatus::Linked
            } else {
                AccountStatus::Denied {
                    message: "the account's link belongs to another provider".into(),
                }
            }
        }
        Ok((None, None)) => AccountStatus::Unknown,
    };
    Response::Account { account }
}
