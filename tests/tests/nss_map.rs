//! User story: lookups are served from the daemon's memory-mapped NSS map
//! (`/run/oidcd/nss.map`) through the real libnss_oidc.so.2 and glibc; the map follows every
//! change without restarting the programs that use it, survives fork, leaks nothing into
//! exec'd programs, keeps users resolving while the daemon is down or frozen until its TTL
//! and then says "unavailable" (never "no such user"), and a map that is damaged or not
//! root's is ignored in favour of the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use oidc_proto::nss_map::{MapEncoder, MapView, UserEntry};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, alice_claims, bob_claims, measure, ms, paths};
use serde_json::{Value, json};

const MAP: &str = "/run/oidcd/nss.map";

/// Waits until the daemon has put a current map holding `name` in place (at most 10 s).
fn wait_for_map(ns: &Namespace, name: &str) {
    let p = ns.host_path(MAP);
    let current = || {
        std::fs::read(&p).is_ok_and(|b| {
            MapView::from_file(&b).is_ok_and(|(state, _, v)| {
                state == 0 && v.user_by_name(name.as_bytes()).is_ok_and(|u| u.is_some())
            })
        })
    };
    assert!(
        oidcd_tests::wait_until(Duration::from_secs(10), current),
        "no current map holding {name} at {MAP}"
    );
}

/// `nss_probe.py ARGS…` inside the namespace, its JSON lines.
fn probe(ns: &Namespace, args: &[&str]) -> Vec<Value> {
    let mut a = vec![paths::nss_probe().to_string_lossy().into_owned()];
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = ns.run(oidcd_tests::util::python3(), &a);
    r.expect_ok();
    r.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One lookup in a fresh process.
fn lookup(ns: &Namespace, name: &str) -> Value {
    probe(ns, &[name]).remove(0)
}

/// A long-running process answering lookups (the same process throughout).
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(ns: &Namespace) -> Self {
        let mut cmd = ns.command(oidcd_tests::util::python3());
        cmd.arg(paths::nss_probe())
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(s.read()["ready"], true);
        s
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn ask(&mut self, what: &str) -> Value {
        writeln!(self.stdin, "{what}").unwrap();
        self.read()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon with alice and bob imported and its map in place.
fn daemon_with_users<'a>(ns: &'a Namespace, cfg: &mut DaemonConfig) -> Daemon<'a> {
    cfg.admin_groups(&["oidc-admins"]);
    let d = Daemon::start(ns, cfg);
    d.import(&json!([alice_claims(), bob_claims()])).expect_ok();
    wait_for_map(ns, "bob");
    d
}

/// The map is root's, mode 0644, holds no claims or emails, and is what answers: a process
/// that looked alice up has it mapped, and her entry matches the daemon's.
#[test]
fn map_is_used_and_holds_only_what_getent_shows() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &mut DaemonConfig::new());
    let meta = std::fs::metadata(ns.host_path(MAP)).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    let bytes = std::fs::read(ns.host_path(MAP)).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("example.test"), "an email is in the map");
    assert!(!text.contains("email_verified"), "claims are in the map");
    let (state, _, view) = MapView::from_file(&bytes).unwrap();
    assert_eq!(state, 0);
    assert!(view.user_by_name(b"alice").unwrap().is_some());

    let got = probe(&ns, &["--exec", "alice"]);
    assert_eq!(got[0]["found"], true, "{got:?}");
    assert!(
        got[0]["maps"].as_u64().unwrap() >= 1,
        "alice not served from the map"
    );
    let uid = d.oidcctl_json(&["user", "show", "alice"])["unix"]["uid"]
        .as_u64()
        .unwrap();
    assert_eq!(got[0]["uid"].as_u64(), Some(uid));
    assert_eq!(got[0]["gecos"], "Alice Test");
    ns.getent("passwd", &["nosuchuser"]).expect_code(2);
}

