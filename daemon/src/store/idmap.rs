//! The ID map: exported page by page (`oidcctl export`), pinned from a fleet map (`oidcctl
//! import`), and checked against the fleet's rule (`oidcctl doctor`). A pin is kept in
//! `id_pins` whether or not its identity has a user or group here, so the allocator gives the
//! identity its pin when it comes and skips the ID for everyone else.

use oidc_proto::types::{
    IdCheck, IdFinding, IdMap, IdMapGroup, IdMapPage, IdMapUser, PinnedGroup, PinnedUser,
};
use rusqlite::{OptionalExtension, Transaction, params};

use super::alloc::{TxHost, id_holder, pin_of};
use super::write::{ImportError, NewIds};
use super::{Store, StoreError};
use crate::config::{UidSource, is_reserved_id};
use crate::identity::ids::{self, IdKind, Who};
use crate::identity::mapping;

/// Most entries in one page of [`Store::export_page`] (about 150 bytes each in a frame).
pub const PAGE_LEN: u32 = 5000;

/// Most findings [`Store::id_check`] lists.
const MAX_FINDINGS: usize = 100;

/// What [`Store::import_pins`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pinned {
    /// Pins recorded now.
    pub new_pins: usize,
    /// Entries already pinned to the same ID here.
    pub already: usize,
    /// Users and groups created here from the map.
    pub created: usize,
}

