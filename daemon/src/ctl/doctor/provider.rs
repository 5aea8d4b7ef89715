//! The provider: discovery reachable and consistent with the configuration, and this host's
//! clock against the provider's `Date` header.

use std::io::Read;
use std::time::Duration;

use openidconnect::reqwest;
use serde_json::Value;

use super::Report;
use crate::clock::Clock;
use crate::config::{Config, ProviderConfig};
use crate::oidc::{Provider, http};

/// Largest discovery document read.
const MAX_BODY: u64 = 1024 * 1024;
/// A clock difference above this (but within `login.clock_skew`) is worth a warning: the Date
/// header has one-second resolution, and the request itself takes a moment.
const CLOCK_WARN_SECS: i64 = 10;

/// Every configured provider in turn; with several, each finding names the provider's id.
pub(super) fn check(r: &mut Report, config: &Config) {
    let several = config.providers.len() > 1;
    for p in &config.providers {
        let mut one = Report::default();
        check_one(&mut one, config, p);
        for mut f in one.findings {
            if several {
                f.message = format!("{}: {}", p.id, f.message);
            }
            r.findings.push(f);
        }
    }
}

/// Discovery fetched by hand (for the `Date` header and the lists it advertises), then the
/// daemon's own discovery with its checks (issuer, device endpoint, keys).
fn check_one(r: &mut Report, config: &Config, p: &ProviderConfig) {
    const P: &str = "provider";
    let http = match http::client(p) {
        Ok(h) => h,
        Err(e) => {
            r.error(
                P,
                e.to_string(),
                "fix provider.ca_file (a PEM file of CA certificates)",
            );
            return;
        }
    };
    let url = format!(
        "{}/.well-known/openid-configuration",
        p.issuer.trim_end_matches('/')
    );
    let resp = match http.get(&url).header("Accept", "application/json").send() {
        Ok(resp) => resp,
        Err(e) => {
            r.error(
                P,
                format!("{url}: {}", error_chain(&e)),
                "check DNS, routes, proxies and firewalls from this host (curl -v URL); for a \
                 provider behind a private CA set provider.ca_file",
            );
            return;
        }
    };
    let now = Clock::system().now();
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    check_clock(r, date.as_deref(), now, config.login.clock_skew);
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    if let Err(e) = resp.take(MAX_BODY).read_to_end(&mut body) {
        r.error(
            P,
            format!("{url}: reading the answer: {e}"),
            "try again; check the provider",
        );
        return;
    }
    if status != 200 {
        r.error(
            P,
            format!("{url}: HTTP {status}"),
            "check provider.issuer: it must be exactly the issuer the provider announces",
        );
        return;
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        r.error(
            P,
            format!("{url}: the answer is not JSON"),
            "check provider.issuer: it must point at an OpenID Connect provider",
        );
        return;
    };
    check_discovery_document(r, config, p, &doc);

    // The daemon's own discovery: issuer match, device endpoint, token endpoint and keys.
    let deadline = std::time::Instant::now() + crate::auth::login::START_BUDGET;
    match Provider::new(p.clone()).and_then(|prov| prov.discovered(deadline)) {
        Ok(d) => r.ok(
            P,
            format!(
                "{} discovered: device endpoint {}, {} signing key(s), client authentication {}",
                d.issuer,
                d.device_endpoint,
                d.keys.keys().len(),
                d.client_auth.as_str()
            ),
        ),
        Err(e) => r.error(
            P,
            e.to_string(),
            "compare provider.issuer with the provider's own issuer (a trailing slash counts), \
             and enable the device authorization grant for this client",
        ),
    }
}

