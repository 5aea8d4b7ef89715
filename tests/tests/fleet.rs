//! User story (issue 13): a fleet of hosts with one configuration (here two or four private
//! namespaces, each with its own daemon and store) gives a person the same UID, private GID and
//! group GIDs on every host, whatever the path and the order in which they arrive: over SSH
//! first (the real sshd and OpenSSH client) on one host and at the console (pamtester) on
//! another; with UIDs and GIDs taken from the provider's claims; and for two people whose UIDs
//! collide, every host refuses the later one the same way until a fleet map settles them, after
//! which every host gives both the same UIDs in either order.

use oidcd_tests::fleet::{UIDS, colliding_subjects, first_uid};
use oidcd_tests::pam::{Approver, PamLogin, SERVICE};
use oidcd_tests::scenario::{login_as, pam_namespace};
use oidcd_tests::sshd::{Sshd, ssh_login, ssh_resume};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, Run, free_port};
use serde_json::{Value, json};

/// The third field of a `getent` line (UID or GID), or `None` when it did not resolve.
fn id(r: &Run) -> Option<u32> {
    (r.code() == 0)
        .then(|| r.stdout.split(':').nth(2)?.parse().ok())
        .flatten()
}

fn uid_of(ns: &Namespace, name: &str) -> Option<u32> {
    id(&ns.getent("passwd", &[name]))
}

fn gid_of(ns: &Namespace, name: &str) -> Option<u32> {
    id(&ns.getent("group", &[name]))
}

/// alice logs in over SSH first on host A and gets the connection refused once ("connect
/// again": sshd held her provisional UID), with her account already made there; her next
/// connection logs in with the code the first one showed, without a second approval. Returns her UID as `id -u` showed it in the session.
fn ssh_first_on(ns: &Namespace, d: &Daemon<'_>, op: &Provider) -> u32 {
    let sshd = Sshd::start(ns);
    let first = ssh_login(
        &sshd,
        "alice",
        Some(Approver::user(op, "alice")),
        Some("id -u"),
    );
    first.approval.as_ref().unwrap().expect_ok();
    assert!(
        !first.authenticated(),
        "the first SSH login got in:\n{first}"
    );
    assert!(
        first.events.iter().any(|e| e["event"] == "info_request"
            && e["instruction"]
                .as_str()
                .is_some_and(|i| i.contains("connect again"))),
        "not told to connect again:\n{first}\n{}",
        d.logs()
    );
    let made = uid_of(ns, "alice").unwrap_or_else(|| panic!("no account made:\n{}", d.logs()));
    let code = first
        .resume_code()
        .unwrap_or_else(|| panic!("no code shown:\n{first}"));
    let second = ssh_resume(&sshd, "alice", &code, Some("id -u"));
    assert!(second.authenticated(), "{second}\n{}", d.logs());
    let shown = second.command().expect("no command ran")["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap();
    assert_eq!(shown, made);
    shown
}

/// alice arrives over SSH on host A (her first login there is refused once and asks her to
/// connect again) and at the console on host B: the same UID, private GID and group GIDs on
/// both, the one the fleet's rule gives her subject; the two hosts' ID maps merge without a
/// conflict.
#[test]
fn alice_by_ssh_on_one_host_and_at_the_console_on_another_gets_one_uid() {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let cfg = DaemonConfig::for_provider(&op);
    let (ns_a, ns_b) = (Namespace::builder().pam_dir().start(), pam_namespace());
    let (d_a, d_b) = (Daemon::start(&ns_a, &cfg), Daemon::start(&ns_b, &cfg));

    let uid = ssh_first_on(&ns_a, &d_a, &op);
    login_as(&ns_b, &op, "alice", "alice").expect_success();
    assert_eq!(uid_of(&ns_b, "alice"), Some(uid));
    assert_eq!(uid, first_uid(&op.issuer(), "alice", UIDS));
    for g in ["alice", "developers", "oidc-admins"] {
        assert_eq!(gid_of(&ns_a, g), gid_of(&ns_b, g), "{g}");
        assert!(gid_of(&ns_a, g).is_some(), "{g}");
    }
    assert_eq!(gid_of(&ns_a, "alice"), Some(uid));

    let maps: Vec<_> = [&d_a, &d_b]
        .iter()
        .map(|d| {
            let r = d.oidcctl(&["export"]);
            r.expect_ok();
            d.dir().write("map.json", &r.stdout, 0o600)
        })
        .collect();
    let merged = d_a.oidcctl(&[
        "idmap",
        "merge",
        &maps[0].to_string_lossy(),
        &maps[1].to_string_lossy(),
    ]);
    merged.expect_ok();
    assert_eq!(
        merged.json()["users"].as_array().unwrap().len(),
        1,
        "{merged}"
    );
}

/// With `uid_source = "claim"` and `gid_source = "claim"` (a Keycloak whose users come from
/// LDAP: `uidNumber` as a string attribute, each group's `gidNumber` in an object claim), alice
/// gets the provider's numbers on both hosts, arriving over SSH on one (a placeholder UID for
/// sshd, refused once) and at the console on the other; a group the claim gives no GID is left
/// out.
#[test]
fn uids_and_gids_from_claims_are_the_same_on_every_host() {
    let (uid, dev, admins) = (UIDS.0 + 4242, 2_013_300_001_u32, 2_013_300_002_u32);
    let accounts = json!({"alice": {"login": "alice", "password": "alice-pw", "claims": {
        "preferred_username": "alice", "name": "Alice Test", "email": "alice@example.test",
        "email_verified": true, "groups": ["developers", "oidc-admins", "no-gid"],
        "uidNumber": uid.to_string(),
        "group_gids": {"developers": dev, "oidc-admins": admins.to_string()}}}});
    let op = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        ("OP_ACCOUNTS", &accounts.to_string()),
    ]);
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "uid_claim", "\"uidNumber\"")
        .set("claims", "gid_claim", "\"group_gids\"")
        .set("mapping", "uid_source", "\"claim\"")
        .set("mapping", "gid_source", "\"claim\"");
    let (ns_a, ns_b) = (Namespace::builder().pam_dir().start(), pam_namespace());
    let (d_a, d_b) = (Daemon::start(&ns_a, &cfg), Daemon::start(&ns_b, &cfg));

    assert_eq!(ssh_first_on(&ns_a, &d_a, &op), uid);
    login_as(&ns_b, &op, "alice", "alice").expect_success();
    for ns in [&ns_a, &ns_b] {
        assert_eq!(uid_of(ns, "alice"), Some(uid));
        assert_eq!(gid_of(ns, "developers"), Some(dev));
        assert_eq!(gid_of(ns, "oidc-admins"), Some(admins));
        assert_eq!(gid_of(ns, "no-gid"), None);
    }
    assert!(d_b.logs().contains("no-gid"), "{}", d_b.logs());
}

