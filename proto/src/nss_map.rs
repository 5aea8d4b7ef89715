//! The NSS map: a read-only file the daemon writes and `libnss_oidc` maps, so that `getpwnam`,
//! `getpwuid`, `getgrnam`, `getgrgid` and `initgroups` need no round trip to the daemon.
//!
//! Pure code over bytes: [`MapView`] reads, [`MapEncoder`] writes. Every offset and length read
//! from a file is checked; a file that does not add up is an error, never a panic, an endless
//! loop or a read outside the slice (`tests` feeds it hostile bytes, `fuzz/` does too).
//!
//! # Layout (all integers little-endian, offsets from the start of the file)
//! ```text
//!   0  valid_until  i64   unix seconds; after it the module stops trusting the map   [mutable]
//!   8  state        u8    0 current, 1 behind the store, 2 replaced: remap            [mutable]
//!   9  zero         [u8; 7]
//!  16  magic        "oidcmap\0"
//!  24  version u32, header_len u32, generation u64, seed u64, file_len u64
//!  56  four hash tables (offset u32, slots u32): users by name, users by uid,
//!      groups by name, groups by gid
//!  88  records (offset u32, length u32), sshd paths (offset u32, length u32)
//! 104  users u32, groups u32, then zero up to header_len (128)
//! ```
//! Only the first 16 bytes ever change after the file is renamed into place: the daemon
//! rewrites `valid_until` (heartbeat) and `state` with `pwrite`. So a reader keeps a slice of
//! the bytes from [`MUTABLE_LEN`] on ([`MapView::parse`]) and reads the two mutable fields
//! apart, atomically. Everything else is immutable: a new map is a new file renamed over the
//! old one, after which the daemon sets the old file's state to [`STATE_REPLACED`].
//!
//! A hash table is `slots` (a power of two) entries of `(key u32, record u32)`, linearly
//! probed; `record` is an offset into the records section, [`EMPTY`] for a free slot. The key
//! is the UID or GID itself, or a keyed hash of the name ([`hash_name`], seed in the header).
//!
//! A user record: `uid u32, gid u32, ngids u32, blob_len u16, passwd u16, gecos u16, dir u16,
//! shell u16`, then the blob `name\0*\0gecos\0dir\0shell\0` (the four u16 are where each field
//! starts in it), then `ngids` GIDs (u32): the supplementary groups `initgroups` returns. A
//! group record: `gid u32, members u32, blob_len u32`, then the blob `name\0*\0m1\0m2\0…`,
//! then each member name's length (u16), so the members' places follow without scanning.
//! Blobs are copied into glibc's buffer as they are, so each ends in a NUL (checked).

use std::fmt;
use std::ops::Range;

/// Bytes at the start of the file that change after it is in place (`valid_until`, `state`).
pub const MUTABLE_LEN: usize = 16;
/// Where `valid_until` (i64) is.
pub const VALID_UNTIL_OFFSET: usize = 0;
/// Where `state` (u8) is.
pub const STATE_OFFSET: usize = 8;
/// The map is current: hits and misses may be answered from it.
pub const STATE_CURRENT: u8 = 0;
/// The store changed and a new map is being built: ask the daemon (the map only answers if
/// the daemon cannot).
pub const STATE_BEHIND: u8 = 1;
/// A newer file has replaced this one: map the path again.
pub const STATE_REPLACED: u8 = 2;
/// The format's magic bytes, at offset 16.
pub const MAGIC: [u8; 8] = *b"oidcmap\0";
/// The format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 128;
/// A free slot in a hash table.
pub const EMPTY: u32 = u32::MAX;
/// Largest file a reader accepts (a map of 100,000 users and 10,000 groups is about 20 MB).
pub const MAX_FILE_LEN: usize = 1 << 30;

const USER_FIXED: usize = 22;
const GROUP_FIXED: usize = 12;

/// Why a map cannot be read. The module then asks the daemon instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// Shorter than its header or than the header says.
    Truncated,
    /// Not a map (magic bytes).
    BadMagic,
    /// A format version this code does not read.
    Version(u32),
    /// An offset, length or count that does not fit the file.
    Corrupt(&'static str),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the map is truncated"),
            Self::BadMagic => f.write_str("not an oidcd map (bad magic)"),
            Self::Version(v) => write!(f, "map format version {v}, this reader knows {VERSION}"),
            Self::Corrupt(what) => write!(f, "corrupt map: {what}"),
        }
    }
}

