//! Where each lookup is answered from, and the mapping of answers to NSS statuses.
//!
//! **The map** ([`crate::mapping`]) answers first when it is current (state 0, before its
//! `valid_until`): hits, and misses too (NOTFOUND at once: with `files oidc` every typo reaches
//! the module), except a passwd miss in a process that runs one of the map's sshd programs,
//! which asks the daemon (it may answer a provisional entry for a user's first SSH login).
//!
//! **The daemon** answers everything else: no map, a map behind the store (a change is being
//! written), replaced, expired, untrusted or corrupt. If the daemon cannot be asked (down,
//! frozen, or it says it is unavailable or busy) and the map, even behind or just replaced, is
//! within its `valid_until` and has the entry, the map answers; otherwise UNAVAIL. The loop guard ([`crate::bypass`])
//! is read once per process before anything (so the daemon's own helpers never see its users
//! in the map) and again before asking the daemon.
//!
//! The daemon's answers keep their contract with glibc:
//! - NOTFOUND only when the daemon itself answered [`Response::NotFound`] (or the name asked
//!   for cannot be a user or group name, answered without asking), or from a current map.
//!   glibc then reports "no such user" and nscd caches it, so anything less certain must not.
//! - UNAVAIL for every [`ClientError`], for [`Response::Unavailable`] and [`Response::Error`],
//!   for an answer of the wrong type, for an entry that is not well formed (a NUL, `:` or
//!   newline in a field) and for an entry that is not the one asked for.
//!
//! Every function here is cheap and idempotent: glibc calls again on each ERANGE retry with a
//! bigger buffer.

use std::path::Path;
use std::time::Duration;

use oidc_proto::client::{self, ClientError, TrustedOwner};
use oidc_proto::nss_map::{GroupRecord, MapView, UserRecord};
use oidc_proto::paths::SOCKET_PATH;
use oidc_proto::types::{ErrorCode, UnixGroup, UnixUser};
use oidc_proto::{Request, Response};

use crate::mapping::Freshness;

/// The whole budget of one call to the daemon: connect, send and receive. A frozen daemon
/// costs this much, then the lookup answers UNAVAIL (the spec allows 300 ms). A missing
/// socket is noticed before connecting and costs microseconds.
pub const DEADLINE: Duration = Duration::from_millis(250);

/// Longest user or group name the module will look up, in bytes.
pub const MAX_NAME_LEN: usize = oidc_proto::types::MAX_NAME_LEN;

/// The password field of every entry: no password here, authentication goes through PAM.
pub const NO_PASSWORD: &str = "*";

/// What a lookup tells glibc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The entry is in the caller's buffer.
    Success,
    /// No such entry (errno ENOENT).
    NotFound,
    /// The module cannot answer now (errno EAGAIN): glibc goes on to the next source.
    Unavail,
    /// Try again with errno: ERANGE for a buffer too small, ENOMEM when realloc failed.
    TryAgain(i32),
}

/// The daemon's answer to one request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// A well-formed entry for the key asked.
    Found(T),
    /// The daemon said there is no such entry.
    NotFound,
    /// The daemon could not be asked, or said it is unavailable or busy: the map may stand in.
    Unreachable,
    /// The daemon answered something unusable (an error, a malformed or foreign entry).
    Unavail,
}

/// Something that can answer a request: the real daemon, or a fake in tests.
pub trait Daemon {
    /// Sends `request` and returns the daemon's answer, or why there is none.
    fn call(&self, request: &Request) -> Result<Response, ClientError>;
}

/// The daemon at the compiled-in [`SOCKET_PATH`], which must be served by root. Connects per
/// call (no connection survives a call, so none is shared across `fork`), within [`DEADLINE`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDaemon;

impl Daemon for SystemDaemon {
    fn call(&self, request: &Request) -> Result<Response, ClientError> {
        client::call(
            Path::new(SOCKET_PATH),
            TrustedOwner::Root,
            request,
            DEADLINE,
        )
    }
}

/// The map as a lookup sees it.
pub struct MapRef<'a> {
    /// The map.
    pub view: MapView<'a>,
    /// Whether it may answer.
    pub fresh: Freshness,
    /// Whether this process runs one of the map's sshd programs (asked only on a miss).
    pub in_sshd: &'a dyn Fn() -> bool,
}

