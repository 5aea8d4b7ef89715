use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use oidc_proto::types::IdMap;
use serde_json::{Value, json};

use super::*;
use crate::config::{ClaimPath, Config, ProviderConfig, UidSource};
use crate::identity::ids::{self, IdKind};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::{self, MappedUser};

pub(super) const ISSUER: &str = "https://idp.example.com";
pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn cfg() -> Config {
    Config {
        providers: vec![ProviderConfig::for_tests(ISSUER)],
        ..Config::default()
    }
}

/// A temporary directory, removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "oidcd-store-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The host's accounts read from `passwd` and `group` written into `dir`.
pub(super) fn local_from(dir: &TempDir, passwd: &str, group: &str) -> LocalAccounts {
    let (p, g) = (dir.0.join("passwd"), dir.0.join("group"));
    std::fs::write(&p, passwd).unwrap();
    std::fs::write(&g, group).unwrap();
    let mut local = LocalAccounts::from_paths(&p, &g);
    local.refresh().unwrap();
    local
}

/// A host without local accounts.
pub(super) fn no_local() -> LocalAccounts {
    LocalAccounts::from_paths(
        Path::new("/nonexistent/passwd"),
        Path::new("/nonexistent/group"),
    )
}

pub(super) fn claims(sub: &str, name: &str, groups: &[&str]) -> Value {
    json!({"sub": sub, "preferred_username": name, "name": format!("{name} Example"), "groups": groups})
}

pub(super) fn mapped(c: &Value, cfg: &Config, local: &LocalAccounts) -> MappedUser {
    mapping::map_claims(c, cfg, local).unwrap()
}

/// Maps and applies `c` as a login.
pub(super) fn apply_with(
    store: &mut Store,
    cfg: &Config,
    local: &LocalAccounts,
    c: &Value,
) -> Result<Applied, StoreError> {
    let ctx = NewIds {
        issuer: ISSUER,
        cfg,
        local,
        now: NOW,
    };
    store.apply_user(&ctx, &mapped(c, cfg, local), c, Source::Login, None)
}

pub(super) fn apply(store: &mut Store, c: &Value) -> Result<Applied, StoreError> {
    apply_with(store, &cfg(), &no_local(), c)
}

pub(super) fn store() -> Store {
    Store::open_in_memory().unwrap()
}

pub(super) fn user_candidate(sub: &str, attempt: u32) -> u32 {
    ids::candidate(ISSUER, IdKind::User, sub, attempt, cfg().mapping.uids)
}

fn members(s: &Store, group: &str) -> Vec<String> {
    s.group_by_name(group).unwrap().unwrap().members
}

// ---- Users and groups ----

/// A new user gets the hash UID of its subject, in range, with primary GID = UID.
#[test]
fn apply_creates_user_in_range() {
    let mut s = store();
    let a = apply(&mut s, &claims("sub-1", "alice", &[])).unwrap();
    assert!(a.created);
    assert_eq!(a.renamed_from, None);
    assert_eq!(a.uid, user_candidate("sub-1", 0));
    assert!(cfg().mapping.uids.contains(a.uid));
    let u = s.user_by_name("alice").unwrap().unwrap();
    assert_eq!((u.uid, u.gid), (a.uid, a.uid));
    assert_eq!(u.home, "/home/alice");
    assert_eq!(u.shell, "/bin/bash");
    assert_eq!(u.gecos, "alice Example");
    assert_eq!(s.user_by_uid(a.uid).unwrap(), Some(u));
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            users: 1,
            groups: 0
        }
    );
}

/// The user-private group resolves by name and by GID, with no members listed.
#[test]
fn private_group_resolves() {
    let mut s = store();
    let uid = apply(&mut s, &claims("sub-1", "alice", &[])).unwrap().uid;
    let g = UnixGroup {
        name: "alice".into(),
        gid: uid,
        members: Vec::new(),
    };
    assert_eq!(s.group_by_name("alice").unwrap(), Some(g.clone()));
    assert_eq!(s.group_by_gid(uid).unwrap(), Some(g));
    assert_eq!(s.group_by_name("bob").unwrap(), None);
}

