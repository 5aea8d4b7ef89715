//! The eleven C entry points glibc calls, and the glibc structures they fill.
//!
//! Each body runs behind [`guard::run`] (a panic is UNAVAIL) and only converts: raw pointers
//! to slices, the lookup's [`Status`] to an NSS status and `*errnop`. glibc reads `*errnop`
//! (its `errno`) to tell a small buffer (ERANGE with TRYAGAIN: it retries with a bigger one)
//! from a source that cannot answer (EAGAIN with UNAVAIL; left unset, glibc would report
//! whatever errno happened to hold, and nscd could cache a failure as "no such user") from
//! "no such entry" (ENOENT with NOTFOUND). Entries are copied straight from the map into
//! glibc's buffer: nothing is allocated on that path.

#![allow(unsafe_code)]

use std::ffi::CStr;

use libc::{c_char, c_int, c_long, gid_t, group, passwd, size_t, uid_t};
use oidc_proto::nss_map::{GroupRecord, UserRecord};
use oidc_proto::types::{UnixGroup, UnixUser};

use crate::enumerate;
use crate::fill::{self, GidArray, GroupAt, GroupFill, PasswdAt};
use crate::guard;
use crate::lookup::{self, Gids, GidsOut, GroupOut, NO_PASSWORD, PasswdOut, Status, System};

const NSS_STATUS_TRYAGAIN: c_int = -2;
const NSS_STATUS_UNAVAIL: c_int = -1;
const NSS_STATUS_NOTFOUND: c_int = 0;
const NSS_STATUS_SUCCESS: c_int = 1;

/// The NSS status for `status`, with `*errnop` set as glibc expects.
fn finish(status: Status, errnop: *mut c_int) -> c_int {
    let (code, errno) = match status {
        Status::Success => (NSS_STATUS_SUCCESS, None),
        Status::NotFound => (NSS_STATUS_NOTFOUND, Some(libc::ENOENT)),
        Status::Unavail => (NSS_STATUS_UNAVAIL, Some(libc::EAGAIN)),
        Status::TryAgain(e) => (NSS_STATUS_TRYAGAIN, Some(e)),
    };
    if let (Some(e), false) = (errno, errnop.is_null()) {
        // SAFETY: glibc passes a valid pointer to its errno (checked non-null).
        unsafe { *errnop = e };
    }
    code
}

/// glibc's buffer as a slice. `None` for a null pointer.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes for `'a` and not be accessed otherwise
/// meanwhile, as glibc guarantees for the duration of a call.
unsafe fn buffer<'a>(buf: *mut c_char, len: size_t) -> Option<&'a mut [u8]> {
    if buf.is_null() {
        return None;
    }
    // SAFETY: the caller's guarantee; non-null checked.
    Some(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// The name glibc asks for. `None` for a null pointer.
///
/// # Safety
/// `name` must be null or a NUL-terminated string valid for `'a`.
unsafe fn name<'a>(name: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's guarantee; non-null checked.
    (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_bytes())
}

const ERANGE: Status = Status::TryAgain(libc::ERANGE);

/// A `struct passwd` and its buffer.
pub(crate) struct PasswdBuf<'a> {
    pub(crate) result: *mut passwd,
    pub(crate) buf: &'a mut [u8],
}

impl PasswdBuf<'_> {
    fn set(&mut self, at: Option<PasswdAt>, uid: u32, gid: u32) -> Status {
        let Some(at) = at else { return ERANGE };
        let base = self.buf.as_mut_ptr().cast::<c_char>();
        let p = |i: usize| base.wrapping_add(at[i]);
        // SAFETY: `result` is glibc's valid, writable struct (checked non-null by the caller);
        // every pointer is into `buf` at a NUL-terminated string that `fill` wrote.
        unsafe {
            *self.result = passwd {
                pw_name: p(0),
                pw_passwd: p(1),
                pw_uid: uid,
                pw_gid: gid,
                pw_gecos: p(2),
                pw_dir: p(3),
                pw_shell: p(4),
            };
        }
        Status::Success
    }
}

