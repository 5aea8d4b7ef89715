//! The wire protocol between `oidcd` and its clients (`pam_oidc.so`, `libnss_oidc.so.2`,
//! `oidcctl`), and the blocking client the modules use.
//!
//! # Layout
//! - [`frame`]: u32 big-endian length prefix + JSON, bounded by [`frame::MAX_FRAME_LEN`]; pure
//!   encode/decode shared by the client and the daemon.
//! - [`message`]: the versioned [`message::Envelope`] and the [`message::Request`] /
//!   [`message::Response`] enums.
//! - [`types`]: the records on the wire (Unix users and groups, login steps, admin views).
//! - [`client`]: a blocking Unix-socket client with one deadline per call, no threads, no global
//!   state, that refuses to talk to a daemon not running as root.
//! - [`secret`]: a string whose `Debug` is redacted (offline PINs).
//! - [`paths`]: compiled-in paths. The modules never read paths from the environment: sudo and
//!   su are setuid and inherit the caller's environment.
//!
//! This crate is linked into sshd, sudo and every program that calls `getpwnam`: it must not
//! panic, spawn threads or keep state across calls.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod frame;
pub mod message;
pub mod nss_map;
pub mod paths;
pub mod secret;
pub mod types;

pub use message::{Envelope, PROTOCOL_VERSION, Request, Response};
