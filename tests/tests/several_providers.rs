//! User story: staff log in through one provider and contractors through another, on the same
//! host at the same time. Each `[[provider]]` has its own client, claims, gates and mapping; a
//! user name says which provider it belongs to (the contractors' names end in `-ext`); the
//! same subject at two issuers is two people with two UIDs; a name one provider holds is refused
//! to the other; `oidcctl status` and `doctor` report each provider; over SSH, a first login
//! reaches the right provider by the name alone.

use oidcd_tests::pam::Approver;
use oidcd_tests::provider::{CLIENT_ID, CLIENT_SECRET};
use oidcd_tests::scenario::{groups_of, login_as as login, pam_namespace};
use oidcd_tests::sshd::{Sshd, ssh_login, ssh_resume};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider};
use serde_json::json;

/// Host-wide settings and two `[[provider]]` sections: `staff` (names as they are, no gate) and
/// `contractors` (names end in `-ext`, groups get `ext-`, only its `contractors` group may log
/// in).
fn config(staff: &Provider, contractors: &Provider) -> DaemonConfig {
    let mut c = DaemonConfig::new();
    c.unset_section("provider");
    c.set("login", "default_poll_interval", "0.2");
    c.append(&format!(
        r#"
[[provider]]
id = "staff"
issuer = "{staff}"
insecure_http_issuer = true
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"

[[provider]]
id = "contractors"
issuer = "{contractors}"
insecure_http_issuer = true
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"

[provider.mapping]
user_suffix = "-ext"
group_prefix = "ext-"

[provider.access]
allowed_groups = ["contractors"]
"#,
        staff = staff.issuer(),
        contractors = contractors.issuer()
    ));
    c
}

/// Two providers side by side: `alice` logs in through staff and `alice-ext` through the
/// contractors' provider (the prompt sends each to its own provider), both with subject
/// "alice" yet two users with two UIDs and each provider's groups; the contractors' gate
/// refuses bob there while staff has none; a staff import of the name `alice-ext` is refused
/// (the contractors' provider holds it); status and doctor list both providers.
#[test]
fn two_providers_side_by_side() {
    let staff = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let contractors =
        Provider::start(&[("OP_AUTO_CONSENT", "1"), ("OP_ALICE_GROUPS", "contractors")]);
    let ns = pam_namespace();
    let d = Daemon::start(&ns, &config(&staff, &contractors));

    let a = login(&ns, &staff, "alice", "alice");
    a.expect_success();
    assert!(
        a.prompt.as_ref().unwrap().url.starts_with(&staff.issuer()),
        "{a}"
    );
    let ext = login(&ns, &contractors, "alice-ext", "alice");
    ext.expect_success();
    assert!(
        ext.prompt
            .as_ref()
            .unwrap()
            .url
            .starts_with(&contractors.issuer()),
        "{ext}"
    );
    assert_eq!(
        groups_of(&ns, "alice"),
        ["alice", "developers", "oidc-admins"]
    );
    assert_eq!(
        groups_of(&ns, "alice-ext"),
        ["alice-ext", "ext-contractors"]
    );
    let (home, away) = (
        d.oidcctl_json(&["user", "show", "alice"]),
        d.oidcctl_json(&["user", "show", "alice-ext"]),
    );
    assert_eq!(
        (&home["sub"], &away["sub"]),
        (&json!("alice"), &json!("alice"))
    );
    assert_eq!(home["issuer"], json!(staff.issuer()));
    assert_eq!(away["issuer"], json!(contractors.issuer()));
    assert_ne!(home["unix"]["uid"], away["unix"]["uid"]);

    // The contractors' own gate: bob is only in "developers" there.
    login(&ns, &contractors, "bob-ext", "bob")
        .expect_failure("not a member of any group in access.allowed_groups");
    // A staff identity that would take the contractors' name is refused.
    let clash = d.import(&json!([{
        "iss": staff.issuer(), "sub": "dave", "preferred_username": "alice-ext"
    }]));
    assert_ne!(clash.code(), 0, "{clash}");
    assert!(
        clash.stderr.contains(&format!(
            "already belongs to the user with sub \"alice\" at {}",
            contractors.issuer()
        )),
        "{clash}"
    );

    let status = d.oidcctl_json(&["status"]);
    let providers = status["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 2, "{status}");
    assert_eq!(providers[0]["id"], "staff", "{status}");
    assert_eq!(providers[0]["users"], 1, "{status}");
    assert_eq!(providers[1]["id"], "contractors", "{status}");
    assert_eq!(providers[1]["names"], "*-ext", "{status}");
    assert_eq!(providers[1]["users"], 1, "{status}");
    let text = d.oidcctl(&["status"]);
    assert!(
        text.stdout.contains("contractors: ") && text.stdout.contains("names *-ext"),
        "{text}"
    );
    let doctor = d.oidcctl(&["doctor", "--json"]).json();
    let found = |prefix: &str| {
        doctor["findings"].as_array().unwrap().iter().any(|f| {
            f["check"] == "provider"
                && f["severity"] == "ok"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix) && m.contains("discovered"))
        })
    };
    assert!(found("staff: "), "{doctor:#}");
    assert!(found("contractors: "), "{doctor:#}");
}

/// Over SSH the name alone reaches the right provider, at a first login: `ssh alice-ext@host`
/// gets sshd the contractors' provisional entry and a prompt with the contractors' provider's
/// URL; after alice approves there, her account is made (with the contractors' fleet UID, so
/// this first connection is told to connect again, with a code), and her next connection,
/// giving that code, is a session as `alice-ext` with that provider's groups.
#[test]
fn over_ssh_the_name_reaches_its_provider() {
    let staff = Provider::start(&[("OP_AUTO_CONSENT", "1")]);
    let contractors =
        Provider::start(&[("OP_AUTO_CONSENT", "1"), ("OP_ALICE_GROUPS", "contractors")]);
    let ns = Namespace::builder().pam_dir().start();
    let d = Daemon::start(&ns, &config(&staff, &contractors));
    let sshd = Sshd::start(&ns);
    let login = || {
        ssh_login(
            &sshd,
            "alice-ext",
            Some(Approver::user(&contractors, "alice")),
            Some("id -un; id -Gn"),
        )
    };
    let first = login();
    let p = first.prompt.as_ref().expect("no prompt with a code");
    assert!(p.url.starts_with(&contractors.issuer()), "{}", p.text);
    assert!(!first.authenticated(), "{first}");
    let code = first
        .resume_code()
        .unwrap_or_else(|| panic!("no code shown:\n{first}"));
    let l = ssh_resume(&sshd, "alice-ext", &code, Some("id -un; id -Gn"));
    assert!(
        l.authenticated(),
        "{l}\n--- sshd ---\n{}\n--- oidcd ---\n{}",
        sshd.logs(),
        d.logs()
    );
    let out = l.command().expect("no command ran");
    let out = out["stdout"].as_str().unwrap();
    assert!(out.starts_with("alice-ext\n"), "{out}");
    assert!(out.contains("ext-contractors"), "{out}");
}