/// Provider groups get hash GIDs in the GID range and list their members.
#[test]
fn provider_groups_get_gids_and_members() {
    let mut s = store();
    apply(&mut s, &claims("sub-1", "alice", &["developers", "ops"])).unwrap();
    apply(&mut s, &claims("sub-2", "bob", &["developers"])).unwrap();
    let dev = s.group_by_name("developers").unwrap().unwrap();
    let gids = cfg().mapping.gids;
    assert_eq!(
        dev.gid,
        ids::candidate(ISSUER, IdKind::Group, "developers", 0, gids)
    );
    assert!(gids.contains(dev.gid));
    assert_eq!(dev.members, ["alice", "bob"]);
    assert_eq!(s.group_by_gid(dev.gid).unwrap(), Some(dev.clone()));
    let ops = s.group_by_name("ops").unwrap().unwrap();
    let mut expected = vec![dev.gid, ops.gid];
    expected.sort_unstable();
    assert_eq!(s.groups_of_user("alice").unwrap(), Some((expected, false)));
    assert_eq!(s.groups_of_user("carol").unwrap(), None);
    // Two provider groups and two private groups.
    assert_eq!(s.all_groups().unwrap().len(), 4);
}

/// Admins are recorded so initgroups can add the local admin groups.
#[test]
fn admin_flag_is_stored() {
    let mut s = store();
    let mut c = cfg();
    c.access.admin_groups = vec!["ops".into()];
    apply_with(&mut s, &c, &no_local(), &claims("sub-1", "alice", &["ops"])).unwrap();
    assert!(s.groups_of_user("alice").unwrap().unwrap().1);
}

/// A second login with other groups replaces the memberships; emptied groups keep their GID.
#[test]
fn second_apply_replaces_memberships() {
    let mut s = store();
    apply(&mut s, &claims("sub-1", "alice", &["a", "b"])).unwrap();
    let a_gid = s.group_by_name("a").unwrap().unwrap().gid;
    let again = apply(&mut s, &claims("sub-1", "alice", &["b", "c"])).unwrap();
    assert!(!again.created);
    assert_eq!(members(&s, "a"), Vec::<String>::new());
    assert_eq!(members(&s, "b"), ["alice"]);
    assert_eq!(members(&s, "c"), ["alice"]);
    assert_eq!(s.group_by_name("a").unwrap().unwrap().gid, a_gid);
    assert_eq!(s.user_record("alice").unwrap().unwrap().groups, ["b", "c"]);
}

/// A rename at the provider (same sub, new name) keeps the UID and moves the private group.
#[test]
fn rename_keeps_uid() {
    let mut s = store();
    let first = apply(&mut s, &claims("sub-1", "alice", &["dev"])).unwrap();
    let renamed = apply(&mut s, &claims("sub-1", "alice2", &["dev"])).unwrap();
    assert_eq!(renamed.uid, first.uid);
    assert!(!renamed.created);
    assert_eq!(renamed.renamed_from.as_deref(), Some("alice"));
    assert_eq!(s.user_by_name("alice").unwrap(), None);
    assert_eq!(s.user_by_uid(first.uid).unwrap().unwrap().name, "alice2");
    assert_eq!(s.group_by_gid(first.uid).unwrap().unwrap().name, "alice2");
    assert_eq!(members(&s, "dev"), ["alice2"]);
}

