//! User story: hostile or broken input (claim sets given to `oidcctl import`, raw frames on the
//! socket, configuration files) is refused with a clear message, changes nothing, and never
//! takes the daemon down.

use oidcd_tests::daemon::SOCKET;
use oidcd_tests::{Daemon, DaemonConfig, Namespace, TempDir, alice_claims, paths};
use serde_json::{Value, json};

/// A namespace with a local user `localcarl` in its /etc/passwd and /etc/group.
fn ns_with_local_user() -> Namespace {
    Namespace::builder()
        .local_user("localcarl:x:4242:4242:Local Carl:/home/localcarl:/bin/sh")
        .local_group("localcarl:x:4242:")
        .start()
}

/// A daemon with alice imported (the state every refusal must leave untouched).
fn daemon_with_alice(ns: &Namespace) -> Daemon<'_> {
    let d = Daemon::start(ns, &DaemonConfig::new());
    d.import(&json!([alice_claims()])).expect_ok();
    d
}

/// A claim set for a new, valid user `name`.
fn user(name: &str) -> Value {
    json!({"sub": format!("sub-{name}"), "preferred_username": name, "groups": ["developers"]})
}

/// Imports `entries` and checks the whole file is refused: exit 1, one `entry N:` line per
/// index in `bad` (with `needle` text in it) and none for the others, and users and groups
/// exactly as before.
#[track_caller]
fn refused(d: &Daemon<'_>, entries: Value, bad: &[(usize, &str)]) {
    let users = d.users();
    let groups = d.oidcctl_json(&["group", "list"]);
    let n = entries.as_array().unwrap().len();
    let r = d.import(&entries);
    r.expect_code(1);
    assert!(r.stderr.contains("nothing was applied"), "{r}");
    for i in 0..n {
        let line = r
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("entry {i}:")));
        match bad.iter().find(|(b, _)| *b == i) {
            Some((_, needle)) => {
                let line = line.unwrap_or_else(|| panic!("no message for entry {i}:\n{r}"));
                assert!(
                    line.contains(needle),
                    "entry {i} should say {needle:?}:\n{r}"
                );
            }
            None => assert!(line.is_none(), "entry {i} is valid but was refused:\n{r}"),
        }
    }
    assert_eq!(
        d.users(),
        users,
        "users changed although the import was refused"
    );
    assert_eq!(d.oidcctl_json(&["group", "list"]), groups, "groups changed");
}

/// Claims of the wrong JSON type are refused with the entry's index, and the valid entries
/// of the same file are not applied either.
#[test]
fn import_refuses_wrong_claim_types_and_applies_nothing() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let entries = json!([
        user("dave"),
        {"sub": "g1", "preferred_username": "gnum", "groups": 42},
        {"sub": "g2", "preferred_username": "gobj", "groups": {"admins": true}},
        {"sub": "u1", "preferred_username": 7},
        {"sub": "g3", "preferred_username": "garr", "groups": ["ok", 5]},
        "not an object",
        user("erin"),
    ]);
    refused(
        &d,
        entries,
        &[
            (1, "groups"),
            (2, "groups"),
            (3, "preferred_username"),
            (4, "groups"),
            (5, "object"),
        ],
    );
    ns.getent("passwd", &["dave"]).expect_code(2);
    ns.getent("passwd", &["erin"]).expect_code(2);
}

/// Oversized group lists (20000 raw entries; 1500 distinct after filtering) are refused.
#[test]
fn import_refuses_huge_group_arrays() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let huge: Vec<String> = (0..20_000).map(|i| format!("g{i}")).collect();
    let many: Vec<String> = (0..1_500).map(|i| format!("team{i}")).collect();
    let entries = json!([
        user("dave"),
        {"sub": "h1", "preferred_username": "huge", "groups": huge},
        {"sub": "h2", "preferred_username": "many", "groups": many},
    ]);
    refused(&d, entries, &[(1, "20000"), (2, "1500")]);
    ns.getent("group", &["g1"]).expect_code(2);
}

