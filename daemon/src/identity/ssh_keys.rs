//! SSH public keys from the provider's claims (`claims.ssh_keys_claim`), checked before sshd
//! sees them.
//!
//! The claim holds keys as `authorized_keys` lines without options: a string (one key per
//! line, as a Keycloak text attribute holds them), or a list of such strings (a multivalued
//! attribute). Each line must be `TYPE BASE64 [COMMENT]` with a type OpenSSH accepts for user
//! keys, whose base64 blob decodes and names the same type. Options (`command=`, `from=`,
//! `environment=`...) are refused, not passed on: whoever can edit the attribute at the
//! provider must not be able to change what sshd does with a key, only which keys there are.
//! sshd parses the key itself afterwards; this check keeps out what would confuse its parser or
//! widen what a key may do.

use base64::Engine;
use serde_json::Value;

use crate::config::ClaimPath;

/// Most keys served for one user (more are skipped, with a note).
pub const MAX_KEYS: usize = 32;
/// Longest key line accepted (a 16384-bit RSA key is about 2.8 KB).
pub const MAX_KEY_LEN: usize = 8 * 1024;
/// Longest comment kept (a longer one is cut).
const MAX_COMMENT_LEN: usize = 256;

/// Key types sshd accepts as user keys. DSA is left out (OpenSSH 9.8 removed it); certificates
/// belong in `TrustedUserCAKeys`, not in a list of keys.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The keys a claim holds, and what in it was not a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimedKeys {
    /// Well-formed keys, in claim order, without duplicates: `TYPE BASE64[ COMMENT]`.
    pub keys: Vec<String>,
    /// Entries skipped, each with why (for `oidcctl user keys` and the log).
    pub skipped: Vec<String>,
}

/// The keys in `claims` at `path` (none when `path` is `None` or the claim is absent).
pub fn from_claims(claims: &Value, path: Option<&ClaimPath>) -> ClaimedKeys {
    let mut out = ClaimedKeys::default();
    let Some(path) = path else {
        return out;
    };
    match path.find(claims) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.lines(s, &path.0),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.lines(s, &format!("{}[{i}]", path.0)),
                    other => out.skipped.push(format!(
                        "{}[{i}]: {} is not a key (a string is)",
                        path.0,
                        crate::identity::mapping::kind(other)
                    )),
                }
            }
        }
        Some(other) => out.skipped.push(format!(
            "{}: {} holds no keys (a string or a list of strings does)",
            path.0,
            crate::identity::mapping::kind(other)
        )),
    }
    out
}

impl ClaimedKeys {
    /// Adds the keys of one string (several lines allowed; blank and `#` lines are ignored).
    fn lines(&mut self, text: &str, at: &str) {
        for line in text.split(['\n', '\r']) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Err(why) => self.skipped.push(format!("{at}: {why}")),
                Ok(key) if self.keys.contains(&key) => {}
                Ok(_) if self.keys.len() >= MAX_KEYS => {
                    self.skipped.push(format!(
                        "{at}: more than {MAX_KEYS} keys; the rest are skipped"
                    ));
                    return;
                }
                Ok(key) => self.keys.push(key),
            }
        }
    }
}

/// One `authorized_keys` line without options, normalised: `TYPE BASE64[ COMMENT]`.
pub fn parse_line(line: &str) -> Result<String, String> {
    if line.len() > MAX_KEY_LEN {
        return Err(format!("longer than {MAX_KEY_LEN} bytes"));
    }
    let mut fields = line.split_ascii_whitespace();
    let ty = fields.next().unwrap_or_default();
    if !KEY_TYPES.contains(&ty) {
        return Err(if ty.contains('=') || ty.contains('"') {
            "starts with options (command=, from=...), which are not accepted from the provider"
                .to_string()
        } else {
            format!(
                "{:?} is not a key type sshd accepts for users ({})",
                shorten(ty),
                KEY_TYPES.join(", ")
            )
        });
    }
    let b64 = fields.next().ok_or("no key after the type")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the key is not base64 ({e})"))?;
    if blob_type(&blob) != Some(ty.as_bytes()) {
        return Err(format!("the key's data is not a {ty} key"));
    }
    let comment: String = fields
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_COMMENT_LEN)
        .collect();
    Ok(if comment.is_empty() {
        format!("{ty} {b64}")
    } else {
        format!("{ty} {b64} {comment}")
    })
}

