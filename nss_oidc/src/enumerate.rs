//! `setpwent`/`getpwent_r`/`endpwent` and the group equivalents: served by the daemon (which
//! lists nothing unless `cache.enumerate` is on), one list per process as glibc expects.
//!
//! glibc already serialises these calls per database; the locks here are only taken with
//! `try_lock` (UNAVAIL on contention), so a lock held by a thread when the process forks can
//! never hang the child.

use std::sync::Mutex;

use oidc_proto::types::{UnixGroup, UnixUser};

use crate::lookup::{self, Answer, GroupOut, PasswdOut, Status, SystemDaemon};

/// The entries of one enumeration and the next one to hand out.
struct List<T> {
    entries: Vec<T>,
    next: usize,
}

static USERS: Mutex<Option<List<UnixUser>>> = Mutex::new(None);
static GROUPS: Mutex<Option<List<UnixGroup>>> = Mutex::new(None);

/// Asks the daemon for the list (nothing when the loop guard says not to ask).
fn load<T>(ask: impl FnOnce() -> Answer<Vec<T>>) -> Option<List<T>> {
    let entries = if crate::bypass::active() {
        Vec::new()
    } else {
        match ask() {
            Answer::Found(v) => v,
            Answer::NotFound => Vec::new(),
            Answer::Unreachable | Answer::Unavail => return None,
        }
    };
    Some(List { entries, next: 0 })
}

fn set<T>(slot: &Mutex<Option<List<T>>>, ask: impl FnOnce() -> Answer<Vec<T>>) -> Status {
    let Ok(mut slot) = slot.try_lock() else {
        return Status::Unavail;
    };
    *slot = load(ask);
    if slot.is_some() {
        Status::Success
    } else {
        Status::Unavail
    }
}

fn next<T>(
    slot: &Mutex<Option<List<T>>>,
    ask: impl FnOnce() -> Answer<Vec<T>>,
    emit: impl FnOnce(&T) -> Status,
) -> Status {
    let Ok(mut slot) = slot.try_lock() else {
        return Status::Unavail;
    };
    if slot.is_none() {
        *slot = load(ask); // getpwent without setpwent
    }
    let Some(list) = slot.as_mut() else {
        return Status::Unavail;
    };
    let Some(entry) = list.entries.get(list.next) else {
        return Status::NotFound;
    };
    let status = emit(entry);
    if status == Status::Success {
        list.next += 1; // on ERANGE glibc calls again with a bigger buffer for the same entry
    }
    status
}

fn end<T>(slot: &Mutex<Option<List<T>>>) -> Status {
    if let Ok(mut slot) = slot.try_lock() {
        *slot = None;
    }
    Status::Success
}

/// `setpwent`.
pub(crate) fn set_users() -> Status {
    set(&USERS, || lookup::all_users(&SystemDaemon))
}

/// `getpwent_r`.
pub(crate) fn next_user(out: &mut impl PasswdOut) -> Status {
    next(
        &USERS,
        || lookup::all_users(&SystemDaemon),
        |u| out.copy_daemon(u),
    )
}

/// `endpwent`.
pub(crate) fn end_users() -> Status {
    end(&USERS)
}

/// `setgrent`.
pub(crate) fn set_groups() -> Status {
    set(&GROUPS, || lookup::all_groups(&SystemDaemon))
}

/// `getgrent_r`.
pub(crate) fn next_group(out: &mut impl GroupOut) -> Status {
    next(
        &GROUPS,
        || lookup::all_groups(&SystemDaemon),
        |g| out.copy_daemon(g),
    )
}

/// `endgrent`.
pub(crate) fn end_groups() -> Status {
    end(&GROUPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries come one by one, an ERANGE repeats the same entry, the end is NOTFOUND, and a
    /// daemon that cannot be asked makes the enumeration UNAVAIL.
    #[test]
    fn walks_the_list() {
        let slot: Mutex<Option<List<u32>>> = Mutex::new(None);
        assert_eq!(set(&slot, || Answer::Found(vec![1, 2])), Status::Success);
        let mut seen = Vec::new();
        let erange = Status::TryAgain(libc::ERANGE);
        assert_eq!(next(&slot, || Answer::Unavail, |_| erange), erange);
        for _ in 0..2 {
            assert_eq!(
                next(
                    &slot,
                    || Answer::Unavail,
                    |&x| {
                        seen.push(x);
                        Status::Success
                    }
                ),
                Status::Success
            );
        }
        assert_eq!(seen, [1, 2]);
        assert_eq!(
            next(&slot, || Answer::Unavail, |_| Status::Success),
            Status::NotFound
        );
        assert_eq!(end(&slot), Status::Success);
        assert_eq!(set(&slot, || Answer::Unreachable), Status::Unavail);
        assert_eq!(
            next(&slot, || Answer::Unreachable, |_| Status::Success),
            Status::Unavail
        );
        // Without setpwent the list is loaded on the first call.
        end(&slot);
        assert_eq!(
            next(&slot, || Answer::Found(vec![9]), |_| Status::Success),
            Status::Success
        );
    }
}
