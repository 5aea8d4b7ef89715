//! User story: an administrator sees and fixes the daemon's state with `oidcctl`: status,
//! users, groups, cache, export/import of the ID map, with documented exit codes; other users
//! may look but not change; `doctor` judges sshd's settings.

use std::process::Command;

use oidcd_tests::{
    Daemon, DaemonConfig, Namespace, TempDir, alice_claims, bob_claims, pam, paths, sshd, util,
};
use serde_json::{Value, json};

/// The `nobody` account setpriv switches to.
const NOBODY: u32 = 65534;

/// A daemon with alice (admin) and bob, `admin_groups = ["oidc-admins"]`.
fn daemon_with_users<'ns>(ns: &'ns Namespace, cfg: &DaemonConfig) -> Daemon<'ns> {
    let mut cfg = cfg.clone();
    cfg.admin_groups(&["oidc-admins"]);
    let d = Daemon::start(ns, &cfg);
    let r = d.import(&json!([alice_claims(), bob_claims()]));
    r.expect_ok();
    assert!(r.stdout.contains("created alice (uid "), "{r}");
    assert!(r.stdout.contains("2 user(s) imported"), "{r}");
    d
}

/// The names in a JSON list of user or group records.
fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["unix"]["name"].as_str().unwrap())
        .collect()
}

/// `oidcctl status` describes a running daemon in text and JSON.
#[test]
fn status_reports_the_running_daemon() {
    let ns = Namespace::new();
    let cfg = DaemonConfig::new();
    let d = daemon_with_users(&ns, &cfg);
    let text = d.oidcctl(&["status"]);
    text.expect_ok();
    for want in [
        "running",
        "provider:",
        &cfg.issuer().unwrap(),
        "/run/oidcd/socket",
        &d.db_path().to_string_lossy(),
        "users:          2",
        "groups:         2",
        "enumeration:    off",
    ] {
        assert!(text.stdout.contains(want), "missing {want:?}:\n{text}");
    }
    let js = d.oidcctl_json(&["status"]);
    assert_eq!(js["daemon_running"], true, "{js}");
    assert_eq!(js["users"], 2);
    assert_eq!(js["groups"], 2);
    assert!(js["protocol_version"].as_u64() >= Some(1), "{js}");
    assert!(js["schema_version"].as_u64() >= Some(1), "{js}");
    assert!(js["db_error"].is_null(), "{js}");
    assert_eq!(js["issuer"], cfg.issuer().unwrap());
    assert_eq!(js["client_id"], "pam-oidc");
    assert_eq!(
        js["config_path"],
        d.config_path().to_string_lossy().as_ref()
    );
}

/// `user list/show/remove` and `group list/show` show and change what NSS serves.
#[test]
fn user_and_group_commands_show_and_remove() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &DaemonConfig::new());
    let users = d.users();
    assert_eq!(names(&users), ["alice", "bob"]);
    let alice = &users[0];
    assert_eq!(alice["groups"], json!(["developers", "oidc-admins"]));
    assert_eq!(alice["local_groups"], json!(["sudo"]));
    assert_eq!(alice["is_admin"], true);
    assert_eq!(alice["source"], "import");
    assert_eq!(
        alice["claims"]["email"], "alice@example.test",
        "root sees claims"
    );
    let table = d.oidcctl(&["user", "list"]);
    table.expect_ok();
    assert!(table.stdout.starts_with("NAME"), "{table}");
    assert!(table.stdout.contains("2 user(s)"), "{table}");

    let show = d.oidcctl(&["user", "show", "alice"]);
    show.expect_ok();
    let uid = alice["unix"]["uid"].as_u64().unwrap();
    assert!(
        show.stdout.contains(&format!(
            "alice:*:{uid}:{uid}:Alice Test:/home/alice:/bin/bash"
        )),
        "{show}"
    );
    assert_eq!(
        d.oidcctl_json(&["user", "show", "bob"])["unix"]["name"],
        "bob"
    );

    let groups = d.oidcctl_json(&["group", "list"]);
    assert_eq!(names(&groups), ["developers", "oidc-admins"]);
    let devs = d.oidcctl_json(&["group", "show", "developers"]);
    assert_eq!(devs["unix"]["members"], json!(["alice", "bob"]));
    assert_eq!(devs["provider_name"], "developers");
    d.oidcctl(&["group", "show", "developers"]).expect_ok();

    ns.getent("passwd", &["bob"]).expect_ok();
    let rm = d.oidcctl(&["user", "remove", "bob"]);
    rm.expect_ok();
    assert!(rm.stdout.contains("bob removed"), "{rm}");
    ns.getent("passwd", &["bob"]).expect_code(2);
    let devs = d.oidcctl_json(&["group", "show", "developers"]);
    assert_eq!(devs["unix"]["members"], json!(["alice"]));
    d.oidcctl(&["user", "remove", "bob"]).expect_code(1);
    d.oidcctl(&["user", "show", "bob"]).expect_code(1);
    d.oidcctl(&["group", "show", "nosuchgroup"]).expect_code(1);
}