/// Everything a lookup uses: the map, the loop guard and the daemon.
pub trait Env {
    /// Runs `f` with the map, if there is a trusted one.
    fn with_map<R>(&self, f: impl FnMut(Option<MapRef<'_>>) -> R) -> R;
    /// True when this process must not ask the daemon ([`crate::bypass`]).
    fn bypassed(&self) -> bool;
    /// True when this process must get no answer at all, not even from the map (read once per
    /// process: [`crate::bypass::active_at_start`]).
    fn bypassed_at_start(&self) -> bool {
        false
    }
    /// The daemon.
    fn daemon(&self) -> &impl Daemon;
}

/// The real thing: the mapped file, the environment's loop guard, the socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Env for System {
    fn with_map<R>(&self, mut f: impl FnMut(Option<MapRef<'_>>) -> R) -> R {
        crate::mapping::with_map(|m| match m {
            Some((m, fresh)) => f(Some(MapRef {
                view: m.view(),
                fresh,
                in_sshd: &|| m.in_sshd(),
            })),
            None => f(None),
        })
    }
    fn bypassed(&self) -> bool {
        crate::bypass::active()
    }
    fn bypassed_at_start(&self) -> bool {
        crate::bypass::active_at_start()
    }
    fn daemon(&self) -> &impl Daemon {
        &SystemDaemon
    }
}

/// Where a lookup writes its entry (the caller's buffer, or a test's record).
pub trait PasswdOut {
    /// Copies a map record.
    fn copy_map(&mut self, u: &UserRecord<'_>) -> Status;
    /// Copies the daemon's entry (well formed).
    fn copy_daemon(&mut self, u: &UnixUser) -> Status;
}

/// Where a group lookup writes its entry.
pub trait GroupOut {
    /// Copies a map record; `None` if the record is corrupt (then the daemon is asked).
    fn copy_map(&mut self, g: &GroupRecord<'_>) -> Option<Status>;
    /// Copies the daemon's entry (well formed).
    fn copy_daemon(&mut self, g: &UnixGroup) -> Status;
}

/// A user's supplementary GIDs, sorted, each once.
#[derive(Debug, Clone, Copy)]
pub enum Gids<'a> {
    /// As the map stores them: little-endian u32s.
    Le(&'a [u8]),
    /// As the daemon sent them.
    List(&'a [u32]),
}

impl Gids<'_> {
    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Self::Le(b) => b.len() / 4,
            Self::List(l) => l.len(),
        }
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// GID `i` (`i < len`).
    fn get(&self, i: usize) -> u32 {
        match self {
            Self::Le(b) => b
                .get(i * 4..i * 4 + 4)
                .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            Self::List(l) => l.get(i).copied().unwrap_or(0),
        }
    }

    /// Whether `gid` is one of them (binary search: they are sorted).
    pub fn contains(&self, gid: u32) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&gid) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Copies as many as fit into `out`, in order; how many.
    pub fn copy_to(&self, out: &mut [u32]) -> usize {
        match self {
            Self::Le(b) => {
                let mut n = 0;
                for (slot, c) in out.iter_mut().zip(b.chunks_exact(4)) {
                    *slot = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    n += 1;
                }
                n
            }
            Self::List(l) => {
                let n = l.len().min(out.len());
                out[..n].copy_from_slice(&l[..n]);
                n
            }
        }
    }

    /// Calls `f` with each GID, in order, until it returns false.
    pub fn for_each(&self, mut f: impl FnMut(u32) -> bool) {
        match self {
            Self::Le(b) => {
                for c in b.chunks_exact(4) {
                    if !f(u32::from_le_bytes([c[0], c[1], c[2], c[3]])) {
                        return;
                    }
                }
            }
            Self::List(l) => {
                for &g in *l {
                    if !f(g) {
                        return;
                    }
                }
            }
        }
    }
}

/// Where `initgroups` adds GIDs.
pub trait GidsOut {
    /// Adds `gids` to the caller's list.
    fn add(&mut self, gids: Gids<'_>) -> Status;
}

/// A map lookup's result.
enum Hit {
    Found(Status),
    Miss,
    Corrupt,
}

/// What a miss in a current map means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misses {
    /// No such entry (groups, initgroups: no provisional entry has any).
    Final,
    /// No such entry, except in sshd, which asks the daemon (a provisional passwd entry).
    AskInSshd,
}

/// The rule of the module docs: map first if current, else the daemon, the map standing in
/// when the daemon cannot be asked.
fn lookup<T>(
    env: &impl Env,
    misses: Misses,
    mut from_map: impl FnMut(&MapView<'_>) -> Hit,
    mut ask: impl FnMut(&dyn Daemon) -> Answer<T>,
    mut emit: impl FnMut(T) -> Status,
) -> Status {
    if env.bypassed_at_start() {
        return Status::NotFound;
    }
    env.with_map(|map| {
        if let Some(m) = &map {
            if m.fresh == Freshness::Current {
                match from_map(&m.view) {
                    Hit::Found(s) => return s,
                    Hit::Miss if misses == Misses::Final || !(m.in_sshd)() => {
                        return Status::NotFound;
                    }
                    Hit::Miss | Hit::Corrupt => {}
                }
            }
        }
        if env.bypassed() {
            return Status::NotFound;
        }
        match ask(env.daemon()) {
            Answer::Found(t) => emit(t),
            Answer::NotFound => Status::NotFound,
            Answer::Unavail => Status::Unavail,
            Answer::Unreachable => match &map {
                Some(m) if m.fresh != Freshness::Unusable => match from_map(&m.view) {
                    Hit::Found(s) => s,
                    Hit::Miss | Hit::Corrupt => Status::Unavail,
                },
                _ => Status::Unavail,
            },
        }
    })
}

fn hit<T>(r: Result<Option<T>, oidc_proto::nss_map::MapError>, f: impl FnOnce(T) -> Hit) -> Hit {
    match r {
        Ok(Some(t)) => f(t),
        Ok(None) => Hit::Miss,
        Err(_) => Hit::Corrupt,
    }
}

/// `getpwnam`.
pub fn user_by_name(env: &impl Env, name: &[u8], out: &mut impl PasswdOut) -> Status {
    let Some(name) = plausible(name) else {
        return Status::NotFound;
    };
    let out = std::cell::RefCell::new(out);
    lookup(
        env,
        Misses::AskInSshd,
        |v| {
            hit(v.user_by_name(name.as_bytes()), |u| {
                Hit::Found(out.borrow_mut().copy_map(&u))
            })
        },
        |d| daemon_user_by_name(d, name),
        |u| out.borrow_mut().copy_daemon(&u),
    )
}

/// `getpwuid`.
pub fn user_by_uid(env: &impl Env, uid: u32, out: &mut impl PasswdOut) -> Status {
    let out = std::cell::RefCell::new(out);
    lookup(
        env,
        Misses::AskInSshd,
        |v| {
            hit(v.user_by_uid(uid), |u| {
                Hit::Found(out.borrow_mut().copy_map(&u))
            })
        },
        |d| daemon_user_by_uid(d, uid),
        |u| out.borrow_mut().copy_daemon(&u),
    )
}

/// `getgrnam`.
pub fn group_by_name(env: &impl Env, name: &[u8], out: &mut impl GroupOut) -> Status {
    let Some(name) = plausible(name) else {
        return Status::NotFound;
    };
    let out = std::cell::RefCell::new(out);
    lookup(
        env,
        Misses::Final,
        |v| {
            hit(v.group_by_name(name.as_bytes()), |g| {
                group_hit(out.borrow_mut().copy_map(&g))
            })
        },
        |d| daemon_group_by_name(d, name),
        |g| out.borrow_mut().copy_daemon(&g),
    )
}

/// `getgrgid`.
pub fn group_by_gid(env: &impl Env, gid: u32, out: &mut impl GroupOut) -> Status {
    let out = std::cell::RefCell::new(out);
    lookup(
        env,
        Misses::Final,
        |v| {
            hit(v.group_by_gid(gid), |g| {
                group_hit(out.borrow_mut().copy_map(&g))
            })
        },
        |d| daemon_group_by_gid(d, gid),
        |g| out.borrow_mut().copy_daemon(&g),
    )
}

fn group_hit(s: Option<Status>) -> Hit {
    s.map_or(Hit::Corrupt, Hit::Found)
}

/// `initgroups_dyn`: the user's supplementary GIDs.
pub fn groups_of_user(env: &impl Env, name: &[u8], out: &mut impl GidsOut) -> Status {
    let Some(name) = plausible(name) else {
        return Status::NotFound;
    };
    let out = std::cell::RefCell::new(out);
    lookup(
        env,
        Misses::Final,
        |v| {
            hit(v.user_by_name(name.as_bytes()), |u| {
                Hit::Found(out.borrow_mut().add(Gids::Le(u.gid_bytes())))
            })
        },
        |d| daemon_groups_of_user(d, name),
        |gids| out.borrow_mut().add(Gids::List(&gids)),
    )
}

/// The name as text if it could be a user or group the daemon serves.
fn plausible(name: &[u8]) -> Option<&str> {
    std::str::from_utf8(name)
        .ok()
        .filter(|n| is_plausible_name(n))
}

/// Whether `/proc/self/exe` is one of `paths` (a binary replaced by an upgrade shows as
/// "path (deleted)", as the daemon also allows).
pub fn exe_is_one_of<'a>(paths: impl Iterator<Item = &'a [u8]>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return false;
    };
    let exe = exe.as_os_str().as_bytes();
    let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
    paths.into_iter().any(|p| p == exe)
}

/// False for names no user or group can have, which are answered NOTFOUND without asking
/// (see [`oidc_proto::types::is_plausible_name`]). Answering `root` at once spares every
/// `initgroups("root")` (sudo, su, cron) the wait on a hung daemon.
pub fn is_plausible_name(name: &str) -> bool {
    oidc_proto::types::is_plausible_name(name)
}

/// The daemon's `getpwnam`.
pub fn daemon_user_by_name(daemon: &(impl Daemon + ?Sized), name: &str) -> Answer<UnixUser> {
    let request = Request::GetUserByName {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::User(user) if user.name == name => well_formed_user(user),
        _ => None,
    })
}

