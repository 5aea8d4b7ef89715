//! One lookup = one request to the daemon, and the mapping of its answer to an NSS status.
//!
//! The mapping is the module's contract with glibc:
//! - NOTFOUND only when the daemon itself answered [`Response::NotFound`] (or the name asked
//!   for cannot be a user or group name, answered without asking). glibc then reports "no such
//!   user" and nscd caches it, so anything less certain must not say so.
//! - UNAVAIL for every [`ClientError`] (not running, timeout, untrusted socket, version
//!   mismatch, bad frame), for [`Response::Unavailable`] and [`Response::Error`], for an
//!   answer of the wrong type, for an entry that is not well formed (it could hold a NUL, which
//!   libnss would panic on, or a `:` or newline), and for an entry that is not the one asked for.
//!
//! Every function here is cheap and idempotent: libnss calls the hook again on each ERANGE
//! retry with a bigger buffer.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use libnss::group::Group;
use libnss::interop::Response as Nss;
use libnss::passwd::Passwd;
use oidc_proto::client::{self, ClientError, TrustedOwner};
use oidc_proto::paths::SOCKET_PATH;
use oidc_proto::types::{UnixGroup, UnixUser};
use oidc_proto::{Request, Response};

/// The whole budget of one lookup: connect, send and receive. A frozen daemon costs this much,
/// then the lookup answers UNAVAIL (the spec allows 300 ms). A missing socket is noticed
/// before connecting and costs microseconds.
pub const DEADLINE: Duration = Duration::from_millis(250);

/// Longest user or group name the module will ask the daemon about, in bytes.
pub const MAX_NAME_LEN: usize = oidc_proto::types::MAX_NAME_LEN;

/// The password field of every entry: no password here, authentication goes through PAM.
pub const NO_PASSWORD: &str = "*";

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

/// `getpwnam`.
pub fn user_by_name(daemon: &impl Daemon, name: &str) -> Nss<Passwd> {
    if !is_plausible_name(name) {
        return Nss::NotFound;
    }
    let request = Request::GetUserByName {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::User(user) if user.name == name => passwd(user),
        _ => None,
    })
}

/// `getpwuid`.
pub fn user_by_uid(daemon: &impl Daemon, uid: u32) -> Nss<Passwd> {
    ask(
        daemon,
        &Request::GetUserByUid { uid },
        |answer| match answer {
            Response::User(user) if user.uid == uid => passwd(user),
            _ => None,
        },
    )
}

/// `getgrnam`.
pub fn group_by_name(daemon: &impl Daemon, name: &str) -> Nss<Group> {
    if !is_plausible_name(name) {
        return Nss::NotFound;
    }
    let request = Request::GetGroupByName {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::Group(group) if group.name == name => group_entry(group),
        _ => None,
    })
}

/// `getgrgid`.
pub fn group_by_gid(daemon: &impl Daemon, gid: u32) -> Nss<Group> {
    ask(
        daemon,
        &Request::GetGroupByGid { gid },
        |answer| match answer {
            Response::Group(group) if group.gid == gid => group_entry(group),
            _ => None,
        },
    )
}

/// `initgroups_dyn`: the user's supplementary groups, each GID once. libnss uses only the
/// GIDs (and drops the one glibc already has), so the names are left empty.
pub fn groups_of_user(daemon: &impl Daemon, name: &str) -> Nss<Vec<Group>> {
    if !is_plausible_name(name) {
        return Nss::NotFound;
    }
    let request = Request::GetGroupsOfUser {
        name: name.to_owned(),
    };
    ask(daemon, &request, |answer| match answer {
        Response::GroupIds { gids } => {
            let mut seen = HashSet::with_capacity(gids.len());
            Some(
                gids.into_iter()
                    .filter(|gid| seen.insert(*gid))
                    .map(|gid| Group {
                        name: String::new(),
                        passwd: NO_PASSWORD.to_owned(),
                        gid,
                        members: Vec::new(),
                    })
                    .collect(),
            )
        }
        _ => None,
    })
}

