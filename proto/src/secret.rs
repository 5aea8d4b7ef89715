//! [`Secret`]: a string that must not reach a log by accident (an offline PIN on its way from
//! the PAM module to the daemon). Its `Debug` shows `***`; only [`Secret::expose`] gives the
//! value, and the wire form is the plain string.

use serde::{Deserialize, Serialize};

/// A string whose `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value never shows in `Debug`, and travels as a plain JSON string.
    #[test]
    fn debug_is_redacted_and_wire_is_plain() {
        let s = Secret::new("1234-pin");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"1234-pin\"");
        let back: Secret = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back.expose(), "x");
    }
}
