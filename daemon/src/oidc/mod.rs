//! Talking to the OpenID provider: discovery and keys ([`provider`]), the device authorization
//! grant ([`device`]), ID-token validation ([`id_token`]), userinfo ([`userinfo`]) and the
//! refresh-token grant ([`refresh`]).
//!
//! Tokens never leave the daemon: the PAM module only ever sees the user code and the
//! verification URI.

pub mod device;
pub mod http;
pub mod id_token;
pub mod provider;
pub mod refresh;
pub mod userinfo;

use std::fmt;

use oidc_proto::types::LoginFailure;

pub use provider::Provider;

/// Why a step with the provider failed. Each variant says how the login reacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcError {
    /// The provider could not be reached, or failed (5xx): the user is told the provider is
    /// unavailable; a poll may retry a few times.
    Unreachable(String),
    /// The provider answered with an OAuth error (`error`, `error_description`).
    Provider {
        /// HTTP status.
        status: u16,
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The answer is not what the protocol says (bad JSON, missing fields, wrong issuer).
    InvalidResponse(String),
    /// The ID token or userinfo failed validation. Never retried.
    InvalidToken(String),
    /// The daemon's own configuration does not allow the request.
    Config(String),
}

impl fmt::Display for OidcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(m) => write!(f, "provider unreachable: {m}"),
            Self::Provider {
                status,
                error,
                description,
            } => {
                write!(f, "provider error {error} (HTTP {status})")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            Self::InvalidResponse(m) => write!(f, "invalid answer from the provider: {m}"),
            Self::InvalidToken(m) => write!(f, "token rejected: {m}"),
            Self::Config(m) => write!(f, "configuration: {m}"),
        }
    }
}

impl std::error::Error for OidcError {}

impl OidcError {
    /// The login failure this error ends in.
    pub fn failure(&self) -> LoginFailure {
        match self {
            Self::Unreachable(_) | Self::Provider { .. } | Self::Config(_) => {
                LoginFailure::ProviderUnavailable
            }
            Self::InvalidResponse(_) | Self::InvalidToken(_) => LoginFailure::InvalidToken,
        }
    }

    /// An OAuth error answer from a JSON body, or a generic one.
    pub(crate) fn from_body(status: u16, body: &serde_json::Value) -> Self {
        let error = body.get("error").and_then(serde_json::Value::as_str);
        match error {
            Some(e) => Self::Provider {
                status,
                // Both reach the log and the user's screen: no control characters (a
                // provider must not be able to write terminal escapes or forge log lines).
                error: e.chars().filter(|c| !c.is_control()).take(100).collect(),
                description: description(body),
            },
            None if status >= 500 => Self::Unreachable(format!("HTTP {status}")),
            None => Self::InvalidResponse(format!("HTTP {status} without an OAuth error code")),
        }
    }
}

/// A provider's `error_description`, on one line: line breaks and tabs become spaces (Entra ID
/// sends several lines: the message, a trace id, a correlation id, a time), other control
/// characters are dropped, runs of spaces become one, and it is cut at 300 characters.
pub(crate) fn description(body: &serde_json::Value) -> Option<String> {
    let d = body.get("error_description")?.as_str()?;
    let mut out = String::new();
    for c in d.chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if !c.is_control() {
            out.push(c);
        }
        if out.chars().count() >= 300 {
            break;
        }
    }
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A provider's `error` and `error_description` lose their control characters (found by
    /// the `provider_answers` fuzz target's property: terminal escapes in the error code).
    #[test]
    fn provider_error_text_has_no_control_characters() {
        let e = OidcError::from_body(
            400,
            &json!({"error": "bad\u{1b}[2J\ncode", "error_description": "line\r\nfake"}),
        );
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.contains("bad[2Jcode") && text.contains("line fake"),
            "{text}"
        );
    }

    /// A multi-line description (Entra ID's) reads as one line, words kept apart.
    #[test]
    fn multi_line_description_stays_readable() {
        let d = description(&json!({"error_description":
            "AADSTS70000: The user declined.\r\nTrace ID: 1f2e\r\n\tCorrelation ID: 9a8b\r\n"}));
        assert_eq!(
            d.as_deref(),
            Some("AADSTS70000: The user declined. Trace ID: 1f2e Correlation ID: 9a8b")
        );
        assert_eq!(description(&json!({"error_description": " \n "})), None);
    }
}
