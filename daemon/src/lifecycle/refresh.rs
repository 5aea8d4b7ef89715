//! One refresh of one identity: ask the provider, validate what it says exactly as a login's
//! answer (signature, issuer, audience, times, then the same `sub`), map the claims with the
//! login's rules, and write the result in one transaction, or nothing.

use std::time::Instant;

use serde_json::{Value, json};

use super::schedule;
use crate::auth::flow;
use crate::config::{ClaimSource, Config};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::{self, Refusal};
use crate::identity::other_sources;
use crate::oidc::provider::Discovered;
use crate::oidc::refresh::{self as grant, Recheck};
use crate::oidc::{OidcError, Provider, userinfo};
use crate::state::State;
use crate::store::{Candidate, NewIds, RefreshWrite, Tokens, Written};

/// What a refresh came to. Each variant is logged once, by [`super::log_outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider confirmed the identity; the text says what changed.
    Confirmed(String),
    /// The provider confirmed the identity but its claims no longer pass the access rules: the
    /// claims are kept, the provider and admin groups dropped; the account phase refuses.
    Denied(String),
    /// The grant is gone: the identity is revoked.
    Revoked(String),
    /// Nothing was learned and nothing changed (the provider unreachable or erring, an answer
    /// refused); retried with backoff. `unreachable` is true when the provider could not be
    /// reached at all.
    Failed {
        /// Why.
        why: String,
        /// The provider was not reached.
        unreachable: bool,
    },
    /// Nothing to refresh with (no refresh token, the access token expired).
    Nothing(String),
    /// A login, revocation or other refresh changed the identity meanwhile: result dropped.
    Superseded,
}

/// Refreshes `c` now. The caller holds the identity (one refresh at a time per identity).
pub fn one(state: &State, provider: &Provider, d: &Discovered, c: &Candidate) -> Outcome {
    let cfg = state.config();
    let now = state.clock.now();
    if let Some(rt) = &c.tokens.refresh_token {
        return match grant::refresh(provider, d, rt.expose()) {
            Err(e) if grant::is_revocation(&e) => revoke(
                state,
                c,
                &format!("the provider refused the refresh token: {e}"),
            ),
            Err(e) => failed(e),
            Ok(r) => {
                let new = Tokens {
                    refresh_token: r
                        .refresh_token
                        .map(crate::config::Secret::new)
                        .or_else(|| c.tokens.refresh_token.clone()),
                    access_token: Some(crate::config::Secret::new(r.access_token.clone())),
                    access_expires_at: r.expires_in.map(|s| now.saturating_add_unsigned(s)),
                };
                match claims_after_refresh(
                    state,
                    provider,
                    d,
                    c,
                    &cfg,
                    r.id_token.as_deref(),
                    &r.access_token,
                ) {
                    Ok(Some(claims)) => write(state, c, claims.as_ref(), &new),
                    Ok(None) => revoke(
                        state,
                        c,
                        "userinfo refused the access token the provider had just issued",
                    ),
                    Err(e) => failed(e),
                }
            }
        };
    }
    let live = c.tokens.access_expires_at.is_some_and(|exp| exp > now + 5);
    match (&c.tokens.access_token, live && cfg.refresh.userinfo_recheck) {
        (Some(at), true) => match grant::userinfo(provider, d, at.expose(), &c.sub) {
            Ok(Recheck::Refused) => revoke(
                state,
                c,
                "userinfo refused the login's access token before its expiry",
            ),
            Ok(Recheck::Claims(ui)) => {
                let claims = from_userinfo(&cfg, &c.sub, &ui);
                write(state, c, claims.as_ref(), &c.tokens)
            }
            Err(e) => failed(e),
        },
        _ => Outcome::Nothing(
            "no refresh token and no live access token: access.max_login_age_days applies".into(),
        ),
    }
}

