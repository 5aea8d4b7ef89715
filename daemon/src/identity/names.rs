//! What a Unix user or group name may be, and which names are never handed out.

/// Longest name accepted (Debian's useradd limit).
pub const MAX_NAME_LEN: usize = 32;

/// Names that belong to the system even when /etc/passwd or /etc/group lacks them (a minimal
/// container, a package installed later). Never served unless listed in `mapping.allow_names`
/// (and `root` not even then).
const RESERVED: &[&str] = &[
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "nogroup",
    "adm",
    "admin",
    "wheel",
    "sudo",
    "staff",
    "users",
    "shadow",
    "disk",
    "kmem",
    "tty",
    "operator",
    "dialout",
    "cdrom",
    "floppy",
    "audio",
    "video",
    "plugdev",
    "netdev",
    "input",
    "render",
    "kvm",
    "lxd",
    "docker",
    "sshd",
    "messagebus",
    "polkitd",
    "syslog",
    "utmp",
    "voice",
    "tape",
    "sasl",
    "src",
    "fax",
    "dip",
    "crontab",
    "ssh",
    "ssl-cert",
    "postfix",
    "postdrop",
    "oidcd",
];

/// Accounts that services and cloud images create with a UID in the people's range (so the UID
/// alone does not tell them from a person), and that a provider identity must never reach by
/// its email address (`access.link_by_email`): `git@example.com` verified at the provider is
/// not the host's `git`, `ubuntu@example.com` not the cloud image's admin account.
const SERVICE_ACCOUNTS: &[&str] = &[
    "git",
    "gitlab",
    "gitlab-runner",
    "gitea",
    "forgejo",
    "postgres",
    "mysql",
    "redis",
    "jenkins",
    "ansible",
    "deploy",
    "ftp",
    "nginx",
    "apache",
    "httpd",
    "tomcat",
    "elasticsearch",
    "grafana",
    "prometheus",
    "ubuntu",
    "debian",
    "ec2-user",
    "centos",
    "fedora",
    "rocky",
    "almalinux",
    "cloud-user",
    "opc",
    "azureuser",
    "vagrant",
    "pi",
    "core",
    "alpine",
    "arch",
    "freebsd",
];

/// Whether `name` is a well-known service or cloud-image account ([`SERVICE_ACCOUNTS`]).
pub fn is_service_account_name(name: &str) -> bool {
    SERVICE_ACCOUNTS.contains(&name)
}

/// A safe POSIX-style name: starts with a letter or `_`, then letters, digits, `_`, `.`, `-`;
/// at most [`MAX_NAME_LEN`] bytes; not all digits (it would read as an ID); lowercase unless
/// `allow_upper`.
pub fn is_valid_name(name: &str, allow_upper: bool) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let letter = |b: u8| b.is_ascii_lowercase() || (allow_upper && b.is_ascii_uppercase());
    bytes.len() <= MAX_NAME_LEN
        && (letter(first) || first == b'_')
        && bytes
            .iter()
            .all(|&b| letter(b) || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
        && !name.ends_with('.')
}

/// Whether `name` is reserved for the system.
pub fn is_reserved_name(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with("systemd-") || name.starts_with('_')
}

/// Matches `text` against a glob where `*` is any run of characters (possibly empty).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted and refused names.
    #[test]
    fn names() {
        for ok in ["alice", "a", "_svc", "bob.smith", "x-1", "carol_2"] {
            assert!(is_valid_name(ok, false), "{ok}");
        }
        for bad in [
            "",
            "1alice",
            "12345",
            "Alice",
            "a:b",
            "a b",
            "a\nb",
            "a/b",
            "-x",
            ".x",
            "x.",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "é",
            "a@b",
        ] {
            assert!(!is_valid_name(bad, false), "{bad:?}");
        }
        assert!(is_valid_name("Alice", true));
    }

    /// Reserved names include system accounts and systemd's.
    #[test]
    fn reserved() {
        assert!(is_reserved_name("root"));
        assert!(is_reserved_name("nobody"));
        assert!(is_reserved_name("systemd-network"));
        assert!(!is_reserved_name("alice"));
        for svc in ["git", "ubuntu", "ec2-user", "postgres"] {
            assert!(is_service_account_name(svc), "{svc}");
        }
        assert!(!is_service_account_name("alice"));
    }

    /// Globs with `*`.
    #[test]
    fn globs() {
        assert!(glob_match("oidc-*", "oidc-admins"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(!glob_match("a*b", "aXXc"));
        assert!(glob_match("dev", "dev"));
        assert!(!glob_match("dev", "devs"));
    }
}