/// User names with control characters, ':' or other characters no Unix name may hold are
/// refused, as are names that map to invalid Unix names.
#[test]
fn import_refuses_unsafe_and_invalid_names() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let entries = json!([
        user("dave"),
        {"sub": "c1", "preferred_username": "ev\nil"},
        {"sub": "c2", "preferred_username": "nul\u{0}x"},
        {"sub": "c3", "preferred_username": "co:lon"},
        {"sub": "c4", "preferred_username": "carol@example.test"},
        {"sub": "c5", "preferred_username": "1alice"},
        {"sub": "c6", "preferred_username": "-rf"},
        {"sub": "c7", "preferred_username": "two words"},
        {"sub": "c8", "preferred_username": "a".repeat(33)},
        {"sub": "c9", "preferred_username": ""},
        {"sub": "c10", "preferred_username": "../../etc"},
    ]);
    let mut bad = vec![(1, "control characters"), (2, "control characters")];
    bad.extend((3..=10).map(|i| (i, "not a safe Unix name")));
    refused(&d, entries, &bad);
}

/// Names of root, of reserved system accounts and of local users, and a name another
/// identity already holds, are refused.
#[test]
fn import_refuses_root_local_and_taken_names() {
    let ns = ns_with_local_user();
    let d = daemon_with_alice(&ns);
    let entries = json!([
        user("dave"),
        {"sub": "r1", "preferred_username": "root"},
        {"sub": "r2", "preferred_username": "ROOT"},
        {"sub": "l1", "preferred_username": "localcarl"},
        {"sub": "s1", "preferred_username": "sudo"},
        {"sub": "s2", "preferred_username": "daemon"},
        {"sub": "a2", "preferred_username": "Alice"},
        {"sub": "d2", "preferred_username": "dave"},
    ]);
    refused(
        &d,
        entries,
        &[
            (1, "root"),
            (2, "root"),
            (3, "localcarl"),
            (4, "sudo"),
            (5, "daemon"),
            (6, "alice"),
            (7, "dave"),
        ],
    );
    let carl = ns.getent("passwd", &["localcarl"]);
    carl.expect_ok();
    assert!(carl.stdout.contains(":4242:4242:"), "{carl}");
}

/// A missing, empty or non-string `sub` is refused.
#[test]
fn import_refuses_missing_or_bad_sub() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let entries = json!([
        user("dave"),
        {"preferred_username": "nosub"},
        {"sub": "", "preferred_username": "emptysub"},
        {"sub": 12345, "preferred_username": "numsub"},
        {"sub": null, "preferred_username": "nullsub"},
    ]);
    refused(
        &d,
        entries,
        &[(1, "sub"), (2, "sub"), (3, "sub"), (4, "sub")],
    );
}

