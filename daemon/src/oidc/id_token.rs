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
    /// Anything else: what kind of problem, and the details for the log.
    Rejected(Problem, String),
}

/// What is wrong with a refused token, in words a user can act on ([`Problem::user_message`]);
/// the details stay in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not a compact JWS, bad base64 or JSON, unsupported header parameters.
    Malformed,
    /// Signed with an algorithm not allowed (`none`, HMAC, or not in `login.allowed_algs`).
    Algorithm,
    /// Signed with a key the provider does not publish, even after fetching its keys again.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// Issued by another issuer.
    Issuer,
    /// Issued for another client.
    Audience,
    /// Expired.
    Expired,
    /// Not valid yet (`iat` or `nbf` in the future).
    NotYetValid,
    /// A required claim (`iss`, `aud`, `exp`, `iat`, `sub`) is missing.
    MissingClaim,
}

impl Problem {
    /// What the user is told.
    pub fn user_message(self) -> &'static str {
        match self {
            Self::Malformed => "the ID token is malformed",
            Self::Algorithm => "the ID token uses a signature algorithm this host does not accept",
            Self::UnknownKey => "the ID token is signed with a key the provider does not publish",
            Self::Signature => "the ID token's signature is not valid",
            Self::Issuer => "the ID token was issued by another provider",
            Self::Audience => "the ID token was issued for another client",
            Self::Expired => {
                "the ID token has expired (check the clocks of this host and the provider)"
            }
            Self::NotYetValid => {
                "the ID token is not valid yet (check the clocks of this host and the provider)"
            }
            Self::MissingClaim => "the ID token lacks a required claim",
        }
    }
}

impl Invalid {
    /// The problem, for the user.
    pub fn problem(&self) -> Problem {
        match self {
            Self::UnknownKey { .. } => Problem::UnknownKey,
            Self::Rejected(p, _) => *p,
        }
    }

    /// The details, for the log.
    pub fn detail(&self) -> &str {
        match self {
            Self::UnknownKey { message, .. } | Self::Rejected(_, message) => message,
        }
    }
}

impl From<Invalid> for OidcError {
    fn from(i: Invalid) -> Self {
        match i {
            Invalid::UnknownKey { message: m, .. } | Invalid::Rejected(_, m) => {
                OidcError::InvalidToken(m)
            }
        }
    }
}

fn reject(p: Problem, m: impl Into<String>) -> Invalid {
    Invalid::Rejected(p, m.into())
}

/// Validates `token` against `keys` and `expect`.
pub fn validate(token: &str, keys: &Keys, expect: &Expect<'_>) -> Result<Validated, Invalid> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(reject(Problem::Malformed, "ID token too large"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(
            Problem::Malformed,
            "ID token is not a compact JWS (encrypted or malformed)",
        ));
    };
    let header: Value = decode_json(h64, "header")?;
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(p64)
        .map_err(|_| reject(Problem::Malformed, "ID token payload is not base64url"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| reject(Problem::Malformed, "ID token signature is not base64url"))?;

    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| reject(Problem::Malformed, "ID token header has no alg"))?;
    if !expect.allowed_algs.iter().any(|a| a == alg_name) {
        return Err(reject(
            Problem::Algorithm,
            format!(
                "ID token signed with {alg_name}, not one of the allowed algorithms ({})",
                expect.allowed_algs.join(", ")
            ),
        ));
    }
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(alg_name.to_string()))
        .map_err(|_| {
            reject(
                Problem::Algorithm,
                format!("unsupported algorithm {alg_name}"),
            )
        })?;
    if alg.uses_shared_secret() || alg == CoreJwsSigningAlgorithm::None {
        return Err(reject(
            Problem::Algorithm,
            format!("algorithm {alg_name} is never accepted"),
        ));
    }
    if header.get("crit").is_some() {
        return Err(reject(
            Problem::Malformed,
            "ID token has critical header parameters we do not understand",
        ));
    }
    if let Some(cty) = header.get("cty") {
        return Err(reject(
            Problem::Malformed,
            format!("nested or typed JWT content ({cty}) is not supported"),
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let message_len = h64.len() + 1 + p64.len();
    let message = token
        .get(..message_len)
        .ok_or_else(|| reject(Problem::Malformed, "malformed token"))?
        .as_bytes();
    verify_signature(keys, kid, &alg, message, &signature)?;

    let claims: Value = serde_json::from_slice(&payload_bytes)
        .map_err(|_| reject(Problem::Malformed, "ID token payload is not JSON"))?;
    check_claims(&claims, expect)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject(Problem::MissingClaim, "ID token has no sub"))?
        .to_string();
    Ok(Validated { claims, sub })
}

fn decode_json(part: &str, what: &str) -> Result<Value, Invalid> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        reject(
            Problem::Malformed,
            format!("ID token {what} is not base64url"),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|_| reject(Problem::Malformed, format!("ID token {what} is not JSON")))
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
    Err(reject(
        Problem::Signature,
        match last {
            Some(SignatureVerificationError::CryptoError(m)) => {
                format!("bad ID token signature: {m}")
            }
            Some(e) => format!("bad ID token signature: {e}"),
            None => "bad ID token signature".into(),
        },
    ))
}

/// The claim checks of OpenID Connect Core §3.1.3.7 on the raw payload.
pub fn check_claims(claims: &Value, expect: &Expect<'_>) -> Result<(), Invalid> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| reject(Problem::MissingClaim, "ID token has no iss"))?;
    if iss != expect.issuer {
        return Err(reject(
            Problem::Issuer,
            format!("ID token issuer is {iss:?}, expected {:?}", expect.issuer),
        ));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(reject(Problem::MissingClaim, "ID token has no aud")),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(reject(
            Problem::Audience,
            format!(
                "ID token is for {audiences:?}, not for client {:?}",
                expect.client_id
            ),
        ));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp != expect.client_id => {
            return Err(reject(
                Problem::Audience,
                format!("ID token azp is {azp:?}, not client {:?}", expect.client_id),
            ));
        }
        Some(Value::String(_)) => {}
        None if audiences.len() > 1 => {
            return Err(reject(
                Problem::Audience,
                "ID token has several audiences but no azp",
            ));
        }
        None => {}
        Some(_) => return Err(reject(Problem::Malformed, "ID token azp is not a string")),
    }
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    // Times are the provider's numbers: a float far out of range saturates to i64::MIN or
    // MAX, so the differences below saturate too (fuzz/id_token found `now - exp` overflow).
    let exp = time("exp").ok_or_else(|| reject(Problem::MissingClaim, "ID token has no exp"))?;
    if expect.now - expect.skew >= exp {
        return Err(reject(
            Problem::Expired,
            format!("ID token expired {}s ago", expect.now.saturating_sub(exp)),
        ));
    }
    let iat = time("iat").ok_or_else(|| reject(Problem::MissingClaim, "ID token has no iat"))?;
    if iat > expect.now + expect.skew {
        return Err(reject(
            Problem::NotYetValid,
            format!(
                "ID token issued {}s in the future: check the clocks (login.clock_skew)",
                iat.saturating_sub(expect.now)
            ),
        ));
    }
    if let Some(nbf) = time("nbf") {
        if nbf > expect.now + expect.skew {
            return Err(reject(
                Problem::NotYetValid,
                format!(
                    "ID token not valid for another {}s",
                    nbf.saturating_sub(expect.now)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
