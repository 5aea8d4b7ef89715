//! The identity store: SQLite in WAL mode, one connection owned by the daemon.
//!
//! Users are keyed by (issuer, sub), never by name or email, so a rename at the provider keeps
//! the UID. Every change is one transaction: a crash at any point leaves the previous state.

mod alloc;
mod idmap;
mod links;
mod map;
mod moves;
mod offline;
mod schema;
mod tokens;
mod write;

use std::path::Path;
use std::time::Duration;

use oidc_proto::types::{GroupRecord, UnixGroup, UnixUser, UserRecord};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

pub use idmap::{IdCursor, PAGE_LEN, Pinned, from_format_1};
pub use links::Link;
pub use map::MapCounts;
pub use offline::OfflinePin;
pub use schema::SCHEMA_VERSION;
pub use tokens::{Candidate, RefreshSummary, RefreshWrite, Tokens, Written};
pub use write::{Applied, ImportError, NewIds, Source};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O error, corruption, full disk...). The daemon answers "unavailable".
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer oidcd.
    #[error(
        "the database has schema version {found}, newer than the {supported} this oidcd knows: \
         upgrade oidcd or move the database aside"
    )]
    TooNew {
        /// Version found.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// The change would give a name or ID that another identity already has.
    #[error("{0}")]
    Conflict(String),
    /// A login cannot end with the UID the program running it already holds for the name
    /// (taken meanwhile, or the identity has another): nothing was written; the user logs in
    /// again.
    #[error("{0}")]
    ResolvedUidLost(String),
    /// A stored value could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The file could not be created.
    #[error("{0}")]
    Io(String),
}

/// The store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// Counts for `oidcctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// Provider groups.
    pub groups: u64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Create the file ourselves, private whatever the umask: it holds the claims (names,
        // emails) of everyone who logged in. SQLite gives its -wal and -shm files the same mode.
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Self::setup(conn, true)
    }

    /// A private in-memory store (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    fn setup(mut conn: Connection, wal: bool) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(2))?;
        // Refuse a newer database before changing anything in it (even its journal mode).
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if wal {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("database journal mode is {mode}, not wal");
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        conn.pragma_update(None, "foreign_keys", true)?;
        // Fail fast on a damaged file instead of at the first lookup.
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt(format!("integrity check: {check}")));
        }
        schema::migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// Runs SQL directly (tests that break the store on purpose).
    #[cfg(test)]
    pub fn exec_for_test(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Users and groups stored.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let n = |sql: &str| -> Result<u64, StoreError> {
            let v: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(Counts {
            users: n("SELECT count(*) FROM users")?,
            groups: n("SELECT count(*) FROM groups")?,
        })
    }

    /// Users stored for `issuer`.
    pub fn users_of_issuer(&self, issuer: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM users WHERE issuer = ?1",
            [issuer],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `getpwnam`.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UnixUser>, StoreError> {
        self.one_user("WHERE name = ?1", params![name])
    }

    /// The identity (issuer, subject) a stored user belongs to.
    pub fn identity_of(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT issuer, sub FROM users WHERE name = ?1")?;
        Ok(st
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// `getpwuid`.
    pub fn user_by_uid(&self, uid: u32) -> Result<Option<UnixUser>, StoreError> {
        self.one_user("WHERE uid = ?1", params![uid])
    }

    /// Every user, by UID.
    pub fn all_users(&self) -> Result<Vec<UnixUser>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{USER_COLS} ORDER BY uid"))?;
        let rows = st.query_map([], unix_user)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn one_user(
        &self,
        filter: &str,
        p: impl rusqlite::Params,
    ) -> Result<Option<UnixUser>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!("{USER_COLS} {filter}"))?;
        Ok(st.query_row(p, unix_user).optional()?)
    }

    /// `getgrnam`: a provider group, or a user's private group.
    pub fn group_by_name(&self, name: &str) -> Result<Option<UnixGroup>, StoreError> {
        self.one_group("name", name)
    }

    /// `getgrgid`: a provider group, or a user's private group.
    pub fn group_by_gid(&self, gid: u32) -> Result<Option<UnixGroup>, StoreError> {
        self.one_group("gid", gid)
    }

    /// The group whose `column` (name or gid) is `key`: a provider group first, else the
    /// private group of the user with that name or UID.
    fn one_group(
        &self,
        column: &str,
        key: impl rusqlite::ToSql,
    ) -> Result<Option<UnixGroup>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT id, name, gid FROM groups WHERE {column} = ?1"
        ))?;
        if let Some((id, name, gid)) = st.query_row([&key], group_row).optional()? {
            return Ok(Some(UnixGroup {
                name,
                gid,
                members: self.members(id)?,
            }));
        }
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT name, gid FROM users WHERE {column} = ?1"))?;
        Ok(st.query_row([&key], private_group).optional()?)
    }

    /// Every group with its members, private groups included, by GID.
    pub fn all_groups(&self) -> Result<Vec<UnixGroup>, StoreError> {
        let mut out = Vec::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT id, name, gid FROM groups")?;
        for row in st.query_map([], group_row)? {
            let (id, name, gid) = row?;
            out.push(UnixGroup {
                name,
                gid,
                members: self.members(id)?,
            });
        }
        let mut st = self.conn.prepare_cached("SELECT name, gid FROM users")?;
        for g in st.query_map([], private_group)? {
            out.push(g?);
        }
        out.sort_by_key(|g| g.gid);
        Ok(out)
    }

    /// `initgroups`: the provider groups' GIDs of a user and whether the user is an admin.
    /// `None` when the user is unknown.
    pub fn groups_of_user(&self, name: &str) -> Result<Option<(Vec<u32>, bool)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, is_admin FROM users WHERE name = ?1")?;
        let Some((id, admin)) = st
            .query_row([name], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT g.gid FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.gid",
        )?;
        let gids = st
            .query_map([id], |r| r.get::<_, u32>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((gids, admin)))
    }

    fn members(&self, group_id: i64) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT u.name FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.name",
        )?;
        let names = st.query_map([group_id], |r| r.get::<_, String>(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    /// `oidcctl user show`: the user with claims and groups. `local_groups` is filled in by
    /// the caller (it depends on the config and /etc/group).
    pub fn user_record(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{RECORD_COLS} WHERE u.name = ?1"))?;
        let Some((id, rec)) = st.query_row([name], user_record).optional()? else {
            return Ok(None);
        };
        Ok(Some(self.with_groups(id, rec)?))
    }

    /// `oidcctl user list`.
    pub fn user_records(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{RECORD_COLS} ORDER BY u.name"))?;
        let rows = st
            .query_map([], user_record)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, rec)| self.with_groups(id, rec))
            .collect()
    }

    fn with_groups(&self, id: i64, mut rec: UserRecord) -> Result<UserRecord, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT g.name FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.name",
        )?;
        rec.groups = st
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        rec.lifecycle = self.lifecycle_of(id)?;
        rec.offline_pin = Some(self.offline_pin_status(id)?);
        Ok(rec)
    }

    /// `oidcctl group show`.
    pub fn group_record(&self, name: &str) -> Result<Option<GroupRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{GROUP_RECORD_COLS} WHERE name = ?1"))?;
        let Some((id, rec)) = st.query_row([name], group_record).optional()? else {
            return Ok(None);
        };
        let mut rec = rec;
        rec.unix.members = self.members(id)?;
        Ok(Some(rec))
    }

    /// `oidcctl group list`.
    pub fn group_records(&self) -> Result<Vec<GroupRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{GROUP_RECORD_COLS} ORDER BY name"))?;
        let rows = st
            .query_map([], group_record)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, mut rec)| {
                rec.unix.members = self.members(id)?;
                Ok(rec)
            })
            .collect()
    }
}