impl Store {
    /// The UID/GID map of `issuer` in format 1 (an `oidcctl` older than fleet maps).
    pub fn export(&self, issuer: &str) -> Result<IdMap, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT sub, name, uid, gid FROM users WHERE issuer = ?1 ORDER BY uid")?;
        let users = st
            .query_map([issuer], |r| {
                Ok(IdMapUser {
                    sub: r.get(0)?,
                    name: r.get(1)?,
                    uid: r.get(2)?,
                    gid: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT provider_name, name, gid FROM groups WHERE issuer = ?1 ORDER BY gid",
        )?;
        let groups = st
            .query_map([issuer], |r| {
                Ok(IdMapGroup {
                    provider_name: r.get(0)?,
                    name: r.get(1)?,
                    gid: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(IdMap {
            format: IdMap::FORMAT.into(),
            issuer: issuer.into(),
            users,
            groups,
        })
    }

    /// Pins a format-1 map (one issuer, `ctx`'s): every entry or none, as
    /// [`Store::import_pins`]. The number of new pins.
    pub fn import_map(
        &mut self,
        ctx: &NewIds<'_>,
        map: &IdMap,
    ) -> Result<Result<usize, Vec<ImportError>>, StoreError> {
        let (users, groups) = match from_format_1(map) {
            Ok(entries) => entries,
            Err(message) => return Ok(Err(vec![ImportError { index: 0, message }])),
        };
        Ok(self
            .import_pins(std::slice::from_ref(ctx), &users, &groups, false)?
            .map(|p| p.new_pins))
    }

    /// One page of this host's ID map: users with a UID above `after_uid`, then groups with a
    /// GID above `after_gid`, of `issuer` (or every issuer); pins whose identity has no user or
    /// group here are part of it.
    pub fn export_page(
        &self,
        issuer: Option<&str>,
        after_uid: u32,
        after_gid: u32,
    ) -> Result<IdMapPage, StoreError> {
        self.export_page_of(issuer, after_uid, after_gid, PAGE_LEN)
    }

    pub(super) fn export_page_of(
        &self,
        issuer: Option<&str>,
        after_uid: u32,
        after_gid: u32,
        limit: u32,
    ) -> Result<IdMapPage, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT issuer, sub, name, uid FROM users
               WHERE uid > ?1 AND (?2 IS NULL OR issuer = ?2)
             UNION ALL
             SELECT issuer, key, name, id FROM id_pins p
               WHERE kind = 'user' AND id > ?1 AND (?2 IS NULL OR issuer = ?2)
                 AND NOT EXISTS (SELECT 1 FROM users u WHERE u.issuer = p.issuer AND u.sub = p.key)
             ORDER BY 4 LIMIT ?3",
        )?;
        let users: Vec<PinnedUser> = st
            .query_map(params![after_uid, issuer, limit + 1], |r| {
                Ok(PinnedUser {
                    issuer: r.get(0)?,
                    sub: r.get(1)?,
                    name: r.get(2)?,
                    uid: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        if users.len() > limit as usize {
            return Ok(IdMapPage {
                users: users.into_iter().take(limit as usize).collect(),
                groups: Vec::new(),
                more: true,
            });
        }
        let room = limit - u32::try_from(users.len()).unwrap_or(limit);
        let mut st = self.conn.prepare_cached(
            "SELECT issuer, provider_name, name, gid FROM groups
               WHERE gid > ?1 AND (?2 IS NULL OR issuer = ?2)
             UNION ALL
             SELECT issuer, key, name, id FROM id_pins p
               WHERE kind = 'group' AND id > ?1 AND (?2 IS NULL OR issuer = ?2)
                 AND NOT EXISTS (SELECT 1 FROM groups g
                                 WHERE g.issuer = p.issuer AND g.provider_name = p.key)
             ORDER BY 4 LIMIT ?3",
        )?;
        let mut groups: Vec<PinnedGroup> = st
            .query_map(params![after_gid, issuer, room + 1], |r| {
                Ok(PinnedGroup {
                    issuer: r.get(0)?,
                    provider_name: r.get(1)?,
                    name: r.get(2)?,
                    gid: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let more = groups.len() > room as usize;
        groups.truncate(room as usize);
        Ok(IdMapPage {
            users,
            groups,
            more,
        })
    }

    /// Pins a fleet map's entries (or a part of them): every entry or none. `ctxs` holds the
    /// rules of every configured issuer; an entry of another issuer is refused. An entry whose
    /// identity is pinned or present here with the same ID is left alone (the same map can be
    /// applied any number of times); one with another ID, or whose ID someone else holds here,
    /// is refused. A pinned identity with no user or group here gets one when its name is free,
    /// else only the pin. With `dry_run` nothing is kept.
    pub fn import_pins(
        &mut self,
        ctxs: &[NewIds<'_>],
        users: &[PinnedUser],
        groups: &[PinnedGroup],
        dry_run: bool,
    ) -> Result<Result<Pinned, Vec<ImportError>>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut done = Pinned::default();
        let mut errors = Vec::new();
        // Indexes count within each list, as the messages name the list.
        let entries = (groups.iter().enumerate())
            .map(|(i, g)| (i, Entry::from_group(g)))
            .chain(
                users
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (i, Entry::from_user(u))),
            );
        for (index, e) in entries {
            let Some(ctx) = ctxs.iter().find(|c| c.issuer == e.issuer) else {
                errors.push(ImportError {
                    index,
                    message: format!(
                        "{} {:?}: the issuer {} is not a configured provider",
                        e.kind.as_str(),
                        e.name,
                        e.issuer
                    ),
                });
                continue;
            };
            match pin(&tx, ctx, &e) {
                Ok(Outcome::Already) => done.already += 1,
                Ok(Outcome::Pinned { created }) => {
                    done.new_pins += 1;
                    done.created += usize::from(created);
                }
                Err(StoreError::Conflict(message)) => errors.push(ImportError {
                    index,
                    message: format!("{} {:?}: {message}", e.kind.as_str(), e.name),
                }),
                Err(other) => return Err(other),
            }
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        if !dry_run {
            tx.commit()?;
        }
        Ok(Ok(done))
    }

    /// This host's IDs against the fleet's rule and its imported pins: every user and group of
    /// a configured issuer whose ID is not the one its pin, or (for hashed IDs) the rule, gives.
    /// In one go; the daemon goes page by page ([`Store::id_check_page`]) instead, so that other
    /// requests get the store between pages.
    pub fn id_check(&self, ctxs: &[NewIds<'_>]) -> Result<IdCheck, StoreError> {
        let mut check = self.id_check_start()?;
        let mut at = IdCursor::START;
        while at != IdCursor::Done {
            at = self.id_check_page(ctxs, &mut check, at, usize::MAX)?;
        }
        Ok(check)
    }

    /// An empty check, with the number of pins imported.
    pub fn id_check_start(&self) -> Result<IdCheck, StoreError> {
        Ok(IdCheck {
            pins: self
                .conn
                .query_row("SELECT count(*) FROM id_pins", [], |r| r.get::<_, i64>(0))?
                .try_into()
                .unwrap_or(0),
            ..IdCheck::default()
        })
    }

    /// Checks up to `limit` users (by UID) or groups (by GID) from `at` into `check`; where
    /// the next page starts. Users first, then groups, as [`Store::id_check`] does: the pages
    /// of a store that does not change in between add up to its result. One that changes may
    /// have an identity checked twice or not at all (it moved past the cursor): a report's
    /// blur, never a wrong ID.
    pub fn id_check_page(
        &self,
        ctxs: &[NewIds<'_>],
        check: &mut IdCheck,
        at: IdCursor,
        limit: usize,
    ) -> Result<IdCursor, StoreError> {
        let (kind, after, sql) = match at {
            IdCursor::Users(after) => (
                IdKind::User,
                after,
                "SELECT issuer, sub, name, uid FROM users WHERE uid > ?1 ORDER BY uid LIMIT ?2",
            ),
            IdCursor::Groups(after) => (
                IdKind::Group,
                after,
                "SELECT issuer, provider_name, name, gid FROM groups WHERE gid > ?1 ORDER BY gid \
                 LIMIT ?2",
            ),
            IdCursor::Done => return Ok(IdCursor::Done),
        };
        let rows: Vec<(String, String, String, u32)> = self
            .conn
            .prepare_cached(sql)?
            .query_map(
                params![
                    after.map_or(-1, i64::from),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect::<Result<_, _>>()?;
        let last = rows.last().map(|r| r.3);
        let full = rows.len() >= limit;
        for (issuer, key, name, id) in rows {
            self.check_id(ctxs, check, kind, issuer, key, name, id)?;
        }
        Ok(match (kind, full) {
            (IdKind::User, true) => IdCursor::Users(last),
            (IdKind::User, false) => IdCursor::Groups(None),
            (IdKind::Group, true) => IdCursor::Groups(last),
            (IdKind::Group, false) => IdCursor::Done,
        })
    }

    /// One identity of [`Store::id_check_page`].
    #[allow(clippy::too_many_arguments)] // the columns of one row, each used once
    fn check_id(
        &self,
        ctxs: &[NewIds<'_>],
        check: &mut IdCheck,
        kind: IdKind,
        issuer: String,
        key: String,
        name: String,
        id: u32,
    ) -> Result<(), StoreError> {
        let Some(ctx) = ctxs.iter().find(|c| c.issuer == issuer) else {
            return Ok(());
        };
        check.checked += 1;
        let who = Who {
            issuer: &issuer,
            kind,
            key: &key,
        };
        let expected = match pin_of(&self.conn, &who)? {
            Some(pin) => Some((pin, true)),
            None => {
                let (range, hashed) = match kind {
                    IdKind::User => (
                        ctx.cfg.mapping.uids,
                        ctx.cfg.mapping.uid_source == UidSource::Hash,
                    ),
                    IdKind::Group => (
                        ctx.cfg.mapping.gids,
                        ctx.cfg.mapping.gid_source == crate::config::GidSource::Hash,
                    ),
                };
                if !hashed {
                    return Ok(());
                }
                let mut host = TxHost::new(&self.conn, ctx.local);
                match ids::fleet_id(&who, range, None, &mut host)? {
                    Ok((fleet, _)) => Some((fleet, false)),
                    Err(_) => None,
                }
            }
        };
        if expected.is_some_and(|(e, _)| e == id) {
            return Ok(());
        }
        check.differing += 1;
        if check.findings.len() < MAX_FINDINGS {
            check.findings.push(IdFinding {
                kind: match kind {
                    IdKind::User => "user",
                    IdKind::Group => "group",
                }
                .into(),
                issuer,
                key,
                name,
                id,
                expected: expected.map(|(e, _)| e),
                pinned: expected.is_some_and(|(_, p)| p),
            });
        }
        Ok(())
    }
}

/// Where a paged ID check ([`Store::id_check_page`]) goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdCursor {
    /// Users with a UID above this one (all users: `None`).
    Users(Option<u32>),
    /// Groups with a GID above this one, the users done.
    Groups(Option<u32>),
    /// Everything checked.
    Done,
}

impl IdCursor {
    /// The first page.
    pub const START: Self = Self::Users(None);
}

/// One entry of a fleet map.
struct Entry<'a> {
    kind: IdKind,
    issuer: &'a str,
    key: &'a str,
    name: &'a str,
    id: u32,
}

impl<'a> Entry<'a> {
    fn from_user(u: &'a PinnedUser) -> Self {
        Self {
            kind: IdKind::User,
            issuer: &u.issuer,
            key: &u.sub,
            name: &u.name,
            id: u.uid,
        }
    }

    fn from_group(g: &'a PinnedGroup) -> Self {
        Self {
            kind: IdKind::Group,
            issuer: &g.issuer,
            key: &g.provider_name,
            name: &g.name,
            id: g.gid,
        }
    }

    fn who(&self) -> Who<'a> {
        Who {
            issuer: self.issuer,
            kind: self.kind,
            key: self.key,
        }
    }
}

enum Outcome {
    Already,
    Pinned { created: bool },
}

fn conflict(msg: String) -> StoreError {
    StoreError::Conflict(msg)
}

/// Pins one entry (see [`Store::import_pins`]).
fn pin(tx: &Transaction<'_>, ctx: &NewIds<'_>, e: &Entry<'_>) -> Result<Outcome, StoreError> {
    let idn = e.kind.id_name();
    let who = e.who();
    let present: Option<u32> = match e.kind {
        IdKind::User => tx
            .prepare_cached("SELECT uid FROM users WHERE issuer = ?1 AND sub = ?2")?
            .query_row(params![e.issuer, e.key], |r| r.get(0))
            .optional()?,
        IdKind::Group => tx
            .prepare_cached("SELECT gid FROM groups WHERE issuer = ?1 AND provider_name = ?2")?
            .query_row(params![e.issuer, e.key], |r| r.get(0))
            .optional()?,
    };
    if let Some(id) = present {
        if id != e.id {
            return Err(conflict(format!(
                "has {idn} {id} here, the map says {}: IDs never change; make the map agree \
                 with this host (oidcctl export here) or renumber one of them by hand",
                e.id
            )));
        }
    }
    let pinned = pin_of(tx, &who)?;
    match pinned {
        Some(p) if p != e.id => {
            return Err(conflict(format!(
                "an earlier map pinned it to {idn} {p}, this one says {}",
                e.id
            )));
        }
        Some(_) if present.is_some() => return Ok(Outcome::Already),
        _ => {}
    }
    let range = match e.kind {
        IdKind::User => ctx.cfg.mapping.uids,
        IdKind::Group => ctx.cfg.mapping.gids,
    };
    if is_reserved_id(e.id) {
        return Err(conflict(format!("{idn} {} is reserved", e.id)));
    }
    if !range.contains(e.id) {
        return Err(conflict(format!(
            "{idn} {} is outside this host's range {}-{}: the hosts' [mapping] ranges differ",
            e.id, range.min, range.max
        )));
    }
    if present.is_none() {
        if let Some(holder) = id_holder(tx, ctx.local, e.id, Some(&who))? {
            return Err(conflict(format!("{idn} {} is held here by {holder}", e.id)));
        }
    }
    let other: Option<(String, String, String)> = tx
        .prepare_cached("SELECT kind, issuer, name FROM id_pins WHERE id = ?1")?
        .query_row([e.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if pinned.is_none() {
        if let Some((kind, issuer, name)) = other {
            return Err(conflict(format!(
                "{idn} {} is pinned here to the {kind} {name} at {issuer} by an earlier map",
                e.id
            )));
        }
        tx.prepare_cached(
            "INSERT INTO id_pins (kind, issuer, key, name, id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            e.kind.as_str(),
            e.issuer,
            e.key,
            e.name,
            e.id,
            ctx.now
        ])?;
    }
    let created = present.is_none() && create(tx, ctx, e)?;
    Ok(if pinned.is_some() && !created {
        Outcome::Already
    } else {
        Outcome::Pinned { created }
    })
}

/// Creates the user or group of a pinned entry when its name is free and valid here (the
/// users and groups `oidcctl import` of a map always made); otherwise the pin alone waits for
/// the identity.
fn create(tx: &Transaction<'_>, ctx: &NewIds<'_>, e: &Entry<'_>) -> Result<bool, StoreError> {
    let m = &ctx.cfg.mapping;
    let why_not = if !crate::identity::names::is_valid_name(e.name, !m.lowercase_names) {
        Some("it is not a valid name".to_string())
    } else if let Err(r) = mapping::check_not_local(e.name, ctx.cfg, ctx.local) {
        Some(r.to_string())
    } else {
        name_holder(tx, e.name)?
    };
    if let Some(why) = why_not {
        log::info!(
            "ID map: {} {:?} pinned to {} but not created here: {why}",
            e.kind.as_str(),
            e.name,
            e.id
        );
        return Ok(false);
    }
    match e.kind {
        IdKind::User => {
            let home = m
                .home
                .replace("{username}", e.name)
                .replace("{uid}", &e.id.to_string());
            tx.execute(
                "INSERT INTO users (issuer, sub, name, uid, gid, gecos, home, shell, claims, source,
                                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4, '', ?5, ?6, '{}', 'map', ?7, ?7)",
                params![e.issuer, e.key, e.name, e.id, home, m.shell, ctx.now],
            )?;
        }
        IdKind::Group => {
            tx.execute(
                "INSERT INTO groups (issuer, provider_name, name, gid, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![e.issuer, e.key, e.name, e.id, ctx.now],
            )?;
        }
    }
    Ok(true)
}

/// Who has `name` here as a user or group name.
fn name_holder(tx: &Transaction<'_>, name: &str) -> Result<Option<String>, StoreError> {
    let user: Option<String> = tx
        .prepare_cached("SELECT sub FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if let Some(sub) = user {
        return Ok(Some(format!(
            "the name belongs to the user with sub {sub:?}"
        )));
    }
    let group: Option<String> = tx
        .prepare_cached("SELECT provider_name FROM groups WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    Ok(group.map(|g| format!("the name belongs to the group {g:?}")))
}

/// The entries of a format-1 map (one issuer, `gid` beside each UID) as fleet map entries, or
/// why not.
pub fn from_format_1(map: &IdMap) -> Result<(Vec<PinnedUser>, Vec<PinnedGroup>), String> {
    if map.format != IdMap::FORMAT {
        return Err(format!("unknown format {:?}", map.format));
    }
    let mut users = Vec::with_capacity(map.users.len());
    for u in &map.users {
        if u.uid != u.gid {
            return Err(format!(
                "{:?}: UID {} and GID {} differ (private groups share the UID)",
                u.name, u.uid, u.gid
            ));
        }
        users.push(PinnedUser {
            issuer: map.issuer.clone(),
            sub: u.sub.clone(),
            name: u.name.clone(),
            uid: u.uid,
        });
    }
    let groups = map
        .groups
        .iter()
        .map(|g| PinnedGroup {
            issuer: map.issuer.clone(),
            provider_name: g.provider_name.clone(),
            name: g.name.clone(),
            gid: g.gid,
        })
        .collect();
    Ok((users, groups))
}
