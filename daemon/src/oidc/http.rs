//! HTTP to the provider: one blocking client (the daemon runs on plain threads, never inside an
//! async runtime, where reqwest's blocking client would panic), no redirects, short timeouts,
//! bounded response bodies, and client authentication at the token endpoints.
//!
//! Every request has a deadline, and every body is read through one cap ([`MAX_BODY`]), also
//! the discovery document and the keys that openidconnect fetches ([`bounded_client`]): a
//! provider that answers slowly forever or sends a 100 MB answer costs at most the deadline and
//! 1 MiB.

use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant};

use openidconnect::url::form_urlencoded;
use openidconnect::{HttpRequest, HttpResponse, reqwest};
use serde_json::Value;

use super::OidcError;
use crate::config::{ClientAuth, ProviderConfig};

/// Largest response body read from the provider.
const MAX_BODY: u64 = 1024 * 1024;
/// Largest `ca_file` read (a full system bundle is about 200 KB).
const MAX_CA_FILE_LEN: u64 = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one request may take, whatever deadline its caller has.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The time a request may take: [`REQUEST_TIMEOUT`], or less when `deadline` is sooner. An
/// error when the deadline has passed.
pub fn time_left(url: &str, deadline: Instant) -> Result<Duration, OidcError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(10) {
        return Err(OidcError::Unreachable(format!(
            "{url}: no time left to ask (the provider's earlier answers took the whole budget)"
        )));
    }
    Ok(left.min(REQUEST_TIMEOUT))
}

/// POSTs a form to a token-style endpoint, authenticating as `auth` says, within `deadline`.
/// `client_id` is in the body whatever the authentication: RFC 6749 §2.3.1 allows it beside
/// HTTP Basic, and several providers refuse a device authorization or token request without it.
pub fn post_form(
    http: &reqwest::blocking::Client,
    p: &ProviderConfig,
    auth: ClientAuth,
    url: &str,
    params: &[(&str, &str)],
    deadline: Instant,
) -> Result<JsonResponse, OidcError> {
    let timeout = time_left(url, deadline)?;
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("client_id", &p.client_id));
    let mut req = http.post(url).header("Accept", "application/json");
    match (auth, &p.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
            let id: String = form_urlencoded::byte_serialize(p.client_id.as_bytes()).collect();
            let pw: String = form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
            req = req.basic_auth(id, Some(pw));
        }
        (ClientAuth::Post, Some(secret)) => form.push(("client_secret", secret.expose())),
        _ => {}
    }
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = req
        .header("Content-Type", "application/x-www-form-urlencoded")
        .timeout(timeout)
        .body(body)
        .send()
        .map_err(|e| transport(url, &e, timeout))?;
    read_json(url, resp, timeout)
}

/// GETs a JSON resource with a bearer token, within `deadline`.
pub fn get_bearer(
    http: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    deadline: Instant,
) -> Result<(JsonResponse, String), OidcError> {
    let timeout = time_left(url, deadline)?;
    let resp = http
        .get(url)
        .header("Accept", "application/json")
        .bearer_auth(token)
        .timeout(timeout)
        .send()
        .map_err(|e| transport(url, &e, timeout))?;
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
    Ok((read_json(url, resp, timeout)?, content_type))
}

fn read_json(
    url: &str,
    resp: reqwest::blocking::Response,
    timeout: Duration,
) -> Result<JsonResponse, OidcError> {
    let status = resp.status().as_u16();
    let html = is_html(resp.headers());
    let bytes = read_body(url, resp, timeout)?;
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
        Err(_) if html || bytes.first() == Some(&b'<') => {
            Err(OidcError::InvalidResponse(html_answer(url, status)))
        }
        Err(e) => Err(OidcError::InvalidResponse(format!(
            "{url}: HTTP {status} with a body that is not JSON ({e})"
        ))),
    }
}

/// Reads a body of at most [`MAX_BODY`] bytes; a longer one is refused without reading on.
fn read_body(
    url: &str,
    resp: reqwest::blocking::Response,
    timeout: Duration,
) -> Result<Vec<u8>, OidcError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large(url));
    }
    let mut bytes = Vec::new();
    resp.take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                || e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                    .is_some_and(reqwest::Error::is_timeout);
            if timed_out {
                OidcError::Unreachable(format!(
                    "{url}: no complete answer within {:.1}s",
                    timeout.as_secs_f64()
                ))
            } else {
                OidcError::Unreachable(format!("{url}: reading the answer: {}", chain(&e)))
            }
        })?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(too_large(url));
    }
    Ok(bytes)
}

fn too_large(url: &str) -> OidcError {
    OidcError::InvalidResponse(format!(
        "{url}: answer larger than {} KiB, not read",
        MAX_BODY / 1024
    ))
}

fn is_html(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"))
}

fn html_answer(url: &str, status: u16) -> String {
    format!(
        "{url}: HTTP {status} with an HTML page, not JSON (is the issuer URL right, or is a \
         proxy or login portal in the way?)"
    )
}

fn transport(url: &str, e: &reqwest::Error, timeout: Duration) -> OidcError {
    if e.is_timeout() {
        return OidcError::Unreachable(format!(
            "{url}: no complete answer within {:.1}s",
            timeout.as_secs_f64()
        ));
    }
    OidcError::Unreachable(format!("{url}: {}", chain(e)))
}

/// An error with its sources: they hold the useful part ("connection refused", "certificate
/// verify failed", "operation timed out").
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Why a request made for openidconnect (discovery, keys) failed.
#[derive(Debug)]
pub enum FetchError {
    /// Unreachable, too slow, or a transport error: the provider is unavailable.
    Transport(OidcError),
    /// The answer cannot be what was asked for (too large, an HTML page).
    Invalid(OidcError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) | Self::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl FetchError {
    /// The error as the rest of the daemon sees it.
    pub fn into_oidc(self) -> OidcError {
        match self {
            Self::Transport(e) | Self::Invalid(e) => e,
        }
    }
}

/// An HTTP client for openidconnect's own requests (discovery, keys), with the same rules as
/// the rest: all requests within `deadline`, bodies capped at [`MAX_BODY`], HTML refused.
pub fn bounded_client(
    http: &reqwest::blocking::Client,
    deadline: Instant,
) -> impl Fn(HttpRequest) -> Result<HttpResponse, FetchError> + '_ {
    move |request: HttpRequest| {
        let url = request.uri().to_string();
        let timeout = time_left(&url, deadline).map_err(FetchError::Transport)?;
        let mut req = reqwest::blocking::Request::try_from(request)
            .map_err(|e| FetchError::Invalid(OidcError::InvalidResponse(format!("{url}: {e}"))))?;
        *req.timeout_mut() = Some(timeout);
        let resp = http
            .execute(req)
            .map_err(|e| FetchError::Transport(transport(&url, &e, timeout)))?;
        let status = resp.status();
        let html = is_html(resp.headers());
        let mut builder = openidconnect::http::Response::builder().status(status);
        for (name, value) in resp.headers() {
            builder = builder.header(name, value);
        }
        let body = read_body(&url, resp, timeout).map_err(|e| match e {
            e @ OidcError::Unreachable(_) => FetchError::Transport(e),
            e => FetchError::Invalid(e),
        })?;
        if html && status.is_success() {
            return Err(FetchError::Invalid(OidcError::InvalidResponse(
                html_answer(&url, status.as_u16()),
            )));
        }
        builder
            .body(body)
            .map_err(|e| FetchError::Invalid(OidcError::InvalidResponse(format!("{url}: {e}"))))
    }
}