/// Another subject claiming an existing name is a conflict and changes nothing.
#[test]
fn other_sub_same_name_conflicts() {
    let mut s = store();
    let alice = apply(&mut s, &claims("sub-1", "alice", &["dev"])).unwrap();
    let before = s.export(ISSUER).unwrap();
    let err = apply(&mut s, &claims("sub-2", "alice", &["dev", "new-group"])).unwrap_err();
    match &err {
        StoreError::Conflict(m) => assert!(m.contains("alice") && m.contains("sub-1"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.export(ISSUER).unwrap(), before);
    assert_eq!(s.group_by_name("new-group").unwrap(), None);
    assert_eq!(s.user_by_name("alice").unwrap().unwrap().uid, alice.uid);
}

/// A user may not take a name an existing provider group has.
#[test]
fn user_named_like_a_provider_group_conflicts() {
    let mut s = store();
    apply(&mut s, &claims("sub-1", "alice", &["dev"])).unwrap();
    let err = apply(&mut s, &claims("sub-2", "dev", &[])).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

/// A provider group named like an oidcd user is skipped; the login still succeeds.
#[test]
fn group_named_like_a_user_is_skipped() {
    let mut s = store();
    apply(&mut s, &claims("sub-1", "bob", &[])).unwrap();
    apply(&mut s, &claims("sub-2", "alice", &["bob", "dev"])).unwrap();
    assert_eq!(s.user_record("alice").unwrap().unwrap().groups, ["dev"]);
    assert_eq!(
        s.group_by_name("bob").unwrap().unwrap().members,
        Vec::<String>::new()
    );
}

/// issue 13: a UID held by a local account refuses the user on this host, naming the account
/// and what pinning it would give, instead of probing to a next UID that no other host gives.
#[test]
fn a_uid_held_locally_refuses_the_user_instead_of_probing() {
    let dir = TempDir::new();
    let first = user_candidate("sub-1", 0);
    let local = local_from(
        &dir,
        &format!("root:x:0:0::/root:/bin/sh\nsquatter:x:{first}:{first}::/:/bin/sh\n"),
        "root:x:0:\n",
    );
    let c = claims("sub-1", "alice", &[]);
    let mut s = store();
    let err = apply_with(&mut s, &cfg(), &local, &c).unwrap_err();
    let StoreError::Conflict(m) = &err else {
        panic!("{err:?}")
    };
    assert!(m.contains("the local account squatter"), "{m}");
    assert!(m.contains(&user_candidate("sub-1", 1).to_string()), "{m}");
    assert_eq!(s.counts().unwrap().users, 0);
    // Without the local account, the fleet UID.
    assert_eq!(apply(&mut store(), &c).unwrap().uid, first);
}

/// A GID held by a local group is never handed to a user's private group either.
#[test]
fn a_local_gid_refuses_the_user_too() {
    let dir = TempDir::new();
    let first = user_candidate("sub-1", 0);
    let local = local_from(
        &dir,
        "root:x:0:0::/root:/bin/sh\n",
        &format!("lab:x:{first}:\n"),
    );
    let mut s = store();
    let err = apply_with(&mut s, &cfg(), &local, &claims("sub-1", "alice", &[])).unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("the local group lab")),
        "{err:?}"
    );
}

// ---- uid_source = "claim" ----

fn claim_cfg() -> Config {
    let mut c = cfg();
    c.mapping.uid_source = UidSource::Claim;
    c.claims.uid = Some(ClaimPath("uidNumber".into()));
    c
}

fn with_uid(sub: &str, name: &str, uid: Value) -> Value {
    json!({"sub": sub, "preferred_username": name, "uidNumber": uid})
}

/// The UID comes from the claim when it is in range and free.
#[test]
fn uid_from_claim_is_used() {
    let c = claim_cfg();
    let uid = c.mapping.uids.min + 42;
    let mut s = store();
    let a = apply_with(
        &mut s,
        &c,
        &no_local(),
        &with_uid("sub-1", "alice", json!(uid)),
    )
    .unwrap();
    assert_eq!(a.uid, uid);
    assert_eq!(s.user_by_name("alice").unwrap().unwrap().gid, uid);
}

/// A claimed UID outside the range, reserved, taken locally or by another user is a conflict.
#[test]
fn uid_from_claim_refusals() {
    let c = claim_cfg();
    let dir = TempDir::new();
    let taken = c.mapping.uids.min + 7;
    let local = local_from(&dir, &format!("svc:x:{taken}:{taken}::/:/bin/sh\n"), "");
    let mut s = store();
    for uid in [1000, c.mapping.uids.max + 1, taken] {
        let err =
            apply_with(&mut s, &c, &local, &with_uid("sub-1", "alice", json!(uid))).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{uid}: {err:?}");
    }
    let free = c.mapping.uids.min + 8;
    apply_with(&mut s, &c, &local, &with_uid("sub-1", "alice", json!(free))).unwrap();
    let err = apply_with(&mut s, &c, &local, &with_uid("sub-2", "bob", json!(free))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.counts().unwrap().users, 1);
}

/// Mapped claims without a UID cannot be stored under the claim scheme.
#[test]
fn uid_from_claim_missing_is_a_conflict() {
    let c = claim_cfg();
    let mut user = mapped(
        &with_uid("sub-1", "alice", json!(c.mapping.uids.min)),
        &c,
        &no_local(),
    );
    user.uid_from_claim = None;
    let local = no_local();
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    let err = store()
        .apply_user(&ctx, &user, &json!({}), Source::Login, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

// ---- Import ----

fn import(s: &mut Store, entries: &[Value]) -> Result<Vec<Applied>, Vec<ImportError>> {
    let (c, local) = (cfg(), no_local());
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    s.import(&ctx, entries).unwrap()
}

/// A valid import writes every entry, recorded as imported.
#[test]
fn import_writes_every_entry() {
    let mut s = store();
    let done = import(
        &mut s,
        &[
            claims("sub-1", "alice", &["dev"]),
            claims("sub-2", "bob", &["dev"]),
        ],
    )
    .unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].uid, user_candidate("sub-1", 0));
    assert_eq!(members(&s, "dev"), ["alice", "bob"]);
    assert_eq!(s.user_record("bob").unwrap().unwrap().source, "import");
}

/// One bad entry among good ones fails the import with its index and writes nothing.
#[test]
fn import_is_all_or_nothing() {
    let mut s = store();
    apply(&mut s, &claims("sub-0", "zoe", &[])).unwrap();
    let before = s.export(ISSUER).unwrap();
    let errors = import(
        &mut s,
        &[
            claims("sub-1", "alice", &["dev"]),
            claims("sub-2", "1bad", &[]),
            claims("sub-3", "carol", &[]),
            json!({"preferred_username": "nosub"}),
        ],
    )
    .unwrap_err();
    let indexes: Vec<_> = errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [1, 3]);
    assert!(errors[0].message.contains("1bad"), "{errors:?}");
    assert_eq!(s.export(ISSUER).unwrap(), before);
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            users: 1,
            groups: 0
        }
    );
}

