//! The text of the one prompt a device-flow login shows.
//!
//! ```text
//! <QR code, when there is one and it is shown (`args::Qr`)>
//! Visit https://idp.example.com/device?user_code=WDJB-MJHT
//! and enter the code: WDJB-MJHT
//! to log in to web01.example.com.
//! Press Enter after you have approved the login.
//! ```
//!
//! For sudo and su the third line says what is approved: `to approve sudo on
//! web01.example.com.`, so that a user asked for a code while already logged in knows it is
//! not a login somewhere else.
//!
//! - Everything is in one prompt: sshd holds `PAM_TEXT_INFO` back until the next prompt
//!   (OpenSSH bug 2876), so text sent on its own would never reach an SSH user before the wait.
//! - The QR code comes first and the text last, so in an 80x24 terminal a tall QR scrolls away
//!   and the URL and code stay on screen (ICS-MU/pam_oauth2_device#14).
//! - URL and code are always there as text (RFC 8628 §3.3.1), also when the QR is shown: many
//!   SSH clients mangle non-ASCII prompt text.
//! - The host name lets a user recognise a code phished from another machine.
//! - The fields come from the daemon and, before it, the identity provider: control characters
//!   (a terminal escape sequence, a line break inside the URL) and bidirectional overrides (which
//!   make one URL look like another) are removed before they reach the user's terminal.

use oidc_proto::types::LoginPrompt;

/// The last line of the prompt.
pub const PRESS_ENTER: &str = "Press Enter after you have approved the login.";

/// A QR code longer than this (in bytes, after cleaning) is left out: it cannot fit a terminal,
/// and the text lines still say everything.
pub const MAX_QR_BYTES: usize = 16 * 1024;

/// The prompt for `prompt` in PAM service `service`, with the QR code unless `show_qr` is
/// false.
pub fn login_prompt(prompt: &LoginPrompt, show_qr: bool, service: &str) -> String {
    let mut text = String::new();
    if let Some(qr) = prompt.qr.as_deref().filter(|_| show_qr).and_then(clean_qr) {
        text.push_str(&qr);
        text.push('\n');
    }
    text.push_str("Visit ");
    text.push_str(&clean(url(prompt)));
    text.push_str("\nand enter the code: ");
    text.push_str(&clean(&prompt.user_code));
    text.push('\n');
    let host = clean(&prompt.host);
    if !host.is_empty() {
        text.push_str(&purpose(service));
        text.push_str(&host);
        text.push_str(".\n");
    }
    text.push_str(PRESS_ENTER);
    text
}

/// What the approval is for, before the host name: logging in, or running sudo or su (which
/// ask people who are already logged in).
fn purpose(service: &str) -> String {
    match service {
        "sudo" | "sudo-i" => "to approve sudo on ".into(),
        "su" | "su-l" => "to approve su on ".into(),
        _ => "to log in to ".into(),
    }
}

/// The URL shown as text: the one with the code filled in when the provider sent one (it saves
/// typing), else the plain one. The code is shown beside it either way.
pub fn url(prompt: &LoginPrompt) -> &str {
    match prompt.verification_uri_complete.as_deref() {
        Some(complete) if !clean(complete).is_empty() => complete,
        _ => &prompt.verification_uri,
    }
}

/// True if the prompt has what a user needs: a URL and a code that survive cleaning.
pub fn is_usable(prompt: &LoginPrompt) -> bool {
    !clean(url(prompt)).is_empty() && !clean(&prompt.user_code).is_empty()
}

/// `text` without control characters (line breaks included) and bidirectional controls, for
/// one line of the prompt or an error message.
pub fn clean(text: &str) -> String {
    text.chars().filter(|&c| is_displayable(c)).collect()
}

/// The QR code's lines, each cleaned, without trailing empty lines; `None` if nothing is left
/// or it is too big.
fn clean_qr(qr: &str) -> Option<String> {
    let lines: Vec<String> = qr.lines().map(clean).collect();
    let used = lines.iter().rposition(|l| !l.trim().is_empty())?;
    let qr = lines[..=used].join("\n");
    (qr.len() <= MAX_QR_BYTES).then_some(qr)
}