/// `setpwent`: every user the daemon enumerates (none when enumeration is disabled). One bad
/// entry makes the whole answer UNAVAIL: a daemon that sends it is not to be trusted.
pub fn all_users(daemon: &impl Daemon) -> Nss<Vec<Passwd>> {
    ask(daemon, &Request::ListUsers, |answer| match answer {
        Response::Users { users } => users.into_iter().map(passwd).collect(),
        _ => None,
    })
}

/// `setgrent`: every group the daemon enumerates (none when enumeration is disabled).
pub fn all_groups(daemon: &impl Daemon) -> Nss<Vec<Group>> {
    ask(daemon, &Request::ListGroups, |answer| match answer {
        Response::Groups { groups } => groups.into_iter().map(group_entry).collect(),
        _ => None,
    })
}

/// False for names no user or group can have, which are answered NOTFOUND without asking
/// (see [`oidc_proto::types::is_plausible_name`]). Answering `root` at once spares every
/// `initgroups("root")` (sudo, su, cron) the wait on a hung daemon.
pub fn is_plausible_name(name: &str) -> bool {
    oidc_proto::types::is_plausible_name(name)
}

/// Asks once and maps the answer: `accept` returns `None` for anything that is not a
/// well-formed answer to this request.
fn ask<T>(
    daemon: &impl Daemon,
    request: &Request,
    accept: impl FnOnce(Response) -> Option<T>,
) -> Nss<T> {
    match daemon.call(request) {
        Ok(Response::NotFound) => Nss::NotFound,
        Ok(answer) => accept(answer).map_or(Nss::Unavail, Nss::Success),
        Err(_) => Nss::Unavail,
    }
}

/// The passwd entry for a well-formed user; `None` for any other.
fn passwd(user: UnixUser) -> Option<Passwd> {
    user.is_well_formed().then(|| Passwd {
        name: user.name,
        passwd: NO_PASSWORD.to_owned(),
        uid: user.uid,
        gid: user.gid,
        gecos: user.gecos,
        dir: user.home,
        shell: user.shell,
    })
}