/// `cache clear` forgets every user and group; a later import gives the same IDs back.
#[test]
fn cache_clear_forgets_everyone_and_ids_come_back() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &DaemonConfig::new());
    let before = ns.getent("passwd", &["alice"]);
    before.expect_ok();
    let gid = ns.getent("group", &["developers"]);
    d.oidcctl(&["cache", "clear"]).expect_ok();
    assert_eq!(d.users(), json!([]));
    assert_eq!(d.oidcctl_json(&["group", "list"]), json!([]));
    ns.getent("passwd", &["alice"]).expect_code(2);
    ns.getent("group", &["developers"]).expect_code(2);
    d.import(&json!([alice_claims(), bob_claims()])).expect_ok();
    assert_eq!(ns.getent("passwd", &["alice"]).stdout, before.stdout);
    assert_eq!(
        ns.getent("group", &["developers"]).stdout,
        gid.stdout,
        "same GID, same members"
    );
}

/// `export` from one daemon (a sealed fleet map), `import` of that map into a fresh one (its
/// own namespace and database) gives the same UIDs and GIDs, seen through NSS on both hosts;
/// the same import again changes nothing, and a map edited without sealing is refused whole.
#[test]
fn export_then_import_map_gives_same_ids_on_another_host() {
    let ns1 = Namespace::new();
    let cfg = DaemonConfig::new();
    let d1 = daemon_with_users(&ns1, &cfg);
    let map = d1.oidcctl(&["export"]);
    map.expect_ok();
    let map = map.json();
    assert_eq!(map["format"], "oidcd-idmap-2");
    assert!(
        map["checksum"].as_str().unwrap().starts_with("sha256:"),
        "{map}"
    );
    assert_eq!(map["users"][0]["issuer"], cfg.issuer().unwrap());
    assert_eq!(map["users"].as_array().unwrap().len(), 2, "{map}");
    assert_eq!(map["groups"].as_array().unwrap().len(), 2, "{map}");

    let ns2 = Namespace::new();
    let d2 = Daemon::start(&ns2, &cfg);
    let r = d2.import(&map);
    r.expect_ok();
    assert!(r.stdout.contains("pinned 4 new"), "{r}");
    for (db, key) in [
        ("passwd", "alice"),
        ("passwd", "bob"),
        ("group", "oidc-admins"),
        ("group", "alice"),
    ] {
        let one = ns1.getent(db, &[key]);
        let two = ns2.getent(db, &[key]);
        two.expect_ok();
        let id = |r: &oidcd_tests::Run| r.stdout.split(':').nth(2).unwrap().to_string();
        assert_eq!(id(&one), id(&two), "{db} {key}: {one}\n{two}");
    }
    assert_eq!(d2.oidcctl(&["export"]).json(), map);

    // Importing the same map again changes nothing; a login (here: claims) keeps the IDs.
    let again = d2.import(&map);
    again.expect_ok();
    assert!(again.stdout.contains("pinned 0 new, 4 already"), "{again}");
    let mut edited = map.clone();
    edited["users"][0]["uid"] = (edited["users"][0]["uid"].as_u64().unwrap() + 1).into();
    let r = d2.import(&edited);
    r.expect_code(1);
    assert!(r.stderr.contains("checksum mismatch"), "{r}");
    d2.import(&json!([alice_claims()])).expect_ok();
    assert_eq!(
        ns2.getent("passwd", &["alice"]).stdout.split(':').nth(2),
        ns1.getent("passwd", &["alice"]).stdout.split(':').nth(2)
    );
}

