use std::cell::{Cell, RefCell};
use std::io;
use std::time::Instant;

use oidc_proto::nss_map::{MapEncoder, UserEntry};
use oidc_proto::types::ErrorCode;

use super::*;

/// Answers from a script and records what it was asked: the first answer given, then the
/// same response again (or a timeout, for an error).
struct Fake {
    answer: RefCell<Option<Result<Response, ClientError>>>,
    again: Option<Response>,
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
            again: answer.as_ref().ok().cloned(),
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
            .unwrap_or_else(|| self.again.clone().ok_or(ClientError::Timeout))
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

/// Answers that are errors or of other types than any lookup's.
fn non_entry_answers() -> Vec<Response> {
    vec![
        Response::error(ErrorCode::Internal, "boom"),
        Response::UnsupportedVersion { supported: vec![2] },
        Response::LoginPending,
        Response::Done {
            message: "ok".into(),
        },
    ]
}

fn kind<T>(a: &Answer<T>) -> &'static str {
    match a {
        Answer::Found(_) => "found",
        Answer::NotFound => "notfound",
        Answer::Unreachable => "unreachable",
        Answer::Unavail => "unavail",
    }
}

/// Every daemon lookup the module makes, run against `make()`, reduced to its kind.
fn every_lookup(make: impl Fn() -> Fake) -> Vec<(&'static str, &'static str)> {
    vec![
        ("user_by_name", kind(&daemon_user_by_name(&make(), "alice"))),
        ("user_by_uid", kind(&daemon_user_by_uid(&make(), 70001))),
        (
            "group_by_name",
            kind(&daemon_group_by_name(&make(), "oidc-admins")),
        ),
        ("group_by_gid", kind(&daemon_group_by_gid(&make(), 70100))),
        (
            "groups_of_user",
            kind(&daemon_groups_of_user(&make(), "alice")),
        ),
        ("all_users", kind(&all_users(&make()))),
        ("all_groups", kind(&all_groups(&make()))),
    ]
}

/// Only the daemon's own "not found" gives NOTFOUND, for every kind of lookup.
#[test]
fn daemon_not_found_is_notfound() {
    for (what, k) in every_lookup(|| Fake::answering(Response::NotFound)) {
        assert_eq!(k, "notfound", "{what}");
    }
}

/// Every client error (daemon down, frozen, impostor, other version, garbage) and the
/// daemon's "unavailable" and "busy" mean the daemon could not be asked (UNAVAIL, or the map
/// stands in).
#[test]
fn every_client_error_is_unreachable() {
    for i in 0..client_errors().len() {
        let make = || Fake::failing(client_errors().swap_remove(i));
        for (what, k) in every_lookup(make) {
            assert_eq!(k, "unreachable", "{what} with {:?}", client_errors()[i]);
        }
    }
    let down = || {
        Fake::answering(Response::Unavailable {
            reason: "database locked".into(),
        })
    };
    for (what, k) in every_lookup(down) {
        assert_eq!(k, "unreachable", "{what}");
    }
    // Busy (its connection limits reached): not an answer about the entry either.
    let busy = || Fake::answering(Response::error(ErrorCode::Busy, "later"));
    for (what, k) in every_lookup(busy) {
        assert_eq!(k, "unreachable", "{what}");
    }
}

/// Errors and answers of the wrong type are UNAVAIL, never NOTFOUND.
#[test]
fn non_entry_answers_are_unavail() {
    for answer in non_entry_answers() {
        for (what, k) in every_lookup(|| Fake::answering(answer.clone())) {
            assert_eq!(k, "unavail", "{what} with {answer:?}");
        }
    }
}

/// A user answer to a group lookup (and the reverse), or an entry for another key, is UNAVAIL.
#[test]
fn crossed_and_foreign_answers_are_unavail() {
    let user = || Fake::answering(Response::User(alice()));
    let group = || Fake::answering(Response::Group(admins()));
    assert_eq!(daemon_group_by_name(&user(), "alice"), Answer::Unavail);
    assert_eq!(daemon_group_by_gid(&user(), 70001), Answer::Unavail);
    assert_eq!(
        daemon_user_by_name(&group(), "oidc-admins"),
        Answer::Unavail
    );
    assert_eq!(daemon_user_by_uid(&group(), 70100), Answer::Unavail);
    assert_eq!(daemon_user_by_name(&user(), "bob"), Answer::Unavail);
    assert_eq!(daemon_user_by_uid(&user(), 0), Answer::Unavail);
    assert_eq!(daemon_group_by_name(&group(), "wheel"), Answer::Unavail);
    assert_eq!(daemon_group_by_gid(&group(), 0), Answer::Unavail);
    let users = || {
        Fake::answering(Response::Users {
            users: vec![alice()],
        })
    };
    assert_eq!(kind(&all_groups(&users())), "unavail");
    assert_eq!(daemon_groups_of_user(&users(), "alice"), Answer::Unavail);
}

