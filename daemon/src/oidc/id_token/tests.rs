//! Tokens signed here with test keys (fixtures in this folder, test-only) against the
//! validator: every rule of OpenID Connect Core §3.1.3.7 that we enforce, and the attacks the
//! allow-list exists for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://idp.example.test/realms/corp";
const CLIENT: &str = "linux-login";
const NOW: i64 = 1_800_000_000;

fn rsa(kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(
        include_str!("test-rsa.pem"),
        Some(JsonWebKeyId::new(kid.into())),
    )
    .unwrap()
}

fn attacker_rsa(kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(
        include_str!("test-rsa-attacker.pem"),
        Some(JsonWebKeyId::new(kid.into())),
    )
    .unwrap()
}

fn ed25519(kid: &str) -> CoreEdDsaPrivateSigningKey {
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(
        include_str!("test-ed25519.pem"),
        Some(JsonWebKeyId::new(kid.into())),
    )
    .unwrap()
}

fn keys() -> Keys {
    Keys::new(vec![
        rsa("rsa-1").as_verification_key(),
        ed25519("ed-1").as_verification_key(),
    ])
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": CLIENT, "sub": "alice", "exp": NOW + 300, "iat": NOW - 5, "preferred_username": "alice"})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign(
    key: &impl PrivateSigningKey<VerificationKey = CoreJsonWebKey>,
    alg: CoreJwsSigningAlgorithm,
    header: &Value,
    claims: &Value,
) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(&alg, msg.as_bytes()).unwrap();
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn rs256(claims: &Value) -> String {
    sign(
        &rsa("rsa-1"),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
        claims,
    )
}

fn allowed() -> Vec<String> {
    ["RS256", "PS256", "ES256", "EdDSA"]
        .map(String::from)
        .to_vec()
}

fn check(token: &str) -> Result<Validated, Invalid> {
    let algs = allowed();
    validate(
        token,
        &keys(),
        &Expect {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: &algs,
            now: NOW,
            skew: 60,
        },
    )
}

fn rejected(token: &str, why: &str) {
    match check(token) {
        Err(Invalid::Rejected(_, m)) => assert!(m.contains(why), "expected {why:?} in {m:?}"),
        other => panic!("expected a rejection mentioning {why:?}, got {other:?}"),
    }
}

/// A well-formed RS256 token validates and its claims come back as sent.
#[test]
fn valid_rs256() {
    let v = check(&rs256(&claims())).unwrap();
    assert_eq!(v.sub, "alice");
    assert_eq!(v.claims["preferred_username"], "alice");
}

/// PS256 and EdDSA tokens validate too.
#[test]
fn valid_ps256_and_eddsa() {
    let ps = sign(
        &rsa("rsa-1"),
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        &json!({"alg": "PS256", "kid": "rsa-1"}),
        &claims(),
    );
    assert!(check(&ps).is_ok());
    let ed = sign(
        &ed25519("ed-1"),
        CoreJwsSigningAlgorithm::EdDsa,
        &json!({"alg": "EdDSA", "kid": "ed-1"}),
        &claims(),
    );
    assert!(check(&ed).is_ok());
}

/// A token signed by a key that is not the provider's fails, even with the provider's kid.
#[test]
fn forged_signature() {
    let t = sign(
        &attacker_rsa("rsa-1"),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        &json!({"alg": "RS256", "kid": "rsa-1"}),
        &claims(),
    );
    rejected(&t, "bad ID token signature");
}

/// A claim changed after signing breaks the signature.
#[test]
fn tampered_payload() {
    let t = rs256(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("root");
    let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    rejected(&forged, "bad ID token signature");
}

/// `alg: none` and HMAC (with the public key as secret) are refused before any key is used.
#[test]
fn none_and_hmac_are_refused() {
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims()));
    rejected(&none, "not one of the allowed algorithms");
    let hs = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256", "kid": "rsa-1"})),
        b64(&claims()),
        "c2ln"
    );
    rejected(&hs, "not one of the allowed algorithms");
    // Even if an administrator lists HS256, it is never accepted.
    let algs = vec!["HS256".to_string()];
    let r = validate(
        &hs,
        &keys(),
        &Expect {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: &algs,
            now: NOW,
            skew: 60,
        },
    );
    assert!(
        matches!(r, Err(Invalid::Rejected(_, ref m)) if m.contains("never accepted")),
        "{r:?}"
    );
}

