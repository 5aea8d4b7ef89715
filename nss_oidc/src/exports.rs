//! The C entry points exist under the names glibc looks for, and answer through the guard.
//!
//! Declaring the symbols here makes the test binary fail to link if a macro call is missing or
//! a name changes; CI also checks the built `.so` with `nm -D --defined-only`.
// Calling the module the way glibc does needs raw pointers.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::mem::MaybeUninit;

use libc::{c_char, c_int, c_long, gid_t, size_t, uid_t};

type CPasswd = libc::passwd;
type CGroup = libc::group;
const NOTFOUND: c_int = 0;

unsafe extern "C" {
    fn _nss_oidc_getpwnam_r(
        name: *const c_char,
        result: *mut CPasswd,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_getpwuid_r(
        uid: uid_t,
        result: *mut CPasswd,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_setpwent(stayopen: c_int) -> c_int;
    fn _nss_oidc_getpwent_r(
        result: *mut CPasswd,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_endpwent() -> c_int;
    fn _nss_oidc_getgrnam_r(
        name: *const c_char,
        result: *mut CGroup,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_getgrgid_r(
        gid: gid_t,
        result: *mut CGroup,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_setgrent(stayopen: c_int) -> c_int;
    fn _nss_oidc_getgrent_r(
        result: *mut CGroup,
        buf: *mut c_char,
        buflen: size_t,
        errnop: *mut c_int,
    ) -> c_int;
    fn _nss_oidc_endgrent() -> c_int;
    fn _nss_oidc_initgroups_dyn(
        name: *const c_char,
        skipgroup: gid_t,
        start: *mut c_long,
        size: *mut c_long,
        groupsp: *mut *mut gid_t,
        limit: c_long,
        errnop: *mut c_int,
    ) -> c_int;
}

/// All eleven entry points glibc looks up exist (the test links only if they do).
#[test]
fn all_entry_points_are_exported() {
    let symbols: [(&str, *const ()); 11] = [
        ("_nss_oidc_getpwnam_r", _nss_oidc_getpwnam_r as *const ()),
        ("_nss_oidc_getpwuid_r", _nss_oidc_getpwuid_r as *const ()),
        ("_nss_oidc_setpwent", _nss_oidc_setpwent as *const ()),
        ("_nss_oidc_getpwent_r", _nss_oidc_getpwent_r as *const ()),
        ("_nss_oidc_endpwent", _nss_oidc_endpwent as *const ()),
        ("_nss_oidc_getgrnam_r", _nss_oidc_getgrnam_r as *const ()),
        ("_nss_oidc_getgrgid_r", _nss_oidc_getgrgid_r as *const ()),
        ("_nss_oidc_setgrent", _nss_oidc_setgrent as *const ()),
        ("_nss_oidc_getgrent_r", _nss_oidc_getgrent_r as *const ()),
        ("_nss_oidc_endgrent", _nss_oidc_endgrent as *const ()),
        (
            "_nss_oidc_initgroups_dyn",
            _nss_oidc_initgroups_dyn as *const (),
        ),
    ];
    for (name, address) in symbols {
        assert!(!address.is_null(), "{name}");
    }
}

/// Through the real C entry points, an impossible name is NOTFOUND (0, errno ENOENT) without
/// a daemon.
#[test]
fn c_entry_points_answer_notfound_for_impossible_names() {
    let name = CString::new("no:such user").unwrap();
    let mut buf = [0 as c_char; 1024];
    let mut errno: c_int = 0;

    let mut pw = MaybeUninit::<CPasswd>::zeroed();
    // SAFETY: valid NUL-terminated name, writable result and buffer of the given length.
    let status = unsafe {
        _nss_oidc_getpwnam_r(
            name.as_ptr(),
            pw.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut errno,
        )
    };
    assert_eq!(status, NOTFOUND);

    let mut gr = MaybeUninit::<CGroup>::zeroed();
    // SAFETY: as above.
    let status = unsafe {
        _nss_oidc_getgrnam_r(
            name.as_ptr(),
            gr.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut errno,
        )
    };
    assert_eq!(status, NOTFOUND);

    // glibc's initgroups starts with the primary group in slot 0 of a malloc'ed array.
    // SAFETY: malloc of one gid; freed below (the module did not touch it on NOTFOUND).
    let mut groups = unsafe { libc::malloc(size_of::<gid_t>()) }.cast::<gid_t>();
    assert!(!groups.is_null());
    let (mut start, mut size): (c_long, c_long) = (1, 1);
    // SAFETY: valid name, counters and a malloc'ed array of `size` gids, as glibc passes them.
    let status = unsafe {
        _nss_oidc_initgroups_dyn(
            name.as_ptr(),
            100,
            &mut start,
            &mut size,
            &mut groups,
            -1,
            &mut errno,
        )
    };
    assert_eq!(status, NOTFOUND);
    assert_eq!(errno, libc::ENOENT);
    assert_eq!((start, size), (1, 1));
    // SAFETY: the pointer came from malloc (possibly moved by realloc, which it was not).
    unsafe { libc::free(groups.cast()) };
}
