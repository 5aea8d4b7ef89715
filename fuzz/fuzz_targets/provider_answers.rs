//! What a provider answers at its device authorization, token, userinfo and JWKS endpoints, as
//! the daemon reads each body (JSON, or nothing). The first byte picks the endpoint (modulo 4),
//! the next two the HTTP status, the rest is the body.
//!
//! Properties: nothing panics; an accepted device authorization carries only a plain code and
//! plain http(s) URLs (they reach a user's terminal) with bounded lifetimes; an approval comes
//! only from a 200 with both tokens; no error's text carries a control character (it reaches
//! the log and the user's screen); userinfo is accepted only about the expected subject, and
//! merging it never changes the ID token's subject or its token claims.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidcd::config::ClaimSource;
use oidcd::oidc::device::{Poll, parse_authorization, parse_poll};
use oidcd::oidc::provider::Keys;
use oidcd::oidc::userinfo::{check_sub, merge};
use serde_json::{Value, json};

fn plain(text: &str, what: &str) {
    assert!(!text.chars().any(char::is_control), "{what}: {text:?}");
}

fn plain_url(u: &str) {
    assert!(u.starts_with("https://") || u.starts_with("http://"), "{u:?}");
    assert!(u.len() <= 2048 && u.chars().all(|c| c.is_ascii_graphic()), "{u:?}");
}

fuzz_target!(|data: &[u8]| {
    let [which, hi, lo, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]);
    // As oidc::http reads an answer: blank is null, anything else must be JSON.
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    match which % 4 {
        0 => match parse_authorization(&value) {
            Ok(a) => {
                assert!(!a.user_code.is_empty() && a.user_code.len() <= 64);
                assert!(a.user_code.chars().all(|c| c.is_ascii_graphic() || c == ' '));
                plain_url(&a.verification_uri);
                if let Some(u) = &a.verification_uri_complete {
                    plain_url(u);
                }
                assert!(a.expires_in >= Duration::from_secs(1));
                assert!(a.expires_in <= Duration::from_secs(3600));
                assert!(a.interval.is_none_or(|i| i <= Duration::from_secs(60)));
            }
            Err(e) => plain(&e.to_string(), "authorization error"),
        },
        1 => match parse_poll(status, &value) {
            Ok(Poll::Approved(t)) => {
                assert_eq!(status, 200);
                assert!(!t.id_token.is_empty() && !t.access_token.is_empty());
            }
            Ok(_) => assert_ne!(status, 200),
            Err(e) => plain(&e.to_string(), "token error"),
        },
        2 => {
            let id_token = json!({"sub": "alice", "iss": "https://idp", "aud": "c", "exp": 1});
            match check_sub(&value, "alice") {
                Ok(()) => assert_eq!(value["sub"], "alice"),
                Err(e) => plain(&e.to_string(), "userinfo error"),
            }
            for source in [ClaimSource::IdToken, ClaimSource::Userinfo, ClaimSource::Both] {
                let merged = merge(source, &id_token, Some(&value));
                assert_eq!(merged["sub"], "alice", "{source:?}");
                if source != ClaimSource::Userinfo {
                    for k in ["iss", "aud", "exp"] {
                        assert_eq!(merged[k], id_token[k], "{source:?} {k}");
                    }
                }
            }
        }
        _ => {
            let _ = serde_json::from_value::<Keys>(value);
        }
    }
});
