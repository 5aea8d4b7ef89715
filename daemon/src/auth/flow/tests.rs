//! In-process tests of the decision: a [`State`] around an in-memory store and account files in
//! a temporary directory, and [`Login::for_test`] in place of a PAM conversation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use oidc_proto::secret::Secret;
use oidc_proto::types::IdMap;
use serde_json::json;

use super::*;
use crate::clock::Clock;
use crate::config::{ClaimPath, IdRange, ProviderConfig};
use crate::identity::ids::{self, IdKind};
use crate::identity::local::LocalAccounts;
use crate::store::Store;

const ISSUER: &str = "https://idp.example.com";

/// 1000 UIDs, so that a colliding name is found in a few thousand tries.
const RANGE: IdRange = IdRange {
    min: 1_879_048_192,
    max: 1_879_049_191,
};

fn cfg() -> Config {
    let mut c = Config::default();
    c.mapping.uids = RANGE;
    c
}

/// A state with account files in a temporary directory (removed when dropped).
struct World {
    state: State,
    dir: PathBuf,
}

impl World {
    /// A world whose one provider follows the host's `[claims]`, `[access]` and `[mapping]`
    /// as `cfg` finally has them (the validated config gives every provider a copy).
    fn new(mut cfg: Config, passwd: &str, group: &str) -> Self {
        cfg.providers = vec![ProviderConfig {
            claims: cfg.claims.clone(),
            access: cfg.access.clone(),
            mapping: cfg.mapping.clone(),
            ..ProviderConfig::for_tests(ISSUER)
        }];
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oidcd-flow-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("group"), group).unwrap();
        let local = LocalAccounts::from_paths(&dir.join("passwd"), &dir.join("group"));
        let store = Store::open_in_memory().unwrap();
        let state = State::from_store(cfg, store, local, Clock::fixed(1_700_000_000));
        Self { state, dir }
    }

    /// The one provider.
    fn provider(&self) -> ProviderConfig {
        self.state.config().providers[0].clone()
    }

    /// The configuration as the provider sees it.
    fn scoped(&self) -> Config {
        let cfg = self.state.config();
        cfg.scoped(&cfg.providers[0])
    }

    fn plain() -> Self {
        Self::new(
            cfg(),
            "root:x:0:0::/root:/bin/sh\n",
            "root:x:0:\nsudo:x:27:\n",
        )
    }

    /// Imports claim sets as `oidcctl import` does (then the state's change hook runs).
    fn import(&self, entries: &[Value]) {
        let cfg = self.state.config();
        let local = self.state.local().unwrap();
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: 1_700_000_000,
        };
        let r = self.state.store(|s| s.import(&ctx, entries)).unwrap();
        drop(local);
        self.state.invalidate();
        assert!(r.is_ok(), "{r:?}");
    }

    fn uid_of(&self, name: &str) -> Option<u32> {
        self.state
            .store(|s| s.user_by_name(name))
            .unwrap()
            .map(|u| u.uid)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn claims(sub: &str, name: &str) -> Value {
    json!({"sub": sub, "preferred_username": name, "email": format!("{name}@example.com"),
           "email_verified": true})
}

fn reason(r: &Response) -> Option<LoginFailure> {
    match r {
        Response::LoginFailed { reason, .. } => Some(*reason),
        _ => None,
    }
}

fn message(r: &Response) -> String {
    match r {
        Response::LoginFailed { message, .. } => message.clone(),
        other => format!("{other:?}"),
    }
}

/// issue 15 #8: a store write that fails at login (a full disk, an I/O error) refuses the
/// login as an internal fault with a message that names no database error; it used to be
/// "name refused" carrying SQLite's own text to the SSH client.
#[test]
fn a_store_write_error_is_internal_and_keeps_the_database_error_in_the_log() {
    let w = World::plain();
    w.state
        .store(|s| {
            s.exec_for_test(
                "CREATE TRIGGER full BEFORE INSERT ON users \
                 BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
            )
        })
        .unwrap();
    let login = Login::for_test("alice", "sshd", None);
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-a", "alice"),
        "sub-a",
    );
    assert_eq!(reason(&r), Some(LoginFailure::Internal), "{r:?}");
    let m = message(&r);
    assert!(m.contains("cannot record the account"), "{m}");
    for leak in ["disk", "database", "SQLite", "sqlite"] {
        assert!(!m.contains(leak), "{leak:?} in {m:?}");
    }
    assert_eq!(w.uid_of("alice"), None);
}

