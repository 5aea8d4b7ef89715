//! ID-token validation (OpenID Connect Core §3.1.3.7), fail closed.
//!
//! The signature is checked with openidconnect's key implementations (ring underneath); the
//! claims are checked here on the raw JSON payload, because mapping needs the claims as the
//! provider sent them (nested paths, URL-named keys, providers' quirks) and a typed parse would
//! reject tokens for harmless oddities in claims we never use.
//!
//! Accepted only: a compact JWS whose `alg` is in the allow-list (asymmetric algorithms only:
//! never `none`, never HMAC), signed by a key from the provider's JWKS, with `iss` equal to
//! the configured issuer, `aud` containing the client id (and `azp` equal to it when present
//! or when there are several audiences), `exp` in the future and `iat`/`nbf` not in the future,
//! all with the configured clock skew.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JwsSigningAlgorithm, SignatureVerificationError,
};
use serde_json::Value;

use super::OidcError;
use super::provider::Keys;

/// Largest ID token accepted.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// What validation needs besides the token.
pub struct Expect<'a> {
    /// The configured issuer.
    pub issuer: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// Allowed `alg` values.
    pub allowed_algs: &'a [String],
    /// Now, Unix seconds.
    pub now: i64,
    /// Tolerated clock difference, seconds.
    pub skew: i64,
}

/// A validated token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The payload as sent.
    pub claims: Value,
    /// `sub`.
    pub sub: String,
}

/// Why validation failed: a key we do not know (worth fetching the keys again) or anything
/// else (final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The token names a key that is not in the set.
    UnknownKey {
        /// The `kid` the token names, if any.
        kid: Option<String>,
        /// What was looked for.
        message: String,
    },
    /// Anything else.
    Rejected(String),
}

impl From<Invalid> for OidcError {
    fn from(i: Invalid) -> Self {
        match i {
            Invalid::UnknownKey { message: m, .. } | Invalid::Rejected(m) => {
                OidcError::InvalidToken(m)
            }
        }
    }
}

fn reject(m: impl Into<String>) -> Invalid {
    Invalid::Rejected(m.into())
}

/// Validates `token` against `keys` and `expect`.
pub fn validate(token: &str, keys: &Keys, expect: &Expect<'_>) -> Result<Validated, Invalid> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(reject("ID token too large"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(
            "ID token is not a compact JWS (encrypted or malformed)",
        ));
    };
    let header: Value = decode_json(h64, "header")?;
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(p64)
        .map_err(|_| reject("ID token payload is not base64url"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| reject("ID token signature is not base64url"))?;

    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("ID token header has no alg"))?;
    if !expect.allowed_algs.iter().any(|a| a == alg_name) {
        return Err(reject(format!(
            "ID token signed with {alg_name}, not one of the allowed algorithms ({})",
            expect.allowed_algs.join(", ")
        )));
    }
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(alg_name.to_string()))
        .map_err(|_| reject(format!("unsupported algorithm {alg_name}")))?;
    if alg.uses_shared_secret() || alg == CoreJwsSigningAlgorithm::None {
        return Err(reject(format!("algorithm {alg_name} is never accepted")));
    }
    if header.get("crit").is_some() {
        return Err(reject(
            "ID token has critical header parameters we do not understand",
        ));
    }
    if let Some(cty) = header.get("cty") {
        return Err(reject(format!(
            "nested or typed JWT content ({cty}) is not supported"
        )));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let message_len = h64.len() + 1 + p64.len();
    let message = token
        .get(..message_len)
        .ok_or_else(|| reject("malformed token"))?
        .as_bytes();
    verify_signature(keys, kid, &alg, message, &signature)?;

    let claims: Value = serde_json::from_slice(&payload_bytes)
        .map_err(|_| reject("ID token payload is not JSON"))?;
    check_claims(&claims, expect)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject("ID token has no sub"))?
        .to_string();
    Ok(Validated { claims, sub })
}

fn decode_json(part: &str, what: &str) -> Result<Value, Invalid> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| reject(format!("ID token {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| reject(format!("ID token {what} is not JSON")))
}

fn verify_signature(
    keys: &Keys,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Invalid> {
    let usable = |k: &&CoreJsonWebKey| {
        let kid_ok = match kid {
            Some(kid) => k.key_id().is_some_and(|id| id.as_str() == kid),
            None => true,
        };
        let use_ok = k
            .key_use()
            .is_none_or(|u| serde_json::to_value(u).ok() == Some(Value::String("sig".into())));
        let alg_ok = match k.signing_alg() {
            JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Unsupported => false,
        };
        kid_ok && use_ok && alg_ok && alg.key_type().is_some_and(|t| *k.key_type() == t)
    };
    let candidates: Vec<&CoreJsonWebKey> = keys.keys().iter().filter(usable).collect();
    if candidates.is_empty() {
        return Err(Invalid::UnknownKey {
            kid: kid.map(str::to_string),
            message: format!(
                "no signing key {} for {alg:?} among the provider's {} keys",
                kid.map_or_else(|| "(no kid)".to_string(), |k| format!("{k:?}")),
                keys.keys().len()
            ),
        });
    }
    let mut last = None;
    for key in candidates {
        match key.verify_signature(alg, message, signature) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(reject(match last {
        Some(SignatureVerificationError::CryptoError(m)) => format!("bad ID token signature: {m}"),
        Some(e) => format!("bad ID token signature: {e}"),
        None => "bad ID token signature".into(),
    }))
}

/// The claim checks of OpenID Connect Core §3.1.3.7 on the raw payload.
pub fn check_claims(claims: &Value, expect: &Expect<'_>) -> Result<(), Invalid> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("ID token has no iss"))?;
    if iss != expect.issuer {
        return Err(reject(format!(
            "ID token issuer is {iss:?}, expected {:?}",
            expect.issuer
        )));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(reject("ID token has no aud")),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(reject(format!(
            "ID token is for {audiences:?}, not for client {:?}",
            expect.client_id
        )));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp != expect.client_id => {
            return Err(reject(format!(
                "ID token azp is {azp:?}, not client {:?}",
                expect.client_id
            )));
        }
        Some(Value::String(_)) => {}
        None if audiences.len() > 1 => {
            return Err(reject("ID token has several audiences but no azp"));
        }
        None => {}
        Some(_) => return Err(reject("ID token azp is not a string")),
    }
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    // Times are the provider's numbers: a float far out of range saturates to i64::MIN or
    // MAX, so the differences below saturate too (fuzz/id_token found `now - exp` overflow).
    let exp = time("exp").ok_or_else(|| reject("ID token has no exp"))?;
    if expect.now - expect.skew >= exp {
        return Err(reject(format!(
            "ID token expired {}s ago",
            expect.now.saturating_sub(exp)
        )));
    }
    let iat = time("iat").ok_or_else(|| reject("ID token has no iat"))?;
    if iat > expect.now + expect.skew {
        return Err(reject(format!(
            "ID token issued {}s in the future: check the clocks (login.clock_skew)",
            iat.saturating_sub(expect.now)
        )));
    }
    if let Some(nbf) = time("nbf") {
        if nbf > expect.now + expect.skew {
            return Err(reject(format!(
                "ID token not valid for another {}s",
                nbf.saturating_sub(expect.now)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