impl PasswdOut for PasswdBuf<'_> {
    fn copy_map(&mut self, u: &UserRecord<'_>) -> Status {
        let at = fill::passwd_blob(self.buf, u.blob, u.fields);
        self.set(at, u.uid, u.gid)
    }
    fn copy_daemon(&mut self, u: &UnixUser) -> Status {
        let at = fill::passwd_strings(
            self.buf,
            [
                u.name.as_bytes(),
                NO_PASSWORD.as_bytes(),
                u.gecos.as_bytes(),
                u.home.as_bytes(),
                u.shell.as_bytes(),
            ],
        );
        self.set(at, u.uid, u.gid)
    }
}

/// A `struct group` and its buffer.
pub(crate) struct GroupBuf<'a> {
    pub(crate) result: *mut group,
    pub(crate) buf: &'a mut [u8],
}

impl GroupBuf<'_> {
    fn set(&mut self, at: Result<GroupAt, GroupFill>, gid: u32) -> Option<Status> {
        let at = match at {
            Ok(at) => at,
            Err(GroupFill::TooSmall) => return Some(ERANGE),
            Err(GroupFill::Corrupt) => return None,
        };
        let base = self.buf.as_mut_ptr();
        // SAFETY: `result` is glibc's valid, writable struct (checked non-null by the caller);
        // name and password point at NUL-terminated strings in `buf`, `gr_mem` at a
        // pointer-aligned, NULL-terminated array in `buf` whose entries point at
        // NUL-terminated strings in `buf` (all written by `fill`).
        unsafe {
            *self.result = group {
                gr_name: base.wrapping_add(at.name).cast(),
                gr_passwd: base.wrapping_add(at.passwd).cast(),
                gr_gid: gid,
                gr_mem: base.wrapping_add(at.members).cast(),
            };
        }
        Some(Status::Success)
    }
}

impl GroupOut for GroupBuf<'_> {
    fn copy_map(&mut self, g: &GroupRecord<'_>) -> Option<Status> {
        let at = fill::group_blob(self.buf, g);
        self.set(at, g.gid)
    }
    fn copy_daemon(&mut self, g: &UnixGroup) -> Status {
        let at = fill::group_strings(
            self.buf,
            g.name.as_bytes(),
            NO_PASSWORD.as_bytes(),
            &g.members,
        );
        self.set(at, g.gid).unwrap_or(Status::Unavail)
    }
}

/// glibc's `initgroups_dyn` array: `*groupsp` holds `*size` GIDs of which `*start` are used.
struct GlibcGids {
    start: *mut c_long,
    size: *mut c_long,
    groups: *mut *mut gid_t,
    skip: gid_t,
    limit: c_long,
}

impl GidArray for GlibcGids {
    fn len(&self) -> usize {
        // SAFETY: glibc's valid counter (all pointers checked non-null before use).
        usize::try_from(unsafe { *self.start }).unwrap_or(0)
    }
    fn capacity(&self) -> usize {
        // SAFETY: as above.
        usize::try_from(unsafe { *self.size }).unwrap_or(0)
    }
    fn split(&mut self) -> (&[u32], &mut [u32]) {
        let (used, cap) = (self.len(), self.capacity());
        // SAFETY: `*groups` is glibc's malloc'ed array of `*size` GIDs (`used <= cap`, checked
        // by the entry point), valid until the next realloc, which needs `&mut self` and so
        // cannot happen while these borrows live; the two slices do not overlap.
        unsafe {
            let p = *self.groups;
            (
                std::slice::from_raw_parts(p, used),
                std::slice::from_raw_parts_mut(p.add(used), cap - used),
            )
        }
    }
    fn extend_len(&mut self, n: usize) {
        // SAFETY: glibc's valid counter; add_gids adds at most the spare entries.
        unsafe { *self.start += n as c_long };
    }
    fn grow(&mut self, capacity: usize) -> bool {
        let (Ok(n), Some(bytes)) = (
            c_long::try_from(capacity),
            capacity.checked_mul(size_of::<gid_t>()),
        ) else {
            return false;
        };
        // SAFETY: `*groups` came from glibc's malloc (initgroups_dyn's contract); on success
        // the old pointer is replaced at once, on failure it stays valid and untouched.
        unsafe {
            let new = libc::realloc((*self.groups).cast(), bytes).cast::<gid_t>();
            if new.is_null() {
                return false;
            }
            *self.groups = new;
            *self.size = n;
        }
        true
    }
}

