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
use crate::config::ProviderConfig;
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
    /// The keys.
    pub keys: Keys,
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

    /// Discovery and keys, from the cache while fresh.
    pub fn discovered(&self) -> Result<Discovered, OidcError> {
        if let Some(d) = lock(&self.cache).as_ref() {
            if d.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let d = self.discover()?;
        *lock(&self.cache) = Some(d.clone());
        Ok(d)
    }

    /// Fetches the keys again because a token names key `kid`, which we do not have. Rate
    /// limited: a `kid` not seen before is always worth one fetch (the provider rotated its
    /// keys); otherwise at most one fetch every [`MIN_KEY_REFETCH`].
    pub fn refresh_keys(&self, kid: Option<&str>) -> Result<Discovered, OidcError> {
        let mut d = self.discovered()?;
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
        d.keys = JsonWebKeySet::fetch(&uri, &self.http).map_err(|e| discovery_error(&e))?;
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

    fn discover(&self) -> Result<Discovered, OidcError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        let meta = Meta::discover(&issuer, &self.http).map_err(|e| discovery_error(&e))?;
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
        let now = Instant::now();
        let d = Discovered {
            issuer: meta.issuer().as_str().to_string(),
            device_endpoint: device.as_str().to_string(),
            token_endpoint: token.as_str().to_string(),
            userinfo_endpoint: meta.userinfo_endpoint().map(|u| u.as_str().to_string()),
            jwks_uri: meta.jwks_uri().as_str().to_string(),
            keys: meta.jwks().clone(),
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

fn discovery_error<E: std::error::Error + 'static>(e: &DiscoveryError<E>) -> OidcError {
    match e {
        DiscoveryError::Request(inner) => {
            let mut msg = inner.to_string();
            let mut source = inner.source();
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            OidcError::Unreachable(msg)
        }
        DiscoveryError::Response(status, _, m) if status.is_server_error() => {
            OidcError::Unreachable(format!("discovery: HTTP {status}: {m}"))
        }
        other => OidcError::InvalidResponse(format!("discovery: {other}")),
    }
}
