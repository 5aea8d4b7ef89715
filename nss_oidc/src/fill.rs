//! Laying out an entry in the caller's buffer, as glibc wants it: every string NUL-terminated in
//! the buffer, and for a group an aligned, NULL-terminated array of member pointers. Safe code
//! over `&mut [u8]`; `ffi` turns the offsets returned here into the `struct passwd` and
//! `struct group` pointers. `None` means the buffer is too small: glibc retries with a larger
//! one (ERANGE), and nothing here allocates.

use oidc_proto::nss_map::GroupRecord;

/// Where each passwd string starts in the buffer: name, passwd, gecos, dir, shell.
pub type PasswdAt = [usize; 5];

/// Where a group's name and password start, and where its member pointer array is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupAt {
    /// Name.
    pub name: usize,
    /// Password (`*`).
    pub passwd: usize,
    /// The `char *gr_mem[]` array (pointer-aligned in the buffer).
    pub members: usize,
}

/// Copies a map record's blob (`name\0*\0gecos\0dir\0shell\0`) in one piece.
pub fn passwd_blob(buf: &mut [u8], blob: &[u8], fields: [usize; 4]) -> Option<PasswdAt> {
    buf.get_mut(..blob.len())?.copy_from_slice(blob);
    Some([0, fields[0], fields[1], fields[2], fields[3]])
}

/// Writes five strings (none holding a NUL: checked by the caller) one after another.
pub fn passwd_strings(buf: &mut [u8], strings: [&[u8]; 5]) -> Option<PasswdAt> {
    let mut at = [0; 5];
    let mut pos = 0;
    for (i, s) in strings.iter().enumerate() {
        at[i] = pos;
        pos = put_str(buf, pos, s)?;
    }
    Some(at)
}

/// Why a group could not be laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFill {
    /// The buffer is too small (ERANGE).
    TooSmall,
    /// The map's record does not hold the strings it claims (ask the daemon instead).
    Corrupt,
}

/// Lays out a map record: the pointer array first, then the blob copied in one piece; the
/// member pointers follow from the lengths the record stores (no scan of the names).
pub fn group_blob(buf: &mut [u8], rec: &GroupRecord<'_>) -> Result<GroupAt, GroupFill> {
    let blob = rec.blob;
    let (array, strings) = group_space(buf, rec.members, blob.len())?;
    buf[strings..strings + blob.len()].copy_from_slice(blob);
    let base = buf.as_ptr() as usize + strings;
    let slots = buf
        .get_mut(array..array + (rec.members + 1) * PTR)
        .ok_or(GroupFill::TooSmall)?;
    let mut starts = rec.string_starts();
    let _name = starts.next().flatten().ok_or(GroupFill::Corrupt)?;
    let passwd = starts.next().flatten().ok_or(GroupFill::Corrupt)?;
    let (members, end) = slots.split_at_mut(rec.members * PTR);
    for (slot, start) in members.chunks_exact_mut(PTR).zip(&mut starts) {
        let start = start.ok_or(GroupFill::Corrupt)?;
        slot.copy_from_slice(&(base + start).to_ne_bytes());
    }
    end.fill(0);
    Ok(GroupAt {
        name: strings,
        passwd: strings + passwd,
        members: array,
    })
}

/// Lays out a group from its parts (the daemon's answer); none may hold a NUL.
pub fn group_strings(
    buf: &mut [u8],
    name: &[u8],
    passwd: &[u8],
    members: &[String],
) -> Result<GroupAt, GroupFill> {
    let len = name.len() + passwd.len() + 2 + members.iter().map(|m| m.len() + 1).sum::<usize>();
    let (array, strings) = group_space(buf, members.len(), len)?;
    let too_small = GroupFill::TooSmall;
    let mut pos = put_str(buf, strings, name).ok_or(too_small)?;
    let passwd_at = pos;
    pos = put_str(buf, pos, passwd).ok_or(too_small)?;
    for (i, m) in members.iter().enumerate() {
        put_ptr(buf, array, i, pos);
        pos = put_str(buf, pos, m.as_bytes()).ok_or(too_small)?;
    }
    put_null(buf, array, members.len());
    Ok(GroupAt {
        name: strings,
        passwd: passwd_at,
        members: array,
    })
}

const PTR: usize = size_of::<*mut libc::c_char>();

/// Room for `members + 1` aligned pointers then `len` bytes of strings: (array, strings).
fn group_space(buf: &[u8], members: usize, len: usize) -> Result<(usize, usize), GroupFill> {
    let align = buf.as_ptr().align_offset(align_of::<*mut libc::c_char>());
    let strings = members
        .checked_add(1)
        .and_then(|n| n.checked_mul(PTR))
        .and_then(|n| n.checked_add(align))
        .ok_or(GroupFill::TooSmall)?;
    match strings.checked_add(len) {
        Some(end) if end <= buf.len() => Ok((align, strings)),
        _ => Err(GroupFill::TooSmall),
    }
}

