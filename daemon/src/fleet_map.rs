//! The fleet's ID map on the socket: a page of this host's map (`oidcctl export`), a part of a
//! fleet map pinned here (`oidcctl import`), and this host's IDs checked against the fleet's
//! rule and its pins (`oidcctl doctor`). The file format, its checksum and merging live in
//! `ctl::idmap`; the rule in `identity::ids`.

use oidc_proto::Response;
use oidc_proto::types::{ErrorCode, IdCheck, PinnedGroup, PinnedUser};

use crate::access::Peer;
use crate::audit::{self, Event};
use crate::config::Config;
use crate::identity::local::LocalAccounts;
use crate::identity::other_sources;
use crate::state::State;
use crate::store::{IdCursor, ImportError, NewIds, Store, StoreError};

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

/// Users (then groups) `AdminIdCheck` checks per hold of the store: at 1,000,000 users one
/// scan would keep every lookup waiting for seconds; a page takes milliseconds, and lookups
/// get the store between pages.
pub const ID_CHECK_PAGE: usize = 5_000;

/// `AdminIdCheck`.
pub fn id_check(state: &State) -> Response {
    with_contexts(state, None, |ctxs| {
        match paged_id_check(state, ctxs, ID_CHECK_PAGE) {
            Ok(check) => Response::IdCheck(check),
            Err(reason) => Response::Unavailable { reason },
        }
    })
}

/// [`Store::id_check`] in pages of `page` identities, the store taken and released for each.
fn paged_id_check(state: &State, ctxs: &[NewIds<'_>], page: usize) -> Result<IdCheck, String> {
    let mut check = state.with_store(|s| s.id_check_start())?;
    let mut at = IdCursor::START;
    while at != IdCursor::Done {
        at = state.with_store(|s| s.id_check_page(ctxs, &mut check, at, page))?;
    }
    Ok(check)
}

/// Runs `f` with the rules of every configured provider, the host's accounts (and the names
/// other NSS sources know, when given) and the time, holding the store throughout.
fn with_every_provider(
    state: &State,
    known: Option<other_sources::Known>,
    f: impl FnOnce(&mut Store, &[NewIds<'_>]) -> Result<Response, StoreError>,
) -> Response {
    with_contexts(state, known, |ctxs| {
        state
            .with_store(|s| f(s, ctxs))
            .unwrap_or_else(|reason| Response::Unavailable { reason })
    })
}

/// Runs `f` with the rules of every configured provider, the host's accounts (and the names
/// other NSS sources know, when given) and the time; `f` takes the store as it needs it.
fn with_contexts(
    state: &State,
    known: Option<other_sources::Known>,
    f: impl FnOnce(&[NewIds<'_>]) -> Response,
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
    f(&ctxs)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::ProviderConfig;

    const ISSUER: &str = "https://idp.test";

    /// Paged in any page size (the store released between pages), the ID check finds what one
    /// scan finds, in the same order: users off the rule, a group off the rule, a user off its
    /// pin, and nothing of an issuer no longer configured.
    #[test]
    fn paged_id_check_equals_one_scan() {
        let cfg = Config {
            providers: vec![ProviderConfig::for_tests(ISSUER)],
            ..Config::default()
        };
        let dir = std::env::temp_dir().join(format!("oidcd-idcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (passwd, group) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(&group, "root:x:0:\n").unwrap();
        let local = LocalAccounts::from_paths(&passwd, &group);
        let mut store = Store::open_in_memory().unwrap();
        for (issuer, prefix) in [(ISSUER, "u"), ("https://gone.test", "x")] {
            let ctx = NewIds {
                issuer,
                cfg: &cfg,
                local: &local,
                now: 1,
            };
            let entries: Vec<_> = (0..12)
                .map(|i| {
                    json!({"sub": format!("{prefix}{i}"), "preferred_username": format!("{prefix}{i}"),
                           "groups": [format!("{prefix}g{}", i % 5)]})
                })
                .collect();
            store.import(&ctx, &entries).unwrap().unwrap();
        }
        store
            .exec_for_test(&format!(
                "UPDATE users SET uid = uid + 1 WHERE name IN ('u3', 'u7', 'x1');
                 UPDATE groups SET gid = gid + 1 WHERE name = 'ug2';
                 INSERT INTO id_pins VALUES ('user', '{ISSUER}', 'u5', 'u5', 4000000, 0);"
            ))
            .unwrap();
        let state = State::from_store(cfg, store, local, crate::clock::Clock::system());

        let one_scan = with_contexts(&state, None, |ctxs| {
            Response::IdCheck(state.with_store(|s| s.id_check(ctxs)).unwrap())
        });
        let Response::IdCheck(check) = &one_scan else {
            panic!("{one_scan:?}")
        };
        assert_eq!((check.checked, check.pins), (12 + 5, 1), "{check:?}");
        let names: Vec<&str> = check.findings.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        for want in ["u3", "u7", "u5", "ug2"] {
            assert!(names.contains(&want), "{want} missing: {names:?}");
        }
        for page in [1, 2, 3, 5, 12, 13, ID_CHECK_PAGE] {
            let paged = with_contexts(&state, None, |ctxs| {
                Response::IdCheck(paged_id_check(&state, ctxs, page).unwrap())
            });
            assert_eq!(paged, one_scan, "page of {page}");
        }
        assert_eq!(id_check(&state), one_scan);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
