//! `oidcd`: the root service behind `pam_oidc.so` and `libnss_oidc.so.2`.
//!
//! # Layout
//! - [`config`]: `/etc/oidcd/oidcd.toml`, parsed with positions and checked into [`config::Config`].
//! - [`identity`]: name rules, the host's own accounts (read from the files, never through NSS),
//!   the fleet's ID rule (`identity::ids`: one identity, one ID on every host), and the mapping
//!   from claims to a Unix user.
//! - [`store`]: the SQLite identity cache (users, groups, memberships).
//! - [`nss_map`]: the NSS map `libnss_oidc` reads without asking the daemon, rebuilt on its
//!   own thread after every change and kept valid by a heartbeat.
//! - [`lifecycle`]: between logins: background refresh, revocation, expiry in the account
//!   phase, `oidcctl user refresh` and `user revoke`.
//! - [`offline`]: `[offline]`, the opt-in PIN for logins while the provider cannot be reached.
//! - [`server`]: the socket: accepts connections, checks peer credentials, bounds their number,
//!   stops on request.
//! - [`handler`]: one function per request, authorised against the peer.
//! - [`fleet_sim`]: the fleet simulation behind `examples/fleet_sim.rs` (hosts, identities,
//!   arrival paths and orders, the real allocation rule, the store as a cross-check).
//! - [`fleet_map`]: the ID map on the socket: export pages, pins from a fleet map, the check
//!   of this host's IDs that `oidcctl doctor` prints.
//! - [`state`]: what the handlers share: config, store, local accounts, answer cache.
//! - [`clock`]: the one place that reads the time.
//! - [`audit`]: one structured event per decision (JSON lines on stderr, `docs/audit.md`).
//! - [`logging`]: one line per event on stderr, with journald priority prefixes.
//! - [`import`]: `oidcctl import` of claim sets: provider, other sources, one transaction.
//! - [`staged_import`]: imports too large for one request, sent in parts and applied at once.
//! - [`small_file`]: reads the administrator's files (config, secret, CA) with a size cap,
//!   refusing FIFOs and devices.
//! - [`ctl`]: `oidcctl`, the administrator's command.
//! - [`authorized_keys`]: `oidc-authorized-keys`, sshd's `AuthorizedKeysCommand`.
#![deny(unsafe_code)]

pub mod access;
pub mod audit;
pub mod auth;
pub mod authorized_keys;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod fleet_map;
pub mod fleet_sim;
pub mod handler;
pub mod identity;
pub mod import;
pub mod lifecycle;
pub mod logging;
pub mod memory;
pub mod nss_map;
pub mod offline;
pub mod oidc;
pub mod server;
pub mod service;
pub mod small_file;
pub mod staged_import;
pub mod state;
pub mod store;
