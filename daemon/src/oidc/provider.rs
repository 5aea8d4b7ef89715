//! Discovery and signing keys, cached. Keys are fetched again when a token names a key we do
//! not have (rate-limited), so key rotation at the provider needs no restart.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, DeviceAuthorizationUrl, DiscoveryError, IssuerUrl, JsonWebKey,
    JsonWebKeySet, ProviderMetadata, reqwest,
};
use serde::{Deserialize, Serialize};

use super::OidcError;
use super::http::{FetchError, bounded_client};
use crate::config::{ClientAuth, ProviderConfig};
use crate::state::lock;

/// Discovery is reused this long before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Keys are not fetched again more often than this, whatever tokens claim.
const MIN_KEY_REFETCH: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceMeta {
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}

impl AdditionalProviderMetadata for DeviceMeta {}

type Meta = ProviderMetadata<
    DeviceMeta,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The signing keys.
pub type Keys = JsonWebKeySet<CoreJsonWebKey>;

/// What discovery told us.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The issuer, equal to the configured one.
    pub issuer: String,
    /// RFC 8628 device authorization endpoint.
    pub device_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Userinfo endpoint, if the provider has one.
    pub userinfo_endpoint: Option<String>,
    /// Where the keys are.
    pub jwks_uri: String,
    /// `scopes_supported`, when the provider lists them.
    pub scopes_supported: Option<Vec<String>>,
    /// The keys.
    pub keys: Keys,
    /// How the client authenticates at the device and token endpoints: as configured, else
    /// chosen from `token_endpoint_auth_methods_supported`.
    pub client_auth: ClientAuth,
    fetched: Instant,
    keys_fetched: Instant,
    /// Key ids still missing after the last fetch of the keys.
    missing_kids: Vec<String>,
}

/// A configured provider.
pub struct Provider {
    /// Its configuration.
    pub config: ProviderConfig,
    /// The HTTP client.
    pub http: reqwest::blocking::Client,
    cache: Mutex<Option<Discovered>>,
}

impl Provider {
    /// A provider from its configuration (nothing is fetched yet).
    pub fn new(config: ProviderConfig) -> Result<Self, OidcError> {
        let http = super::http::client(&config)?;
        Ok(Self {
            config,
            http,
            cache: Mutex::new(None),
        })
    }

    /// Discovery and keys, from the cache while fresh; fetched within `deadline` otherwise.
    pub fn discovered(&self, deadline: Instant) -> Result<Discovered, OidcError> {
        if let Some(d) = lock(&self.cache).as_ref() {
            if d.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let d = self.discover(deadline)?;
        *lock(&self.cache) = Some(d.clone());
        Ok(d)
    }

    /// Fetches the keys again because a token names key `kid`, which we do not have. Rate
    /// limited: a `kid` not seen before is always worth one fetch (the provider rotated its
    /// keys); otherwise at most one fetch every [`MIN_KEY_REFETCH`]. Within `deadline`.
    pub fn refresh_keys(
        &self,
        kid: Option<&str>,
        deadline: Instant,
    ) -> Result<Discovered, OidcError> {
        let mut d = self.discovered(deadline)?;
        let known_missing = kid.is_none_or(|k| d.missing_kids.iter().any(|m| m == k));
        if known_missing && d.keys_fetched.elapsed() < MIN_KEY_REFETCH {
            log::warn!(
                "signing key {} still unknown; keys were fetched {}s ago, not fetching again yet",
                kid.unwrap_or("(no kid)"),
                d.keys_fetched.elapsed().as_secs()
            );
            return Ok(d);
        }
        let uri = openidconnect::JsonWebKeySetUrl::new(d.jwks_uri.clone())
            .map_err(|e| OidcError::InvalidResponse(format!("jwks_uri: {e}")))?;
        d.keys = JsonWebKeySet::fetch(&uri, &bounded_client(&self.http, deadline))
            .map_err(discovery_error)?;
        d.keys_fetched = Instant::now();
        d.missing_kids.clear();
        if let Some(k) = kid {
            if !d
                .keys
                .keys()
                .iter()
                .any(|key| key.key_id().is_some_and(|id| id.as_str() == k))
            {
                d.missing_kids.push(k.to_string());
            }
        }
        log::info!(
            "signing keys fetched again from {} ({} keys) for key id {}",
            d.jwks_uri,
            d.keys.keys().len(),
            kid.unwrap_or("(none)")
        );
        *lock(&self.cache) = Some(d.clone());
        Ok(d)
    }

    /// Forgets discovery (configuration reload).
    pub fn forget(&self) {
        *lock(&self.cache) = None;
    }

    fn discover(&self, deadline: Instant) -> Result<Discovered, OidcError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        let meta = Meta::discover(&issuer, &bounded_client(&self.http, deadline))
            .map_err(discovery_error)?;
        if meta.issuer().as_str() != self.config.issuer {
            return Err(OidcError::InvalidResponse(format!(
                "discovery says the issuer is {:?}, the configuration says {:?}: they must be equal",
                meta.issuer().as_str(),
                self.config.issuer
            )));
        }
        let device = meta
            .additional_metadata()
            .device_authorization_endpoint
            .as_ref()
            .ok_or_else(|| {
                OidcError::InvalidResponse(
                    "the provider advertises no device_authorization_endpoint (enable the device \
                     authorization grant for this client)"
                        .into(),
                )
            })?;
        let token = meta.token_endpoint().ok_or_else(|| {
            OidcError::InvalidResponse("the provider advertises no token_endpoint".into())
        })?;
        let userinfo = meta.userinfo_endpoint().map(|u| u.as_str().to_string());
        check_endpoints(
            &self.config.issuer,
            &[
                ("device_authorization_endpoint", device.as_str()),
                ("token_endpoint", token.as_str()),
                ("jwks_uri", meta.jwks_uri().as_str()),
                ("userinfo_endpoint", userinfo.as_deref().unwrap_or("")),
            ],
        )?;
        let supported: Option<Vec<String>> =
            meta.token_endpoint_auth_methods_supported().map(|list| {
                list.iter()
                    .filter_map(|m| serde_json::to_value(m).ok()?.as_str().map(str::to_string))
                    .collect()
            });
        let client_auth = self.config.client_auth.unwrap_or_else(|| {
            ClientAuth::choose(self.config.client_secret.is_some(), supported.as_deref())
        });
        if self.config.client_auth.is_none() {
            log::info!(
                "{}: client authentication {} (chosen from the provider's \
                 token_endpoint_auth_methods_supported: {})",
                self.config.issuer,
                client_auth.as_str(),
                supported.as_deref().map_or_else(
                    || "not listed, so client_secret_basic".to_string(),
                    |s| s.join(", ")
                )
            );
        }
        let now = Instant::now();
        let d = Discovered {
            issuer: meta.issuer().as_str().to_string(),
            device_endpoint: device.as_str().to_string(),
            token_endpoint: token.as_str().to_string(),
            userinfo_endpoint: userinfo,
            jwks_uri: meta.jwks_uri().as_str().to_string(),
            scopes_supported: meta
                .scopes_supported()
                .map(|list| list.iter().map(|s| s.as_str().to_string()).collect()),
            keys: meta.jwks().clone(),
            client_auth,
            fetched: now,
            keys_fetched: now,
            missing_kids: Vec::new(),
        };
        log::info!(
            "discovered {}: device endpoint {}, {} signing keys",
            d.issuer,
            d.device_endpoint,
            d.keys.keys().len()
        );
        Ok(d)
    }
}

