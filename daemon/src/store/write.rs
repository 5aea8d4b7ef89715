//! Changes to the store, each one transaction.

use oidc_proto::types::{IdMap, IdMapGroup, IdMapUser};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{Store, StoreError};
use crate::config::{Config, UidSource, is_reserved_id};
use crate::identity::ids::{self, IdKind};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::{self, MappedUser};

/// What a change may use: the issuer, the rules, the host's accounts and the time.
pub struct NewIds<'a> {
    /// Issuer of the identities being written.
    pub issuer: &'a str,
    /// Mapping rules and ranges.
    pub cfg: &'a Config,
    /// The host's accounts, never to be collided with.
    pub local: &'a LocalAccounts,
    /// Unix time of the change.
    pub now: i64,
}

/// Where a user record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A device-flow login.
    Login,
    /// `oidcctl import` of claims.
    Import,
    /// `oidcctl import` of another host's ID map.
    Map,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Import => "import",
            Self::Map => "map",
        }
    }
}

/// A user written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Unix name.
    pub name: String,
    /// UID.
    pub uid: u32,
    /// New user (false: an existing one refreshed).
    pub created: bool,
    /// The previous name, when the provider renamed the user.
    pub renamed_from: Option<String>,
}

/// A refused entry of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Position in the input.
    pub index: usize,
    /// Why.
    pub message: String,
}

impl Store {
    /// Creates or refreshes one user and their groups (a login). With `required_uid`, the
    /// program running the login already holds that UID for the name (a stored user's, or the
    /// provisional entry handed to sshd): the user must end with exactly it, or nothing is
    /// written and [`StoreError::ResolvedUidLost`] says why.
    pub fn apply_user(
        &mut self,
        ctx: &NewIds<'_>,
        user: &MappedUser,
        claims: &Value,
        source: Source,
        required_uid: Option<u32>,
    ) -> Result<Applied, StoreError> {
        let tx = self.conn.transaction()?;
        let applied = upsert(&tx, ctx, user, claims, source, required_uid)?;
        tx.commit()?;
        Ok(applied)
    }

    /// Applies every entry or none: maps each claim set and writes it in one transaction,
    /// collecting every refusal with its index. Later entries see earlier ones, so two
    /// entries fighting over one name are reported too.
    pub fn import(
        &mut self,
        ctx: &NewIds<'_>,
        entries: &[Value],
    ) -> Result<Result<Vec<Applied>, Vec<ImportError>>, StoreError> {
        self.import_parts(ctx, std::iter::once(entries.to_vec()))
    }

