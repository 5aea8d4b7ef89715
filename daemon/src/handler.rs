//! One function per request. Every request reaches [`handle`] only through the access table
//! ([`crate::access::admit`]), which is the whole of the authorisation.

use std::sync::Arc;

use oidc_proto::types::{
    ErrorCode, ImportedUser, ProviderStatus, StatusInfo, UnixGroup, UnixUser, UserRecord,
};
use oidc_proto::{PROTOCOL_VERSION, Request, Response};

pub use crate::access::Peer;
use crate::access::{Admitted, Scope};
use crate::audit::{self, Event};
use crate::auth;
use crate::config::{Config, ProviderConfig};
use crate::state::{CacheKey, State};
use crate::store::{NewIds, Store, StoreError};

/// Answers one admitted request. `hung_up` tells whether the peer has gone away (a blocked
/// `login_wait` checks it, so a login whose PAM conversation is gone stops at once).
pub fn handle(state: &Arc<State>, admitted: Admitted, hung_up: &dyn Fn() -> bool) -> Response {
    let (req, peer, scope) = admitted.into_parts();
    // The imports parse and apply whole directories: what they freed goes back to the system.
    let big = matches!(
        req,
        Request::AdminImport { .. }
            | Request::AdminImportCommit { .. }
            | Request::AdminImportMap { .. }
            | Request::AdminImportPins { .. }
    );
    let resp = answer(state, req, &peer, scope, hung_up);
    if big {
        crate::memory::give_back();
    }
    resp
}

