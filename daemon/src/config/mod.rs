//! `/etc/oidcd/oidcd.toml`: parsed into [`raw`] (every value with its place in the file), then
//! checked into a [`Config`]. Nothing is silently replaced by a default: a bad value is an error
//! naming the file, line, column and key, and the daemon refuses to start.
//!
//! Every option is documented in `packaging/config/oidcd.toml`, which a unit test parses.

mod error;
mod offline;
mod providers;
mod raw;
mod refresh;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use error::Reporter;
pub use error::{ConfigError, ConfigErrors};
pub use offline::OfflineConfig;
pub use providers::{DEFAULT_PROVIDER_ID, RouteError};
use raw::RawConfig;
pub use refresh::RefreshConfig;
use validate::Validator;

/// Everything the daemon needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// `[daemon]`.
    pub log_level: log::LevelFilter,
    /// `[provider]`, or every `[[provider]]` in file order; empty until an issuer is configured
    /// (lookups of known users still work). Each carries its own effective claims, access and
    /// mapping rules: see [`Config::scoped`].
    pub providers: Vec<ProviderConfig>,
    /// `[claims]`.
    pub claims: ClaimsConfig,
    /// `[access]`.
    pub access: AccessConfig,
    /// `[mapping]`.
    pub mapping: MappingConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[login]`.
    pub login: LoginConfig,
    /// Keys that are accepted but no longer do anything, each with what replaced it: logged
    /// at start and printed by `--check-config`.
    pub notices: Vec<String>,
    /// `[refresh]`.
    pub refresh: RefreshConfig,
    /// `[offline]`.
    pub offline: OfflineConfig,
}

/// A value that must not reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the provider or the store.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the daemon authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
    /// A public client: `client_id` only.
    None,
}

impl ClientAuth {
    /// The method for a client with or without a secret, from the methods the provider lists
    /// in `token_endpoint_auth_methods_supported` (`None`: it lists none, and RFC 8414 then
    /// means `client_secret_basic`). A client without a secret is public whatever is listed;
    /// with one, Basic is preferred and `client_secret_post` used when Basic is not listed.
    pub fn choose(has_secret: bool, supported: Option<&[String]>) -> Self {
        if !has_secret {
            return Self::None;
        }
        let listed = |m: &str| supported.is_none_or(|s| s.iter().any(|x| x == m));
        if !listed("client_secret_basic") && listed("client_secret_post") {
            Self::Post
        } else {
            Self::Basic
        }
    }

    /// The method's name in OAuth metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// `[provider]`, or one `[[provider]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Its name in logs, `oidcctl` and the configuration (`id`; [`DEFAULT_PROVIDER_ID`] when
    /// a single `[provider]` has none).
    pub id: String,
    /// The issuer URL exactly as the provider states it.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// Client secret, from `client_secret` or `client_secret_file`.
    pub client_secret: Option<Secret>,
    /// Token endpoint authentication as configured; `None`: chosen from the provider's
    /// `token_endpoint_auth_methods_supported` at discovery ([`ClientAuth::choose`]).
    pub client_auth: Option<ClientAuth>,
    /// Scopes requested in the device authorization request.
    pub scopes: Vec<String>,
    /// An extra trust anchor (PEM) for the provider's TLS certificate.
    pub ca_file: Option<PathBuf>,
    /// Plain `http://` issuer on a loopback address (tests and demos only).
    pub insecure_http_issuer: bool,
    /// Add `offline_access` to the scopes when the provider lists it, to get a refresh token.
    pub offline_access: bool,
    /// `[claims]` with this provider's `[provider.claims]` over it.
    pub claims: ClaimsConfig,
    /// `[access]` with `[provider.access]` over it.
    pub access: AccessConfig,
    /// `[mapping]` with `[provider.mapping]` over it.
    pub mapping: MappingConfig,
}

/// Where claims are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimSource {
    /// Only the ID token.
    IdToken,
    /// Only the userinfo endpoint (its `sub` must equal the ID token's).
    Userinfo,
    /// Both, userinfo values winning.
    Both,
}

/// A claim name or a dotted path into nested objects (`realm_access.roles`). Keys that contain
/// dots themselves (`https://example.com/claims/groups`) are matched whole first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(pub String);

impl ClaimPath {
    /// Finds the value in `claims`: at each level the longest run of segments that is a key.
    pub fn find<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        let segments: Vec<&str> = self.0.split('.').collect();
        find_path(claims, &segments)
    }
}