impl GidsOut for GlibcGids {
    fn add(&mut self, gids: Gids<'_>) -> Status {
        fill::add_gids(self, self.skip, self.limit, gids)
    }
}

/// `getpwnam_r`.
///
/// # Safety
/// glibc's contract: a NUL-terminated name, a writable result, a buffer of `buflen` bytes and
/// a pointer to errno, all valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getpwnam_r(
    name: *const c_char,
    result: *mut passwd,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract (above).
        let (Some(name), Some(buf)) = (unsafe { self::name(name) }, unsafe { buffer(buf, buflen) })
        else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        lookup::user_by_name(&System, name, &mut PasswdBuf { result, buf })
    });
    finish(status, errnop)
}

/// `getpwuid_r`.
///
/// # Safety
/// As [`_nss_oidc_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getpwuid_r(
    uid: uid_t,
    result: *mut passwd,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let Some(buf) = (unsafe { buffer(buf, buflen) }) else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        lookup::user_by_uid(&System, uid, &mut PasswdBuf { result, buf })
    });
    finish(status, errnop)
}

/// `getgrnam_r`.
///
/// # Safety
/// As [`_nss_oidc_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getgrnam_r(
    name: *const c_char,
    result: *mut group,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let (Some(name), Some(buf)) = (unsafe { self::name(name) }, unsafe { buffer(buf, buflen) })
        else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        lookup::group_by_name(&System, name, &mut GroupBuf { result, buf })
    });
    finish(status, errnop)
}

/// `getgrgid_r`.
///
/// # Safety
/// As [`_nss_oidc_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getgrgid_r(
    gid: gid_t,
    result: *mut group,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let Some(buf) = (unsafe { buffer(buf, buflen) }) else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        lookup::group_by_gid(&System, gid, &mut GroupBuf { result, buf })
    });
    finish(status, errnop)
}

/// `initgroups_dyn`: appends the user's supplementary GIDs to glibc's malloc'ed array.
///
/// # Safety
/// glibc's contract: a NUL-terminated name; `start`, `size` and `groupsp` valid, `*groupsp`
/// from malloc holding `*size` GIDs of which `*start` are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_initgroups_dyn(
    user: *const c_char,
    skipgroup: gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let Some(user) = (unsafe { name(user) }) else {
            return Status::Unavail;
        };
        // SAFETY: non-null checked first; glibc's contract for the rest.
        if start.is_null()
            || size.is_null()
            || groupsp.is_null()
            || unsafe { (*groupsp).is_null() || *start < 0 || *size < *start }
        {
            return Status::Unavail;
        }
        let mut gids = GlibcGids {
            start,
            size,
            groups: groupsp,
            skip: skipgroup,
            limit,
        };
        lookup::groups_of_user(&System, user, &mut gids)
    });
    finish(status, errnop)
}

/// `setpwent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_oidc_setpwent(_stayopen: c_int) -> c_int {
    finish(guard::run(enumerate::set_users), std::ptr::null_mut())
}

/// `getpwent_r`.
///
/// # Safety
/// As [`_nss_oidc_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getpwent_r(
    result: *mut passwd,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let Some(buf) = (unsafe { buffer(buf, buflen) }) else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        enumerate::next_user(&mut PasswdBuf { result, buf })
    });
    finish(status, errnop)
}

/// `endpwent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_oidc_endpwent() -> c_int {
    finish(guard::run(enumerate::end_users), std::ptr::null_mut())
}

/// `setgrent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_oidc_setgrent(_stayopen: c_int) -> c_int {
    finish(guard::run(enumerate::set_groups), std::ptr::null_mut())
}

/// `getgrent_r`.
///
/// # Safety
/// As [`_nss_oidc_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_oidc_getgrent_r(
    result: *mut group,
    buf: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    let status = guard::run(|| {
        // SAFETY: glibc's contract.
        let Some(buf) = (unsafe { buffer(buf, buflen) }) else {
            return Status::Unavail;
        };
        if result.is_null() {
            return Status::Unavail;
        }
        enumerate::next_group(&mut GroupBuf { result, buf })
    });
    finish(status, errnop)
}

/// `endgrent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_oidc_endgrent() -> c_int {
    finish(guard::run(enumerate::end_groups), std::ptr::null_mut())
}