/// Two entries fighting over one name: the later one is reported, nothing is written.
#[test]
fn import_reports_two_entries_with_one_name() {
    let mut s = store();
    let errors = import(
        &mut s,
        &[claims("sub-1", "alice", &[]), claims("sub-2", "alice", &[])],
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].index, 1);
    assert!(errors[0].message.contains("alice"), "{errors:?}");
    assert_eq!(s.counts().unwrap().users, 0);
}

/// An import of a user already present refreshes it rather than conflicting.
#[test]
fn import_of_known_user_refreshes() {
    let mut s = store();
    let uid = apply(&mut s, &claims("sub-1", "alice", &[])).unwrap().uid;
    let done = import(&mut s, &[claims("sub-1", "alice", &["dev"])]).unwrap();
    assert_eq!((done[0].uid, done[0].created), (uid, false));
    assert_eq!(members(&s, "dev"), ["alice"]);
}

// ---- ID maps ----

pub(super) fn import_map(s: &mut Store, map: &IdMap) -> Result<usize, Vec<ImportError>> {
    let (c, local) = (cfg(), no_local());
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    s.import_map(&ctx, map).unwrap()
}

/// A host's exported map pins the same IDs in a fresh store, and a second import is a no-op.
#[test]
fn export_then_import_map_gives_identical_ids() {
    // alice kept a provisional UID (login.ssh_first_uid = "provisional"): the map carries it.
    let odd = user_candidate("sub-1", 7);
    let mut a = store();
    apply_preferring(
        &mut a,
        &cfg(),
        &no_local(),
        &claims("sub-1", "alice", &["dev", "ops"]),
        odd,
    )
    .unwrap();
    apply(&mut a, &claims("sub-2", "bob", &["dev"])).unwrap();
    let map = a.export(ISSUER).unwrap();
    assert_eq!((map.users.len(), map.groups.len()), (2, 2));
    assert_eq!(map.format, IdMap::FORMAT);

    let mut b = store();
    assert_eq!(import_map(&mut b, &map), Ok(4));
    assert_eq!(b.export(ISSUER).unwrap(), map);
    assert_eq!(b.user_by_name("alice").unwrap().unwrap().uid, odd);
    assert_eq!(import_map(&mut b, &map), Ok(0));
    // A later login of alice there keeps the pinned UID and fills in her groups; so does one
    // after her user was removed (the pin stays).
    let uid = apply(&mut b, &claims("sub-1", "alice", &["dev"]))
        .unwrap()
        .uid;
    assert_eq!(uid, odd);
    assert_eq!(members(&b, "dev"), ["alice"]);
    b.remove_user("alice").unwrap();
    assert_eq!(
        apply(&mut b, &claims("sub-1", "alice", &[])).unwrap().uid,
        odd
    );
}

