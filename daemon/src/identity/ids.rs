//! Deterministic ID allocation: the same person gets the same UID on every host with the same
//! configuration, because the UID is a hash of who they are (issuer and subject), not of the
//! order in which hosts saw them.
//!
//! The hash is FNV-1a 64, spelled out here so that no compiler or library upgrade can change
//! it. A taken candidate is skipped by rehashing with an attempt counter, so two colliding
//! identities still get stable, well-spread IDs.

use crate::config::{IdRange, is_reserved_id};

/// Candidates tried before giving up.
pub const MAX_PROBES: u32 = 1000;

/// What the ID is for; part of the hashed input so a user's UID and a group's GID differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A UID (and its user-private GID).
    User,
    /// A provider group's GID.
    Group,
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator byte that cannot occur in UTF-8 keeps ("ab","c") and ("a","bc") apart.
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The `attempt`-th candidate for `key` in `range`.
pub fn candidate(issuer: &str, kind: IdKind, key: &str, attempt: u32, range: IdRange) -> u32 {
    let tag: &[u8] = match kind {
        IdKind::User => b"user",
        IdKind::Group => b"group",
    };
    let attempt_bytes = attempt.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![tag, issuer.as_bytes(), key.as_bytes()];
    if attempt > 0 {
        parts.push(&attempt_bytes);
    }
    let h = fnv1a64(&parts);
    let offset = h % range.len();
    // Cannot overflow: offset < range.len() and min + len - 1 = max fits in u32.
    range.min.saturating_add(u32::try_from(offset).unwrap_or(0))
}

/// The first candidate that is not reserved and not `taken`.
pub fn allocate(
    issuer: &str,
    kind: IdKind,
    key: &str,
    range: IdRange,
    mut taken: impl FnMut(u32) -> bool,
) -> Option<u32> {
    (0..MAX_PROBES)
        .map(|attempt| candidate(issuer, kind, key, attempt, range))
        .find(|&id| !is_reserved_id(id) && !taken(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: IdRange = IdRange {
        min: 200_000,
        max: 299_999,
    };

    /// Published FNV-1a test vectors hold, so the hash is the documented one.
    #[test]
    fn fnv_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
    }

    /// The same identity gets the same ID every time; different ones spread out.
    #[test]
    fn deterministic_and_in_range() {
        let a = candidate("https://idp", IdKind::User, "alice", 0, R);
        assert_eq!(a, candidate("https://idp", IdKind::User, "alice", 0, R));
        assert!(R.contains(a));
        assert_ne!(a, candidate("https://other", IdKind::User, "alice", 0, R));
        assert_ne!(a, candidate("https://idp", IdKind::Group, "alice", 0, R));
        // Pinned: a change to the hash would move every user's UID on upgrade.
        assert_eq!(
            candidate("https://idp.example.com", IdKind::User, "alice", 0, R),
            PINNED
        );
    }
    const PINNED: u32 = 233_907;

    /// Collisions probe to the next candidate, which is again deterministic.
    #[test]
    fn probing_skips_taken_and_reserved() {
        let first = allocate("i", IdKind::User, "x", R, |_| false).unwrap();
        let second = allocate("i", IdKind::User, "x", R, |id| id == first).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, candidate("i", IdKind::User, "x", 1, R));
        assert_eq!(allocate("i", IdKind::User, "x", R, |_| true), None);
        let low = IdRange {
            min: 61_000,
            max: 66_000,
        };
        for k in 0..200 {
            let id = allocate("i", IdKind::User, &k.to_string(), low, |_| false).unwrap();
            assert!(!is_reserved_id(id), "{id}");
        }
    }
}