fn answer(
    state: &Arc<State>,
    req: Request,
    peer: &Peer,
    scope: Scope,
    hung_up: &dyn Fn() -> bool,
) -> Response {
    match req {
        Request::GetUserByName { name } => {
            let resp = lookup(state, CacheKey::UserName(name.clone()), |s| {
                Ok(s.user_by_name(&name)?.map(user))
            });
            if resp == Response::NotFound && is_sshd(state, peer) {
                return state.provisional_user(&name).map_or(resp, Response::User);
            }
            resp
        }
        Request::GetUserByUid { uid } => {
            let resp = lookup(state, CacheKey::Uid(uid), |s| {
                Ok(s.user_by_uid(uid)?.map(user))
            });
            if resp == Response::NotFound && is_sshd(state, peer) {
                return state.provisional_by_uid(uid).map_or(resp, Response::User);
            }
            resp
        }
        Request::GetGroupByName { name } => lookup(state, CacheKey::GroupName(name.clone()), |s| {
            Ok(s.group_by_name(&name)?.map(group))
        }),
        Request::GetGroupByGid { gid } => lookup(state, CacheKey::Gid(gid), |s| {
            Ok(s.group_by_gid(gid)?.map(group))
        }),
        Request::GetGroupsOfUser { name } => groups_of_user(state, &name),
        Request::ListUsers => enumerate(state, Response::Users { users: Vec::new() }, |s| {
            Ok(Response::Users {
                users: s.all_users()?,
            })
        }),
        Request::ListGroups => enumerate(state, Response::Groups { groups: Vec::new() }, |s| {
            Ok(Response::Groups {
                groups: s.all_groups()?,
            })
        }),
        Request::AccountCheck { user, service } => auth::account::check(state, &user, &service),
        Request::GetSshKeys { name } => auth::ssh_keys::keys(state, peer, &name),
        Request::LoginPrecheck {
            user,
            service,
            rhost,
        } => auth::login::precheck(state, &user, &service, rhost.as_deref()),
        Request::LoginStart {
            user,
            service,
            rhost,
            tty,
        } => {
            let resp = auth::login::start(state, peer, &user, &service, rhost, tty);
            crate::offline::offer(state, &user, resp)
        }
        Request::LoginResume {
            user,
            service,
            rhost,
            code,
        } => auth::resume::resume(state, &user, &service, rhost.as_deref(), &code),
        Request::OfflineLogin { user, service, pin } => {
            crate::offline::login(state, &user, &service, &pin)
        }
        Request::OfflineSetPin { login_id, pin } => crate::offline::set_pin(state, &login_id, &pin),
        Request::LoginWait { login_id } => auth::login::wait(state, &login_id, hung_up),
        Request::LoginCancel { login_id } => auth::login::cancel(state, &login_id),
        Request::AdminLink {
            local_name,
            sub,
            provider,
        } => link(state, peer, &local_name, &sub, provider.as_deref()),
        Request::AdminUnlink { local_name } => write(state, None, |s, _| {
            Ok(if s.remove_link(&local_name)? {
                log::info!(
                    "link of local account {local_name} removed by uid {}",
                    peer.uid
                );
                admin_event("unlink", peer)
                    .field("user", local_name.as_str())
                    .emit();
                Response::Done {
                    message: format!("{local_name} unlinked"),
                }
            } else {
                Response::NotFound
            })
        }),
        Request::AdminLinkList => read(state, |s| Ok(Response::LinkList { links: s.links()? })),
        Request::AdminMigrate {
            from_issuer,
            to,
            table,
            by_email,
            apply,
        } => migrate(state, peer, &from_issuer, &to, &table, by_email, apply),
        Request::Status => status(state),
        Request::AdminUserList => read(state, |s| {
            let mut users = s.user_records()?;
            users.retain(|u| visible(scope, u));
            for u in &mut users {
                decorate(state, peer, u);
            }
            Ok(Response::UserList { users })
        }),
        Request::AdminUserShow { name } => read(state, |s| {
            Ok(match s.user_record(&name)? {
                Some(mut u) if visible(scope, &u) => {
                    decorate(state, peer, &mut u);
                    Response::UserDetails(u)
                }
                // The same answer whether the user exists or not: no probing for names.
                _ if scope != Scope::Everything => Response::error(
                    ErrorCode::PermissionDenied,
                    "only root may see another user's record",
                ),
                _ => Response::NotFound,
            })
        }),
        Request::AdminGroupList => read(state, |s| {
            Ok(Response::GroupList {
                groups: s.group_records()?,
            })
        }),
        Request::AdminGroupShow { name } => read(state, |s| {
            Ok(s.group_record(&name)?
                .map_or(Response::NotFound, Response::GroupDetails))
        }),
        Request::AdminUserRemove { name } => write(state, None, |s, _| {
            Ok(if s.remove_user(&name)? {
                log::info!("user {name} removed by uid {}", peer.uid);
                admin_event("user_remove", peer)
                    .field("user", name.as_str())
                    .emit();
                Response::Done {
                    message: format!("user {name} removed"),
                }
            } else {
                Response::NotFound
            })
        }),
        Request::AdminUserRefresh { name } => crate::lifecycle::refresh_now(state, &name),
        Request::AdminUserRevoke { name } => crate::lifecycle::revoke_now(state, &name, peer.uid),
        Request::AdminUserClearPin { name } => clear_pin(state, peer, &name),
        Request::AdminCacheClear => write(state, None, |s, _| {
            s.clear()?;
            log::info!("identity cache cleared by uid {}", peer.uid);
            admin_event("cache_clear", peer).emit();
            Ok(Response::Done {
                message: "all users, groups and memberships removed".into(),
            })
        }),
        Request::AdminImport { entries } => import(state, peer, &entries),
        Request::AdminImportPart { import_id, entries } => {
            crate::staged_import::part(state, &import_id, &entries)
        }
        Request::AdminImportCommit { import_id, total } => {
            crate::staged_import::commit(state, peer, &import_id, total)
        }
        Request::AdminImportMap { map } => match crate::store::from_format_1(&map) {
            Ok((users, groups)) => {
                crate::fleet_map::import_pins(state, peer, &users, &groups, false)
            }
            Err(why) => Response::error(ErrorCode::Rejected, why),
        },
        Request::AdminExportPage {
            provider,
            after_uid,
            after_gid,
        } => crate::fleet_map::export_page(state, provider.as_deref(), after_uid, after_gid),
        Request::AdminImportPins {
            users,
            groups,
            dry_run,
        } => crate::fleet_map::import_pins(state, peer, &users, &groups, dry_run),
        Request::AdminIdCheck => crate::fleet_map::id_check(state),
        Request::AdminExport { provider } => {
            let cfg = state.config();
            let p = match chosen_provider(&cfg, provider.as_deref()) {
                Ok(p) => p,
                Err(resp) => return *resp,
            };
            read(state, |s| Ok(Response::Map(s.export(&p.issuer)?)))
        }
    }
}

