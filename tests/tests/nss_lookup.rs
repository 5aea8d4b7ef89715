//! User story: identities imported with `oidcctl import` resolve through glibc (getent, id)
//! via the real libnss_oidc.so.2, next to the local accounts.

use oidcd_tests::{Daemon, DaemonConfig, Namespace, alice_claims, bob_claims};
use serde_json::json;

/// A daemon with alice (admin) and bob imported and `admin_groups = ["oidc-admins"]`.
fn with_alice_and_bob(ns: &Namespace, enumerate: Option<bool>) -> Daemon<'_> {
    let mut cfg = DaemonConfig::new();
    cfg.admin_groups(&["oidc-admins"]);
    if let Some(e) = enumerate {
        cfg.enumerate(e);
    }
    let d = Daemon::start(ns, &cfg);
    d.import(&json!([alice_claims(), bob_claims()])).expect_ok();
    d
}

/// The passwd fields of `name` from `getent passwd`, split at ':'.
fn passwd(ns: &Namespace, key: &str) -> Vec<String> {
    let r = ns.getent("passwd", &[key]);
    r.expect_ok();
    r.stdout.trim_end().split(':').map(String::from).collect()
}

/// The GID of a group from `getent group`.
fn gid(ns: &Namespace, name: &str) -> u32 {
    let r = ns.getent("group", &[name]);
    r.expect_ok();
    r.stdout.split(':').nth(2).unwrap().parse().unwrap()
}

/// An imported user resolves by name and by UID to the same well-formed passwd entry.
#[test]
fn imported_user_resolves_by_name_and_uid() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    let by_name = passwd(&ns, "alice");
    assert_eq!(by_name.len(), 7, "{by_name:?}");
    assert_eq!(by_name[0], "alice");
    assert_eq!(by_name[1], "*", "no password hash is ever served");
    let uid: u32 = by_name[2].parse().unwrap();
    assert!(
        (1_879_048_192..=2_013_265_919).contains(&uid),
        "uid {uid} outside the default range"
    );
    assert_eq!(
        by_name[3], by_name[2],
        "primary group is the user-private group"
    );
    assert_eq!(by_name[4], "Alice Test");
    assert_eq!(by_name[5], "/home/alice");
    assert_eq!(by_name[6], "/bin/bash");
    assert_eq!(passwd(&ns, &uid.to_string()), by_name);
    let bob = passwd(&ns, "bob");
    assert_ne!(bob[2], by_name[2], "distinct users get distinct UIDs");
}

/// Provider groups resolve by name and GID with their members.
#[test]
fn provider_groups_resolve_with_members() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    let admins = ns.getent("group", &["oidc-admins"]);
    admins.expect_ok();
    let fields: Vec<&str> = admins.stdout.trim_end().split(':').collect();
    assert_eq!(fields[0], "oidc-admins");
    assert_eq!(fields[1], "*");
    assert_eq!(fields[3], "alice", "{admins}");
    let devs = ns.getent("group", &["developers"]);
    devs.expect_ok();
    assert!(devs.stdout.trim_end().ends_with(":alice,bob"), "{devs}");
    let by_gid = ns.getent("group", &[fields[2]]);
    by_gid.expect_ok();
    assert_eq!(by_gid.stdout, admins.stdout);
}

/// Every user has a private group with the user's name and UID, and no listed members.
#[test]
fn user_private_group_resolves_by_name_and_gid() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    let uid = &passwd(&ns, "alice")[2];
    let g = ns.getent("group", &["alice"]);
    g.expect_ok();
    assert_eq!(g.stdout.trim_end(), format!("alice:*:{uid}:"));
    let by_gid = ns.getent("group", &[uid]);
    by_gid.expect_ok();
    assert_eq!(by_gid.stdout, g.stdout);
}

/// `id` and `getent initgroups` show the provider groups, and the admin's local `sudo` group
/// through initgroups_dyn (the local group lists no members).
#[test]
fn id_shows_provider_groups_and_admin_local_group() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    let sudo = gid(&ns, "sudo");
    let admins = gid(&ns, "oidc-admins");
    let devs = gid(&ns, "developers");
    let uid = &passwd(&ns, "alice")[2];

    let id = ns.run("id", &["alice"]);
    id.expect_ok();
    for want in [
        format!("uid={uid}(alice)"),
        format!("gid={uid}(alice)"),
        format!("{admins}(oidc-admins)"),
        format!("{devs}(developers)"),
        format!("{sudo}(sudo)"),
    ] {
        assert!(id.stdout.contains(&want), "missing {want}:\n{id}");
    }
    let ig = ns.getent("initgroups", &["alice"]);
    ig.expect_ok();
    let gids: Vec<&str> = ig.stdout.split_whitespace().skip(1).collect();
    for g in [admins, devs, sudo] {
        assert!(gids.contains(&g.to_string().as_str()), "{g} missing:\n{ig}");
    }

    let bob = ns.run("id", &["-Gn", "bob"]);
    bob.expect_ok();
    let names: Vec<&str> = bob.stdout.split_whitespace().collect();
    assert!(names.contains(&"developers"), "{bob}");
    assert!(!names.contains(&"sudo"), "bob is no admin:\n{bob}");
    assert!(!names.contains(&"oidc-admins"), "{bob}");
}

