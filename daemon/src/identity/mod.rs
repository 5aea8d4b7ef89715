//! Who a user is on this host: name rules, the host's own accounts, the names other NSS
//! sources know, ID allocation, the provisional entries handed to sshd, the mapping from
//! provider claims, and the SSH public keys those claims hold.

pub mod groups;
pub mod ids;
pub mod local;
pub mod mapping;
pub mod names;
pub mod other_sources;
pub mod provisional;
pub mod ssh_keys;
