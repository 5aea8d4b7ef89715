//! The store as the NSS map sees it: every user and group, read in one transaction in three
//! ordered scans and fed straight into a [`MapEncoder`], with no allocation per user (names
//! are borrowed from SQLite's rows, member lists go through one reused arena).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use oidc_proto::nss_map::{MapEncoder, UserEntry};
use rusqlite::{Connection, OpenFlags};

use super::{SCHEMA_VERSION, Store, StoreError};

/// What went into a map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapCounts {
    /// Users written.
    pub users: usize,
    /// Provider groups written.
    pub groups: usize,
    /// Users or groups left out because a field cannot be served (logged).
    pub skipped: usize,
}

impl Store {
    /// A second, read-only connection to the database at `path`, for building the NSS map
    /// without holding the daemon's connection (WAL readers see one consistent snapshot and
    /// never block the writer).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "schema version {found}, expected {SCHEMA_VERSION}"
            )));
        }
        Ok(Self { conn })
    }

    /// Adds every provider group (with its members, by name), then every user (with the GIDs
    /// initgroups gives: their provider groups, plus `admin_gids` for admins) and the user's
    /// private group, to `enc`, from one snapshot. Provider groups go first: the map, like
    /// [`Store::group_by_gid`], prefers them. Records are drained to `out` (positioned after
    /// the header's bytes) every megabyte, so the map is never held whole in memory.
    pub fn fill_map(
        &self,
        enc: &mut MapEncoder,
        admin_gids: &[u32],
        local_name: &dyn Fn(&str) -> bool,
        out: &mut dyn Write,
    ) -> Result<MapCounts, StoreError> {
        let mut drain = |enc: &mut MapEncoder| -> Result<(), StoreError> {
            if enc.buffered() >= 1 << 20 {
                enc.drain_records(out)
                    .map_err(|e| StoreError::Io(format!("writing the NSS map: {e}")))?;
            }
            Ok(())
        };
        let tx = self.conn.unchecked_transaction()?;
        let mut counts = MapCounts::default();
        let n = |sql: &str| -> Result<usize, StoreError> {
            let v: i64 = tx.query_row(sql, [], |r| r.get(0))?;
            Ok(usize::try_from(v).unwrap_or(0))
        };
        let (users, groups) = (
            n("SELECT count(*) FROM users")?,
            n("SELECT count(*) FROM groups")?,
        );
        enc.reserve(users, groups + users);

        // Provider groups, each with its members sorted by name (as `getent group` showed
        // them before the map).
        let mut st = tx.prepare(
            "SELECT g.id, g.name, g.gid, u.name FROM groups g
             LEFT JOIN memberships m ON m.group_id = g.id
             LEFT JOIN users u ON u.id = m.user_id
             ORDER BY g.id",
        )?;
        let mut rows = st.query([])?;
        let mut current: Option<(i64, String, u32)> = None;
        let mut arena: Vec<u8> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let flush = |enc: &mut MapEncoder,
                     counts: &mut MapCounts,
                     g: &(i64, String, u32),
                     arena: &[u8],
                     spans: &mut Vec<(usize, usize)>| {
            spans.sort_unstable_by(|a, b| arena[a.0..a.1].cmp(&arena[b.0..b.1]));
            let names = spans
                .iter()
                .filter_map(|&(a, b)| std::str::from_utf8(&arena[a..b]).ok());
            match enc.add_group(&g.1, g.2, names) {
                Ok(()) => counts.groups += 1,
                Err(e) => {
                    counts.skipped += 1;
                    log::warn!("NSS map: group {:?} left out: {e}", g.1);
                }
            }
        };
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if current.as_ref().is_none_or(|c| c.0 != id) {
                if let Some(g) = &current {
                    flush(enc, &mut counts, g, &arena, &mut spans);
                    drain(enc)?;
                }
                current = Some((id, r.get(1)?, r.get(2)?));
                arena.clear();
                spans.clear();
            }
            if let Some(member) = r
                .get_ref(3)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?
            {
                let start = arena.len();
                arena.extend_from_slice(member.as_bytes());
                spans.push((start, arena.len()));
            }
        }
        if let Some(g) = &current {
            flush(enc, &mut counts, g, &arena, &mut spans);
        }
        drop(rows);

        // Users in id order, merged with their memberships in user order.
        let mut st = tx.prepare(
            "SELECT id, name, uid, gid, gecos, home, shell, is_admin FROM users ORDER BY id",
        )?;
        let mut ms = tx.prepare(
            "SELECT m.user_id, g.gid FROM memberships m JOIN groups g ON g.id = m.group_id
             ORDER BY m.user_id",
        )?;
        let mut mrows = ms.query([])?;
        let mut next_m: Option<(i64, u32)> = match mrows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        };
        let mut gids: Vec<u32> = Vec::new();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            gids.clear();
            while let Some((uid_row, gid)) = next_m {
                if uid_row > id {
                    break;
                }
                if uid_row == id {
                    gids.push(gid);
                }
                next_m = match mrows.next()? {
                    Some(m) => Some((m.get(0)?, m.get(1)?)),
                    None => None,
                };
            }
            if r.get::<_, bool>(7)? {
                gids.extend_from_slice(admin_gids);
            }
            let text = |i: usize| -> Result<&str, StoreError> {
                Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?)
            };
            // A local account of the same name (added to /etc/passwd after this user) is
            // what glibc's initgroups asks about: it gets none of this user's groups, as the
            // daemon answers (`handler::groups_of_user`).
            if local_name(text(1)?) && !gids.is_empty() {
                log::warn!(
                    "NSS map: groups of {} not given: {} is a local account now, which shadows \
                     the oidcd user of that name",
                    text(1)?,
                    text(1)?
                );
                gids.clear();
            }
            let user = UserEntry {
                name: text(1)?,
                uid: r.get(2)?,
                gid: r.get(3)?,
                gecos: text(4)?,
                dir: text(5)?,
                shell: text(6)?,
                gids: &gids,
            };
            match enc.add_user(&user) {
                Ok(()) => {
                    counts.users += 1;
                    if let Err(e) = enc.add_group(user.name, user.gid, []) {
                        log::warn!("NSS map: private group of {:?} left out: {e}", user.name);
                    }
                    drain(enc)?;
                }
                Err(e) => {
                    counts.skipped += 1;
                    log::warn!("NSS map: user {:?} left out: {e}", user.name);
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::nss_map::MapView;
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::identity::local::LocalAccounts;
    use crate::store::NewIds;

    /// The map holds what the store's lookups answer: users by name and UID, provider and
    /// private groups by name and GID with sorted members, and initgroups' GIDs (with the
    /// admin's local groups).
    #[test]
    fn map_matches_the_store() {
        let mut store = Store::open_in_memory().unwrap();
        let cfg = Config::default();
        let local = LocalAccounts::from_paths(
            Path::new("/nonexistent/passwd"),
            Path::new("/nonexistent/group"),
        );
        let ctx = NewIds {
            issuer: "https://idp.test",
            cfg: &cfg,
            local: &local,
            now: 1,
        };
        let entries = vec![
            json!({"sub": "a", "preferred_username": "alice", "name": "Alice",
                   "groups": ["team", "admins"]}),
            json!({"sub": "b", "preferred_username": "bob", "groups": ["team"]}),
            json!({"sub": "c", "preferred_username": "carol"}),
        ];
        store.import(&ctx, &entries).unwrap().unwrap();
        store
            .conn
            .execute("UPDATE users SET is_admin = 1 WHERE name = 'alice'", [])
            .unwrap();

        let mut enc = MapEncoder::new(77);
        let mut bytes = vec![0u8; oidc_proto::nss_map::HEADER_LEN];
        let counts = store
            .fill_map(&mut enc, &[27], &|_| false, &mut bytes)
            .unwrap();
        assert_eq!((counts.users, counts.groups, counts.skipped), (3, 2, 0));
        enc.write_tail(&mut bytes).unwrap();
        let header = enc.header(1, i64::MAX).unwrap();
        bytes[..header.len()].copy_from_slice(&header);
        let (_, _, map) = MapView::from_file(&bytes).unwrap();

        for name in ["alice", "bob", "carol"] {
            let want = store.user_by_name(name).unwrap().unwrap();
            let got = map.user_by_name(name.as_bytes()).unwrap().unwrap();
            assert_eq!((got.uid, got.gid), (want.uid, want.gid));
            assert_eq!(got.field(2), want.gecos.as_bytes());
            assert_eq!(got.field(3), want.home.as_bytes());
            assert_eq!(map.user_by_uid(want.uid).unwrap(), Some(got));
            let (mut gids, admin) = store.groups_of_user(name).unwrap().unwrap();
            if admin {
                gids.push(27);
            }
            gids.sort_unstable();
            assert_eq!(got.gids().collect::<Vec<_>>(), gids, "{name}");
            let private = map.group_by_name(name.as_bytes()).unwrap().unwrap();
            assert_eq!((private.gid, private.members), (want.gid, 0));
        }
        for name in ["team", "admins"] {
            let want = store.group_by_name(name).unwrap().unwrap();
            let got = map.group_by_name(name.as_bytes()).unwrap().unwrap();
            assert_eq!(got.gid, want.gid);
            let members: Vec<String> = got
                .member_names()
                .iter()
                .map(|m| String::from_utf8(m.to_vec()).unwrap())
                .collect();
            assert_eq!(members, want.members);
            assert_eq!(map.group_by_gid(want.gid).unwrap(), Some(got));
        }
        assert_eq!(map.user_by_name(b"dave").unwrap(), None);
    }
}