fn user(u: UnixUser) -> Response {
    Response::User(u)
}

fn group(g: UnixGroup) -> Response {
    Response::Group(g)
}

/// A cacheable lookup: `Ok(None)` from the store is "not found".
fn lookup(
    state: &State,
    key: CacheKey,
    f: impl FnOnce(&mut Store) -> Result<Option<Response>, StoreError>,
) -> Response {
    if let Some(hit) = state.cached(&key) {
        return hit;
    }
    let resp = match state.with_store(f) {
        Ok(Some(r)) => r,
        Ok(None) => Response::NotFound,
        Err(reason) => return Response::Unavailable { reason },
    };
    state.remember(key, &resp);
    resp
}

fn groups_of_user(state: &State, name: &str) -> Response {
    // A local account of the same name (created after the oidcd user) is not ours: glibc asks
    // every module for a user's groups, and ours must not give it the oidcd user's. Checked
    // first: reading the files (two stat calls when unchanged) drops cached answers when they
    // changed.
    let local = is_local_user(state, name);
    let key = CacheKey::GroupsOf(name.to_string());
    if let Some(hit) = state.cached(&key) {
        return hit;
    }
    if local {
        if let Ok(Some(_)) = state.with_store(|s| s.groups_of_user(name)) {
            log::warn!(
                "groups of {name} not given: {name} is a local account now, which shadows the \
                 oidcd user of that name (remove it with oidcctl user remove {name})"
            );
        }
        state.remember(key, &Response::NotFound);
        return Response::NotFound;
    }
    let (mut gids, admin) = match state.with_store(|s| s.groups_of_user(name)) {
        Ok(Some(x)) => x,
        Ok(None) => {
            state.remember(key, &Response::NotFound);
            return Response::NotFound;
        }
        Err(reason) => return Response::Unavailable { reason },
    };
    if admin {
        let cfg = state.config();
        match state.local() {
            Ok(local) => {
                for g in &cfg.access.admin_local_groups {
                    match local.group_gid(g) {
                        Some(gid) => gids.push(gid),
                        None => log::warn!("admin local group {g:?} does not exist in /etc/group"),
                    }
                }
            }
            Err(why) => log::error!("{why}: admin groups not granted to {name}"),
        }
    }
    gids.sort_unstable();
    gids.dedup();
    let resp = Response::GroupIds { gids };
    state.remember(key, &resp);
    resp
}

/// Whether `name` is in /etc/passwd; unreadable files count as "yes" (give nothing away).
fn is_local_user(state: &State, name: &str) -> bool {
    state.local().map_or(true, |l| l.users.contains_key(name))
}

/// Enumeration is served only when enabled (like SSSD's `enumerate = false` default): one
/// `getent passwd` would otherwise copy every user into every process that asks.
fn enumerate(
    state: &State,
    disabled: Response,
    f: impl FnOnce(&mut Store) -> Result<Response, StoreError>,
) -> Response {
    if !state.config().cache.enumerate {
        return disabled;
    }
    read(state, f)
}

fn read(state: &State, f: impl FnOnce(&mut Store) -> Result<Response, StoreError>) -> Response {
    state
        .with_store(f)
        .unwrap_or_else(|reason| Response::Unavailable { reason })
}

