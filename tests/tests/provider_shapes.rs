//! User story: each provider family's claims, as that provider really sends them, log in through
//! the real PAM module. The test provider is made to produce each shape (`OP_ACCOUNTS` and the
//! other shape knobs of `tests/op/provider.mjs`): Keycloak's roles and groups combined, GitLab's
//! group paths and numeric subjects, Entra ID's tenant issuer, object-id groups, UPN names,
//! PS256 and nine-character codes, Entra's groups overage, Google's `verification_url` and
//! `hd`, and the issuer paths, `groups` scope and EdDSA keys of Okta, Dex and Authentik.

use oidcd_tests::provider::PUBLIC_CLIENT_ID;
use oidcd_tests::scenario::{groups_of, login_as as login, pam_namespace, reload};
use oidcd_tests::{Daemon, DaemonConfig, Provider};
use serde_json::{Value, json};

/// The provider without a consent page, with `accounts` (`OP_ACCOUNTS`) and `env`. Its groups
/// come without a `groups` scope, as Keycloak's mappers, GitLab's and Entra's do.
fn provider(accounts: &Value, env: &[(&str, &str)]) -> Provider {
    let accounts = accounts.to_string();
    let mut all = vec![
        ("OP_AUTO_CONSENT", "1"),
        ("OP_GROUPS_SCOPE", "openid"),
        ("OP_ACCOUNTS", accounts.as_str()),
    ];
    all.extend_from_slice(env);
    Provider::start(&all)
}

