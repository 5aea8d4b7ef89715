//! User story: an existing local account (in /etc/passwd) is linked to one provider identity
//! with `oidcctl link` and then logs in with the device flow, approved by that identity only;
//! NSS keeps serving it from /etc/passwd. Without a link, the daemon refuses it before the
//! provider is asked, and `oidcctl unlink` takes the link away again.

use oidcd_tests::pam::{self, Approver, PamLogin, SERVICE};
use oidcd_tests::{Daemon, DaemonConfig, Namespace, Provider};

const LOCAL: &str = "localuser:x:4242:4242:Local User:/home/localuser:/bin/sh";
const USER_UNKNOWN: &str = "User not known to the underlying authentication module";

/// A namespace with `localuser` in its /etc/passwd and /etc/group copies, and the PAM service.
fn namespace() -> Namespace {
    let ns = Namespace::builder()
        .local_user(LOCAL)
        .local_group("localuser:x:4242:")
        .pam_dir()
        .start();
    pam::install_service(&ns, SERVICE, "");
    ns
}

fn provider() -> Provider {
    Provider::start(&[("OP_AUTO_CONSENT", "1")])
}

/// Linked to sub `alice`, localuser logs in when alice approves (auth and account); getent
/// still shows the /etc/passwd line, and no oidcd user is created. After `oidcctl unlink` the
/// login is refused before the provider is asked.
#[test]
fn linked_local_account_logs_in_with_its_identity_until_unlinked() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    d.oidcctl(&["link", "localuser", "--sub", "alice"])
        .expect_ok();
    let links = d.oidcctl_json(&["links"]);
    assert!(links.to_string().contains("localuser"), "{links}");

    PamLogin::new(&ns, SERVICE, "localuser")
        .ops(&["authenticate", "acct_mgmt"])
        .approved_by(Approver::user(&op, "alice"))
        .run()
        .expect_success();
    let pw = ns.getent("passwd", &["localuser"]);
    pw.expect_ok();
    assert_eq!(pw.stdout.trim_end(), LOCAL);
    assert!(
        d.logs().contains(
            "login localuser (service oidc-test) approved: local account linked to sub \"alice\""
        ),
        "{}",
        d.logs()
    );
    assert_eq!(d.users().as_array().map(Vec::len), Some(0), "{}", d.users());
    assert_eq!(ns.getent("passwd", &["alice"]).code(), 2);

    d.oidcctl(&["unlink", "localuser"]).expect_ok();
    let asked = op.requests("POST /device/auth");
    let refused = PamLogin::new(&ns, SERVICE, "localuser").run();
    assert!(refused.prompt.is_none(), "{refused}");
    refused.expect_failure(USER_UNKNOWN);
    assert_eq!(op.requests("POST /device/auth"), asked, "{}", op.stats());
}

/// Without a link, a login as localuser is refused at once (PAM_USER_UNKNOWN, so the next
/// module can take the local account), with no prompt and no request to the provider.
#[test]
fn unlinked_local_account_is_refused_before_the_provider_is_asked() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    let login = PamLogin::new(&ns, SERVICE, "localuser").run();
    assert!(login.prompt.is_none(), "{login}");
    login.expect_failure(USER_UNKNOWN);
    assert!(
        d.logs().contains(
            "login localuser (service oidc-test) refused before asking the provider: localuser \
             is a local account that is not linked"
        ),
        "{}",
        d.logs()
    );
    assert_eq!(op.requests("POST /device/auth"), 0, "{}", op.stats());
}

/// localuser is linked to alice; bob approving its login is refused, naming the link.
#[test]
fn another_identity_approving_a_linked_account_is_refused() {
    let op = provider();
    let ns = namespace();
    let d = Daemon::start(&ns, &DaemonConfig::for_provider(&op));
    d.oidcctl(&["link", "localuser", "--sub", "alice"])
        .expect_ok();
    let login = PamLogin::new(&ns, SERVICE, "localuser")
        .approved_by(Approver::user(&op, "bob"))
        .run();
    login.approval.as_ref().unwrap().expect_ok();
    login.expect_failure(
        "the identity that approved this login is not linked to the local account localuser",
    );
    assert!(
        d.logs().contains("local account not linked to sub \"bob\""),
        "{}",
        d.logs()
    );
    assert_eq!(ns.getent("passwd", &["bob"]).code(), 2);
}