/// No descriptor leaks into exec'd programs (the file is closed once mapped), and a forked
/// child keeps resolving through the mapping it inherited.
#[test]
fn fork_keeps_working_and_exec_gets_no_descriptor() {
    let ns = Namespace::new();
    let _d = daemon_with_users(&ns, &mut DaemonConfig::new());
    let out = ns.run(
        oidcd_tests::util::python3(),
        &[&paths::nss_probe().to_string_lossy(), "--exec", "alice"],
    );
    out.expect_ok();
    assert!(out.stdout.contains("\"found\": true"), "{out}");
    assert!(
        !out.stdout.contains("nss.map"),
        "a descriptor of the map leaked:\n{out}"
    );

    let got = probe(&ns, &["--fork", "alice", "bob", "nosuchuser"]);
    let child: Vec<&Value> = got.iter().filter(|v| v["who"] == "child").collect();
    assert_eq!(child.len(), 3, "{got:?}");
    assert_eq!(
        (child[0]["found"].clone(), child[1]["found"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(child[2]["found"], false);
    assert_eq!(child[2]["ret"], 0, "NOTFOUND, not an error");
    assert_eq!(got.last().unwrap()["child_status"], 0);
}

/// A process running throughout sees a new user, a removed user and a renamed one within a
/// second or two, without restarting, and holds at most two mappings of the map however many
/// times it was replaced (retired mappings are unmapped).
#[test]
fn running_process_follows_changes_and_unmaps_old_maps() {
    let ns = Namespace::new();
    let d = daemon_with_users(&ns, &mut DaemonConfig::new());
    let mut s = Server::start(&ns);
    assert_eq!(s.ask("alice")["found"], true);
    assert_eq!(s.ask("carol")["found"], false);

    let until = |s: &mut Server, name: &str, found: bool| -> Duration {
        let t = Instant::now();
        while s.ask(name)["found"] != found {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{name} never became {found}"
            );
            oidcd_tests::sleep(Duration::from_millis(5));
        }
        t.elapsed()
    };
    d.import(&json!([{"sub": "carol", "preferred_username": "carol"}]))
        .expect_ok();
    let added = until(&mut s, "carol", true);
    let r = d.oidcctl(&["user", "remove", "alice"]);
    r.expect_ok();
    let removed = until(&mut s, "alice", false);
    assert_eq!(s.ask("alice")["ret"], 0, "a removed user is NOTFOUND");
    for i in 0..10 {
        d.import(&json!([{"sub": format!("x{i}"), "preferred_username": format!("x{i}")}]))
            .expect_ok();
        until(&mut s, &format!("x{i}"), true);
    }
    let maps = s.ask("!maps")["maps"].as_u64().unwrap();
    measure(&format!(
        "nss_map follow added={:.0}ms removed={:.0}ms mappings_after_12_maps={maps}",
        ms(added),
        ms(removed)
    ));
    assert!((1..=2).contains(&maps), "{maps} mappings of the map held");
    assert!(removed < Duration::from_secs(2), "{removed:?}");
}

/// Daemon frozen (SIGSTOP) or killed: users in the map keep resolving at once until the TTL
/// (here 3 s) runs out, then they are UNAVAIL (getpwnam_r returns EAGAIN), never NOTFOUND; a
/// daemon that comes back renews the map.
#[test]
fn frozen_or_dead_daemon_map_lasts_its_ttl_then_unavailable() {
    let ns = Namespace::new();
    let mut cfg = DaemonConfig::new();
    cfg.set("cache", "nss_map_ttl", "3");
    let mut d = daemon_with_users(&ns, &mut cfg);
    assert_eq!(lookup(&ns, "alice")["found"], true);

    d.sigstop();
    let frozen_at = Instant::now();
    let a = lookup(&ns, "alice");
    assert_eq!(a["found"], true, "{a}");
    assert!(a["ms"].as_f64().unwrap() < 50.0, "{a}");
    let t = Instant::now();
    while lookup(&ns, "alice")["found"] == true {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the map never expired"
        );
        oidcd_tests::sleep(Duration::from_millis(100));
    }
    let lasted = frozen_at.elapsed();
    let a = lookup(&ns, "alice");
    assert_eq!(
        a["ret"],
        libc::EAGAIN,
        "expired: UNAVAIL, not NOTFOUND: {a}"
    );
    assert!(a["ms"].as_f64().unwrap() < 400.0, "{a}");
    assert_eq!(lookup(&ns, "nosuchuser")["ret"], libc::EAGAIN);
    measure(&format!(
        "nss_map frozen_daemon map_lasted={:.1}s (ttl 3 s) then_unavail_lookup={}ms",
        lasted.as_secs_f64(),
        a["ms"]
    ));
    assert!(lasted >= Duration::from_secs(1), "{lasted:?}");

    d.sigcont();
    let t = Instant::now();
    while lookup(&ns, "alice")["found"] != true {
        assert!(t.elapsed() < Duration::from_secs(10), "never renewed");
        oidcd_tests::sleep(Duration::from_millis(100));
    }
    d.kill9();
    let a = lookup(&ns, "alice");
    assert_eq!(a["found"], true, "daemon killed, map still valid: {a}");
    let t = Instant::now();
    while lookup(&ns, "alice")["found"] == true {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the map never expired"
        );
        oidcd_tests::sleep(Duration::from_millis(100));
    }
    assert_eq!(lookup(&ns, "alice")["ret"], libc::EAGAIN);
}

