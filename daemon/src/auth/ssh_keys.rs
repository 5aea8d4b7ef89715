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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::clock::Clock;
    use crate::config::{ClaimPath, Config, ProviderConfig};
    use crate::identity::local::LocalAccounts;
    use crate::store::{NewIds, Store};

    const ISSUER: &str = "https://idp.example.com";
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFW2wBWAeYvmB2vU+4FWE34CUzFrrWnbEVYaeOAzAITF";
    const ROOT: Peer = Peer {
        uid: 0,
        gid: 0,
        pid: 1,
    };
    const NOBODY: Peer = Peer {
        uid: 65534,
        gid: 65534,
        pid: 1,
    };

    /// A state holding alice (in `staff`), imported with one key and an `authorized_keys`
    /// option line in `ssh_public_keys`, under `cfg` with that claim configured.
    fn state(mut cfg: Config) -> State {
        cfg.claims.ssh_keys = Some(ClaimPath("ssh_public_keys".into()));
        cfg.access.max_login_age_days = 0;
        cfg.providers = vec![ProviderConfig {
            claims: cfg.claims.clone(),
            access: cfg.access.clone(),
            mapping: cfg.mapping.clone(),
            ..ProviderConfig::for_tests(ISSUER)
        }];
        let none = Path::new("/nonexistent");
        let local = LocalAccounts::from_paths(none, none);
        let mut store = Store::open_in_memory().unwrap();
        let claims = json!({
            "sub": "alice", "preferred_username": "alice", "groups": ["staff"],
            "ssh_public_keys": [format!("{KEY} laptop"), format!("command=\"sh\" {KEY}")],
        });
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: 1_700_000_000,
        };
        store.import(&ctx, &[claims]).unwrap().unwrap();
        State::from_store(cfg, store, local, Clock::fixed(1_700_000_000))
    }

    fn list(resp: Response) -> SshKeyList {
        match resp {
            Response::SshKeys(k) => k,
            other => panic!("{other:?}"),
        }
    }

    /// Served keys reach everyone; what is stored, skipped or withheld reaches root alone; an
    /// unknown name is not found.
    #[test]
    fn root_sees_more_than_the_keys() {
        let s = state(Config::default());
        let served = vec![format!("{KEY} laptop")];
        let public = list(keys(&s, &NOBODY, "alice"));
        assert_eq!(
            public,
            SshKeyList {
                keys: served.clone(),
                ..SshKeyList::default()
            }
        );
        let root = list(keys(&s, &ROOT, "alice"));
        assert_eq!(root.keys, served);
        assert_eq!(root.stored, served);
        assert_eq!(root.withheld, None);
        assert_eq!(root.skipped.len(), 1, "{root:?}");
        assert!(root.skipped[0].contains("starts with options"));
        assert_eq!(keys(&s, &NOBODY, "bob"), Response::NotFound);
    }

    /// No key is served to a revoked user, one the access rules now refuse, or without a claim
    /// configured; root is told why and still sees the stored key.
    #[test]
    fn withheld_when_the_account_phase_would_refuse() {
        let s = state(Config::default());
        let configured = (*s.config()).clone();
        let mut refusing = configured.clone();
        refusing.providers[0].access.allowed_groups = vec!["admins".into()];
        s.set_config(refusing);
        let root = list(keys(&s, &ROOT, "alice"));
        assert!(root.keys.is_empty());
        assert!(root.withheld.unwrap().starts_with("access refused"));

        let mut unset = configured.clone();
        unset.providers[0].claims.ssh_keys = None;
        s.set_config(unset);
        let root = list(keys(&s, &ROOT, "alice"));
        assert!(root.keys.is_empty() && root.stored.is_empty());
        assert!(
            root.withheld
                .unwrap()
                .contains("claims.ssh_keys_claim is not set")
        );

        s.set_config(configured);
        s.with_store(|st| st.revoke("alice", "test", 1_700_000_000, None))
            .unwrap();
        assert!(list(keys(&s, &NOBODY, "alice")).keys.is_empty());
        let root = list(keys(&s, &ROOT, "alice"));
        assert!(root.keys.is_empty());
        assert_eq!(root.stored.len(), 1);
        assert!(
            root.withheld
                .unwrap()
                .starts_with("access of alice was revoked")
        );
    }
}