impl std::error::Error for MapError {}

/// A hash table's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Table {
    offset: usize,
    slots: usize,
}

/// The parsed header: where everything is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// Increases with each map the daemon writes.
    pub generation: u64,
    seed: u64,
    /// The whole file's length.
    pub file_len: usize,
    users_by_name: Table,
    users_by_uid: Table,
    groups_by_name: Table,
    groups_by_gid: Table,
    records: (usize, usize),
    sshd: (usize, usize),
    /// Number of users.
    pub users: u32,
    /// Number of groups (user-private groups included).
    pub groups: u32,
}

/// A map, read from the bytes after the mutable prefix (`file[MUTABLE_LEN..]`).
#[derive(Debug, Clone, Copy)]
pub struct MapView<'a> {
    body: &'a [u8],
    layout: Layout,
}

/// A user as stored: the blob holds the five passwd strings, each ending in NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// UID.
    pub uid: u32,
    /// Primary GID.
    pub gid: u32,
    /// `name\0passwd\0gecos\0dir\0shell\0`; its last byte is NUL.
    pub blob: &'a [u8],
    /// Where passwd, gecos, dir and shell start in `blob` (the name starts at 0); each is
    /// inside `blob`.
    pub fields: [usize; 4],
    gids: &'a [u8],
}

/// A group as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecord<'a> {
    /// GID.
    pub gid: u32,
    /// Number of members.
    pub members: usize,
    /// `name\0passwd\0member\0…`; its last byte is NUL.
    pub blob: &'a [u8],
    /// Each member name's length, u16 little-endian.
    lens: &'a [u8],
}

impl<'a> MapView<'a> {
    /// Reads the header of `body` (the file without its first [`MUTABLE_LEN`] bytes) and checks
    /// that every section lies inside the file.
    pub fn parse(body: &'a [u8]) -> Result<Self, MapError> {
        let layout = parse_layout(body, body.len())?;
        Ok(Self { body, layout })
    }

    /// A view of `body` with a layout [`MapView::parse`] read from the same bytes earlier, so a
    /// lookup need not read the header again. Every access is checked all the same: a layout
    /// that does not fit `body` gives errors, never a bad read.
    pub fn with_layout(body: &'a [u8], layout: Layout) -> Self {
        Self { body, layout }
    }

    /// Reads a whole file held in memory: its state, `valid_until` and the map. For tests and
    /// tools; a mapped file's mutable prefix must be read atomically instead.
    pub fn from_file(file: &'a [u8]) -> Result<(u8, i64, Self), MapError> {
        let (prefix, body) = file
            .split_at_checked(MUTABLE_LEN)
            .ok_or(MapError::Truncated)?;
        let valid_until = Bytes(prefix).u64(VALID_UNTIL_OFFSET).unwrap_or(0) as i64;
        let state = prefix.get(STATE_OFFSET).copied().unwrap_or(STATE_REPLACED);
        Ok((state, valid_until, Self::parse(body)?))
    }

