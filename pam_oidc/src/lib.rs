#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

pub mod account;
pub mod args;
pub mod auth;
#[cfg(test)]
mod exports;
mod hooks;
pub mod local;
pub mod offline;
pub mod prompt;
pub mod resume;
pub mod session;
pub mod syslog;
#[cfg(test)]
mod testing;

use std::ffi::CStr;

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};

/// The module as pam-bindings sees it: each hook forwards to [`hooks`].
struct PamOidc;

impl PamHooks for PamOidc {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        hooks::authenticate(pamh, &args, flags)
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        hooks::account(pamh, &args, flags)
    }

    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        hooks::change_password(pamh, &args, flags)
    }

    fn sm_setcred(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        hooks::nothing_to_do(pamh, &args, "setcred")
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        hooks::open_session(pamh, &args)
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        hooks::nothing_to_do(pamh, &args, "session")
    }
}

/// The six `pam_sm_*` C entry points. pam-bindings' macro expands to `#[no_mangle] unsafe
/// extern "C"` functions (each body inside `catch_unwind`): the only unsafe code besides
/// `syslog.rs`, so only this module allows it.
#[allow(unsafe_code)]
mod ffi {
    use super::PamOidc;

    pam::pam_hooks!(PamOidc);
}