fn find_path<'a>(value: &'a serde_json::Value, segments: &[&str]) -> Option<&'a serde_json::Value> {
    if segments.is_empty() {
        return Some(value);
    }
    let obj = value.as_object()?;
    (1..=segments.len()).rev().find_map(|n| {
        let key = segments.get(..n)?.join(".");
        let next = obj.get(&key)?;
        find_path(next, segments.get(n..)?)
    })
}

/// `[claims]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsConfig {
    /// Where claims come from.
    pub source: ClaimSource,
    /// The claim that becomes the Unix name.
    pub username: ClaimPath,
    /// The claims holding the user's groups, combined in this order (Keycloak: `groups`,
    /// `realm_access.roles`, `resource_access.<client>.roles`).
    pub groups: Vec<ClaimPath>,
    /// The numeric claim used as UID when `mapping.uid_source = "claim"`.
    pub uid: Option<ClaimPath>,
    /// The object claim giving each provider group's GID (`{"group": 5001, ...}`, keyed by the
    /// group as the groups claim names it) when `mapping.gid_source = "claim"`.
    pub gid: Option<ClaimPath>,
    /// The claim that becomes the GECOS field.
    pub gecos: ClaimPath,
    /// The claim holding the email address.
    pub email: ClaimPath,
    /// A claim naming the user's domain (Google's `hd`), checked by
    /// `access.allowed_email_domains` instead of the email address's domain.
    pub domain: Option<ClaimPath>,
    /// The claim holding the user's SSH public keys (a string, one key per line, or a list of
    /// them), served to sshd's `AuthorizedKeysCommand`; `None`: no keys are served.
    pub ssh_keys: Option<ClaimPath>,
}

/// `[access]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// Provider groups allowed to log in; empty means everyone the provider authenticates.
    pub allowed_groups: Vec<String>,
    /// Email domains allowed to log in; empty means any.
    pub allowed_email_domains: Vec<String>,
    /// Refuse users whose email is not verified.
    pub require_email_verified: bool,
    /// Provider groups whose members get `admin_local_groups`.
    pub admin_groups: Vec<String>,
    /// Local groups (from /etc/group) given to members of `admin_groups`.
    pub admin_local_groups: Vec<String>,
    /// Let an existing local account whose name equals the mapped name log in when the
    /// provider says the email (local part = name) is verified. Off: only `oidcctl link`.
    pub link_by_email: bool,
    /// Days after a user's last login through the provider after which the PAM account check
    /// refuses them (SSH keys, sudo, su) until they log in through the provider again, for
    /// users oidcd does not refresh (no refresh token, or `[refresh]` off); 0: no limit.
    pub max_login_age_days: u32,
    /// Compare provider group names in `allowed_groups` and `admin_groups` without regard to
    /// ASCII case.
    pub ignore_group_case: bool,
}

/// How a provider group path (`org/team/sub`) becomes a Unix name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPath {
    /// As it is: a `/` makes the name invalid, and the group is skipped (logged).
    Keep,
    /// Every `/` becomes `-` (`org/team/sub` is `org-team-sub`); a leading `/` is dropped.
    Dash,
    /// The last segment (`org/team/sub` is `sub`).
    Last,
}

/// How UIDs are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidSource {
    /// A hash of issuer and subject into the range, probing past collisions.
    Hash,
    /// A numeric claim (`claims.uid_claim`).
    Claim,
}

/// How provider groups' GIDs are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GidSource {
    /// A hash of issuer and group, as for UIDs.
    Hash,
    /// The group's entry in an object claim (`claims.gid_claim`).
    Claim,
}

/// What a first login over SSH ends with when sshd holds a provisional UID that is not the
/// identity's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFirstUid {
    /// The account is created with the identity's fleet UID and this login is refused: the
    /// user connects again (the same UID on every host).
    Fleet,
    /// The user keeps the provisional UID, hashed from the name (one login, but another UID
    /// than other hosts give).
    Provisional,
}

/// An inclusive ID range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// Lowest ID.
    pub min: u32,
    /// Highest ID.
    pub max: u32,
}

impl IdRange {
    /// Whether `id` is in the range.
    pub fn contains(&self, id: u32) -> bool {
        (self.min..=self.max).contains(&id)
    }

    /// Number of IDs in the range.
    pub fn len(&self) -> u64 {
        u64::from(self.max) - u64::from(self.min) + 1
    }