/// A name or UID conflict is "name refused" with a message that does not reveal the other
/// identity's subject.
#[test]
fn a_conflict_refuses_the_name_without_naming_the_other_identity() {
    let w = World::plain();
    w.import(&[claims("sub-first", "alice")]);
    let login = Login::for_test("alice", "login", None);
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-second", "alice"),
        "sub-second",
    );
    assert_eq!(reason(&r), Some(LoginFailure::NameRefused), "{r:?}");
    assert!(!message(&r).contains("sub-first"), "{}", message(&r));
}

/// A name whose provisional (name-hashed) UID is `target`, searched the way an attacker would:
/// FNV is public.
fn name_hashing_onto(target: u32) -> String {
    (0..200_000)
        .map(|i| format!("m{i}"))
        .find(|n| ids::candidate(ISSUER, IdKind::User, &format!("name:{n}"), 0, RANGE) == target)
        .expect("no colliding name in 200000 tries")
}

/// issue 15 #6: a stranger picks a name whose provisional UID is alice's future UID and opens
/// an SSH connection (sshd holds that UID). alice's first login elsewhere still gets her own
/// UID: the provisional entry yields and is withdrawn, and the stranger's login, if approved,
/// is refused, as sshd holds a UID that is not the stranger's (whose account gets its own fleet
/// UID). Before, either alice got another UID on this host than on every other, or both ended
/// with one UID.
#[test]
fn a_provisional_uid_chosen_to_collide_yields_to_the_real_identity() {
    let w = World::plain();
    let alice_uid = ids::candidate(ISSUER, IdKind::User, "sub-alice", 0, RANGE);
    let m = name_hashing_onto(alice_uid);
    let entry = w.state.provisional_user(&m).expect("a provisional entry");
    assert_eq!(entry.uid, alice_uid);
    // The stranger's login begins (sshd holds the entry).
    let until = Instant::now() + Duration::from_secs(300);
    assert_eq!(w.state.pin_provisional(&m, until), Some(alice_uid));
    let stranger = Login::for_test(&m, "sshd", Some(alice_uid));

    // alice logs in at the console: her UID is the one every host computes from her subject.
    let console = Login::for_test("alice", "login", None);
    let r = decide(
        &w.state,
        &w.provider(),
        &console,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert_eq!(
        r,
        Response::LoginApproved {
            user: "alice".into(),
            offline_pin: None,
        }
    );
    assert_eq!(w.uid_of("alice"), Some(alice_uid));
    assert_eq!(
        w.state.provisional_by_uid(alice_uid),
        None,
        "the stranger's entry still holds alice's UID"
    );

    // The stranger's own identity approves their login: refused, and recorded with its own UID.
    let r = decide(
        &w.state,
        &w.provider(),
        &stranger,
        &claims("sub-m", &m),
        "sub-m",
    );
    assert_eq!(reason(&r), Some(LoginFailure::Expired), "{r:?}");
    assert!(message(&r).contains("connect again"), "{r:?}");
    let own = ids::candidate(ISSUER, IdKind::User, "sub-m", 0, RANGE);
    assert_eq!(w.uid_of(&m), Some(own));
    assert_ne!(own, alice_uid);
}

/// issue 15 #6: the provisional UID handed to sshd for alice is given meanwhile to another
/// identity by an ID-map import: the entry is withdrawn, and alice's login that began with it
/// is refused instead of ending with another UID than the one sshd runs her session as; her
/// account is recorded with her own fleet UID.
#[test]
fn an_id_map_import_takes_a_provisional_uid_and_the_login_is_refused() {
    let w = World::plain();
    let p = w.state.provisional_user("alice").unwrap().uid;
    let until = Instant::now() + Duration::from_secs(300);
    w.state.pin_provisional("alice", until);
    let login = Login::for_test("alice", "sshd", Some(p));
    let map = IdMap {
        format: IdMap::FORMAT.into(),
        issuer: ISSUER.into(),
        users: vec![oidc_proto::types::IdMapUser {
            sub: "sub-mallory".into(),
            name: "mallory".into(),
            uid: p,
            gid: p,
        }],
        groups: Vec::new(),
    };
    let cfg = w.state.config();
    {
        let local = w.state.local().unwrap();
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: 1_700_000_000,
        };
        let r = w.state.store(|s| s.import_map(&ctx, &map)).unwrap();
        assert_eq!(r, Ok(1));
    }
    w.state.invalidate();
    assert_eq!(
        w.state.provisional_by_uid(p),
        None,
        "alice's entry was not withdrawn"
    );
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert_eq!(reason(&r), Some(LoginFailure::Expired), "{r:?}");
    let own = ids::candidate(ISSUER, IdKind::User, "sub-alice", 0, RANGE);
    assert_ne!(own, p);
    assert_eq!(w.uid_of("alice"), Some(own));
    assert_eq!(w.uid_of("mallory"), Some(p));
}

