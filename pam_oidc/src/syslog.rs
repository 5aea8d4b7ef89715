//! Logging to syslog (`LOG_AUTHPRIV`), the only output a module may make besides the
//! conversation.
//!
//! The host process is not ours: no `openlog` (it would replace sshd's or sudo's ident and
//! options for the rest of the process), no stdout or stderr. Each message is passed to
//! `syslog(3)` with the facility in its priority and a `"%s"` format, so nothing in it is read
//! as a format directive, under the host's ident (`sshd[1234]: pam_oidc(sshd:auth): ...`).
//!
//! Messages carry user names and daemon text, which an attacker can choose: control characters
//! are escaped so one cannot forge a second log line or drive a terminal that shows the log.
//! Login codes and verification URLs are never logged by the callers.
// libc::syslog is a C varargs function: this file is the crate's one use of unsafe code.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fmt::Write as _;

/// How important a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The module could not do its job (daemon unreachable, conversation broken).
    Err,
    /// A bad module option, an answer the module did not expect.
    Warning,
    /// An authentication or account decision.
    Notice,
    /// Normal events.
    Info,
    /// Each step; only logged with the `debug` option.
    Debug,
}

/// Where log lines go: syslog in the module, a list in tests.
pub trait Log {
    /// Logs one message.
    fn log(&self, level: Level, message: &str);
}

/// Logs to syslog, each line prefixed with `pam_oidc(SERVICE:PHASE): `.
#[derive(Debug, Clone)]
pub struct Syslog {
    prefix: String,
    debug: bool,
}

impl Syslog {
    /// A logger for one hook call. Debug messages are dropped unless `debug` is set.
    pub fn new(service: &str, phase: &str, debug: bool) -> Self {
        Self {
            prefix: format!("pam_oidc({}:{}): ", escape(service), escape(phase)),
            debug,
        }
    }
}

impl Log for Syslog {
    fn log(&self, level: Level, message: &str) {
        let priority = match level {
            Level::Err => libc::LOG_ERR,
            Level::Warning => libc::LOG_WARNING,
            Level::Notice => libc::LOG_NOTICE,
            Level::Info => libc::LOG_INFO,
            Level::Debug if self.debug => libc::LOG_DEBUG,
            Level::Debug => return,
        };
        // escape() leaves no NUL byte, so CString::new cannot fail; if it ever did, the line
        // is dropped rather than the module failing.
        let Ok(line) = CString::new(format!("{}{}", self.prefix, escape(message))) else {
            return;
        };
        // SAFETY: "%s" consumes exactly one argument, a valid NUL-terminated string that
        // outlives the call. syslog(3) is safe to call without openlog.
        unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

/// `text` with control characters (NUL and newline included) written as Rust escapes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            // Writing into a String cannot fail.
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Control characters cannot start a new log line or reach a terminal unescaped.
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("a\nb\0c\u{1b}[31m"), "a\\nb\\u{0}c\\u{1b}[31m");
        assert_eq!(escape("ålice@example.com"), "ålice@example.com");
    }

    /// The prefix names the service and phase, escaped too.
    #[test]
    fn prefix() {
        assert_eq!(
            Syslog::new("sshd", "auth", false).prefix,
            "pam_oidc(sshd:auth): "
        );
        assert_eq!(
            Syslog::new("x\ny", "account", false).prefix,
            "pam_oidc(x\\ny:account): "
        );
    }
}