    /// As [`Store::import`], for a file that arrived in parts: one transaction over all of
    /// them, indexes counted across parts. Each part is dropped once applied, so only one is
    /// held as parsed values at a time.
    pub fn import_parts(
        &mut self,
        ctx: &NewIds<'_>,
        parts: impl IntoIterator<Item = Vec<Value>>,
    ) -> Result<Result<Vec<Applied>, Vec<ImportError>>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        let mut index = 0;
        for entries in parts {
            for claims in &entries {
                let mapped = match mapping::map_claims(claims, ctx.cfg, ctx.local) {
                    Ok(m) => m,
                    Err(refusal) => {
                        errors.push(ImportError {
                            index,
                            message: refusal.to_string(),
                        });
                        index += 1;
                        continue;
                    }
                };
                match upsert(&tx, ctx, &mapped, claims, Source::Import, None) {
                    Ok(a) => applied.push(a),
                    Err(StoreError::Conflict(message)) => {
                        errors.push(ImportError { index, message });
                    }
                    Err(e) => return Err(e),
                }
                index += 1;
            }
        }
        if errors.is_empty() {
            tx.commit()?;
            Ok(Ok(applied))
        } else {
            // Dropping the transaction rolls everything back.
            Ok(Err(errors))
        }
    }

    /// Records a successful login time.
    pub fn touch_login(&mut self, name: &str, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE users SET last_login_at = ?1 WHERE name = ?2",
            params![now, name],
        )?;
        Ok(())
    }

    /// Removes a user and their memberships. Their groups keep their GIDs.
    pub fn remove_user(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM users WHERE name = ?1", [name])?
            > 0)
    }

    /// Forgets everything.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch("DELETE FROM memberships; DELETE FROM users; DELETE FROM groups;")?;
        tx.commit()?;
        Ok(())
    }

    /// The UID/GID map of `issuer`, for `oidcctl export`.
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

    /// Pins the IDs of another host's map: every entry or none. An identity already known here
    /// with the same IDs is left alone; with other IDs it is an error (IDs never change).
    pub fn import_map(
        &mut self,
        ctx: &NewIds<'_>,
        map: &IdMap,
    ) -> Result<Result<usize, Vec<ImportError>>, StoreError> {
        let mut errors = Vec::new();
        if map.format != IdMap::FORMAT {
            errors.push(ImportError {
                index: 0,
                message: format!("unknown format {:?}", map.format),
            });
        }
        if map.issuer != ctx.issuer {
            errors.push(ImportError {
                index: 0,
                message: format!(
                    "the map is for issuer {:?}, this host uses {:?}",
                    map.issuer, ctx.issuer
                ),
            });
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let tx = self.conn.transaction()?;
        let mut written = 0;
        for (index, g) in map.groups.iter().enumerate() {
            match pin_group(&tx, ctx, g) {
                Ok(new) => written += usize::from(new),
                Err(StoreError::Conflict(message)) => errors.push(ImportError {
                    index,
                    message: format!("group: {message}"),
                }),
                Err(e) => return Err(e),
            }
        }
        for (index, u) in map.users.iter().enumerate() {
            match pin_user(&tx, ctx, u) {
                Ok(new) => written += usize::from(new),
                Err(StoreError::Conflict(message)) => errors.push(ImportError {
                    index,
                    message: format!("user: {message}"),
                }),
                Err(e) => return Err(e),
            }
        }
        if errors.is_empty() {
            tx.commit()?;
            Ok(Ok(written))
        } else {
            Ok(Err(errors))
        }
    }
}

fn conflict(msg: String) -> StoreError {
    StoreError::Conflict(msg)
}

