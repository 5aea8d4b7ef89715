//! Writing a map: records are appended as entries arrive; [`MapEncoder::write_to`] lays out the
//! hash tables and writes the file in one pass. A large map need not be held in memory: the
//! writer reserves the header's bytes, [`MapEncoder::drain_records`] moves the records written
//! so far to the file as they accumulate, [`MapEncoder::write_tail`] writes the rest, and
//! [`MapEncoder::header`] gives the header to write at offset 0 last.

use std::fmt;
use std::io::{self, Write};

use super::{
    EMPTY, GROUP_FIXED, HEADER_LEN, MAGIC, MUTABLE_LEN, STATE_CURRENT, VERSION, hash_id, hash_name,
};

/// A user to write. `gids` are the supplementary groups `initgroups` answers (any order; the
/// encoder sorts them and drops repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEntry<'a> {
    /// Login name.
    pub name: &'a str,
    /// UID.
    pub uid: u32,
    /// Primary GID.
    pub gid: u32,
    /// GECOS.
    pub gecos: &'a str,
    /// Home directory.
    pub dir: &'a str,
    /// Shell.
    pub shell: &'a str,
    /// Supplementary GIDs.
    pub gids: &'a [u32],
}

/// Why an entry or a map cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A name or field is empty where it must not be, or holds a NUL, `:` or newline.
    BadField(&'static str),
    /// A record's strings exceed what the format holds (64 KiB for a user's).
    TooLong,
    /// The map would exceed 4 GiB.
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadField(what) => write!(f, "{what} cannot be written to a passwd or group line"),
            Self::TooLong => f.write_str("the entry's fields are too long for the map"),
            Self::TooLarge => f.write_str("the map would exceed 4 GiB"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Builds a map. Entries added first win over later ones with the same name or ID (the daemon
/// adds provider groups before user-private groups, as its store answers).
#[derive(Debug, Default)]
pub struct MapEncoder {
    seed: u64,
    /// Records not yet drained.
    records: Vec<u8>,
    /// Bytes of records already drained to the file.
    drained: usize,
    /// Every name, for telling a duplicate from a hash collision once records are drained.
    names: Vec<u8>,
    users: Vec<Entry>,
    groups: Vec<Entry>,
    sshd: Vec<u8>,
    scratch: Vec<u32>,
    /// Member name lengths of the group being added (reused).
    lens: Vec<u8>,
}

/// One table entry to be: the name's hash, the UID or GID, the record, the name in `names`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u32,
    id: u32,
    rec: u32,
    name: u32,
    name_len: u32,
}

fn check(s: &str, what: &'static str, may_be_empty: bool) -> Result<(), EncodeError> {
    if (s.is_empty() && !may_be_empty) || !crate::types::is_field_safe(s) {
        return Err(EncodeError::BadField(what));
    }
    Ok(())
}

fn u16_len(n: usize) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::TooLong)
}

fn u32_len(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n != EMPTY)
        .ok_or(EncodeError::TooLarge)
}

impl MapEncoder {
    /// An empty map whose name tables are keyed by `seed` (pick a random one per map).
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Reserves room for about `users` users and `groups` groups.
    pub fn reserve(&mut self, users: usize, groups: usize) {
        self.users.reserve(users);
        self.groups.reserve(groups);
    }

    /// Bytes of records held (not yet drained).
    pub fn buffered(&self) -> usize {
        self.records.len()
    }

    /// Writes the records held so far to `w` and forgets them. `w` must be positioned where the
    /// records go: after [`HEADER_LEN`] bytes reserved for [`MapEncoder::header`], after the
    /// records drained before.
    pub fn drain_records(&mut self, w: &mut (impl Write + ?Sized)) -> io::Result<()> {
        w.write_all(&self.records)?;
        self.drained += self.records.len();
        self.records.clear();
        Ok(())
    }

    fn entry(&mut self, name: &str, id: u32, rec: u32) -> Result<Entry, EncodeError> {
        let at = u32_len(self.names.len())?;
        self.names.extend_from_slice(name.as_bytes());
        Ok(Entry {
            hash: hash_name(self.seed, name.as_bytes()),
            id,
            rec,
            name: at,
            name_len: u32_len(name.len())?,
        })
    }

    fn rec_offset(&self) -> Result<u32, EncodeError> {
        u32_len(self.drained + self.records.len())
    }

