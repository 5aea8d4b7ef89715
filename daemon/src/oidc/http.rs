//! HTTP to the provider: one blocking client (the daemon runs on plain threads, never inside an
//! async runtime, where reqwest's blocking client would panic), no redirects, short timeouts,
//! bounded response bodies, and client authentication at the token endpoints.

use std::io::Read;
use std::time::Duration;

use openidconnect::reqwest;
use openidconnect::url::form_urlencoded;
use serde_json::Value;

use super::OidcError;
use crate::config::{ClientAuth, ProviderConfig};

/// Largest response body read from the provider.
const MAX_BODY: u64 = 1024 * 1024;
/// Largest `ca_file` read (a full system bundle is about 200 KB).
const MAX_CA_FILE_LEN: u64 = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the client: the system's trust store plus `ca_file`, redirects refused (a redirect
/// from a token endpoint is a misconfiguration or an attack, never something to follow).
pub fn client(p: &ProviderConfig) -> Result<reqwest::blocking::Client, OidcError> {
    let mut b = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("oidcd/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &p.ca_file {
        let pem = crate::small_file::read(path, MAX_CA_FILE_LEN).map_err(|e| {
            OidcError::Config(format!("cannot read ca_file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| OidcError::Config(format!("ca_file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(OidcError::Config(format!(
                "ca_file {} holds no certificate",
                path.display()
            )));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| OidcError::Config(format!("cannot build the HTTP client: {e}")))
}

/// An answer from the provider: status and JSON body (`Value::Null` when the body is empty).
pub struct JsonResponse {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

/// POSTs a form to a token-style endpoint with the configured client authentication.
pub fn post_form(
    http: &reqwest::blocking::Client,
    p: &ProviderConfig,
    url: &str,
    params: &[(&str, &str)],
) -> Result<JsonResponse, OidcError> {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let mut req = http.post(url).header("Accept", "application/json");
    match (p.client_auth, &p.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
            let id: String = form_urlencoded::byte_serialize(p.client_id.as_bytes()).collect();
            let pw: String = form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
            req = req.basic_auth(id, Some(pw));
        }
        (ClientAuth::Post, Some(secret)) => {
            form.push(("client_id", &p.client_id));
            form.push(("client_secret", secret.expose()));
        }
        _ => form.push(("client_id", &p.client_id)),
    }
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = req
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .map_err(|e| transport(url, &e))?;
    read_json(url, resp)
}

/// GETs a JSON resource with a bearer token.
pub fn get_bearer(
    http: &reqwest::blocking::Client,
    url: &str,
    token: &str,
) -> Result<(JsonResponse, String), OidcError> {
    let resp = http
        .get(url)
        .header("Accept", "application/json")
        .bearer_auth(token)
        .send()
        .map_err(|e| transport(url, &e))?;
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/jwt") {
        return Err(OidcError::InvalidResponse(format!(
            "{url} answered with a signed JWT (application/jwt); configure the provider to return plain JSON userinfo"
        )));
    }
    Ok((read_json(url, resp)?, content_type))
}

fn read_json(url: &str, resp: reqwest::blocking::Response) -> Result<JsonResponse, OidcError> {
    let status = resp.status().as_u16();
    let mut bytes = Vec::new();
    resp.take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OidcError::Unreachable(format!("{url}: reading the answer: {e}")))?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(OidcError::InvalidResponse(format!(
            "{url}: answer larger than {MAX_BODY} bytes"
        )));
    }
    if (300..400).contains(&status) {
        return Err(OidcError::InvalidResponse(format!(
            "{url}: unexpected redirect (HTTP {status})"
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonResponse {
            status,
            body: Value::Null,
        });
    }
    match serde_json::from_slice(&bytes) {
        Ok(body) => Ok(JsonResponse { status, body }),
        Err(_) if status >= 500 => Err(OidcError::Unreachable(format!("{url}: HTTP {status}"))),
        Err(e) => Err(OidcError::InvalidResponse(format!(
            "{url}: HTTP {status} with a body that is not JSON ({e})"
        ))),
    }
}

fn transport(url: &str, e: &reqwest::Error) -> OidcError {
    // The error chain holds the useful part ("connection refused", "certificate verify failed").
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    OidcError::Unreachable(format!("{url}: {msg}"))
}
