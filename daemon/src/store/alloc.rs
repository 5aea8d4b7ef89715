//! IDs for new users and groups: the fleet's rule (`identity::ids`) asked of this store. An
//! identity gets its pin, its claim or its hashed ID, or is refused when someone else holds
//! that ID here; it never gets a next-free ID.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use super::write::NewIds;
use crate::config::UidSource;
use crate::identity::ids::{self, Allocation, HostIds, IdKind, Origin, Who};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::MappedUser;

/// A transaction and the host's accounts, as the allocator sees them.
pub(super) struct TxHost<'a> {
    tx: &'a Connection,
    local: &'a LocalAccounts,
}

impl<'a> TxHost<'a> {
    pub(super) fn new(tx: &'a Connection, local: &'a LocalAccounts) -> Self {
        Self { tx, local }
    }
}

impl HostIds for TxHost<'_> {
    type Error = StoreError;

    fn pin_of(&mut self, who: &Who<'_>) -> Result<Option<u32>, StoreError> {
        pin_of(self.tx, who)
    }

    fn pinned_to_other(&mut self, id: u32, who: &Who<'_>) -> Result<bool, StoreError> {
        let owner: Option<(String, String, String)> = self
            .tx
            .prepare_cached("SELECT kind, issuer, key FROM id_pins WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(owner.is_some_and(|(kind, issuer, key)| {
            (kind.as_str(), issuer.as_str(), key.as_str())
                != (who.kind.as_str(), who.issuer, who.key)
        }))
    }

    fn holder(&mut self, id: u32, who: &Who<'_>) -> Result<Option<String>, StoreError> {
        id_holder(self.tx, self.local, id, Some(who))
    }
}