/// The test defaults for `op`, asking for the standard scopes only (GitLab and Entra ID refuse
/// a `groups` scope; Keycloak has none by default).
fn standard_scopes(op: &Provider) -> DaemonConfig {
    let mut cfg = DaemonConfig::for_provider(op);
    cfg.set("provider", "scopes", r#"["openid", "profile", "email"]"#);
    cfg
}

fn strings(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// Keycloak: groups (full paths), realm roles and this client's roles read together with
/// `groups_claim = [...]`; paths become names with `group_path = "dash"`; another client's roles
/// and Keycloak's default roles stay out.
#[test]
fn keycloak_groups_realm_roles_and_client_roles_combine() {
    let op = provider(
        &json!({"alice": {"login": "alice", "password": "alice-pw", "claims": {
            "preferred_username": "alice", "email": "alice@example.test", "email_verified": true,
            "groups": ["/staff/devs"],
            "realm_access": {"roles": ["linux-ops", "offline_access", "default-roles-staff"]},
            "resource_access": {"pam-oidc": {"roles": ["db-admins"]}, "grafana": {"roles": ["viewer"]}}
        }}}),
        &[],
    );
    let ns = pam_namespace();
    let mut cfg = standard_scopes(&op);
    cfg.set(
        "claims",
        "groups_claim",
        r#"["groups", "realm_access.roles", "resource_access.pam-oidc.roles"]"#,
    );
    cfg.set("mapping", "group_path", "\"dash\"");
    cfg.set(
        "mapping",
        "groups_exclude",
        r#"["offline_access", "default-roles-*"]"#,
    );
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(
        groups_of(&ns, "alice"),
        strings(&["alice", "staff-devs", "linux-ops", "db-admins"])
    );
}

/// GitLab: a numeric subject, the name from `nickname`, group paths only in userinfo mapped by
/// `group_path = "last"` (two paths ending alike are both refused, with a log line naming
/// them) and by an explicit `group_names` entry; then `groups_direct`, sent as a string where
/// a list is expected, with `group_path = "dash"`.
#[test]
fn gitlab_paths_numeric_subject_nickname_and_a_string_for_a_list() {
    let op = provider(
        &json!({"4242": {"login": "alice", "password": "alice-pw", "userinfo_only": ["groups", "groups_direct"], "claims": {
            "preferred_username": "Alice Smith", "nickname": "alice", "email": "alice@example.test",
            "email_verified": true,
            "groups": ["acme", "acme/infra", "other/infra", "acme/infra/linux"],
            "groups_direct": "acme/infra/linux"
        }}}),
        &[],
    );
    let ns = pam_namespace();
    let mut cfg = standard_scopes(&op);
    cfg.set("claims", "username_claim", "\"nickname\"");
    cfg.set("mapping", "group_path", "\"last\"");
    cfg.set(
        "mapping",
        "group_names",
        r#"{ "acme/infra/linux" = "linux-admins" }"#,
    );
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(
        groups_of(&ns, "alice"),
        strings(&["alice", "acme", "linux-admins"])
    );
    let logs = d.logs();
    assert!(
        logs.contains(r#"group "acme/infra" refused: it and ["other/infra"] all map to "infra""#),
        "{logs}"
    );
    let show = d.oidcctl_json(&["user", "show", "alice"]);
    assert_eq!(show["sub"], "4242", "{show}");

    let mut direct = cfg.clone();
    direct.set("claims", "groups_claim", "\"groups_direct\"");
    direct.set("mapping", "group_path", "\"dash\"");
    direct.unset("mapping", "group_names");
    reload(&d, &direct, 1);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(
        groups_of(&ns, "alice"),
        strings(&["alice", "acme-infra-linux"])
    );
}

/// Entra ID: an issuer with a tenant path, a public client, PS256 ID tokens, a UPN as
/// preferred_username (mapped with `strip_suffixes`), groups as object ids named by
/// `group_names` (an unnamed one is left out with a log line saying how to name it) and
/// matched in `admin_groups` without regard to case (`ignore_group_case`), no
/// `email_verified`, and a nine-character user code without a dash, shown exactly as sent.
#[test]
fn entra_tenant_issuer_object_id_groups_upn_ps256_and_nine_character_codes() {
    let admins = "8b7d1a2e-4c3f-4e5a-9b6c-1d2e3f4a5b6c";
    let unnamed = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    let op = provider(
        &json!({"3f6c1b8e-aaaa-bbbb-cccc-0123456789ab": {"login": "alice", "password": "alice-pw", "claims": {
            "preferred_username": "Alice@Contoso.test", "name": "Alice Test",
            "email": "alice@contoso.test", "groups": [admins, unnamed],
            "oid": "3f6c1b8e-aaaa-bbbb-cccc-0123456789ab", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"
        }}}),
        &[
            (
                "OP_ISSUER_PATH",
                "/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            ),
            ("OP_ID_TOKEN_ALG", "PS256"),
            ("OP_USER_CODE_MASK", "*********"),
        ],
    );
    let ns = pam_namespace();
    let mut cfg = standard_scopes(&op);
    cfg.set("provider", "client_id", &format!("\"{PUBLIC_CLIENT_ID}\""));
    cfg.unset("provider", "client_secret");
    cfg.set("claims", "source", "\"id_token\"");
    cfg.set("mapping", "strip_suffixes", r#"["@contoso.test"]"#);
    cfg.set(
        "mapping",
        "group_names",
        &format!(r#"{{ "{admins}" = "linux-admins" }}"#),
    );
    cfg.set("login", "allowed_algs", r#"["PS256"]"#);
    // Access lists name groups by object id; Entra's are case-insensitive.
    cfg.set(
        "access",
        "admin_groups",
        &format!(r#"["{}"]"#, admins.to_ascii_uppercase()),
    );
    cfg.set("access", "ignore_group_case", "true");
    let d = Daemon::start(&ns, &cfg);
    let l = login(&ns, &op, "alice", "alice");
    l.expect_success();
    let code = &l.prompt.as_ref().unwrap().code;
    assert_eq!(code.len(), 9, "{l}");
    assert!(code.chars().all(|c| c.is_ascii_uppercase()), "{l}");
    assert!(
        d.logs().contains(&format!("code {code} at ")),
        "{}",
        d.logs()
    );
    assert_eq!(
        groups_of(&ns, "alice"),
        strings(&["alice", "linux-admins", "sudo"])
    );
    assert!(
        d.logs()
            .contains(&format!("group {unnamed:?} skipped") as &str),
        "{}",
        d.logs()
    );
    assert!(
        d.logs().contains("give it a name in mapping.group_names"),
        "{}",
        d.logs()
    );
}

/// Entra ID's groups overage (`_claim_names`/`_claim_sources` instead of `groups`): without
/// `allowed_groups` the login succeeds with no provider groups and a log line saying the groups
/// are unknown; with `allowed_groups` it is refused, saying why.
#[test]
fn entra_groups_overage_is_unknown_and_refused_under_allowed_groups() {
    let op = provider(
        &json!({"alice": {"login": "alice", "password": "alice-pw", "claims": {
            "preferred_username": "alice", "email": "alice@contoso.test",
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/tenant/users/alice/getMemberObjects"}}
        }}}),
        &[],
    );
    let ns = pam_namespace();
    let mut cfg = standard_scopes(&op);
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups_of(&ns, "alice"), ["alice"]);
    assert!(
        d.logs().contains("groups unknown") && d.logs().contains("groups overage"),
        "{}",
        d.logs()
    );

    cfg.set("access", "allowed_groups", r#"["linux-users"]"#);
    reload(&d, &cfg, 1);
    login(&ns, &op, "alice", "alice").expect_failure("groups are unknown");
}

/// Google: `verification_url` instead of `verification_uri`, an interval of its own, no groups
/// claim, and the Workspace domain in `hd`, checked with `claims.domain_claim`: alice (hd
/// example.test) logs in; bob, whose address is in the domain but whose account has no `hd`
/// (a personal account), is refused.
#[test]
fn google_verification_url_no_groups_and_hosted_domain() {
    let op = provider(
        &json!({
            "110169484474386276334": {"login": "alice", "password": "alice-pw", "claims": {
                "email": "alice@example.test", "email_verified": true, "hd": "example.test",
                "name": "Alice Test"}},
            "109876543210987654321": {"login": "bob", "password": "bob-pw", "claims": {
                "email": "bob@example.test", "email_verified": true, "name": "Bob Test"}}
        }),
        &[
            ("OP_VERIFICATION_URL", "1"),
            ("OP_DEVICE_ANSWER", r#"{"interval": 1}"#),
        ],
    );
    let ns = pam_namespace();
    let mut cfg = standard_scopes(&op);
    cfg.set("claims", "username_claim", "\"email\"");
    cfg.set("claims", "domain_claim", "\"hd\"");
    cfg.set("mapping", "strip_suffixes", r#"["@example.test"]"#);
    cfg.set("access", "allowed_email_domains", r#"["example.test"]"#);
    let d = Daemon::start(&ns, &cfg);
    let l = login(&ns, &op, "alice", "alice");
    l.expect_success();
    assert_eq!(l.prompt.as_ref().unwrap().url, op.verification_uri(), "{l}");
    assert_eq!(groups_of(&ns, "alice"), ["alice"]);
    login(&ns, &op, "bob", "bob").expect_failure("no \"hd\" claim");
    assert!(d.logs().contains("no \"hd\" claim"), "{}", d.logs());
}

/// Okta, Dex and Authentik: an issuer with a path (Authentik's ends in a slash), EdDSA ID
/// tokens (Dex), and groups released only with the `groups` scope: without it alice has no
/// provider groups, with it she has hers.
#[test]
fn okta_dex_authentik_issuer_path_eddsa_and_the_groups_scope() {
    let op = Provider::start(&[
        ("OP_AUTO_CONSENT", "1"),
        ("OP_ISSUER_PATH", "/application/o/linux/"),
        ("OP_ID_TOKEN_ALG", "EdDSA"),
    ]);
    assert!(op.issuer().ends_with("/application/o/linux/"));
    let ns = pam_namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("provider", "scopes", r#"["openid", "profile", "email"]"#);
    cfg.set("login", "allowed_algs", r#"["EdDSA"]"#);
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups_of(&ns, "alice"), ["alice"]);

    cfg.set(
        "provider",
        "scopes",
        r#"["openid", "profile", "email", "groups"]"#,
    );
    reload(&d, &cfg, 1);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(
        groups_of(&ns, "alice"),
        strings(&["alice", "developers", "oidc-admins"])
    );
}
