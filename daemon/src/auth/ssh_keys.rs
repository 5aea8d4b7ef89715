//! `GetSshKeys`: the SSH public keys sshd may accept for a user, for `AuthorizedKeysCommand`
//! (`oidc-authorized-keys %u`, run as `AuthorizedKeysCommandUser`, usually `nobody`) and for
//! `oidcctl user keys`.
//!
//! Keys come from the claims stored at the user's last login or refresh, read with the current
//! `claims.ssh_keys_claim` of the user's provider, so a key removed at the provider stops being
//! served at the next refresh, and a configuration change applies at once. They are served
//! only while the account phase would allow the user ([`crate::auth::account::refusal`]): not
//! for a revoked identity, one the provider has not confirmed within `refresh.entry_ttl` (or
//! `access.max_login_age_days` without a refresh token), or one the access rules refuse. The
//! account phase still runs after a key is accepted (the shipped stacks' `account` line).
//!
//! Nothing is cached: each answer reads the store, so a revocation applies to the next key
//! offered. Every SSH client that offers a key makes sshd ask, before authentication: the
//! outcome is logged at debug level only.

use oidc_proto::Response;
use oidc_proto::types::SshKeyList;

use crate::access::Peer;
use crate::auth::account;
use crate::identity::ssh_keys;
use crate::state::State;

/// Answers `GetSshKeys` for `name`; root also learns what is stored, withheld and skipped.
pub fn keys(state: &State, peer: &Peer, name: &str) -> Response {
    let cfg = state.config();
    let stored = match state.with_store(|s| s.user_record(name)) {
        Err(reason) => return Response::Unavailable { reason },
        Ok(None) => return Response::NotFound,
        Ok(Some(stored)) => stored,
    };
    let claim = cfg
        .provider_by_issuer(&stored.issuer)
        .map_or(&cfg.claims, |p| &p.claims)
        .ssh_keys
        .clone();
    let claimed = ssh_keys::from_claims(&stored.claims, claim.as_ref());
    let withheld = match &claim {
        None => Some("no claim holds SSH keys (claims.ssh_keys_claim is not set)".to_string()),
        Some(_) => account::refusal(state, &cfg, name, &stored).err(),
    };
    match &withheld {
        None => log::debug!("ssh keys of {name}: {} served", claimed.keys.len()),
        Some(why) => log::debug!("ssh keys of {name}: none served: {why}"),
    }
    for skipped in &claimed.skipped {
        log::debug!("ssh keys of {name}: skipped {skipped}");
    }
    let keys = if withheld.is_none() {
        claimed.keys.clone()
    } else {
        Vec::new()
    };
    Response::SshKeys(if peer.is_root() {
        SshKeyList {
            keys,
            stored: claimed.keys,
            withheld,
            skipped: claimed.skipped,
        }
    } else {
        SshKeyList {
            keys,
            ..SshKeyList::default()
        }
    })
}
