//! The PAM prompt built from a daemon's (and so a provider's) login prompt: whatever the
//! fields hold, the text reaching the user's terminal has no control character but the line
//! breaks it puts there itself and no bidirectional control (Unicode Bidi_Control), keeps its
//! shape (QR, URL, code, host, Enter line) and never carries a QR over `MAX_QR_BYTES`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oidc_proto::types::LoginPrompt;
use pam_oidc::prompt::{MAX_QR_BYTES, PRESS_ENTER, clean, is_usable, login_prompt, url};

#[derive(Debug, Arbitrary)]
struct Fields {
    login_id: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    user_code: String,
    expires_in: u64,
    host: String,
    qr: Option<String>,
}

/// Unicode's Bidi_Control characters (Trojan Source, CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn assert_clean(text: &str, newlines: bool) {
    for c in text.chars() {
        if newlines && c == '\n' {
            continue;
        }
        assert!(!c.is_control() && !is_bidi_control(c), "{c:?} in {text:?}");
    }
}

fuzz_target!(|f: Fields| {
    let p = LoginPrompt {
        login_id: f.login_id,
        verification_uri: f.verification_uri,
        verification_uri_complete: f.verification_uri_complete,
        user_code: f.user_code,
        expires_in: f.expires_in,
        host: f.host,
        qr: f.qr,
    };
    for field in [&p.verification_uri, &p.user_code, &p.host, &p.login_id] {
        let c = clean(field);
        assert_clean(&c, false);
        assert_eq!(clean(&c), c, "clean is not idempotent");
    }
    let u = url(&p);
    assert!(
        std::ptr::eq(u, p.verification_uri.as_str())
            || Some(u) == p.verification_uri_complete.as_deref()
    );

    let text = login_prompt(&p, false, "sshd");
    assert_clean(&text, true);
    assert!(text.ends_with(PRESS_ENTER));
    let lines: Vec<&str> = text.split('\n').collect();
    let host = clean(&p.host);
    assert_eq!(lines.len(), if host.is_empty() { 3 } else { 4 }, "{text:?}");
    assert_eq!(lines[0], format!("Visit {}", clean(u)));
    assert_eq!(
        lines[1],
        format!("and enter the code: {}", clean(&p.user_code))
    );
    if !host.is_empty() {
        assert_eq!(lines[2], format!("to log in to {host}."));
        let sudo = login_prompt(&p, false, "sudo");
        assert_eq!(
            sudo.split('\n').nth(2),
            Some(format!("to approve sudo on {host}.").as_str())
        );
    }
    if is_usable(&p) {
        assert!(lines[0].len() > "Visit ".len());
        assert!(lines[1].len() > "and enter the code: ".len());
    }

    let with_qr = login_prompt(&p, true, "sshd");
    assert_clean(&with_qr, true);
    let qr = with_qr
        .strip_suffix(&text)
        .expect("the QR only adds lines before the text");
    if !qr.is_empty() {
        let qr = qr.strip_suffix('\n').expect("the QR ends its own line");
        assert!(qr.len() <= MAX_QR_BYTES, "QR of {} bytes", qr.len());
        assert!(!qr.trim().is_empty());
    }
});
