//! NSS lookups through glibc, libnss_oidc (its map and its socket) against the references, in
//! one run, side by side: a do-nothing module built here (glibc's own dispatch: the floor),
//! libnss_files with the same users and groups, SSSD's memory cache (Debian's sssd with the
//! proxy provider over the same files, warmed) and nscd when installed.
//!
//!     cargo build --release --workspace
//!     sudo cargo bench -p oidcd-tests --bench nss                              # full run
//!     sudo cargo bench -p oidcd-tests --bench nss -- --install-sssd            # + SSSD
//!     cargo test -p oidcd-tests --bench nss -- --tiny                          # CI: seconds
//!
//! SSSD is measured when Debian's sssd-proxy, sssd-common and libnss-sss are installed. The
//! bench installs them only when told (`--install-sssd`): the packages add `sss` to the host's
//! nsswitch.conf and PAM stacks, which it then puts back as they were.
//!
//! Needs root (a private mount namespace holds everything: /run, /etc/passwd, nsswitch.conf,
//! the modules). For each store (10 users and 100 groups, 1,000 and 100, 100,000 and 10,000;
//! each user in 10 groups, one user in 1,000) it imports the users with `oidcctl import`
//! (timed), reads the map's build time from the daemon's log and its RSS, then times each
//! lookup in a worker process: every call timed alone (p50, p99, p99.9) over a fixed set of
//! keys, at 1 and 2 threads (ops/s counts both threads). Compare ratios within one run: the
//! machine is shared.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oidc_proto::nss_map::MapView;
use oidcd_tests::{Daemon, DaemonConfig, Namespace, util};
use serde_json::{Value, json};

/// The lookups timed.
const OPS: [&str; 7] = [
    "getpwnam",
    "getpwuid",
    "getgrnam",
    "getgrgid",
    "getgrouplist",
    "getpwnam_miss",
    "getpwuid_miss",
];

/// Keys looked up per operation (cycled); SSSD's proxy provider needs each one warmed, which
/// costs about a second per initgroups at 100,000 users.
const KEYS: usize = 64;

struct Size {
    users: usize,
    groups: usize,
}

struct Plan {
    sizes: Vec<Size>,
    seconds: f64,
    sss: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        worker(&args[2..]);
        return;
    }
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("nss bench: needs root (mount namespaces); run it with sudo");
        std::process::exit(1);
    }
    let tiny = args.iter().any(|a| a == "--tiny");
    let plan = if tiny {
        Plan {
            sizes: vec![Size {
                users: 10,
                groups: 100,
            }],
            seconds: 0.03,
            sss: false,
        }
    } else {
        Plan {
            sizes: vec![
                Size {
                    users: 10,
                    groups: 100,
                },
                Size {
                    users: 1000,
                    groups: 100,
                },
                Size {
                    users: 100_000,
                    groups: 10_000,
                },
            ],
            seconds: 0.3,
            sss: true,
        }
    };
    let profile = oidcd_tests::paths::profile_dir();
    println!("binaries: {}", profile.display());
    if !profile.ends_with("release") {
        println!("note: not a release build (figures are for checking the bench runs, not speed)");
    }
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model()
    );
    let floor = build_nothing_module();
    let install_sssd = args.iter().any(|a| a == "--install-sssd");
    let sss = if plan.sss {
        sssd_available(install_sssd)
    } else {
        Err("tiny run".into())
    };
    if let Err(why) = &sss {
        println!("SSSD: skipped ({why})");
    }
    if Path::new("/usr/sbin/nscd").exists() {
        println!("nscd: installed but not measured by this bench yet");
    } else {
        println!("nscd: not installed (skipped)");
    }
    let mut all = Vec::new();
    for size in &plan.sizes {
        all.push(run_size(size, &plan, &floor, sss.is_ok()));
    }
    println!();
    println!("Summary, getpwnam p50 by store size (flatness of the map):");
    for (size, r) in plan.sizes.iter().zip(&all) {
        let get = |src: &str| {
            r.get(&("getpwnam".into(), src.into(), 1))
                .map_or(f64::NAN, |s| s.p50)
        };
        println!(
            "  {:>7} users: floor {:.2} µs, oidc map {:.2} µs, files {:.2} µs",
            size.users,
            get("nothing"),
            get("oidc-map"),
            get("files")
        );
    }
}