/// Entries with a NUL, `:` or newline in any field (they would corrupt a passwd line) are
/// UNAVAIL, alone or inside an enumeration.
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
        UnixUser {
            name: String::new(),
            ..alice()
        },
    ];
    for bad in bad_users {
        let one = Fake::answering(Response::User(bad.clone()));
        assert_eq!(daemon_user_by_uid(&one, 70001), Answer::Unavail, "{bad:?}");
        let list = Fake::answering(Response::Users {
            users: vec![alice(), bad.clone()],
        });
        assert_eq!(kind(&all_users(&list)), "unavail", "{bad:?}");
    }
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
        assert_eq!(daemon_group_by_gid(&one, 70100), Answer::Unavail, "{bad:?}");
        let list = Fake::answering(Response::Groups {
            groups: vec![admins(), bad.clone()],
        });
        assert_eq!(kind(&all_groups(&list)), "unavail", "{bad:?}");
    }
}

/// initgroups returns each GID once, sorted.
#[test]
fn initgroups_dedupes_gids() {
    let fake = Fake::answering(Response::GroupIds {
        gids: vec![70100, 70101, 70100, 5],
    });
    assert_eq!(
        daemon_groups_of_user(&fake, "alice"),
        Answer::Found(vec![5, 70100, 70101])
    );
    assert_eq!(
        fake.asked(),
        [Request::GetGroupsOfUser {
            name: "alice".into()
        }]
    );
}

/// The deadline fits the spec's 300 ms for a frozen daemon.
#[test]
fn deadline_fits_the_spec() {
    assert!(DEADLINE <= Duration::from_millis(250));
    assert!(DEADLINE >= Duration::from_millis(100));
}

/// With no daemon installed, the real client answers at once.
#[test]
fn system_daemon_absent_is_unreachable_at_once() {
    if Path::new(SOCKET_PATH).exists() {
        return; // a daemon is installed on this machine: nothing to prove here
    }
    let start = Instant::now();
    assert_eq!(
        daemon_user_by_uid(&SystemDaemon, 70001),
        Answer::Unreachable
    );
    assert!(
        start.elapsed() < Duration::from_millis(5),
        "{:?}",
        start.elapsed()
    );
}

// ----- The map and the daemon together -----

/// A test world: an optional map (bytes, freshness, sshd or not), a loop guard and a daemon.
struct World {
    map: Option<(Vec<u8>, Freshness)>,
    sshd: bool,
    bypass: bool,
    daemon: Fake,
}