/// A map giving a known identity other IDs is refused whole, naming the entry.
#[test]
fn import_map_conflicts_write_nothing() {
    let mut src = store();
    apply(&mut src, &claims("sub-1", "alice", &["dev"])).unwrap();
    apply(&mut src, &claims("sub-2", "bob", &[])).unwrap();
    let mut map = src.export(ISSUER).unwrap();

    let mut dst = store();
    apply(&mut dst, &claims("sub-1", "alice", &[])).unwrap();
    let alice = map.users.iter().position(|u| u.sub == "sub-1").unwrap();
    map.users[alice].uid += 1;
    map.users[alice].gid += 1;
    let before = dst.export(ISSUER).unwrap();
    let errors = import_map(&mut dst, &map).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].index, alice);
    assert!(errors[0].message.contains("alice"), "{errors:?}");
    // Neither bob nor the group "dev" was written.
    assert_eq!(dst.export(ISSUER).unwrap(), before);
}

/// A map for another issuer, of an unknown format, or with bad entries is refused.
#[test]
fn import_map_checks_its_entries() {
    let mut src = store();
    apply(&mut src, &claims("sub-1", "alice", &[])).unwrap();
    let map = src.export(ISSUER).unwrap();
    let mut dst = store();

    let other_issuer = IdMap {
        issuer: "https://other.example.com".into(),
        ..map.clone()
    };
    assert!(import_map(&mut dst, &other_issuer).is_err());
    let other_format = IdMap {
        format: "v0".into(),
        ..map.clone()
    };
    assert!(import_map(&mut dst, &other_format).is_err());
    // A name this host reserves is only informative: the ID is pinned, no user is made.
    let mut reserved = map.clone();
    reserved.users[0].name = "root".into();
    assert_eq!(import_map(&mut dst, &reserved), Ok(1));
    let mut low = map.clone();
    (low.users[0].uid, low.users[0].gid) = (500, 500);
    assert!(import_map(&mut dst, &low).is_err());
    let mut split = map;
    split.users[0].gid += 1;
    assert!(import_map(&mut dst, &split).is_err());
    assert_eq!(
        dst.counts().unwrap(),
        Counts {
            users: 0,
            groups: 0
        }
    );
}

// ---- Removal ----

/// Removing a user drops their memberships, keeps their groups, and they return with the
/// same UID.
#[test]
fn remove_user() {
    let mut s = store();
    let uid = apply(&mut s, &claims("sub-1", "alice", &["dev"]))
        .unwrap()
        .uid;
    s.touch_login("alice", NOW + 5).unwrap();
    assert_eq!(
        s.user_record("alice").unwrap().unwrap().last_login_at,
        Some(NOW + 5)
    );
    assert!(s.remove_user("alice").unwrap());
    assert!(!s.remove_user("alice").unwrap());
    assert_eq!(s.user_by_name("alice").unwrap(), None);
    assert_eq!(s.group_by_gid(uid).unwrap(), None);
    assert_eq!(members(&s, "dev"), Vec::<String>::new());
    assert_eq!(
        apply(&mut s, &claims("sub-1", "alice", &[])).unwrap().uid,
        uid
    );
}

/// Clearing forgets everything; users return with the same UIDs.
#[test]
fn clear() {
    let mut s = store();
    let uid = apply(&mut s, &claims("sub-1", "alice", &["dev"]))
        .unwrap()
        .uid;
    s.clear().unwrap();
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            users: 0,
            groups: 0
        }
    );
    assert!(s.all_users().unwrap().is_empty());
    assert_eq!(
        apply(&mut s, &claims("sub-1", "alice", &[])).unwrap().uid,
        uid
    );
}

// ---- The database file ----

/// A fresh database is at the current schema version.
#[test]
fn fresh_database_is_current() {
    assert_eq!(store().schema_version().unwrap(), SCHEMA_VERSION);
}

/// A database file reopened keeps its users.
#[test]
fn file_database_keeps_data() {
    let dir = TempDir::new();
    let path = dir.0.join("cache.db");
    let uid = {
        let mut s = Store::open(&path).unwrap();
        apply(&mut s, &claims("sub-1", "alice", &["dev"]))
            .unwrap()
            .uid
    };
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.user_by_name("alice").unwrap().unwrap().uid, uid);
    assert_eq!(members(&s, "dev"), ["alice"]);
}

