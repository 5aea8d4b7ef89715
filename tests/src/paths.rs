//! Where the built artefacts and the test assets are.
//!
//! The tests do not build the workspace; they use what `cargo build --workspace` left in the
//! target directory of the running test binary's profile (`target/debug` normally, or under
//! `CARGO_TARGET_DIR`). A missing or stale artefact is a panic that says what to run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `tests/` crate directory (holds `op/` and `tools/`).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    tests_dir()
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The profile directory holding the binaries (`…/target/debug`).
pub fn profile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test binary runs from <target>/<profile>/deps/.
        let from_exe = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf));
        let from_env = std::env::var_os("CARGO_TARGET_DIR")
            .map(|t| PathBuf::from(t).join("debug"))
            .unwrap_or_else(|| workspace_dir().join("target/debug"));
        from_exe
            .into_iter()
            .chain([from_env])
            .find(|d| d.join("oidcd").is_file())
            .unwrap_or_else(|| {
                panic!(
                    "the oidcd binary was not found next to the test binary nor in {}: run \
                     `cargo build --workspace` first (tests/run does it)",
                    workspace_dir().join("target/debug").display()
                )
            })
    })
}

/// An artefact of the build, checked to exist and to be newer than the sources it was built
/// from (as listed in cargo's dep-info file `<name>.d` beside it).
fn artefact(file: &str, dep_info: &str) -> PathBuf {
    let p = profile_dir().join(file);
    let built = std::fs::metadata(&p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): run `cargo build --workspace` first (tests/run does it)",
                p.display()
            )
        });
    if let Some(newer) = newer_source(&profile_dir().join(dep_info), built) {
        panic!(
            "{} is older than its source {}: run `cargo build --workspace` first (tests/run \
             does it)",
            p.display(),
            newer.display()
        );
    }
    p
}

/// The first source named in the dep-info file `d` that was modified after `than`.
fn newer_source(d: &Path, than: SystemTime) -> Option<PathBuf> {
    let text = std::fs::read_to_string(d).ok()?;
    let (_, deps) = text.lines().next()?.split_once(": ")?;
    deps.split_whitespace().map(PathBuf::from).find(|src| {
        std::fs::metadata(src)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > than)
    })
}

/// The `oidcd` daemon.
pub fn oidcd() -> PathBuf {
    artefact("oidcd", "oidcd.d")
}

/// `oidc-authorized-keys`, sshd's AuthorizedKeysCommand.
pub fn authorized_keys_command() -> PathBuf {
    artefact("oidc-authorized-keys", "oidc-authorized-keys.d")
}

/// The NSS load client (`tests/src/bin/nss_load.rs`).
pub fn nss_load() -> PathBuf {
    artefact("nss_load", "nss_load.d")
}

/// The `oidcctl` command.
pub fn oidcctl() -> PathBuf {
    artefact("oidcctl", "oidcctl.d")
}

/// The NSS module as cargo names it (`libnss_oidc.so`; install it as `libnss_oidc.so.2`).
pub fn nss_module() -> PathBuf {
    artefact("libnss_oidc.so", "libnss_oidc.d")
}

/// The PAM module as cargo names it (`libpam_oidc.so`; install it as `pam_oidc.so`).
pub fn pam_module() -> PathBuf {
    artefact("libpam_oidc.so", "libpam_oidc.d")
}

/// The test provider's directory (`provider.mjs`, `package.json`, `node_modules/`).
pub fn op_dir() -> PathBuf {
    tests_dir().join("op")
}

/// The glibc lookup probe (`tests/tools/nss_probe.py`): getpwnam_r through ctypes, one JSON
/// line per lookup, with a long-running, a fork and an exec mode.
pub fn nss_probe() -> PathBuf {
    tests_dir().join("tools/nss_probe.py")
}

/// The scripted device-code approval.
pub fn approve_script() -> PathBuf {
    tests_dir().join("tools/approve_device.py")
}

/// The source of `tests/tools/fake_daemon.py`, a stand-in for oidcd on a socket (see its
/// docstring), for `python3 -c`: the tests run it as users who may not be able to read the
/// checkout.
pub fn fake_daemon_source() -> String {
    let path = tests_dir().join("tools/fake_daemon.py");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The source of `tests/tools/hostile_peer.py`, a hostile local user on the daemon's socket
/// (see its docstring), for `python3 -c` as an unprivileged uid.
pub fn hostile_peer_source() -> String {
    let path = tests_dir().join("tools/hostile_peer.py");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The multiarch library directory glibc loads NSS modules from (`/usr/lib/x86_64-linux-gnu`).
pub fn multiarch_lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let triple = std::process::Command::new("gcc")
            .arg("-dumpmachine")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{}-linux-gnu", std::env::consts::ARCH));
        let dir = PathBuf::from("/usr/lib").join(triple);
        assert!(
            dir.join("libnss_files.so.2").exists() || dir.join("libc.so.6").exists(),
            "{} does not look like glibc's library directory",
            dir.display()
        );
        dir
    })
}
