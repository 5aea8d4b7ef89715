//! `libnss_oidc.so.2`: the glibc NSS module that answers `passwd`, `group` and `initgroups`
//! from oidcd, over `oidc_proto`'s client (one connection and one 250 ms deadline per lookup).
//!
//! # Layout
//! - `guard`: the hook bodies; each runs behind the loop guard and `catch_unwind`, so a panic
//!   is UNAVAIL, never an abort of sshd or a poisoned libnss lock.
//! - [`lookup`]: request → NSS status through the [`lookup::Daemon`] trait. NOTFOUND only when
//!   the daemon said so; every other failure is UNAVAIL.
//! - [`bypass`]: the loop guard (the daemon's own lookups answer NOTFOUND at once).
//!
//! # Exported symbols
//! `nm -D --defined-only libnss_oidc.so.2` lists exactly these eleven (checked at link time by
//! `exports.rs`): `_nss_oidc_getpwnam_r`, `_nss_oidc_getpwuid_r`, `_nss_oidc_setpwent`,
//! `_nss_oidc_getpwent_r`, `_nss_oidc_endpwent`, `_nss_oidc_getgrnam_r`, `_nss_oidc_getgrgid_r`,
//! `_nss_oidc_setgrent`, `_nss_oidc_getgrent_r`, `_nss_oidc_endgrent`, `_nss_oidc_initgroups_dyn`.
#![deny(unsafe_code)]

pub mod bypass;
#[cfg(test)]
mod exports;
mod guard;
pub mod lookup;

/// The C entry points glibc calls. The libnss macros expand to `#[no_mangle] unsafe extern "C"`
/// functions that take raw pointers from glibc: the crate's only unsafe code, so this module
/// alone allows it (rustc does not lint inside another crate's macros today; the allow says
/// where the unsafe code is and keeps building if that changes). Nothing else goes here.
#[allow(unsafe_code)]
mod ffi {
    use crate::guard::Oidc;

    libnss::libnss_passwd_hooks!(oidc, Oidc);
    libnss::libnss_group_hooks!(oidc, Oidc);
    libnss::libnss_initgroups_hooks!(oidc, Oidc);
}
