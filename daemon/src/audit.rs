//! The audit trail: one structured event per decision, whatever `daemon.log_level` says.
//!
//! Each event is one line on stderr, `AUDIT ` followed by a JSON object (under systemd the line
//! carries journald priority 5, notice), so `journalctl -u oidcd -o cat | sed -n 's/^AUDIT //p'`
//! gives JSON lines. Every object has a stable `event` name and `outcome`, the Unix `time`, and
//! whichever of `user`, `issuer`, `sub`, `service`, `rhost`, `uid`, `reason`, `message`,
//! `peer_uid` apply; the events and their fields are listed in `docs/audit.md`.
//!
//! What goes in is chosen field by field at each call site from names, subjects and reasons:
//! no token, device code, client secret or login id is ever passed here
//! (`tests/tests/audit.rs` greps a whole login's log for them).

use serde_json::Value;

/// What was decided. The names (`as_str`) are stable: consumers filter on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A device-flow login asked the provider for a code and showed it.
    LoginStarted,
    /// A login ended with the user logged in.
    LoginApproved,
    /// A login ended without success (refused, denied, expired, cancelled, evicted), or was
    /// refused before it started.
    LoginRefused,
    /// The PAM account phase's verdict.
    AccountVerdict,
    /// A provisional passwd entry was handed to sshd, or withdrawn.
    ProvisionalEntry,
    /// An administrator changed users, groups, links or the ID map.
    AdminChange,
}

impl Event {
    /// The stable name in the `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginStarted => "login_started",
            Self::LoginApproved => "login_approved",
            Self::LoginRefused => "login_refused",
            Self::AccountVerdict => "account_verdict",
            Self::ProvisionalEntry => "provisional_entry",
            Self::AdminChange => "admin_change",
        }
    }
}

/// One event being assembled; [`Record::emit`] writes it.
#[derive(Debug, Clone)]
#[must_use = "an audit record does nothing until emitted"]
pub struct Record {
    /// In the order written: `event` and `outcome` first.
    fields: Vec<(String, Value)>,
}

/// Starts an event with its `outcome` (`started`, `approved`, `refused`, `allowed`, ...).
pub fn record(event: Event, outcome: &str) -> Record {
    Record {
        fields: vec![
            ("event".into(), Value::from(event.as_str())),
            ("outcome".into(), Value::from(outcome)),
        ],
    }
}

impl Record {
    /// Adds a text field (replacing one of the same name).
    pub fn field(self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, Value::String(value.into()))
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.into(), value)),
        }
        self
    }

    /// Adds a text field when there is a value.
    pub fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// Adds a number field.
    pub fn number(self, key: &str, value: u64) -> Self {
        self.set(key, Value::from(value))
    }

    /// The JSON object, fields in the order written and the time last.
    pub fn to_json(&self, now: i64) -> String {
        let time = ("time".to_string(), Value::from(now));
        let members: Vec<String> = self
            .fields
            .iter()
            .chain(std::iter::once(&time))
            .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// Writes the event.
    pub fn emit(self) {
        let now = crate::clock::Clock::system().now();
        crate::logging::audit_line(&self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event is one JSON object with the stable name, the outcome, the time and the fields
    /// given, and nothing else.
    #[test]
    fn an_event_is_one_json_object() {
        let line = record(Event::LoginRefused, "refused")
            .field("user", "alice")
            .opt("rhost", None)
            .opt("service", Some("sshd"))
            .number("uid", 7)
            .field("message", "line\nbreak")
            .to_json(1_700_000_000);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(r#"{"event":"login_refused","outcome":"refused","user":"alice""#),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "login_refused");
        assert_eq!(v["outcome"], "refused");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["service"], "sshd");
        assert_eq!(v["uid"], 7);
        assert_eq!(v["time"], 1_700_000_000);
        assert!(v.get("rhost").is_none());
        assert_eq!(v.as_object().unwrap().len(), 7);
    }
}