/// Exit codes: 0 success, 1 not found or refused, 2 usage error, 3 no daemon.
#[test]
fn exit_codes_distinguish_outcomes() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &DaemonConfig::new());
    d.oidcctl(&["status"]).expect_code(0);
    d.oidcctl(&["user", "show", "nosuchuser"]).expect_code(1);
    d.oidcctl(&["frobnicate"]).expect_code(2);
    d.oidcctl(&["user"]).expect_code(2);
    d.oidcctl(&["user", "show"]).expect_code(2);

    let empty = Namespace::new();
    let r = empty.run(paths::oidcctl(), &["status"]);
    r.expect_code(3);
    assert!(r.stderr.contains("not running"), "{r}");
    let js = empty.run(paths::oidcctl(), &["status", "--json"]);
    js.expect_code(3);
    assert_eq!(js.json()["daemon_running"], false);
    empty
        .run(paths::oidcctl(), &["user", "list"])
        .expect_code(3);
}

/// A user other than root may see the status, a group, and their own user record (without
/// the claims), but no one else's record, not the list of groups, and may change nothing: the
/// records hold everyone's email, subject, groups and last login, which `enumerate = false`
/// keeps from other users.
#[test]
fn non_root_sees_only_their_own_record_and_cannot_change() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &DaemonConfig::new());
    let before = d.users();
    let bob_uid = before[1]["unix"]["uid"].as_u64().unwrap() as u32;
    let public = TempDir::with_mode("public", 0o755);
    let file = public.write("users.json", json!([bob_claims()]).to_string(), 0o644);
    let file = file.to_string_lossy();
    let ctl = paths::oidcctl();
    let as_nobody = |args: &[&str]| ns.run_as(NOBODY, NOBODY, &ctl, args);
    let as_bob = |args: &[&str]| ns.run_as(bob_uid, bob_uid, &ctl, args);

    as_nobody(&["status"]).expect_ok();
    as_nobody(&["group", "show", "developers"]).expect_ok();
    let list = as_nobody(&["user", "list", "--json"]);
    list.expect_ok();
    assert_eq!(names(&list.json()), Vec::<&str>::new(), "{list}");
    let own = as_bob(&["user", "list", "--json"]);
    own.expect_ok();
    let own = own.json();
    assert_eq!(names(&own), ["bob"]);
    assert!(
        own[0]["claims"].is_null(),
        "claims shown to a non-root user: {own}"
    );
    as_bob(&["user", "show", "bob"]).expect_ok();

    for (args, who) in [
        (&["user", "show", "alice"][..], "bob"),
        (&["user", "show", "nosuchuser"], "bob"),
        (&["group", "list"], "nobody"),
    ] {
        let r = if who == "bob" {
            as_bob(args)
        } else {
            as_nobody(args)
        };
        r.expect_code(1);
        assert!(r.stderr.contains("run it as root"), "{args:?}: {r}");
        assert!(!r.stdout.contains("alice@"), "{r}");
    }

    for args in [
        &["user", "remove", "bob"][..],
        &["import", &file],
        &["cache", "clear"],
        &["export"],
    ] {
        let r = as_nobody(args);
        r.expect_code(1);
        assert!(
            r.stderr.contains("needs root") && r.stderr.contains("run it as root"),
            "{r}"
        );
    }
    assert_eq!(d.users(), before);
}