    /// Number of IDs in the range that are not reserved ([`is_reserved_id`]): the ones the
    /// allocator can hand out.
    pub fn usable_len(&self) -> u64 {
        let reserved: u64 = RESERVED_IDS
            .iter()
            .map(|&(lo, hi)| {
                let (a, b) = (lo.max(self.min), hi.min(self.max));
                if a <= b { u64::from(b - a) + 1 } else { 0 }
            })
            .sum();
        self.len().saturating_sub(reserved)
    }

    /// Never true for a checked range; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.max < self.min
    }

    fn overlaps(&self, other: &IdRange) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// `[mapping]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingConfig {
    /// Lowercase user and group names.
    pub lowercase_names: bool,
    /// Suffixes removed from user names (`@example.com`), first match wins.
    pub strip_suffixes: Vec<String>,
    /// Prefix added to provider group names.
    pub group_prefix: String,
    /// Prefixes removed from provider group names (`/` for Keycloak group paths).
    pub group_strip_prefixes: Vec<String>,
    /// Glob patterns (`*`) of provider groups to keep; empty keeps all.
    pub groups_include: Vec<String>,
    /// Glob patterns of provider groups to drop.
    pub groups_exclude: Vec<String>,
    /// How group paths become names.
    pub group_path: GroupPath,
    /// Explicit Unix names of provider groups (Entra object ids, GitLab paths): used as they
    /// are, before every other group rule.
    pub group_names: BTreeMap<String, String>,
    /// Added in front of every user name from this provider.
    pub user_prefix: String,
    /// Added after every user name from this provider.
    pub user_suffix: String,
    /// How UIDs are chosen.
    pub uid_source: UidSource,
    /// How provider groups' GIDs are chosen.
    pub gid_source: GidSource,
    /// UIDs (and user-private GIDs) come from here.
    pub uids: IdRange,
    /// Provider group GIDs come from here.
    pub gids: IdRange,
    /// Home directory template: `{username}` and `{uid}` are replaced.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Names allowed even though they are reserved or exist locally.
    pub allow_names: Vec<String>,
}

/// `[cache]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long the daemon keeps an answer in memory before reading the database again.
    pub positive_ttl: Duration,
    /// How long a "no such entry" is remembered.
    pub negative_ttl: Duration,
    /// Serve getpwent/getgrent enumeration.
    pub enumerate: bool,
    /// The socket. The PAM and NSS modules always use the compiled-in path.
    pub socket_path: PathBuf,
    /// The SQLite database.
    pub db_path: PathBuf,
    /// Write the NSS map (`/run/oidcd/nss.map`) that `libnss_oidc` reads without a round trip.
    pub nss_map: bool,
    /// How long the module trusts the map without a heartbeat from the daemon (the daemon
    /// refreshes it every third of this while it runs).
    pub nss_map_ttl: Duration,
}

/// `[login]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginConfig {
    /// Longest a device-flow login may take.
    pub timeout: Duration,
    /// Poll interval when the provider sends none.
    pub default_poll_interval: Duration,
    /// Tolerated clock difference for `exp`, `iat`, `nbf`.
    pub clock_skew: Duration,
    /// ID token signature algorithms accepted.
    pub allowed_algs: Vec<String>,
    /// Send a QR code with the prompt.
    pub qr: bool,
    /// Answer provisional passwd entries to sshd for names not seen before.
    pub ssh_first_login: bool,
    /// What a first SSH login ends with when sshd holds a provisional UID.
    pub ssh_first_uid: SshFirstUid,
    /// Executables recognised as sshd.
    pub ssh_programs: Vec<PathBuf>,
    /// How long a provisional entry lives without a successful login.
    pub provisional_ttl: Duration,
    /// No longer used (strangers could use a rate limit up against a real user); still
    /// accepted so that an upgrade does not stop the daemon. See `max_provisional_entries`.
    pub max_provisional_per_minute: u32,
    /// Live provisional entries at once; when full, a new name evicts the oldest entry that
    /// no login holds.
    pub max_provisional_entries: u32,
    /// Concurrent device-flow logins; when full, a new login evicts the oldest login of the
    /// source holding the most.
    pub max_logins_in_progress: u32,
    /// Concurrent device-flow logins from one source (PAM_RHOST, or the PAM service for local
    /// logins); beyond it the source's oldest login is evicted.
    pub max_logins_per_source: u32,
}

/// Signature algorithms that may be allowed: asymmetric only (HMAC with a public key and
/// `none` are never accepted).
pub const SUPPORTED_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// IDs reserved whatever the ranges say: root, the system range, systemd's DynamicUser range,
/// nobody and the (uid_t)-1 sentinels.
pub fn is_reserved_id(id: u32) -> bool {
    RESERVED_IDS.iter().any(|&(lo, hi)| (lo..=hi).contains(&id))
}