/// A change: runs with the issuer and rules of `provider` (when the change is about one) and
/// the local accounts, then drops cached answers.
fn write(
    state: &State,
    provider: Option<&ProviderConfig>,
    f: impl FnOnce(&mut Store, &NewIds<'_>) -> Result<Response, StoreError>,
) -> Response {
    let all = state.config();
    let cfg = provider.map_or_else(|| (*all).clone(), |p| all.scoped(p));
    let issuer = provider.map_or("", |p| p.issuer.as_str());
    let local = match state.local() {
        Ok(l) => l,
        Err(why) => return Response::error(ErrorCode::Unavailable, why),
    };
    let ctx = NewIds {
        issuer,
        cfg: &cfg,
        local: &local,
        now: state.clock.now(),
    };
    let resp = state
        .with_store(|s| f(s, &ctx))
        .unwrap_or_else(|reason| Response::Unavailable { reason });
    drop(local);
    state.invalidate();
    resp
}

/// `oidcctl import` in one request: every user applied is listed.
fn import(state: &State, peer: &Peer, entries: &[serde_json::Value]) -> Response {
    match crate::import::claims(state, peer, crate::import::Parts::One(entries)) {
        Ok(crate::import::Outcome::Applied(applied)) => Response::Imported {
            users: applied
                .into_iter()
                .enumerate()
                .map(|(index, a)| ImportedUser {
                    index,
                    name: a.name,
                    uid: a.uid,
                    created: a.created,
                })
                .collect(),
        },
        Ok(crate::import::Outcome::Refused(errors)) => {
            crate::import::refused(&errors, entries.len() as u64)
        }
        Err(resp) => *resp,
    }
}

/// An audit record of an administrator's change, with the peer's uid.
/// `oidcctl user clear-pin`: the user gets an invitation to set a new offline PIN at their next
/// online login (users with a PIN are not invited), and a lockout ends.
fn clear_pin(state: &State, peer: &Peer, name: &str) -> Response {
    match state.with_store(|s| Ok((s.user_record(name)?.is_some(), s.clear_offline_pin(name)?))) {
        Err(reason) => Response::error(ErrorCode::Unavailable, reason),
        Ok((false, _)) => Response::NotFound,
        Ok((true, false)) => Response::Done {
            message: format!("{name} has no offline PIN"),
        },
        Ok((true, true)) => {
            log::info!("offline PIN of {name} cleared by uid {}", peer.uid);
            admin_event("clear_pin", peer).field("user", name).emit();
            Response::Done {
                message: format!(
                    "offline PIN of {name} cleared: their next login through the identity \
                     provider offers to set a new one"
                ),
            }
        }
    }
}

fn admin_event(outcome: &str, peer: &Peer) -> audit::Record {
    audit::record(Event::AdminChange, outcome).number("peer_uid", u64::from(peer.uid))
}

fn no_provider() -> Response {
    Response::error(
        ErrorCode::Unavailable,
        "no provider is configured: set [provider] issuer and client_id in the configuration",
    )
}

/// The provider named by `key` (an id or an issuer), or the first configured when `None`.
fn chosen_provider<'c>(
    cfg: &'c Config,
    key: Option<&str>,
) -> Result<&'c ProviderConfig, Box<Response>> {
    match key {
        None => cfg
            .default_provider()
            .ok_or_else(|| Box::new(no_provider())),
        Some(k) => cfg.provider_by_key(k).ok_or_else(|| {
            let ids: Vec<&str> = cfg.providers.iter().map(|p| p.id.as_str()).collect();
            Box::new(Response::error(
                ErrorCode::Rejected,
                format!(
                    "no provider {k:?} is configured (providers: {})",
                    ids.join(", ")
                ),
            ))
        }),
    }
}

fn link(
    state: &State,
    peer: &Peer,
    local_name: &str,
    sub: &str,
    provider: Option<&str>,
) -> Response {
    let cfg = state.config();
    let p = match chosen_provider(&cfg, provider) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    if local_name == "root" {
        return Response::error(
            ErrorCode::Rejected,
            "root cannot be linked to a provider identity",
        );
    }
    if sub.is_empty() || sub.len() > 1024 || sub.chars().any(char::is_control) {
        return Response::error(ErrorCode::BadRequest, "invalid subject");
    }
    match state.local() {
        Ok(local) if local.users.contains_key(local_name) => {}
        Ok(_) => {
            return Response::error(
                ErrorCode::Rejected,
                format!(
                    "{local_name} is not a local account in /etc/passwd (only local accounts are linked)"
                ),
            );
        }
        Err(why) => return Response::error(ErrorCode::Unavailable, why),
    }
    write(state, Some(p), |s, ctx| {
        s.set_link(local_name, ctx.issuer, sub, ctx.now)?;
        admin_event("link", peer)
            .field("user", local_name)
            .field("issuer", ctx.issuer)
            .field("sub", sub)
            .emit();
        log::info!(
            "local account {local_name} linked to sub {sub:?} at {} by uid {}",
            ctx.issuer,
            peer.uid
        );
        Ok(Response::Done {
            message: format!("{local_name} may now log in as sub {sub:?}"),
        })
    })
}