impl Env for World {
    fn with_map<R>(&self, mut f: impl FnMut(Option<MapRef<'_>>) -> R) -> R {
        match &self.map {
            Some((bytes, fresh)) => {
                let (_, _, view) = MapView::from_file(bytes).unwrap();
                let sshd = self.sshd;
                f(Some(MapRef {
                    view,
                    fresh: *fresh,
                    in_sshd: &move || sshd,
                }))
            }
            None => f(None),
        }
    }
    fn bypassed(&self) -> bool {
        self.bypass
    }
    fn daemon(&self) -> &impl Daemon {
        &self.daemon
    }
}

fn map_bytes() -> Vec<u8> {
    let mut e = MapEncoder::new(11);
    e.add_user(&UserEntry {
        name: "alice",
        uid: 70001,
        gid: 70001,
        gecos: "from the map",
        dir: "/home/alice",
        shell: "/bin/bash",
        gids: &[70100, 27],
    })
    .unwrap();
    e.add_group("oidc-admins", 70100, ["alice"]).unwrap();
    e.to_vec(1, i64::MAX).unwrap()
}

fn world(fresh: Option<Freshness>, daemon: Fake) -> World {
    World {
        map: fresh.map(|f| (map_bytes(), f)),
        sshd: false,
        bypass: false,
        daemon,
    }
}

/// Records where an entry came from.
#[derive(Default)]
struct Out {
    got: Vec<String>,
}

impl PasswdOut for Out {
    fn copy_map(&mut self, u: &UserRecord<'_>) -> Status {
        self.got
            .push(format!("map:{}", String::from_utf8_lossy(u.field(2))));
        Status::Success
    }
    fn copy_daemon(&mut self, u: &UnixUser) -> Status {
        self.got.push(format!("daemon:{}", u.gecos));
        Status::Success
    }
}

impl GroupOut for Out {
    fn copy_map(&mut self, g: &GroupRecord<'_>) -> Option<Status> {
        self.got.push(format!("map:{}", g.gid));
        Some(Status::Success)
    }
    fn copy_daemon(&mut self, g: &UnixGroup) -> Status {
        self.got.push(format!("daemon:{}", g.gid));
        Status::Success
    }
}

impl GidsOut for Out {
    fn add(&mut self, gids: Gids<'_>) -> Status {
        let mut v = Vec::new();
        gids.for_each(|g| {
            v.push(g.to_string());
            true
        });
        self.got.push(v.join(","));
        Status::Success
    }
}

fn daemon_alice() -> Fake {
    Fake::answering(Response::User(alice()))
}

/// A current map answers hits and misses itself: the daemon is never asked.
#[test]
fn current_map_answers_hits_and_misses() {
    let w = world(
        Some(Freshness::Current),
        Fake::failing(ClientError::Timeout),
    );
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    assert_eq!(user_by_uid(&w, 70001, &mut out), Status::Success);
    assert_eq!(group_by_name(&w, b"oidc-admins", &mut out), Status::Success);
    assert_eq!(group_by_gid(&w, 70100, &mut out), Status::Success);
    assert_eq!(groups_of_user(&w, b"alice", &mut out), Status::Success);
    assert_eq!(
        out.got,
        [
            "map:from the map",
            "map:from the map",
            "map:70100",
            "map:70100",
            "27,70100"
        ]
    );
    assert_eq!(user_by_name(&w, b"bob", &mut out), Status::NotFound);
    assert_eq!(user_by_uid(&w, 1, &mut out), Status::NotFound);
    assert_eq!(group_by_gid(&w, 1, &mut out), Status::NotFound);
    assert_eq!(groups_of_user(&w, b"bob", &mut out), Status::NotFound);
    assert!(w.daemon.asked().is_empty());
}

/// In sshd a miss asks the daemon (the provisional entry of a first SSH login); a hit does not.
#[test]
fn sshd_misses_ask_the_daemon() {
    let mut w = world(Some(Freshness::Current), daemon_alice());
    w.sshd = true;
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    assert!(w.daemon.asked().is_empty());
    let mut w = world(
        Some(Freshness::Current),
        Fake::answering(Response::User(UnixUser {
            name: "newbie".into(),
            ..alice()
        })),
    );
    w.sshd = true;
    assert_eq!(user_by_name(&w, b"newbie", &mut out), Status::Success);
    assert_eq!(out.got.last().unwrap(), "daemon:Alice (OIDC)");
    // sshd and the daemon down: a miss is UNAVAIL, not NOTFOUND.
    let mut w = world(
        Some(Freshness::Current),
        Fake::failing(ClientError::Timeout),
    );
    w.sshd = true;
    assert_eq!(user_by_name(&w, b"newbie", &mut out), Status::Unavail);
}

/// In sshd a group or initgroups miss is final, as anywhere: provisional entries have no groups,
/// so a frozen daemon costs sshd nothing there (issue 15 #9).
#[test]
fn sshd_group_misses_do_not_ask_the_daemon() {
    let mut w = world(
        Some(Freshness::Current),
        Fake::failing(ClientError::Timeout),
    );
    w.sshd = true;
    let mut out = Out::default();
    assert_eq!(groups_of_user(&w, b"localbob", &mut out), Status::NotFound);
    assert_eq!(
        group_by_name(&w, b"nosuchgroup", &mut out),
        Status::NotFound
    );
    assert_eq!(group_by_gid(&w, 4242, &mut out), Status::NotFound);
    assert!(w.daemon.asked().is_empty());
}

/// A map behind the store is not used while the daemon answers (hits and misses alike).
#[test]
fn behind_map_asks_the_daemon() {
    let w = world(Some(Freshness::Behind), daemon_alice());
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    assert_eq!(out.got, ["daemon:Alice (OIDC)"]);
    let w = world(Some(Freshness::Behind), Fake::answering(Response::NotFound));
    assert_eq!(
        user_by_name(&w, b"alice", &mut out),
        Status::NotFound,
        "removed"
    );
}

/// Daemon down or frozen: a map within its TTL (current or behind) answers what it has; a miss
/// is UNAVAIL; an unusable (expired, replaced) map answers nothing.
#[test]
fn map_stands_in_when_the_daemon_cannot_answer() {
    {
        let fresh = Freshness::Behind;
        let w = world(Some(fresh), Fake::failing(ClientError::Timeout));
        let mut out = Out::default();
        assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
        assert_eq!(out.got, ["map:from the map"]);
        let w = world(Some(fresh), Fake::failing(ClientError::Timeout));
        assert_eq!(user_by_name(&w, b"bob", &mut out), Status::Unavail);
        let w = world(
            Some(fresh),
            Fake::answering(Response::Unavailable {
                reason: "db".into(),
            }),
        );
        assert_eq!(group_by_gid(&w, 70100, &mut out), Status::Success);
    }
    for w in [
        world(
            Some(Freshness::Unusable),
            Fake::failing(ClientError::Timeout),
        ),
        world(None, Fake::failing(ClientError::Timeout)),
    ] {
        let mut out = Out::default();
        assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Unavail);
        assert_eq!(user_by_name(&w, b"bob", &mut out), Status::Unavail);
        assert_eq!(groups_of_user(&w, b"alice", &mut out), Status::Unavail);
        assert!(out.got.is_empty());
    }
}