/// A map for `alice` with GECOS "FROM-MAP" (so an answer shows whether the map was used).
fn planted_map() -> Vec<u8> {
    let mut e = MapEncoder::new(5);
    e.add_user(&UserEntry {
        name: "alice",
        uid: 1_900_000_000,
        gid: 1_900_000_000,
        gecos: "FROM-MAP",
        dir: "/home/alice",
        shell: "/bin/sh",
        gids: &[],
    })
    .unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    e.to_vec(1, until).unwrap()
}

/// A map that is truncated, not a map, of another version, with offsets out of range, not
/// root's, writable by others or a symbolic link is ignored: every lookup gets the daemon's
/// answer, quickly, and nothing crashes. The intact map is used (the control).
#[test]
fn damaged_or_untrusted_map_falls_back_to_the_daemon() {
    let ns = Namespace::new();
    let mut cfg = DaemonConfig::new();
    cfg.set("cache", "nss_map", "false");
    let _d = daemon_with_users_no_map(&ns, &mut cfg);
    let host = ns.host_path(MAP);
    let good = planted_map();
    let plant = |bytes: &[u8], mode: u32, owner: u32| {
        let _ = std::fs::remove_file(&host);
        std::fs::write(&host, bytes).unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&host, Some(owner), Some(owner)).unwrap();
    };

    plant(&good, 0o644, 0);
    let a = lookup(&ns, "alice");
    assert_eq!(
        a["gecos"], "FROM-MAP",
        "control: the intact map is used: {a}"
    );

    let mut cases: Vec<(&str, Vec<u8>, u32, u32)> = vec![
        ("truncated", good[..good.len() - 9].to_vec(), 0o644, 0),
        ("header only", good[..100].to_vec(), 0o644, 0),
        ("empty", Vec::new(), 0o644, 0),
        ("foreign owner", good.clone(), 0o644, 1000),
        ("writable by others", good.clone(), 0o666, 0),
        ("writable by group", good.clone(), 0o664, 0),
    ];
    let mut bad = good.clone();
    bad[16] = b'X';
    cases.push(("bad magic", bad, 0o644, 0));
    let mut bad = good.clone();
    bad[24] = 9;
    cases.push(("other version", bad, 0o644, 0));
    let mut bad = good.clone();
    bad[88..92].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("records outside the file", bad, 0o644, 0));
    let mut bad = good.clone();
    bad[56..60].copy_from_slice(&(good.len() as u32 - 8).to_le_bytes());
    cases.push(("table outside the file", bad, 0o644, 0));
    let mut bad = good.clone();
    let (_, _, v) = MapView::from_file(&good).unwrap();
    let rec = oidc_proto::nss_map::section_ranges(v.layout())[4].start;
    bad[rec + 12..rec + 14].copy_from_slice(&u16::MAX.to_le_bytes());
    cases.push(("record longer than the file", bad, 0o644, 0));

    for (what, bytes, mode, owner) in &cases {
        plant(bytes, *mode, *owner);
        let a = lookup(&ns, "alice");
        assert_eq!(a["found"], true, "{what}: {a}");
        assert_eq!(a["gecos"], "Alice Test", "{what}: the map was trusted: {a}");
        assert!(a["ms"].as_f64().unwrap() < 100.0, "{what}: {a}");
        let r = ns.getent("passwd", &["nosuchuser"]);
        assert_eq!(r.code(), 2, "{what}: {r}");
        if *what != "record longer than the file" {
            // The whole map is refused, so the daemon answers for groups too (a map with one
            // bad record is otherwise trusted: only that record's lookup asks the daemon).
            let r = ns.getent("group", &["developers"]);
            assert_eq!(r.code(), 0, "{what}: {r}");
        }
    }

    // A symbolic link to a good, root-owned map elsewhere is not followed.
    let elsewhere = ns.dir().write("good.map", &good, 0o644);
    let _ = std::fs::remove_file(&host);
    std::os::unix::fs::symlink(&elsewhere, &host).unwrap();
    let a = lookup(&ns, "alice");
    assert_eq!(a["gecos"], "Alice Test", "symlink followed: {a}");
    // A directory writable by others makes even a good file untrusted.
    let _ = std::fs::remove_file(&host);
    plant(&good, 0o644, 0);
    let dir = ns.host_path("/run/oidcd");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let a = lookup(&ns, "alice");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(a["gecos"], "Alice Test", "untrusted directory: {a}");
}

