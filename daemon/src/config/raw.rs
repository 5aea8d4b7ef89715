//! The file as written: every key optional, every value with its place in the file, unknown
//! keys refused by the parser. [`super::Config::from_toml`] turns this into a checked config.

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub provider: Option<Spanned<RawProvider>>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub issuer: S<String>,
    pub client_id: S<String>,
    pub client_secret: S<String>,
    pub client_secret_file: S<String>,
    pub client_auth: S<String>,
    pub scopes: S<Vec<String>>,
    pub ca_file: S<String>,
    pub insecure_http_issuer: S<bool>,
    pub offline_access: S<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaims {
    pub source: S<String>,
    pub username_claim: S<String>,
    pub groups_claim: S<String>,
    pub uid_claim: S<String>,
    pub gecos_claim: S<String>,
    pub email_claim: S<String>,
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
    pub uid_source: S<String>,
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
    pub ssh_programs: S<Vec<String>>,
    pub provisional_ttl: S<f64>,
    pub max_provisional_per_minute: S<i64>,
    pub max_provisional_entries: S<i64>,
    pub max_logins_in_progress: S<i64>,
    pub max_logins_per_source: S<i64>,
}
