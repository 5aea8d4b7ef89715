//! Records carried by the protocol.

use serde::{Deserialize, Serialize};

/// A passwd entry as the NSS module hands it to glibc. The password field is always `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixUser {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: u32,
    /// Primary group ID (by default the user-private group with the same number).
    pub gid: u32,
    /// Full name (GECOS).
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// A group entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixGroup {
    /// Group name.
    pub name: String,
    /// Group ID.
    pub gid: u32,
    /// Names of the members.
    pub members: Vec<String>,
}

/// True when `s` can be written into a passwd or group line without changing its meaning:
/// no NUL (glibc strings end there), no `:` (field separator), no newline (record separator).
pub fn is_field_safe(s: &str) -> bool {
    !s.bytes().any(|b| b == 0 || b == b':' || b == b'\n')
}

/// Longest name the modules pass to the daemon.
pub const MAX_NAME_LEN: usize = 256;

/// True if `name` could be a user or group the daemon serves: not empty, at most
/// [`MAX_NAME_LEN`] bytes, no `:`, `/`, white space or control characters (NUL and newline
/// among them), and not `root`. The modules answer anything else themselves, without asking:
/// sshd passes whatever name a client sent, and no daemon, broken or frozen, may decide about
/// root or delay its lookups and its break-glass login.
pub fn is_plausible_name(name: &str) -> bool {
    name != "root"
        && !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name
            .chars()
            .any(|c| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
}

impl UnixUser {
    /// Every field is safe to hand to glibc and the name is not empty.
    pub fn is_well_formed(&self) -> bool {
        !self.name.is_empty()
            && [&self.name, &self.gecos, &self.home, &self.shell]
                .iter()
                .all(|f| is_field_safe(f))
    }
}

impl UnixGroup {
    /// Every field is safe to hand to glibc and the name is not empty.
    pub fn is_well_formed(&self) -> bool {
        !self.name.is_empty()
            && is_field_safe(&self.name)
            && self
                .members
                .iter()
                .all(|m| !m.is_empty() && is_field_safe(m) && !m.contains(','))
    }
}

/// What the PAM module shows the user when a device-flow login starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginPrompt {
    /// Daemon-issued identifier of this login, used by the following steps.
    pub login_id: String,
    /// Where the user goes to approve (RFC 8628 `verification_uri`).
    pub verification_uri: String,
    /// The same with the code filled in, when the provider sends one.
    pub verification_uri_complete: Option<String>,
    /// The code the user types at the provider.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
    /// This host's name, shown so a user can recognise a code phished from another host.
    pub host: String,
    /// A QR code of the best verification URI, as lines of text.
    pub qr: Option<String>,
}

/// Why a login did not succeed. The PAM module maps each to a PAM code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// The user (or the provider) refused the request.
    Denied,
    /// The code expired before it was approved, or the login's overall timeout passed.
    Expired,
    /// Someone else approved: the identity does not map to the user logging in.
    WrongUser,
    /// The identity is valid but a policy gate (groups, email domain, verification) refused it.
    NotAllowed,
    /// The name is refused by the mapping rules or collides with a local account.
    NameRefused,
    /// The provider could not be reached or answered with an error.
    ProviderUnavailable,
    /// The provider's answer failed validation (signature, issuer, audience, expiry...).
    InvalidToken,
    /// The login was cancelled.
    Cancelled,
    /// The daemon does not know this login id (it expired or the daemon restarted).
    UnknownLogin,
    /// Something went wrong inside the daemon.
    Internal,
}

/// Whether an account may log in now (PAM `account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AccountStatus {
    /// Known and allowed.
    Allowed,
    /// A local account (served by /etc/passwd) linked to a provider identity: allowed, and its
    /// password is the local one.
    Linked,
    /// Known but refused; the message says why.
    Denied {
        /// Why, for the user and the log.
        message: String,
    },
    /// The daemon does not manage this user.
    Unknown,
}

/// Stable error codes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The caller may not make this request (it needs root).
    PermissionDenied,
    /// The request is malformed or names something invalid.
    BadRequest,
    /// The input was refused by the mapping or protection rules; nothing was changed.
    Rejected,
    /// The daemon cannot serve this now (database broken, provider not configured).
    Unavailable,
    /// The daemon is overloaded; try again.
    Busy,
    /// An internal error.
    Internal,
}