/// What the discovery document says about our configuration: algorithms, grant, scopes.
fn check_discovery_document(r: &mut Report, config: &Config, p: &ProviderConfig, doc: &Value) {
    const P: &str = "provider";
    let strings = |key: &str| -> Option<Vec<String>> {
        doc.get(key)?.as_array().map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    };
    if let Some(algs) = strings("id_token_signing_alg_values_supported") {
        let allowed = &config.login.allowed_algs;
        if !algs.iter().any(|a| allowed.contains(a)) {
            r.error(
                P,
                format!(
                    "the provider signs ID tokens with {algs:?}, none of login.allowed_algs {allowed:?}"
                ),
                "add the provider's algorithm to login.allowed_algs",
            );
        }
    }
    if let Some(grants) = strings("grant_types_supported") {
        if !grants
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code")
        {
            r.warn(
                P,
                "the provider does not list the device authorization grant in grant_types_supported",
                "enable the OAuth 2.0 Device Authorization Grant for this client at the provider",
            );
        }
    }
    if let Some(supported) = strings("scopes_supported") {
        let unknown: Vec<&String> = p.scopes.iter().filter(|s| !supported.contains(s)).collect();
        if !unknown.is_empty() {
            r.warn(
                P,
                format!("the provider does not list the scope(s) {unknown:?} in scopes_supported"),
                "remove them from provider.scopes if the provider refuses the device authorization",
            );
        }
    }
}

/// Compares the local clock (`now`, Unix seconds) with the provider's `Date` header.
fn check_clock(r: &mut Report, date: Option<&str>, now: i64, tolerance: Duration) {
    const T: &str = "clock";
    let fix = "synchronise the clock: timedatectl set-ntp true (systemd-timesyncd or chrony)";
    let Some(date) = date else {
        r.warn(
            T,
            "the provider sent no Date header: clock not checked",
            fix,
        );
        return;
    };
    let Some(theirs) = parse_http_date(date) else {
        r.warn(
            T,
            format!("cannot read the provider's Date header {date:?}"),
            fix,
        );
        return;
    };
    let diff = now - theirs;
    let way = if diff > 0 { "ahead of" } else { "behind" };
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if diff.abs() > tol {
        r.error(
            T,
            format!(
                "this host's clock is {} s {way} the provider's, more than login.clock_skew \
                 ({tol} s): ID tokens would be refused",
                diff.abs()
            ),
            fix,
        );
    } else if diff.abs() > CLOCK_WARN_SECS {
        r.warn(
            T,
            format!("this host's clock is {} s {way} the provider's", diff.abs()),
            fix,
        );
    } else {
        r.ok(
            T,
            format!("within {CLOCK_WARN_SECS} s of the provider's clock"),
        );
    }
}

/// Parses an HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// form RFC 9110 lets servers send, into Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_once(", ")?.1.split(' ');
    let day: i64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// An error and its sources, joined: the useful part ("certificate verify failed") is deep.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;

    /// HTTP dates from RFC 9110 and around leap days convert to the right Unix time.
    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date(""), None);
    }

    /// A clock off by more than login.clock_skew is an error, a little off a warning.
    #[test]
    fn clock_skew_findings() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let t = 784_111_777;
        let sev = |now: i64| {
            let mut r = Report::default();
            check_clock(&mut r, Some(date), now, Duration::from_secs(60));
            r.findings[0].severity
        };
        assert_eq!(sev(t + 2), Severity::Ok);
        assert_eq!(sev(t - 30), Severity::Warning);
        assert_eq!(sev(t + 61), Severity::Error);
        let mut r = Report::default();
        check_clock(&mut r, None, t, Duration::from_secs(60));
        assert_eq!(r.findings[0].severity, Severity::Warning);
    }

    fn test_provider() -> ProviderConfig {
        ProviderConfig::for_tests("https://idp.example.com")
    }

    /// The discovery document's algorithms must meet login.allowed_algs.
    #[test]
    fn algorithms_must_overlap() {
        let config = Config::default();
        let p = test_provider();
        let mut r = Report::default();
        check_discovery_document(
            &mut r,
            &config,
            &p,
            &serde_json::json!({"id_token_signing_alg_values_supported": ["HS256"]}),
        );
        assert_eq!(r.count(Severity::Error), 1);
        let mut r = Report::default();
        check_discovery_document(
            &mut r,
            &config,
            &p,
            &serde_json::json!({"id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["authorization_code"]}),
        );
        assert_eq!(
            (r.count(Severity::Error), r.count(Severity::Warning)),
            (0, 1)
        );
    }
}
