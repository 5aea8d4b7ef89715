//! `oidcctl import` of claim sets, whether they came in one request or staged in parts
//! ([`crate::staged_import`]): the provider the entries belong to (the one their `iss` names,
//! else the first configured), the names they would take checked against the other NSS
//! sources, then one all-or-nothing transaction and an audit event per user.
//!
//! Staged parts stay JSON text until they are needed and are parsed one at a time on each
//! pass, so an import of 100,000 claim sets never holds them all as parsed values.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use oidc_proto::Response;
use oidc_proto::types::ErrorCode;
use serde_json::Value;

use crate::access::Peer;
use crate::audit::{self, Event};
use crate::config::{Config, ProviderConfig};
use crate::identity::{mapping, other_sources};
use crate::state::State;
use crate::store::{Applied, ImportError, NewIds};

/// The entries of one import.
#[derive(Debug, Clone, Copy)]
pub enum Parts<'a> {
    /// All in one request.
    One(&'a [Value]),
    /// Staged parts, each a JSON array of claim sets.
    Staged(&'a [Vec<u8>]),
}

impl Parts<'_> {
    /// Every part, parsed (a part that does not parse is empty: it was parsed when staged).
    fn each(&self) -> impl Iterator<Item = Cow<'_, [Value]>> + '_ {
        let (one, staged) = match self {
            Parts::One(v) => (Some(Cow::Borrowed(*v)), &[][..]),
            Parts::Staged(p) => (None, *p),
        };
        one.into_iter().chain(
            staged
                .iter()
                .map(|p| Cow::Owned(serde_json::from_slice::<Vec<Value>>(p).unwrap_or_default())),
        )
    }
}

/// What became of an import that could be tried.
#[derive(Debug)]
pub enum Outcome {
    /// Every entry applied, in input order.
    Applied(Vec<Applied>),
    /// Some entries were refused; nothing was applied.
    Refused(Vec<ImportError>),
}

/// Imports `parts` for the peer; `Err` is the answer when the import could not be tried (no
/// provider, several issuers, other sources unreachable, the store unavailable).
pub fn claims(state: &State, peer: &Peer, parts: Parts<'_>) -> Result<Outcome, Box<Response>> {
    let cfg = state.config();
    let p = provider(&cfg, parts)?;
    let scoped = cfg.scoped(p);
    // The names the entries would take, to ask the other NSS sources about first.
    let local = state
        .local()
        .map(|l| l.clone())
        .map_err(|why| Box::new(Response::error(ErrorCode::Unavailable, why)))?;
    let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
    for part in parts.each() {
        for m in part
            .iter()
            .filter_map(|c| mapping::map_claims(c, &scoped, &local).ok())
        {
            users.insert(m.name);
            groups.extend(m.groups.into_iter().map(|g| g.name));
        }
    }
    let u: Vec<&str> = users.iter().map(String::as_str).collect();
    let g: Vec<&str> = groups.iter().map(String::as_str).collect();
    // A name costs the other sources a lookup each: the budget grows with the file.
    let budget = other_sources::IMPORT_BUDGET + Duration::from_millis((u.len() + g.len()) as u64);
    let known = other_sources::lookup(&u, &g, budget).map_err(|e| {
        log::error!("import refused: {e}");
        Box::new(Response::error(ErrorCode::Unavailable, e.to_string()))
    })?;
    let view = local.with_others(known);
    let ctx = NewIds {
        issuer: &p.issuer,
        cfg: &scoped,
        local: &view,
        now: state.clock.now(),
    };
    let result = state.with_store(|s| s.import_parts(&ctx, parts.each().map(Cow::into_owned)));
    state.invalidate();
    match result {
        Ok(Ok(applied)) => {
            for a in &applied {
                log::debug!(
                    "imported user {} (uid {}){}",
                    a.name,
                    a.uid,
                    if a.created { "" } else { ", refreshed" }
                );
                audit::record(Event::AdminChange, "import")
                    .number("peer_uid", u64::from(peer.uid))
                    .field("user", a.name.as_str())
                    .field("issuer", p.issuer.as_str())
                    .number("uid", u64::from(a.uid))
                    .field("account", if a.created { "created" } else { "existing" })
                    .emit();
            }
            let new = applied.iter().filter(|a| a.created).count();
            log::info!(
                "imported {} users for {} ({new} new) by uid {}",
                applied.len(),
                p.issuer,
                peer.uid
            );
            Ok(Outcome::Applied(applied))
        }
        Ok(Err(errors)) => {
            for e in &errors {
                log::warn!("import refused entry {}: {}", e.index, e.message);
            }
            Ok(Outcome::Refused(errors))
        }
        Err(reason) => Err(Box::new(Response::Unavailable { reason })),
    }
}

