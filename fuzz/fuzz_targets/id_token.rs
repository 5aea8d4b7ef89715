//! ID-token validation with the unit tests' fixture keys (an RSA and an Ed25519 key). The first
//! byte picks the mode (modulo 3):
//! - 0: the rest is a token as a string. A fuzzer cannot forge a signature, so it is never
//!   accepted (the seeds hold no token signed by a fixture key, only by the attacker's key).
//! - 1: the rest is `header JSON \0 payload JSON`, signed here with the fixture Ed25519 key,
//!   so the claim checks run.
//! - 2: as 1, with a payload built from typed claims (the times as any i64, f64 or string),
//!   which reaches the time checks' edges far sooner than mutating JSON text.
//!
//! In modes 1 and 2 an accepted token meets every rule of OpenID Connect Core §3.1.3.7 that the
//! validator promises, checked here independently. `check_claims` also runs on the payload of
//! every mode directly.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use oidcd::oidc::id_token::{Expect, check_claims, validate};
use oidcd::oidc::provider::Keys;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::{Map, Value, json};

const ISS: &str = "https://idp.example.test/realms/corp";
const CLIENT: &str = "linux-login";
const NOW: i64 = 1_800_000_000;
const SKEW: i64 = 60;

const RSA_PEM: &str = include_str!("../../daemon/src/oidc/id_token/test-rsa.pem");
const ED_PEM: &str = include_str!("../../daemon/src/oidc/id_token/test-ed25519.pem");

static ED: LazyLock<CoreEdDsaPrivateSigningKey> = LazyLock::new(|| {
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(ED_PEM, Some(JsonWebKeyId::new("ed-1".into())))
        .expect("fixture key")
});

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let rsa = CoreRsaPrivateSigningKey::from_pem(RSA_PEM, Some(JsonWebKeyId::new("rsa-1".into())))
        .expect("fixture key");
    Keys::new(vec![rsa.as_verification_key(), ED.as_verification_key()])
});

static ALGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["RS256", "PS256", "ES256", "EdDSA"]
        .map(String::from)
        .to_vec()
});

fn expect() -> Expect<'static> {
    Expect {
        issuer: ISS,
        client_id: CLIENT,
        allowed_algs: &ALGS,
        now: NOW,
        skew: SKEW,
    }
}

/// A claim value of the kind providers send for times.
#[derive(Debug, Arbitrary)]
enum Num {
    Int(i64),
    Float(f64),
    Text(String),
    Absent,
}

/// The claims of a token: right or wrong issuer and audiences, any times, any extras.
#[derive(Debug, Arbitrary)]
struct Typed {
    iss_ok: bool,
    aud: Vec<bool>,
    aud_as_string: bool,
    azp: Option<bool>,
    sub: Option<String>,
    exp: Num,
    iat: Num,
    nbf: Num,
    extra: Vec<(String, String)>,
}

impl Typed {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        let who = |ok: bool| if ok { CLIENT } else { "other-client" };
        m.insert(
            "iss".into(),
            json!(if self.iss_ok {
                ISS
            } else {
                "https://evil.example"
            }),
        );
        let aud: Vec<&str> = self.aud.iter().map(|&ok| who(ok)).collect();
        match (self.aud_as_string, aud.first()) {
            (true, Some(a)) => m.insert("aud".into(), json!(a)),
            _ => m.insert("aud".into(), json!(aud)),
        };
        if let Some(ok) = self.azp {
            m.insert("azp".into(), json!(who(ok)));
        }
        if let Some(sub) = &self.sub {
            m.insert("sub".into(), json!(sub));
        }
        for (k, v) in [("exp", &self.exp), ("iat", &self.iat), ("nbf", &self.nbf)] {
            let v = match v {
                Num::Int(n) => json!(n),
                Num::Float(f) => json!(f),
                Num::Text(t) => json!(t),
                Num::Absent => continue,
            };
            m.insert(k.into(), v);
        }
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| json!(v));
        }
        Value::Object(m)
    }
}

fn time(claims: &Value, k: &str) -> Option<i64> {
    claims
        .get(k)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// What an accepted payload must say, checked without the validator's code.
fn assert_acceptable(claims: &Value) {
    assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISS));
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        other => panic!("accepted with aud {other:?}"),
    };
    assert!(aud.contains(&CLIENT), "{aud:?}");
    match claims.get("azp") {
        Some(v) => assert_eq!(v.as_str(), Some(CLIENT)),
        None => assert_eq!(aud.len(), 1, "several audiences and no azp"),
    }
    let exp = time(claims, "exp").expect("accepted without exp");
    assert!(exp > NOW - SKEW, "accepted expired at {exp}");
    let iat = time(claims, "iat").expect("accepted without iat");
    assert!(iat <= NOW + SKEW, "accepted issued at {iat}");
    if let Some(nbf) = time(claims, "nbf") {
        assert!(nbf <= NOW + SKEW, "accepted not before {nbf}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 3 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(v) = validate(token, &KEYS, &expect()) {
            panic!("accepted a token the fuzzer made up: {v:?}");
        }
        if let Some(payload) = token.split('.').nth(1) {
            if let Ok(claims) = URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(drop)
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(drop))
            {
                if check_claims(&claims, &expect()).is_ok() {
                    assert_acceptable(&claims);
                }
            }
        }
        return;
    }

    let typed;
    let (header, payload): (&[u8], &[u8]) = if mode % 3 == 1 {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        (&rest[..split], rest.get(split + 1..).unwrap_or_default())
    } else {
        let Ok(t) = Typed::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        typed = serde_json::to_vec(&t.to_json()).expect("JSON of a Value");
        (br#"{"alg":"EdDSA","kid":"ed-1"}"#, &typed)
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = ED
        .sign(&CoreJwsSigningAlgorithm::EdDsa, message.as_bytes())
        .expect("Ed25519 signs anything");
    let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));

    let claims = serde_json::from_slice::<Value>(payload).ok();
    if let Some(claims) = &claims {
        if check_claims(claims, &expect()).is_ok() {
            assert_acceptable(claims);
        }
    }
    let Ok(v) = validate(&token, &KEYS, &expect()) else {
        return;
    };
    let header: Value = serde_json::from_slice(header).expect("accepted with a non-JSON header");
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("EdDSA"));
    assert!(header.get("crit").is_none() && header.get("cty").is_none());
    if let Some(kid) = header.get("kid") {
        assert_eq!(kid.as_str(), Some("ed-1"));
    }
    let claims = claims.expect("accepted with a non-JSON payload");
    assert_eq!(v.claims, claims);
    assert_acceptable(&claims);
    assert!(!v.sub.is_empty());
    assert_eq!(
        claims.get("sub").and_then(Value::as_str),
        Some(v.sub.as_str())
    );

    // The accepted token with its last payload character changed must fail.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    if let Some(p) = parts.get_mut(1) {
        if let Some(c) = p.pop() {
            p.push(if c == 'A' { 'B' } else { 'A' });
            let tampered = parts.join(".");
            if let Ok(t) = validate(&tampered, &KEYS, &expect()) {
                // Only if the changed character decodes to the same bytes (it cannot: the
                // decoder refuses non-zero unused bits).
                assert_eq!(
                    URL_SAFE_NO_PAD.decode(&parts[1]).ok(),
                    Some(payload.to_vec())
                );
                assert_eq!(t, v);
            }
        }
    }
});