/// The claims a refresh answer gives, validated: `Ok(Some(None))` when the identity is
/// confirmed but its claims are not re-read (no ID token and `claims.source = "id_token"`),
/// `Ok(None)` when userinfo refused the fresh access token.
fn claims_after_refresh(
    state: &State,
    provider: &Provider,
    d: &Discovered,
    c: &Candidate,
    cfg: &Config,
    id_token: Option<&str>,
    access_token: &str,
) -> Result<Option<Option<Value>>, OidcError> {
    let Some(token) = id_token else {
        return Ok(match grant::userinfo(provider, d, access_token, &c.sub)? {
            Recheck::Refused => None,
            Recheck::Claims(ui) => Some(from_userinfo(cfg, &c.sub, &ui)),
        });
    };
    let validated = flow::validate(state, provider, d, token, cfg)?;
    if validated.sub != c.sub {
        return Err(OidcError::InvalidToken(format!(
            "the refreshed ID token is about sub {:?}, not {:?}",
            validated.sub, c.sub
        )));
    }
    let ui = if cfg.claims.source == ClaimSource::IdToken {
        None
    } else {
        match grant::userinfo(provider, d, access_token, &c.sub)? {
            Recheck::Refused => return Ok(None),
            Recheck::Claims(ui) => Some(ui),
        }
    };
    Ok(Some(Some(userinfo::merge(
        cfg.claims.source,
        &validated.claims,
        ui.as_ref(),
    ))))
}

/// Claims from userinfo alone (no new ID token). Under `claims.source = "id_token"` the
/// userinfo answer only confirms the identity: its claims may lack what the ID token carried
/// (groups), so the stored ones stay.
fn from_userinfo(cfg: &Config, sub: &str, ui: &Value) -> Option<Value> {
    (cfg.claims.source != ClaimSource::IdToken)
        .then(|| userinfo::merge(ClaimSource::Userinfo, &json!({ "sub": sub }), Some(ui)))
}

fn failed(e: OidcError) -> Outcome {
    Outcome::Failed {
        unreachable: matches!(e, OidcError::Unreachable(_)),
        why: e.to_string(),
    }
}

/// Maps `claims` with the login's rules and writes the refresh, atomically with the tokens.
fn write(state: &State, c: &Candidate, claims: Option<&Value>, new: &Tokens) -> Outcome {
    // The rules of the user's own provider (its claims, gates and mapping).
    let all = state.config();
    let cfg = all
        .provider_by_issuer(&c.issuer)
        .map_or_else(|| (*all).clone(), |p| all.scoped(p));
    let started = Instant::now();
    let local = match state.local() {
        Ok(l) => l,
        Err(why) => {
            return Outcome::Failed {
                why,
                unreachable: false,
            };
        }
    };
    // A new name or a new group is checked against the other NSS sources first, as at a
    // login; names the user already holds are not (a refresh round must not fork a `getent`
    // for every identity).
    let local = match claims.map(|v| mapping::map_claims(v, &cfg, &local)) {
        Some(Ok(first)) => {
            let held = state
                .with_store(|s| s.names_held(c.user_id))
                .unwrap_or_default();
            let new_user: Vec<&str> = Some(first.name.as_str())
                .filter(|n| !held.contains(*n))
                .into_iter()
                .collect();
            let new_groups: Vec<&str> = first
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .filter(|n| !held.contains(*n))
                .collect();
            if new_user.is_empty() && new_groups.is_empty() {
                local
            } else {
                match other_sources::lookup(&new_user, &new_groups, other_sources::LOGIN_BUDGET) {
                    Ok(known) => {
                        let with_others = local.with_others(known);
                        drop(local);
                        return write_mapped(state, c, claims, new, &cfg, &with_others, started);
                    }
                    Err(e) => {
                        return Outcome::Failed {
                            why: format!("cannot check the other account sources: {e}"),
                            unreachable: false,
                        };
                    }
                }
            }
        }
        _ => local,
    };
    write_mapped(state, c, claims, new, &cfg, &local, started)
}