/// Writes the address of `buf[target]` into slot `i` of the pointer array at `array`.
fn put_ptr(buf: &mut [u8], array: usize, i: usize, target: usize) {
    let addr = buf.as_ptr() as usize + target;
    let slot = array + i * PTR;
    if let Some(s) = buf.get_mut(slot..slot + PTR) {
        s.copy_from_slice(&addr.to_ne_bytes());
    }
}

fn put_null(buf: &mut [u8], array: usize, i: usize) {
    let slot = array + i * PTR;
    if let Some(s) = buf.get_mut(slot..slot + PTR) {
        s.fill(0);
    }
}

/// Writes `s` and a NUL at `pos`; the position after it.
fn put_str(buf: &mut [u8], pos: usize, s: &[u8]) -> Option<usize> {
    let end = pos.checked_add(s.len())?;
    buf.get_mut(pos..end)?.copy_from_slice(s);
    *buf.get_mut(end)? = 0;
    Some(end + 1)
}

/// glibc's growing array of GIDs for `initgroups_dyn`, seen through safe methods.
pub trait GidArray {
    /// Entries in use (`*start`).
    fn len(&self) -> usize;
    /// No entries in use.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Entries allocated (`*size`).
    fn capacity(&self) -> usize;
    /// The entries in use, and the allocated ones after them.
    fn split(&mut self) -> (&[u32], &mut [u32]);
    /// Marks `n` more entries in use (`n` at most the spare ones).
    fn extend_len(&mut self, n: usize);
    /// Reallocates to `capacity` entries; false if the allocation failed (nothing changed).
    fn grow(&mut self, capacity: usize) -> bool;
}

/// Appends `gids` to `arr` as glibc's own modules do: never `skip` (the primary group) nor a
/// GID already there, growing the array once to what is needed (at most `limit` entries when
/// `limit > 0`, and then dropping the rest quietly), TRYAGAIN with ENOMEM if it cannot grow.
/// One pass over the new GIDs, no allocation of ours.
pub fn add_gids(
    arr: &mut impl GidArray,
    skip: u32,
    limit: i64,
    gids: crate::lookup::Gids<'_>,
) -> crate::lookup::Status {
    use crate::lookup::Status;
    let cap_limit = usize::try_from(limit).ok().filter(|&l| l > 0);
    let want = arr.len().saturating_add(gids.len());
    let want = cap_limit.map_or(want, |l| want.min(l));
    if want > arr.capacity() && !arr.grow(want) {
        return Status::TryAgain(libc::ENOMEM);
    }
    let (existing, spare) = arr.split();
    // Usually nothing is to be left out (the primary group is not a supplementary one, and
    // earlier modules added none of ours): then the GIDs are copied in one go. `gids` is
    // sorted, so each check is a binary search.
    let clash = gids.contains(skip) || existing.iter().any(|&e| gids.contains(e));
    let mut n = 0;
    if !clash {
        n = gids.copy_to(spare);
    } else {
        gids.for_each(|g| {
            if g == skip || existing.contains(&g) {
                return true;
            }
            match spare.get_mut(n) {
                Some(slot) => {
                    *slot = g;
                    n += 1;
                    true
                }
                None => false, // the caller's limit is reached
            }
        });
    }
    arr.extend_len(n);
    Status::Success
}

#[cfg(test)]
mod tests {
    use oidc_proto::nss_map::{MapEncoder, MapView};

    use super::*;
    use crate::lookup::Gids;

    fn read_ptr(buf: &[u8], at: usize) -> usize {
        let mut a = [0; PTR];
        a.copy_from_slice(&buf[at..at + PTR]);
        usize::from_ne_bytes(a)
    }

    fn c_str(buf: &[u8], at: usize) -> &[u8] {
        let end = buf[at..].iter().position(|&b| b == 0).unwrap();
        &buf[at..at + end]
    }

