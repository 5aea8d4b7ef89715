//! The test OpenID Provider the login tests use: it starts on a free loopback port and runs
//! an RFC 8628 device flow over plain HTTP, approved by the scripted browser walk.

use std::process::Command;

use oidcd_tests::provider::{CLIENT_ID, CLIENT_SECRET};
use oidcd_tests::util::run;
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider, Run};
use serde_json::Value;

/// `curl` with the client's credentials; returns the parsed JSON body.
fn post(op: &Provider, path: &str, form: &[&str]) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-u"])
        .arg(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    for f in form {
        cmd.args(["--data-urlencode", f]);
    }
    cmd.arg(format!("{}{path}", op.issuer()));
    json_of(&run(&mut cmd))
}

fn json_of(r: &Run) -> Value {
    r.expect_ok();
    r.json()
}

fn token(op: &Provider, device_code: &str) -> Value {
    post(
        op,
        "/token",
        &[
            "grant_type=urn:ietf:params:oauth:grant-type:device_code",
            &format!("device_code={device_code}"),
        ],
    )
}

/// Discovery, device authorization, a pending poll, a refused sign-in (wrong password) that
/// leaves the code pending, the scripted approval of a new code, then tokens whose userinfo
/// carries alice's groups.
#[test]
fn provider_runs_device_flow_with_scripted_approval() {
    let op = Provider::start_default();
    let disco = json_of(&run(Command::new("curl").args([
        "-sS",
        "--max-time",
        "10",
        &format!("{}/.well-known/openid-configuration", op.issuer()),
    ])));
    assert_eq!(disco["issuer"], op.issuer());
    assert_eq!(
        disco["device_authorization_endpoint"],
        format!("{}/device/auth", op.issuer())
    );

    let auth = post(
        &op,
        "/device/auth",
        &["scope=openid profile email groups offline_access"],
    );
    let code = auth["user_code"]
        .as_str()
        .unwrap_or_else(|| panic!("{auth}"));
    let device_code = auth["device_code"].as_str().unwrap();
    assert_eq!(auth["verification_uri"], op.verification_uri());
    assert_eq!(token(&op, device_code)["error"], "authorization_pending");

    let wrong = op.approve(code, "alice", "alice-pw", &["--wrong-password"]);
    wrong.expect_code(1);
    assert_eq!(token(&op, device_code)["error"], "authorization_pending");

    // The code is now tied to the failed browser session: a fresh flow for the approval.
    let auth = post(
        &op,
        "/device/auth",
        &["scope=openid profile email groups offline_access"],
    );
    let (code, device_code) = (
        auth["user_code"].as_str().unwrap(),
        auth["device_code"].as_str().unwrap(),
    );
    op.approve(code, "alice", "alice-pw", &[]).expect_ok();
    let tok = token(&op, device_code);
    assert!(tok["id_token"].is_string(), "{tok}");
    assert!(tok["refresh_token"].is_string(), "{tok}");
    let at = tok["access_token"].as_str().unwrap();
    let me = json_of(&run(Command::new("curl").args([
        "-sS",
        "--max-time",
        "10",
        "-H",
        &format!("Authorization: Bearer {at}"),
        &format!("{}/me", op.issuer()),
    ])));
    assert_eq!(me["sub"], "alice", "{me}");
    assert_eq!(
        me["groups"],
        serde_json::json!(["oidc-admins", "developers"])
    );
}

/// Denying at the consent page ends the flow with `access_denied`.
#[test]
fn provider_reports_denial() {
    let op = Provider::start_default();
    let auth = post(&op, "/device/auth", &["scope=openid profile groups"]);
    let code = auth["user_code"].as_str().unwrap();
    op.approve(code, "bob", "bob-pw", &["--deny"])
        .expect_code(1);
    let tok = token(&op, auth["device_code"].as_str().unwrap());
    assert_eq!(tok["error"], "access_denied", "{tok}");
}

/// The daemon config the login tests use ([`DaemonConfig::for_provider`]) is valid, and a
/// daemon started with it reports the provider and client.
#[test]
fn daemon_accepts_the_login_test_config() {
    let op = Provider::start_default();
    let cfg = DaemonConfig::for_provider(&op);
    let ns = Namespace::new();
    let d = Daemon::start(&ns, &cfg);
    d.oidcctl(&["config", "check"]).expect_ok();
    let st = d.oidcctl_json(&["status"]);
    assert_eq!(st["issuer"], op.issuer(), "{st}");
    assert_eq!(st["client_id"], CLIENT_ID, "{st}");
    assert!(
        !d.logs().contains(CLIENT_SECRET),
        "the secret reached the log"
    );
}