type Results = BTreeMap<(String, String, usize), Stats>;

#[derive(Debug, Clone, Copy)]
struct Stats {
    p50: f64,
    p99: f64,
    p999: f64,
    ops: f64,
}

fn run_size(size: &Size, plan: &Plan, floor: &Path, with_sss: bool) -> Results {
    println!();
    println!(
        "=== {} users, {} groups (each user in {} groups; one user in {})",
        size.users,
        size.groups,
        10.min(size.groups),
        1000.min(size.groups)
    );
    let ns = Namespace::builder().nss_module("nothing", floor).start();
    let mut cfg = DaemonConfig::with_issuer("https://idp.example.test");
    cfg.admin_groups(&["g00000"])
        .set("cache", "nss_map_ttl", "3600");
    let mut d = Daemon::start(&ns, &cfg);

    // Import, timed. At 100,000 identities about 37 pairs have the same fleet UID candidate,
    // and an import with a refused entry applies nothing: as an administrator would, pin the
    // whole directory first (oidcctl idmap build, then import of that map).
    let claims = claims(size);
    let file = ns.dir().write("claims.json", claims.to_string(), 0o600);
    let t = Instant::now();
    let built = d.oidcctl(&["idmap", "build", &file.to_string_lossy()]);
    built.expect_ok();
    let map_file = ns.dir().write("idmap.json", &built.stdout, 0o600);
    d.oidcctl(&["import", &map_file.to_string_lossy()])
        .expect_ok();
    let pin = t.elapsed();
    // The pins made the users (without their groups), and a map of them follows: wait for it,
    // then for the one after the import.
    let total = size.users + 1;
    let line = format!("written: {total} users");
    assert!(
        util::wait_until(Duration::from_secs(60), || d.logs().contains(&line)),
        "no map of the {total} pinned users:\n{}",
        tail(&d.logs())
    );
    let pinned_logs = d.logs().len();
    let t = Instant::now();
    let r = d.oidcctl(&["import", &file.to_string_lossy()]);
    let import = t.elapsed();
    r.expect_ok();
    let after_import = || d.logs().get(pinned_logs..).unwrap_or("").to_string();
    assert!(
        util::wait_until(Duration::from_secs(60), || after_import().contains(&line)),
        "no map of {total} users:\n{}",
        tail(&d.logs())
    );
    let build_ms = after_import()
        .lines()
        .rfind(|l| l.contains(&line))
        .and_then(|l| l.rsplit(" in ").next())
        .and_then(|s| s.trim_end_matches(" ms").parse::<u64>().ok())
        .unwrap_or(0);
    let map_len = std::fs::metadata(ns.host_path("/run/oidcd/nss.map")).map_or(0, |m| m.len());
    let (rss, hwm) = rss(d.pid());
    println!(
        "pins: {:.2} s (oidcctl idmap build of the claim sets, then oidcctl import of that map)",
        pin.as_secs_f64()
    );
    println!(
        "import: {:.2} s (oidcctl import of {total} claim sets in one file); map build: {build_ms} ms, \
         {:.1} MB; daemon RSS {:.1} MB (peak {:.1} MB)",
        import.as_secs_f64(),
        map_len as f64 / 1e6,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "BENCH nss_import users={total} pins_s={:.2} import_s={:.2} map_build_ms={build_ms} map_mb={:.1} rss_mb={:.1} peak_rss_mb={:.1}",
        pin.as_secs_f64(),
        import.as_secs_f64(),
        map_len as f64 / 1e6,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    let keys = keys(&ns, size);
    // libnss_files with the same users and groups (and SSSD's proxy reads these files).
    bind_files(&ns, &d);

    let mut sources: Vec<&str> = vec!["nothing", "files"];
    let mut sssd = None;
    if with_sss {
        match start_sssd(&ns, &keys) {
            Ok(child) => {
                sssd = Some(child);
                sources.push("sss");
            }
            Err(e) => println!("SSSD: skipped ({e})"),
        }
    }
    sources.push("oidc-map");
    let mut results = Results::new();
    for src in &sources {
        ns.set_nss_sources(match *src {
            "oidc-map" => "oidc",
            s => s,
        });
        measure_source(&ns, src, &keys, plan.seconds, &mut results);
    }
    drop(sssd);
    // The socket: the same daemon without its map.
    d.stop();
    cfg.set("cache", "nss_map", "false");
    d.rewrite_config(&d.config_text_for(&cfg));
    d.launch();
    assert!(util::wait_until(Duration::from_secs(10), || !ns
        .host_path("/run/oidcd/nss.map")
        .exists()));
    ns.set_nss_sources("oidc");
    measure_source(
        &ns,
        "oidc-socket",
        &keys,
        plan.seconds.min(0.2),
        &mut results,
    );
    print_table(&results, &sources_with_socket(&sources));
    results
}

fn sources_with_socket(s: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = s.iter().map(|s| s.to_string()).collect();
    v.push("oidc-socket".into());
    v
}

fn measure_source(ns: &Namespace, src: &str, keys: &Path, seconds: f64, out: &mut Results) {
    let exe = std::env::current_exe().unwrap();
    for op in OPS {
        for threads in [1usize, 2] {
            let mut cmd = ns.command(&exe);
            cmd.args(["--worker", op, &threads.to_string(), &seconds.to_string()])
                .arg(keys);
            let r = util::spawn(&mut cmd, None).wait(Duration::from_secs(600));
            r.expect_ok();
            let v: Value =
                serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r}"));
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            out.insert(
                (op.into(), src.into(), threads),
                Stats {
                    p50: f("p50"),
                    p99: f("p99"),
                    p999: f("p999"),
                    ops: f("ops"),
                },
            );
        }
    }
}

