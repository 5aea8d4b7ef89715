//! NSS lookup latency through libnss_oidc.so.2 and oidcd, side by side with glibc's own
//! libnss_files in the same run, as ratios.
//!
//!     cargo build --release --workspace && sudo cargo bench -p oidcd-tests --bench nss
//!
//! Each case runs in a worker process inside a private mount namespace (the harness's): one
//! warm-up call (loads the modules), then N calls of the libc function timed together. The
//! reference column asks the same question of a local account or group through `files`; the
//! oidc column of an oidcd user or group through `files oidc` (so it includes the miss in
//! `files` that every oidcd lookup pays first).

use std::ffi::CString;
use std::time::{Duration, Instant};

use oidcd_tests::{Daemon, DaemonConfig, Namespace, NssMode};
use serde_json::json;

const N: usize = 2000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        worker(&args[2], &args[3], args[4].parse().unwrap_or(N));
        return;
    }
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("nss bench: needs root (mount namespaces); run it with sudo");
        std::process::exit(1);
    }
    let profile = oidcd_tests::paths::profile_dir();
    println!(
        "binaries: {} ({} lookups per case, median of 5 runs)",
        profile.display(),
        N
    );
    if !profile.ends_with("release") {
        println!("note: not a release build; run `cargo build --release --workspace` first");
    }
    let ns = Namespace::builder()
        .local_user("localuser:x:1500:1500:Local:/home/localuser:/bin/sh")
        .local_group("localgroup:x:1600:localuser")
        .start();
    let mut cfg = DaemonConfig::with_issuer("https://idp.example.test");
    cfg.admin_groups(&["oidc-admins"]);
    let d = Daemon::start(&ns, &cfg);
    let groups: Vec<String> = (0..20).map(|i| format!("team-{i}")).collect();
    let mut alice = oidcd_tests::alice_claims();
    alice["groups"] = json!(
        groups
            .iter()
            .chain(["oidc-admins".to_string()].iter())
            .collect::<Vec<_>>()
    );
    let r = d.import(&json!([alice]));
    assert_eq!(r.code(), 0, "{r}");
    let uid = d.oidcctl_json(&["user", "show", "alice"])["unix"]["uid"]
        .as_u64()
        .unwrap();
    let gid = d.oidcctl_json(&["group", "show", "team-3"])["unix"]["gid"]
        .as_u64()
        .unwrap();

    let cases: [(&str, &str, String, String); 6] = [
        ("getpwnam", "pwnam", "localuser".into(), "alice".into()),
        ("getpwuid", "pwuid", "1500".into(), uid.to_string()),
        ("getgrnam", "grnam", "localgroup".into(), "team-3".into()),
        ("getgrgid", "grgid", "1600".into(), gid.to_string()),
        (
            "getgrouplist (initgroups)",
            "grouplist",
            "localuser".into(),
            "alice".into(),
        ),
        (
            "getpwnam, no such user",
            "pwnam",
            "nosuchuser".into(),
            "nosuchuser2".into(),
        ),
    ];
    println!();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "lookup", "files (µs)", "oidc (µs)", "ratio"
    );
    for (label, kind, local, ours) in &cases {
        ns.set_nss(NssMode::FilesOnly);
        let files = median_run(&ns, kind, local);
        ns.set_nss(NssMode::Oidc);
        let oidc = median_run(&ns, kind, ours);
        row(label, files, oidc);
    }

    // The daemon's answer cache off: every lookup reaches SQLite.
    let mut cold = DaemonConfig::with_issuer("https://idp.example.test");
    cold.set("cache", "positive_ttl", "0")
        .set("cache", "negative_ttl", "0");
    drop(d);
    let d = Daemon::start(&ns, &cold);
    let r = d.import(&json!([oidcd_tests::alice_claims()]));
    assert_eq!(r.code(), 0, "{r}");
    ns.set_nss(NssMode::FilesOnly);
    let files = median_run(&ns, "pwnam", "localuser");
    ns.set_nss(NssMode::Oidc);
    let oidc = median_run(&ns, "pwnam", "alice");
    row("getpwnam, answer cache off", files, oidc);

    // The daemon stopped: what a lookup of an unknown name costs while oidcd is down.
    drop(d);
    ns.set_nss(NssMode::FilesOnly);
    let files = median_run(&ns, "pwnam", "nosuchuser");
    ns.set_nss(NssMode::Oidc);
    let oidc = median_run(&ns, "pwnam", "nosuchuser");
    row("getpwnam, oidcd down", files, oidc);
    println!();
    println!("ratio = oidc / files; both columns are glibc calls in one process, per lookup.");
}

fn row(label: &str, files: Duration, oidc: Duration) {
    let f = files.as_secs_f64() * 1e6;
    let o = oidc.as_secs_f64() * 1e6;
    println!("{label:<28} {f:>14.2} {o:>14.2} {:>7.1}x", o / f);
    println!(
        "BENCH nss {} files_us={f:.2} oidc_us={o:.2} ratio={:.1}",
        label.replace([' ', ','], "_"),
        o / f
    );
}

/// Median over 5 worker processes of the mean time per lookup.
fn median_run(ns: &Namespace, kind: &str, key: &str) -> Duration {
    let exe = std::env::current_exe().unwrap();
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let r = ns.run(&exe, &["--worker", kind, key, &N.to_string()]);
            assert_eq!(r.code(), 0, "{r}");
            Duration::from_nanos(r.stdout.trim().parse().unwrap())
        })
        .collect();
    runs.sort();
    runs[2]
}

/// Inside the namespace: time `n` lookups, print nanoseconds per lookup.
fn worker(kind: &str, key: &str, n: usize) {
    let once = || lookup(kind, key);
    once();
    let t = Instant::now();
    for _ in 0..n {
        once();
    }
    println!("{}", t.elapsed().as_nanos() / n as u128);
}

fn lookup(kind: &str, key: &str) -> bool {
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    let c = CString::new(key).unwrap();
    // SAFETY: each call gets valid pointers to a result struct, a buffer of the stated size and
    // a result pointer, as the glibc functions require; nothing is kept past the call.
    unsafe {
        match kind {
            "pwnam" | "pwuid" => {
                let mut pw: libc::passwd = std::mem::zeroed();
                let mut res: *mut libc::passwd = std::ptr::null_mut();
                if kind == "pwnam" {
                    libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
                } else {
                    libc::getpwuid_r(
                        key.parse().unwrap(),
                        &mut pw,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut res,
                    );
                }
                !res.is_null()
            }
            "grnam" | "grgid" => {
                let mut gr: libc::group = std::mem::zeroed();
                let mut res: *mut libc::group = std::ptr::null_mut();
                if kind == "grnam" {
                    libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut res);
                } else {
                    libc::getgrgid_r(
                        key.parse().unwrap(),
                        &mut gr,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut res,
                    );
                }
                !res.is_null()
            }
            "grouplist" => {
                let mut groups = [0 as libc::gid_t; 256];
                let mut n: libc::c_int = groups.len() as libc::c_int;
                libc::getgrouplist(c.as_ptr(), 65534, groups.as_mut_ptr(), &mut n) >= 0
            }
            other => panic!("unknown lookup {other}"),
        }
    }
}
