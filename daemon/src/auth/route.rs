//! Which provider a login asks: the one that created the user (or the one its issuer moved
//! to, `oidcctl migrate`), else the one the local account's link names, else the one the
//! name's form points to ([`crate::config::Config::route_new_name`]: a provider's
//! `user_prefix`/`user_suffix`).

use std::sync::Arc;

use oidc_proto::types::LoginFailure;

use crate::config::RouteError;
use crate::oidc::Provider;
use crate::state::State;

/// Why a login cannot go to any provider: the failure to answer and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unroutable {
    /// How the PAM module reacts.
    pub reason: LoginFailure,
    /// For the user and the log.
    pub message: String,
}

/// The provider `user`'s login goes to.
pub fn provider_for(state: &State, user: &str) -> Result<Arc<Provider>, Unroutable> {
    let cfg = state.config();
    let stored = state.with_store(|s| {
        let issuer = match s.identity_of(user)? {
            Some((issuer, _)) => Some(issuer),
            None => s.link_of(user)?.map(|l| l.issuer),
        };
        // An issuer no longer configured whose identities oidcctl migrate moved: its users
        // not moved yet (by email, at this login) go to the new provider.
        let moved = match &issuer {
            Some(i) if cfg.provider_by_issuer(i).is_none() => s.moved_to(i)?,
            _ => None,
        };
        Ok((issuer, moved))
    });
    let (issuer, moved) = stored.map_err(|e| Unroutable {
        reason: LoginFailure::Internal,
        message: format!("the identity cache is unavailable ({e})"),
    })?;
    let configured = match &issuer {
        Some(issuer) => match moved
            .as_deref()
            .and_then(|to| cfg.provider_by_issuer(to))
            .or_else(|| cfg.provider_by_issuer(issuer))
        {
            Some(p) => p,
            None => {
                return Err(Unroutable {
                    reason: LoginFailure::ProviderUnavailable,
                    message: format!(
                        "{user} belongs to the identity provider {issuer}, which is no longer \
                         configured on this host (oidcctl migrate moves users to another provider)"
                    ),
                });
            }
        },
        None => cfg.route_new_name(user).map_err(|e| Unroutable {
            reason: match e {
                RouteError::NoProvider => LoginFailure::ProviderUnavailable,
                RouteError::NoMatch { .. } | RouteError::Ambiguous { .. } => {
                    LoginFailure::NameRefused
                }
            },
            message: e.to_string(),
        })?,
    };
    state
        .provider_by_issuer(&configured.issuer)
        .ok_or_else(|| Unroutable {
            reason: LoginFailure::ProviderUnavailable,
            message: format!(
                "the identity provider {} cannot be used (see the daemon's log)",
                configured.id
            ),
        })
}