/// `oidcctl status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// The daemon's version.
    pub daemon_version: String,
    /// The protocol version the daemon speaks.
    pub protocol_version: u16,
    /// The configuration file in use.
    pub config_path: String,
    /// The configured issuer, if a provider is configured.
    pub issuer: Option<String>,
    /// The configured client id.
    pub client_id: Option<String>,
    /// The database path.
    pub db_path: String,
    /// The database schema version, when the database is open.
    pub schema_version: Option<u32>,
    /// Why the database cannot be used, when it cannot.
    pub db_error: Option<String>,
    /// Users in the store.
    pub users: u64,
    /// Provider groups in the store.
    pub groups: u64,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The socket the daemon listens on.
    pub socket_path: String,
    /// Whether getpwent/getgrent enumeration is served.
    pub enumerate: bool,
    /// Device-flow logins in progress.
    pub logins_in_progress: u64,
    /// Background refresh (absent from daemons before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshStatus>,
    /// Every configured provider (`issuer` and `client_id` above are the first one's).
    #[serde(default)]
    pub providers: Vec<ProviderStatus>,
    /// The NSS map (absent from daemons before it was reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nss_map: Option<NssMapStatus>,
}

/// The NSS map (`cache.nss_map`) as the daemon sees it, for `oidcctl status` and `oidcctl
/// doctor`. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NssMapStatus {
    /// `cache.nss_map`: the daemon writes the map.
    pub enabled: bool,
    /// Where the map is (compiled in: the NSS module reads no configuration).
    pub path: String,
    /// `cache.nss_map_ttl`, in seconds.
    pub ttl_secs: u64,
    /// The daemon's clock when it looked: `valid_until` is judged against it.
    pub now: i64,
    /// The file at `path`, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<NssMapFile>,
    /// The file at `path` is the one this daemon wrote and keeps up to date (heartbeat,
    /// state).
    #[serde(default)]
    pub held: bool,
    /// When this daemon last put a map in place, if it has since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at: Option<i64>,
    /// Users and groups left out of that map because a field cannot be served (logged).
    #[serde(default)]
    pub skipped: u64,
    /// Why the last build failed, when the last build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
}

/// The file at the NSS map's path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NssMapFile {
    /// A regular file (the module ignores anything else, a symbolic link included).
    pub regular: bool,
    /// Its owner (the module ignores a map that is not root's).
    pub uid: u32,
    /// Its permission bits (the module ignores a map writable by group or others).
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (the heartbeat moves it).
    pub modified_at: i64,
    /// Why its header cannot be read, when it cannot (the fields below are then absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Increases with each map the daemon writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Users in the map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Groups in the map, the users' private groups included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u64>,
    /// After this the module stops trusting the map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    /// `current`, `behind` (the store changed, a new map is on its way: lookups ask the
    /// daemon) or `replaced` (a newer file took its place, or the daemon let it go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<NssMapState>,
}

/// The state byte of an NSS map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NssMapState {
    /// Lookups may be answered from it.
    Current,
    /// The store changed since it was written: lookups ask the daemon until the next map.
    Behind,
    /// A newer file replaced it, or the daemon let it go: readers map the path again.
    Replaced,
    /// A value this version does not know: treated as not current.
    Unknown,
}

impl NssMapState {
    /// The state for the byte at [`crate::nss_map::STATE_OFFSET`].
    pub fn from_byte(b: u8) -> Self {
        match b {
            crate::nss_map::STATE_CURRENT => Self::Current,
            crate::nss_map::STATE_BEHIND => Self::Behind,
            crate::nss_map::STATE_REPLACED => Self::Replaced,
            _ => Self::Unknown,
        }
    }
}

/// The background refresh, for `oidcctl status`. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshStatus {
    /// `refresh.enable`.
    pub enabled: bool,
    /// `refresh.interval`, in seconds.
    pub interval_secs: f64,
    /// Identities holding a refresh token.
    pub refreshable: u64,
    /// Identities revoked.
    pub revoked: u64,
    /// Identities whose last refresh failed.
    pub failing: u64,
    /// The most recent refresh, if any.
    pub last_refresh_at: Option<i64>,
    /// Its user and result.
    pub last_refresh: Option<String>,
    /// The next refresh due.
    pub next_refresh_at: Option<i64>,
}