/// The daemon's `getpwuid`.
pub fn daemon_user_by_uid(daemon: &(impl Daemon + ?Sized), uid: u32) -> Answer<UnixUser> {
    ask(
        daemon,
        &Request::GetUserByUid { uid },
        |answer| match answer {
            Response::User(user) if user.uid == uid => well_formed_user(user),
            _ => None,
        },
    )
}

/// The daemon's `getgrnam`.
pub fn daemon_group_by_name(daemon: &(impl Daemon + ?Sized), name: &str) -> Answer<UnixGroup> {
    let request = Request::GetGroupByName {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::Group(group) if group.name == name => well_formed_group(group),
        _ => None,
    })
}

/// The daemon's `getgrgid`.
pub fn daemon_group_by_gid(daemon: &(impl Daemon + ?Sized), gid: u32) -> Answer<UnixGroup> {
    ask(
        daemon,
        &Request::GetGroupByGid { gid },
        |answer| match answer {
            Response::Group(group) if group.gid == gid => well_formed_group(group),
            _ => None,
        },
    )
}

/// The daemon's `initgroups`: the user's supplementary GIDs, sorted, each once.
pub fn daemon_groups_of_user(daemon: &(impl Daemon + ?Sized), name: &str) -> Answer<Vec<u32>> {
    let request = Request::GetGroupsOfUser {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::GroupIds { mut gids } => {
            gids.sort_unstable();
            gids.dedup();
            Some(gids)
        }
        _ => None,
    })
}

