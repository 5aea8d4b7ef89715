//! What the two modules expose to the processes that load them: exactly the entry points glibc
//! and libpam look up, a SONAME for the NSS module, only the libraries they need, and only the
//! crates we allow (everything a module links is mapped into sshd, sudo and every program
//! that resolves a user).

use std::collections::BTreeSet;
use std::process::Command;

use oidcd_tests::paths;

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Defined dynamic symbols of a shared object.
fn exports(so: &std::path::Path) -> BTreeSet<String> {
    output("nm", &["-D", "--defined-only", so.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// (SONAME, NEEDED libraries) of a shared object.
fn dynamic(so: &std::path::Path) -> (Option<String>, BTreeSet<String>) {
    let text = output("readelf", &["-d", so.to_str().unwrap()]);
    let value = |line: &str| {
        line.rsplit('[')
            .next()
            .map(|v| v.trim_end_matches(']').to_string())
    };
    let soname = text
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(value);
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(value)
        .collect();
    (soname, needed)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// libnss_oidc.so.2 exports the eleven NSS entry points and nothing else, has its SONAME, and
/// needs only libc, libgcc_s and the loader.
#[test]
fn nss_module_exports_soname_and_libraries() {
    let so = paths::nss_module();
    let expected = set(&[
        "_nss_oidc_endgrent",
        "_nss_oidc_endpwent",
        "_nss_oidc_getgrent_r",
        "_nss_oidc_getgrgid_r",
        "_nss_oidc_getgrnam_r",
        "_nss_oidc_getpwent_r",
        "_nss_oidc_getpwnam_r",
        "_nss_oidc_getpwuid_r",
        "_nss_oidc_initgroups_dyn",
        "_nss_oidc_setgrent",
        "_nss_oidc_setpwent",
    ]);
    assert_eq!(exports(&so), expected);
    let (soname, needed) = dynamic(&so);
    assert_eq!(soname.as_deref(), Some("libnss_oidc.so.2"));
    let allowed = set(&["libc.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"]);
    assert!(needed.is_subset(&allowed), "unexpected NEEDED: {needed:?}");
}

/// pam_oidc.so exports the six pam_sm_* hooks and nothing else and needs only libpam, libc,
/// libgcc_s and the loader.
#[test]
fn pam_module_exports_and_libraries() {
    let so = paths::pam_module();
    let expected = set(&[
        "pam_sm_acct_mgmt",
        "pam_sm_authenticate",
        "pam_sm_chauthtok",
        "pam_sm_close_session",
        "pam_sm_open_session",
        "pam_sm_setcred",
    ]);
    assert_eq!(exports(&so), expected);
    let (_, needed) = dynamic(&so);
    let allowed = set(&[
        "libpam.so.0",
        "libc.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
    ]);
    assert!(needed.is_subset(&allowed), "unexpected NEEDED: {needed:?}");
}

/// The crates linked into each module stay on an allow-list: no HTTP, TLS, SQLite, async
/// runtime or thread pool can creep into sshd through a dependency.
#[test]
fn module_dependencies_stay_on_the_allow_list() {
    let allowed = set(&[
        "oidc_proto",
        "serde",
        "serde_core",
        "serde_derive",
        "serde_json",
        "itoa",
        "memchr",
        "ryu",
        "zmij",
        "nix",
        "libc",
        "bitflags",
        "cfg-if",
        "cfg_aliases",
        "memoffset",
        "proc-macro2",
        "quote",
        "syn",
        "unicode-ident",
        "autocfg",
        "pam-bindings",
        "zeroize",
        "nss_oidc",
        "pam_oidc",
    ]);
    for krate in ["nss_oidc", "pam_oidc"] {
        let tree = output(
            "cargo",
            &[
                "tree",
                "--offline",
                "-e",
                "normal,build",
                "-p",
                krate,
                "--prefix",
                "none",
                "--format",
                "{p}",
            ],
        );
        let names: BTreeSet<String> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        let extra: Vec<&String> = names.difference(&allowed).collect();
        assert!(
            extra.is_empty(),
            "{krate} links crates outside the allow-list: {extra:?}"
        );
    }
}