    /// Adds a user; nothing is added on error.
    pub fn add_user(&mut self, u: &UserEntry<'_>) -> Result<(), EncodeError> {
        check(u.name, "the user name", false)?;
        check(u.gecos, "the GECOS field", true)?;
        check(u.dir, "the home directory", true)?;
        check(u.shell, "the shell", true)?;
        let rec = self.rec_offset()?;
        self.scratch.clear();
        self.scratch.extend_from_slice(u.gids);
        self.scratch.sort_unstable();
        self.scratch.dedup();
        let passwd = u.name.len() + 1;
        let gecos = passwd + 2;
        let dir = gecos + u.gecos.len() + 1;
        let shell = dir + u.dir.len() + 1;
        let blob_len = u16_len(shell + u.shell.len() + 1)?;
        let ngids = u32_len(self.scratch.len())?;
        let r = &mut self.records;
        r.extend_from_slice(&u.uid.to_le_bytes());
        r.extend_from_slice(&u.gid.to_le_bytes());
        r.extend_from_slice(&ngids.to_le_bytes());
        r.extend_from_slice(&blob_len.to_le_bytes());
        for f in [passwd, gecos, dir, shell] {
            r.extend_from_slice(&u16_len(f)?.to_le_bytes());
        }
        for s in [u.name, "*", u.gecos, u.dir, u.shell] {
            r.extend_from_slice(s.as_bytes());
            r.push(0);
        }
        for g in &self.scratch {
            r.extend_from_slice(&g.to_le_bytes());
        }
        let e = self.entry(u.name, u.uid, rec)?;
        self.users.push(e);
        Ok(())
    }