fn is_displayable(c: char) -> bool {
    // Unicode's Bidi_Control set: U+061C (Arabic letter mark) and U+200E/U+200F marks,
    // U+202A..U+202E embeddings and overrides, U+2066..U+2069 isolates.
    let bidi = matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    );
    !c.is_control() && !bidi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> LoginPrompt {
        LoginPrompt {
            login_id: "l-1".into(),
            verification_uri: "https://idp.example.com/device".into(),
            verification_uri_complete: Some(
                "https://idp.example.com/device?user_code=WDJB-MJHT".into(),
            ),
            user_code: "WDJB-MJHT".into(),
            expires_in: 600,
            host: "web01.example.com".into(),
            qr: Some("█▀▀█\n█▄▄█\n".into()),
        }
    }

    /// The exact shape: QR first, then the URL, the code, the host and the Enter line.
    #[test]
    fn exact_shape_with_qr() {
        assert_eq!(
            login_prompt(&prompt(), true, "sshd"),
            "█▀▀█\n\
             █▄▄█\n\
             Visit https://idp.example.com/device?user_code=WDJB-MJHT\n\
             and enter the code: WDJB-MJHT\n\
             to log in to web01.example.com.\n\
             Press Enter after you have approved the login."
        );
    }

    /// sudo and su say what is approved, on which host; other services say "log in".
    #[test]
    fn sudo_and_su_name_themselves() {
        for (service, line) in [
            ("sudo", "to approve sudo on web01.example.com."),
            ("sudo-i", "to approve sudo on web01.example.com."),
            ("su", "to approve su on web01.example.com."),
            ("login", "to log in to web01.example.com."),
            ("", "to log in to web01.example.com."),
        ] {
            let text = login_prompt(&prompt(), false, service);
            assert_eq!(text.lines().nth(2), Some(line), "{service}");
        }
    }

    /// `noqr` (show_qr false) leaves the QR out and nothing else changes.
    #[test]
    fn noqr_removes_only_the_qr() {
        assert_eq!(
            login_prompt(&prompt(), false, "sshd"),
            "Visit https://idp.example.com/device?user_code=WDJB-MJHT\n\
             and enter the code: WDJB-MJHT\n\
             to log in to web01.example.com.\n\
             Press Enter after you have approved the login."
        );
        let with = login_prompt(&prompt(), true, "sshd");
        assert!(with.ends_with(&login_prompt(&prompt(), false, "sshd")));
    }

    /// Without a complete URI (or a QR from the daemon) the plain URI is shown and the QR is
    /// absent even when allowed.
    #[test]
    fn plain_uri_and_no_qr_from_daemon() {
        let p = LoginPrompt {
            verification_uri_complete: None,
            qr: None,
            ..prompt()
        };
        assert_eq!(
            login_prompt(&p, true, "sshd"),
            "Visit https://idp.example.com/device\n\
             and enter the code: WDJB-MJHT\n\
             to log in to web01.example.com.\n\
             Press Enter after you have approved the login."
        );
    }

    /// An empty host drops only the host line; an empty complete URI falls back to the plain one.
    #[test]
    fn empty_fields() {
        let p = LoginPrompt {
            host: String::new(),
            verification_uri_complete: Some(String::new()),
            qr: Some("\n \n".into()),
            ..prompt()
        };
        assert_eq!(
            login_prompt(&p, true, "sshd"),
            "Visit https://idp.example.com/device\n\
             and enter the code: WDJB-MJHT\n\
             Press Enter after you have approved the login."
        );
    }

    /// Escape sequences, line breaks and bidi overrides from the provider never reach the
    /// terminal, in any field.
    #[test]
    fn hostile_fields_are_cleaned() {
        let p = LoginPrompt {
            verification_uri_complete: Some("https://evil\u{1b}[2J.example/\u{202e}moc\n".into()),
            user_code: "AB\rCD\u{7}".into(),
            host: "web\u{0}01".into(),
            qr: Some("██\u{1b}]0;x\u{7}\r\n██".into()),
            ..prompt()
        };
        let text = login_prompt(&p, true, "sshd");
        assert!(
            !text.chars().any(|c| c != '\n' && !is_displayable(c)),
            "{text:?}"
        );
        assert!(
            text.contains("Visit https://evil[2J.example/moc\n"),
            "{text:?}"
        );
        assert!(text.contains("and enter the code: ABCD\n"), "{text:?}");
        assert!(text.contains("to log in to web01.\n"), "{text:?}");
        assert!(text.starts_with("██]0;x\n██\nVisit"), "{text:?}");
    }

    /// fuzz/login_prompt: U+061C ARABIC LETTER MARK, a bidirectional control like the
    /// overrides, is removed from every field too.
    #[test]
    fn fuzz_arabic_letter_mark_is_cleaned() {
        assert_eq!(clean("v\u{61c}pl"), "vpl");
        let p = LoginPrompt {
            verification_uri_complete: Some("https://idp.example\u{61c}/device".into()),
            user_code: "v\u{61c}pl".into(),
            host: "web\u{61c}01".into(),
            qr: Some("\u{61c}██".into()),
            ..prompt()
        };
        let text = login_prompt(&p, true, "sshd");
        assert!(!text.contains('\u{61c}'), "{text:?}");
        assert!(text.contains("and enter the code: vpl\n"), "{text:?}");
    }

    /// Every line but the QR fits an 80-column terminal for a typical provider.
    #[test]
    fn text_lines_are_short() {
        for line in login_prompt(&prompt(), false, "sshd").lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
    }

    /// A QR too big for any terminal is dropped; the text stays.
    #[test]
    fn huge_qr_is_dropped() {
        let p = LoginPrompt {
            qr: Some("█".repeat(MAX_QR_BYTES)),
            ..prompt()
        };
        assert_eq!(
            login_prompt(&p, true, "sshd"),
            login_prompt(&p, false, "sshd")
        );
    }

    /// A prompt without a usable URL or code is not usable.
    #[test]
    fn usability() {
        assert!(is_usable(&prompt()));
        let no_code = LoginPrompt {
            user_code: "\u{1b}".into(),
            ..prompt()
        };
        assert!(!is_usable(&no_code));
        let no_url = LoginPrompt {
            verification_uri: String::new(),
            verification_uri_complete: None,
            ..prompt()
        };
        assert!(!is_usable(&no_url));
    }
}