/// As [`daemon_with_users`], for a daemon that writes no map.
fn daemon_with_users_no_map<'a>(ns: &'a Namespace, cfg: &mut DaemonConfig) -> Daemon<'a> {
    let d = Daemon::start(ns, cfg);
    d.import(&json!([alice_claims(), bob_claims()])).expect_ok();
    // The daemon marks and removes a map at start; give its map thread that moment.
    assert!(d.wait_log("listening", Duration::from_secs(5)));
    oidcd_tests::sleep(Duration::from_millis(100));
    d
}

/// Turning the map off (SIGHUP) removes it and lookups keep working through the socket.
#[test]
fn turning_the_map_off_removes_it() {
    let ns = Namespace::new();
    let mut cfg = DaemonConfig::new();
    let d = daemon_with_users(&ns, &mut cfg);
    cfg.set("cache", "nss_map", "false");
    d.rewrite_config(&d.config_text_for(&cfg));
    d.sighup();
    assert!(oidcd_tests::wait_until(Duration::from_secs(5), || !ns
        .host_path(MAP)
        .exists()));
    assert_eq!(lookup(&ns, "alice")["found"], true);
    ns.getent("passwd", &["nosuchuser"]).expect_code(2);
}

/// Runs `sudo -n ARGS…` as `user` with the groups initgroups gives them (as a login would).
fn sudo_as(ns: &Namespace, user: &str, args: &[&str]) -> oidcd_tests::Run {
    let pw = ns.getent("passwd", &[user]);
    pw.expect_ok();
    let f: Vec<&str> = pw.stdout.trim_end().split(':').collect();
    let mut cmd = ns.command("setpriv");
    cmd.arg(format!("--reuid={}", f[2]))
        .arg(format!("--regid={}", f[3]))
        .arg("--init-groups")
        .args(["--", "sudo", "-n"])
        .args(args);
    oidcd_tests::util::run(&mut cmd)
}

/// Through the real stack (setpriv --init-groups, sudo with a `%sudo` rule): an admin loses
/// sudo as soon as an import drops the admin group, and a removed user stops resolving,
/// each within a second, with the map on.
#[test]
fn lost_admin_group_and_removal_take_effect_at_once() {
    let ns = Namespace::builder().sudoers_dir().start();
    let file = ns.sudoers_dir().join("oidcd-test");
    std::fs::write(&file, "%sudo ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
    let d = daemon_with_users(&ns, &mut DaemonConfig::new());
    let root = sudo_as(&ns, "alice", &["id", "-u"]);
    root.expect_ok();
    assert_eq!(root.stdout.trim(), "0");

    let mut demoted = alice_claims();
    demoted["groups"] = json!(["developers"]);
    d.import(&json!([demoted])).expect_ok();
    let t = Instant::now();
    let refused = sudo_as(&ns, "alice", &["true"]);
    assert_ne!(
        refused.code(),
        0,
        "sudo still allowed after the admin group was lost"
    );
    assert!(!ns.run("id", &["-Gn", "alice"]).stdout.contains("sudo"));

    d.oidcctl(&["user", "remove", "alice"]).expect_ok();
    ns.getent("passwd", &["alice"]).expect_code(2);
    measure(&format!(
        "nss_map admin_loss_and_removal checked_in={:.0}ms",
        ms(t.elapsed())
    ));
}

/// The `nssmap` findings of `oidcctl doctor --json` as (severity, message).
fn doctor_map(d: &Daemon) -> Vec<(String, String)> {
    let run = d.oidcctl(&["doctor", "--json"]);
    let js: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    js["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "nssmap")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("severity"), s("message"))
        })
        .collect()
}

