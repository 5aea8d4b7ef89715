//! Steps many login tests share: a namespace with the `oidc-test` PAM service, an approved
//! login, the groups glibc sees for a user, and a configuration reload that is waited for.

use std::time::Duration;

use crate::daemon::{Daemon, DaemonConfig};
use crate::ns::Namespace;
use crate::pam::{self, Approver, Login, PamLogin, SERVICE};
use crate::provider::Provider;

/// A namespace with a bound `/etc/pam.d` holding the `oidc-test` service (auth and account).
pub fn pam_namespace() -> Namespace {
    let ns = Namespace::builder().pam_dir().start();
    pam::install_service(&ns, SERVICE, "");
    ns
}

/// `user` logs in on the `oidc-test` service, approved at `op` by its test account `who`
/// (alice, bob or carol).
pub fn login_as(ns: &Namespace, op: &Provider, user: &str, who: &str) -> Login {
    PamLogin::new(ns, SERVICE, user)
        .approved_by(Approver::user(op, who))
        .run()
}

/// The names of `user`'s groups as glibc sees them (`id -Gn`), sorted.
#[track_caller]
pub fn groups_of(ns: &Namespace, user: &str) -> Vec<String> {
    let r = ns.run("id", &["-Gn", user]);
    r.expect_ok();
    let mut v: Vec<String> = r.stdout.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

/// Rewrites the daemon's config to `cfg`, sends SIGHUP and waits until the `n`th reload is
/// logged.
#[track_caller]
pub fn reload(d: &Daemon<'_>, cfg: &DaemonConfig, n: usize) {
    d.rewrite_config(&d.config_text_for(cfg));
    d.sighup();
    assert!(
        crate::util::wait_until(Duration::from_secs(5), || d
            .logs()
            .matches("configuration reloaded")
            .count()
            >= n),
        "no reload logged:\n{}",
        d.logs()
    );
}
