//! The fleet's ID map on the socket: a page of this host's map (`oidcctl export`), a part of a
//! fleet map pinned here (`oidcctl import`), and this host's IDs checked against the fleet's
//! rule and its pins (`oidcctl doctor`). The file format, its checksum and merging live in
//! `ctl::idmap`; the rule in `identity::ids`.

use oidc_proto::Response;
use oidc_proto::types::{ErrorCode, PinnedGroup, PinnedUser};

use crate::access::Peer;
use crate::audit::{self, Event};
use crate::config::Config;
use crate::identity::local::LocalAccounts;
use crate::identity::other_sources;
use crate::state::State;
use crate::store::{ImportError, NewIds, Store, StoreError};

/// `AdminExportPage`.
pub fn export_page(
    state: &State,
    provider: Option<&str>,
    after_uid: u32,
    after_gid: u32,
) -> Response {
    let cfg = state.config();
    let issuer = match provider {
        None => None,
        Some(k) => match cfg.provider_by_key(k) {
            Some(p) => Some(p.issuer.clone()),
            None => {
                return Response::error(
                    ErrorCode::Rejected,
                    format!("no provider {k:?} is configured"),
                );
            }
        },
    };
    state
        .with_store(|s| {
            Ok(Response::MapPage(s.export_page(
                issuer.as_deref(),
                after_uid,
                after_gid,
            )?))
        })
        .unwrap_or_else(|reason| Response::Unavailable { reason })
}

/// `AdminImportPins` (and `AdminImportMap`, a format-1 map, converted): every entry or none.
pub fn import_pins(
    state: &State,
    peer: &Peer,
    users: &[PinnedUser],
    groups: &[PinnedGroup],
    dry_run: bool,
) -> Response {
    // The names the entries would take are asked of the other NSS sources first: a user or
    // group made from the map must not shadow theirs either (issue 15 #5).
    let u: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let g: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let known = match other_sources::lookup(&u, &g, other_sources::IMPORT_BUDGET) {
        Ok(k) => k,
        Err(e) => {
            log::error!("ID map import refused: {e}");
            return Response::error(ErrorCode::Unavailable, e.to_string());
        }
    };
    let total = users.len() + groups.len();
    let resp = with_every_provider(state, Some(known), |s, ctxs| {
        Ok(match s.import_pins(ctxs, users, groups, dry_run)? {
            Ok(done) => {
                let verb = if dry_run { "would pin" } else { "pinned" };
                log::info!(
                    "ID map{}: {total} entries, {} new pins, {} already pinned, {} users and \
                     groups created",
                    if dry_run { " (dry run)" } else { "" },
                    done.new_pins,
                    done.already,
                    done.created
                );
                if !dry_run && done.new_pins > 0 {
                    admin_event("import_map", peer)
                        .number("entries", done.new_pins as u64)
                        .emit();
                }
                Response::Done {
                    message: format!(
                        "{total} entries: {verb} {} new, {} already pinned here, {} users and \
                         groups {}",
                        done.new_pins,
                        done.already,
                        done.created,
                        if dry_run { "to create" } else { "created" }
                    ),
                }
            }
            Err(errors) => refused(errors, total),
        })
    });
    if !dry_run {
        state.invalidate();
    }
    resp
}

/// `AdminIdCheck`.
pub fn id_check(state: &State) -> Response {
    with_every_provider(state, None, |s, ctxs| {
        Ok(Response::IdCheck(s.id_check(ctxs)?))
    })
}

/// Runs `f` with the rules of every configured provider, the host's accounts (and the names
/// other NSS sources know, when given) and the time.
fn with_every_provider(
    state: &State,
    known: Option<other_sources::Known>,
    f: impl FnOnce(&mut Store, &[NewIds<'_>]) -> Result<Response, StoreError>,
) -> Response {
    let all = state.config();
    let scoped: Vec<(String, Config)> = all
        .providers
        .iter()
        .map(|p| (p.issuer.clone(), all.scoped(p)))
        .collect();
    let local = match state.local() {
        Ok(l) => l,
        Err(why) => return Response::error(ErrorCode::Unavailable, why),
    };
    let view: LocalAccounts = match known {
        Some(k) => local.with_others(k),
        None => local.clone(),
    };
    drop(local);
    let now = state.clock.now();
    let ctxs: Vec<NewIds<'_>> = scoped
        .iter()
        .map(|(issuer, cfg)| NewIds {
            issuer,
            cfg,
            local: &view,
            now,
        })
        .collect();
    state
        .with_store(|s| f(s, &ctxs))
        .unwrap_or_else(|reason| Response::Unavailable { reason })
}

fn refused(errors: Vec<ImportError>, total: usize) -> Response {
    for e in &errors {
        log::warn!("ID map entry {} refused: {}", e.index, e.message);
    }
    Response::Error {
        code: ErrorCode::Rejected,
        message: format!(
            "{} of {total} entries refused; nothing of this part was applied",
            errors.len()
        ),
        details: errors
            .into_iter()
            .map(|e| format!("entry {}: {}", e.index, e.message))
            .collect(),
    }
}

fn admin_event(outcome: &str, peer: &Peer) -> audit::Record {
    audit::record(Event::AdminChange, outcome).number("peer_uid", u64::from(peer.uid))
}
