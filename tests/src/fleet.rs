//! Fleets of test hosts (issue 13): the fleet rule's first UID candidate, computed here as
//! `daemon/src/identity/ids.rs` does (FNV-1a and MurmurHash3's finalizer are public; the tests
//! check their prediction against the daemon's answer), and a search for two subjects whose UIDs collide, as an
//! administrator's directory eventually holds.

use std::collections::HashMap;

/// The default `[mapping]` UID range (`uid_min`, `uid_max`).
pub const UIDS: (u32, u32) = (1_879_048_192, 2_013_265_919);

fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
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

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The first UID candidate of subject `sub` at `issuer` in `range`: the identity's UID on
/// every host where nobody holds it.
pub fn first_uid(issuer: &str, sub: &str, (min, max): (u32, u32)) -> u32 {
    let h = fmix64(fnv1a64(&[b"user", issuer.as_bytes(), sub.as_bytes()]));
    min + (h % (u64::from(max) - u64::from(min) + 1)) as u32
}

/// Two subjects (`fleet-N`) whose first UID candidates at `issuer` are the same (a birthday
/// search: about 15,000 tries in the default range).
pub fn colliding_subjects(issuer: &str, range: (u32, u32)) -> (String, String, u32) {
    let mut seen = HashMap::new();
    for i in 0.. {
        let sub = format!("fleet-{i}");
        let uid = first_uid(issuer, &sub, range);
        if let Some(other) = seen.insert(uid, sub.clone()) {
            return (other, sub, uid);
        }
    }
    unreachable!("the search ends")
}
