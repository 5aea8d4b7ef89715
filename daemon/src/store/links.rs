//! Links from existing local accounts to provider identities (migration from local passwords):
//! a linked account authenticates with the device flow while NSS keeps serving it from
//! /etc/passwd. Without a link, an approval never logs anyone into a local account.

use oidc_proto::types::LinkRecord;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// A link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The local account.
    pub local_name: String,
    /// The identity's issuer.
    pub issuer: String,
    /// The identity's subject.
    pub sub: String,
}

impl Store {
    /// The link of a local account.
    pub fn link_of(&self, local_name: &str) -> Result<Option<Link>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT local_name, issuer, sub FROM links WHERE local_name = ?1")?;
        Ok(st
            .query_row([local_name], |r| {
                Ok(Link {
                    local_name: r.get(0)?,
                    issuer: r.get(1)?,
                    sub: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Links `local_name` to (issuer, sub), replacing its previous link. An identity links to
    /// one account at most, and never to one that oidcd itself serves.
    pub fn set_link(
        &mut self,
        local_name: &str,
        issuer: &str,
        sub: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let served: Option<i64> = tx
            .query_row("SELECT 1 FROM users WHERE name = ?1", [local_name], |r| {
                r.get(0)
            })
            .optional()?;
        if served.is_some() {
            return Err(StoreError::Conflict(format!(
                "{local_name} is an oidcd user, not a local account"
            )));
        }
        let other: Option<String> = tx
            .query_row(
                "SELECT local_name FROM links WHERE issuer = ?1 AND sub = ?2 AND local_name != ?3",
                params![issuer, sub, local_name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = other {
            return Err(StoreError::Conflict(format!(
                "sub {sub:?} is already linked to {other}"
            )));
        }
        tx.execute(
            "INSERT INTO links (local_name, issuer, sub, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (local_name) DO UPDATE SET issuer = ?2, sub = ?3, created_at = ?4, last_login_at = NULL",
            params![local_name, issuer, sub, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a link; false if there was none.
    pub fn remove_link(&mut self, local_name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM links WHERE local_name = ?1", [local_name])?
            > 0)
    }

    /// Records a login through a link.
    pub fn touch_link(&mut self, local_name: &str, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE links SET last_login_at = ?1 WHERE local_name = ?2",
            params![now, local_name],
        )?;
        Ok(())
    }

    /// Every link.
    pub fn links(&self) -> Result<Vec<LinkRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT local_name, issuer, sub, created_at, last_login_at FROM links ORDER BY local_name")?;
        let rows = st.query_map([], |r| {
            Ok(LinkRecord {
                local_name: r.get(0)?,
                issuer: r.get(1)?,
                sub: r.get(2)?,
                created_at: r.get(3)?,
                last_login_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