    /// The header.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// `getpwnam`: `Ok(None)` when the map has no such user.
    pub fn user_by_name(&self, name: &[u8]) -> Result<Option<UserRecord<'a>>, MapError> {
        let key = hash_name(self.layout.seed, name);
        self.probe(self.layout.users_by_name, key, key, |rec| {
            let u = self.user_at(rec)?;
            Ok(name_matches(u.blob, name).then_some(u))
        })
    }

    /// `getpwuid`.
    pub fn user_by_uid(&self, uid: u32) -> Result<Option<UserRecord<'a>>, MapError> {
        let start = hash_id(self.layout.seed, uid);
        self.probe(self.layout.users_by_uid, start, uid, |rec| {
            let u = self.user_at(rec)?;
            Ok((u.uid == uid).then_some(u))
        })
    }

    /// `getgrnam`.
    pub fn group_by_name(&self, name: &[u8]) -> Result<Option<GroupRecord<'a>>, MapError> {
        let key = hash_name(self.layout.seed, name);
        self.probe(self.layout.groups_by_name, key, key, |rec| {
            let g = self.group_at(rec)?;
            Ok(name_matches(g.blob, name).then_some(g))
        })
    }

    /// `getgrgid`.
    pub fn group_by_gid(&self, gid: u32) -> Result<Option<GroupRecord<'a>>, MapError> {
        let start = hash_id(self.layout.seed, gid);
        self.probe(self.layout.groups_by_gid, start, gid, |rec| {
            let g = self.group_at(rec)?;
            Ok((g.gid == gid).then_some(g))
        })
    }

    /// The sshd executables from the daemon's config (`login.ssh_programs`, empty when
    /// `login.ssh_first_login` is off): a miss in one of them must ask the daemon, which may
    /// answer a provisional entry.
    pub fn sshd_paths(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let (o, l) = self.layout.sshd;
        let blob = o
            .checked_sub(MUTABLE_LEN)
            .and_then(|o| Bytes(self.body).slice(o, l))
            .unwrap_or(&[]);
        blob.split(|&b| b == 0).filter(|p| !p.is_empty())
    }

    fn slot(&self, t: Table, i: usize) -> Result<(u32, u32), MapError> {
        let bad = MapError::Corrupt("slot outside the file");
        let off = t
            .offset
            .checked_sub(MUTABLE_LEN)
            .zip(t.slots.checked_sub(1))
            .and_then(|(o, mask)| o.checked_add((i & mask).checked_mul(8)?))
            .ok_or(bad.clone())?;
        let b = Bytes(self.body);
        match (b.u32(off), off.checked_add(4).and_then(|o| b.u32(o))) {
            (Some(k), Some(r)) => Ok((k, r)),
            _ => Err(bad),
        }
    }

    /// Linear probing from slot `start` for entries whose key is `key`; at most `slots` steps,
    /// so a full table (which the encoder never writes) ends too.
    fn probe<T>(
        &self,
        t: Table,
        start: u32,
        key: u32,
        mut check: impl FnMut(u32) -> Result<Option<T>, MapError>,
    ) -> Result<Option<T>, MapError> {
        for i in 0..t.slots {
            let (k, rec) = self.slot(t, (start as usize).wrapping_add(i))?;
            if rec == EMPTY {
                return Ok(None);
            }
            if k == key {
                if let Some(found) = check(rec)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    fn record(&self, rec: u32) -> Result<&'a [u8], MapError> {
        let (o, l) = self.layout.records;
        let start = rec as usize;
        if start >= l {
            return Err(MapError::Corrupt("record outside the records"));
        }
        o.checked_sub(MUTABLE_LEN)
            .and_then(|o| Bytes(self.body).slice(o.checked_add(start)?, l - start))
            .ok_or(MapError::Corrupt("record outside the file"))
    }

    fn user_at(&self, rec: u32) -> Result<UserRecord<'a>, MapError> {
        let r = Bytes(self.record(rec)?);
        let bad = MapError::Corrupt("user record");
        let (uid, gid, ngids) = (
            r.u32(0).ok_or(bad.clone())?,
            r.u32(4).ok_or(bad.clone())?,
            r.u32(8).ok_or(bad.clone())? as usize,
        );
        let blob_len = r.u16(12).ok_or(bad.clone())? as usize;
        let mut fields = [0; 4];
        for (i, f) in fields.iter_mut().enumerate() {
            *f = r.u16(14 + 2 * i).ok_or(bad.clone())? as usize;
        }
        let blob = r.slice(USER_FIXED, blob_len).ok_or(bad.clone())?;
        let gids_len = ngids.checked_mul(4).ok_or(bad.clone())?;
        let gids = r
            .slice(USER_FIXED + blob_len, gids_len)
            .ok_or(bad.clone())?;
        if blob.last() != Some(&0) || fields.iter().any(|&f| f >= blob_len) {
            return Err(bad);
        }
        Ok(UserRecord {
            uid,
            gid,
            blob,
            fields,
            gids,
        })
    }

    fn group_at(&self, rec: u32) -> Result<GroupRecord<'a>, MapError> {
        let r = Bytes(self.record(rec)?);
        let bad = MapError::Corrupt("group record");
        let gid = r.u32(0).ok_or(bad.clone())?;
        let members = r.u32(4).ok_or(bad.clone())? as usize;
        let blob_len = r.u32(8).ok_or(bad.clone())? as usize;
        let blob = r.slice(GROUP_FIXED, blob_len).ok_or(bad.clone())?;
        // Each member takes at least two bytes ("x\0"): a count the blob cannot hold is a lie.
        if blob.last() != Some(&0) || members > blob_len / 2 {
            return Err(bad);
        }
        let lens = r.slice(GROUP_FIXED + blob_len, members * 2).ok_or(bad)?;
        Ok(GroupRecord {
            gid,
            members,
            blob,
            lens,
        })
    }
}

