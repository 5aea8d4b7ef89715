//! ID allocation that every host of a fleet agrees on (docs/decisions/0001-fleet-ids.md).
//!
//! An identity's ID is a function of the configuration and the fleet's ID map alone, never of
//! what else a host has seen:
//! 1. its pin, when an imported ID map (`oidcctl import`) names it;
//! 2. else its claim, under `uid_source`/`gid_source = "claim"`;
//! 3. else the first candidate hashed from (kind, issuer, key) that is neither reserved nor
//!    pinned by the map to another identity. Both exclusions are the same on every host with
//!    the same configuration and map, so the probing they cause is too.
//!
//! The host's own state is then only *checked*: when another identity or a local account holds
//! that ID here, the identity is refused ([`Allocation::Taken`]) with a message naming both and
//! how to pin one. It never gets a next-free ID, which would depend on arrival order and differ
//! between hosts.
//!
//! The hash is FNV-1a 64 followed by MurmurHash3's 64-bit finalizer, both spelled out here so
//! that no compiler or library upgrade can change them. FNV-1a alone was used until
//! 2026-12-05: its low bits, all that a range of 2^27 IDs keeps, mix poorly, so subjects that
//! differ only in their last characters collided far more often than chance (24 pairs among
//! `u0` ... `u11999` where chance gives 0.5: `finalized_hash_spreads_sequential_subjects`).
//! Identities made before keep their IDs; `oidcctl doctor` lists them as differing from the
//! rule, and a fleet ID map settles them (docs/decisions/0001-fleet-ids.md).

use crate::config::{IdRange, is_reserved_id};

/// Candidates tried before giving up.
pub const MAX_PROBES: u32 = 1000;

/// What the ID is for; part of the hashed input so a user's UID and a group's GID differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A UID (and its user-private GID).
    User,
    /// A provider group's GID.
    Group,
}

impl IdKind {
    /// `user` or `group`, as stored and in ID maps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }

    /// "UID" or "GID", for messages.
    pub fn id_name(self) -> &'static str {
        match self {
            Self::User => "UID",
            Self::Group => "GID",
        }
    }
}

/// Whom an ID is for: an identity at its provider. `key` is stable across renames: a user's
/// subject, a group's claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who<'a> {
    /// The provider's issuer.
    pub issuer: &'a str,
    /// User or group.
    pub kind: IdKind,
    /// Subject or group claim value.
    pub key: &'a str,
}