/// issue 13: the first SSH login of a user new to this host (sshd holds the provisional UID,
/// hashed from the name) records the account with the UID every host gives the identity and
/// asks the user to connect again; the next connection resolves that UID and logs in.
#[test]
fn a_first_ssh_login_records_the_fleet_uid_and_asks_to_connect_again() {
    let w = World::plain();
    let p = w.state.provisional_user("alice").unwrap().uid;
    let own = ids::candidate(ISSUER, IdKind::User, "sub-alice", 0, RANGE);
    assert_ne!(p, own);
    let first = Login::for_test("alice", "sshd", Some(p));
    let r = decide(
        &w.state,
        &w.provider(),
        &first,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert_eq!(reason(&r), Some(LoginFailure::Expired), "{r:?}");
    assert!(
        message(&r).contains(&format!("UID {own}")) && message(&r).contains("connect again"),
        "{r:?}"
    );
    assert_eq!(w.uid_of("alice"), Some(own));
    assert_eq!(w.state.provisional_by_uid(p), None);
    let again = Login::for_test("alice", "sshd", Some(own));
    let r = decide(
        &w.state,
        &w.provider(),
        &again,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert!(matches!(r, Response::LoginApproved { .. }), "{r:?}");
}

/// The code a refused first SSH login shows, from its message.
fn shown_code(r: &Response) -> String {
    let m = message(r);
    let at = m
        .find("the code ")
        .unwrap_or_else(|| panic!("no code in {m:?}"))
        + 9;
    m[at..at + 9].to_string()
}

/// The refused first SSH login's code lets the next connection in without a new approval:
/// only for the same service and remote host and the UID the account now has, after a wrong
/// try, once; never for a revoked account.
#[test]
fn the_code_of_a_refused_first_ssh_login_resumes_it_once() {
    let w = World::plain();
    let p = w.state.provisional_user("alice").unwrap().uid;
    let own = ids::candidate(ISSUER, IdKind::User, "sub-alice", 0, RANGE);
    let first = Login::for_test("alice", "sshd", Some(p));
    let claims = claims("sub-alice", "alice");
    let r = decide(&w.state, &w.provider(), &first, &claims, "sub-alice");
    let code = shown_code(&r);
    assert!(message(&r).contains("connect again"), "{r:?}");

    let offer = |service: &str, rhost: Option<&str>, uid: u32| {
        resume::offer(&w.state, "alice", service, rhost, Some(uid))
    };
    assert!(matches!(
        offer("sshd", None, own),
        Some(Response::ResumeAvailable { .. })
    ));
    assert_eq!(offer("sshd", None, p), None, "offered to another UID");
    assert_eq!(
        offer("login", None, own),
        None,
        "offered to another service"
    );
    assert_eq!(
        offer("sshd", Some("192.0.2.9"), own),
        None,
        "offered elsewhere"
    );

    let try_code = |rhost: Option<&str>, typed: &str| {
        resume::resume(&w.state, "alice", "sshd", rhost, &Secret::new(typed))
    };
    let r = try_code(Some("192.0.2.9"), &code);
    assert_eq!(reason(&r), Some(LoginFailure::Expired), "{r:?}");
    let r = try_code(None, "BBBB-BBBB");
    assert_eq!(reason(&r), Some(LoginFailure::Denied), "{r:?}");
    assert!(message(&r).contains("2 tries left"), "{r:?}");
    let r = try_code(None, &code.to_lowercase());
    assert!(
        matches!(&r, Response::LoginApproved { user, .. } if user == "alice"),
        "{r:?}"
    );
    let r = try_code(None, &code);
    assert_eq!(reason(&r), Some(LoginFailure::Expired), "used twice: {r:?}");

    // A code issued, then the account revoked: the code does not get past the account phase.
    let again = Login::for_test("alice", "sshd", Some(p));
    let code = resume::issue(&w.state, &again, ISSUER, "sub-alice", own).unwrap();
    w.state
        .store(|s| s.revoke("alice", "test", 1_700_000_000, None))
        .unwrap();
    let r = try_code(None, &code);
    assert_eq!(reason(&r), Some(LoginFailure::NotAllowed), "{r:?}");
}

/// With `login.ssh_first_uid = "provisional"` the first SSH login ends with the provisional UID
/// sshd holds (one login; another UID than other hosts give).
#[test]
fn with_ssh_first_uid_provisional_a_first_ssh_login_keeps_its_provisional_uid() {
    let mut c = cfg();
    c.login.ssh_first_uid = SshFirstUid::Provisional;
    let w = World::new(c, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    let p = w.state.provisional_user("alice").unwrap().uid;
    let login = Login::for_test("alice", "sshd", Some(p));
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert!(matches!(r, Response::LoginApproved { .. }), "{r:?}");
    assert_eq!(w.uid_of("alice"), Some(p));
    assert_eq!(w.state.provisional_by_uid(p), None);
}

fn link_by_email_world() -> World {
    let mut c = cfg();
    c.access.link_by_email = true;
    c.access.allowed_email_domains = vec!["example.com".into()];
    World::new(
        c,
        "root:x:0:0::/root:/bin/sh\nbackup:x:34:34::/var/backups:/usr/sbin/nologin\n\
         git:x:1001:1001::/home/git:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n\
         alice:x:1002:1002::/home/alice:/bin/bash\nbuildbot:x:70001:70001::/srv:/bin/sh\n",
        "root:x:0:\n",
    )
}

/// issue 15 #7: `access.link_by_email` reaches only people's accounts: not `backup` (a system
/// UID), not `git` or `ubuntu` (service and cloud-image accounts in the people's UID range),
/// not an account outside UID_MIN..UID_MAX. Before, a verified `git@example.com` logged in as
/// the host's `git`.
#[test]
fn link_by_email_reaches_only_peoples_accounts() {
    let w = link_by_email_world();
    for name in ["backup", "git", "ubuntu", "buildbot"] {
        assert!(
            matches!(
                precheck_user(&w.state, &w.scoped(), name),
                Err(PrecheckRefusal::NotOurs(_))
            ),
            "{name}"
        );
        let login = Login::for_test(name, "sshd", None);
        let r = decide(
            &w.state,
            &w.provider(),
            &login,
            &claims(&format!("sub-{name}"), name),
            "s",
        );
        assert_eq!(reason(&r), Some(LoginFailure::WrongUser), "{name}: {r:?}");
    }
    assert_eq!(precheck_user(&w.state, &w.scoped(), "alice"), Ok(()));
    let login = Login::for_test("alice", "sshd", None);
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert!(matches!(r, Response::LoginApproved { .. }), "{r:?}");
    // Unverified: not linked.
    let mut unverified = claims("sub-alice", "alice");
    unverified["email_verified"] = json!(false);
    let r = decide(&w.state, &w.provider(), &login, &unverified, "sub-alice");
    assert_eq!(reason(&r), Some(LoginFailure::WrongUser), "{r:?}");
}

/// An explicit link wins over email: another identity with alice's verified address does not
/// get in once alice is linked.
#[test]
fn an_explicit_link_wins_over_link_by_email() {
    let w = link_by_email_world();
    w.state
        .store(|s| s.set_link("alice", ISSUER, "sub-alice", 1))
        .unwrap();
    let login = Login::for_test("alice", "sshd", None);
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-other", "alice"),
        "sub-other",
    );
    assert_eq!(reason(&r), Some(LoginFailure::WrongUser), "{r:?}");
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-alice", "alice"),
        "sub-alice",
    );
    assert!(matches!(r, Response::LoginApproved { .. }), "{r:?}");
}

/// issue 15 #7 at the login: with `username_claim = "email"`, an unverified address is refused
/// as "not allowed" and nothing is stored.
#[test]
fn a_name_from_an_unverified_email_is_refused_at_login() {
    let mut c = cfg();
    c.claims.username = ClaimPath("email".into());
    c.mapping.strip_suffixes = vec!["@example.com".into()];
    let w = World::new(c, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    let login = Login::for_test("alice", "sshd", None);
    let mut unverified = claims("sub-a", "alice");
    unverified["email_verified"] = json!(false);
    let r = decide(&w.state, &w.provider(), &login, &unverified, "sub-a");
    assert_eq!(reason(&r), Some(LoginFailure::NotAllowed), "{r:?}");
    assert!(message(&r).contains("not verified"), "{r:?}");
    assert_eq!(w.uid_of("alice"), None);
    let r = decide(
        &w.state,
        &w.provider(),
        &login,
        &claims("sub-a", "alice"),
        "sub-a",
    );
    assert!(matches!(r, Response::LoginApproved { .. }), "{r:?}");
}