/// An unusable map never answers, not even NOTFOUND; the daemon does.
#[test]
fn unusable_map_never_answers() {
    let w = world(Some(Freshness::Unusable), daemon_alice());
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    assert_eq!(out.got, ["daemon:Alice (OIDC)"]);
    let w = world(
        Some(Freshness::Unusable),
        Fake::answering(Response::NotFound),
    );
    assert_eq!(user_by_name(&w, b"zed", &mut out), Status::NotFound);
    assert_eq!(w.daemon.asked().len(), 1);
}

/// The loop guard stops calls to the daemon (NOTFOUND at once) but not map answers.
#[test]
fn loop_guard_only_guards_the_daemon() {
    let mut w = world(
        Some(Freshness::Current),
        Fake::failing(ClientError::Timeout),
    );
    w.bypass = true;
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    let mut w = world(None, Fake::failing(ClientError::Timeout));
    w.bypass = true;
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::NotFound);
    assert!(w.daemon.asked().is_empty());
}

/// Names that cannot be user or group names are NOTFOUND without the map or the daemon.
#[test]
fn impossible_names_are_notfound_without_a_call() {
    let long = "a".repeat(MAX_NAME_LEN + 1);
    for name in [
        &b""[..],
        b"a:b",
        b"a/b",
        b"a b",
        b"a\tb",
        b"a\nb",
        b"a\x7fb",
        "a\u{a0}b".as_bytes(),
        long.as_bytes(),
        b"root",
        b"\xff\xfe",
    ] {
        let w = world(None, Fake::failing(ClientError::Timeout));
        let mut out = Out::default();
        assert_eq!(
            user_by_name(&w, name, &mut out),
            Status::NotFound,
            "{name:?}"
        );
        assert_eq!(
            group_by_name(&w, name, &mut out),
            Status::NotFound,
            "{name:?}"
        );
        assert_eq!(
            groups_of_user(&w, name, &mut out),
            Status::NotFound,
            "{name:?}"
        );
        assert!(w.daemon.asked().is_empty(), "{name:?} reached the daemon");
    }
    let longest = "a".repeat(MAX_NAME_LEN);
    for name in ["alice", "a.b-c_d$", "ålice", "user@example.com", &longest] {
        assert!(is_plausible_name(name), "{name:?}");
    }
}

/// A corrupt record in a current map is not trusted: the daemon answers.
#[test]
fn corrupt_record_asks_the_daemon() {
    let mut bytes = map_bytes();
    let (_, _, v) = MapView::from_file(&bytes).unwrap();
    let rec = oidc_proto::nss_map::section_ranges(v.layout())[4].start;
    bytes[rec + 12] = 0xff; // alice's blob length now runs past the records
    bytes[rec + 13] = 0xff;
    let w = World {
        map: Some((bytes, Freshness::Current)),
        sshd: false,
        bypass: false,
        daemon: daemon_alice(),
    };
    let mut out = Out::default();
    assert_eq!(user_by_name(&w, b"alice", &mut out), Status::Success);
    assert_eq!(out.got, ["daemon:Alice (OIDC)"]);
    let calls = Cell::new(w.daemon.asked().len());
    assert_eq!(calls.get(), 1);
}

/// The sshd check compares this process's executable with the list, and nothing else.
#[test]
fn exe_check() {
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    use std::os::unix::ffi::OsStrExt;
    let me = me.as_os_str().as_bytes();
    assert!(exe_is_one_of([&b"/usr/sbin/sshd"[..], me].into_iter()));
    assert!(!exe_is_one_of([&b"/usr/sbin/sshd"[..]].into_iter()));
    assert!(!exe_is_one_of(std::iter::empty()));
}