fn print_table(r: &Results, sources: &[String]) {
    println!();
    println!(
        "{:<14} {:<12} {:>9} {:>9} {:>9} {:>11} {:>11} {:>10} {:>9} {:>9}",
        "lookup",
        "source",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "ops/s 1t",
        "ops/s 2t",
        "floor+ µs",
        "÷files",
        "÷sss"
    );
    for op in OPS {
        let base = |src: &str| r.get(&(op.into(), src.into(), 1)).map(|s| s.p50);
        let floor = base("nothing").unwrap_or(f64::NAN);
        for src in sources {
            let Some(s1) = r.get(&(op.into(), src.clone(), 1)) else {
                continue;
            };
            let s2 = r
                .get(&(op.into(), src.clone(), 2))
                .map_or(f64::NAN, |s| s.ops);
            let ratio =
                |other: &str| base(other).map_or("-".into(), |b| format!("{:.2}", s1.p50 / b));
            println!(
                "{:<14} {:<12} {:>9.3} {:>9.3} {:>9.3} {:>11.0} {:>11.0} {:>10.3} {:>9} {:>9}",
                op,
                src,
                s1.p50,
                s1.p99,
                s1.p999,
                s1.ops,
                s2,
                s1.p50 - floor,
                ratio("files"),
                ratio("sss")
            );
            println!(
                "BENCH nss op={op} source={src} p50_us={:.3} p99_us={:.3} p999_us={:.3} ops1={:.0} ops2={s2:.0} above_floor_us={:.3}",
                s1.p50,
                s1.p99,
                s1.p999,
                s1.ops,
                s1.p50 - floor
            );
        }
    }
}