/// A file of 12,000 claim sets (about 1.3 MB, over the 1 MiB a request may carry) is imported
/// in parts and applied at once; one bad entry in its last part applies nothing at all. (UIDs
/// come from a claim: 12,000 hashed ones collide in the default range about every other run,
/// which the fleet tests cover.)
#[test]
fn large_import_goes_in_parts_all_or_nothing() {
    let ns = Namespace::new();
    let mut cfg = DaemonConfig::new();
    cfg.set("mapping", "uid_source", "\"claim\"")
        .set("claims", "uid_claim", "\"uid_number\"");
    let d = Daemon::start(&ns, &cfg);
    let entries = |n: usize, tag: &str| -> Vec<Value> {
        (0..n)
            .map(|i| {
                json!({"sub": format!("{tag}{i}"), "preferred_username": format!("{tag}{i:05}"),
                       "name": format!("User {i} with a longish display name"),
                       "uid_number": 1_900_000_000 + i,
                       "groups": [format!("team{}", i % 50), "everyone"]})
            })
            .collect()
    };
    let mut bad = entries(12_000, "b");
    bad[11_999]["preferred_username"] = json!("root");
    let r = d.import(&json!(bad));
    assert_eq!(r.code(), 1, "{r}");
    assert!(r.stderr.contains("1 of 12000 entries refused"), "{r}");
    assert!(r.stderr.contains("entry 11999"), "{r}");
    ns.getent("passwd", &["b00000"]).expect_code(2);

    let good = entries(12_000, "u");
    assert!(json!(good).to_string().len() > 1 << 20);
    let t = std::time::Instant::now();
    let r = d.import(&json!(good));
    r.expect_ok();
    oidcd_tests::measure(&format!(
        "ctl large_import users=12000 oidcctl_import={:.1}s (debug build)",
        t.elapsed().as_secs_f64()
    ));
    assert!(r.stdout.contains("12000 users imported (12000 new"), "{r}");
    for name in ["u00000", "u01234", "u11999"] {
        ns.getent("passwd", &[name]).expect_ok();
    }
    assert_eq!(d.oidcctl_json(&["status"])["users"], 12_000);
}

/// `oidcctl doctor --sshd-config FILE` judges what the real sshd makes of FILE (`sshd -T -f`)
/// with the shipped PAM stack as sshd's: the settings README.md gives pass, and
/// `KbdInteractiveAuthentication no` is an error whose fix names the setting and the file.
#[test]
fn doctor_judges_sshd_settings() {
    let ns = Namespace::builder().pam_dir().start();
    let d = Daemon::start(&ns, &DaemonConfig::new());
    pam::install_service_text(&ns, "sshd", &sshd::shipped_stack());
    let dir = TempDir::with_mode("sshd", 0o755);
    let key = dir.join("hostkey_ed25519");
    util::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    )
    .expect_ok();
    let shipped = format!(
        "HostKey {}\nUsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
         LoginGraceTime 6m\nMaxStartups 30:30:120\nPerSourceMaxStartups 4\n",
        key.display()
    );
    let file = dir.join("sshd_config");
    let sshd_findings = |text: &str| -> Vec<(String, String, String)> {
        std::fs::write(&file, text).unwrap();
        let run = d.oidcctl(&["doctor", "--json", "--sshd-config", &file.to_string_lossy()]);
        run.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "sshd")
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                (s("severity"), s("message"), s("fix"))
            })
            .collect()
    };

    let good = sshd_findings(&shipped);
    assert_eq!(good.len(), 2, "{good:#?}");
    assert!(good.iter().all(|f| f.0 == "ok"), "{good:#?}");

    let off = sshd_findings(&shipped.replace(
        "KbdInteractiveAuthentication yes",
        "KbdInteractiveAuthentication no",
    ));
    let errors: Vec<_> = off.iter().filter(|f| f.0 == "error").collect();
    assert_eq!(errors.len(), 1, "{off:#?}");
    assert!(
        errors[0]
            .1
            .starts_with("KbdInteractiveAuthentication is no"),
        "{off:#?}"
    );
    assert!(
        errors[0].2.contains(&format!(
            "set KbdInteractiveAuthentication yes (and PasswordAuthentication no, see \
             oidcctl(8)) in {}",
            file.display()
        )),
        "{off:#?}"
    );
}