/// A database written by a newer oidcd is refused with a message saying what to do.
#[test]
fn newer_schema_is_refused() {
    let dir = TempDir::new();
    let path = dir.0.join("cache.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, supported } if supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("99") && msg.contains("upgrade oidcd"), "{msg}");
    // Still there for the newer oidcd.
    let conn = Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

/// A file that is not a database is an error, not a panic.
#[test]
fn garbage_file_is_an_error() {
    let dir = TempDir::new();
    let path = dir.0.join("cache.db");
    std::fs::write(&path, "this is not an SQLite database\n".repeat(200)).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::Sqlite(_) | StoreError::Corrupt(_)),
        "{err:?}"
    );
}

/// An unwritable location is an error, not a panic.
#[test]
fn missing_directory_is_an_error() {
    let dir = TempDir::new();
    assert!(Store::open(&dir.0.join("no/such/dir/cache.db")).is_err());
}

// ---- Provisional UIDs (sshd first logins) ----

pub(super) fn apply_preferring(
    store: &mut Store,
    cfg: &Config,
    local: &LocalAccounts,
    c: &Value,
    preferred: u32,
) -> Result<Applied, StoreError> {
    let ctx = NewIds {
        issuer: ISSUER,
        cfg,
        local,
        now: NOW,
    };
    store.apply_user(
        &ctx,
        &mapped(c, cfg, local),
        c,
        Source::Login,
        Some(preferred),
    )
}

/// A new user gets the UID its provisional entry had when it is free and in range, and keeps
/// it; a login that began with another UID than the user has is refused (sshd would run the
/// session as the UID it holds).
#[test]
fn required_uid_is_used_when_free() {
    let c = cfg();
    let preferred = c.mapping.uids.min + 123;
    let mut s = store();
    let a = apply_preferring(
        &mut s,
        &c,
        &no_local(),
        &claims("sub-1", "alice", &[]),
        preferred,
    );
    assert_eq!(a.unwrap().uid, preferred);
    let again = apply_preferring(
        &mut s,
        &c,
        &no_local(),
        &claims("sub-1", "alice", &[]),
        preferred,
    );
    assert_eq!(again.unwrap().uid, preferred);
    let other = preferred + 1;
    let err = apply_preferring(
        &mut s,
        &c,
        &no_local(),
        &claims("sub-1", "alice", &[]),
        other,
    )
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::ResolvedUidLost(m) if m.contains(&format!("has UID {preferred}"))),
        "{err:?}"
    );
}

/// issue 15 #6: a required UID that is taken (here by a local account), reserved or out of
/// range is refused and nothing is written: it used to give way to the hash, and sshd then
/// ran the session as the UID it held, someone else's.
#[test]
fn required_uid_taken_is_refused_not_replaced() {
    let c = cfg();
    let dir = TempDir::new();
    let taken = c.mapping.uids.min + 1;
    let local = local_from(&dir, &format!("svc:x:{taken}:{taken}::/:/bin/sh\n"), "");
    for (sub, required) in [("sub-1", taken), ("sub-2", 65534), ("sub-3", 5000)] {
        let mut s = store();
        let err =
            apply_preferring(&mut s, &c, &local, &claims(sub, "alice", &[]), required).unwrap_err();
        assert!(
            matches!(err, StoreError::ResolvedUidLost(_)),
            "{required}: {err:?}"
        );
        assert_eq!(s.counts().unwrap().users, 0);
    }
    // Taken by another oidcd user: the message names it.
    let mut s = store();
    let bob = apply(&mut s, &claims("sub-b", "bob", &[])).unwrap();
    let err = apply_preferring(
        &mut s,
        &c,
        &no_local(),
        &claims("sub-a", "alice", &[]),
        bob.uid,
    )
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::ResolvedUidLost(m) if m.contains("the user bob")),
        "{err:?}"
    );
}

/// Under uid_source = "claim" a provisional UID never replaces the claim's UID.
#[test]
fn preferred_uid_never_overrides_the_claim() {
    let c = claim_cfg();
    let claimed = c.mapping.uids.min + 10;
    let mut s = store();
    let claims = with_uid("sub-1", "alice", json!(claimed));
    let err = apply_preferring(&mut s, &c, &no_local(), &claims, claimed + 1).unwrap_err();
    assert!(matches!(err, StoreError::ResolvedUidLost(_)), "{err:?}");
    assert_eq!(s.counts().unwrap().users, 0);
    let a = apply_preferring(&mut s, &c, &no_local(), &claims, claimed).unwrap();
    assert_eq!(a.uid, claimed);
}