/// The ID the imported ID maps pin `who` to.
pub(super) fn pin_of(tx: &Connection, who: &Who<'_>) -> Result<Option<u32>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT id FROM id_pins WHERE kind = ?1 AND issuer = ?2 AND key = ?3")?
        .query_row(params![who.kind.as_str(), who.issuer, who.key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Who uses `id` as a UID or GID here, in the host's files or in the store (other than `who`
/// itself), said for a message.
pub(super) fn id_holder(
    tx: &Connection,
    local: &LocalAccounts,
    id: u32,
    who: Option<&Who<'_>>,
) -> Result<Option<String>, StoreError> {
    if local.uids.contains(&id) || local.gids.contains(&id) {
        let name = local
            .users
            .iter()
            .find(|(_, u)| **u == id)
            .map(|(n, _)| format!("the local account {n}"))
            .or_else(|| {
                local
                    .groups
                    .iter()
                    .find(|(_, g)| **g == id)
                    .map(|(n, _)| format!("the local group {n}"))
            });
        return Ok(Some(
            name.unwrap_or_else(|| format!("a local account or group (ID {id})")),
        ));
    }
    let is = |kind: IdKind, issuer: &str, key: &str| {
        who.is_some_and(|w| (w.kind, w.issuer, w.key) == (kind, issuer, key))
    };
    let user: Option<(String, String, String)> = tx
        .prepare_cached("SELECT name, issuer, sub FROM users WHERE uid = ?1 OR gid = ?1 LIMIT 1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((name, issuer, sub)) = user {
        if !is(IdKind::User, &issuer, &sub) {
            return Ok(Some(format!("the user {name} (sub {sub:?} at {issuer})")));
        }
    }
    let group: Option<(String, String, String)> = tx
        .prepare_cached("SELECT name, issuer, provider_name FROM groups WHERE gid = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(group.and_then(|(name, issuer, key)| {
        (!is(IdKind::Group, &issuer, &key))
            .then(|| format!("the group {name} ({key:?} at {issuer})"))
    }))
}

/// The UID of a user new to this store, or [`StoreError::Conflict`] saying why there is none.
pub(super) fn new_uid(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    user: &MappedUser,
) -> Result<u32, StoreError> {
    let claimed = match ctx.cfg.mapping.uid_source {
        UidSource::Claim => Some(
            user.uid_from_claim
                .ok_or_else(|| StoreError::Conflict("the UID claim is missing".into()))?,
        ),
        UidSource::Hash => None,
    };
    let who = Who {
        issuer: ctx.issuer,
        kind: IdKind::User,
        key: &user.sub,
    };
    let what = format!("user {} (sub {:?} at {})", user.name, user.sub, ctx.issuer);
    match ids::allocate(
        &who,
        ctx.cfg.mapping.uids,
        claimed,
        &mut TxHost::new(tx, ctx.local),
    )? {
        Allocation::Assigned { id, origin } => {
            skipped(&what, origin, IdKind::User);
            Ok(id)
        }
        Allocation::Taken {
            id, holder, next, ..
        } => Err(StoreError::Conflict(ids::taken_message(
            &what,
            id,
            &holder,
            next,
            IdKind::User,
        ))),
        Allocation::Invalid(why) => Err(StoreError::Conflict(format!("{what}: {why}"))),
    }
}

/// The GID of a provider group new to this store; `None` (logged) when it cannot have one here.
pub(super) fn new_gid(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    provider_name: &str,
    name: &str,
    claimed: Option<u32>,
) -> Result<Option<u32>, StoreError> {
    let who = Who {
        issuer: ctx.issuer,
        kind: IdKind::Group,
        key: provider_name,
    };
    let what = format!("group {name} ({provider_name:?} at {})", ctx.issuer);
    if ctx.cfg.mapping.gid_source == crate::config::GidSource::Claim && claimed.is_none() {
        log::warn!("{what} skipped: mapping.gid_source = \"claim\" and the claim gives it no GID");
        return Ok(None);
    }
    match ids::allocate(
        &who,
        ctx.cfg.mapping.gids,
        claimed,
        &mut TxHost::new(tx, ctx.local),
    )? {
        Allocation::Assigned { id, origin } => {
            skipped(&what, origin, IdKind::Group);
            Ok(Some(id))
        }
        Allocation::Taken {
            id, holder, next, ..
        } => {
            log::warn!(
                "{what} skipped: {}",
                ids::taken_message(&what, id, &holder, next, IdKind::Group)
            );
            Ok(None)
        }
        Allocation::Invalid(why) => {
            log::warn!("{what} skipped: {why}");
            Ok(None)
        }
    }
}

/// Says so when the rule skipped candidates (reserved, or pinned to others): the same happens on
/// every host with the same configuration and map.
fn skipped(what: &str, origin: Origin, kind: IdKind) {
    if let Origin::Rule { attempt } = origin {
        if attempt > 0 {
            log::info!(
                "{what}: {} candidate {attempt} (earlier ones are reserved or pinned to others \
                 by the ID map)",
                kind.id_name()
            );
        }
    }
}

/// Why a new user cannot keep `uid`, the provisional UID sshd holds for the login
/// (`login.ssh_first_uid = "provisional"`), or `None` when it can.
pub(super) fn keep_provisional(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    user: &MappedUser,
    uid: u32,
) -> Result<Option<String>, StoreError> {
    if ctx.cfg.mapping.uid_source == UidSource::Claim && user.uid_from_claim != Some(uid) {
        return Ok(Some(format!(
            "the UID comes from the claim {}, which says {}",
            ctx.cfg.claims.uid.as_ref().map_or("", |p| p.0.as_str()),
            user.uid_from_claim
                .map_or_else(|| "nothing".to_string(), |u| u.to_string())
        )));
    }
    if !ctx.cfg.mapping.uids.contains(uid) || crate::config::is_reserved_id(uid) {
        return Ok(Some(
            "it is outside mapping.uid_min..uid_max or reserved".into(),
        ));
    }
    if let Some(owner) = id_holder(tx, ctx.local, uid, None)? {
        return Ok(Some(format!("it now belongs to {owner}")));
    }
    let who = Who {
        issuer: ctx.issuer,
        kind: IdKind::User,
        key: &user.sub,
    };
    let mut host = TxHost::new(tx, ctx.local);
    if let Some(pin) = host.pin_of(&who)? {
        if pin != uid {
            return Ok(Some(format!(
                "the fleet's ID map pins this identity to {pin}"
            )));
        }
    }
    if host.pinned_to_other(uid, &who)? {
        return Ok(Some(
            "the fleet's ID map pins it to another identity".into(),
        ));
    }
    Ok(None)
}