/// The provider with two accounts, ann and ben, whose subjects' UIDs collide at its issuer; their
/// subjects and the UID.
fn provider_with_a_colliding_pair() -> (Provider, [String; 2], u32) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let (ann, ben, uid) = colliding_subjects(&issuer, UIDS);
    let account = |login: &str| {
        json!({"login": login, "password": format!("{login}-pw"),
               "claims": {"preferred_username": login, "groups": ["staff"]}})
    };
    let accounts = json!({&ann: account("ann"), &ben: account("ben")});
    let op = Provider::start_on(
        port,
        &[
            ("OP_AUTO_CONSENT", "1"),
            ("OP_ACCOUNTS", &accounts.to_string()),
        ],
        None,
    );
    assert_eq!(op.issuer(), issuer);
    (op, [ann, ben], uid)
}

fn approver<'a>(op: &'a Provider, login: &'a str, password: &'a str) -> Approver<'a> {
    Approver {
        op,
        login,
        password,
        flags: &[],
    }
}

/// `who` logs in at the console of `ns`; whether it succeeded.
fn console(ns: &Namespace, op: &Provider, who: &str) -> bool {
    let password = format!("{who}-pw");
    PamLogin::new(ns, SERVICE, who)
        .approved_by(approver(op, who, &password))
        .run()
        .succeeded()
}

