//! RFC 8628, the device authorization grant: ask for a code, then poll the token endpoint.
//! Each poll is one request; the caller paces and cancels them.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::provider::{Discovered, Provider};
use super::{OidcError, http};

/// `urn:ietf:params:oauth:grant-type:device_code`.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The provider's answer to a device authorization request, checked.
#[derive(Clone)]
pub struct DeviceAuthorization {
    /// Secret: only ever sent back to the token endpoint.
    pub device_code: String,
    /// What the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes.
    pub expires_in: Duration,
    /// Minimum poll interval, if the provider set one.
    pub interval: Option<Duration>,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"***")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// Tokens from a successful poll.
#[derive(Clone)]
pub struct Tokens {
    /// The ID token (compact JWS).
    pub id_token: String,
    /// The access token, for userinfo.
    pub access_token: String,
    /// The refresh token, when the provider issued one (see [`super::refresh`]).
    pub refresh_token: Option<String>,
    /// The access token's lifetime in seconds, when the provider said.
    pub expires_in: Option<u64>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens(***)")
    }
}

/// One poll's outcome (RFC 8628 §3.5).
#[derive(Debug, Clone)]
pub enum Poll {
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again, with the interval 5 s longer.
    SlowDown,
    /// Approved.
    Approved(Tokens),
    /// `access_denied`, or Entra ID's `authorization_declined`: the user said no. With the
    /// provider's description, on one line.
    Denied(Option<String>),
    /// `expired_token`.
    Expired,
}

/// Shortest poll interval taken from a provider: RFC 8628 says 5 s when unstated, and an
/// `interval` of 0 would have the daemon poll in a tight loop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Starts a device authorization with the configured scopes, within `deadline`.
pub fn authorize(
    p: &Provider,
    d: &Discovered,
    deadline: Instant,
) -> Result<DeviceAuthorization, OidcError> {
    let scope = super::refresh::device_scope(&p.config, d);
    let r = http::post_form(
        &p.http,
        &p.config,
        d.client_auth,
        &d.device_endpoint,
        &[("scope", &scope)],
        deadline,
    )?;
    if r.status != 200 {
        return Err(OidcError::from_body(r.status, &r.body));
    }
    parse_authorization(&r.body)
}

/// Reads a device authorization answer. Everything shown to a user is checked to be a plain
/// URL or code: a provider must not be able to put terminal escapes on someone's screen.
pub fn parse_authorization(body: &Value) -> Result<DeviceAuthorization, OidcError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let missing =
        |k: &str| OidcError::InvalidResponse(format!("device authorization answer has no {k}"));
    let device_code = text("device_code").ok_or_else(|| missing("device_code"))?;
    let user_code = text("user_code").ok_or_else(|| missing("user_code"))?;
    // Google sends verification_url (sic).
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .ok_or_else(|| missing("verification_uri"))?;
    let verification_uri_complete = text("verification_uri_complete");
    let secs = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
    };
    let expires_in = secs("expires_in").ok_or_else(|| missing("expires_in"))?;
    if device_code.is_empty() || device_code.len() > 4096 {
        return Err(OidcError::InvalidResponse(
            "device_code is empty or too long".into(),
        ));
    }
    if user_code.is_empty()
        || user_code.len() > 64
        || !user_code.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(OidcError::InvalidResponse(format!(
            "user_code {user_code:?} is not a plain code"
        )));
    }
    for uri in std::iter::once(&verification_uri).chain(verification_uri_complete.iter()) {
        check_uri(uri)?;
    }
    Ok(DeviceAuthorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: Duration::from_secs(expires_in.clamp(1, 3600)),
        interval: secs("interval").map(|s| Duration::from_secs(s.min(60)).max(MIN_INTERVAL)),
    })
}

fn check_uri(uri: &str) -> Result<(), OidcError> {
    let ok = (uri.starts_with("https://") || uri.starts_with("http://"))
        && uri.len() <= 2048
        && uri.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(OidcError::InvalidResponse(format!(
            "verification URI {uri:?} is not a plain http(s) URL"
        )))
    }
}

/// Polls the token endpoint once, within [`http::REQUEST_TIMEOUT`].
pub fn poll(p: &Provider, d: &Discovered, device_code: &str) -> Result<Poll, OidcError> {
    let r = http::post_form(
        &p.http,
        &p.config,
        d.client_auth,
        &d.token_endpoint,
        &[("grant_type", GRANT_TYPE), ("device_code", device_code)],
        Instant::now() + http::REQUEST_TIMEOUT,
    )?;
    parse_poll(r.status, &r.body)
}

