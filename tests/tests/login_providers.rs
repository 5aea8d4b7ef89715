//! User story: logins work with the shapes real providers come in: RS256 or ES256 ID tokens,
//! groups only from userinfo, nested and URL-named group claims, subjects that are not Unix
//! names, keys rotated while the daemon runs, HTTPS behind a private CA, public clients,
//! `client_secret_post`, `client_id` in the body beside HTTP Basic, and the client
//! authentication chosen from discovery. Each case is a full pamtester login checked with `id`.

use std::time::Duration;

use oidcd_tests::provider::{POST_CLIENT_ID, POST_CLIENT_SECRET, PUBLIC_CLIENT_ID};
use oidcd_tests::scenario::{
    groups_of as groups, login_as as login, pam_namespace as namespace, reload,
};
use oidcd_tests::{Daemon, DaemonConfig, Provider, Tls, free_port, measure, ms};

/// The provider with `env` and no consent page.
fn provider(env: &[(&str, &str)]) -> Provider {
    let mut all = vec![("OP_AUTO_CONSENT", "1")];
    all.extend_from_slice(env);
    Provider::start(&all)
}

/// alice's groups with the provider's groups present.
fn alice_with_groups() -> Vec<String> {
    vec!["alice".into(), "developers".into(), "oidc-admins".into()]
}

/// The default provider signs with RS256: the login succeeds with alice's groups, and a daemon
/// that allows only ES256 refuses the same token (so RS256 was what was checked).
#[test]
fn rs256_id_token_logs_in() {
    let op = provider(&[]);
    let ns = namespace();
    let cfg = DaemonConfig::for_provider(&op);
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
    let mut only_es = cfg.clone();
    only_es.set("login", "allowed_algs", "[\"ES256\"]");
    reload(&d, &only_es, 1);
    login(&ns, &op, "alice", "alice").expect_failure("failed validation");
    assert!(
        d.logs().contains("ID token signed with RS256"),
        "{}",
        d.logs()
    );
}

/// `OP_ID_TOKEN_ALG=ES256`: the login succeeds with alice's groups, and a daemon that allows
/// only RS256 refuses the same token.
#[test]
fn es256_id_token_logs_in() {
    let op = provider(&[("OP_ID_TOKEN_ALG", "ES256")]);
    let ns = namespace();
    let cfg = DaemonConfig::for_provider(&op);
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
    let mut only_rs = cfg.clone();
    only_rs.set("login", "allowed_algs", "[\"RS256\"]");
    reload(&d, &only_rs, 1);
    login(&ns, &op, "alice", "alice").expect_failure("failed validation");
    assert!(
        d.logs().contains("ID token signed with ES256"),
        "{}",
        d.logs()
    );
}

/// Groups only at the userinfo endpoint (`OP_GROUPS_IN_ID_TOKEN=0`): with
/// `claims.source = "both"` alice gets them.
#[test]
fn groups_only_in_userinfo_are_read_with_source_both() {
    let op = provider(&[("OP_GROUPS_IN_ID_TOKEN", "0")]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "source", "\"both\"");
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
}

/// Groups only at the userinfo endpoint, and `claims.source = "id_token"`: the login succeeds
/// and alice has no provider groups (userinfo is not asked).
#[test]
fn groups_only_in_userinfo_are_absent_with_source_id_token() {
    let op = provider(&[("OP_GROUPS_IN_ID_TOKEN", "0")]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "source", "\"id_token\"");
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), ["alice"]);
    assert_eq!(op.requests("GET /me"), 0, "{}", op.stats());
}

/// Keycloak's nesting: groups in `realm_access.roles`, read with
/// `claims.groups_claim = "realm_access.roles"`.
#[test]
fn nested_groups_claim_is_read() {
    let op = provider(&[("OP_GROUPS_CLAIM", "realm_access.roles")]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "groups_claim", "\"realm_access.roles\"");
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
}