/// An algorithm valid in general but not in the allow-list is refused.
#[test]
fn alg_not_allowed() {
    let algs = vec!["ES256".to_string()];
    let r = validate(
        &rs256(&claims()),
        &keys(),
        &Expect {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: &algs,
            now: NOW,
            skew: 60,
        },
    );
    assert!(
        matches!(r, Err(Invalid::Rejected(_, ref m)) if m.contains("RS256")),
        "{r:?}"
    );
}

/// A kid that is not in the key set asks for a key refresh rather than failing for good.
#[test]
fn unknown_kid_asks_for_new_keys() {
    let t = sign(
        &rsa("rotated-2"),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        &json!({"alg": "RS256", "kid": "rotated-2"}),
        &claims(),
    );
    assert!(matches!(check(&t), Err(Invalid::UnknownKey { .. })));
    // After the refresh, the new key validates it.
    let algs = allowed();
    let fresh = Keys::new(vec![rsa("rotated-2").as_verification_key()]);
    assert!(
        validate(
            &t,
            &fresh,
            &Expect {
                issuer: ISS,
                client_id: CLIENT,
                allowed_algs: &algs,
                now: NOW,
                skew: 60
            }
        )
        .is_ok()
    );
}

/// A key of the wrong type for the header's algorithm is never used.
#[test]
fn key_type_must_match_alg() {
    let t = sign(
        &rsa("ed-1"),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        &json!({"alg": "RS256", "kid": "ed-1"}),
        &claims(),
    );
    assert!(matches!(check(&t), Err(Invalid::UnknownKey { .. })));
}

/// Issuer, audience and azp must name us.
#[test]
fn iss_aud_azp() {
    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    rejected(&rs256(&c), "issuer");
    let mut c = claims();
    c["iss"] = json!(format!("{ISS}/"));
    rejected(&rs256(&c), "issuer");
    let mut c = claims();
    c["aud"] = json!("another-client");
    rejected(&rs256(&c), "not for client");
    let mut c = claims();
    c["aud"] = json!([CLIENT, "other"]);
    rejected(&rs256(&c), "no azp");
    c["azp"] = json!("other");
    rejected(&rs256(&c), "azp");
    c["azp"] = json!(CLIENT);
    assert!(check(&rs256(&c)).is_ok());
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    rejected(&rs256(&c), "no aud");
}

/// exp, iat and nbf are enforced with the configured skew.
#[test]
fn times_with_skew() {
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    rejected(&rs256(&c), "expired");
    c["exp"] = json!(NOW - 30);
    assert!(check(&rs256(&c)).is_ok(), "within skew");
    let mut c = claims();
    c["iat"] = json!(NOW + 120);
    rejected(&rs256(&c), "future");
    let mut c = claims();
    c["nbf"] = json!(NOW + 120);
    rejected(&rs256(&c), "not valid for another");
    c["nbf"] = json!(NOW + 30);
    assert!(check(&rs256(&c)).is_ok(), "within skew");
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    rejected(&rs256(&c), "no exp");
}

/// fuzz/id_token: times far outside i64 (a float exp of -2.2e304 saturates to i64::MIN) are
/// rejected with a message, not an overflow panic while writing "expired ...s ago".
#[test]
fn fuzz_out_of_range_times_are_rejected() {
    let c = json!({"aud": "linux-login", "exp": -2.200060398172847e+304, "iat": 0,
        "iss": "https://idp.example.test/realms/corp", "nbf": 0});
    rejected(&rs256(&c), "expired");
    let mut c = claims();
    c["exp"] = json!(i64::MIN);
    rejected(&rs256(&c), "expired");
    let mut c = claims();
    c["iat"] = json!(f64::MAX);
    rejected(&rs256(&c), "future");
    c["iat"] = json!(NOW);
    c["nbf"] = json!(i64::MAX);
    rejected(&rs256(&c), "not valid for another");
}

/// Garbage of every shape is a rejection, never a panic.
#[test]
fn malformed_tokens() {
    for t in [
        "",
        "a",
        "a.b",
        "a.b.c.d.e",
        "!!!.???.***",
        "e30.e30.e30",
        &"x".repeat(100_000),
    ] {
        assert!(check(t).is_err(), "{t:.20}");
    }
    let no_sub = {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        rs256(&c)
    };
    rejected(&no_sub, "no sub");
    let crit = sign(
        &rsa("rsa-1"),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
        &claims(),
    );
    rejected(&crit, "critical");
}