/// The group entry for a well-formed group; `None` for any other.
fn group_entry(group: UnixGroup) -> Option<Group> {
    group.is_well_formed().then(|| Group {
        name: group.name,
        passwd: NO_PASSWORD.to_owned(),
        gid: group.gid,
        members: group.members,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io;
    use std::time::Instant;

    use libnss::interop::NssStatus;
    use oidc_proto::types::ErrorCode;

    use super::*;

    /// Answers from a script and records what it was asked.
    struct Fake {
        answer: RefCell<Option<Result<Response, ClientError>>>,
        asked: RefCell<Vec<Request>>,
    }

    impl Fake {
        fn answering(answer: Response) -> Self {
            Self::with(Ok(answer))
        }

        fn failing(error: ClientError) -> Self {
            Self::with(Err(error))
        }

        fn with(answer: Result<Response, ClientError>) -> Self {
            Self {
                answer: RefCell::new(Some(answer)),
                asked: RefCell::new(Vec::new()),
            }
        }

        fn asked(&self) -> Vec<Request> {
            self.asked.borrow().clone()
        }
    }

    impl Daemon for Fake {
        fn call(&self, request: &Request) -> Result<Response, ClientError> {
            self.asked.borrow_mut().push(request.clone());
            self.answer
                .borrow_mut()
                .take()
                .expect("the fake answers one call")
        }
    }

    fn alice() -> UnixUser {
        UnixUser {
            name: "alice".into(),
            uid: 70001,
            gid: 70001,
            gecos: "Alice (OIDC)".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn admins() -> UnixGroup {
        UnixGroup {
            name: "oidc-admins".into(),
            gid: 70100,
            members: vec!["alice".into()],
        }
    }

    fn client_errors() -> Vec<ClientError> {
        vec![
            ClientError::NotRunning("/run/oidcd/socket does not exist".into()),
            ClientError::Timeout,
            ClientError::Untrusted("owned by uid 1000".into()),
            ClientError::VersionMismatch { daemon: vec![2] },
            ClientError::Protocol("truncated frame".into()),
            ClientError::Io(io::Error::other("EBADF")),
        ]
    }

    /// Answers of a lookup's type that are not entries, and answers of other types.
    fn non_entry_answers() -> Vec<Response> {
        vec![
            Response::Unavailable {
                reason: "database locked".into(),
            },
            Response::error(ErrorCode::Internal, "boom"),
            Response::error(ErrorCode::Busy, "later"),
            Response::UnsupportedVersion { supported: vec![2] },
            Response::LoginPending,
            Response::Done {
                message: "ok".into(),
            },
        ]
    }

    /// Every lookup the module makes, run against `fake`, reduced to its status.
    fn every_lookup(make: impl Fn() -> Fake) -> Vec<(&'static str, NssStatus)> {
        vec![
            ("user_by_name", user_by_name(&make(), "alice").to_status()),
            ("user_by_uid", user_by_uid(&make(), 70001).to_status()),
            (
                "group_by_name",
                group_by_name(&make(), "oidc-admins").to_status(),
            ),
            ("group_by_gid", group_by_gid(&make(), 70100).to_status()),
            (
                "groups_of_user",
                groups_of_user(&make(), "alice").to_status(),
            ),
            ("all_users", all_users(&make()).to_status()),
            ("all_groups", all_groups(&make()).to_status()),
        ]
    }

    /// Only the daemon's own "not found" gives NOTFOUND, for every kind of lookup.
    #[test]
    fn daemon_not_found_is_notfound() {
        for (what, status) in every_lookup(|| Fake::answering(Response::NotFound)) {
            assert_eq!(status, NssStatus::NotFound, "{what}");
        }
    }

    /// Every client error (daemon down, frozen, impostor, other version, garbage) is UNAVAIL.
    #[test]
    fn every_client_error_is_unavail() {
        for i in 0..client_errors().len() {
            let make = || Fake::failing(client_errors().swap_remove(i));
            for (what, status) in every_lookup(make) {
                assert_eq!(
                    status,
                    NssStatus::Unavail,
                    "{what} with {:?}",
                    client_errors()[i]
                );
            }
        }
    }

    /// "Unavailable", errors and answers of the wrong type are UNAVAIL, never NOTFOUND.
    #[test]
    fn non_entry_answers_are_unavail() {
        for answer in non_entry_answers() {
            for (what, status) in every_lookup(|| Fake::answering(answer.clone())) {
                assert_eq!(status, NssStatus::Unavail, "{what} with {answer:?}");
            }
        }
    }

    /// A user answer to a group lookup (and the reverse) is UNAVAIL.
    #[test]
    fn crossed_answers_are_unavail() {
        let user = || Fake::answering(Response::User(alice()));
        let group = || Fake::answering(Response::Group(admins()));
        assert_eq!(
            group_by_name(&user(), "alice").to_status(),
            NssStatus::Unavail
        );
        assert_eq!(group_by_gid(&user(), 70001).to_status(), NssStatus::Unavail);
        assert_eq!(
            user_by_name(&group(), "oidc-admins").to_status(),
            NssStatus::Unavail
        );
        assert_eq!(user_by_uid(&group(), 70100).to_status(), NssStatus::Unavail);
        let users = || {
            Fake::answering(Response::Users {
                users: vec![alice()],
            })
        };
        assert_eq!(all_groups(&users()).to_status(), NssStatus::Unavail);
        assert_eq!(
            groups_of_user(&users(), "alice").to_status(),
            NssStatus::Unavail
        );
    }

    /// A found user becomes a passwd entry with `*` as its password, and is asked for by name.
    #[test]
    fn user_found_by_name() {
        let fake = Fake::answering(Response::User(alice()));
        let Nss::Success(p) = user_by_name(&fake, "alice") else {
            panic!("not found")
        };
        assert_eq!(
            fake.asked(),
            [Request::GetUserByName {
                name: "alice".into()
            }]
        );
        assert_eq!(
            (p.name.as_str(), p.passwd.as_str(), p.uid, p.gid),
            ("alice", "*", 70001, 70001)
        );
        assert_eq!(
            (p.gecos.as_str(), p.dir.as_str(), p.shell.as_str()),
            ("Alice (OIDC)", "/home/alice", "/bin/bash")
        );
    }

    /// A found group keeps its members and gets `*` as its password.
    #[test]
    fn group_found_by_gid() {
        let fake = Fake::answering(Response::Group(admins()));
        let Nss::Success(g) = group_by_gid(&fake, 70100) else {
            panic!("not found")
        };
        assert_eq!(fake.asked(), [Request::GetGroupByGid { gid: 70100 }]);
        assert_eq!(
            (g.name.as_str(), g.passwd.as_str(), g.gid),
            ("oidc-admins", "*", 70100)
        );
        assert_eq!(g.members, ["alice"]);
    }

    /// An entry for another key than the one asked for is UNAVAIL: the daemon is confused.
    #[test]
    fn entry_for_another_key_is_unavail() {
        let user = || Fake::answering(Response::User(alice()));
        let group = || Fake::answering(Response::Group(admins()));
        assert_eq!(user_by_name(&user(), "bob").to_status(), NssStatus::Unavail);
        assert_eq!(user_by_uid(&user(), 0).to_status(), NssStatus::Unavail);
        assert_eq!(
            group_by_name(&group(), "wheel").to_status(),
            NssStatus::Unavail
        );
        assert_eq!(group_by_gid(&group(), 0).to_status(), NssStatus::Unavail);
    }

    /// Entries with a NUL, `:` or newline in any field (which would panic libnss or corrupt a
    /// passwd line) are UNAVAIL, alone or inside an enumeration.
    #[test]
    fn malformed_entries_are_unavail() {
        let bad_users = [
            UnixUser {
                gecos: "A\0lice".into(),
                ..alice()
            },
            UnixUser {
                home: "/home/a:b".into(),
                ..alice()
            },
            UnixUser {
                shell: "/bin/sh\n".into(),
                ..alice()
            },
        ];
        for bad in bad_users {
            let one = Fake::answering(Response::User(bad.clone()));
            assert_eq!(
                user_by_uid(&one, 70001).to_status(),
                NssStatus::Unavail,
                "{bad:?}"
            );
            let one = Fake::answering(Response::User(bad.clone()));
            assert_eq!(
                user_by_name(&one, "alice").to_status(),
                NssStatus::Unavail,
                "{bad:?}"
            );
            let list = Fake::answering(Response::Users {
                users: vec![alice(), bad.clone()],
            });
            assert_eq!(all_users(&list).to_status(), NssStatus::Unavail, "{bad:?}");
        }
        let nameless = UnixUser {
            name: String::new(),
            ..alice()
        };
        let one = Fake::answering(Response::User(nameless));
        assert_eq!(user_by_uid(&one, 70001).to_status(), NssStatus::Unavail);

        let bad_groups = [
            UnixGroup {
                members: vec!["al\0ice".into()],
                ..admins()
            },
            UnixGroup {
                members: vec!["alice,root".into()],
                ..admins()
            },
            UnixGroup {
                members: vec![String::new()],
                ..admins()
            },
            UnixGroup {
                name: "a\0b".into(),
                ..admins()
            },
        ];
        for bad in bad_groups {
            let one = Fake::answering(Response::Group(bad.clone()));
            assert_eq!(
                group_by_gid(&one, 70100).to_status(),
                NssStatus::Unavail,
                "{bad:?}"
            );
            let list = Fake::answering(Response::Groups {
                groups: vec![admins(), bad.clone()],
            });
            assert_eq!(all_groups(&list).to_status(), NssStatus::Unavail, "{bad:?}");
        }
    }

    /// Names that cannot be user or group names are NOTFOUND without asking the daemon.
    #[test]
    fn impossible_names_are_notfound_without_a_call() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "", "a:b", "a/b", "a b", "a\tb", "a\nb", "a\u{7f}b", "a\u{a0}b", &long,
        ] {
            let fake = Fake::failing(ClientError::Timeout);
            assert_eq!(
                user_by_name(&fake, name).to_status(),
                NssStatus::NotFound,
                "{name:?}"
            );
            assert_eq!(
                group_by_name(&fake, name).to_status(),
                NssStatus::NotFound,
                "{name:?}"
            );
            assert_eq!(
                groups_of_user(&fake, name).to_status(),
                NssStatus::NotFound,
                "{name:?}"
            );
            assert!(fake.asked().is_empty(), "{name:?} reached the daemon");
        }
        let longest = "a".repeat(MAX_NAME_LEN);
        for name in ["alice", "a.b-c_d$", "ålice", "user@example.com", &longest] {
            assert!(is_plausible_name(name), "{name:?}");
        }
    }

    /// initgroups asks by name and returns each GID once, in the daemon's order.
    #[test]
    fn initgroups_dedupes_gids() {
        let fake = Fake::answering(Response::GroupIds {
            gids: vec![70100, 70101, 70100, 5],
        });
        let Nss::Success(groups) = groups_of_user(&fake, "alice") else {
            panic!("no groups")
        };
        assert_eq!(
            fake.asked(),
            [Request::GetGroupsOfUser {
                name: "alice".into()
            }]
        );
        let gids: Vec<u32> = groups.iter().map(|g| g.gid).collect();
        assert_eq!(gids, [70100, 70101, 5]);
        assert!(
            groups
                .iter()
                .all(|g| !g.name.contains('\0') && g.members.is_empty())
        );

        let none = Fake::answering(Response::GroupIds { gids: vec![] });
        let Nss::Success(groups) = groups_of_user(&none, "alice") else {
            panic!("failed")
        };
        assert!(groups.is_empty());
    }

    /// Enumeration asks ListUsers / ListGroups; an empty list (enumeration disabled) is a
    /// successful empty enumeration.
    #[test]
    fn enumeration() {
        let fake = Fake::answering(Response::Users {
            users: vec![alice()],
        });
        let Nss::Success(users) = all_users(&fake) else {
            panic!("failed")
        };
        assert_eq!(fake.asked(), [Request::ListUsers]);
        assert_eq!(users.len(), 1);

        let fake = Fake::answering(Response::Groups { groups: vec![] });
        let Nss::Success(groups) = all_groups(&fake) else {
            panic!("failed")
        };
        assert_eq!(fake.asked(), [Request::ListGroups]);
        assert!(groups.is_empty());
    }

    /// The deadline fits the spec's 300 ms for a frozen daemon.
    #[test]
    fn deadline_fits_the_spec() {
        assert!(DEADLINE <= Duration::from_millis(250));
        assert!(DEADLINE >= Duration::from_millis(100));
    }

    /// With no daemon installed, the real client answers UNAVAIL in well under 5 ms.
    #[test]
    fn system_daemon_absent_is_unavail_at_once() {
        if Path::new(SOCKET_PATH).exists() {
            return; // a daemon is installed on this machine: nothing to prove here
        }
        let start = Instant::now();
        assert_eq!(
            user_by_uid(&SystemDaemon, 70001).to_status(),
            NssStatus::Unavail
        );
        assert!(
            start.elapsed() < Duration::from_millis(5),
            "{:?}",
            start.elapsed()
        );
    }
}
