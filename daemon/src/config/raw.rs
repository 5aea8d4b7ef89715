//! The file as written: every key optional, every value with its place in the file, unknown
//! keys refused by the parser. [`super::Config::from_toml`] turns this into a checked config.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

pub(crate) type S<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub provider: Option<Spanned<RawProviders>>,
    pub claims: Option<RawClaims>,
    pub access: Option<RawAccess>,
    pub mapping: Option<RawMapping>,
    pub cache: Option<RawCache>,
    pub login: Option<RawLogin>,
    pub refresh: Option<super::refresh::RawRefresh>,
    pub offline: Option<super::offline::RawOffline>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    pub log_level: S<String>,
}

/// `[provider]` (one table) or `[[provider]]` (an array of tables, several providers).
#[derive(Debug)]
pub(crate) enum RawProviders {
    One(Box<RawProvider>),
    Many(Vec<Spanned<RawProvider>>),
}

impl<'de> Deserialize<'de> for RawProviders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawProviders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [provider] table or [[provider]] tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawProvider::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| RawProviders::One(Box::new(p)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawProviders::Many)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub id: S<String>,
    pub issuer: S<String>,
    pub client_id: S<String>,
    pub client_secret: S<String>,
    pub client_secret_file: S<String>,
    pub client_auth: S<String>,
    pub scopes: S<Vec<String>>,
    pub ca_file: S<String>,
    pub insecure_http_issuer: S<bool>,
    pub offline_access: S<bool>,
    /// This provider's own `[provider.claims]`, over `[claims]`.
    pub claims: Option<RawClaims>,
    /// `[provider.access]`, over `[access]`.
    pub access: Option<RawAccess>,
    /// `[provider.mapping]`, over `[mapping]`.
    pub mapping: Option<RawMapping>,
}

/// A string, or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaims {
    pub source: S<String>,
    pub username_claim: S<String>,
    pub groups_claim: S<OneOrMany>,
    pub uid_claim: S<String>,
    pub gid_claim: S<String>,
    pub gecos_claim: S<String>,
    pub email_claim: S<String>,
    pub domain_claim: S<String>,
    pub ssh_keys_claim: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccess {
    pub allowed_groups: S<Vec<String>>,
    pub allowed_email_domains: S<Vec<String>>,
    pub require_email_verified: S<bool>,
    pub admin_groups: S<Vec<String>>,
    pub admin_local_groups: S<Vec<String>>,
    pub link_by_email: S<bool>,
    pub max_login_age_days: S<i64>,
    pub ignore_group_case: S<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    pub lowercase_names: S<bool>,
    pub strip_suffixes: S<Vec<String>>,
    pub group_prefix: S<String>,
    pub group_strip_prefixes: S<Vec<String>>,
    pub groups_include: S<Vec<String>>,
    pub groups_exclude: S<Vec<String>>,
    pub group_path: S<String>,
    pub group_names: S<BTreeMap<String, String>>,
    pub user_prefix: S<String>,
    pub user_suffix: S<String>,
    pub uid_source: S<String>,
    pub gid_source: S<String>,
    pub uid_min: S<i64>,
    pub uid_max: S<i64>,
    pub gid_min: S<i64>,
    pub gid_max: S<i64>,
    pub home: S<String>,
    pub shell: S<String>,
    pub allow_names: S<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub positive_ttl: S<i64>,
    pub negative_ttl: S<i64>,
    pub enumerate: S<bool>,
    pub socket_path: S<String>,
    pub db_path: S<String>,
    pub nss_map: S<bool>,
    pub nss_map_ttl: S<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogin {
    pub timeout: S<f64>,
    pub default_poll_interval: S<f64>,
    pub clock_skew: S<f64>,
    pub allowed_algs: S<Vec<String>>,
    pub qr: S<bool>,
    pub ssh_first_login: S<bool>,
    pub ssh_first_uid: S<String>,
    pub ssh_programs: S<Vec<String>>,
    pub provisional_ttl: S<f64>,
    pub max_provisional_per_minute: S<i64>,
    pub max_provisional_entries: S<i64>,
    pub max_logins_in_progress: S<i64>,
    pub max_logins_per_source: S<i64>,
}