/// `oidcctl migrate`: the identities of `from` move to provider `to` (an id or issuer).
fn migrate(
    state: &State,
    peer: &Peer,
    from: &str,
    to: &str,
    table: &[oidc_proto::types::SubjectMove],
    by_email: bool,
    apply: bool,
) -> Response {
    let cfg = state.config();
    let Some(target) = cfg.provider_by_key(to) else {
        return Response::error(
            ErrorCode::Rejected,
            format!("no provider {to:?} is configured: identities move to a configured provider"),
        );
    };
    let to_issuer = target.issuer.clone();
    let now = state.clock.now();
    let result = state.with_store(|s| s.migrate(from, &to_issuer, table, by_email, apply, now));
    state.invalidate();
    match result {
        Err(reason) => Response::Unavailable { reason },
        Ok(Err(details)) => Response::Error {
            code: ErrorCode::Rejected,
            message: format!("{} problem(s); nothing was changed", details.len()),
            details,
        },
        Ok(Ok(report)) => {
            if apply {
                let count = |o: &str| report.moves.iter().filter(|m| m.outcome == o).count();
                log::info!(
                    "identities of {from} moved to {to_issuer} by uid {}: {} by table, {} at their \
                     first login by verified email, {} stay",
                    peer.uid,
                    count("moved"),
                    count("by_email"),
                    count("stays")
                );
            }
            Response::Migration(report)
        }
    }
}

/// Whether `scope` lets the peer see `u`.
fn visible(scope: Scope, u: &UserRecord) -> bool {
    match scope {
        Scope::Everything => true,
        Scope::Own(uid) => u.unix.uid == uid,
    }
}

/// Whether the peer is sshd (root, running one of `login.ssh_programs`).
fn is_sshd(state: &State, peer: &Peer) -> bool {
    auth::sshd::is_sshd(&state.config(), peer.uid, peer.pid)
}

/// Fills in what depends on the config and who asks: local admin groups, and the claims only
/// for root (they may hold personal data). Runs inside `with_store`: it must not take the
/// store again.
fn decorate(state: &State, peer: &Peer, u: &mut UserRecord) {
    if u.is_admin {
        u.local_groups = state.config().access.admin_local_groups.clone();
    }
    if !peer.is_root() {
        u.claims = serde_json::Value::Null;
    }
}

fn status(state: &State) -> Response {
    let cfg = state.config();
    let (users, groups, schema) = state
        .with_store(|s| Ok((s.counts()?, s.schema_version()?)))
        .map_or((0, 0, None), |(c, v)| (c.users, c.groups, Some(v)));
    Response::Status(StatusInfo {
        daemon_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        config_path: cfg.path.display().to_string(),
        issuer: cfg.default_provider().map(|p| p.issuer.clone()),
        client_id: cfg.default_provider().map(|p| p.client_id.clone()),
        db_path: cfg.cache.db_path.display().to_string(),
        schema_version: schema,
        db_error: state.store_error(),
        users,
        groups,
        uptime_secs: state.started.elapsed().as_secs(),
        socket_path: cfg.cache.socket_path.display().to_string(),
        enumerate: cfg.cache.enumerate,
        logins_in_progress: state.logins.count() as u64,
        refresh: Some(crate::lifecycle::status(state)),
        providers: providers_status(state, &cfg),
        nss_map: Some(
            state
                .nss_map
                .status(cfg.cache.nss_map, cfg.cache.nss_map_ttl),
        ),
    })
}

/// Each configured provider, with its users and whether it could be set up.
fn providers_status(state: &State, cfg: &Config) -> Vec<ProviderStatus> {
    let running = state.providers();
    cfg.providers
        .iter()
        .map(|p| ProviderStatus {
            id: p.id.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            names: p.name_pattern(),
            users: state
                .with_store(|s| s.users_of_issuer(&p.issuer))
                .unwrap_or(0),
            error: (!running.iter().any(|r| r.config == *p))
                .then(|| "could not be set up: see the daemon's log".to_string()),
        })
        .collect()
}
