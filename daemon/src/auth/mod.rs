//! Logins: the device flow from code to verdict ([`flow`]), the registry of logins in progress
//! ([`login`]) and which of them make room for a new one ([`limits`]), which provider a login
//! asks ([`route`]), recognising sshd ([`sshd`]), the QR picture ([`qr`]), a refused first SSH login's next connection ([`resume`]), the PAM `account`
//! verdict ([`account`]), and the SSH keys sshd may accept under the same verdict
//! ([`ssh_keys`]).

pub mod account;
pub mod flow;
pub mod limits;
pub mod login;
pub mod qr;
pub mod resume;
pub mod route;
pub mod ssh_keys;
pub mod sshd;