#[cfg(test)]
impl Discovered {
    /// Discovery of a provider at `https://idp` without keys (unit tests).
    pub(crate) fn for_tests(scopes_supported: Option<Vec<String>>) -> Self {
        let now = Instant::now();
        Self {
            issuer: "https://idp".into(),
            device_endpoint: "https://idp/device".into(),
            token_endpoint: "https://idp/token".into(),
            userinfo_endpoint: Some("https://idp/userinfo".into()),
            jwks_uri: "https://idp/jwks".into(),
            scopes_supported,
            keys: JsonWebKeySet::new(Vec::new()),
            client_auth: ClientAuth::None,
            fetched: now,
            keys_fetched: now,
            missing_kids: Vec::new(),
        }
    }
}

/// Endpoints from discovery must use the issuer's scheme: an https issuer whose token endpoint
/// is plain http would send the client secret and the tokens in clear. (With an http issuer,
/// allowed only on loopback by `insecure_http_issuer`, anything goes.) Empty means absent.
pub fn check_endpoints(issuer: &str, endpoints: &[(&str, &str)]) -> Result<(), OidcError> {
    if !issuer.starts_with("https://") {
        return Ok(());
    }
    for (name, url) in endpoints {
        if !url.is_empty() && !url.starts_with("https://") {
            return Err(OidcError::InvalidResponse(format!(
                "discovery names {name} {url:?}: not https, though the issuer is; refusing to \
                 send credentials or trust keys over it"
            )));
        }
    }
    Ok(())
}

fn discovery_error(e: DiscoveryError<FetchError>) -> OidcError {
    match e {
        DiscoveryError::Request(inner) => inner.into_oidc(),
        DiscoveryError::Response(status, _, m) if status.is_server_error() => {
            OidcError::Unreachable(format!("discovery: HTTP {status}: {m}"))
        }
        DiscoveryError::Parse(e) => OidcError::InvalidResponse(format!(
            "discovery: the answer is not a valid document: {e}"
        )),
        other => OidcError::InvalidResponse(format!("discovery: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An https issuer's endpoints must all be https; an http (loopback test) issuer's need not.
    #[test]
    fn endpoints_follow_the_issuer_scheme() {
        let ok = [
            ("token_endpoint", "https://idp/token"),
            ("userinfo_endpoint", ""),
        ];
        assert!(check_endpoints("https://idp", &ok).is_ok());
        for bad in ["http://idp/token", "ftp://idp/token", "//idp/token"] {
            let e = check_endpoints("https://idp", &[("token_endpoint", bad)]).unwrap_err();
            assert!(e.to_string().contains("not https"), "{e}");
        }
        assert!(
            check_endpoints(
                "http://127.0.0.1:9",
                &[("jwks_uri", "http://127.0.0.1:9/k")]
            )
            .is_ok()
        );
    }
}