/// What the allocator asks of a host: the fleet's ID map as imported there, and who holds an
/// ID there. The store answers from SQLite; the fleet simulation from memory.
pub trait HostIds {
    /// A failure to look (the database).
    type Error;
    /// The ID the fleet's ID map pins `who` to.
    fn pin_of(&mut self, who: &Who<'_>) -> Result<Option<u32>, Self::Error>;
    /// Whether the fleet's ID map pins `id` to an identity other than `who`.
    fn pinned_to_other(&mut self, id: u32, who: &Who<'_>) -> Result<bool, Self::Error>;
    /// Who holds `id` on this host other than `who` (a local account or group, another
    /// identity's user or group), said for a message.
    fn holder(&mut self, id: u32, who: &Who<'_>) -> Result<Option<String>, Self::Error>;
}

/// Where an identity's fleet ID comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The fleet's ID map.
    Pinned,
    /// The provider's claim.
    Claim,
    /// The hash rule: candidate `attempt` (0 unless reserved or pinned IDs were skipped).
    Rule {
        /// The candidate's number.
        attempt: u32,
    },
}

/// The allocator's answer for one identity on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// The identity's ID, here and on every host with the same configuration and map.
    Assigned {
        /// The ID.
        id: u32,
        /// Where it comes from.
        origin: Origin,
    },
    /// The identity's ID is held here by someone else: refused here.
    Taken {
        /// The ID.
        id: u32,
        /// Where it comes from.
        origin: Origin,
        /// Who holds it.
        holder: String,
        /// Under the hash rule: what the identity would get everywhere if the map pinned `id`
        /// to its holder.
        next: Option<u32>,
    },
    /// No ID can be given (a claimed ID outside the range or reserved, or no candidate left):
    /// the reason.
    Invalid(String),
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

/// MurmurHash3's 64-bit finalizer: every input bit reaches every output bit, the low ones
/// included.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The `attempt`-th candidate for `key` in `range`.
pub fn candidate(issuer: &str, kind: IdKind, key: &str, attempt: u32, range: IdRange) -> u32 {
    let attempt_bytes = attempt.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![kind.as_str().as_bytes(), issuer.as_bytes(), key.as_bytes()];
    if attempt > 0 {
        parts.push(&attempt_bytes);
    }
    let h = fmix64(fnv1a64(&parts));
    let offset = h % range.len();
    // Cannot overflow: offset < range.len() and min + len - 1 = max fits in u32.
    range.min.saturating_add(u32::try_from(offset).unwrap_or(0))
}

/// The identity's fleet ID: from the map, the claim (`claimed`, when the source is a claim) or
/// the hash rule; independent of what this host holds.
pub fn fleet_id<H: HostIds>(
    who: &Who<'_>,
    range: IdRange,
    claimed: Option<u32>,
    host: &mut H,
) -> Result<Result<(u32, Origin), String>, H::Error> {
    if let Some(id) = host.pin_of(who)? {
        return Ok(Ok((id, Origin::Pinned)));
    }
    let what = who.kind.id_name();
    if let Some(id) = claimed {
        if !range.contains(id) || is_reserved_id(id) {
            return Ok(Err(format!(
                "{what} {id} from the claim is outside this host's range {}-{} or reserved",
                range.min, range.max
            )));
        }
        return Ok(Ok((id, Origin::Claim)));
    }
    for attempt in 0..MAX_PROBES {
        let id = candidate(who.issuer, who.kind, who.key, attempt, range);
        if is_reserved_id(id) || host.pinned_to_other(id, who)? {
            continue;
        }
        return Ok(Ok((id, Origin::Rule { attempt })));
    }
    Ok(Err(format!(
        "no {what} left after {MAX_PROBES} candidates: widen the range in [mapping]"
    )))
}

/// The identity's fleet ID, checked against this host: assigned, or refused because someone
/// else holds it here.
pub fn allocate<H: HostIds>(
    who: &Who<'_>,
    range: IdRange,
    claimed: Option<u32>,
    host: &mut H,
) -> Result<Allocation, H::Error> {
    let (id, origin) = match fleet_id(who, range, claimed, host)? {
        Ok(found) => found,
        Err(why) => return Ok(Allocation::Invalid(why)),
    };
    let Some(holder) = host.holder(id, who)? else {
        return Ok(Allocation::Assigned { id, origin });
    };
    let next = match origin {
        Origin::Rule { .. } => {
            let mut pinned = PinnedAlso { host, id };
            match fleet_id(who, range, None, &mut pinned)? {
                Ok((n, _)) => Some(n),
                Err(_) => None,
            }
        }
        Origin::Pinned | Origin::Claim => None,
    };
    Ok(Allocation::Taken {
        id,
        origin,
        holder,
        next,
    })
}

/// A host whose map also pins `id` to someone else: what pinning the holder would change.
struct PinnedAlso<'h, H> {
    host: &'h mut H,
    id: u32,
}

impl<H: HostIds> HostIds for PinnedAlso<'_, H> {
    type Error = H::Error;

    fn pin_of(&mut self, who: &Who<'_>) -> Result<Option<u32>, H::Error> {
        self.host.pin_of(who)
    }

    fn pinned_to_other(&mut self, id: u32, who: &Who<'_>) -> Result<bool, H::Error> {
        Ok(id == self.id || self.host.pinned_to_other(id, who)?)
    }

    fn holder(&mut self, id: u32, who: &Who<'_>) -> Result<Option<String>, H::Error> {
        self.host.holder(id, who)
    }
}

/// Pins for every identity of `entries`, in this order, each the fleet ID its range, claim and
/// the pins before it give (pinned IDs are skipped): a complete map without collisions, the
/// same for the same list, whatever any host holds. What `oidcctl idmap build` writes for a
/// fleet's whole directory; with it applied first, no two identities meet on one ID anywhere.
/// `Err` for an identity that cannot have one (its claimed ID already pinned, out of range).
pub fn pin_in_order<'a>(
    entries: impl IntoIterator<Item = (Who<'a>, IdRange, Option<u32>)>,
) -> Vec<Result<u32, String>> {
    let mut pinned = Pinned::default();
    entries
        .into_iter()
        .map(|(who, range, claimed)| {
            let Ok(found) = fleet_id(&who, range, claimed, &mut pinned);
            let (id, _) = found?;
            if let Some(other) = pinned.by_id.get(&id) {
                return Err(format!(
                    "{} {id} is already pinned to the {} {:?} at {}",
                    who.kind.id_name(),
                    other.0.as_str(),
                    other.2,
                    other.1
                ));
            }
            pinned
                .by_id
                .insert(id, (who.kind, who.issuer.to_string(), who.key.to_string()));
            Ok(id)
        })
        .collect()
}

/// The pins made so far by [`pin_in_order`].
#[derive(Default)]
struct Pinned {
    by_id: std::collections::HashMap<u32, (IdKind, String, String)>,
}

impl HostIds for Pinned {
    type Error = std::convert::Infallible;

