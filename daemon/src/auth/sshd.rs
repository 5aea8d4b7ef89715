//! Recognising sshd among the daemon's peers (for provisional entries and for what a login
//! that sshd runs must end with).

use crate::config::Config;

/// Whether the peer (`uid`, `pid` from `SO_PEERCRED`) is sshd: a root process running one of
/// `login.ssh_programs`, by executable path (which a caller cannot fake as easily as its process
/// name). A non-root process is never sshd, whatever it runs: sshd's privileged monitor, which
/// resolves users and runs PAM, is root.
pub fn is_sshd(cfg: &Config, uid: u32, pid: i32) -> bool {
    if uid != 0 || !cfg.login.ssh_first_login || cfg.providers.is_empty() {
        return false;
    }
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    // A binary replaced by an upgrade shows as "path (deleted)".
    let exe = exe.to_string_lossy();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
    cfg.login.ssh_programs.iter().any(|p| p.as_os_str() == exe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;

    fn cfg_with_program(program: &std::path::Path) -> Config {
        let mut c = Config {
            providers: vec![ProviderConfig::for_tests("https://idp")],
            ..Config::default()
        };
        c.login.ssh_programs = vec![program.to_path_buf()];
        c
    }

    /// A process running a recognised program is sshd only as root: a local user who runs
    /// (a copy of, or the real) sshd binary gets no provisional entries.
    #[test]
    fn only_root_is_sshd() {
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        let cfg = cfg_with_program(&me);
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(is_sshd(&cfg, 0, pid));
        assert!(!is_sshd(&cfg, 65534, pid));
        assert!(!is_sshd(&cfg, 1000, pid));
        let other = cfg_with_program(std::path::Path::new("/usr/sbin/sshd"));
        assert!(!is_sshd(&other, 0, pid));
    }
}
