//! `oidc-authorized-keys`: sshd's AuthorizedKeysCommand; see `oidc-authorized-keys --help`.

fn main() -> std::process::ExitCode {
    oidcd::authorized_keys::main()
}