/// Claim sets: user i is `u{i:06}` in 10 groups spread over `g00000…`; `bigjoiner` is in 1,000.
fn claims(size: &Size) -> Value {
    let g = |j: usize| format!("g{j:05}");
    let mut v: Vec<Value> = (0..size.users)
        .map(|i| {
            let groups: Vec<String> = (0..10.min(size.groups))
                .map(|k| g((i * 7919 + k * 104_729) % size.groups))
                .collect();
            json!({"sub": format!("s{i}"), "preferred_username": format!("u{i:06}"),
                   "name": format!("User {i}"), "groups": groups})
        })
        .collect();
    let many: Vec<String> = (0..1000.min(size.groups)).map(g).collect();
    v.push(json!({"sub": "big", "preferred_username": "bigjoiner", "groups": many}));
    json!(v)
}

/// The keys file (one `op key` per line) for the workers: names and IDs of users and
/// groups present, spread over the store, and names and IDs that are not.
fn keys(ns: &Namespace, size: &Size) -> PathBuf {
    let bytes = std::fs::read(ns.host_path("/run/oidcd/nss.map")).unwrap();
    let (_, _, map) = MapView::from_file(&bytes).unwrap();
    let mut out = String::new();
    let n = KEYS.min(size.users);
    for k in 0..n {
        let name = format!("u{:06}", k * size.users / n);
        let u = map.user_by_name(name.as_bytes()).unwrap().unwrap();
        out.push_str(&format!("getpwnam {name}\ngetpwuid {}\n", u.uid));
        out.push_str(&format!(
            "getpwnam_miss nx{k}\ngetpwuid_miss {}\n",
            3_000_000_000u32 + k as u32
        ));
    }
    let g = KEYS.min(size.groups);
    for k in 0..g {
        let name = format!("g{:05}", k * size.groups / g);
        let grp = map.group_by_name(name.as_bytes()).unwrap().unwrap();
        out.push_str(&format!("getgrnam {name}\ngetgrgid {}\n", grp.gid));
    }
    let big = map.user_by_name(b"bigjoiner").unwrap().unwrap();
    out.push_str(&format!("getgrouplist bigjoiner {}\n", big.gid));
    ns.dir().write("keys", out, 0o644)
}

/// Writes /etc/passwd and /etc/group with the host's entries plus the store's users, groups
/// and memberships (read from the database with Python's sqlite3), bound inside.
fn bind_files(ns: &Namespace, d: &Daemon<'_>) {
    let script = r#"
import sqlite3, sys
db, passwd, group = sys.argv[1:4]
c = sqlite3.connect("file:" + db + "?mode=ro", uri=True)
with open(passwd, "w") as f:
    f.write(open("/etc/passwd").read())
    for n, u, g, gecos, home, shell in c.execute("SELECT name, uid, gid, gecos, home, shell FROM users"):
        f.write(f"{n}:x:{u}:{g}:{gecos}:{home}:{shell}\n")
members = {}
for gid, name in c.execute("SELECT g.id, u.name FROM memberships m JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id"):
    members.setdefault(gid, []).append(name)
with open(group, "w") as f:
    f.write(open("/etc/group").read())
    for i, n, g in c.execute("SELECT id, name, gid FROM groups"):
        f.write(f"{n}:x:{g}:{','.join(sorted(members.get(i, [])))}\n")
    for n, g in c.execute("SELECT name, gid FROM users"):
        f.write(f"{n}:x:{g}:\n")
"#;
    let dir = ns.dir();
    let (p, g) = (dir.join("bench-passwd"), dir.join("bench-group"));
    let r = util::run(
        std::process::Command::new(util::python3())
            .arg("-c")
            .arg(script)
            .arg(d.db_path())
            .arg(&p)
            .arg(&g),
    );
    r.expect_ok();
    ns.sh(&format!(
        "mount --bind {} /etc/passwd && mount --bind {} /etc/group",
        p.display(),
        g.display()
    ))
    .expect_ok();
}

