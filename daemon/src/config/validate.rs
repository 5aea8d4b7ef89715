//! Checking a parsed file ([`super::raw`]) into a [`Config`], one section at a time; every
//! problem is reported with its place in the file. The providers are checked in [`provider`].

mod provider;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use std::collections::BTreeMap;

use super::error::Reporter;
use super::raw::{RawAccess, RawClaims, RawConfig, RawMapping, S};
use super::*;
use crate::identity::names;

pub(super) struct Validator<'r, 'a> {
    pub(super) r: &'r mut Reporter<'a>,
    pub(super) mode: u32,
}

pub(super) fn span<T>(v: &S<T>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

impl Validator<'_, '_> {
    /// Checks every section of `raw` into `c`.
    pub(super) fn check(&mut self, raw: &RawConfig, c: &mut Config) {
        self.daemon(raw, c);
        if let Some(cl) = &raw.claims {
            self.claims(cl, &mut c.claims);
        }
        if let Some(a) = &raw.access {
            self.access(a, &mut c.access);
        }
        if let Some(m) = &raw.mapping {
            self.mapping(m, &mut c.mapping);
            self.uid_source_needs_claim(&c.mapping, &c.claims, span(&m.uid_source));
            self.gid_source_needs_claim(&c.mapping, &c.claims, span(&m.gid_source));
        }
        self.cache(raw, c);
        self.login(raw, c);
        self.refresh(raw, c);
        self.offline(raw, c);
        self.providers(raw, c);
    }

    fn daemon(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(d) = &raw.daemon else { return };
        if let Some(l) = &d.log_level {
            match l.get_ref().parse::<log::LevelFilter>() {
                Ok(level) => c.log_level = level,
                Err(_) => self.r.at(
                    Some(l.span()),
                    "daemon.log_level",
                    format!(
                        "unknown level {:?}: expected one of error, warn, info, debug, trace \
                         (default info)",
                        l.get_ref()
                    ),
                ),
            }
        }
    }

    fn uid_source_needs_claim(
        &mut self,
        m: &MappingConfig,
        cl: &ClaimsConfig,
        at: Option<Range<usize>>,
    ) {
        if m.uid_source == UidSource::Claim && cl.uid.is_none() {
            self.r
                .at(at, "mapping.uid_source", "\"claim\" needs claims.uid_claim");
        }
    }

    fn gid_source_needs_claim(
        &mut self,
        m: &MappingConfig,
        cl: &ClaimsConfig,
        at: Option<Range<usize>>,
    ) {
        if m.gid_source == GidSource::Claim && cl.gid.is_none() {
            self.r
                .at(at, "mapping.gid_source", "\"claim\" needs claims.gid_claim");
        }
    }

    fn claims(&mut self, cl: &RawClaims, out: &mut ClaimsConfig) {
        if let Some(s) = &cl.source {
            out.source = match s.get_ref().as_str() {
                "id_token" => ClaimSource::IdToken,
                "userinfo" => ClaimSource::Userinfo,
                "both" => ClaimSource::Both,
                other => {
                    self.r.at(
                        Some(s.span()),
                        "claims.source",
                        format!("unknown source {other:?}: expected id_token, userinfo or both (default both)"),
                    );
                    ClaimSource::Both
                }
            };
        }
        let mut path = |v: &S<String>, key: &str, slot: &mut ClaimPath| {
            if let Some(v) = v {
                if let Some(p) = self.claim_path(v.get_ref(), v.span(), key) {
                    *slot = p;
                }
            }
        };
        path(
            &cl.username_claim,
            "claims.username_claim",
            &mut out.username,
        );
        path(&cl.gecos_claim, "claims.gecos_claim", &mut out.gecos);
        path(&cl.email_claim, "claims.email_claim", &mut out.email);
        if let Some(v) = &cl.groups_claim {
            let list = v.get_ref().to_vec();
            if list.is_empty() {
                self.r.at(
                    Some(v.span()),
                    "claims.groups_claim",
                    "name at least one claim (a claim that is absent gives no groups)",
                );
            }
            out.groups = list
                .iter()
                .filter_map(|g| self.claim_path(g, v.span(), "claims.groups_claim"))
                .collect();
        }
        if let Some(v) = &cl.uid_claim {
            out.uid = self.claim_path(v.get_ref(), v.span(), "claims.uid_claim");
        }
        if let Some(v) = &cl.gid_claim {
            out.gid = self.claim_path(v.get_ref(), v.span(), "claims.gid_claim");
        }
        if let Some(v) = &cl.domain_claim {
            out.domain = self.claim_path(v.get_ref(), v.span(), "claims.domain_claim");
        }
        if let Some(v) = &cl.ssh_keys_claim {
            out.ssh_keys = self.claim_path(v.get_ref(), v.span(), "claims.ssh_keys_claim");
        }
    }

    fn claim_path(&mut self, s: &str, at: Range<usize>, key: &str) -> Option<ClaimPath> {
        if s.is_empty() || s.split('.').any(str::is_empty) && !s.contains("://") {
            self.r
                .at(Some(at), key, format!("invalid claim path {s:?}"));
            return None;
        }
        Some(ClaimPath(s.to_string()))
    }

    fn access(&mut self, a: &RawAccess, out: &mut AccessConfig) {
        let list = |v: &S<Vec<String>>| v.as_ref().map(|v| v.get_ref().clone());
        if let Some(v) = list(&a.allowed_groups) {
            out.allowed_groups = v;
        }
        if let Some(v) = &a.allowed_email_domains {
            out.allowed_email_domains = v
                .get_ref()
                .iter()
                .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                .collect();
            if out.allowed_email_domains.iter().any(|d| d.contains('*')) {
                self.r.at(
                    Some(v.span()),
                    "access.allowed_email_domains",
                    "lists domains, not patterns: leave it empty (the default) to allow any \
                     domain, or list each domain (a subdomain is a domain of its own)",
                );
            } else if let Some(bad) = out
                .allowed_email_domains
                .iter()
                .find(|d| d.is_empty() || d.contains('@'))
            {
                self.r.at(
                    Some(v.span()),
                    "access.allowed_email_domains",
                    format!("invalid domain {bad:?}"),
                );
            }
        }
        if let Some(v) = &a.require_email_verified {
            out.require_email_verified = *v.get_ref();
        }
        if let Some(v) = list(&a.admin_groups) {
            out.admin_groups = v;
        }
        if let Some(v) = &a.admin_local_groups {
            out.admin_local_groups = v.get_ref().clone();
            if let Some(bad) = v.get_ref().iter().find(|g| !names::is_valid_name(g, false)) {
                self.r.at(
                    Some(v.span()),
                    "access.admin_local_groups",
                    format!("{bad:?} is not a valid group name"),
                );
            }
        }
        if !out.admin_groups.is_empty() && out.admin_local_groups.is_empty() {
            self.r.at(
                span(&a.admin_groups),
                "access.admin_local_groups",
                "admin_groups is set but admin_local_groups is empty: name the local group(s) \
                 admins get, e.g. [\"sudo\"] (Debian) or [\"wheel\"] (RHEL)",
            );
        }
        if let Some(v) = &a.link_by_email {
            out.link_by_email = *v.get_ref();
        }
        self.count(
            &a.max_login_age_days,
            "access.max_login_age_days",
            0,
            36_500,
            &mut out.max_login_age_days,
        );
        if let Some(v) = &a.ignore_group_case {
            out.ignore_group_case = *v.get_ref();
        }
    }

    fn mapping(&mut self, m: &RawMapping, mc: &mut MappingConfig) {
        if let Some(v) = &m.lowercase_names {
            mc.lowercase_names = *v.get_ref();
        }
        if let Some(v) = &m.strip_suffixes {
            mc.strip_suffixes = v.get_ref().clone();
            if v.get_ref().iter().any(String::is_empty) {
                self.r.at(
                    Some(v.span()),
                    "mapping.strip_suffixes",
                    "an empty suffix strips nothing: remove it",
                );
            }
        }
        if let Some(v) = &m.group_prefix {
            mc.group_prefix = v.get_ref().clone();
            if !v.get_ref().is_empty() && !names::is_valid_name(&format!("{}x", v.get_ref()), false)
            {
                self.r.at(
                    Some(v.span()),
                    "mapping.group_prefix",
                    "would make invalid group names",
                );
            }
        }
        if let Some(v) = &m.group_strip_prefixes {
            mc.group_strip_prefixes = v.get_ref().clone();
        }
        if let Some(v) = &m.groups_include {
            mc.groups_include = v.get_ref().clone();
        }
        if let Some(v) = &m.groups_exclude {
            mc.groups_exclude = v.get_ref().clone();
        }
        self.group_rules(m, mc);
        if let Some(v) = &m.uid_source {
            mc.uid_source = match v.get_ref().as_str() {
                "hash" => UidSource::Hash,
                "claim" => UidSource::Claim,
                other => {
                    self.r.at(
                        Some(v.span()),
                        "mapping.uid_source",
                        format!("unknown source {other:?}: expected hash or claim (default hash)"),
                    );
                    UidSource::Hash
                }
            };
        }
        if let Some(v) = &m.gid_source {
            mc.gid_source = match v.get_ref().as_str() {
                "hash" => GidSource::Hash,
                "claim" => GidSource::Claim,
                other => {
                    self.r.at(
                        Some(v.span()),
                        "mapping.gid_source",
                        format!("unknown source {other:?}: expected hash or claim (default hash)"),
                    );
                    GidSource::Hash
                }
            };
        }
        let uids = self.range(&m.uid_min, &m.uid_max, "uid", mc.uids);
        let gids = self.range(&m.gid_min, &m.gid_max, "gid", mc.gids);
        if let (Some(u), Some(g)) = (uids, gids) {
            mc.uids = u;
            mc.gids = g;
            if u.overlaps(&g) {
                // Allowed (IDs are probed against both), but user-private groups then compete
                // with provider groups for GIDs.
                log::debug!("uid and gid ranges overlap");
            }
        }
        if let Some(v) = &m.home {
            let h = v.get_ref();
            let stripped = h.replace("{username}", "").replace("{uid}", "");
            if !h.starts_with('/') {
                self.r
                    .at(Some(v.span()), "mapping.home", "must be an absolute path");
            } else if stripped.contains(['{', '}']) {
                self.r.at(
                    Some(v.span()),
                    "mapping.home",
                    "unknown placeholder: only {username} and {uid} are replaced",
                );
            } else if !oidc_proto::types::is_field_safe(h) {
                self.r.at(
                    Some(v.span()),
                    "mapping.home",
                    "contains ':' or a control character",
                );
            }
            mc.home = h.clone();
        }
        if let Some(v) = &m.shell {
            if !v.get_ref().starts_with('/') || !oidc_proto::types::is_field_safe(v.get_ref()) {
                self.r.at(
                    Some(v.span()),
                    "mapping.shell",
                    "must be an absolute path without ':'",
                );
            }
            mc.shell = v.get_ref().clone();
        }
        if let Some(v) = &m.allow_names {
            mc.allow_names = v.get_ref().clone();
            if let Some(bad) = v.get_ref().iter().find(|n| !names::is_valid_name(n, false)) {
                self.r.at(
                    Some(v.span()),
                    "mapping.allow_names",
                    format!("{bad:?} is not a valid name"),
                );
            }
            if v.get_ref().iter().any(|n| n == "root") {
                self.r.at(
                    Some(v.span()),
                    "mapping.allow_names",
                    "root can never be served by oidcd",
                );
            }
        }
    }

    /// `group_path`, `group_names`, `user_prefix`, `user_suffix`.
    fn group_rules(&mut self, m: &RawMapping, mc: &mut MappingConfig) {
        if let Some(v) = &m.group_path {
            mc.group_path = match v.get_ref().as_str() {
                "keep" => GroupPath::Keep,
                "dash" => GroupPath::Dash,
                "last" => GroupPath::Last,
                other => {
                    self.r.at(
                        Some(v.span()),
                        "mapping.group_path",
                        format!(
                            "unknown rule {other:?}: expected keep, dash or last (default keep)"
                        ),
                    );
                    GroupPath::Keep
                }
            };
        }
        if let Some(v) = &m.group_names {
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for (from, to) in v.get_ref() {
                if !names::is_valid_name(to, !mc.lowercase_names) {
                    self.r.at(
                        Some(v.span()),
                        "mapping.group_names",
                        format!("{from:?} = {to:?}: {to:?} is not a valid group name"),
                    );
                }
                if let Some(other) = seen.insert(to, from) {
                    self.r.at(
                        Some(v.span()),
                        "mapping.group_names",
                        format!("{other:?} and {from:?} both map to {to:?}: one name, one group"),
                    );
                }
            }
            mc.group_names = v.get_ref().clone();
        }
        if let Some(v) = &m.user_prefix {
            if !v.get_ref().is_empty() && !names::is_valid_name(&format!("{}x", v.get_ref()), true)
            {
                self.r.at(
                    Some(v.span()),
                    "mapping.user_prefix",
                    "would make invalid user names (a letter or _, then letters, digits, _ . -)",
                );
            }
            mc.user_prefix = v.get_ref().clone();
        }
        if let Some(v) = &m.user_suffix {
            if !v.get_ref().is_empty() && !names::is_valid_name(&format!("x{}", v.get_ref()), true)
            {
                self.r.at(
                    Some(v.span()),
                    "mapping.user_suffix",
                    "would make invalid user names (letters, digits, _ . -, not ending in .)",
                );
            }
            mc.user_suffix = v.get_ref().clone();
        }
    }

    fn range(
        &mut self,
        min: &S<i64>,
        max: &S<i64>,
        what: &str,
        default: IdRange,
    ) -> Option<IdRange> {
        let kmin = format!("mapping.{what}_min");
        let kmax = format!("mapping.{what}_max");
        let mut get = |v: &S<i64>, key: &str, d: u32| -> Option<u32> {
            match v {
                None => Some(d),
                Some(v) => match u32::try_from(*v.get_ref()) {
                    Ok(x) if x < u32::MAX - 1 => Some(x),
                    _ => {
                        self.r.at(
                            Some(v.span()),
                            key,
                            format!("{} is not a valid ID (0 to 4294967293)", v.get_ref()),
                        );
                        None
                    }
                },
            }
        };
        let lo = get(min, &kmin, default.min)?;
        let hi = get(max, &kmax, default.max)?;
        if lo > hi {
            self.r.at(
                span(max).or(span(min)),
                &kmax,
                format!("empty range: {what}_min {lo} is above {what}_max {hi}"),
            );
            return None;
        }
        if lo < 1000 {
            self.r.at(
                span(min),
                &kmin,
                format!("{lo} is in the system range (0-999): choose {what}_min of at least 1000, well above local accounts"),
            );
            return None;
        }
        // Reserved IDs are skipped when allocating, so only the others count: a range inside
        // systemd's 61184-65519 would hold no usable ID at all.
        if (IdRange { min: lo, max: hi }).usable_len() < 1000 {
            self.r.at(
                span(max).or(span(min)),
                &kmax,
                format!("the range {lo}-{hi} holds fewer than 1000 IDs that are not reserved (61184-65519, 65534 and 65535 are never used): hash collisions would be frequent"),
            );
            return None;
        }
        Some(IdRange { min: lo, max: hi })
    }

    fn cache(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(k) = &raw.cache else { return };
        self.seconds_i(
            &k.positive_ttl,
            "cache.positive_ttl",
            0,
            86_400,
            &mut c.cache.positive_ttl,
        );
        self.seconds_i(
            &k.negative_ttl,
            "cache.negative_ttl",
            0,
            3600,
            &mut c.cache.negative_ttl,
        );
        if let Some(v) = &k.enumerate {
            c.cache.enumerate = *v.get_ref();
        }
        if let Some(v) = &k.socket_path {
            c.cache.socket_path = self.abs_path(v, "cache.socket_path");
        }
        if let Some(v) = &k.db_path {
            c.cache.db_path = self.abs_path(v, "cache.db_path");
        }
        if let Some(v) = &k.nss_map {
            c.cache.nss_map = *v.get_ref();
        }
        self.seconds_i(
            &k.nss_map_ttl,
            "cache.nss_map_ttl",
            3,
            86_400,
            &mut c.cache.nss_map_ttl,
        );
    }

    fn login(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(l) = &raw.login else { return };
        let lc = &mut c.login;
        self.seconds_f(&l.timeout, "login.timeout", 10.0, 3600.0, &mut lc.timeout);
        self.seconds_f(
            &l.default_poll_interval,
            "login.default_poll_interval",
            0.05,
            60.0,
            &mut lc.default_poll_interval,
        );
        self.seconds_f(
            &l.clock_skew,
            "login.clock_skew",
            0.0,
            600.0,
            &mut lc.clock_skew,
        );
        if let Some(v) = &l.allowed_algs {
            if v.get_ref().is_empty() {
                self.r.at(
                    Some(v.span()),
                    "login.allowed_algs",
                    "must name at least one algorithm",
                );
            }
            for alg in v.get_ref() {
                if !SUPPORTED_ALGS.contains(&alg.as_str()) {
                    self.r.at(
                        Some(v.span()),
                        "login.allowed_algs",
                        format!(
                            "{alg:?} is not allowed: choose from {}",
                            SUPPORTED_ALGS.join(", ")
                        ),
                    );
                }
            }
            lc.allowed_algs = v.get_ref().clone();
        }
        if let Some(v) = &l.qr {
            lc.qr = *v.get_ref();
        }
        if let Some(v) = &l.ssh_first_login {
            lc.ssh_first_login = *v.get_ref();
        }
        if let Some(v) = &l.ssh_first_uid {
            lc.ssh_first_uid = match v.get_ref().as_str() {
                "fleet" => SshFirstUid::Fleet,
                "provisional" => SshFirstUid::Provisional,
                other => {
                    self.r.at(
                        Some(v.span()),
                        "login.ssh_first_uid",
                        format!(
                            "unknown value {other:?}: expected fleet or provisional (default fleet)"
                        ),
                    );
                    SshFirstUid::Fleet
                }
            };
        }
        if let Some(v) = &l.ssh_programs {
            lc.ssh_programs = v.get_ref().iter().map(PathBuf::from).collect();
            if v.get_ref().iter().any(|p| !p.starts_with('/')) {
                self.r.at(
                    Some(v.span()),
                    "login.ssh_programs",
                    "must be absolute paths",
                );
            }
        }
        self.seconds_f(
            &l.provisional_ttl,
            "login.provisional_ttl",
            10.0,
            3600.0,
            &mut lc.provisional_ttl,
        );
        self.count(
            &l.max_provisional_per_minute,
            "login.max_provisional_per_minute",
            1,
            10_000,
            &mut lc.max_provisional_per_minute,
        );
        self.count(
            &l.max_provisional_entries,
            "login.max_provisional_entries",
            1,
            100_000,
            &mut lc.max_provisional_entries,
        );
        self.count(
            &l.max_logins_in_progress,
            "login.max_logins_in_progress",
            1,
            10_000,
            &mut lc.max_logins_in_progress,
        );
        self.count(
            &l.max_logins_per_source,
            "login.max_logins_per_source",
            1,
            10_000,
            &mut lc.max_logins_per_source,
        );
        if l.max_provisional_per_minute.is_some() {
            c.notices.push(
                "login.max_provisional_per_minute is no longer used (strangers could use a \
                 budget of new entries up against a real user): remove it; \
                 login.max_provisional_entries bounds the table instead"
                    .into(),
            );
        }
    }

    fn abs_path(&mut self, v: &Spanned<String>, key: &str) -> PathBuf {
        if !v.get_ref().starts_with('/') {
            self.r.at(Some(v.span()), key, "must be an absolute path");
        }
        PathBuf::from(v.get_ref())
    }

    /// Sets `slot` to `v` seconds when `v` is in `lo..=hi`; reports it otherwise.
    pub(super) fn seconds_i(
        &mut self,
        v: &S<i64>,
        key: &str,
        lo: i64,
        hi: i64,
        slot: &mut Duration,
    ) {
        if let Some(n) = self.in_range(v, key, lo, hi, " seconds") {
            *slot = Duration::from_secs(n.unsigned_abs());
        }
    }

    /// As [`Self::seconds_i`], for fractional seconds.
    pub(super) fn seconds_f(
        &mut self,
        v: &S<f64>,
        key: &str,
        lo: f64,
        hi: f64,
        slot: &mut Duration,
    ) {
        if let Some(d) = self
            .in_range(v, key, lo, hi, " seconds")
            .and_then(|n| Duration::try_from_secs_f64(n).ok())
        {
            *slot = d;
        }
    }

    /// Sets `slot` to the count `v` when it is in `lo..=hi`; reports it otherwise.
    pub(super) fn count(&mut self, v: &S<i64>, key: &str, lo: i64, hi: i64, slot: &mut u32) {
        if let Some(n) = self
            .in_range(v, key, lo, hi, "")
            .and_then(|n| u32::try_from(n).ok())
        {
            *slot = n;
        }
    }

    fn in_range<T: PartialOrd + Copy + fmt::Display>(
        &mut self,
        v: &S<T>,
        key: &str,
        lo: T,
        hi: T,
        unit: &str,
    ) -> Option<T> {
        let v = v.as_ref()?;
        let n = *v.get_ref();
        if !(lo..=hi).contains(&n) {
            self.r.at(
                Some(v.span()),
                key,
                format!("{n} is out of range: expected {lo} to {hi}{unit}"),
            );
            return None;
        }
        Some(n)
    }
}
