//! The six C entry points exist under the names libpam looks for and answer through
//! pam-bindings' guard. CI also checks the built `.so` with `nm -D --defined-only`.
// Calling the module the way libpam does needs raw pointers.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int};
use std::ptr;

use pam::constants::{PamFlag, PamResultCode};
use pam::module::PamHandle;

type Hook = unsafe extern "C" fn(*mut PamHandle, PamFlag, c_int, *const *const c_char) -> c_int;

unsafe extern "C" {
    fn pam_sm_authenticate(
        h: *mut PamHandle,
        f: PamFlag,
        c: c_int,
        v: *const *const c_char,
    ) -> c_int;
    fn pam_sm_setcred(h: *mut PamHandle, f: PamFlag, c: c_int, v: *const *const c_char) -> c_int;
    fn pam_sm_acct_mgmt(h: *mut PamHandle, f: PamFlag, c: c_int, v: *const *const c_char) -> c_int;
    fn pam_sm_open_session(
        h: *mut PamHandle,
        f: PamFlag,
        c: c_int,
        v: *const *const c_char,
    ) -> c_int;
    fn pam_sm_close_session(
        h: *mut PamHandle,
        f: PamFlag,
        c: c_int,
        v: *const *const c_char,
    ) -> c_int;
    fn pam_sm_chauthtok(h: *mut PamHandle, f: PamFlag, c: c_int, v: *const *const c_char) -> c_int;
}

/// All six entry points link, and each answers a null handle with PAM_ABORT instead of
/// touching it.
#[test]
fn all_entry_points_exist_and_reject_a_null_handle() {
    let hooks: [(&str, Hook); 6] = [
        ("pam_sm_authenticate", pam_sm_authenticate),
        ("pam_sm_setcred", pam_sm_setcred),
        ("pam_sm_acct_mgmt", pam_sm_acct_mgmt),
        ("pam_sm_open_session", pam_sm_open_session),
        ("pam_sm_close_session", pam_sm_close_session),
        ("pam_sm_chauthtok", pam_sm_chauthtok),
    ];
    for (name, hook) in hooks {
        // SAFETY: a null handle and no arguments; pam-bindings checks the handle first.
        let code = unsafe { hook(ptr::null_mut(), 0, 0, ptr::null()) };
        assert_eq!(code, PamResultCode::PAM_ABORT as c_int, "{name}");
    }
}