/// root and the host's local users and groups still resolve (from files) with the module in
/// the chain and the daemon up.
#[test]
fn root_and_local_accounts_still_resolve() {
    let ns = Namespace::builder()
        .local_user("localcarl:x:4242:4242:Local Carl:/home/localcarl:/bin/sh")
        .local_group("localcarl:x:4242:")
        .start();
    let _d = with_alice_and_bob(&ns, None);
    assert_eq!(passwd(&ns, "root")[..4], ["root", "x", "0", "0"]);
    assert_eq!(passwd(&ns, "0")[0], "root");
    assert_eq!(passwd(&ns, "localcarl")[2], "4242");
    assert_eq!(passwd(&ns, "4242")[0], "localcarl");
    assert_eq!(gid(&ns, "sudo"), 27);
    let id = ns.run("id", &["root"]);
    id.expect_ok();
    assert!(id.stdout.starts_with("uid=0(root) gid=0(root)"), "{id}");
}

/// Names and IDs the daemon does not know answer "not found" (getent exit 2).
#[test]
fn unknown_names_and_ids_are_not_found() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    for (db, key) in [
        ("passwd", "nosuchuser"),
        ("passwd", "1879048191"),
        ("passwd", "2000000000"),
        ("group", "nosuchgroup"),
        ("group", "2100000000"),
    ] {
        ns.getent(db, &[key]).expect_code(2);
    }
    let id = ns.run("id", &["nosuchuser"]);
    id.expect_code(1);
    assert!(id.stderr.contains("no such user"), "{id}");
}

/// Enumeration (`getent passwd`/`group` without a key) lists no oidc entries by default.
#[test]
fn enumeration_is_off_by_default() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, None);
    let all = ns.getent("passwd", &[]);
    all.expect_ok();
    assert!(all.stdout.contains("root:x:0:0"), "{all}");
    assert!(!all.stdout.contains("alice"), "{all}");
    let groups = ns.getent("group", &[]);
    groups.expect_ok();
    assert!(!groups.stdout.contains("oidc-admins"), "{groups}");
}

/// With `[cache] enumerate = true`, enumeration lists the oidc users and groups after the
/// local ones.
#[test]
fn enumeration_lists_oidc_entries_when_enabled() {
    let ns = Namespace::new();
    let _d = with_alice_and_bob(&ns, Some(true));
    let all = ns.getent("passwd", &[]);
    all.expect_ok();
    let names: Vec<&str> = all
        .lines()
        .iter()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"root"), "{all}");
    assert!(names.contains(&"alice") && names.contains(&"bob"), "{all}");
    let groups = ns.getent("group", &[]);
    groups.expect_ok();
    for g in ["oidc-admins:", "developers:", "alice:", "bob:"] {
        assert!(
            groups.lines().iter().any(|l| l.starts_with(g)),
            "{g} missing:\n{groups}"
        );
    }
}

/// Large answers survive glibc's ERANGE retries: a group with 300 members and a user in
/// 1000 groups resolve completely through getent and id.
#[test]
fn large_groups_and_many_memberships_resolve_completely() {
    let ns = Namespace::new();
    let d = Daemon::start(&ns, &DaemonConfig::new());
    let mut entries: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            json!({"sub": format!("s{i}"), "preferred_username": format!("member{i:03}"),
                        "groups": ["crowd"]})
        })
        .collect();
    let many: Vec<String> = (0..1000).map(|i| format!("team{i:04}")).collect();
    entries.push(json!({"sub": "joiner", "preferred_username": "joiner", "groups": many}));
    d.import(&json!(entries)).expect_ok();

    let crowd = ns.getent("group", &["crowd"]);
    crowd.expect_ok();
    let members: Vec<&str> = crowd
        .stdout
        .trim_end()
        .rsplit(':')
        .next()
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(members.len(), 300, "{}", &crowd.stdout[..200]);
    assert_eq!(members[0], "member000");
    assert_eq!(members[299], "member299");

    let ids = ns.run("id", &["-G", "joiner"]);
    ids.expect_ok();
    assert_eq!(
        ids.stdout.split_whitespace().count(),
        1001,
        "private group + 1000"
    );
    let ig = ns.getent("initgroups", &["joiner"]);
    ig.expect_ok();
    assert_eq!(
        ig.stdout.split_whitespace().count(),
        1 + 1000,
        "name + 1000 gids"
    );
}