/// Reads a token endpoint answer.
pub fn parse_poll(status: u16, body: &Value) -> Result<Poll, OidcError> {
    if status == 200 {
        let get = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id_token = get("id_token").ok_or_else(|| {
            OidcError::InvalidResponse(
                "the token answer has no id_token (is \"openid\" among the scopes?)".into(),
            )
        })?;
        let access_token = get("access_token").ok_or_else(|| {
            OidcError::InvalidResponse("the token answer has no access_token".into())
        })?;
        return Ok(Poll::Approved(Tokens {
            id_token,
            access_token,
            refresh_token: get("refresh_token"),
            expires_in: super::refresh::expires_in(body),
        }));
    }
    match body.get("error").and_then(Value::as_str) {
        Some("authorization_pending") => Ok(Poll::Pending),
        Some("slow_down") => Ok(Poll::SlowDown),
        Some("access_denied" | "authorization_declined") => {
            Ok(Poll::Denied(super::description(body)))
        }
        Some("expired_token") => Ok(Poll::Expired),
        _ => Err(OidcError::from_body(status, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A typical answer parses; Google's `verification_url` spelling is accepted.
    #[test]
    fn authorization_answers() {
        let a = parse_authorization(&json!({
            "device_code": "dc", "user_code": "WDJB-MJHT",
            "verification_uri": "https://idp/device", "verification_uri_complete": "https://idp/device?user_code=WDJB-MJHT",
            "expires_in": 600
        }))
        .unwrap();
        assert_eq!(a.user_code, "WDJB-MJHT");
        assert_eq!(a.interval, None);
        assert!(!format!("{a:?}").contains("dc\""));
        let g = parse_authorization(&json!({
            "device_code": "dc", "user_code": "ABC", "verification_url": "https://www.google.com/device",
            "expires_in": "1800", "interval": 5
        }))
        .unwrap();
        assert_eq!(g.verification_uri, "https://www.google.com/device");
        assert_eq!(g.interval, Some(Duration::from_secs(5)));
    }

    /// A provider's `interval` of 0 (or "0") is raised to [`MIN_INTERVAL`], so the daemon
    /// never polls in a tight loop; a huge one is capped at a minute.
    #[test]
    fn interval_has_a_floor_and_a_ceiling() {
        for zero in [json!(0), json!("0")] {
            let a = parse_authorization(&json!({
                "device_code": "dc", "user_code": "C", "verification_uri": "https://idp/d",
                "expires_in": 600, "interval": zero
            }))
            .unwrap();
            assert_eq!(a.interval, Some(MIN_INTERVAL));
        }
        let a = parse_authorization(&json!({
            "device_code": "dc", "user_code": "C", "verification_uri": "https://idp/d",
            "expires_in": 600, "interval": 86400
        }))
        .unwrap();
        assert_eq!(a.interval, Some(Duration::from_secs(60)));
    }

    /// Codes or URIs that could carry terminal escapes or mislead are refused.
    #[test]
    fn hostile_authorization_answers() {
        for body in [
            json!({"device_code": "d", "user_code": "A\u{1b}[2J", "verification_uri": "https://x", "expires_in": 5}),
            json!({"device_code": "d", "user_code": "A", "verification_uri": "javascript:alert(1)", "expires_in": 5}),
            json!({"device_code": "d", "user_code": "A", "verification_uri": "https://x/\nfake", "expires_in": 5}),
            json!({"user_code": "A", "verification_uri": "https://x", "expires_in": 5}),
            json!({"device_code": "d", "user_code": "A", "verification_uri": "https://x"}),
        ] {
            assert!(parse_authorization(&body).is_err(), "{body}");
        }
    }

    /// Token endpoint answers map to RFC 8628 outcomes.
    #[test]
    fn poll_answers() {
        assert!(matches!(
            parse_poll(400, &json!({"error": "authorization_pending"})),
            Ok(Poll::Pending)
        ));
        assert!(matches!(
            parse_poll(400, &json!({"error": "slow_down"})),
            Ok(Poll::SlowDown)
        ));
        assert!(matches!(
            parse_poll(400, &json!({"error": "access_denied"})),
            Ok(Poll::Denied(None))
        ));
        // Entra ID's word for it, with its multi-line description on one line.
        match parse_poll(
            400,
            &json!({"error": "authorization_declined", "error_description": "AADSTS70000: declined.\r\nTrace ID: x"}),
        ) {
            Ok(Poll::Denied(Some(d))) => assert_eq!(d, "AADSTS70000: declined. Trace ID: x"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_poll(400, &json!({"error": "expired_token"})),
            Ok(Poll::Expired)
        ));
        assert!(matches!(
            parse_poll(
                400,
                &json!({"error": "invalid_client", "error_description": "bad secret"})
            ),
            Err(OidcError::Provider { .. })
        ));
        assert!(matches!(
            parse_poll(500, &json!(null)),
            Err(OidcError::Unreachable(_))
        ));
        assert!(matches!(
            parse_poll(200, &json!({"access_token": "a"})),
            Err(OidcError::InvalidResponse(_))
        ));
        assert!(matches!(
            parse_poll(200, &json!({"access_token": "a", "id_token": "x.y.z"})),
            Ok(Poll::Approved(_))
        ));
    }
}