const USER_COLS: &str = "SELECT name, uid, gid, gecos, home, shell FROM users";

fn unix_user(r: &Row<'_>) -> rusqlite::Result<UnixUser> {
    Ok(UnixUser {
        name: r.get(0)?,
        uid: r.get(1)?,
        gid: r.get(2)?,
        gecos: r.get(3)?,
        home: r.get(4)?,
        shell: r.get(5)?,
    })
}

fn group_row(r: &Row<'_>) -> rusqlite::Result<(i64, String, u32)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn private_group(r: &Row<'_>) -> rusqlite::Result<UnixGroup> {
    Ok(UnixGroup {
        name: r.get(0)?,
        gid: r.get(1)?,
        members: Vec::new(),
    })
}

const RECORD_COLS: &str = "SELECT u.id, u.name, u.uid, u.gid, u.gecos, u.home, u.shell, u.issuer, u.sub, \
     u.email, u.email_verified, u.source, u.claims, u.created_at, u.updated_at, u.last_login_at, u.is_admin FROM users u";

fn user_record(r: &Row<'_>) -> rusqlite::Result<(i64, UserRecord)> {
    let claims: String = r.get(12)?;
    Ok((
        r.get(0)?,
        UserRecord {
            unix: UnixUser {
                name: r.get(1)?,
                uid: r.get(2)?,
                gid: r.get(3)?,
                gecos: r.get(4)?,
                home: r.get(5)?,
                shell: r.get(6)?,
            },
            issuer: r.get(7)?,
            sub: r.get(8)?,
            email: r.get(9)?,
            email_verified: r.get(10)?,
            groups: Vec::new(),
            is_admin: r.get(16)?,
            local_groups: Vec::new(),
            source: r.get(11)?,
            claims: serde_json::from_str(&claims).unwrap_or(serde_json::Value::Null),
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
            last_login_at: r.get(15)?,
            lifecycle: None,
            offline_pin: None,
        },
    ))
}

const GROUP_RECORD_COLS: &str =
    "SELECT id, name, gid, issuer, provider_name, created_at, updated_at FROM groups";

fn group_record(r: &Row<'_>) -> rusqlite::Result<(i64, GroupRecord)> {
    Ok((
        r.get(0)?,
        GroupRecord {
            unix: UnixGroup {
                name: r.get(1)?,
                gid: r.get(2)?,
                members: Vec::new(),
            },
            issuer: r.get(3)?,
            provider_name: r.get(4)?,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
        },
    ))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fleet;