/// The reserved IDs of [`is_reserved_id`], as disjoint inclusive ranges.
const RESERVED_IDS: [(u32, u32); 4] = [
    (0, 999),
    (61184, 65519),
    (65534, 65535),
    (0xFFFF_FFFE, u32::MAX),
];

impl Default for Config {
    fn default() -> Self {
        Self {
            path: PathBuf::from(oidc_proto::paths::CONFIG_PATH),
            log_level: log::LevelFilter::Info,
            providers: Vec::new(),
            claims: ClaimsConfig {
                source: ClaimSource::Both,
                username: ClaimPath("preferred_username".into()),
                groups: vec![ClaimPath("groups".into())],
                uid: None,
                gid: None,
                gecos: ClaimPath("name".into()),
                email: ClaimPath("email".into()),
                domain: None,
                ssh_keys: None,
            },
            access: AccessConfig {
                allowed_groups: Vec::new(),
                allowed_email_domains: Vec::new(),
                require_email_verified: false,
                admin_groups: Vec::new(),
                admin_local_groups: vec!["sudo".into()],
                link_by_email: false,
                max_login_age_days: 7,
                ignore_group_case: false,
            },
            mapping: MappingConfig {
                lowercase_names: true,
                strip_suffixes: Vec::new(),
                group_prefix: String::new(),
                group_strip_prefixes: Vec::new(),
                groups_include: Vec::new(),
                groups_exclude: Vec::new(),
                group_path: GroupPath::Keep,
                group_names: BTreeMap::new(),
                user_prefix: String::new(),
                user_suffix: String::new(),
                uid_source: UidSource::Hash,
                gid_source: GidSource::Hash,
                uids: IdRange {
                    min: 1_879_048_192,
                    max: 2_013_265_919,
                },
                gids: IdRange {
                    min: 2_013_265_920,
                    max: 2_147_483_646,
                },
                home: "/home/{username}".into(),
                shell: "/bin/bash".into(),
                allow_names: Vec::new(),
            },
            cache: CacheConfig {
                positive_ttl: Duration::from_secs(300),
                negative_ttl: Duration::from_secs(15),
                enumerate: false,
                socket_path: PathBuf::from(oidc_proto::paths::SOCKET_PATH),
                db_path: PathBuf::from(oidc_proto::paths::DB_PATH),
                nss_map: true,
                nss_map_ttl: Duration::from_secs(300),
            },
            login: LoginConfig {
                timeout: Duration::from_secs(300),
                default_poll_interval: Duration::from_secs(5),
                clock_skew: Duration::from_secs(60),
                allowed_algs: ["RS256", "PS256", "ES256", "EdDSA"]
                    .map(String::from)
                    .to_vec(),
                qr: true,
                ssh_first_login: true,
                ssh_first_uid: SshFirstUid::Fleet,
                ssh_programs: [
                    "/usr/sbin/sshd",
                    "/usr/lib/openssh/sshd-session",
                    "/usr/lib/openssh/sshd-auth",
                    "/usr/libexec/openssh/sshd-session",
                    "/usr/libexec/openssh/sshd-auth",
                ]
                .map(PathBuf::from)
                .to_vec(),
                provisional_ttl: Duration::from_secs(300),
                max_provisional_per_minute: 30,
                max_provisional_entries: 1000,
                max_logins_in_progress: 64,
                max_logins_per_source: 8,
            },
            notices: Vec::new(),
            refresh: RefreshConfig::default(),
            offline: OfflineConfig::default(),
        }
    }
}

/// Largest configuration file read.
pub const MAX_CONFIG_LEN: u64 = 1024 * 1024;

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = crate::small_file::read_to_string(path, MAX_CONFIG_LEN).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                key: None,
                message: format!("cannot read the configuration: {e}"),
            }])
        })?;
        let mode = std::fs::metadata(path).map(|m| m.mode()).unwrap_or(0o600);
        Self::from_toml(path, &text, mode)
    }

    /// Checks `text`, the contents of `path` (whose permission bits are `mode`).
    pub fn from_toml(path: &Path, text: &str, mode: u32) -> Result<Self, ConfigErrors> {
        let mut r = Reporter::new(path, text);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                r.toml_error(&e);
                r.finish()?;
                return Err(ConfigErrors(Vec::new()));
            }
        };
        let mut c = Config {
            path: path.to_path_buf(),
            ..Config::default()
        };
        let mut v = Validator { r: &mut r, mode };
        v.check(&raw, &mut c);
        r.finish()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests;