    fn pin_of(&mut self, _: &Who<'_>) -> Result<Option<u32>, Self::Error> {
        Ok(None)
    }

    fn pinned_to_other(&mut self, id: u32, _: &Who<'_>) -> Result<bool, Self::Error> {
        Ok(self.by_id.contains_key(&id))
    }

    fn holder(&mut self, _: u32, _: &Who<'_>) -> Result<Option<String>, Self::Error> {
        Ok(None)
    }
}

/// A placeholder UID for sshd's provisional entry of `name` (no subject is known before the
/// login): the first candidate hashed from the name that is neither reserved nor `taken`.
/// It is not the identity's UID unless they happen to be equal (see `login.ssh_first_uid`).
pub fn provisional(
    issuer: &str,
    name: &str,
    range: IdRange,
    mut taken: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let key = format!("name:{name}");
    (0..MAX_PROBES)
        .map(|attempt| candidate(issuer, IdKind::User, &key, attempt, range))
        .find(|&id| !is_reserved_id(id) && !taken(id))
}

/// The message for an identity refused because its ID is held here (logged, and shown by
/// `oidcctl import`): both identities, and how to pin one.
pub fn taken_message(what: &str, id: u32, holder: &str, next: Option<u32>, kind: IdKind) -> String {
    let idn = kind.id_name();
    match next {
        Some(next) => format!(
            "{idn} {id}, the fleet {idn} of {what}, is held here by {holder}: refused here (every \
             host refuses the later of two identities whose fleet {idn} is the same, never giving \
             either another number). To keep both, pin the holder: `oidcctl export` here and \
             `oidcctl import` of that map on every host; {what} then gets {next} everywhere (or \
             pin {what} to a free {idn} with `oidcctl idmap seal`)"
        ),
        None => format!(
            "{idn} {id}, the {idn} of {what} (from the ID map or the provider's claim), is held \
             here by {holder}: refused here; give one of them another {idn} (the claim, or a pin \
             in the fleet's ID map)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use super::*;

    const R: IdRange = IdRange {
        min: 200_000,
        max: 299_999,
    };

    /// A host in memory: pins and holders.
    #[derive(Default)]
    struct Host {
        pins: HashMap<(IdKind, String, String), u32>,
        held: HashMap<u32, String>,
    }

    impl HostIds for Host {
        type Error = Infallible;
        fn pin_of(&mut self, w: &Who<'_>) -> Result<Option<u32>, Infallible> {
            Ok(self
                .pins
                .get(&(w.kind, w.issuer.into(), w.key.into()))
                .copied())
        }
        fn pinned_to_other(&mut self, id: u32, w: &Who<'_>) -> Result<bool, Infallible> {
            Ok(self.pins.iter().any(|((k, i, key), &p)| {
                p == id && (*k, i.as_str(), key.as_str()) != (w.kind, w.issuer, w.key)
            }))
        }
        fn holder(&mut self, id: u32, _: &Who<'_>) -> Result<Option<String>, Infallible> {
            Ok(self.held.get(&id).cloned())
        }
    }

    fn user(key: &str) -> Who<'_> {
        Who {
            issuer: "i",
            kind: IdKind::User,
            key,
        }
    }

    fn alloc(host: &mut Host, key: &str) -> Allocation {
        let Ok(a) = allocate(&user(key), R, None, host);
        a
    }

    /// Subjects that differ only in their last characters spread like random ones. FNV-1a alone
    /// gave 24 colliding pairs among these 12,000 in the default range (one issuer, where
    /// chance gives 0.5); the test suite's import of them failed whenever its provider's port
    /// made that issuer.
    #[test]
    fn finalized_hash_spreads_sequential_subjects() {
        let range = crate::config::Config::default().mapping.uids;
        let collisions = |hash: &dyn Fn(&[&[u8]]) -> u64| {
            let mut seen = std::collections::HashSet::new();
            (0..12_000)
                .filter(|i| {
                    let key = format!("u{i}");
                    let h = hash(&[b"user", b"http://127.0.0.1:42351", key.as_bytes()]);
                    !seen.insert(h % range.len())
                })
                .count()
        };
        assert_eq!(
            collisions(&fnv1a64),
            24,
            "the old hash's weakness, kept as evidence"
        );
        assert!(collisions(&|p| fmix64(fnv1a64(p))) <= 3);
    }

    /// Published FNV-1a test vectors hold, so the hash is the documented one.
    #[test]
    fn fnv_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        // The finalizer's fixed point and its first value, as MurmurHash3 computes them.
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    /// The same identity gets the same ID every time; different ones spread out.
    #[test]
    fn deterministic_and_in_range() {
        let a = candidate("https://idp", IdKind::User, "alice", 0, R);
        assert_eq!(a, candidate("https://idp", IdKind::User, "alice", 0, R));
        assert!(R.contains(a));
        assert_ne!(a, candidate("https://other", IdKind::User, "alice", 0, R));
        assert_ne!(a, candidate("https://idp", IdKind::Group, "alice", 0, R));
        // Pinned: a change to the hash moves every new identity's UID away from what other
        // hosts give it (it changed once, when the finalizer was added).
        assert_eq!(
            candidate("https://idp.example.com", IdKind::User, "alice", 0, R),
            PINNED
        );
    }
    const PINNED: u32 = 207_687;

    /// An identity's ID does not depend on what the host holds: a held ID refuses it, naming
    /// the holder and what pinning the holder would give, instead of probing to a free one.
    #[test]
    fn a_held_id_refuses_instead_of_probing() {
        let mut host = Host::default();
        let first = candidate("i", IdKind::User, "x", 0, R);
        assert_eq!(
            alloc(&mut host, "x"),
            Allocation::Assigned {
                id: first,
                origin: Origin::Rule { attempt: 0 }
            }
        );
        host.held.insert(first, "the user y".into());
        let Allocation::Taken {
            id, holder, next, ..
        } = alloc(&mut host, "x")
        else {
            panic!("not refused")
        };
        assert_eq!((id, holder.as_str()), (first, "the user y"));
        assert_eq!(next, Some(candidate("i", IdKind::User, "x", 1, R)));
    }

    /// The map's pins decide first; a pin held by another identity is skipped by the rule, the
    /// same way on every host that has the map.
    #[test]
    fn pins_decide_and_are_skipped_by_others() {
        let mut host = Host::default();
        let first = candidate("i", IdKind::User, "x", 0, R);
        host.pins
            .insert((IdKind::User, "i".into(), "y".into()), first);
        assert_eq!(
            alloc(&mut host, "x"),
            Allocation::Assigned {
                id: candidate("i", IdKind::User, "x", 1, R),
                origin: Origin::Rule { attempt: 1 }
            }
        );
        assert_eq!(
            alloc(&mut host, "y"),
            Allocation::Assigned {
                id: first,
                origin: Origin::Pinned
            }
        );
    }

    /// A claimed ID is used as it is, inside the range and not reserved.
    #[test]
    fn claims_are_checked() {
        let mut host = Host::default();
        let Ok(a) = allocate(&user("x"), R, Some(250_000), &mut host);
        assert_eq!(
            a,
            Allocation::Assigned {
                id: 250_000,
                origin: Origin::Claim
            }
        );
        let Ok(a) = allocate(&user("x"), R, Some(5), &mut host);
        assert!(matches!(a, Allocation::Invalid(_)), "{a:?}");
        host.held.insert(250_000, "the user y".into());
        let Ok(a) = allocate(&user("x"), R, Some(250_000), &mut host);
        assert!(matches!(a, Allocation::Taken { next: None, .. }), "{a:?}");
    }

    /// Pinning a list in order gives every identity an ID no earlier one has, the same for the
    /// same list: a colliding pair's second gets its next candidate.
    #[test]
    fn pinning_in_order_never_collides() {
        let mut seen = HashMap::new();
        let (x, y) = (0..)
            .find_map(|i| {
                let k = format!("k{i}");
                seen.insert(candidate("i", IdKind::User, &k, 0, R), k.clone())
                    .map(|other| (other, k))
            })
            .unwrap();
        let ids = pin_in_order([(user(&x), R, None), (user(&y), R, None)]);
        assert_eq!(
            ids,
            [
                Ok(candidate("i", IdKind::User, &x, 0, R)),
                Ok(candidate("i", IdKind::User, &y, 1, R))
            ]
        );
        let claimed = pin_in_order([(user(&x), R, Some(250_000)), (user(&y), R, Some(250_000))]);
        assert!(claimed[1].is_err(), "{claimed:?}");
    }

    /// Reserved IDs are skipped (the same on every host); the provisional placeholder skips
    /// taken ones too.
    #[test]
    fn reserved_ids_are_skipped() {
        let low = IdRange {
            min: 61_000,
            max: 66_000,
        };
        let mut host = Host::default();
        for k in 0..200 {
            let Ok(found) = fleet_id(&user(&k.to_string()), low, None, &mut host);
            let (id, _) = found.unwrap();
            assert!(!is_reserved_id(id), "{id}");
        }
        let p = provisional("i", "alice", R, |_| false).unwrap();
        let q = provisional("i", "alice", R, |id| id == p).unwrap();
        assert_ne!(p, q);
        assert_eq!(provisional("i", "alice", R, |_| true), None);
    }
}