pub(super) fn upsert(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    user: &MappedUser,
    claims: &Value,
    source: Source,
    required_uid: Option<u32>,
) -> Result<Applied, StoreError> {
    let existing: Option<(i64, String, u32)> = tx
        .query_row(
            "SELECT id, name, uid FROM users WHERE issuer = ?1 AND sub = ?2",
            params![ctx.issuer, user.sub],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let existing = match existing {
        Some(e) => Some(e),
        None => super::moves::take_over_by_email(tx, ctx, user)?,
    };
    let own_id = existing.as_ref().map(|e| e.0);
    if let Some(other) = name_owner(tx, &user.name, own_id, None)? {
        return Err(conflict(format!(
            "the name {:?} already belongs to {other}",
            user.name
        )));
    }
    let claims_json = claims.to_string();
    let lost = |why: String| {
        Err(StoreError::ResolvedUidLost(format!(
            "{} resolved to UID {} when the login began, and the program running it holds that \
             UID: {why}",
            user.name,
            required_uid.unwrap_or_default()
        )))
    };
    let (user_id, uid, created, renamed_from) = match existing {
        Some((_, _, uid)) if required_uid.is_some_and(|r| r != uid) => {
            return lost(format!("this identity has UID {uid} here"));
        }
        Some((id, old_name, uid)) => {
            tx.execute(
                "UPDATE users SET name = ?1, gecos = ?2, shell = ?3, email = ?4, email_verified = ?5,
                        is_admin = ?6, claims = ?7, updated_at = ?8 WHERE id = ?9",
                params![
                    user.name, user.gecos, ctx.cfg.mapping.shell, user.email, user.email_verified,
                    user.is_admin, claims_json, ctx.now, id
                ],
            )?;
            let renamed = (old_name != user.name).then_some(old_name);
            (id, uid, false, renamed)
        }
        None => {
            let uid = match required_uid {
                // Under uid_source = "claim" the UID is the claim's: a provisional UID that
                // differs is refused rather than stored for good (IDs never change).
                Some(uid)
                    if ctx.cfg.mapping.uid_source == UidSource::Claim
                        && user.uid_from_claim != Some(uid) =>
                {
                    return Err(conflict(format!(
                        "the login began with provisional UID {uid} (login.ssh_first_login), not \
                         the UID from the claim: log in once at a console or use oidcctl import"
                    )));
                }
                Some(uid) if !ctx.cfg.mapping.uids.contains(uid) || is_reserved_id(uid) => {
                    return lost("it is outside mapping.uid_min..uid_max or reserved".into());
                }
                Some(uid) => match id_owner(tx, ctx.local, uid)? {
                    Some(owner) => return lost(format!("it now belongs to {owner}")),
                    None => uid,
                },
                None => new_uid(tx, ctx, user)?,
            };
            let home = ctx
                .cfg
                .mapping
                .home
                .replace("{username}", &user.name)
                .replace("{uid}", &uid.to_string());
            tx.execute(
                "INSERT INTO users (issuer, sub, name, uid, gid, gecos, home, shell, email, email_verified,
                                    is_admin, claims, source, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                params![
                    ctx.issuer, user.sub, user.name, uid, user.gecos, home, ctx.cfg.mapping.shell,
                    user.email, user.email_verified, user.is_admin, claims_json, source.as_str(), ctx.now
                ],
            )?;
            (tx.last_insert_rowid(), uid, true, None)
        }
    };
    let mut group_ids = Vec::with_capacity(user.groups.len());
    for g in &user.groups {
        match ensure_group(tx, ctx, &g.provider_name, &g.name)? {
            Some(id) => group_ids.push(id),
            None => log::warn!(
                "user {}: group {:?} skipped: the name {:?} belongs to another identity",
                user.name,
                g.provider_name,
                g.name
            ),
        }
    }
    tx.execute("DELETE FROM memberships WHERE user_id = ?1", [user_id])?;
    let mut ins =
        tx.prepare_cached("INSERT OR IGNORE INTO memberships (user_id, group_id) VALUES (?1, ?2)")?;
    for gid in group_ids {
        ins.execute([user_id, gid])?;
    }
    Ok(Applied {
        name: user.name.clone(),
        uid,
        created,
        renamed_from,
    })
}

/// Who else holds `name` (as a user, whose private group has the same name, or as a group).
fn name_owner(
    tx: &Transaction<'_>,
    name: &str,
    own_user: Option<i64>,
    own_group: Option<i64>,
) -> Result<Option<String>, StoreError> {
    let user: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT id, issuer, sub FROM users WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((id, issuer, sub)) = user {
        if Some(id) != own_user {
            return Ok(Some(format!("the user with sub {sub:?} at {issuer}")));
        }
    }
    let group: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, provider_name FROM groups WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, provider_name)) = group {
        if Some(id) != own_group {
            return Ok(Some(format!("the provider group {provider_name:?}")));
        }
    }
    Ok(None)
}

/// Who uses `id` as a UID or GID, here or in the host's files, for messages.
fn id_owner(
    tx: &Transaction<'_>,
    local: &LocalAccounts,
    id: u32,
) -> Result<Option<String>, StoreError> {
    if local.uids.contains(&id) || local.gids.contains(&id) {
        return Ok(Some(format!("a local account or group (ID {id})")));
    }
    let user: Option<String> = tx
        .query_row(
            "SELECT name FROM users WHERE uid = ?1 OR gid = ?1 LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(name) = user {
        return Ok(Some(format!("the oidcd user {name}")));
    }
    let group: Option<String> = tx
        .query_row("SELECT name FROM groups WHERE gid = ?1", [id], |r| r.get(0))
        .optional()?;
    Ok(group.map(|g| format!("the oidcd group {g}")))
}

/// Whether an ID is used as a UID or GID by anyone, here or in the host's files.
fn id_taken(tx: &Transaction<'_>, local: &LocalAccounts, id: u32) -> Result<bool, StoreError> {
    if local.uids.contains(&id) || local.gids.contains(&id) {
        return Ok(true);
    }
    let hit: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM users WHERE uid = ?1 OR gid = ?1 UNION ALL SELECT 1 FROM groups WHERE gid = ?1 LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(hit.is_some())
}

