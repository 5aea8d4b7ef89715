//! User story: the company moves from one identity provider to another. Without a migration
//! the old users' names are not handed to new identities (a login says what to do); with
//! `oidcctl migrate` (a dry run first, then `--apply`) each person keeps UID, name, groups'
//! GIDs and so their files: by an explicit table at once, or by verified email at their first
//! login through the new provider.

use std::os::unix::fs::chown;

use oidcd_tests::scenario::{login_as as login, pam_namespace, reload};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, TempDir};
use serde_json::json;

/// `getent passwd NAME`'s UID and `getent group developers`'s GID.
fn ids(ns: &Namespace, name: &str) -> (String, String) {
    let field = |db: &str, key: &str| {
        let r = ns.getent(db, &[key]);
        r.expect_ok();
        r.stdout.split(':').nth(2).unwrap_or("").to_string()
    };
    (field("passwd", name), field("group", "developers"))
}

/// The owner of `path` by name, as `stat` shows it through NSS.
fn owner(ns: &Namespace, path: &std::path::Path) -> String {
    let r = ns.run("stat", &["-c", "%U", &path.to_string_lossy()]);
    r.expect_ok();
    r.stdout.trim().to_string()
}

/// alice and carol log in through the old provider and own files. The configuration then
/// names only the new provider, where they have new subjects: alice's login is refused with a
/// pointer to oidcctl migrate (her name is not given away); a dry run of the table changes
/// nothing; applied, alice logs in with her UID, her group's GID and her files. carol moves by
/// verified email at her first login; bob, whose email the old provider never verified, stays.
#[test]
fn issuer_change_keeps_uids_names_and_files() {
    let old = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let new = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        (
            "OP_ACCOUNTS",
            &json!({
                "00u-alice-new": {"login": "alice", "password": "alice-pw", "claims": {
                    "preferred_username": "alice", "email": "alice@example.test",
                    "email_verified": true, "groups": ["developers"]}},
                "00u-carol-new": {"login": "carol@example.test", "password": "carol-pw", "claims": {
                    "preferred_username": "carol@example.test", "email": "carol@example.test",
                    "email_verified": true, "groups": ["developers"]}}
            })
            .to_string(),
        ),
    ]);
    let ns = pam_namespace();
    let mut cfg = DaemonConfig::for_provider(&old);
    cfg.set("mapping", "strip_suffixes", r#"["@example.test"]"#);
    let d = Daemon::start(&ns, &cfg);
    for (user, who) in [("alice", "alice"), ("bob", "bob"), ("carol", "carol")] {
        login(&ns, &old, user, who).expect_success();
    }
    let files = TempDir::new("migration-files");
    let (alice_ids, carol_ids) = (ids(&ns, "alice"), ids(&ns, "carol"));
    for (name, uid) in [("alice", &alice_ids.0), ("carol", &carol_ids.0)] {
        let f = files.write(name, "mine", 0o600);
        chown(&f, Some(uid.parse().unwrap()), None).unwrap();
    }

    let mut to_new = DaemonConfig::for_provider(&new);
    to_new.set("mapping", "strip_suffixes", r#"["@example.test"]"#);
    reload(&d, &to_new, 1);
    login(&ns, &new, "alice", "alice").expect_failure("oidcctl migrate");

    let table = files.write("moves.json", r#"{"alice": "00u-alice-new"}"#, 0o600);
    let table = table.to_string_lossy();
    let from = old.issuer();
    let dry = d.oidcctl(&[
        "migrate", "--from", &from, "--to", "default", "--table", &table,
    ]);
    dry.expect_ok();
    assert!(dry.stdout.contains("dry run: nothing was changed"), "{dry}");
    assert_eq!(
        d.oidcctl_json(&["user", "show", "alice"])["issuer"],
        json!(from),
        "a dry run changed alice"
    );
    let applied = d.oidcctl_json(&[
        "migrate", "--from", &from, "--to", "default", "--table", &table, "--apply",
    ]);
    assert_eq!(applied["applied"], true, "{applied}");
    login(&ns, &new, "alice", "alice").expect_success();
    assert_eq!(ids(&ns, "alice"), alice_ids);
    assert_eq!(owner(&ns, &files.join("alice")), "alice");
    assert_eq!(
        d.oidcctl_json(&["user", "show", "alice"])["sub"],
        "00u-alice-new"
    );

    let by_email = d.oidcctl_json(&[
        "migrate",
        "--from",
        &from,
        "--to",
        "default",
        "--by-email",
        "--apply",
    ]);
    let outcome = |name: &str| {
        by_email["moves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["outcome"].clone())
    };
    assert_eq!(outcome("carol"), Some(json!("by_email")), "{by_email}");
    assert_eq!(outcome("bob"), Some(json!("stays")), "{by_email}");
    login(&ns, &new, "carol", "carol").expect_success();
    assert_eq!(ids(&ns, "carol"), carol_ids);
    assert_eq!(owner(&ns, &files.join("carol")), "carol");
    assert!(
        d.logs().contains("moved from") && d.logs().contains("by verified email"),
        "{}",
        d.logs()
    );
}
