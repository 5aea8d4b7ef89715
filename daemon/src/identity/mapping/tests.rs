use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::config::{ClaimPath, GidSource, UidSource};

/// No local accounts at all.
fn nobody_local() -> LocalAccounts {
    LocalAccounts::from_paths(
        std::path::Path::new("/nonexistent/passwd"),
        std::path::Path::new("/nonexistent/group"),
    )
}

/// Local accounts read from temporary files, removed when dropped.
struct Local {
    dir: PathBuf,
    accounts: LocalAccounts,
}

impl Local {
    fn new(passwd: &str, group: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oidcd-mapping-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("group"), group).unwrap();
        let mut accounts = LocalAccounts::from_paths(&dir.join("passwd"), &dir.join("group"));
        accounts.refresh().unwrap();
        Self { dir, accounts }
    }

    /// A host with a local user `bob` (and his group) and a group `developers`.
    fn typical() -> Self {
        Self::new(
            "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000:Bob:/home/bob:/bin/bash\n",
            "root:x:0:\nsudo:x:27:bob\nbob:x:1000:\ndevelopers:x:1001:bob\n",
        )
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn map(claims: &Value, cfg: &Config) -> Result<MappedUser, Refusal> {
    map_claims(claims, cfg, &nobody_local())
}

/// The Unix names of the groups kept.
fn group_names(u: &MappedUser) -> Vec<&str> {
    u.groups.iter().map(|g| g.name.as_str()).collect()
}

fn with_groups(groups: Value) -> Value {
    json!({"sub": "s-1", "preferred_username": "alice", "groups": groups})
}

fn assert_bad_claim(r: Result<MappedUser, Refusal>, claim: &str) {
    match r {
        Err(Refusal::BadClaim { claim: c, .. }) => assert_eq!(c, claim),
        other => panic!("expected a bad {claim:?} claim, got {other:?}"),
    }
}

fn assert_invalid_name(r: Result<MappedUser, Refusal>) {
    assert!(
        matches!(r, Err(Refusal::InvalidName { .. })),
        "expected an invalid name, got {r:?}"
    );
}

fn assert_local_collision(r: Result<MappedUser, Refusal>) {
    assert!(
        matches!(r, Err(Refusal::LocalCollision { .. })),
        "expected a local collision, got {r:?}"
    );
}

// ---- Names ----

/// Under the default mapping, a typical claim set maps to the expected user.
#[test]
fn default_mapping_of_alice() {
    let claims = json!({
        "sub": "248289761001",
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": true,
        "groups": ["developers", "admins"],
    });
    let u = map(&claims, &Config::default()).unwrap();
    assert_eq!(
        u,
        MappedUser {
            sub: "248289761001".into(),
            name: "alice".into(),
            gecos: "Alice Liddell".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            uid_from_claim: None,
            groups: vec![
                MappedGroup {
                    provider_name: "developers".into(),
                    name: "developers".into(),
                    gid_from_claim: None
                },
                MappedGroup {
                    provider_name: "admins".into(),
                    name: "admins".into(),
                    gid_from_claim: None
                },
            ],
            is_admin: false,
            notes: Vec::new(),
        }
    );
}

/// A configured suffix is stripped whatever its case, and the name lowercased.
#[test]
fn suffix_strip_and_lowercase() {
    let mut cfg = Config::default();
    cfg.claims.username = ClaimPath("email".into());
    cfg.mapping.strip_suffixes = vec!["@other.org".into(), "@example.com".into()];
    let u = map(
        &json!({"sub": "s", "email": "Alice.Smith@Example.COM", "email_verified": true}),
        &cfg,
    )
    .unwrap();
    assert_eq!(u.name, "alice.smith");
    // Without a matching suffix the '@' stays and the name is refused.
    assert_invalid_name(map(
        &json!({"sub": "s", "email": "alice@elsewhere.net", "email_verified": true}),
        &cfg,
    ));
    // A name that is only the suffix is not stripped to nothing.
    assert_invalid_name(map(
        &json!({"sub": "s", "email": "@example.com", "email_verified": true}),
        &cfg,
    ));
}

/// issue 15 #7: a user name taken from the email address needs `email_verified: true`
/// (whoever set an unverified address first would own the name), whatever
/// `access.require_email_verified` says; a name from another claim does not.
#[test]
fn a_name_from_the_email_needs_it_verified() {
    for username_claim in ["email", "mail"] {
        let mut cfg = Config::default();
        cfg.claims.username = ClaimPath(username_claim.into());
        cfg.claims.email = ClaimPath(username_claim.into());
        cfg.mapping.strip_suffixes = vec!["@example.com".into()];
        let with = |verified: Value| {
            let mut c = json!({"sub": "s", "email_verified": verified});
            c[username_claim] = json!("alice@example.com");
            c
        };
        assert_eq!(map(&with(json!(true)), &cfg).unwrap().name, "alice");
        assert_eq!(map(&with(json!("true")), &cfg).unwrap().name, "alice");
        for unverified in [json!(false), json!("false"), json!(null), json!(1)] {
            assert_eq!(
                map(&with(unverified.clone()), &cfg),
                Err(Refusal::NameFromUnverifiedEmail {
                    email: "alice@example.com".into()
                }),
                "{username_claim}: {unverified}"
            );
        }
        let mut missing = with(json!(true));
        missing.as_object_mut().unwrap().remove("email_verified");
        assert!(map(&missing, &cfg).is_err());
    }
    // preferred_username does not need a verified email.
    let cfg = Config::default();
    let u = map(
        &json!({"sub": "s", "preferred_username": "bob", "email": "b@x", "email_verified": false}),
        &cfg,
    );
    assert_eq!(u.unwrap().name, "bob");
}

/// Without lowercasing, upper-case names are kept as they are.
#[test]
fn case_kept_when_lowercasing_is_off() {
    let mut cfg = Config::default();
    cfg.mapping.lowercase_names = false;
    let u = map(&json!({"sub": "s", "preferred_username": "Alice"}), &cfg).unwrap();
    assert_eq!(u.name, "Alice");
}

/// Names that are not safe Unix names are refused.
#[test]
fn invalid_names_refused() {
    let long = "a".repeat(33);
    for raw in [
        "1alice",
        "a:b",
        "a b",
        "",
        "-x",
        "a/b",
        "../x",
        "ålice",
        long.as_str(),
    ] {
        assert_invalid_name(map(
            &json!({"sub": "s", "preferred_username": raw}),
            &Config::default(),
        ));
    }
    assert!(
        map(
            &json!({"sub": "s", "preferred_username": "a".repeat(32)}),
            &Config::default()
        )
        .is_ok()
    );
}

/// Control characters and overlong values are refused as bad claims before any mapping.
#[test]
fn control_chars_and_huge_claims_refused() {
    let cfg = Config::default();
    for raw in ["a\nb", "alice\u{0}", "ali\u{1b}[31mce"] {
        assert_bad_claim(
            map(&json!({"sub": "s", "preferred_username": raw}), &cfg),
            "preferred_username",
        );
    }
    let huge = "a".repeat(MAX_CLAIM_LEN + 1);
    assert_bad_claim(
        map(&json!({"sub": "s", "preferred_username": huge}), &cfg),
        "preferred_username",
    );
}

/// Lowercasing cannot turn a look-alike character into an ASCII letter, so a provider name
/// with the Kelvin sign (U+212A) is refused instead of becoming another user's name.
#[test]
fn lookalike_does_not_lowercase_into_ascii() {
    let cfg = Config::default();
    assert_invalid_name(map(
        &json!({"sub": "s", "preferred_username": "bob\u{212A}"}),
        &cfg,
    ));
    let mut groups_cfg = Config::default();
    groups_cfg.mapping.lowercase_names = true;
    let u = map(&with_groups(json!(["\u{212A}ube-admins"])), &groups_cfg).unwrap();
    assert!(u.groups.is_empty(), "{u:?}");
}

/// A case-folding suffix match on a character whose lowercase is shorter does not panic.
#[test]
fn suffix_strip_with_multibyte_case_fold() {
    let mut cfg = Config::default();
    cfg.mapping.strip_suffixes = vec!["@kit.edu".into()];
    let r = map(
        &json!({"sub": "s", "preferred_username": "alice@\u{212A}it.edu"}),
        &cfg,
    );
    assert_invalid_name(r);
}

/// sub and the username claim are required strings.
#[test]
fn required_claims() {
    let cfg = Config::default();
    assert_bad_claim(map(&json!({"preferred_username": "alice"}), &cfg), "sub");
    assert_bad_claim(
        map(&json!({"sub": "", "preferred_username": "alice"}), &cfg),
        "sub",
    );
    assert_bad_claim(
        map(&json!({"sub": 42, "preferred_username": "alice"}), &cfg),
        "sub",
    );
    assert_bad_claim(map(&json!({"sub": "s"}), &cfg), "preferred_username");
    assert_bad_claim(map(&json!(["not", "an", "object"]), &cfg), "(claims)");
}

/// A username claim of the wrong type is refused, naming the claim.
#[test]
fn username_of_wrong_type() {
    let cfg = Config::default();
    for v in [
        json!(42),
        json!(true),
        json!(["alice"]),
        json!({"n": "alice"}),
    ] {
        assert_bad_claim(
            map(&json!({"sub": "s", "preferred_username": v}), &cfg),
            "preferred_username",
        );
    }
}

// ---- Groups claim ----

/// A groups claim that is a number, an object or holds a non-string is refused.
#[test]
fn groups_of_wrong_type() {
    let cfg = Config::default();
    for g in [
        json!(7),
        json!({"a": 1}),
        json!(["ok", 3]),
        json!(["ok", null]),
        json!([""]),
    ] {
        assert_bad_claim(map(&with_groups(g), &cfg), "groups");
    }
}

/// An absent or null groups claim means no groups.
#[test]
fn groups_absent_or_null() {
    let cfg = Config::default();
    let u = map(&json!({"sub": "s", "preferred_username": "alice"}), &cfg).unwrap();
    assert!(u.groups.is_empty());
    let u = map(&with_groups(Value::Null), &cfg).unwrap();
    assert!(u.groups.is_empty());
}

/// A single string is taken as one group; duplicates are merged.
#[test]
fn single_string_and_duplicate_groups() {
    let cfg = Config::default();
    let u = map(&with_groups(json!("developers")), &cfg).unwrap();
    assert_eq!(group_names(&u), ["developers"]);
    let u = map(&with_groups(json!(["a", "b", "a"])), &cfg).unwrap();
    assert_eq!(group_names(&u), ["a", "b"]);
}

/// A nested groups claim (Keycloak realm roles) is read through its path.
#[test]
fn nested_groups_claim() {
    let mut cfg = Config::default();
    cfg.claims.groups = vec![ClaimPath("realm_access.roles".into())];
    let claims = json!({
        "sub": "s", "preferred_username": "alice",
        "realm_access": {"roles": ["linux-users", "offline_access"]},
    });
    let u = map(&claims, &cfg).unwrap();
    assert_eq!(group_names(&u), ["linux-users", "offline_access"]);
}

/// groups_include keeps only matching groups; groups_exclude then drops matches.
#[test]
fn include_and_exclude_globs() {
    let mut cfg = Config::default();
    cfg.mapping.groups_include = vec!["linux-*".into(), "ops".into()];
    cfg.mapping.groups_exclude = vec!["linux-old-*".into()];
    let g = json!(["linux-dev", "linux-old-dev", "ops", "opsx", "marketing"]);
    let u = map(&with_groups(g), &cfg).unwrap();
    assert_eq!(group_names(&u), ["linux-dev", "ops"]);
    // Filtered groups are dropped silently, not noted.
    assert!(u.notes.is_empty(), "{:?}", u.notes);
}

/// Keycloak paths lose their "/" and gain the group prefix; the provider name is kept.
#[test]
fn group_prefix_and_strip_prefixes() {
    let mut cfg = Config::default();
    cfg.mapping.group_strip_prefixes = vec!["/".into()];
    cfg.mapping.group_prefix = "kc-".into();
    let u = map(&with_groups(json!(["/admins", "Devs", "/team/sub"])), &cfg).unwrap();
    assert_eq!(
        u.groups[0],
        MappedGroup {
            provider_name: "/admins".into(),
            name: "kc-admins".into(),
            gid_from_claim: None
        }
    );
    assert_eq!(u.groups[1].name, "kc-devs");
    // "team/sub" is not a valid name: skipped with a note.
    assert_eq!(u.groups.len(), 2);
    assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
    assert!(u.notes[0].contains("/team/sub"), "{:?}", u.notes);
}

/// Groups colliding with local or reserved names are skipped with a note, not refused.
#[test]
fn group_collisions_are_skipped_with_a_note() {
    let local = Local::typical();
    let g = json!([
        "developers",
        "sudo",
        "systemd-journal",
        "bob",
        "alice",
        "ok",
        "root"
    ]);
    let u = map_claims(&with_groups(g), &Config::default(), &local.accounts).unwrap();
    assert_eq!(group_names(&u), ["ok"]);
    assert_eq!(u.notes.len(), 6, "{:?}", u.notes);
    for (note, g) in u.notes.iter().zip([
        "developers",
        "sudo",
        "systemd-journal",
        "bob",
        "alice",
        "root",
    ]) {
        assert!(note.contains(&format!("{g:?}")), "{note}");
    }
}

/// Provider groups that map to one Unix name: none of them is kept (the name must not stand
/// for one group for some users and another for the rest), and each is noted.
#[test]
fn two_groups_one_name() {
    let mut cfg = Config::default();
    cfg.mapping.group_strip_prefixes = vec!["/".into()];
    let u = map(
        &with_groups(json!(["/Admins", "admins", "ADMINS", "dev"])),
        &cfg,
    )
    .unwrap();
    assert_eq!(group_names(&u), ["dev"]);
    assert_eq!(u.notes.len(), 3, "{:?}", u.notes);
    assert!(
        u.notes.iter().all(|n| n.contains("refused")),
        "{:?}",
        u.notes
    );
}

/// More than MAX_GROUPS groups left after filtering refuses the user.
#[test]
fn too_many_groups_after_filtering() {
    let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
    let cfg = Config::default();
    assert_bad_claim(map(&with_groups(json!(many)), &cfg), "groups");
    // Filtering them down makes the same claims acceptable.
    let mut narrow = Config::default();
    narrow.mapping.groups_include = vec!["g1*".into()];
    let u = map(&with_groups(json!(many)), &narrow).unwrap();
    assert!(u.groups.len() < MAX_GROUPS);
    let exactly: Vec<String> = (0..MAX_GROUPS).map(|i| format!("g{i}")).collect();
    assert_eq!(
        map(&with_groups(json!(exactly)), &cfg)
            .unwrap()
            .groups
            .len(),
        MAX_GROUPS
    );
}

/// More than MAX_RAW_GROUPS raw entries refuses the user before any filtering.
#[test]
fn too_many_raw_groups() {
    let raw: Vec<String> = (0..=MAX_RAW_GROUPS).map(|i| format!("g{i}")).collect();
    let mut cfg = Config::default();
    cfg.mapping.groups_include = vec!["none-of-them".into()];
    assert_bad_claim(map(&with_groups(json!(raw)), &cfg), "groups");
}

// ---- Protected names ----

/// A name held by a local user or group is refused unless listed in allow_names.
#[test]
fn local_names_refused_unless_allowed() {
    let local = Local::typical();
    let cfg = Config::default();
    for name in ["bob", "developers"] {
        let claims = json!({"sub": "s", "preferred_username": name});
        assert_local_collision(map_claims(&claims, &cfg, &local.accounts));
    }
    let mut allowed = Config::default();
    allowed.mapping.allow_names = vec!["bob".into()];
    let claims = json!({"sub": "s", "preferred_username": "bob"});
    assert_eq!(
        map_claims(&claims, &allowed, &local.accounts).unwrap().name,
        "bob"
    );
}

/// Reserved names are refused unless listed in allow_names; root never.
#[test]
fn reserved_names_refused_root_always() {
    let cfg = Config::default();
    for name in ["nobody", "systemd-x", "root", "sudo", "_apt", "oidcd"] {
        assert_local_collision(map(&json!({"sub": "s", "preferred_username": name}), &cfg));
    }
    let mut allowed = Config::default();
    allowed.mapping.allow_names = vec!["nobody".into(), "systemd-x".into(), "root".into()];
    for name in ["nobody", "systemd-x"] {
        let u = map(&json!({"sub": "s", "preferred_username": name}), &allowed).unwrap();
        assert_eq!(u.name, name);
    }
    assert_local_collision(map(
        &json!({"sub": "s", "preferred_username": "root"}),
        &allowed,
    ));
    assert_local_collision(map(
        &json!({"sub": "s", "preferred_username": "ROOT"}),
        &allowed,
    ));
}

/// A group named like the user's own private group is skipped.
#[test]
fn group_named_like_the_user() {
    let u = map(
        &with_groups(json!(["alice", "staff-x"])),
        &Config::default(),
    )
    .unwrap();
    assert_eq!(group_names(&u), ["staff-x"]);
    assert_eq!(u.notes.len(), 1);
}

// ---- Access gates ----

/// allowed_groups admits members of a listed provider group only.
#[test]
fn allowed_groups_gate() {
    let mut cfg = Config::default();
    cfg.access.allowed_groups = vec!["linux-users".into()];
    assert_eq!(
        map(&with_groups(json!(["marketing"])), &cfg),
        Err(Refusal::NotInAllowedGroups)
    );
    assert_eq!(
        map(&json!({"sub": "s", "preferred_username": "alice"}), &cfg),
        Err(Refusal::NotInAllowedGroups)
    );
    // Membership counts even when the group itself is filtered out of the Unix groups.
    cfg.mapping.groups_exclude = vec!["linux-*".into()];
    let u = map(&with_groups(json!(["linux-users"])), &cfg).unwrap();
    assert!(u.groups.is_empty());
}

/// allowed_email_domains compares the domain without regard to case.
#[test]
fn allowed_email_domains_gate() {
    let mut cfg = Config::default();
    cfg.access.allowed_email_domains = vec!["example.com".into()];
    let with_email =
        |email: Value| json!({"sub": "s", "preferred_username": "alice", "email": email});
    assert!(map(&with_email(json!("alice@EXAMPLE.com")), &cfg).is_ok());
    for bad in [
        json!("alice@example.com.evil.net"),
        json!("alice@sub.example.com"),
        json!("alice"),
    ] {
        assert!(
            matches!(
                map(&with_email(bad.clone()), &cfg),
                Err(Refusal::EmailDomain { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        map(&json!({"sub": "s", "preferred_username": "alice"}), &cfg),
        Err(Refusal::EmailDomain {
            email: "none".into()
        })
    );
}

/// require_email_verified admits only an explicit true (or the string "true").
#[test]
fn require_email_verified_gate() {
    let mut cfg = Config::default();
    cfg.access.require_email_verified = true;
    let with = |v: Option<Value>| {
        let mut c = json!({"sub": "s", "preferred_username": "alice", "email": "a@example.com"});
        if let Some(v) = v {
            c["email_verified"] = v;
        }
        c
    };
    for refused in [
        Some(json!(false)),
        None,
        Some(json!("false")),
        Some(json!(1)),
        Some(Value::Null),
    ] {
        assert_eq!(
            map(&with(refused.clone()), &cfg),
            Err(Refusal::EmailNotVerified),
            "{refused:?}"
        );
    }
    for ok in [json!(true), json!("true")] {
        assert!(
            map(&with(Some(ok.clone())), &cfg).unwrap().email_verified,
            "{ok}"
        );
    }
}

/// is_admin follows membership of admin_groups (by provider name).
#[test]
fn admin_from_admin_groups() {
    let mut cfg = Config::default();
    cfg.access.admin_groups = vec!["/ops".into()];
    cfg.mapping.group_strip_prefixes = vec!["/".into()];
    assert!(
        map(&with_groups(json!(["/ops", "dev"])), &cfg)
            .unwrap()
            .is_admin
    );
    assert!(
        !map(&with_groups(json!(["ops", "dev"])), &cfg)
            .unwrap()
            .is_admin
    );
    assert!(!map(&with_groups(json!([])), &cfg).unwrap().is_admin);
}

// ---- Other fields ----

/// GECOS loses ':' and control characters; a missing or non-string one is empty.
#[test]
fn gecos_is_cleaned() {
    let cfg = Config::default();
    let with_name = |n: Value| json!({"sub": "s", "preferred_username": "alice", "name": n});
    let u = map(&with_name(json!(" Alice:Admin\nroot::0:0\t ")), &cfg).unwrap();
    assert_eq!(u.gecos, "Alice Admin root  0 0");
    assert!(!u.gecos.contains(':'));
    assert_eq!(map(&with_name(json!(42)), &cfg).unwrap().gecos, "");
    let u = map(&json!({"sub": "s", "preferred_username": "alice"}), &cfg).unwrap();
    assert_eq!(u.gecos, "");
    let long = "x".repeat(1000);
    assert_eq!(map(&with_name(json!(long)), &cfg).unwrap().gecos.len(), 256);
}

/// With uid_source = "claim" the UID comes from a number or a numeric string.
#[test]
fn uid_from_claim() {
    let mut cfg = Config::default();
    cfg.mapping.uid_source = UidSource::Claim;
    cfg.claims.uid = Some(ClaimPath("uidNumber".into()));
    let with_uid = |v: Value| json!({"sub": "s", "preferred_username": "alice", "uidNumber": v});
    assert_eq!(
        map(&with_uid(json!(150_000)), &cfg).unwrap().uid_from_claim,
        Some(150_000)
    );
    assert_eq!(
        map(&with_uid(json!("150001")), &cfg)
            .unwrap()
            .uid_from_claim,
        Some(150_001)
    );
    for bad in [
        json!(-1),
        json!(4_294_967_296_u64),
        json!("12a"),
        json!("-5"),
        json!(1.5),
        json!([1]),
    ] {
        assert_bad_claim(map(&with_uid(bad), &cfg), "uidNumber");
    }
    assert_bad_claim(
        map(&json!({"sub": "s", "preferred_username": "alice"}), &cfg),
        "uidNumber",
    );
    assert_bad_claim(map(&with_uid(Value::Null), &cfg), "uidNumber");
    // Under the hash scheme the claim is ignored.
    let u = map(&with_uid(json!("junk")), &Config::default()).unwrap();
    assert_eq!(u.uid_from_claim, None);
}

/// With gid_source = "claim" each group's GID comes from the object claim, keyed by the group's
/// claim value (a number or a numeric string); a group without one is left out with a note, and
/// a claim that is not an object refuses the login.
#[test]
fn gids_from_claim() {
    let mut cfg = Config::default();
    cfg.mapping.gid_source = GidSource::Claim;
    cfg.mapping.group_strip_prefixes = vec!["/".into()];
    cfg.claims.gid = Some(ClaimPath("group_gids".into()));
    let with = |gids: Value| {
        json!({"sub": "s", "preferred_username": "alice", "groups": ["/dev", "/ops", "/qa"],
               "group_gids": gids})
    };
    let u = map(
        &with(json!({"/dev": 5001, "/ops": "5002", "/qa": -1})),
        &cfg,
    )
    .unwrap();
    let got: Vec<(&str, Option<u32>)> = u
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.gid_from_claim))
        .collect();
    assert_eq!(got, [("dev", Some(5001)), ("ops", Some(5002))]);
    assert!(
        u.notes.iter().any(|n| n.contains("\"/qa\"")),
        "{:?}",
        u.notes
    );
    // No claim: no groups, each noted.
    let u = map(
        &json!({"sub": "s", "preferred_username": "alice", "groups": ["/dev"]}),
        &cfg,
    )
    .unwrap();
    assert!(u.groups.is_empty());
    assert_bad_claim(map(&with(json!([5001])), &cfg), "group_gids");
    // Under the hash scheme the claim is ignored.
    let u = map(&with(json!("junk")), &Config::default()).unwrap();
    assert!(u.groups.iter().all(|g| g.gid_from_claim.is_none()));
}

/// Refusals read as sentences naming what is wrong.
#[test]
fn refusal_messages() {
    let r = map(
        &json!({"sub": "s", "preferred_username": "nobody"}),
        &Config::default(),
    )
    .unwrap_err();
    assert!(r.to_string().contains("allow_names"), "{r}");
    let r = map(
        &json!({"sub": "s", "preferred_username": 7}),
        &Config::default(),
    )
    .unwrap_err();
    assert_eq!(
        r.to_string(),
        "claim \"preferred_username\": must be a string, not a number"
    );
}
