//! Whether PAM_USER is an account of this host's `/etc/passwd`, read directly (never through
//! NSS, which would ask this module's daemon).
//!
//! It sets how long the module waits for the daemon's quick answers (`LoginPrecheck`,
//! `AccountCheck`): a local account is the daemon's only when linked to an identity, which is
//! rare, so its login waits at most the NSS deadline on a frozen or overloaded daemon before
//! going on to `pam_unix` (issue 15 #9); a user the daemon serves waits longer, since nothing
//! but the daemon can let them in, and a host busy with other work (every core taken) must
//! not turn their login into "authentication service unavailable".

use std::io::Read;
use std::time::Duration;

/// The host's account file.
const PASSWD: &str = "/etc/passwd";
/// Most of `/etc/passwd` read (a larger file is read this far).
const MAX_PASSWD: u64 = 16 * 1024 * 1024;

/// The daemon's quick answers for a local account: the NSS module's deadline.
pub const LOCAL_DEADLINE: Duration = Duration::from_millis(250);
/// The daemon's quick answers for anyone else.
pub const SERVED_DEADLINE: Duration = Duration::from_secs(2);

/// How long to wait for `LoginPrecheck` or `AccountCheck` about `user`.
pub fn quick_deadline(user: &str) -> Duration {
    if in_passwd(user, &read_passwd()) {
        LOCAL_DEADLINE
    } else {
        SERVED_DEADLINE
    }
}

fn read_passwd() -> Vec<u8> {
    let mut text = Vec::new();
    if let Ok(f) = std::fs::File::open(PASSWD) {
        let _ = f.take(MAX_PASSWD).read_to_end(&mut text);
    }
    text
}

/// Whether a line of `passwd` (the file's bytes) names `user`.
fn in_passwd(user: &str, passwd: &[u8]) -> bool {
    passwd.split(|&b| b == b'\n').any(|line| {
        line.strip_prefix(user.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a whole first field matches: not a prefix, not another field.
    #[test]
    fn names_match_whole_first_fields() {
        let passwd = b"root:x:0:0::/root:/bin/sh\nbob:x:1000:1000:alice:/home/bob:/bin/sh\n";
        assert!(in_passwd("root", passwd));
        assert!(in_passwd("bob", passwd));
        assert!(!in_passwd("bo", passwd));
        assert!(!in_passwd("alice", passwd));
        assert!(!in_passwd("", b":x:0:0::/:/bin/sh\n") || in_passwd("", b":x\n"));
    }

    /// A local account waits the NSS deadline, anyone else longer.
    #[test]
    fn deadlines() {
        assert_eq!(quick_deadline("root"), LOCAL_DEADLINE);
        assert_eq!(quick_deadline("no-such-user-ever"), SERVED_DEADLINE);
        assert!(LOCAL_DEADLINE <= Duration::from_millis(300));
    }
}