impl<'a> UserRecord<'a> {
    /// The login name (without its NUL).
    pub fn name(&self) -> &'a [u8] {
        until_nul(self.blob)
    }

    /// Number of supplementary GIDs.
    pub fn gid_count(&self) -> usize {
        self.gids.len() / 4
    }

    /// The supplementary GIDs as stored: `gid_count` little-endian u32, sorted, each once.
    pub fn gid_bytes(&self) -> &'a [u8] {
        self.gids
    }

    /// The supplementary GIDs, sorted, each once.
    pub fn gids(&self) -> impl ExactSizeIterator<Item = u32> + use<'a> {
        self.gids
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Field `i` (0 name, 1 passwd, 2 gecos, 3 dir, 4 shell) without its NUL.
    pub fn field(&self, i: usize) -> &'a [u8] {
        let start = match i {
            0 => 0,
            _ => self.fields.get(i - 1).copied().unwrap_or(self.blob.len()),
        };
        until_nul(self.blob.get(start..).unwrap_or(&[]))
    }
}

impl<'a> GroupRecord<'a> {
    /// The group name (without its NUL).
    pub fn name(&self) -> &'a [u8] {
        until_nul(self.blob)
    }

    /// Where each string of the blob starts: the name, the password, then the members (from
    /// their stored lengths, without scanning). `None` for a start outside the blob (a corrupt
    /// map); each string ends at the latest at the blob's final NUL.
    pub fn string_starts(&self) -> impl Iterator<Item = Option<usize>> + use<'a> {
        let blob = self.blob;
        let name_end = blob.iter().position(|&b| b == 0);
        let passwd = name_end.map(|e| e + 1);
        let first = passwd.and_then(|p| {
            let len = blob.get(p..)?.iter().position(|&b| b == 0)?;
            Some(p + len + 1)
        });
        let lens = self
            .lens
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])));
        let mut next = first;
        let members = lens.map(move |len| {
            let start = next.filter(|&s| s < blob.len());
            next = start.map(|s| s + len + 1);
            start
        });
        [Some(0), passwd.filter(|&p| p < blob.len())]
            .into_iter()
            .chain(members)
    }

    /// The member names (for tests and tools; the module copies the blob instead).
    pub fn member_names(&self) -> Vec<&'a [u8]> {
        self.string_starts()
            .skip(2)
            .map_while(|s| s.map(|s| until_nul(&self.blob[s..])))
            .collect()
    }
}

/// The header of a map file, read from its first [`HEADER_LEN`] bytes alone: for tools that
/// report on a map (`oidcctl status`, `oidcctl doctor`) without reading or mapping the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Unix seconds after which the module stops trusting the map.
    pub valid_until: i64,
    /// [`STATE_CURRENT`], [`STATE_BEHIND`], [`STATE_REPLACED`] (anything else: not current).
    pub state: u8,
    /// Generation, counts and the file's length as the header gives them.
    pub layout: Layout,
}

impl Header {
    /// Reads `head` (the file's first bytes, at least [`HEADER_LEN`]) of a file `file_len`
    /// bytes long: magic, version, and that every section lies inside `file_len`.
    pub fn read(head: &[u8], file_len: usize) -> Result<Self, MapError> {
        let (prefix, body) = head
            .get(..HEADER_LEN)
            .ok_or(MapError::Truncated)?
            .split_at(MUTABLE_LEN);
        let body_len = file_len
            .checked_sub(MUTABLE_LEN)
            .ok_or(MapError::Truncated)?;
        Ok(Self {
            valid_until: Bytes(prefix).u64(VALID_UNTIL_OFFSET).unwrap_or(0) as i64,
            state: prefix.get(STATE_OFFSET).copied().unwrap_or(STATE_REPLACED),
            layout: parse_layout(body, body_len)?,
        })
    }
}

