//! The load test: many concurrent NSS clients (`nss_load`, glibc through the real module in
//! the namespace, as root and as several unprivileged uids) for a while, with device-flow
//! logins through pamtester against the test provider at the same time; the daemon's memory,
//! threads and descriptors sampled throughout and compared after the load with before it.
//!
//! The suite runs a small version (`tests/tests/load.rs`); the full one (1,000 clients, 30 s,
//! 100 logins) is a separate command: `tests/benches/load.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hostile::{ProcStats, proc_stats};
use crate::pam::{self, Approver, PamLogin, SERVICE};
use crate::util;
use crate::{Daemon, DaemonConfig, Namespace, Provider, paths};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// NSS client threads running as root.
    pub root_clients: usize,
    /// Unprivileged uids, each with `clients_per_uid` client threads.
    pub uids: Vec<u32>,
    /// Client threads per unprivileged uid.
    pub clients_per_uid: usize,
    /// How long the clients run.
    pub duration: Duration,
    /// Device-flow logins to complete meanwhile.
    pub logins: usize,
    /// Logins running at once (alternately alice and bob; at most 3 per name, the daemon's
    /// limit of logins in progress for one user).
    pub login_parallel: usize,
}

impl LoadSpec {
    /// Client threads in all.
    pub fn clients(&self) -> usize {
        self.root_clients + self.uids.len() * self.clients_per_uid
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Lookups done by all clients.
    pub lookups: u64,
    /// Lookups of an existing entry that found nothing (unavailable, busy, timed out).
    pub errors: u64,
    /// Of `errors`, root's.
    pub root_errors: u64,
    /// root's p99, in ms (the other figures are the worst over all client processes).
    pub root_p99_ms: f64,
    /// Lookups per second, all clients together.
    pub lookups_per_s: f64,
    /// Worst p50 / p99 / max over the client processes, in ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// See `p50_ms`.
    pub max_ms: f64,
    /// Logins that succeeded and failed.
    pub logins_ok: usize,
    /// See `logins_ok`.
    pub logins_failed: usize,
    /// How long the logins took, all together.
    pub logins_elapsed: Duration,
    /// The daemon before the load, at its peak during it, and after it.
    pub before: ProcStats,
    /// Peak values sampled during the load (RSS is the kernel's high-water mark).
    pub peak: ProcStats,
    /// After the load, once the clients are gone.
    pub after: ProcStats,
    /// The first failed login's output, if any.
    pub first_login_failure: Option<String>,
}

impl LoadReport {
    /// The figures as one `key=value` line.
    pub fn line(&self, spec: &LoadSpec) -> String {
        format!(
            "clients={} duration={}s lookups={} lookups_per_s={:.0} errors={} root_errors={} \
             p50={:.2}ms p99={:.2}ms root_p99={:.2}ms max={:.1}ms logins={}/{} logins_failed={} logins_elapsed={:.1}s \
             rss_before={}KiB rss_peak={}KiB rss_after={}KiB fds_before={} fds_peak={} \
             fds_after={} threads_before={} threads_peak={} threads_after={}",
            spec.clients(),
            spec.duration.as_secs(),
            self.lookups,
            self.lookups_per_s,
            self.errors,
            self.root_errors,
            self.p50_ms,
            self.p99_ms,
            self.root_p99_ms,
            self.max_ms,
            self.logins_ok,
            spec.logins,
            self.logins_failed,
            self.logins_elapsed.as_secs_f64(),
            self.before.rss_kib,
            self.peak.peak_rss_kib,
            self.after.rss_kib,
            self.before.fds,
            self.peak.fds,
            self.after.fds,
            self.before.threads,
            self.peak.threads,
            self.after.threads,
        )
    }
}

/// Runs the load described by `spec` against a fresh daemon and provider.
pub fn run(spec: &LoadSpec) -> LoadReport {
    let op = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.admin_groups(&["oidc-admins"]);
    // Info, not the tests' debug: one line per connection would measure the log, not the server.
    cfg.set("daemon", "log_level", "\"info\"");
    let d = Daemon::start(&ns, &cfg);
    d.import(&json!([crate::alice_claims()])).expect_ok();
    let alice = d.oidcctl_json(&["user", "show", "alice"]);
    let uid = alice["unix"]["uid"].as_u64().unwrap().to_string();
    let group = d.oidcctl_json(&["group", "show", "developers"]);
    let gid = group["unix"]["gid"].as_u64().unwrap().to_string();
    ns.getent("passwd", &["alice"]).expect_ok();
    util::sleep(Duration::from_millis(200));
    let mut report = LoadReport {
        before: proc_stats(d.pid()),
        ..LoadReport::default()
    };

    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (Arc::clone(&done), d.pid());
        std::thread::spawn(move || {
            let mut peak = ProcStats::default();
            while !done.load(Ordering::SeqCst) {
                let s = proc_stats(pid);
                peak.peak_rss_kib = peak.peak_rss_kib.max(s.peak_rss_kib);
                peak.rss_kib = peak.rss_kib.max(s.rss_kib);
                peak.fds = peak.fds.max(s.fds);
                peak.threads = peak.threads.max(s.threads);
                util::sleep(Duration::from_millis(50));
            }
            peak
        })
    };

