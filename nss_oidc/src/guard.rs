//! The hook bodies glibc's entry points call, each run through [`run`]: the loop guard first,
//! then the lookup, all inside `catch_unwind`.
//!
//! libnss calls the hooks directly from its `extern "C"` functions without catching panics,
//! and a panic reaching an `extern "C"` function aborts the host (sshd, sudo, systemd). Its
//! `setpwent`/`setgrent` also hold a process-wide `Mutex` while the hook runs, which a panic
//! would poison for every later enumeration. So nothing may unwind out of a hook: a panic
//! becomes UNAVAIL. The lint denies are the first defence, this is the last.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use libnss::group::{Group, GroupHooks};
use libnss::initgroups::InitgroupsHooks;
use libnss::interop::Response as Nss;
use libnss::passwd::{Passwd, PasswdHooks};

use crate::bypass;
use crate::lookup::{self, SystemDaemon};

/// The hooks the libnss macros in `lib.rs` export as `_nss_oidc_*`.
pub(crate) struct Oidc;

impl PasswdHooks for Oidc {
    fn get_all_entries() -> Nss<Vec<Passwd>> {
        run(bypass::active, || lookup::all_users(&SystemDaemon))
    }

    fn get_entry_by_uid(uid: libc::uid_t) -> Nss<Passwd> {
        run(bypass::active, || lookup::user_by_uid(&SystemDaemon, uid))
    }

    fn get_entry_by_name(name: String) -> Nss<Passwd> {
        run(bypass::active, || {
            lookup::user_by_name(&SystemDaemon, &name)
        })
    }
}

impl GroupHooks for Oidc {
    fn get_all_entries() -> Nss<Vec<Group>> {
        run(bypass::active, || lookup::all_groups(&SystemDaemon))
    }

    fn get_entry_by_gid(gid: libc::gid_t) -> Nss<Group> {
        run(bypass::active, || lookup::group_by_gid(&SystemDaemon, gid))
    }

    fn get_entry_by_name(name: String) -> Nss<Group> {
        run(bypass::active, || {
            lookup::group_by_name(&SystemDaemon, &name)
        })
    }
}

impl InitgroupsHooks for Oidc {
    fn get_entries_by_user(user: String) -> Nss<Vec<Group>> {
        run(bypass::active, || {
            lookup::groups_of_user(&SystemDaemon, &user)
        })
    }
}

/// Runs one hook body: NOTFOUND at once when `bypassed()` says this process must not ask the
/// daemon, else `body`'s answer, or UNAVAIL if either panics.
pub(crate) fn run<T>(bypassed: impl FnOnce() -> bool, body: impl FnOnce() -> Nss<T>) -> Nss<T> {
    quiet_panics();
    IN_HOOK.with(|h| h.set(true));
    // AssertUnwindSafe: after a panic nothing the closures touched is used again; the answer
    // is UNAVAIL and the (per-call) connection, if any, is dropped during unwinding.
    let answer = panic::catch_unwind(AssertUnwindSafe(|| {
        if bypassed() { Nss::NotFound } else { body() }
    }));
    IN_HOOK.with(|h| h.set(false));
    answer.unwrap_or(Nss::Unavail)
}

thread_local! {
    /// True while this thread runs a hook body.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Keeps a caught panic from printing "thread panicked at ..." on the host's stderr (sshd's,
/// or the terminal of `id`). Installed once; panics outside a hook body still reach the hook
/// that was there before. In the cdylib the panic hook belongs to the module's own copy of
/// std, so the host's own Rust code (if any) is not affected either way.
fn quiet_panics() {
    static INSTALL: Once = Once::new();
    if std::thread::panicking() {
        return; // set_hook would panic; leave things as they are
    }
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_HOOK.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use libnss::interop::NssStatus;

    use super::*;

    fn found() -> Nss<u32> {
        Nss::Success(7)
    }

    /// A panicking hook body answers UNAVAIL instead of unwinding into libnss.
    #[test]
    fn panicking_body_is_unavail() {
        let answer: Nss<u32> = run(|| false, || panic!("bug in a lookup"));
        assert_eq!(answer, Nss::Unavail);
        // The thread is usable afterwards and the next hook works normally.
        assert_eq!(run(|| false, found), Nss::Success(7));
    }

    /// A panic inside the loop guard is UNAVAIL too.
    #[test]
    fn panicking_guard_is_unavail() {
        assert_eq!(run(|| panic!("env"), found), Nss::Unavail);
    }

    /// When the loop guard says bypass, the answer is NOTFOUND and the daemon is not asked.
    #[test]
    fn bypass_is_notfound_without_a_call() {
        let answer: Nss<u32> = run(|| true, || panic!("the daemon was asked"));
        assert_eq!(answer, Nss::NotFound);
    }

    /// Without bypass, the body's answer passes through unchanged.
    #[test]
    fn answers_pass_through() {
        assert_eq!(run(|| false, found), Nss::Success(7));
        assert_eq!(
            run(|| false, || Nss::<u32>::NotFound).to_status(),
            NssStatus::NotFound
        );
        assert_eq!(
            run(|| false, || Nss::<u32>::Unavail).to_status(),
            NssStatus::Unavail
        );
    }
}
