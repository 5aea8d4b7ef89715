//! Offline PINs in the store: only an Argon2id hash (a PHC string, never shown or logged) and
//! the wrong tries since the last online login, which resets them.

use oidc_proto::types::OfflinePinStatus;
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

    /// Whether user `id` has an offline PIN, its wrong tries and lock, for `oidcctl user show`:
    /// the hash is not read.
    pub(super) fn offline_pin_status(&self, id: i64) -> Result<OfflinePinStatus, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT set_at, failures, locked_until FROM offline_pins WHERE user_id = ?1",
        )?;
        Ok(st
            .query_row([id], |r| {
                Ok(OfflinePinStatus {
                    set: true,
                    set_at: r.get(0)?,
                    failures: r.get(1)?,
                    locked_until: r.get(2)?,
                })
            })
            .optional()?
            .unwrap_or_default())
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

    /// Forgets the offline PIN of `name` (hash, wrong tries, lock); `false` when none was set.
    pub fn clear_offline_pin(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM offline_pins WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            [name],
        )? > 0)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{apply, claims, store};

    /// `user show` says whether a PIN is set, with its wrong tries and lock, and never carries
    /// the hash; a user without a PIN says "not set".
    #[test]
    fn user_record_shows_the_pin_state_not_the_hash() {
        let mut s = store();
        apply(&mut s, &claims("a", "alice", &[])).unwrap();
        apply(&mut s, &claims("b", "bob", &[])).unwrap();
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$SECRETHASHSECRETHASH";
        assert!(s.set_offline_pin("alice", hash, 1_000).unwrap());
        assert_eq!(s.offline_failure("alice", 2, 9_000).unwrap(), 1);
        let p = s
            .user_record("alice")
            .unwrap()
            .unwrap()
            .offline_pin
            .unwrap();
        assert_eq!(
            (p.set, p.set_at, p.failures, p.locked_until),
            (true, Some(1_000), 1, None)
        );
        assert_eq!(s.offline_failure("alice", 2, 9_000).unwrap(), 2);
        let rec = s.user_record("alice").unwrap().unwrap();
        let p = rec.offline_pin.clone().unwrap();
        assert_eq!((p.failures, p.locked_until), (2, Some(9_000)));
        let json = serde_json::to_string(&rec).unwrap();
        assert!(
            !json.contains("SECRETHASH") && !json.contains("argon2"),
            "{json}"
        );
        let bob = s.user_record("bob").unwrap().unwrap().offline_pin.unwrap();
        assert_eq!(bob, Default::default());
        let listed = s.user_records().unwrap();
        assert!(listed.iter().all(|u| u.offline_pin.is_some()));
    }

    /// Clearing forgets the hash, the wrong tries and the lock; clearing again finds none.
    #[test]
    fn clearing_forgets_the_pin() {
        let mut s = store();
        apply(&mut s, &claims("a", "alice", &[])).unwrap();
        assert!(s.set_offline_pin("alice", "$argon2id$x", 1_000).unwrap());
        s.offline_failure("alice", 1, 9_000).unwrap();
        assert!(s.clear_offline_pin("alice").unwrap());
        assert_eq!(s.offline_pin("alice").unwrap(), None);
        assert!(!s.clear_offline_pin("alice").unwrap());
        assert!(!s.clear_offline_pin("nobody").unwrap());
    }
}