/// `oidcctl status` reports the map (path, state, generation, counts, size, when written,
/// valid_until, or EXPIRED, MISSING, off) and `oidcctl doctor` judges it: ok when current,
/// an error when it is writable by others, missing while on, or present while
/// `cache.nss_map = false`.
#[test]
fn status_and_doctor_report_the_map() {
    let ns = Namespace::new();
    let mut cfg = DaemonConfig::new();
    let d = daemon_with_users(&ns, &mut cfg);
    let host = ns.host_path(MAP);
    let text = d.oidcctl(&["status"]);
    text.expect_ok();
    for want in [
        "NSS map:        on, /run/oidcd/nss.map\n",
        "map file:       ",
        "owner uid 0, mode 0644\n",
        "map state:      current, generation ",
        "map entries:    2 users, 4 groups (2 of them users' private groups)\n",
        "map valid:      until ",
    ] {
        assert!(text.stdout.contains(want), "missing {want:?}:\n{text}");
    }
    assert!(!text.stdout.contains("map written:    not"), "{text}");
    let js = d.oidcctl_json(&["status"]);
    let m = &js["nss_map"];
    let f = &m["file"];
    assert_eq!(
        (&m["enabled"], &m["held"]),
        (&json!(true), &json!(true)),
        "{js}"
    );
    assert_eq!(
        (&f["users"], &f["groups"], &f["state"]),
        (&json!(2), &json!(4), &json!("current"))
    );
    assert_eq!((&f["uid"], &f["mode"]), (&json!(0), &json!(0o644)));
    assert_eq!(f["size"], std::fs::metadata(&host).unwrap().len());
    let until = f["valid_until"].as_i64().unwrap();
    assert!(until > m["now"].as_i64().unwrap() + 250, "{js}");
    assert!(m["written_at"].as_i64().is_some(), "{js}");

    let ok = doctor_map(&d);
    assert!(
        ok.len() == 1 && ok[0].0 == "ok" && ok[0].1.contains("current, generation"),
        "{ok:?}"
    );

    // valid_until moved into the past (as a stopped heartbeat leaves it): status says so,
    // until the next heartbeat (every 5 s) moves it on again.
    let expired = (0..3).find_map(|_| {
        let file = std::fs::OpenOptions::new().write(true).open(&host).unwrap();
        std::os::unix::fs::FileExt::write_at(&file, &1_000_000_000i64.to_le_bytes(), 0).unwrap();
        let t = d.oidcctl(&["status"]);
        t.stdout.contains("map valid:      EXPIRED ").then_some(t)
    });
    assert!(expired.is_some(), "never shown expired");

    // Writable by others: the module ignores it, doctor says so.
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o666)).unwrap();
    let text = d.oidcctl(&["status"]);
    assert!(text.stdout.contains("mode 0666 (UNTRUSTED"), "{text}");
    let found = doctor_map(&d);
    assert!(
        found
            .iter()
            .any(|(s, m)| s == "error" && m.contains("has mode 0666")),
        "{found:?}"
    );
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o644)).unwrap();
    let saved = std::fs::read(&host).unwrap();

    // Removed under a running daemon: missing.
    std::fs::remove_file(&host).unwrap();
    let text = d.oidcctl(&["status"]);
    assert!(
        text.stdout
            .contains("NSS map:        on, /run/oidcd/nss.map: MISSING"),
        "{text}"
    );
    let found = doctor_map(&d);
    assert!(
        found
            .iter()
            .any(|(s, m)| s == "error" && m.contains("is missing")),
        "{found:?}"
    );

    // Off, and a current map put back: the module would still answer from it.
    cfg.set("cache", "nss_map", "false");
    d.rewrite_config(&d.config_text_for(&cfg));
    d.sighup();
    // Off, and the map thread has let its map go (it forgets when it wrote one).
    assert!(oidcd_tests::wait_until(Duration::from_secs(5), || {
        let m = &d.oidcctl_json(&["status"])["nss_map"];
        m["enabled"] == false && m["written_at"].is_null()
    }));
    let text = d.oidcctl(&["status"]);
    assert!(
        text.stdout
            .contains("NSS map:        off, /run/oidcd/nss.map: absent"),
        "{text}"
    );
    let mut planted = saved;
    planted[..8].copy_from_slice(&i64::MAX.to_le_bytes());
    planted[8] = 0;
    std::fs::write(&host, &planted).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o644)).unwrap();
    let found = doctor_map(&d);
    assert!(
        found
            .iter()
            .any(|(s, m)| s == "error" && m.contains("while cache.nss_map = false")),
        "{found:?}"
    );
}