/// The provider the entries belong to: the one their `iss` names (all the same), else the
/// first configured.
fn provider<'c>(cfg: &'c Config, parts: Parts<'_>) -> Result<&'c ProviderConfig, Box<Response>> {
    let mut issuers = BTreeSet::new();
    for part in parts.each() {
        issuers.extend(
            part.iter()
                .filter_map(|e| e.get("iss").and_then(Value::as_str))
                .map(str::to_string),
        );
    }
    let issuers: Vec<String> = issuers.into_iter().collect();
    let found = match issuers.as_slice() {
        [] => cfg.default_provider().ok_or_else(|| {
            Response::error(
                ErrorCode::Unavailable,
                "no provider is configured: set [provider] issuer and client_id in the \
                 configuration",
            )
        }),
        [one] => cfg.provider_by_issuer(one).ok_or_else(|| {
            Response::error(
                ErrorCode::Rejected,
                format!("the claims are from {one:?}, which is not a configured provider"),
            )
        }),
        many => Err(Response::error(
            ErrorCode::Rejected,
            format!(
                "the claims name several issuers ({many:?}): import one provider's users per file"
            ),
        )),
    };
    found.map_err(Box::new)
}

/// Refusals listed in an import's answer (all of them go to the log).
const MAX_DETAILS: usize = 100;

/// The answer to an import that applied nothing: each refused entry, and for entries whose
/// fleet ID another identity holds (in a directory of 100,000, about 37 pairs collide) the way
/// an administrator imports a whole directory.
pub fn refused(errors: &[ImportError], total: u64) -> Response {
    for e in errors {
        log::warn!("import refused entry {}: {}", e.index, e.message);
    }
    let mut details: Vec<String> = errors
        .iter()
        .take(MAX_DETAILS)
        .map(|e| format!("entry {}: {}", e.index, e.message))
        .collect();
    if errors.len() > MAX_DETAILS {
        details.push(format!(
            "... and {} more (all in the daemon's log)",
            errors.len() - MAX_DETAILS
        ));
    }
    let held = errors
        .iter()
        .filter(|e| e.message.contains(HELD) && e.message.contains(", the fleet "))
        .count();
    if held > 0 {
        details.push(format!(
            "{held} of these have a fleet ID another identity holds: to import a whole \
             directory, pin every identity first with `oidcctl idmap build FILE > map.json` and \
             `oidcctl import map.json` (on every host), then import FILE again"
        ));
    }
    Response::Error {
        code: ErrorCode::Rejected,
        message: format!(
            "{} of {total} entries refused; nothing was applied",
            errors.len()
        ),
        details,
    }
}

/// In a refusal's message (`identity::ids`, `Allocation::Taken`): the identity's fleet ID is
/// held by another.
const HELD: &str = "is held here by";

#[cfg(test)]
mod tests {
    use super::*;

    fn error(index: usize, message: &str) -> ImportError {
        ImportError {
            index,
            message: message.to_string(),
        }
    }

    /// Every refusal up to the limit is listed, the rest counted; entries whose fleet UID is
    /// held get the way to import a whole directory.
    #[test]
    fn refusals_are_listed_with_the_way_to_import_a_directory() {
        let held = "UID 5, the fleet UID of user b (sub \"b\"), is held here by the user a";
        let mut errors = vec![error(0, held), error(1, "name refused")];
        let Response::Error {
            message, details, ..
        } = refused(&errors, 2)
        else {
            panic!()
        };
        assert_eq!(message, "2 of 2 entries refused; nothing was applied");
        assert_eq!(details.len(), 3, "{details:?}");
        assert!(
            details[2].starts_with("1 of these have a fleet ID another identity holds")
                && details[2].contains("oidcctl idmap build FILE > map.json"),
            "{details:?}"
        );
        errors = (0..150).map(|i| error(i, "name refused")).collect();
        let Response::Error { details, .. } = refused(&errors, 150) else {
            panic!()
        };
        assert_eq!(details.len(), 101);
        assert_eq!(details[100], "... and 50 more (all in the daemon's log)");
    }
}