/// `setpwent`: every user the daemon enumerates (none when enumeration is disabled). One bad
/// entry makes the whole answer UNAVAIL: a daemon that sends it is not to be trusted.
pub fn all_users(daemon: &(impl Daemon + ?Sized)) -> Answer<Vec<UnixUser>> {
    ask(daemon, &Request::ListUsers, |answer| match answer {
        Response::Users { users } => users.into_iter().map(well_formed_user).collect(),
        _ => None,
    })
}

/// `setgrent`: every group the daemon enumerates (none when enumeration is disabled).
pub fn all_groups(daemon: &(impl Daemon + ?Sized)) -> Answer<Vec<UnixGroup>> {
    ask(daemon, &Request::ListGroups, |answer| match answer {
        Response::Groups { groups } => groups.into_iter().map(well_formed_group).collect(),
        _ => None,
    })
}

/// Asks once and checks the answer: `accept` returns `None` for anything that is not a
/// well-formed answer to this request.
fn ask<T>(
    daemon: &(impl Daemon + ?Sized),
    request: &Request,
    accept: impl FnOnce(Response) -> Option<T>,
) -> Answer<T> {
    match daemon.call(request) {
        Ok(Response::NotFound) => Answer::NotFound,
        // Busy is not an answer about the entry: the map (even behind the store) may stand in,
        // as for a daemon that cannot be asked.
        Ok(
            Response::Unavailable { .. }
            | Response::Error {
                code: ErrorCode::Busy,
                ..
            },
        )
        | Err(_) => Answer::Unreachable,
        Ok(answer) => accept(answer).map_or(Answer::Unavail, Answer::Found),
    }
}

fn well_formed_user(user: UnixUser) -> Option<UnixUser> {
    user.is_well_formed().then_some(user)
}

fn well_formed_group(group: UnixGroup) -> Option<UnixGroup> {
    group.is_well_formed().then_some(group)
}

#[cfg(test)]
mod tests;
