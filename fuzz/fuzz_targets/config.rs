//! `/etc/oidcd/oidcd.toml`: any text is either refused with errors that print, or accepted as
//! a config that holds every promise of `config/validate.rs`.
#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidc_proto::types::is_field_safe;
use oidcd::config::{ClaimPath, ClientAuth, Config, IdRange, SUPPORTED_ALGS, UidSource};
use oidcd::identity::names::is_valid_name;

/// IDs in `r` that the allocator may hand out.
fn usable_ids(r: IdRange) -> u64 {
    // Reserved: 0-999, 61184-65519, 65534, 65535, 0xFFFFFFFE and above.
    let reserved: [(u32, u32); 4] = [
        (0, 999),
        (61184, 65519),
        (65534, 65535),
        (0xFFFF_FFFE, u32::MAX),
    ];
    let overlap: u64 = reserved
        .iter()
        .map(|&(lo, hi)| {
            let (a, b) = (lo.max(r.min), hi.min(r.max));
            if a <= b { u64::from(b - a) + 1 } else { 0 }
        })
        .sum();
    r.len() - overlap
}

fn check_range(r: IdRange, what: &str) {
    assert!(!r.is_empty() && r.min <= r.max, "{what} {r:?}");
    assert!(r.min >= 1000, "{what} {r:?} reaches into the system range");
    assert!(
        r.max < u32::MAX - 1,
        "{what} {r:?} reaches the (uid_t)-1 sentinels"
    );
    assert!(r.len() >= 1000, "{what} {r:?}");
    assert!(
        usable_ids(r) >= 1000,
        "{what} {r:?} holds only {} IDs that are not reserved",
        usable_ids(r)
    );
}

fn check_path(p: &ClaimPath) {
    assert!(!p.0.is_empty());
    assert!(
        p.0.contains("://") || !p.0.split('.').any(str::is_empty),
        "{p:?}"
    );
}

fn within(d: Duration, lo: f64, hi: f64) -> bool {
    (lo..=hi).contains(&d.as_secs_f64())
}

fn check(c: &Config) {
    for p in &c.providers {
        let issuer = p.issuer.as_str();
        assert!(!issuer.contains(['?', '#']), "{issuer:?}");
        if let Some(rest) = issuer.strip_prefix("https://") {
            assert!(!rest.is_empty() && !rest.starts_with('/'), "{issuer:?}");
        } else {
            assert!(
                issuer.starts_with("http://") && p.insecure_http_issuer,
                "{issuer:?}"
            );
            // An independent URL parser must agree that the host is a loopback one.
            let url = url::Url::parse(issuer).expect("an accepted http issuer parses");
            assert!(
                matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
                "{issuer:?} → {:?}",
                url.host_str()
            );
        }
        assert!(!p.client_id.trim().is_empty());
        assert!(p.client_auth.is_none_or(|a| a == ClientAuth::None) || p.client_secret.is_some());
        assert!(p.scopes.iter().any(|s| s == "openid"));
        assert!(
            p.scopes
                .iter()
                .all(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        );
        assert!(p.ca_file.as_ref().is_none_or(|f| f.is_absolute()));
    }

    let cl = &c.claims;
    for p in [&cl.username, &cl.gecos, &cl.email]
        .into_iter()
        .chain(&cl.groups)
        .chain(&cl.domain)
    {
        check_path(p);
    }
    if let Some(p) = &cl.uid {
        check_path(p);
    }

    let a = &c.access;
    for d in &a.allowed_email_domains {
        assert!(
            !d.is_empty() && !d.contains(['@', '*']) && *d == d.to_ascii_lowercase(),
            "{d:?}"
        );
    }
    assert!(a.admin_local_groups.iter().all(|g| is_valid_name(g, false)));
    assert!(a.admin_groups.is_empty() || !a.admin_local_groups.is_empty());

    let m = &c.mapping;
    assert!(m.strip_suffixes.iter().all(|s| !s.is_empty()));
    assert!(m.group_prefix.is_empty() || is_valid_name(&format!("{}x", m.group_prefix), false));
    assert!(m.uid_source != UidSource::Claim || cl.uid.is_some());
    check_range(m.uids, "uids");
    check_range(m.gids, "gids");
    assert!(
        m.home.starts_with('/') && is_field_safe(&m.home),
        "{:?}",
        m.home
    );
    let placeholders_out = m.home.replace("{username}", "").replace("{uid}", "");
    assert!(!placeholders_out.contains(['{', '}']), "{:?}", m.home);
    let home = m
        .home
        .replace("{username}", "alice")
        .replace("{uid}", "4294967293");
    assert!(is_field_safe(&home));
    assert!(
        m.shell.starts_with('/') && is_field_safe(&m.shell),
        "{:?}",
        m.shell
    );
    assert!(
        m.allow_names
            .iter()
            .all(|n| is_valid_name(n, false) && n != "root")
    );

    let k = &c.cache;
    assert!(k.positive_ttl <= Duration::from_secs(86_400));
    assert!(k.negative_ttl <= Duration::from_secs(3600));
    assert!(k.socket_path.is_absolute() && k.db_path.is_absolute());

    let l = &c.login;
    assert!(within(l.timeout, 10.0, 3600.0), "{:?}", l.timeout);
    assert!(
        within(l.default_poll_interval, 0.05, 60.0),
        "{:?}",
        l.default_poll_interval
    );
    assert!(within(l.clock_skew, 0.0, 600.0), "{:?}", l.clock_skew);
    assert!(
        within(l.provisional_ttl, 10.0, 3600.0),
        "{:?}",
        l.provisional_ttl
    );
    assert!(!l.allowed_algs.is_empty());
    assert!(
        l.allowed_algs
            .iter()
            .all(|a| SUPPORTED_ALGS.contains(&a.as_str()))
    );
    assert!(l.ssh_programs.iter().all(|p| p.is_absolute()));
    assert!((1..=10_000).contains(&l.max_provisional_per_minute));
    assert!((1..=10_000).contains(&l.max_logins_in_progress));
    assert!((1..=10_000).contains(&l.max_logins_per_source));
    assert!((1..=100_000).contains(&l.max_provisional_entries));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Files named by client_secret_file or ca_file are read: keep the fuzzer out of devices
    // and /proc (an endless /dev/zero is an administrator's mistake, not a parser bug).
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let path = Path::new("/etc/oidcd/oidcd.toml");
    match Config::from_toml(path, text, 0o600) {
        Ok(c) => check(&c),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without a reason");
            let lines = text.split('\n').count();
            for e in &errors.0 {
                assert_eq!(e.file, path);
                assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "{e:?}");
                assert!(e.column.is_none_or(|c| c >= 1), "{e:?}");
                assert!(!e.message.is_empty(), "{e:?}");
            }
            let _ = errors.to_string();
        }
    }
});
