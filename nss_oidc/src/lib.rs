//! `libnss_oidc.so.2`: the glibc NSS module that answers `passwd`, `group` and `initgroups`
//! for oidcd's users, from the daemon's memory-mapped map when it can and over the socket
//! otherwise.
//!
//! # Layout
//! - `ffi`: the eleven `extern "C"` entry points glibc calls (unsafe: raw pointers), each
//!   behind `guard` (`catch_unwind`: a panic is UNAVAIL, never an abort of sshd).
//! - [`lookup`]: which source answers (the map, the daemon, the map standing in for a daemon
//!   that cannot answer) and the NSS status of each outcome.
//! - [`mapping`]: the map file mapped into the process, shared by its threads without locks on
//!   the lookup path, remapped when replaced or expired (unsafe: mmap, munmap, the clock).
//! - [`fill`]: entries laid out in glibc's buffer (safe code on slices).
//! - `enumerate`: getpwent/getgrent over the socket.
//! - [`bypass`]: the loop guard (the daemon's own lookups never ask the daemon).
//!
//! # Exported symbols
//! `nm -D --defined-only libnss_oidc.so.2` lists exactly these eleven (`tests/tests/modules.rs`
//! checks it): `_nss_oidc_getpwnam_r`, `_nss_oidc_getpwuid_r`, `_nss_oidc_setpwent`,
//! `_nss_oidc_getpwent_r`, `_nss_oidc_endpwent`, `_nss_oidc_getgrnam_r`, `_nss_oidc_getgrgid_r`,
//! `_nss_oidc_setgrent`, `_nss_oidc_getgrent_r`, `_nss_oidc_endgrent`, `_nss_oidc_initgroups_dyn`.
#![deny(unsafe_code)]

pub mod bypass;
mod enumerate;
#[cfg(test)]
mod exports;
mod ffi;
pub mod fill;
mod guard;
pub mod lookup;
pub mod mapping;