/// The floor: a module whose every function answers NOTFOUND, built with gcc.
fn build_nothing_module() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oidcd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("nothing.c");
    let mut c = String::from(
        "#include <nss.h>\n#include <pwd.h>\n#include <grp.h>\n#include <errno.h>\n#include <sys/types.h>\n",
    );
    for (f, args) in [
        (
            "getpwnam_r",
            "const char *k, struct passwd *r, char *b, size_t l, int *e",
        ),
        (
            "getpwuid_r",
            "uid_t k, struct passwd *r, char *b, size_t l, int *e",
        ),
        (
            "getgrnam_r",
            "const char *k, struct group *r, char *b, size_t l, int *e",
        ),
        (
            "getgrgid_r",
            "gid_t k, struct group *r, char *b, size_t l, int *e",
        ),
        (
            "initgroups_dyn",
            "const char *u, gid_t s, long *st, long *sz, gid_t **g, long lim, int *e",
        ),
    ] {
        c.push_str(&format!(
            "enum nss_status _nss_nothing_{f}({args}) {{ *e = ENOENT; return NSS_STATUS_NOTFOUND; }}\n"
        ));
    }
    std::fs::write(&src, c).unwrap();
    let so = dir.join("libnss_nothing.so.2");
    util::run(
        std::process::Command::new("gcc")
            .args([
                "-O2",
                "-fPIC",
                "-shared",
                "-Wl,-soname,libnss_nothing.so.2",
                "-o",
            ])
            .arg(&so)
            .arg(&src),
    )
    .expect_ok();
    so
}

/// Whether SSSD's proxy provider and NSS client are installed; with `install`, installs them
/// with apt if not (restoring the host's nsswitch.conf and PAM stacks, which the packages
/// change).
fn sssd_available(install: bool) -> Result<(), String> {
    let have = || {
        Path::new("/usr/sbin/sssd").exists()
            && Path::new("/usr/lib/x86_64-linux-gnu/libnss_sss.so.2").exists()
            && Path::new("/usr/lib/x86_64-linux-gnu/sssd/libsss_proxy.so").exists()
    };
    if have() {
        return Ok(());
    }
    if !install {
        return Err(
            "sssd-proxy, sssd-common and libnss-sss are not installed; --install-sssd installs \
             them"
                .into(),
        );
    }
    println!("SSSD: installing sssd-proxy and libnss-sss with apt");
    let saved = std::fs::read("/etc/nsswitch.conf").map_err(|e| e.to_string())?;
    let r = util::run(std::process::Command::new("sh").arg("-c").arg(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         sssd-proxy sssd-common libnss-sss >/dev/null 2>&1; \
         pam-auth-update --remove sss >/dev/null 2>&1; \
         (systemctl disable --now sssd || service sssd stop) >/dev/null 2>&1; true",
    ));
    std::fs::write("/etc/nsswitch.conf", saved).map_err(|e| e.to_string())?;
    if have() {
        Ok(())
    } else {
        Err(format!("could not install it: {r}"))
    }
}

/// Starts sssd (proxy provider over the bound files) in the namespace and warms its memory
/// cache with every key.
fn start_sssd(ns: &Namespace, keys: &Path) -> Result<util::Spawned, String> {
    let conf = ns.dir().write(
        "sssd.conf",
        "[sssd]\nservices = nss\ndomains = bench\n\n[nss]\nmemcache_timeout = 3600\n\
         memcache_size_passwd = 64\nmemcache_size_group = 64\nmemcache_size_initgroups = 64\n\n\
         [domain/bench]\nid_provider = proxy\nproxy_lib_name = files\nauth_provider = none\n\
         enumerate = false\nentry_cache_timeout = 5400\n",
        0o600,
    );
    ns.sh(
        "mount -t tmpfs -o mode=0755 tmpfs /var/lib/sss && mkdir -p /var/lib/sss/db \
         /var/lib/sss/mc /var/lib/sss/pipes/private /var/lib/sss/pubconf && chmod 700 \
         /var/lib/sss/db /var/lib/sss/pipes/private && mkdir -p /var/log/sssd && \
         mount -t tmpfs tmpfs /var/log/sssd",
    )
    .expect_ok();
    let mut cmd = ns.command("/usr/sbin/sssd");
    cmd.args(["-i", "-c"]).arg(&conf).arg("--logger=files");
    let child = util::spawn(&mut cmd, None);
    if !ns.wait_for_path("/var/lib/sss/pipes/nss", Duration::from_secs(30)) {
        return Err(format!(
            "sssd did not start: {}",
            child.wait(Duration::from_secs(1))
        ));
    }
    ns.set_nss_sources("sss");
    let t = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let mut warm = ns.command(&exe);
    warm.args(["--worker", "warm", "1", "0"]).arg(keys);
    let r = util::spawn(&mut warm, None).wait(Duration::from_secs(1800));
    if r.code() != 0 {
        return Err(format!("warming failed: {r}"));
    }
    println!("SSSD: cache warmed in {:.1} s", t.elapsed().as_secs_f64());
    Ok(child)
}