/// The layout from the header at the start of `body` (the file without its mutable prefix),
/// for a body `body_len` bytes long; reads only the header's bytes.
fn parse_layout(body: &[u8], body_len: usize) -> Result<Layout, MapError> {
    let b = Bytes(body);
    let at = |off: usize| off - MUTABLE_LEN;
    if body.len() + MUTABLE_LEN < HEADER_LEN || body_len + MUTABLE_LEN < HEADER_LEN {
        return Err(MapError::Truncated);
    }
    if b.slice(at(16), 8) != Some(&MAGIC[..]) {
        return Err(MapError::BadMagic);
    }
    let u32_at = |off: usize| b.u32(at(off)).ok_or(MapError::Truncated);
    let u64_at = |off: usize| b.u64(at(off)).ok_or(MapError::Truncated);
    let version = u32_at(24)?;
    if version != VERSION {
        return Err(MapError::Version(version));
    }
    if u32_at(28)? as usize != HEADER_LEN {
        return Err(MapError::Corrupt("header length"));
    }
    let file_len = usize::try_from(u64_at(48)?).map_err(|_| MapError::Truncated)?;
    if file_len != body_len + MUTABLE_LEN || file_len > MAX_FILE_LEN {
        return Err(MapError::Truncated);
    }
    let section = |off: usize| -> Result<(usize, usize), MapError> {
        let (o, l) = (u32_at(off)? as usize, u32_at(off + 4)? as usize);
        match o.checked_add(l) {
            Some(end) if o >= HEADER_LEN && end <= file_len => Ok((o, l)),
            _ => Err(MapError::Corrupt("section outside the file")),
        }
    };
    let table = |off: usize| -> Result<Table, MapError> {
        let (o, slots) = (u32_at(off)? as usize, u32_at(off + 4)? as usize);
        if !slots.is_power_of_two() {
            return Err(MapError::Corrupt("table size"));
        }
        match slots.checked_mul(8).and_then(|n| n.checked_add(o)) {
            Some(end) if o >= HEADER_LEN && end <= file_len => Ok(Table { offset: o, slots }),
            _ => Err(MapError::Corrupt("table outside the file")),
        }
    };
    Ok(Layout {
        generation: u64_at(32)?,
        seed: u64_at(40)?,
        file_len,
        users_by_name: table(56)?,
        users_by_uid: table(64)?,
        groups_by_name: table(72)?,
        groups_by_gid: table(80)?,
        records: section(88)?,
        sshd: section(96)?,
        users: u32_at(104)?,
        groups: u32_at(108)?,
    })
}

fn until_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Whether `blob` starts with `name` followed by a NUL.
fn name_matches(blob: &[u8], name: &[u8]) -> bool {
    blob.get(..name.len()) == Some(name) && blob.get(name.len()) == Some(&0)
}

/// Checked little-endian reads.
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn slice(self, off: usize, len: usize) -> Option<&'a [u8]> {
        self.0.get(off..off.checked_add(len)?)
    }
    fn u16(self, off: usize) -> Option<u16> {
        self.slice(off, 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(self, off: usize) -> Option<u32> {
        self.slice(off, 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(self, off: usize) -> Option<u64> {
        let s = self.slice(off, 8)?;
        let mut a = [0; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

fn mix(mut h: u64) -> u64 {
    h ^= h >> 31;
    h = h.wrapping_mul(K2);
    h ^= h >> 29;
    h = h.wrapping_mul(K1);
    h ^ (h >> 32)
}

/// The name tables' key: a hash of `name` keyed by the map's random seed (a new seed with each
/// map, so names chosen to collide in one map do not collide in the next).
pub fn hash_name(seed: u64, name: &[u8]) -> u32 {
    let mut h = seed ^ (name.len() as u64).wrapping_mul(K1);
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K2).rotate_left(31);
    }
    let rest = chunks.remainder();
    let mut w = [0; 8];
    w[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K2);
    mix(h) as u32
}

/// Where an ID's probe starts in the ID tables.
pub fn hash_id(seed: u64, id: u32) -> u32 {
    mix(seed ^ u64::from(id).wrapping_mul(K1)) as u32
}

mod encode;
pub use encode::{EncodeError, MapEncoder, UserEntry};

#[cfg(test)]
mod tests;

/// The byte range of a section (for tests that damage one on purpose).
#[doc(hidden)]
pub fn section_ranges(layout: &Layout) -> Vec<Range<usize>> {
    let t = |t: Table| t.offset..t.offset + t.slots * 8;
    vec![
        t(layout.users_by_name),
        t(layout.users_by_uid),
        t(layout.groups_by_name),
        t(layout.groups_by_gid),
        layout.records.0..layout.records.0 + layout.records.1,
        layout.sshd.0..layout.sshd.0 + layout.sshd.1,
    ]
}
