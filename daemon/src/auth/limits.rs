//! Which logins in progress make room for a new one. Pure: the registry ([`super::login`])
//! applies the answer under its lock, before the provider is asked for a code.
//!
//! Before authentication nothing tells alice from a stranger who typed `ssh alice@host`, and a
//! device authorization request does not even carry the name: a limit per claimed name protects
//! nothing at the provider and can only be used against the person named. So limits are by
//! *source* (PAM_RHOST, or the PAM service for local logins), and a full limit never refuses the
//! newcomer; it evicts an older login instead:
//! - a source at `max_per_source` loses its own oldest login (a user retrying behind abandoned
//!   attempts gets in; a flood from one address only displaces itself);
//! - with `max_total` logins in progress, the source holding the most loses its oldest (ties:
//!   the oldest login of those sources), so idle attempts from a few addresses cannot keep
//!   anyone out, and a newcomer's single login is the last to go.
//!
//! A login whose tokens arrived and is being decided is never evicted.

use std::collections::HashMap;
use std::time::Instant;

/// A login as the limits see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its id.
    pub id: String,
    /// Its source.
    pub source: String,
    /// When it was started.
    pub started: Instant,
    /// Whether it may be evicted (not while its tokens are being checked).
    pub evictable: bool,
}

/// Why a login is evicted (for its user and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its source started more than `max_logins_per_source`.
    SourceFull,
    /// More than `max_logins_in_progress` in all.
    TotalFull,
}

/// The logins to evict, in order, so that one more from `source` fits; `None` when it cannot
/// fit because every login that would have to go is being decided.
pub fn make_room(
    held: &[Held],
    source: &str,
    max_total: usize,
    max_per_source: usize,
) -> Option<Vec<(String, Reason)>> {
    let mut left: Vec<&Held> = held.iter().collect();
    let mut out = Vec::new();
    let oldest_of = |left: &[&Held], src: &str| {
        left.iter()
            .filter(|h| h.source == src && h.evictable)
            .min_by_key(|h| h.started)
            .map(|h| h.id.clone())
    };
    while left.iter().filter(|h| h.source == source).count() >= max_per_source.max(1) {
        let id = oldest_of(&left, source)?;
        left.retain(|h| h.id != id);
        out.push((id, Reason::SourceFull));
    }
    while left.len() >= max_total.max(1) {
        let mut per_source: HashMap<&str, usize> = HashMap::new();
        for h in left.iter().filter(|h| h.evictable) {
            *per_source.entry(h.source.as_str()).or_default() += 1;
        }
        let most = per_source.values().copied().max()?;
        let id = left
            .iter()
            .filter(|h| h.evictable && per_source.get(h.source.as_str()) == Some(&most))
            .min_by_key(|h| h.started)
            .map(|h| h.id.clone())?;
        left.retain(|h| h.id != id);
        out.push((id, Reason::TotalFull));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn held(specs: &[(&str, &str, u64)]) -> Vec<Held> {
        let t0 = Instant::now();
        specs
            .iter()
            .map(|&(id, source, at)| Held {
                id: id.into(),
                source: source.into(),
                started: t0 + Duration::from_secs(at),
                evictable: true,
            })
            .collect()
    }

    fn ids(v: Option<Vec<(String, Reason)>>) -> Vec<String> {
        v.unwrap().into_iter().map(|(id, _)| id).collect()
    }

    /// Room left: nobody is evicted.
    #[test]
    fn room_left_evicts_nobody() {
        let h = held(&[("a", "10.0.0.1", 0), ("b", "10.0.0.2", 1)]);
        assert_eq!(ids(make_room(&h, "10.0.0.3", 64, 8)), Vec::<String>::new());
    }

    /// Three idle attempts from the stranger's address, then the real user from the same
    /// address (the scenario on loopback): the oldest attempt goes, the user gets in.
    #[test]
    fn a_full_source_loses_its_own_oldest() {
        let h = held(&[
            ("x1", "127.0.0.1", 0),
            ("x2", "127.0.0.1", 1),
            ("x3", "127.0.0.1", 2),
        ]);
        assert_eq!(ids(make_room(&h, "127.0.0.1", 64, 3)), ["x1"]);
        // Another address is not affected by that source's limit.
        assert_eq!(ids(make_room(&h, "192.0.2.9", 64, 3)), Vec::<String>::new());
    }

    /// The daemon full of idle attempts from a few addresses: a newcomer from elsewhere gets
    /// in, and the address holding the most pays; a lone login is the last to go.
    #[test]
    fn a_full_daemon_evicts_from_the_biggest_source() {
        let mut specs = vec![("alice", "192.0.2.1", 0)];
        let names: Vec<String> = (0..63).map(|i| format!("s{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            let src = if i < 40 { "203.0.113.5" } else { "203.0.113.6" };
            specs.push((n.as_str(), src, 1 + i as u64));
        }
        let h = held(&specs);
        assert_eq!(ids(make_room(&h, "198.51.100.7", 64, 100)), ["s0"]);
        // Sources of one login each: the oldest goes.
        let h = held(&[("a", "1", 5), ("b", "2", 3), ("c", "3", 4)]);
        assert_eq!(ids(make_room(&h, "4", 3, 8)), ["b"]);
    }

    /// A login being decided is never evicted; when nothing else can go, the new one does not
    /// fit.
    #[test]
    fn logins_being_decided_stay() {
        let mut h = held(&[("a", "1", 0), ("b", "1", 1)]);
        h[0].evictable = false;
        assert_eq!(ids(make_room(&h, "1", 8, 2)), ["b"]);
        h[1].evictable = false;
        assert_eq!(make_room(&h, "1", 8, 2), None);
        assert_eq!(make_room(&h, "2", 2, 8), None);
    }

    /// A limit lowered below what is held (a reload) evicts down to it.
    #[test]
    fn lowered_limits_evict_down_to_them() {
        let h = held(&[("a", "1", 0), ("b", "1", 1), ("c", "1", 2)]);
        assert_eq!(ids(make_room(&h, "1", 64, 1)), ["a", "b", "c"]);
        assert_eq!(ids(make_room(&h, "2", 2, 8)), ["a", "b"]);
    }
}