/// A claim named by a URL (dots in its name) is matched whole.
#[test]
fn url_named_groups_claim_is_read() {
    let claim = "https://example.test/claims/groups";
    let op = provider(&[("OP_GROUPS_CLAIM", claim)]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("claims", "groups_claim", &format!("\"{claim}\""));
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
}

/// carol has no groups and a subject that is not a Unix name (`00u1c0ffee`); her
/// preferred_username `carol@example.test` maps to `carol` with `strip_suffixes`, and
/// `oidcctl user show carol` names the subject.
#[test]
fn user_without_groups_and_non_unix_subject_maps_by_suffix() {
    let op = provider(&[]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("mapping", "strip_suffixes", "[\"@example.test\"]");
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "carol", "carol").expect_success();
    assert_eq!(groups(&ns, "carol"), ["carol"]);
    let show = d.oidcctl_json(&["user", "show", "carol"]);
    assert_eq!(show["sub"], "00u1c0ffee", "{show}");
    assert_eq!(show["unix"]["name"], "carol", "{show}");
    assert_eq!(show["groups"], serde_json::json!([]), "{show}");
}

/// The provider restarts on the same port with new signing keys and key ids
/// (`OP_KID_PREFIX=rot2`) while oidcd keeps running: the next login succeeds, the daemon logs
/// that it fetched the keys again (a key id it has not seen is always worth one fetch, however
/// recent the last one), and alice keeps her UID.
#[test]
fn rotated_keys_are_fetched_again_without_a_restart() {
    let mut op = provider(&[]);
    let port = op.port();
    let ns = namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    login(&ns, &op, "alice", "alice").expect_success();
    let uid = ns.getent("passwd", &["alice"]).stdout;
    op.kill();
    let op = Provider::start_on(
        port,
        &[("OP_AUTO_CONSENT", "1"), ("OP_KID_PREFIX", "rot2")],
        None,
    );
    let again = login(&ns, &op, "alice", "alice");
    again.expect_success();
    let logs = d.logs();
    assert!(
        logs.contains("asking the provider for its current keys"),
        "{logs}"
    );
    assert!(logs.contains("signing keys fetched again from"), "{logs}");
    assert_eq!(op.requests("GET /jwks"), 1, "{}", op.stats());
    assert_eq!(ns.getent("passwd", &["alice"]).stdout, uid);
    measure(&format!(
        "login_providers key_rotation second_login={:.0}ms",
        ms(again.pam.elapsed)
    ));
}

/// HTTPS with the test's own CA: oidcd trusts it through `provider.ca_file` and the login
/// succeeds; without `ca_file` (an unknown CA) the login fails at once with a message about the
/// certificate, nothing is written and the daemon keeps serving.
#[test]
fn tls_provider_with_private_ca() {
    let tls = Tls::new();
    let op = Provider::start_on(free_port(), &[("OP_AUTO_CONSENT", "1")], Some(&tls));
    assert!(op.issuer().starts_with("https://"));
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.unset("provider", "insecure_http_issuer");
    cfg.set(
        "provider",
        "ca_file",
        &format!("\"{}\"", tls.ca().display()),
    );
    let mut d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
    d.stop();

    // The same provider, a daemon that does not know the CA.
    let ns2 = namespace();
    let mut no_ca = cfg.clone();
    no_ca.unset("provider", "ca_file");
    let d2 = Daemon::start(&ns2, &no_ca);
    let refused = login(&ns2, &op, "alice", "alice");
    assert!(refused.prompt.is_none(), "{refused}");
    refused.expect_failure("the identity provider cannot be used");
    let out = refused.output();
    assert!(out.to_lowercase().contains("certificate"), "{refused}");
    assert!(refused.pam.elapsed < Duration::from_secs(3), "{refused}");
    assert!(
        d2.logs().to_lowercase().contains("certificate"),
        "{}",
        d2.logs()
    );
    // Nothing written, and the daemon keeps serving.
    assert_eq!(d2.users().as_array().map(Vec::len), Some(0));
    d2.oidcctl(&["status"]).expect_ok();
    assert_eq!(ns2.getent("passwd", &["alice"]).code(), 2);
}

/// A public client (`pam-oidc-public`, no secret) logs in.
#[test]
fn public_client_logs_in() {
    let op = provider(&[]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("provider", "client_id", &format!("\"{PUBLIC_CLIENT_ID}\""));
    cfg.unset("provider", "client_secret");
    let _d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
    let stats = op.stats();
    assert!(stats["basic_auth"]["POST /token"].is_null(), "{stats}");
}

/// A client registered for `client_secret_post` logs in with `client_auth = "post"`: no token
/// request carries HTTP Basic credentials, and a wrong secret in the body is refused by the
/// provider (`invalid_client`), so the secret really travels in the form body.
#[test]
fn client_secret_post_logs_in() {
    let op = provider(&[]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("provider", "client_id", &format!("\"{POST_CLIENT_ID}\""));
    cfg.set(
        "provider",
        "client_secret",
        &format!("\"{POST_CLIENT_SECRET}\""),
    );
    cfg.set("provider", "client_auth", "\"post\"");
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    assert_eq!(groups(&ns, "alice"), alice_with_groups());
    let stats = op.stats();
    assert!(
        stats["requests"]["POST /token"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(stats["basic_auth"]["POST /token"].is_null(), "{stats}");
    assert!(
        stats["basic_auth"]["POST /device/auth"].is_null(),
        "{stats}"
    );

    let mut wrong = cfg.clone();
    wrong.set("provider", "client_secret", "\"not-the-secret\"");
    reload(&d, &wrong, 1);
    let refused = login(&ns, &op, "bob", "bob");
    assert!(!refused.succeeded(), "{refused}");
    refused.expect_failure("invalid_client");
    assert!(d.logs().contains("invalid_client"), "{}", d.logs());
}

/// A provider that refuses device and token requests without `client_id` in the form body
/// (`OP_REQUIRE_BODY_CLIENT_ID=1`, the provider of issue 11): the confidential client still
/// authenticates with HTTP Basic and logs in, since `client_id` travels in the body beside it.
#[test]
fn client_id_travels_in_the_body_beside_basic_auth() {
    let op = provider(&[("OP_REQUIRE_BODY_CLIENT_ID", "1")]);
    let ns = namespace();
    let _d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    login(&ns, &op, "alice", "alice").expect_success();
    let stats = op.stats();
    assert!(
        stats["basic_auth"]["POST /device/auth"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(
        stats["basic_auth"]["POST /token"].as_u64() >= Some(1),
        "{stats}"
    );
}

/// With a secret and no `client_auth`, the method comes from discovery: a provider listing
/// only `client_secret_post` and `none` gets the secret in the body (no Basic header), and the
/// daemon logs the choice; a public client (no secret) on a provider that insists on `client_id`
/// in the body logs in as well.
#[test]
fn client_auth_is_chosen_from_discovery() {
    let op = provider(&[
        ("OP_CLIENT_AUTH_METHODS", "client_secret_post,none"),
        ("OP_REQUIRE_BODY_CLIENT_ID", "1"),
    ]);
    let ns = namespace();
    let mut cfg = DaemonConfig::for_provider(&op);
    cfg.set("provider", "client_id", &format!("\"{POST_CLIENT_ID}\""));
    cfg.set(
        "provider",
        "client_secret",
        &format!("\"{POST_CLIENT_SECRET}\""),
    );
    let d = Daemon::start(&ns, &cfg);
    login(&ns, &op, "alice", "alice").expect_success();
    let stats = op.stats();
    assert!(stats["basic_auth"]["POST /token"].is_null(), "{stats}");
    assert!(
        d.logs()
            .contains("client authentication client_secret_post (chosen from"),
        "{}",
        d.logs()
    );

    let mut public = cfg.clone();
    public.set("provider", "client_id", &format!("\"{PUBLIC_CLIENT_ID}\""));
    public.unset("provider", "client_secret");
    reload(&d, &public, 1);
    login(&ns, &op, "bob", "bob").expect_success();
    assert!(
        d.logs().contains("client authentication none (chosen from"),
        "{}",
        d.logs()
    );
}