/// The type name that opens an SSH public key blob (a big-endian u32 length, then the name).
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let len: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    blob.get(4..4usize.checked_add(len)?)
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFW2wBWAeYvmB2vU+4FWE34CUzFrrWnbEVYaeOAzAITF";
    const RSA_AS_ED: &str = "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7";

    fn path(p: &str) -> ClaimPath {
        ClaimPath(p.into())
    }

    /// A string holds one key per line; a list holds strings; comments are kept, cleaned.
    #[test]
    fn strings_and_lists() {
        let one = from_claims(
            &json!({ "k": format!("{ED} alice@laptop") }),
            Some(&path("k")),
        );
        assert_eq!(one.keys, vec![format!("{ED} alice@laptop")]);
        assert!(one.skipped.is_empty());
        let lines = from_claims(
            &json!({ "k": format!("# work\n{ED}\r\n\n{ED} again") }),
            Some(&path("k")),
        );
        assert_eq!(lines.keys, vec![ED.to_string(), format!("{ED} again")]);
        let list = from_claims(
            &json!({ "attrs": { "ssh": [ED, 7, format!("{ED}  a\tb")] } }),
            Some(&path("attrs.ssh")),
        );
        assert_eq!(list.keys, vec![ED.to_string(), format!("{ED} a b")]);
        assert_eq!(list.skipped.len(), 1, "{list:?}");
        assert!(list.skipped[0].starts_with("attrs.ssh[1]: a number"));
    }

    /// No claim configured, or none sent: no keys and nothing to report.
    #[test]
    fn absent() {
        assert_eq!(
            from_claims(&json!({ "k": ED }), None),
            ClaimedKeys::default()
        );
        assert_eq!(
            from_claims(&json!({}), Some(&path("k"))),
            ClaimedKeys::default()
        );
        let odd = from_claims(&json!({ "k": { "a": 1 } }), Some(&path("k")));
        assert!(odd.keys.is_empty());
        assert!(
            odd.skipped[0].contains("an object holds no keys"),
            "{odd:?}"
        );
    }

    /// Options, unknown types, bad base64, a blob of another type, an overlong line and
    /// control characters never reach sshd.
    #[test]
    fn hostile_lines_are_refused() {
        let b64 = ED.split(' ').nth(1).unwrap();
        for (line, why) in [
            (format!("command=\"/bin/sh\" {ED}"), "starts with options"),
            (format!("from=\"*\",no-pty {ED}"), "starts with options"),
            (format!("ssh-dss {b64}"), "not a key type"),
            (
                format!("ssh-ed25519-cert-v01@openssh.com {b64}"),
                "not a key type",
            ),
            ("ssh-ed25519".to_string(), "no key after the type"),
            ("ssh-ed25519 !!!".to_string(), "not base64"),
            (RSA_AS_ED.to_string(), "not a ssh-ed25519 key"),
            ("ssh-rsa AAAA".to_string(), "not a ssh-rsa key"),
            (format!("{ED} {}", "x".repeat(MAX_KEY_LEN)), "longer than"),
        ] {
            let err = parse_line(&line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        let cleaned = parse_line(&format!("{ED} a\u{1b}[2Jb")).unwrap();
        assert_eq!(cleaned, format!("{ED} a[2Jb"));
        // A line break inside a string starts another line: it can never carry options into
        // the same authorized_keys line as a key.
        let split = from_claims(
            &json!({ "k": format!("{ED}\ncommand=\"x\" {ED}") }),
            Some(&path("k")),
        );
        assert_eq!(split.keys, vec![ED.to_string()]);
        assert_eq!(split.skipped.len(), 1);
    }

    /// At most MAX_KEYS keys; duplicates count once.
    #[test]
    fn bounded_and_deduplicated() {
        let many: Vec<String> = (0..MAX_KEYS + 5).map(|i| format!("{ED} k{i}")).collect();
        let got = from_claims(&json!({ "k": many }), Some(&path("k")));
        assert_eq!(got.keys.len(), MAX_KEYS);
        assert!(got.skipped.iter().all(|s| s.contains("more than")));
        let dup = from_claims(&json!({ "k": [ED, ED] }), Some(&path("k")));
        assert_eq!(dup.keys.len(), 1);
    }
}
