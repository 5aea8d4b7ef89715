//! Changes to the store, each one transaction.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{Store, StoreError};
use crate::config::Config;
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
                Some(uid) => match super::alloc::keep_provisional(tx, ctx, user, uid)? {
                    Some(why) => return lost(why),
                    None => uid,
                },
                None => super::alloc::new_uid(tx, ctx, user)?,
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
        // A group that cannot be had here is logged by ensure_group and left out.
        if let Some(id) = ensure_group(tx, ctx, &g.provider_name, &g.name, g.gid_from_claim)? {
            group_ids.push(id);
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

/// The row id of the group with this provider identity, created (with a fresh GID) if new.
/// `None` when its Unix name belongs to someone else.
fn ensure_group(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    provider_name: &str,
    name: &str,
    claimed: Option<u32>,
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
    if let Some(other) = name_owner(tx, name, None, existing.as_ref().map(|e| e.0))? {
        if existing.is_none() {
            log::warn!("group {provider_name:?} skipped: the name {name:?} belongs to {other}");
        }
        return Ok(existing.map(|e| e.0));
    }
    if let Some((id, _)) = existing {
        tx.execute(
            "UPDATE groups SET name = ?1, updated_at = ?2 WHERE id = ?3",
            params![name, ctx.now, id],
        )?;
        return Ok(Some(id));
    }
    let Some(gid) = super::alloc::new_gid(tx, ctx, provider_name, name, claimed)? else {
        return Ok(None);
    };
    tx.execute(
        "INSERT INTO groups (issuer, provider_name, name, gid, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![ctx.issuer, provider_name, name, gid, ctx.now],
    )?;
    Ok(Some(tx.last_insert_rowid()))
}
