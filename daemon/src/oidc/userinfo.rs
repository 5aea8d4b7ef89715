//! The userinfo endpoint, and merging its claims with the ID token's.

use serde_json::Value;

use super::provider::{Discovered, Provider};
use super::{OidcError, http};
use crate::config::ClaimSource;

/// Claims that belong to the token itself and are never taken from userinfo.
const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "azp",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "acr",
    "amr",
    "jti",
    "sid",
];

/// Fetches userinfo with the access token. Its `sub` must equal the ID token's (OpenID
/// Connect Core §5.3.4): otherwise the answer may belong to someone else.
pub fn fetch(
    p: &Provider,
    d: &Discovered,
    access_token: &str,
    expected_sub: &str,
) -> Result<Value, OidcError> {
    let url = d.userinfo_endpoint.as_deref().ok_or_else(|| {
        OidcError::InvalidResponse(
            "claims.source needs userinfo but the provider has no userinfo_endpoint".into(),
        )
    })?;
    let deadline = std::time::Instant::now() + http::REQUEST_TIMEOUT;
    let (r, _) = http::get_bearer(&p.http, url, access_token, deadline)?;
    if r.status != 200 {
        return Err(OidcError::from_body(r.status, &r.body));
    }
    check_sub(&r.body, expected_sub)?;
    Ok(r.body)
}

/// Userinfo must be an object whose `sub` equals the ID token's.
pub fn check_sub(userinfo: &Value, expected_sub: &str) -> Result<(), OidcError> {
    if !userinfo.is_object() {
        return Err(OidcError::InvalidResponse(
            "userinfo is not a JSON object".into(),
        ));
    }
    // A number is compared in its decimal form: some providers (GitLab's numeric user ids)
    // send the same subject as a string in the ID token and a number in userinfo.
    let sub = match userinfo.get("sub") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    match sub {
        Some(s) if s == expected_sub => Ok(()),
        Some(s) => Err(OidcError::InvalidToken(format!(
            "userinfo is about sub {s:?}, the ID token about {expected_sub:?}"
        ))),
        None => Err(OidcError::InvalidToken("userinfo has no sub".into())),
    }
}

/// The claims mapping sees, by `claims.source`: the ID token's, userinfo's (with the ID
/// token's `sub`), or both with userinfo winning for everything but the token's own claims.
pub fn merge(source: ClaimSource, id_token: &Value, userinfo: Option<&Value>) -> Value {
    let mut out = match source {
        ClaimSource::Userinfo => serde_json::json!({}),
        ClaimSource::IdToken | ClaimSource::Both => id_token.clone(),
    };
    if source != ClaimSource::IdToken {
        if let (Some(Value::Object(ui)), Some(obj)) = (userinfo, out.as_object_mut()) {
            for (k, v) in ui {
                if !TOKEN_CLAIMS.contains(&k.as_str()) {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if let (Some(sub), Some(obj)) = (id_token.get("sub").cloned(), out.as_object_mut()) {
        obj.insert("sub".into(), sub);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Merging follows claims.source; the ID token's sub always wins.
    #[test]
    fn merge_by_source() {
        let id = json!({"sub": "a", "iss": "i", "groups": ["x"], "name": "A"});
        let ui = json!({"sub": "a", "groups": ["y"], "email": "a@x", "iss": "evil"});
        assert_eq!(
            merge(ClaimSource::IdToken, &id, Some(&ui))["groups"],
            json!(["x"])
        );
        let both = merge(ClaimSource::Both, &id, Some(&ui));
        assert_eq!(both["groups"], json!(["y"]));
        assert_eq!(both["name"], json!("A"));
        assert_eq!(both["iss"], json!("i"));
        let only = merge(ClaimSource::Userinfo, &id, Some(&ui));
        assert_eq!(only.get("name"), None);
        assert_eq!(only["email"], json!("a@x"));
        assert_eq!(only["sub"], json!("a"));
    }

    /// Userinfo about someone else is refused.
    #[test]
    fn sub_must_match() {
        assert!(check_sub(&json!({"sub": "a"}), "a").is_ok());
        assert!(matches!(
            check_sub(&json!({"sub": "b"}), "a"),
            Err(OidcError::InvalidToken(_))
        ));
        assert!(check_sub(&json!({"name": "x"}), "a").is_err());
        // GitLab-style numeric subject: the same number is the same subject, another is not.
        assert!(check_sub(&json!({"sub": 12345}), "12345").is_ok());
        assert!(check_sub(&json!({"sub": 12346}), "12345").is_err());
        assert!(check_sub(&json!({"sub": 1.5}), "1.5").is_err());
        assert!(check_sub(&json!(["a"]), "a").is_err());
    }
}