    /// Strings land NUL-terminated at the offsets returned; a buffer one byte short is refused.
    #[test]
    fn passwd_strings_and_too_small() {
        let parts: [&[u8]; 5] = [b"alice", b"*", b"Alice", b"/home/alice", b"/bin/sh"];
        let need: usize = parts.iter().map(|p| p.len() + 1).sum();
        let mut buf = vec![0xaa; need];
        let at = passwd_strings(&mut buf, parts).unwrap();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(c_str(&buf, at[i]), *p);
        }
        assert_eq!(passwd_strings(&mut buf[..need - 1], parts), None);
        assert_eq!(passwd_blob(&mut buf[..3], b"abcd\0", [1, 1, 1, 1]), None);
    }

    /// A map group becomes an aligned pointer array whose entries point at the member names in
    /// the same buffer, ending in NULL; too small a buffer and a lying record are refused.
    #[test]
    fn group_from_map() {
        let mut e = MapEncoder::new(1);
        e.add_group("devs", 5, ["alice", "bob"]).unwrap();
        let file = e.to_vec(1, 0).unwrap();
        let (_, _, map) = MapView::from_file(&file).unwrap();
        let g = map.group_by_gid(5).unwrap().unwrap();
        for offset in 0..8 {
            let mut storage = [0xaau8; 200];
            let buf = &mut storage[offset..];
            let at = group_blob(buf, &g).unwrap();
            assert_eq!(c_str(buf, at.name), b"devs");
            assert_eq!(c_str(buf, at.passwd), b"*");
            assert_eq!(
                (buf.as_ptr() as usize + at.members) % align_of::<usize>(),
                0
            );
            let base = buf.as_ptr() as usize;
            let m0 = read_ptr(buf, at.members) - base;
            let m1 = read_ptr(buf, at.members + PTR) - base;
            assert_eq!(
                (c_str(buf, m0), c_str(buf, m1)),
                (&b"alice"[..], &b"bob"[..])
            );
            assert_eq!(read_ptr(buf, at.members + 2 * PTR), 0);
        }
        let mut small = vec![0u8; 20];
        assert_eq!(group_blob(&mut small, &g), Err(GroupFill::TooSmall));
    }

    /// The daemon's group is laid out the same way.
    #[test]
    fn group_from_parts() {
        let mut buf = vec![0u8; 128];
        let members = vec!["alice".to_string()];
        let at = group_strings(&mut buf, b"devs", b"*", &members).unwrap();
        let base = buf.as_ptr() as usize;
        assert_eq!(c_str(&buf, at.name), b"devs");
        assert_eq!(c_str(&buf, read_ptr(&buf, at.members) - base), b"alice");
        assert_eq!(read_ptr(&buf, at.members + PTR), 0);
        let at = group_strings(&mut buf, b"empty", b"*", &[]).unwrap();
        assert_eq!(read_ptr(&buf, at.members), 0);
        assert_eq!(
            group_strings(&mut buf[..10], b"devs", b"*", &members),
            Err(GroupFill::TooSmall)
        );
    }

    /// A Vec standing in for glibc's array, with an allocation that can be made to fail.
    struct Arr {
        v: Vec<u32>,
        used: usize,
        grows: usize,
        fail: bool,
    }

    impl GidArray for Arr {
        fn len(&self) -> usize {
            self.used
        }
        fn capacity(&self) -> usize {
            self.v.len()
        }
        fn split(&mut self) -> (&[u32], &mut [u32]) {
            let (a, b) = self.v.split_at_mut(self.used);
            (a, b)
        }
        fn extend_len(&mut self, n: usize) {
            assert!(self.used + n <= self.v.len(), "past the capacity");
            self.used += n;
        }
        fn grow(&mut self, capacity: usize) -> bool {
            self.grows += 1;
            if self.fail {
                return false;
            }
            self.v.resize(capacity, 0);
            true
        }
    }

    impl Arr {
        fn used(&self) -> &[u32] {
            &self.v[..self.used]
        }
    }

    fn arr(v: &[u32], cap: usize) -> Arr {
        let mut all = v.to_vec();
        all.resize(cap, 0);
        Arr {
            v: all,
            used: v.len(),
            grows: 0,
            fail: false,
        }
    }

    /// initgroups adds each of our GIDs once, never the primary group nor one already there,
    /// growing the array once to the size needed.
    #[test]
    fn initgroups_skips_known_gids_and_grows_once() {
        let mut a = arr(&[100, 27], 2);
        let s = add_gids(&mut a, 100, -1, Gids::List(&[5, 27, 100, 300]));
        assert_eq!(s, crate::lookup::Status::Success);
        assert_eq!(a.used(), [100, 27, 5, 300]);
        assert_eq!(a.grows, 1);
        let many: Vec<u32> = (1000..2000).collect();
        let le: Vec<u8> = many.iter().flat_map(|g| g.to_le_bytes()).collect();
        let mut a = arr(&[1], 1);
        add_gids(&mut a, 1, 0, Gids::Le(&le));
        assert_eq!(a.used().len(), 1001);
        assert_eq!(a.used()[1000], 1999);
        assert_eq!(a.grows, 1);
    }

    /// A positive limit caps the array; the rest is dropped quietly (as glibc's modules do).
    #[test]
    fn initgroups_honours_the_limit() {
        let mut a = arr(&[1], 1);
        let ten: Vec<u32> = (10..20).collect();
        let s = add_gids(&mut a, 1, 3, Gids::List(&ten));
        assert_eq!(s, crate::lookup::Status::Success);
        assert_eq!(a.used(), [1, 10, 11]);
        assert!(a.capacity() <= 3);
    }

    /// A failed allocation is TRYAGAIN with ENOMEM, and the array is left as it was.
    #[test]
    fn initgroups_allocation_failure() {
        let mut a = arr(&[1], 1);
        a.fail = true;
        let ten: Vec<u32> = (10..20).collect();
        let s = add_gids(&mut a, 1, -1, Gids::List(&ten));
        assert_eq!(s, crate::lookup::Status::TryAgain(libc::ENOMEM));
        assert_eq!(a.used(), [1]);
    }
}
