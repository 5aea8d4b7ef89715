//! Offline PINs in the store: only an Argon2id hash (a PHC string, never shown or logged) and
//! the wrong tries since the last online login, which resets them.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::config::Secret;

/// A user's offline PIN, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflinePin {
    /// The PHC string (`$argon2id$...`).
    pub hash: Secret,
    /// When it was set.
    pub set_at: i64,
    /// Wrong tries in a row since the last online login.
    pub failures: u32,
    /// Refused until then (Unix seconds) after too many wrong tries.
    pub locked_until: Option<i64>,
}

impl Store {
    /// Sets (or replaces) the offline PIN hash of `name`. `false` when there is no such user.
    pub fn set_offline_pin(
        &mut self,
        name: &str,
        hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "INSERT INTO offline_pins (user_id, hash, set_at, failures)
             SELECT id, ?2, ?3, 0 FROM users WHERE name = ?1
             ON CONFLICT (user_id) DO UPDATE SET hash = ?2, set_at = ?3, failures = 0,
                 locked_until = NULL",
            params![name, hash, now],
        )? > 0)
    }

    /// The offline PIN of `name`, if one is set.
    pub fn offline_pin(&self, name: &str) -> Result<Option<OfflinePin>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT p.hash, p.set_at, p.failures, p.locked_until FROM offline_pins p
                 JOIN users u ON u.id = p.user_id WHERE u.name = ?1",
                [name],
                |r| {
                    Ok(OfflinePin {
                        hash: Secret::new(r.get(0)?),
                        set_at: r.get(1)?,
                        failures: r.get(2)?,
                        locked_until: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Counts a wrong PIN for `name`, refusing the PIN until `lock_until` once there are
    /// `max_failures` in a row; returns the wrong tries in a row.
    pub fn offline_failure(
        &mut self,
        name: &str,
        max_failures: u32,
        lock_until: i64,
    ) -> Result<u32, StoreError> {
        self.conn.execute(
            "UPDATE offline_pins SET failures = failures + 1,
                 locked_until = CASE WHEN failures + 1 >= ?2 THEN ?3 ELSE locked_until END
             WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            params![name, max_failures, lock_until],
        )?;
        Ok(self.offline_pin(name)?.map_or(0, |p| p.failures))
    }

    /// A right PIN: the wrong tries start again from zero.
    pub fn offline_success(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE offline_pins SET failures = 0, locked_until = NULL
             WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            [name],
        )?;
        Ok(())
    }
}