    /// Adds a group with its members; nothing is added on error.
    pub fn add_group<'m>(
        &mut self,
        name: &str,
        gid: u32,
        members: impl IntoIterator<Item = &'m str>,
    ) -> Result<(), EncodeError> {
        check(name, "the group name", false)?;
        let rec = self.rec_offset()?;
        let start = self.records.len();
        self.records.extend_from_slice(&gid.to_le_bytes());
        self.records.extend_from_slice(&[0; 8]); // count and length, filled in below
        self.records.extend_from_slice(name.as_bytes());
        self.records.extend_from_slice(b"\0*\0");
        let mut lens: Vec<u8> = std::mem::take(&mut self.lens);
        lens.clear();
        let mut count = 0usize;
        let mut failure = None;
        for m in members {
            if m.is_empty() || m.contains(',') || !crate::types::is_field_safe(m) {
                failure = Some(EncodeError::BadField("a member name"));
                break;
            }
            match u16::try_from(m.len()) {
                Ok(l) => lens.extend_from_slice(&l.to_le_bytes()),
                Err(_) => {
                    failure = Some(EncodeError::TooLong);
                    break;
                }
            }
            self.records.extend_from_slice(m.as_bytes());
            self.records.push(0);
            count += 1;
        }
        let blob_len = self.records.len() - start - GROUP_FIXED;
        let sizes = u32_len(count).and_then(|c| Ok((c, u32_len(blob_len)?)));
        match (failure, sizes) {
            (None, Ok((c, l))) => {
                self.records[start + 4..start + 8].copy_from_slice(&c.to_le_bytes());
                self.records[start + 8..start + 12].copy_from_slice(&l.to_le_bytes());
                self.records.extend_from_slice(&lens);
                self.lens = lens;
            }
            (Some(e), _) | (None, Err(e)) => {
                self.records.truncate(start);
                self.lens = lens;
                return Err(e);
            }
        }
        let e = self.entry(name, gid, rec)?;
        self.groups.push(e);
        Ok(())
    }

    /// Adds an executable path recognised as sshd.
    pub fn add_sshd_path(&mut self, path: &str) -> Result<(), EncodeError> {
        if path.is_empty() || path.contains('\0') {
            return Err(EncodeError::BadField("an sshd path"));
        }
        self.sshd.extend_from_slice(path.as_bytes());
        self.sshd.push(0);
        Ok(())
    }

    /// Users added so far.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The file's bytes, state [`STATE_CURRENT`] (nothing drained).
    pub fn to_vec(&self, generation: u64, valid_until: i64) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.write_to(&mut out, generation, valid_until)
            .map_err(|_| EncodeError::TooLarge)?;
        Ok(out)
    }

    /// Writes the file (state [`STATE_CURRENT`]) to `w`: header, records, tables, sshd paths.
    /// Only for an encoder whose records were never drained.
    pub fn write_to(
        &self,
        w: &mut impl Write,
        generation: u64,
        valid_until: i64,
    ) -> io::Result<()> {
        if self.drained != 0 {
            return Err(io::Error::other(
                "records were drained: use write_tail and header",
            ));
        }
        w.write_all(&self.header(generation, valid_until)?)?;
        self.write_tail(w)
    }

    /// The slots of each table.
    fn slots(&self) -> [usize; 4] {
        let slots = |n: usize| (n * 2).next_power_of_two().max(16);
        [
            slots(self.users.len()),
            slots(self.users.len()),
            slots(self.groups.len()),
            slots(self.groups.len()),
        ]
    }

    /// The header (state [`STATE_CURRENT`]) of the file this encoder writes.
    pub fn header(&self, generation: u64, valid_until: i64) -> io::Result<Vec<u8>> {
        let tables = self.slots();
        let records_at = HEADER_LEN;
        let records_len = self.drained + self.records.len();
        let mut at = records_at + records_len;
        let mut table_at = [0usize; 4];
        for (i, n) in tables.iter().enumerate() {
            table_at[i] = at;
            at += n * 8;
        }
        let sshd_at = at;
        let file_len = sshd_at + self.sshd.len();
        if u32::try_from(file_len).is_err() {
            return Err(io::Error::other(EncodeError::TooLarge));
        }
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(&valid_until.to_le_bytes());
        h.push(STATE_CURRENT);
        h.extend_from_slice(&[0; 7]);
        debug_assert_eq!(h.len(), MUTABLE_LEN);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h.extend_from_slice(&generation.to_le_bytes());
        h.extend_from_slice(&self.seed.to_le_bytes());
        h.extend_from_slice(&(file_len as u64).to_le_bytes());
        let pair = |h: &mut Vec<u8>, a: usize, b: usize| {
            // Both fit: file_len fits in u32 (checked above).
            h.extend_from_slice(&(a as u32).to_le_bytes());
            h.extend_from_slice(&(b as u32).to_le_bytes());
        };
        for i in 0..4 {
            pair(&mut h, table_at[i], tables[i]);
        }
        pair(&mut h, records_at, records_len);
        pair(&mut h, sshd_at, self.sshd.len());
        pair(&mut h, self.users.len(), self.groups.len());
        h.resize(HEADER_LEN, 0);
        Ok(h)
    }

    /// Writes what follows the records drained so far: the rest of the records, the tables and
    /// the sshd paths.
    pub fn write_tail(&self, w: &mut impl Write) -> io::Result<()> {
        let tables = self.slots();
        w.write_all(&self.records)?;
        let same_name = |a: &Entry, b: &Entry| self.name(a) == self.name(b);
        let seed = self.seed;
        w.write_all(&table(
            tables[0],
            &self.users,
            |e| (e.hash, e.hash),
            same_name,
        ))?;
        w.write_all(&table(
            tables[1],
            &self.users,
            |e| (hash_id(seed, e.id), e.id),
            |_, _| true,
        ))?;
        w.write_all(&table(
            tables[2],
            &self.groups,
            |e| (e.hash, e.hash),
            same_name,
        ))?;
        w.write_all(&table(
            tables[3],
            &self.groups,
            |e| (hash_id(seed, e.id), e.id),
            |_, _| true,
        ))?;
        w.write_all(&self.sshd)?;
        Ok(())
    }

    fn name(&self, e: &Entry) -> &[u8] {
        let (a, n) = (e.name as usize, e.name_len as usize);
        self.names.get(a..a + n).unwrap_or(&[])
    }
}

/// One hash table of `n` slots (a power of two) from `entries` in order, each placed by its
/// (home slot, key): an entry whose key is already there for an equal entry (`same`) is left
/// out, so the first one wins.
fn table(
    n: usize,
    entries: &[Entry],
    place: impl Fn(&Entry) -> (u32, u32),
    same: impl Fn(&Entry, &Entry) -> bool,
) -> Vec<u8> {
    let mut slots: Vec<Option<(u32, usize)>> = vec![None; n];
    for (idx, e) in entries.iter().enumerate() {
        let (home, key) = place(e);
        let mut i = home as usize & (n - 1);
        loop {
            match slots[i] {
                None => {
                    slots[i] = Some((key, idx));
                    break;
                }
                Some((k, other)) if k == key && same(&entries[other], e) => break,
                Some(_) => i = (i + 1) & (n - 1),
            }
        }
    }
    let mut out = Vec::with_capacity(n * 8);
    for slot in slots {
        let (k, r) = slot.map_or((0, EMPTY), |(k, idx)| (k, entries[idx].rec));
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}