/// Two people whose UIDs collide (ann and ben: one fleet UID) arrive in opposite orders on
/// hosts A and B: each host gives the first its UID and refuses the second, logging a message
/// that names both and how to pin one; neither ever gets another number. The fix the message
/// gives: a fleet map (`oidcctl idmap build` of the directory) imported first on hosts C and D;
/// then the pair arrives in opposite orders there and both hosts give both the same UIDs. On A
/// and B, the map imports where it agrees and is refused where it would change a UID, naming
/// the user, and `oidcctl doctor --map` reports that user.
#[test]
fn a_colliding_pair_in_opposite_orders_is_refused_alike_and_a_fleet_map_settles_it() {
    let (op, [ann, ben], uid) = provider_with_a_colliding_pair();
    let cfg = DaemonConfig::for_provider(&op);
    let hosts: Vec<Namespace> = (0..4).map(|_| pam_namespace()).collect();
    let daemons: Vec<Daemon<'_>> = hosts.iter().map(|ns| Daemon::start(ns, &cfg)).collect();
    let (a, b) = (&hosts[0], &hosts[1]);

    for (ns, d, first, second) in [
        (a, &daemons[0], "ann", "ben"),
        (b, &daemons[1], "ben", "ann"),
    ] {
        assert!(console(ns, &op, first), "{}", d.logs());
        assert!(!console(ns, &op, second), "{second} got in:\n{}", d.logs());
        assert_eq!(uid_of(ns, first), Some(uid));
        assert_eq!(uid_of(ns, second), None);
        let logs = d.logs();
        assert!(
            logs.contains(&format!("the fleet UID of user {second}"))
                && logs.contains(&format!("held here by the user {first}"))
                && logs.contains("oidcctl import"),
            "{logs}"
        );
    }

    // The directory's map, built once and applied everywhere.
    let directory = json!([
        {"iss": op.issuer(), "sub": ann, "preferred_username": "ann"},
        {"iss": op.issuer(), "sub": ben, "preferred_username": "ben"}
    ]);
    let dir_file = daemons[2]
        .dir()
        .write("directory.json", directory.to_string(), 0o600);
    let built = daemons[2].oidcctl(&["idmap", "build", &dir_file.to_string_lossy()]);
    built.expect_ok();
    let map: Value = built.json();
    let pinned = |name: &str| {
        map["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .and_then(|u| u["uid"].as_u64())
            .unwrap() as u32
    };
    let (ann_uid, ben_uid) = (pinned("ann"), pinned("ben"));
    assert_ne!(ann_uid, ben_uid);
    assert!([ann_uid, ben_uid].contains(&uid), "{map}");

    for (ns, d, order) in [
        (&hosts[2], &daemons[2], ["ann", "ben"]),
        (&hosts[3], &daemons[3], ["ben", "ann"]),
    ] {
        d.import(&map).expect_ok();
        for who in order {
            assert!(console(ns, &op, who), "{who}:\n{}", d.logs());
        }
        assert_eq!(uid_of(ns, "ann"), Some(ann_uid));
        assert_eq!(uid_of(ns, "ben"), Some(ben_uid));
    }

    // On the hosts that met the pair without the map, the one whose first arrival the map
    // keeps agrees with it and takes it; the other gave the map's loser the collided UID, and
    // import and doctor say so, changing nothing. (Which is which follows the subjects' order.)
    let (loser, loser_sub, loser_uid) = if ann_uid == uid {
        ("ben", &ben, ben_uid)
    } else {
        ("ann", &ann, ann_uid)
    };
    let (agrees, disagrees) = if loser == "ben" { (0, 1) } else { (1, 0) };
    daemons[agrees].import(&map).expect_ok();
    assert_eq!(uid_of(&hosts[agrees], loser), Some(loser_uid));
    let refused = daemons[disagrees].import(&map);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains(&format!("\"{loser}\""))
            && refused
                .stderr
                .contains(&format!("has UID {uid} here, the map says {loser_uid}")),
        "{refused}"
    );
    assert_eq!(uid_of(&hosts[disagrees], loser), Some(uid));
    let file = daemons[disagrees]
        .dir()
        .write("fleet.json", map.to_string(), 0o600);
    let doctor = daemons[disagrees].oidcctl(&["doctor", "--map", &file.to_string_lossy()]);
    assert!(
        doctor.stdout.lines().any(|l| l.starts_with("ERROR")
            && l.contains("ids")
            && l.contains(&format!("user {loser} ({loser_sub:?}"))
            && l.contains(&format!(
                "has UID {uid} here, the fleet map says {loser_uid}"
            ))),
        "{doctor}"
    );
}