/// One configured provider, as `oidcctl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// Its id in the configuration.
    pub id: String,
    /// Its issuer.
    pub issuer: String,
    /// The OAuth client id.
    pub client_id: String,
    /// How its user names look (`*`, `*-ext`, `c-*`).
    pub names: String,
    /// Users stored for this issuer.
    pub users: u64,
    /// Why logins through it cannot happen (it could not be set up), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A user as `oidcctl user show` displays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The passwd entry.
    pub unix: UnixUser,
    /// Issuer the identity belongs to.
    pub issuer: String,
    /// The provider's subject identifier.
    pub sub: String,
    /// Email address from the claims.
    pub email: Option<String>,
    /// Whether the provider said the email is verified.
    pub email_verified: bool,
    /// Provider groups (Unix names) the user belongs to.
    pub groups: Vec<String>,
    /// Whether the user was in one of `access.admin_groups` at the last update.
    pub is_admin: bool,
    /// Local groups granted through `admin_groups`.
    pub local_groups: Vec<String>,
    /// Where the entry came from: `login`, `import` or `map`.
    pub source: String,
    /// The claims it was built from.
    pub claims: serde_json::Value,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last change.
    pub updated_at: i64,
    /// Unix time of the last successful login, if any.
    pub last_login_at: Option<i64>,
    /// Refresh and revocation state (absent from daemons before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// The offline PIN (`[offline]`): whether one is set and its wrong tries, never the hash
    /// (absent from daemons before it was reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_pin: Option<OfflinePinStatus>,
}

/// Whether a user has an offline PIN, for `oidcctl user show`. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflinePinStatus {
    /// A PIN is set.
    pub set: bool,
    /// When it was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_at: Option<i64>,
    /// Wrong PINs in a row since the last online login.
    #[serde(default)]
    pub failures: u32,
    /// The PIN is refused until then, after too many wrong tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

/// Where an identity stands with the provider since its last login: refreshes, their
/// outcome, revocation. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The daemon holds a refresh token for this identity, so it can re-check it.
    pub refreshable: bool,
    /// When the provider last confirmed the identity (a login or a successful refresh).
    pub verified_at: Option<i64>,
    /// When a refresh was last tried.
    pub last_refresh_at: Option<i64>,
    /// What the last refresh gave: `ok`, or why it failed.
    pub last_refresh_result: Option<String>,
    /// When the next refresh is due, if one is scheduled.
    pub next_refresh_at: Option<i64>,
    /// Refreshes failed in a row (the provider unreachable or erring).
    pub failures: u32,
    /// When the identity was revoked, if it is.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// A group as `oidcctl group show` displays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The group entry.
    pub unix: UnixGroup,
    /// Issuer the group belongs to.
    pub issuer: String,
    /// The group's identity at the provider (the claim value).
    pub provider_name: String,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last change.
    pub updated_at: i64,
}

/// A user's SSH public keys, from the claim `claims.ssh_keys_claim` names, as the daemon
/// serves them to sshd's `AuthorizedKeysCommand` (`oidc-authorized-keys`) and to `oidcctl user
/// keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeyList {
    /// The keys to accept now, one `authorized_keys` line each (type, key, comment; never
    /// options): empty while the account phase would refuse the user (revoked, not confirmed
    /// by the provider recently enough, refused by the access rules) or no claim is
    /// configured.
    pub keys: Vec<String>,
    /// Root only: every well-formed key the stored claim holds, served or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored: Vec<String>,
    /// Root only: why no key is served now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    /// Root only: entries of the claim that are not served, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// A local account linked to a provider identity (`oidcctl link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// The local account.
    pub local_name: String,
    /// The identity's issuer.
    pub issuer: String,
    /// The identity's subject.
    pub sub: String,
    /// Unix time of the link.
    pub created_at: i64,
    /// Unix time of the last login through it.
    pub last_login_at: Option<i64>,
}

/// One explicit move of `oidcctl migrate --table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectMove {
    /// The user's Unix name (or the linked local account's).
    pub name: String,
    /// Its subject at the new issuer.
    pub new_sub: String,
}

/// What `oidcctl migrate` did, or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationReport {
    /// The old issuer.
    pub from_issuer: String,
    /// The new issuer.
    pub to_issuer: String,
    /// False for a dry run: nothing was changed.
    pub applied: bool,
    /// One line per user and linked local account of the old issuer.
    pub moves: Vec<MigrationLine>,
    /// Provider groups of the old issuer: each keeps its GID and name, taken over by the first
    /// group of the new provider that maps to its name.
    pub groups: u64,
}

/// One identity in a [`MigrationReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationLine {
    /// Unix name (or linked local account).
    pub name: String,
    /// UID, kept (none for a linked local account, whose UID is in /etc/passwd).
    pub uid: Option<u32>,
    /// Subject at the old issuer.
    pub old_sub: String,
    /// Subject at the new issuer, when known now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sub: Option<String>,
    /// `moved` (table), `by_email` (at its first login), or `stays` (see `note`).
    pub outcome: String,
    /// Why, for `by_email` (the address) and `stays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One user applied by `oidcctl import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedUser {
    /// Index in the imported array.
    pub index: usize,
    /// The Unix name.
    pub name: String,
    /// The UID.
    pub uid: u32,
    /// True if the user is new, false if an existing one was refreshed.
    pub created: bool,
}