fn new_uid(tx: &Transaction<'_>, ctx: &NewIds<'_>, user: &MappedUser) -> Result<u32, StoreError> {
    let range = ctx.cfg.mapping.uids;
    if ctx.cfg.mapping.uid_source == UidSource::Claim {
        let uid = user
            .uid_from_claim
            .ok_or_else(|| conflict("the UID claim is missing".into()))?;
        if !range.contains(uid) || is_reserved_id(uid) {
            return Err(conflict(format!(
                "UID {uid} from the claim is outside mapping.uid_min..uid_max ({}-{}) or reserved",
                range.min, range.max
            )));
        }
        if id_taken(tx, ctx.local, uid)? {
            return Err(conflict(format!(
                "UID {uid} from the claim is already in use (locally or by another identity)"
            )));
        }
        return Ok(uid);
    }
    let mut failure = None;
    let id = ids::allocate(
        ctx.issuer,
        IdKind::User,
        &user.sub,
        range,
        |id| match id_taken(tx, ctx.local, id) {
            Ok(t) => t,
            Err(e) => {
                failure = Some(e);
                true
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let id = id.ok_or_else(|| {
        conflict(format!(
            "no free UID found after {} probes: widen mapping.uid_min..uid_max",
            ids::MAX_PROBES
        ))
    })?;
    let first = ids::candidate(ctx.issuer, IdKind::User, &user.sub, 0, range);
    log_collision(tx, ctx, "UID", &format!("user {}", user.name), first, id)?;
    Ok(id)
}

/// Says so when an ID is not the first candidate because another identity (or a local
/// account) holds that one: the collision is resolved here by the next candidate, and a host
/// where the first was free gives this identity another ID (pin it with oidcctl export and
/// import where that matters).
fn log_collision(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    what: &str,
    who: &str,
    first: u32,
    chosen: u32,
) -> Result<(), StoreError> {
    if first == chosen || is_reserved_id(first) {
        return Ok(());
    }
    let owner = id_owner(tx, ctx.local, first)?.unwrap_or_else(|| "another identity".into());
    log::warn!(
        "{what} collision: {who} would get {first}, which {owner} has; {who} gets {chosen} \
         here (hosts where {first} was free give {first}: pin the ID map with oidcctl export \
         and import where IDs must agree)"
    );
    Ok(())
}

/// The row id of the group with this provider identity, created (with a fresh GID) if new.
/// `None` when its Unix name belongs to someone else.
fn ensure_group(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    provider_name: &str,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, name FROM groups WHERE issuer = ?1 AND provider_name = ?2",
            params![ctx.issuer, provider_name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, old)) = &existing {
        if old == name {
            return Ok(Some(*id));
        }
    }
    if existing.is_none() {
        if let Some(id) = super::moves::take_over_group(tx, ctx, provider_name, name)? {
            return Ok(Some(id));
        }
    }
    if name_owner(tx, name, None, existing.as_ref().map(|e| e.0))?.is_some() {
        return Ok(existing.map(|e| e.0));
    }
    if let Some((id, _)) = existing {
        tx.execute(
            "UPDATE groups SET name = ?1, updated_at = ?2 WHERE id = ?3",
            params![name, ctx.now, id],
        )?;
        return Ok(Some(id));
    }
    let mut failure = None;
    let gid = ids::allocate(
        ctx.issuer,
        IdKind::Group,
        provider_name,
        ctx.cfg.mapping.gids,
        |id| match id_taken(tx, ctx.local, id) {
            Ok(t) => t,
            Err(e) => {
                failure = Some(e);
                true
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let Some(gid) = gid else {
        log::warn!("no free GID for group {provider_name:?}: widen mapping.gid_min..gid_max");
        return Ok(None);
    };
    let first = ids::candidate(
        ctx.issuer,
        IdKind::Group,
        provider_name,
        0,
        ctx.cfg.mapping.gids,
    );
    log_collision(tx, ctx, "GID", &format!("group {name}"), first, gid)?;
    tx.execute(
        "INSERT INTO groups (issuer, provider_name, name, gid, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![ctx.issuer, provider_name, name, gid, ctx.now],
    )?;
    Ok(Some(tx.last_insert_rowid()))
}

fn check_pinned_id(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    id: u32,
    what: &str,
) -> Result<(), StoreError> {
    if is_reserved_id(id) {
        return Err(conflict(format!("{what} {id} is reserved")));
    }
    let range = if what == "UID" {
        ctx.cfg.mapping.uids
    } else {
        ctx.cfg.mapping.gids
    };
    if !range.contains(id) {
        return Err(conflict(format!(
            "{what} {id} is outside this host's range {}-{}: the hosts' [mapping] ranges differ",
            range.min, range.max
        )));
    }
    if id_taken(tx, ctx.local, id)? {
        return Err(conflict(format!("{what} {id} is already in use here")));
    }
    Ok(())
}

fn pin_user(tx: &Transaction<'_>, ctx: &NewIds<'_>, u: &IdMapUser) -> Result<bool, StoreError> {
    let existing: Option<(u32, u32)> = tx
        .query_row(
            "SELECT uid, gid FROM users WHERE issuer = ?1 AND sub = ?2",
            params![ctx.issuer, u.sub],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((uid, gid)) = existing {
        if (uid, gid) != (u.uid, u.gid) {
            return Err(conflict(format!(
                "{:?} already has UID {uid}/GID {gid} here, the map says {}/{}",
                u.name, u.uid, u.gid
            )));
        }
        return Ok(false);
    }
    mapping::check_not_local(&u.name, ctx.cfg, ctx.local).map_err(|r| conflict(r.to_string()))?;
    if !crate::identity::names::is_valid_name(&u.name, !ctx.cfg.mapping.lowercase_names) {
        return Err(conflict(format!("{:?} is not a valid name", u.name)));
    }
    if u.uid != u.gid {
        return Err(conflict(format!(
            "{:?}: UID {} and GID {} differ (private groups share the UID)",
            u.name, u.uid, u.gid
        )));
    }
    if let Some(other) = name_owner(tx, &u.name, None, None)? {
        return Err(conflict(format!(
            "the name {:?} already belongs to {other}",
            u.name
        )));
    }
    check_pinned_id(tx, ctx, u.uid, "UID")?;
    let home = ctx
        .cfg
        .mapping
        .home
        .replace("{username}", &u.name)
        .replace("{uid}", &u.uid.to_string());
    tx.execute(
        "INSERT INTO users (issuer, sub, name, uid, gid, gecos, home, shell, claims, source, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4, '', ?5, ?6, '{}', 'map', ?7, ?7)",
        params![ctx.issuer, u.sub, u.name, u.uid, home, ctx.cfg.mapping.shell, ctx.now],
    )?;
    Ok(true)
}

fn pin_group(tx: &Transaction<'_>, ctx: &NewIds<'_>, g: &IdMapGroup) -> Result<bool, StoreError> {
    let existing: Option<u32> = tx
        .query_row(
            "SELECT gid FROM groups WHERE issuer = ?1 AND provider_name = ?2",
            params![ctx.issuer, g.provider_name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(gid) = existing {
        if gid != g.gid {
            return Err(conflict(format!(
                "{:?} already has GID {gid} here, the map says {}",
                g.name, g.gid
            )));
        }
        return Ok(false);
    }
    mapping::check_not_local(&g.name, ctx.cfg, ctx.local).map_err(|r| conflict(r.to_string()))?;
    if !crate::identity::names::is_valid_name(&g.name, !ctx.cfg.mapping.lowercase_names) {
        return Err(conflict(format!("{:?} is not a valid name", g.name)));
    }
    if let Some(other) = name_owner(tx, &g.name, None, None)? {
        return Err(conflict(format!(
            "the name {:?} already belongs to {other}",
            g.name
        )));
    }
    check_pinned_id(tx, ctx, g.gid, "GID")?;
    tx.execute(
        "INSERT INTO groups (issuer, provider_name, name, gid, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![ctx.issuer, g.provider_name, g.name, g.gid, ctx.now],
    )?;
    Ok(true)
}