/// A file that is not JSON, or JSON of the wrong shape, is refused before anything is sent.
#[test]
fn import_refuses_files_that_are_not_claim_arrays() {
    let ns = Namespace::new();
    let d = daemon_with_alice(&ns);
    let users = d.users();
    let dir = TempDir::new("import");
    for (name, text) in [
        ("garbage", "this is not json"),
        ("object", r#"{"sub": "x"}"#),
        ("number", "42"),
        ("truncated", r#"[{"sub": "x", "preferred_username": "#),
    ] {
        let f = dir.write(name, text, 0o600);
        let r = d.oidcctl(&["import", &f.to_string_lossy()]);
        r.expect_code(1);
        assert!(r.stderr.contains(&*f.to_string_lossy()), "{r}");
    }
    let r = d.oidcctl(&["import", "/nonexistent/file.json"]);
    r.expect_code(1);
    assert!(r.stderr.contains("cannot read"), "{r}");
    assert_eq!(d.users(), users);
}

/// One invalid configuration, and the `key: message` part expected after `file:line:column: `.
struct BadConfig {
    text: String,
    line: usize,
    key: &'static str,
    message: &'static str,
}

/// Bad configurations: an unknown key, a wrong type, uid_min in the system range, and an
/// empty UID range (each after a valid [provider] of four lines and a blank line).
fn bad_configs() -> Vec<BadConfig> {
    let head = "[provider]\nissuer = \"http://127.0.0.1:9\"\ninsecure_http_issuer = true\n\
                client_id = \"pam-oidc\"\n\n";
    let mk = |body: &str, line, key, message| BadConfig {
        text: format!("{head}{body}"),
        line,
        key,
        message,
    };
    vec![
        mk(
            "[cache]\nenumerate = true\nbogus = 1\n",
            8,
            "cache.bogus",
            "unknown field",
        ),
        mk(
            "[cache]\nenumerate = \"yes\"\n",
            7,
            "cache.enumerate",
            "invalid type",
        ),
        mk(
            "[mapping]\nuid_min = 500\n",
            7,
            "mapping.uid_min",
            "system range",
        ),
        mk(
            "[mapping]\nuid_min = 300000\nuid_max = 200000\n",
            8,
            "mapping.uid_max",
            "empty range",
        ),
    ]
}

/// `oidcctl config check` names file, line, column and key for each bad configuration and
/// exits 1; a valid one exits 0.
#[test]
fn config_check_reports_file_line_column_and_key() {
    let ns = Namespace::new();
    let dir = TempDir::new("cfg");
    for (i, bad) in bad_configs().iter().enumerate() {
        let path = dir.write(&format!("bad{i}.toml"), &bad.text, 0o600);
        let r = ns.run(
            paths::oidcctl(),
            &["config", "check", "--config", &path.to_string_lossy()],
        );
        r.expect_code(1);
        let first = r.stderr.lines().next().unwrap_or("");
        let prefix = format!("{}:{}:", path.display(), bad.line);
        assert!(first.starts_with(&prefix), "expected {prefix}…:\n{r}");
        let rest = &first[prefix.len()..];
        let (col, rest) = rest.split_once(": ").unwrap();
        assert!(col.parse::<usize>().is_ok(), "no column in {first:?}");
        assert!(
            rest.starts_with(&format!("{}: ", bad.key)) && rest.contains(bad.message),
            "expected `{}: …{}…` in {first:?}",
            bad.key,
            bad.message
        );
    }
    let good = dir.write("good.toml", DaemonConfig::new().render(), 0o600);
    ns.run(
        paths::oidcctl(),
        &["config", "check", "--config", &good.to_string_lossy()],
    )
    .expect_ok();
}

/// `oidcd` refuses to start (exit 1, the problem on stderr, no socket) with each bad
/// configuration.
#[test]
fn daemon_refuses_to_start_with_bad_config() {
    let ns = Namespace::new();
    let dir = TempDir::new("cfg");
    for (i, bad) in bad_configs().iter().enumerate() {
        let path = dir.write(&format!("bad{i}.toml"), &bad.text, 0o600);
        let r = ns.run(paths::oidcd(), &["--config", &path.to_string_lossy()]);
        r.expect_code(1);
        assert!(r.stderr.contains(bad.key), "{r}");
        assert!(r.stderr.contains("not starting"), "{r}");
        assert!(!ns.host_path(SOCKET).exists());
    }
}

/// A claim set larger than the daemon's request limit (1 MiB) fails with a message that says
/// so and exit 1, not a transport error and the "daemon not running" exit code 3, and nothing
/// of the file is imported. (Files of many claim sets go in parts: ctl.rs.)
#[test]
fn import_over_the_request_limit_says_so() {
    let ns = Namespace::new();
    let mut d = daemon_with_alice(&ns);
    let users = d.users();
    let mut entries: Vec<Value> = (0..100)
        .map(|i| json!({"sub": format!("s{i}"), "preferred_username": format!("user{i}")}))
        .collect();
    entries.push(json!({"sub": "huge", "preferred_username": "huge",
                        "name": "x".repeat(1_100_000)}));
    let r = d.import(&json!(entries));
    assert!(
        r.code() == 1 && (r.stderr.contains("limit") || r.stderr.contains("too large")),
        "expected exit 1 and a message about the size limit:\n{r}"
    );
    assert_eq!(d.users(), users);
    assert!(d.try_wait().is_none());
}