/// The UID/GID map `oidcctl export` writes and `oidcctl import` reads back on other hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdMap {
    /// Always [`IdMap::FORMAT`].
    pub format: String,
    /// The issuer every entry belongs to.
    pub issuer: String,
    /// Users.
    pub users: Vec<IdMapUser>,
    /// Groups.
    pub groups: Vec<IdMapGroup>,
}

impl IdMap {
    /// Format tag of the export file.
    pub const FORMAT: &'static str = "oidcd-idmap-1";
}

/// A user in an [`IdMap`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapUser {
    /// The provider's subject identifier.
    pub sub: String,
    /// The Unix name.
    pub name: String,
    /// The UID.
    pub uid: u32,
    /// The primary GID.
    pub gid: u32,
}

/// A group in an [`IdMap`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapGroup {
    /// The group's identity at the provider.
    pub provider_name: String,
    /// The Unix name.
    pub name: String,
    /// The GID.
    pub gid: u32,
}

/// A fleet's ID map, format 2: every provider's users and groups with their IDs, sealed by a
/// SHA-256 checksum over its entries. `oidcctl export` writes it, `oidcctl idmap` checks, merges
/// and seals it, and `oidcctl import` pins it on every host (docs/decisions/0001-fleet-ids.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FleetMap {
    /// Always [`FleetMap::FORMAT`].
    pub format: String,
    /// Users, by issuer and subject.
    pub users: Vec<PinnedUser>,
    /// Provider groups, by issuer and claim value.
    pub groups: Vec<PinnedGroup>,
    /// `sha256:` and the hex digest of the entries' canonical form (`oidcctl idmap seal`).
    #[serde(default)]
    pub checksum: String,
}

impl FleetMap {
    /// Format tag of a fleet map.
    pub const FORMAT: &'static str = "oidcd-idmap-2";
}

/// A user's UID in a [`FleetMap`] (the user-private GID is the same number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PinnedUser {
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's subject identifier.
    pub sub: String,
    /// The Unix name (informative: the name follows the provider).
    pub name: String,
    /// The UID.
    pub uid: u32,
}

/// A provider group's GID in a [`FleetMap`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PinnedGroup {
    /// The provider's issuer.
    pub issuer: String,
    /// The group's identity at the provider: the claim value.
    pub provider_name: String,
    /// The Unix name.
    pub name: String,
    /// The GID.
    pub gid: u32,
}

/// One page of this host's ID map (`oidcctl export`), in UID then GID order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdMapPage {
    /// Users with a UID above the request's `after_uid`.
    pub users: Vec<PinnedUser>,
    /// Groups with a GID above the request's `after_gid` (once the users are done).
    pub groups: Vec<PinnedGroup>,
    /// Whether another page follows.
    pub more: bool,
}

/// An identity on this host whose ID is not the one the fleet's rule or ID map gives it
/// (`oidcctl doctor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdFinding {
    /// `user` or `group`.
    pub kind: String,
    /// The provider's issuer.
    pub issuer: String,
    /// Subject (user) or claim value (group).
    pub key: String,
    /// The Unix name.
    pub name: String,
    /// Its ID here.
    pub id: u32,
    /// The ID the fleet's rule gives it on a host where nobody holds it, when there is one.
    pub expected: Option<u32>,
    /// Whether `expected` comes from an imported ID map (a pin) rather than the rule.
    pub pinned: bool,
}

/// `oidcctl doctor`'s check of this host's IDs against the fleet's rule and ID map.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdCheck {
    /// Users and groups checked.
    pub checked: u64,
    /// Pins imported from ID maps.
    pub pins: u64,
    /// How many differ.
    pub differing: u64,
    /// The first of them (at most 100).
    pub findings: Vec<IdFinding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names or fields that would corrupt a passwd line are not well formed.
    #[test]
    fn field_safety() {
        let good = UnixUser {
            name: "alice".into(),
            uid: 1,
            gid: 1,
            gecos: "Alice A.".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        };
        assert!(good.is_well_formed());
        for bad in ["a:b", "a\nb", "a\0b", ""] {
            let u = UnixUser {
                name: bad.into(),
                ..good.clone()
            };
            assert!(!u.is_well_formed(), "{bad:?}");
        }
        let g = UnixGroup {
            name: "g".into(),
            gid: 5,
            members: vec!["a,b".into()],
        };
        assert!(!g.is_well_formed());
    }
}