    let secs = format!("{}", spec.duration.as_secs_f64());
    let mut clients = Vec::new();
    let who = std::iter::once((0, spec.root_clients))
        .chain(spec.uids.iter().map(|&u| (u, spec.clients_per_uid)));
    for (u, threads) in who {
        // At nice 19: the clients stand for a host's background load. Served by the NSS map,
        // each thread is a CPU loop (hundreds of thousands of lookups a second on 2 cores), and
        // at normal priority they would starve the test's own provider, which runs here and
        // not on another machine as a real one does.
        let mut cmd = ns.command("nice");
        cmd.args(["-n", "19", "setpriv"])
            .arg(format!("--reuid={u}"))
            .arg(format!("--regid={u}"))
            .args(["--clear-groups", "--"])
            .arg(paths::nss_load())
            .args([
                &threads.to_string(),
                &secs,
                "alice",
                &uid,
                "developers",
                &gid,
            ]);
        clients.push(util::spawn(&mut cmd, None));
    }

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..spec.login_parallel)
            .map(|i| {
                let (ns, op, next) = (&ns, &op, &next);
                let who = if i % 2 == 0 { "alice" } else { "bob" };
                s.spawn(move || {
                    let mut out = Vec::new();
                    while next.fetch_add(1, Ordering::SeqCst) < spec.logins {
                        let login = PamLogin::new(ns, SERVICE, who)
                            .approved_by(Approver::user(op, who))
                            .run();
                        out.push((login.succeeded(), login.to_string()));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    report.logins_elapsed = started.elapsed();
    report.logins_ok = results.iter().filter(|r| r.0).count();
    report.logins_failed = results.len() - report.logins_ok;
    report.first_login_failure = results.into_iter().find(|r| !r.0).map(|r| r.1);

    let wait = spec.duration + Duration::from_secs(60);
    for (i, c) in clients.into_iter().enumerate() {
        let r = c.wait(wait);
        r.expect_ok();
        let v: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("nss_load printed no summary ({e}):\n{r}"));
        report.lookups += v["lookups"].as_u64().unwrap();
        report.errors += v["errors"].as_u64().unwrap();
        let us = |k: &str| v[k].as_f64().unwrap() / 1000.0;
        report.p50_ms = report.p50_ms.max(us("p50_us"));
        report.p99_ms = report.p99_ms.max(us("p99_us"));
        report.max_ms = report.max_ms.max(us("max_us"));
        if i == 0 {
            report.root_errors = v["errors"].as_u64().unwrap();
            report.root_p99_ms = us("p99_us");
        }
    }
    report.lookups_per_s = report.lookups as f64 / spec.duration.as_secs_f64();
    done.store(true, Ordering::SeqCst);
    report.peak = sampler.join().unwrap();
    // The clients are gone; give the daemon a moment to see every connection close.
    // (The HTTP client keeps up to one idle connection per concurrent login to the provider.)
    let pooled = spec.login_parallel as u64;
    util::wait_until(Duration::from_secs(5), || {
        let s = proc_stats(d.pid());
        s.fds <= report.before.fds + pooled && s.threads <= report.before.threads
    });
    report.after = proc_stats(d.pid());
    report
}
