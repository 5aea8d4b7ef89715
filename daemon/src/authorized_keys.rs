//! `oidc-authorized-keys USER`: sshd's `AuthorizedKeysCommand`. Prints the SSH public keys the
//! daemon serves for USER now, one `authorized_keys` line each, and nothing for a user it does
//! not know, so sshd goes on to the user's own `authorized_keys` files.
//!
//! ```text
//! AuthorizedKeysCommand /usr/libexec/oidcd/oidc-authorized-keys %u
//! AuthorizedKeysCommandUser nobody
//! ```
//!
//! It asks the daemon over the compiled-in socket (the request is public: see
//! `daemon/src/access.rs`), trusts only a socket and a process owned by root, and gives up
//! after [`TIMEOUT`]: sshd runs it for every key a client offers, local users' included, so a
//! frozen daemon must cost a key login little. root is never asked about: no key of root's
//! comes from the provider. Exit status 0 when the daemon answered (keys or none), 1 when it
//! could not be asked (sshd logs it and goes on with the files), 2 on a usage error.

#![allow(clippy::print_stdout)] // a command for sshd: stdout is its output

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use oidc_proto::client::{self, TrustedOwner};
use oidc_proto::paths::SOCKET_PATH;
use oidc_proto::{Request, Response};

/// The whole budget for one answer, connecting included.
pub const TIMEOUT: Duration = Duration::from_millis(500);

const USAGE: &str = "usage: oidc-authorized-keys USER

Prints the SSH public keys oidcd serves for USER now (from the claim that
claims.ssh_keys_claim names, only while the PAM account phase would allow the
user), one authorized_keys line each. For sshd_config:

  AuthorizedKeysCommand /usr/libexec/oidcd/oidc-authorized-keys %u
  AuthorizedKeysCommandUser nobody

Exit status: 0 the daemon answered (keys or none), 1 the daemon could not be
asked, 2 usage error.";

/// Runs the command with the process's arguments.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let user = match args.as_slice() {
        [h] if h == "-h" || h == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [user] if !user.is_empty() && !user.starts_with('-') => user,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if user == "root" {
        return ExitCode::SUCCESS;
    }
    let request = Request::GetSshKeys { name: user.clone() };
    let answer = client::call(
        Path::new(SOCKET_PATH),
        TrustedOwner::Root,
        &request,
        TIMEOUT,
    )
    .map_err(|e| e.to_string())
    .and_then(keys_of);
    match answer {
        Ok(keys) => {
            let mut out = std::io::stdout().lock();
            for k in keys {
                if writeln!(out, "{k}").is_err() {
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oidc-authorized-keys: no keys for {user} from oidcd: {e}");
            ExitCode::from(1)
        }
    }
}

/// The lines to print for the daemon's answer: the served keys (never the stored ones a root
/// caller also gets), each a single line; none for a user the daemon does not know.
pub fn keys_of(answer: Response) -> Result<Vec<String>, String> {
    match answer {
        Response::SshKeys(k) => Ok(k
            .keys
            .into_iter()
            .filter(|k| !k.is_empty() && !k.chars().any(char::is_control))
            .collect()),
        Response::NotFound => Ok(Vec::new()),
        Response::Unavailable { reason } => Err(reason),
        Response::Error { message, .. } => Err(message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use oidc_proto::types::{ErrorCode, SshKeyList};

    use super::*;

    /// Only the served keys are printed, never the stored ones root's answer carries, and
    /// never a line that would split in two.
    #[test]
    fn only_served_single_lines() {
        let answer = Response::SshKeys(SshKeyList {
            keys: vec!["ssh-ed25519 AAAA a".into(), "ssh-ed25519 AAAA\nx".into()],
            stored: vec!["ssh-rsa BBBB".into()],
            withheld: None,
            skipped: Vec::new(),
        });
        assert_eq!(keys_of(answer).unwrap(), vec!["ssh-ed25519 AAAA a"]);
        let withheld = Response::SshKeys(SshKeyList {
            keys: Vec::new(),
            stored: vec!["ssh-rsa BBBB".into()],
            withheld: Some("revoked".into()),
            skipped: Vec::new(),
        });
        assert!(keys_of(withheld).unwrap().is_empty());
    }

    /// An unknown user has no keys from oidcd; a daemon that cannot answer is an error.
    #[test]
    fn unknown_and_unavailable() {
        assert!(keys_of(Response::NotFound).unwrap().is_empty());
        assert!(
            keys_of(Response::Unavailable {
                reason: "db".into()
            })
            .is_err()
        );
        assert!(keys_of(Response::error(ErrorCode::Busy, "later")).is_err());
        assert!(keys_of(Response::LoginPending).is_err());
    }
}