/// The rest of [`write`], with the host's accounts (and other sources' names) to map against.
fn write_mapped(
    state: &State,
    c: &Candidate,
    claims: Option<&Value>,
    new: &Tokens,
    cfg: &Config,
    local: &LocalAccounts,
    started: Instant,
) -> Outcome {
    let mapped = match claims.map(|v| mapping::map_claims(v, cfg, local)) {
        None => None,
        Some(Ok(m)) if m.sub == c.sub => Some(Ok(m)),
        Some(Ok(m)) => {
            return Outcome::Failed {
                why: format!("the claims are about sub {:?}, not {:?}", m.sub, c.sub),
                unreachable: false,
            };
        }
        Some(Err(
            r @ (Refusal::NotInAllowedGroups
            | Refusal::EmailDomain { .. }
            | Refusal::EmailNotVerified),
        )) => Some(Err(r)),
        Some(Err(r)) => {
            return Outcome::Failed {
                why: format!("the refreshed claims are refused, nothing changed: {r}"),
                unreachable: false,
            };
        }
    };
    let (write, result) = match (&mapped, claims) {
        (Some(Ok(m)), Some(v)) => (RefreshWrite::Mapped(m, v), "ok".to_string()),
        (Some(Err(r)), Some(v)) => (RefreshWrite::Denied(v), format!("access refused: {r}")),
        _ => (
            RefreshWrite::Unchanged,
            "ok (identity confirmed)".to_string(),
        ),
    };
    let now = state.clock.now();
    let next = now + schedule::jittered(cfg.refresh.interval, schedule::random_unit());
    let ctx = NewIds {
        issuer: &c.issuer,
        cfg,
        local,
        now,
    };
    // Only a change of what NSS shows (name, passwd fields, groups, admin) invalidates the
    // answer cache and the NSS map: a refresh round confirms most identities unchanged, and
    // marking the map behind for each would send every lookup to the socket.
    let written = state.with_store(|s| {
        let before = s.nss_view(c.user_id)?;
        let w = s.apply_refresh(&ctx, c.user_id, &c.tokens, write, new, &result, next)?;
        Ok((w, s.nss_view(c.user_id)? != before))
    });
    let written = written.map(|(w, changed)| {
        if changed {
            state.invalidate();
        }
        w
    });
    log::debug!(
        "refresh {}: written in {} ms",
        c.name,
        started.elapsed().as_millis()
    );
    match (written, mapped) {
        (Err(why), _) => Outcome::Failed {
            why,
            unreachable: false,
        },
        (Ok(Written::Superseded), _) => Outcome::Superseded,
        (Ok(Written::Done(_)), Some(Err(r))) => Outcome::Denied(r.to_string()),
        (Ok(Written::Done(Some(a))), Some(Ok(m))) => {
            let groups: Vec<&str> = m.groups.iter().map(|g| g.name.as_str()).collect();
            Outcome::Confirmed(format!(
                "groups [{}]{}{}",
                groups.join(", "),
                if m.is_admin { ", admin" } else { "" },
                a.renamed_from
                    .map(|old| format!(", renamed from {old} (uid {} kept)", a.uid))
                    .unwrap_or_default()
            ))
        }
        (Ok(Written::Done(_)), _) => Outcome::Confirmed("identity confirmed".into()),
    }
}

/// Revokes `c` after the provider said its grant is gone, unless a login replaced its tokens
/// meanwhile.
fn revoke(state: &State, c: &Candidate, reason: &str) -> Outcome {
    let now = state.clock.now();
    let done = state.with_store(|s| s.revoke(&c.name, reason, now, Some(&c.tokens)));
    state.invalidate();
    match done {
        Ok(true) => Outcome::Revoked(reason.to_string()),
        Ok(false) => Outcome::Superseded,
        Err(why) => Outcome::Failed {
            why: format!("{reason}, but recording the revocation failed: {why}"),
            unreachable: false,
        },
    }
}