/// Provider groups named like local or reserved groups or users are never served (they
/// would shadow or join local groups such as sudo); other groups of the same user are.
#[test]
fn provider_groups_never_shadow_local_groups() {
    let ns = Namespace::builder()
        .local_user("localcarl:x:4242:4242::/home/localcarl:/bin/sh")
        .local_group("localcarl:x:4242:")
        .local_group("localteam:x:4343:")
        .start();
    let d = Daemon::start(&ns, &DaemonConfig::new());
    d.import(&json!([{"sub": "mallory", "preferred_username": "mallory",
        "groups": ["sudo", "root", "wheel", "localcarl", "localteam", "docker", "team-a"]}]))
        .expect_ok();
    let groups = ns.run("id", &["-Gn", "mallory"]);
    groups.expect_ok();
    let names: Vec<&str> = groups.stdout.split_whitespace().collect();
    assert_eq!(names, ["mallory", "team-a"], "{groups}");
    let sudo = ns.getent("group", &["sudo"]);
    assert_eq!(sudo.stdout.trim_end(), "sudo:x:27:", "{sudo}");
    let team = ns.getent("group", &["localteam"]);
    assert_eq!(team.stdout.trim_end(), "localteam:x:4343:", "{team}");
}

/// Re-importing a user with a new name and fewer groups renames them with the same UID and
/// updates memberships; an import is visible at once even right after a "not found".
#[test]
fn reimport_renames_and_regroups_with_the_same_uid() {
    let ns = Namespace::new();
    let d = with_alice_and_bob(&ns, None);
    let uid = passwd(&ns, "alice")[2].clone();
    ns.getent("passwd", &["alicia"]).expect_code(2);
    let mut renamed = alice_claims();
    renamed["preferred_username"] = json!("alicia");
    renamed["groups"] = json!(["oidc-admins"]);
    d.import(&json!([renamed])).expect_ok();
    assert_eq!(passwd(&ns, "alicia")[2], uid, "same UID after a rename");
    assert_eq!(passwd(&ns, &uid)[0], "alicia");
    ns.getent("passwd", &["alice"]).expect_code(2);
    let devs = ns.getent("group", &["developers"]);
    assert!(devs.stdout.trim_end().ends_with(":bob"), "{devs}");
    let admins = ns.getent("group", &["oidc-admins"]);
    assert!(admins.stdout.trim_end().ends_with(":alicia"), "{admins}");
}

/// issue 15 #8: a local account created later with an oidcd user's name (`useradd alice`)
/// does not get that user's groups through `initgroups` (glibc asks every module), within the
/// 5 s in which the daemon notices the account files changed: its supplementary groups are the
/// local ones only, so no `sudo` from the provider's admin group.
#[test]
fn a_local_account_never_gets_a_same_named_oidc_users_groups() {
    let ns = Namespace::builder()
        .local_user("bob0:x:4300:4300::/tmp:/bin/sh")
        .local_group("bob0:x:4300:")
        .start();
    let d = with_alice_and_bob(&ns, None);
    let oidc_groups = ns.getent("initgroups", &["alice"]);
    oidc_groups.expect_ok();
    let admin_gid = gid(&ns, "oidc-admins").to_string();
    assert!(oidc_groups.stdout.contains(&admin_gid), "{oidc_groups}");
    // The administrator adds a local alice (same inode: the bind mount follows).
    let passwd = ns.dir().join("passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str("alice:x:4301:4301::/tmp:/bin/sh\n");
    std::fs::write(&passwd, text).unwrap();
    // The daemon looks at the account files every 5 s and rewrites the NSS map.
    assert!(
        oidcd_tests::util::wait_until(std::time::Duration::from_secs(10), || {
            !ns.getent("initgroups", &["alice"])
                .stdout
                .contains(&admin_gid)
        }),
        "{}",
        d.logs()
    );
    let r = ns.getent("initgroups", &["alice"]);
    assert!(!r.stdout.contains(&admin_gid), "{r}\n{}", d.logs());
    let sudo = gid(&ns, "sudo").to_string();
    assert!(!r.stdout.split_whitespace().any(|g| g == sudo), "{r}");
    let id = ns.run("id", &["alice"]);
    assert!(id.stdout.starts_with("uid=4301(alice)"), "{id}");
    assert!(!id.stdout.contains("oidc-admins"), "{id}");
    assert!(
        d.logs().contains("alice is a local account now"),
        "{}",
        d.logs()
    );
}