fn rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".into(), |s| s.trim().to_string())
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// ----- The worker: runs inside the namespace -----

/// `--worker OP THREADS SECONDS KEYS`: warms up, then times each call of OP over its keys
/// for SECONDS on THREADS threads; prints {"p50","p99","p999" (µs), "ops" (calls/s)}.
/// OP `warm` looks every key of every op up once.
fn worker(args: &[String]) {
    let (op, threads, seconds, keys) = (
        args[0].as_str(),
        args[1].parse::<usize>().unwrap(),
        args[2].parse::<f64>().unwrap(),
        std::fs::read_to_string(&args[3]).unwrap(),
    );
    let all: Vec<(String, Vec<String>)> = keys
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.map(String::from).collect()))
        })
        .collect();
    if op == "warm" {
        for (o, k) in &all {
            call(o, k);
        }
        return;
    }
    let mine: Vec<Vec<String>> = all
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, k)| k.clone())
        .collect();
    assert!(!mine.is_empty(), "no keys for {op}");
    for k in &mine {
        call(op, k); // warm: loads the modules, maps the map
    }
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let samples: Vec<Vec<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let mine = &mine;
                s.spawn(move || {
                    let mut v = Vec::with_capacity(1 << 20);
                    let mut i = t;
                    loop {
                        let k = &mine[i % mine.len()];
                        let t0 = Instant::now();
                        call(op, k);
                        v.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                        i += 1;
                        if (v.len() >= 200 && Instant::now() >= until) || v.len() >= 2_000_000 {
                            break;
                        }
                    }
                    v
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = samples.concat();
    all.sort_unstable();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "{}",
        json!({"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "ops": all.len() as f64 / wall,
               "n": all.len()})
    );
}

/// One glibc call.
fn call(op: &str, key: &[String]) -> bool {
    let mut buf = [0 as libc::c_char; 16384];
    let c = CString::new(key[0].as_str()).unwrap();
    // SAFETY: each call gets valid pointers to a result struct, a buffer of the stated size and
    // a result pointer, as the glibc functions require; nothing is kept past the call.
    unsafe {
        match op {
            "getpwnam" | "getpwnam_miss" | "getpwuid" | "getpwuid_miss" => {
                let mut pw: libc::passwd = std::mem::zeroed();
                let mut res: *mut libc::passwd = std::ptr::null_mut();
                if op.starts_with("getpwnam") {
                    libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
                } else {
                    let uid = key[0].parse().unwrap();
                    libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
                }
                !res.is_null()
            }
            "getgrnam" | "getgrgid" => {
                let mut gr: libc::group = std::mem::zeroed();
                let mut res: *mut libc::group = std::ptr::null_mut();
                if op == "getgrnam" {
                    libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut res);
                } else {
                    let gid = key[0].parse().unwrap();
                    libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut res);
                }
                !res.is_null()
            }
            "getgrouplist" => {
                let gid: libc::gid_t = key[1].parse().unwrap();
                let mut groups = [0 as libc::gid_t; 2048];
                let mut n: libc::c_int = groups.len() as libc::c_int;
                libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) >= 0
            }
            other => panic!("unknown lookup {other}"),
        }
    }
}
