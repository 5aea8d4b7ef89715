//! The bookkeeping of provisional passwd entries (see `State::provisional_user`): which names
//! have one, with which UID, until when. No I/O, so the rules are unit-tested here.
//!
//! - An entry lives `login.provisional_ttl`, or longer while a login that began with it is in
//!   progress (it is *pinned* until that login's deadline): sshd holds the UID for the whole
//!   connection, and the login must end with that UID or be refused.
//! - At most `login.max_provisional_entries` live at once. When full, the newest name evicts
//!   the oldest entry that no login holds: a scan of SSH user names cannot use up the table
//!   against a user who connects after it (a rate limit could be).
//! - No two live entries share a UID (the allocator asks [`Table::uid_in_use`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oidc_proto::types::UnixUser;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    user: UnixUser,
    created: Instant,
    expires: Instant,
    pinned_until: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now < self.expires || self.pinned(now)
    }

    fn pinned(&self, now: Instant) -> bool {
        self.pinned_until.is_some_and(|p| now < p)
    }
}

/// What [`Table::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Added.
    Added,
    /// Added in place of the oldest entry no login held, which is returned.
    Evicted(UnixUser),
    /// Every entry is held by a login in progress: nothing added.
    Full,
}

/// The live entries.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<String, Entry>,
}

impl Table {
    /// Drops entries that are neither fresh nor pinned.
    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.live(now));
    }

    /// The live entry of `name`.
    pub fn get(&self, name: &str, now: Instant) -> Option<&UnixUser> {
        self.entries
            .get(name)
            .filter(|e| e.live(now))
            .map(|e| &e.user)
    }

    /// The live entry with UID `uid`.
    pub fn by_uid(&self, uid: u32, now: Instant) -> Option<&UnixUser> {
        self.entries
            .values()
            .find(|e| e.user.uid == uid && e.live(now))
            .map(|e| &e.user)
    }

    /// Whether a live entry has UID (and so GID) `id`.
    pub fn uid_in_use(&self, id: u32, now: Instant) -> bool {
        self.by_uid(id, now).is_some()
    }

    /// Adds `user` for `ttl`, keeping at most `cap` live entries (see the module docs).
    pub fn insert(&mut self, user: UnixUser, now: Instant, ttl: Duration, cap: usize) -> Inserted {
        self.expire(now);
        let mut outcome = Inserted::Added;
        if self.entries.len() >= cap.max(1) && !self.entries.contains_key(&user.name) {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| !e.pinned(now))
                .min_by_key(|(_, e)| e.created)
                .map(|(name, _)| name.clone());
            match oldest.and_then(|name| self.entries.remove(&name)) {
                Some(gone) => outcome = Inserted::Evicted(gone.user),
                None => return Inserted::Full,
            }
        }
        self.entries.insert(
            user.name.clone(),
            Entry {
                user,
                created: now,
                expires: now + ttl,
                pinned_until: None,
            },
        );
        outcome
    }

    /// Keeps `name`'s entry alive at least until `until` (a login that began with it runs
    /// until then). Its UID, or `None` when there is no live entry.
    pub fn pin(&mut self, name: &str, until: Instant, now: Instant) -> Option<u32> {
        let e = self.entries.get_mut(name).filter(|e| e.live(now))?;
        e.pinned_until = Some(e.pinned_until.map_or(until, |p| p.max(until)));
        Some(e.user.uid)
    }

    /// Removes `name`'s entry (it became a real user, or its UID went to one).
    pub fn remove(&mut self, name: &str) -> Option<UnixUser> {
        self.entries.remove(name).map(|e| e.user)
    }

    /// Name and UID of every live entry.
    pub fn live_uids(&self, now: Instant) -> Vec<(String, u32)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.live(now))
            .map(|(n, e)| (n.clone(), e.user.uid))
            .collect()
    }

    /// Live entries.
    pub fn len(&self, now: Instant) -> usize {
        self.entries.values().filter(|e| e.live(now)).count()
    }

    /// Whether there is no live entry.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn user(name: &str, uid: u32) -> UnixUser {
        UnixUser {
            name: name.into(),
            uid,
            gid: uid,
            gecos: String::new(),
            home: format!("/home/{name}"),
            shell: "/bin/sh".into(),
        }
    }

    /// A scan of names fills the table; the next name still gets an entry, in place of the
    /// oldest one: the table cannot be used up against a user who comes later.
    #[test]
    fn newest_name_evicts_the_oldest_entry() {
        let t0 = Instant::now();
        let mut t = Table::default();
        for i in 0..3 {
            let now = t0 + Duration::from_secs(i);
            assert_eq!(
                t.insert(user(&format!("scan{i}"), 100 + i as u32), now, TTL, 3),
                Inserted::Added
            );
        }
        let now = t0 + Duration::from_secs(10);
        assert_eq!(
            t.insert(user("alice", 200), now, TTL, 3),
            Inserted::Evicted(user("scan0", 100))
        );
        assert_eq!(t.get("alice", now).map(|u| u.uid), Some(200));
        assert!(t.get("scan0", now).is_none());
        assert_eq!(t.len(now), 3);
    }

    /// An entry a login holds is never evicted, and outlives its TTL until the login's end;
    /// when every entry is held, a new name gets none.
    #[test]
    fn pinned_entries_stay() {
        let t0 = Instant::now();
        let mut t = Table::default();
        t.insert(user("alice", 1), t0, TTL, 2);
        t.insert(user("bob", 2), t0 + Duration::from_secs(1), TTL, 2);
        assert_eq!(t.pin("alice", t0 + Duration::from_secs(900), t0), Some(1));
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            t.insert(user("carol", 3), later, TTL, 2),
            Inserted::Evicted(user("bob", 2))
        );
        t.pin("carol", t0 + Duration::from_secs(900), later);
        assert_eq!(t.insert(user("dave", 4), later, TTL, 2), Inserted::Full);
        // Past the TTL, the pinned entries live on until the logins' deadline.
        let past_ttl = t0 + Duration::from_secs(600);
        t.expire(past_ttl);
        assert_eq!(t.get("alice", past_ttl).map(|u| u.uid), Some(1));
        assert!(t.uid_in_use(3, past_ttl));
        let past_pin = t0 + Duration::from_secs(901);
        t.expire(past_pin);
        assert!(t.is_empty(past_pin));
        assert_eq!(t.pin("alice", past_pin + TTL, past_pin), None);
    }

    /// Expired entries are not served and do not hold their UID.
    #[test]
    fn expired_entries_are_gone() {
        let t0 = Instant::now();
        let mut t = Table::default();
        t.insert(user("alice", 7), t0, TTL, 10);
        assert_eq!(t.by_uid(7, t0).map(|u| u.name.as_str()), Some("alice"));
        let later = t0 + TTL;
        assert!(t.get("alice", later).is_none());
        assert!(!t.uid_in_use(7, later));
        assert_eq!(t.live_uids(t0), vec![("alice".to_string(), 7)]);
        assert_eq!(t.remove("alice").map(|u| u.uid), Some(7));
    }
}
