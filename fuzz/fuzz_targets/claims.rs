//! Claims from the provider (or `oidcctl import`) → a Unix identity, under three configs: the
//! defaults, a Keycloak-like one (nested `realm_access.roles`, suffix stripping, access gates)
//! and one with UIDs from a claim and prefixed, case-kept group names. Every accepted mapping
//! gives a name the modules would ask for and fields that fit a passwd or group line, and the
//! access gates alone (`check_access`) agree with the gates inside `map_claims`.
#![no_main]

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use oidc_proto::types::{is_field_safe, is_plausible_name};
use oidcd::config::Config;
use oidcd::identity::local::LocalAccounts;
use oidcd::identity::mapping::{MAX_GROUPS, Refusal, check_access, map_claims};
use oidcd::identity::names::{is_reserved_name, is_valid_name};
use serde_json::Value;

const KEYCLOAK: &str = r#"
[provider]
issuer = "https://sso.example.com/realms/example"
client_id = "oidcd"

[claims]
username_claim = "email"
groups_claim = "realm_access.roles"

[access]
allowed_groups = ["linux-users", "linux-admins"]
allowed_email_domains = ["example.com"]
admin_groups = ["linux-admins"]
admin_local_groups = ["sudo"]

[mapping]
strip_suffixes = ["@example.com", "@Corp.Example.Org"]
group_strip_prefixes = ["/"]
groups_include = ["linux-*", "/team-*"]
groups_exclude = ["*-old"]
allow_names = ["admin"]
"#;

const CLAIM_UIDS: &str = r#"
[claims]
uid_claim = "ext.uid_number"
groups_claim = "https://example.com/claims/groups"

[access]
require_email_verified = true

[mapping]
lowercase_names = false
uid_source = "claim"
group_prefix = "oidc-"
strip_suffixes = ["@example.com"]
"#;

static CONFIGS: LazyLock<Vec<Config>> = LazyLock::new(|| {
    ["", KEYCLOAK, CLAIM_UIDS]
        .iter()
        .map(|t| {
            Config::from_toml(Path::new("/etc/oidcd/oidcd.toml"), t, 0o600)
                .expect("fuzz config is valid")
        })
        .collect()
});

static LOCAL: LazyLock<LocalAccounts> = LazyLock::new(|| {
    let mut l = LocalAccounts::from_paths(Path::new("/nonexistent"), Path::new("/nonexistent"));
    l.users.insert("bob".into(), 1000);
    l.groups.insert("developers".into(), 1001);
    l
});

fn check_name(n: &str) {
    assert!(is_plausible_name(n) && is_field_safe(n), "{n:?}");
    assert!(!n.contains(','), "{n:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for cfg in CONFIGS.iter() {
        let mapped = map_claims(&claims, cfg, &LOCAL);
        let access = check_access(&claims, cfg);
        let Ok(u) = mapped else {
            // A refusal that is not about a bad claim, a name or a collision is a gate, and
            // check_access must refuse too.
            if let Err(
                r @ (Refusal::NotInAllowedGroups
                | Refusal::EmailDomain { .. }
                | Refusal::EmailNotVerified),
            ) = &mapped
            {
                assert!(
                    access.is_err(),
                    "map_claims refused ({r}) but check_access did not"
                );
            }
            let _ = mapped.map_err(|r| r.to_string());
            continue;
        };
        assert!(
            access.is_ok(),
            "map_claims accepted what check_access refuses: {access:?}"
        );

        check_name(&u.name);
        assert!(
            is_valid_name(&u.name, !cfg.mapping.lowercase_names),
            "{:?}",
            u.name
        );
        assert!(u.name != "root" && !LOCAL.has_name(&u.name));
        assert!(!is_reserved_name(&u.name) || cfg.mapping.allow_names.contains(&u.name));
        assert!(is_field_safe(&u.gecos) && !u.gecos.chars().any(char::is_control));
        assert!(!u.sub.is_empty());
        assert!(
            u.email
                .as_deref()
                .is_none_or(|e| !e.chars().any(char::is_control))
        );
        assert_eq!(u.uid_from_claim.is_some(), cfg.claims.uid.is_some());
        let home = cfg.mapping.home.replace("{username}", &u.name);
        assert!(is_field_safe(&home), "{home:?}");

        assert!(u.groups.len() <= MAX_GROUPS);
        let mut seen = HashSet::new();
        for g in &u.groups {
            check_name(&g.name);
            assert!(
                is_valid_name(&g.name, !cfg.mapping.lowercase_names),
                "{:?}",
                g.name
            );
            assert!(
                g.name != u.name,
                "a group takes the user-private group's name"
            );
            assert!(g.name != "root" && !LOCAL.has_name(&g.name), "{:?}", g.name);
            assert!(
                !is_reserved_name(&g.name) || cfg.mapping.allow_names.contains(&g.name),
                "{:?}",
                g.name
            );
            assert!(seen.insert(g.name.as_str()), "{:?} twice", g.name);
            assert!(!g.provider_name.is_empty());
        }
        assert!(!u.is_admin || !cfg.access.admin_groups.is_empty());
    }
});
