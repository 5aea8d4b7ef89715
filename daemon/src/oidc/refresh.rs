//! The refresh-token grant (RFC 6749 §6; OpenID Connect Core §12): new tokens for an identity
//! without the user, and the `offline_access` scope that asks for a refresh token at login.
//!
//! What a refresh answer says about the user is validated by the caller exactly as a login's
//! ([`crate::lifecycle`]); this module only speaks the protocol.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::provider::{Discovered, Provider};
use super::{OidcError, http};
use crate::config::ProviderConfig;

/// The scope that asks for a refresh token usable while the user is away (OpenID Connect
/// Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Longest token accepted from the provider (tokens are stored and sent back).
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The scopes of a device authorization request: the configured ones, plus `offline_access`
/// when `provider.offline_access` is on and the provider lists it in `scopes_supported`
/// (providers that do not list it, or reject unknown scopes, are not sent it).
pub fn device_scope(p: &ProviderConfig, d: &Discovered) -> String {
    let mut scopes = p.scopes.clone();
    let listed = d
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| x == OFFLINE_ACCESS));
    if p.offline_access && listed && !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS.into());
    }
    scopes.join(" ")
}

/// `expires_in` of a token answer, as a number or a string of digits.
pub fn expires_in(body: &Value) -> Option<u64> {
    body.get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

/// A successful refresh answer. Nothing in it is checked yet but its shape.
#[derive(Clone)]
pub struct Refreshed {
    /// A new ID token, when the provider sent one (it may not, OpenID Connect Core §12.2).
    pub id_token: Option<String>,
    /// The new access token.
    pub access_token: String,
    /// A new refresh token when the provider rotates them; otherwise the old one stays good.
    pub refresh_token: Option<String>,
    /// The access token's lifetime in seconds.
    pub expires_in: Option<u64>,
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed")
            .field("id_token", &self.id_token.as_ref().map(|_| "***"))
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// How long one refresh request may take, connecting included: a background refresh waits on
/// nobody, but a provider that never answers must not hold a refresh worker forever.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(30);

/// Asks the token endpoint for new tokens with `refresh_token`.
pub fn refresh(p: &Provider, d: &Discovered, refresh_token: &str) -> Result<Refreshed, OidcError> {
    let r = http::post_form(
        &p.http,
        &p.config,
        d.client_auth,
        &d.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Instant::now() + REQUEST_BUDGET,
    )?;
    parse(r.status, &r.body)
}

/// Reads a token endpoint answer to a refresh.
pub fn parse(status: u16, body: &Value) -> Result<Refreshed, OidcError> {
    if status != 200 {
        return Err(OidcError::from_body(status, body));
    }
    let get = |k: &str| -> Result<Option<String>, OidcError> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_TOKEN_LEN => Ok(Some(s.clone())),
            Some(_) => Err(OidcError::InvalidResponse(format!(
                "the refresh answer's {k} is not a string of at most {MAX_TOKEN_LEN} bytes"
            ))),
        }
    };
    let access_token = get("access_token")?.ok_or_else(|| {
        OidcError::InvalidResponse("the refresh answer has no access_token".into())
    })?;
    Ok(Refreshed {
        id_token: get("id_token")?,
        access_token,
        refresh_token: get("refresh_token")?,
        expires_in: expires_in(body),
    })
}

/// What userinfo said when asked again with an access token the daemon holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Recheck {
    /// The claims, about the expected subject.
    Claims(Value),
    /// HTTP 401: the provider no longer accepts the token.
    Refused,
}

/// Asks userinfo about `expected_sub` with `access_token`; a 401 is [`Recheck::Refused`] (the
/// caller knows whether the token should still have been good), any other failure an error.
pub fn userinfo(
    p: &Provider,
    d: &Discovered,
    access_token: &str,
    expected_sub: &str,
) -> Result<Recheck, OidcError> {
    let url = d.userinfo_endpoint.as_deref().ok_or_else(|| {
        OidcError::InvalidResponse("the provider has no userinfo_endpoint".into())
    })?;
    let (r, _) = http::get_bearer(&p.http, url, access_token, Instant::now() + REQUEST_BUDGET)?;
    if r.status == 401 {
        return Ok(Recheck::Refused);
    }
    if r.status != 200 {
        return Err(OidcError::from_body(r.status, &r.body));
    }
    super::userinfo::check_sub(&r.body, expected_sub)?;
    Ok(Recheck::Claims(r.body))
}

/// Whether `e` says the grant is gone (RFC 6749 §5.2 `invalid_grant`: the refresh token was
/// revoked, expired, or its user disabled): the identity is to be revoked, not retried.
pub fn is_revocation(e: &OidcError) -> bool {
    matches!(e, OidcError::Provider { error, .. } if error == "invalid_grant")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn discovered(scopes: Option<&[&str]>) -> Discovered {
        Discovered::for_tests(scopes.map(|s| s.iter().map(|x| x.to_string()).collect()))
    }

    fn provider_config(offline_access: bool) -> ProviderConfig {
        ProviderConfig {
            client_id: "c".into(),
            scopes: vec!["openid".into(), "email".into()],
            offline_access,
            ..ProviderConfig::for_tests("https://idp")
        }
    }

    /// `offline_access` is added only when configured and listed by the provider, and never
    /// twice.
    #[test]
    fn offline_access_only_where_listed() {
        let listed = discovered(Some(&["openid", "offline_access"]));
        assert_eq!(
            device_scope(&provider_config(true), &listed),
            "openid email offline_access"
        );
        assert_eq!(
            device_scope(&provider_config(false), &listed),
            "openid email"
        );
        let unlisted = discovered(Some(&["openid"]));
        assert_eq!(
            device_scope(&provider_config(true), &unlisted),
            "openid email"
        );
        assert_eq!(
            device_scope(&provider_config(true), &discovered(None)),
            "openid email"
        );
        let mut explicit = provider_config(true);
        explicit.scopes.push("offline_access".into());
        assert_eq!(
            device_scope(&explicit, &listed),
            "openid email offline_access"
        );
    }

    /// Answers with and without an ID token or a new refresh token; errors keep their code.
    #[test]
    fn refresh_answers() {
        let r = parse(
            200,
            &json!({"access_token": "a", "id_token": "x.y.z", "refresh_token": "r2", "expires_in": 300}),
        )
        .unwrap();
        assert_eq!(r.id_token.as_deref(), Some("x.y.z"));
        assert_eq!(r.refresh_token.as_deref(), Some("r2"));
        assert_eq!(r.expires_in, Some(300));
        let bare = parse(200, &json!({"access_token": "a", "expires_in": "60"})).unwrap();
        assert!(bare.id_token.is_none() && bare.refresh_token.is_none());
        assert_eq!(bare.expires_in, Some(60));
        assert!(parse(200, &json!({"id_token": "x.y.z"})).is_err());
        assert!(parse(200, &json!({"access_token": 5})).is_err());
        let gone = parse(400, &json!({"error": "invalid_grant"})).unwrap_err();
        assert!(is_revocation(&gone));
        let client = parse(401, &json!({"error": "invalid_client"})).unwrap_err();
        assert!(!is_revocation(&client));
        assert!(matches!(
            parse(503, &Value::Null),
            Err(OidcError::Unreachable(_))
        ));
    }

    /// No token reaches a Debug formatting.
    #[test]
    fn debug_hides_tokens() {
        let r = parse(
            200,
            &json!({"access_token": "AT-secret", "id_token": "IDT-secret", "refresh_token": "RT-secret"}),
        )
        .unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
