//! The versioned envelope and the request and response enums.
//!
//! Every frame is an [`Envelope`]: `{"version": N, "body": {"type": "...", ...}}`. A peer that
//! receives a version it does not speak answers (or reports) [`Response::UnsupportedVersion`],
//! whose shape never changes between versions, so an old module facing a new daemon (or the
//! reverse) gets a clear "version mismatch" instead of a misread answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;
use crate::types::{
    AccountStatus, ErrorCode, GroupRecord, IdCheck, IdMap, IdMapPage, ImportedUser, LinkRecord,
    LoginFailure, LoginPrompt, MigrationReport, PinnedGroup, PinnedUser, SshKeyList, StatusInfo,
    SubjectMove, UnixGroup, UnixUser, UserRecord,
};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The `type` tag of [`Response::UnsupportedVersion`], stable across versions.
pub const UNSUPPORTED_VERSION_TAG: &str = "unsupported_version";

/// What every frame carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Protocol version of `body`.
    pub version: u16,
    /// The message.
    pub body: T,
}

impl<T> Envelope<T> {
    /// Wraps `body` in an envelope of this build's version.
    pub fn new(body: T) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// `getpwnam`.
    GetUserByName {
        /// The name asked for.
        name: String,
    },
    /// `getpwuid`.
    GetUserByUid {
        /// The UID asked for.
        uid: u32,
    },
    /// `getgrnam`.
    GetGroupByName {
        /// The name asked for.
        name: String,
    },
    /// `getgrgid`.
    GetGroupByGid {
        /// The GID asked for.
        gid: u32,
    },
    /// `initgroups`: the supplementary GIDs of a user.
    GetGroupsOfUser {
        /// The user's name.
        name: String,
    },
    /// `getpwent` enumeration (empty unless enabled in the config).
    ListUsers,
    /// `getgrent` enumeration (empty unless enabled in the config).
    ListGroups,
    /// sshd's `AuthorizedKeysCommand` (`oidc-authorized-keys %u`, run as `nobody`) and
    /// `oidcctl user keys`: the SSH public keys of a user from the provider.
    GetSshKeys {
        /// The user's name.
        name: String,
    },

    /// PAM `auth`, before anything slow: would the daemon start a login for `user`? Answered
    /// from memory and the identity cache alone, so the module can ask it with a short
    /// deadline and leave a frozen daemon after a fraction of a second.
    LoginPrecheck {
        /// PAM_USER.
        user: String,
        /// PAM_SERVICE.
        service: String,
        /// PAM_RHOST, when set.
        rhost: Option<String>,
    },
    /// PAM `auth`: start a device-flow login for `user`.
    LoginStart {
        /// PAM_USER.
        user: String,
        /// PAM_SERVICE.
        service: String,
        /// PAM_RHOST, when set.
        rhost: Option<String>,
        /// PAM_TTY, when set.
        tty: Option<String>,
    },
    /// PAM `auth`: wait (briefly) for the result of a login started on this connection.
    LoginWait {
        /// From [`LoginPrompt::login_id`].
        login_id: String,
    },
    /// PAM `auth`: give up on a login.
    LoginCancel {
        /// From [`LoginPrompt::login_id`].
        login_id: String,
    },
    /// PAM `auth`: finish a first SSH login with the code its refused connection showed
    /// (after [`Response::ResumeAvailable`]). An empty code gives the code up: the next
    /// `LoginStart` starts a device-flow login.
    LoginResume {
        /// PAM_USER.
        user: String,
        /// PAM_SERVICE.
        service: String,
        /// PAM_RHOST, when set.
        rhost: Option<String>,
        /// The code typed.
        code: Secret,
    },
    /// PAM `auth`, `[offline]`: log in with the offline PIN while the identity provider cannot
    /// be reached (after [`Response::OfflineAvailable`]).
    OfflineLogin {
        /// PAM_USER.
        user: String,
        /// PAM_SERVICE.
        service: String,
        /// The PIN typed.
        pin: Secret,
    },
    /// PAM `auth`, `[offline]`: set the offline PIN right after the online login `login_id`
    /// was approved with an invitation to ([`Response::LoginApproved::offline_pin`]).
    OfflineSetPin {
        /// The approved login.
        login_id: String,
        /// The new PIN.
        pin: Secret,
    },
    /// PAM `account`: may this user log in now?
    AccountCheck {
        /// PAM_USER.
        user: String,
        /// PAM_SERVICE.
        service: String,
    },

    /// `oidcctl status`.
    Status,
    /// `oidcctl user list`.
    AdminUserList,
    /// `oidcctl user show`.
    AdminUserShow {
        /// Unix name.
        name: String,
    },
    /// `oidcctl user remove` (root only).
    AdminUserRemove {
        /// Unix name.
        name: String,
    },
    /// `oidcctl user refresh` (root only): re-read a user from the provider now.
    AdminUserRefresh {
        /// Unix name.
        name: String,
    },
    /// `oidcctl user revoke` (root only): refuse a user in the account phase until their next
    /// device-flow login, drop their provider and admin groups, forget their tokens.
    AdminUserRevoke {
        /// Unix name.
        name: String,
    },
    /// `oidcctl user clear-pin` (root only): forget a user's offline PIN, its wrong tries and
    /// lock; their next online login invites them to set a new one.
    AdminUserClearPin {
        /// Unix name.
        name: String,
    },
    /// `oidcctl group list`.
    AdminGroupList,
    /// `oidcctl group show`.
    AdminGroupShow {
        /// Unix name.
        name: String,
    },
    /// `oidcctl cache clear` (root only): forget every user, group and membership.
    AdminCacheClear,
    /// `oidcctl import` of claim sets (root only): all or nothing.
    AdminImport {
        /// Claim sets as the provider would send them.
        entries: Vec<Value>,
    },
    /// One part of an import too large for one request (root only): the daemon keeps it,
    /// unapplied, under `import_id` until [`Request::AdminImportCommit`] (or drops it after a
    /// minute without a part or commit).
    AdminImportPart {
        /// Chosen by the client; one staged import at a time.
        import_id: String,
        /// The next claim sets of the file, in order.
        entries: Vec<Value>,
    },
    /// Applies every part staged under `import_id` in one transaction, all or nothing, as one
    /// [`Request::AdminImport`] of the whole file would (root only). `total` is the number of
    /// entries the client sent, checked against what was staged.
    AdminImportCommit {
        /// As in the parts.
        import_id: String,
        /// Entries sent in all parts.
        total: u64,
    },
    /// `oidcctl import` of an ID map exported by another host (root only): all or nothing.
    AdminImportMap {
        /// The map.
        map: IdMap,
    },
    /// `oidcctl export` (root only).
    AdminExport {
        /// The provider (id or issuer) whose identities to export; the first configured one
        /// when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// `oidcctl export` (root only): one page of this host's ID map, every provider's or one's.
    AdminExportPage {
        /// The provider (id or issuer); every provider when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        /// Users with a UID above this one.
        #[serde(default)]
        after_uid: u32,
        /// Groups with a GID above this one (asked once the users are done).
        #[serde(default)]
        after_gid: u32,
    },
    /// `oidcctl import` of a fleet map, or a part of one (root only): pins every entry or, when
    /// one is refused, none of this request's. Entries already pinned with the same ID are
    /// left alone, so the same map can be applied again and again.
    AdminImportPins {
        /// Users.
        #[serde(default)]
        users: Vec<PinnedUser>,
        /// Provider groups.
        #[serde(default)]
        groups: Vec<PinnedGroup>,
        /// Check every entry against this host and change nothing.
        #[serde(default)]
        dry_run: bool,
    },
    /// `oidcctl doctor` (root only): this host's IDs against the fleet's rule and ID map.
    AdminIdCheck,
    /// `oidcctl link` (root only): let a local account log in as a provider identity.
    AdminLink {
        /// The local account (must exist in /etc/passwd).
        local_name: String,
        /// The identity's subject at the provider's issuer.
        sub: String,
        /// The provider (id or issuer); the first configured one when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// `oidcctl unlink` (root only).
    AdminUnlink {
        /// The local account.
        local_name: String,
    },
    /// `oidcctl link --list`.
    AdminLinkList,
    /// `oidcctl migrate` (root only): move the identities of one issuer to a configured provider,
    /// keeping their UIDs, names and so their files. Reports what it does (or, without `apply`,
    /// would do); all or nothing.
    AdminMigrate {
        /// The issuer the identities belong to now.
        from_issuer: String,
        /// The provider they move to: its id or issuer.
        to: String,
        /// Explicit moves: a user (or linked local account) by name, and its subject at `to`.
        #[serde(default)]
        table: Vec<SubjectMove>,
        /// The others move at their first login through `to`, when the provider there vouches
        /// for the same email address (verified) and the name they map to is the same.
        #[serde(default)]
        by_email: bool,
        /// Make the changes; otherwise only report them (a dry run).
        #[serde(default)]
        apply: bool,
    },
}

impl Request {
    /// One request of every variant, with placeholder fields: for tests that must cover every
    /// request (the daemon's access table, its end-to-end check from a non-root peer). A unit
    /// test below fails when a variant is missing here, so a new request cannot be forgotten.
    pub fn one_of_each() -> Vec<Self> {
        let name = || "nosuchuser".to_string();
        let id = || "00000000000000000000000000000000".to_string();
        vec![
            Self::GetUserByName { name: name() },
            Self::GetUserByUid { uid: 4_000_000_000 },
            Self::GetGroupByName { name: name() },
            Self::GetGroupByGid { gid: 4_000_000_000 },
            Self::GetGroupsOfUser { name: name() },
            Self::ListUsers,
            Self::ListGroups,
            Self::LoginPrecheck {
                user: name(),
                service: "sshd".into(),
                rhost: None,
            },
            Self::LoginStart {
                user: name(),
                service: "sshd".into(),
                rhost: None,
                tty: None,
            },
            Self::LoginWait { login_id: id() },
            Self::LoginCancel { login_id: id() },
            Self::LoginResume {
                user: name(),
                service: "sshd".into(),
                rhost: None,
                code: Secret::new("BCDFGHJK"),
            },
            Self::OfflineLogin {
                user: name(),
                service: "sshd".into(),
                pin: Secret::new("000000"),
            },
            Self::OfflineSetPin {
                login_id: id(),
                pin: Secret::new("000000"),
            },
            Self::AccountCheck {
                user: name(),
                service: "sshd".into(),
            },
            Self::GetSshKeys { name: name() },
            Self::Status,
            Self::AdminUserList,
            Self::AdminUserShow { name: name() },
            Self::AdminUserRemove { name: name() },
            Self::AdminUserRefresh { name: name() },
            Self::AdminUserRevoke { name: name() },
            Self::AdminUserClearPin { name: name() },
            Self::AdminGroupList,
            Self::AdminGroupShow { name: name() },
            Self::AdminCacheClear,
            Self::AdminImport {
                entries: Vec::new(),
            },
            Self::AdminImportPart {
                import_id: id(),
                entries: Vec::new(),
            },
            Self::AdminImportCommit {
                import_id: id(),
                total: 0,
            },
            Self::AdminImportMap {
                map: IdMap {
                    format: IdMap::FORMAT.into(),
                    issuer: "https://idp.invalid".into(),
                    users: Vec::new(),
                    groups: Vec::new(),
                },
            },
            Self::AdminExport { provider: None },
            Self::AdminExportPage {
                provider: None,
                after_uid: 0,
                after_gid: 0,
            },
            Self::AdminImportPins {
                users: Vec::new(),
                groups: Vec::new(),
                dry_run: true,
            },
            Self::AdminIdCheck,
            Self::AdminLink {
                local_name: name(),
                sub: "nobody".into(),
                provider: None,
            },
            Self::AdminUnlink { local_name: name() },
            Self::AdminLinkList,
            Self::AdminMigrate {
                from_issuer: "https://old.invalid".into(),
                to: "default".into(),
                table: Vec::new(),
                by_email: false,
                apply: false,
            },
        ]
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// A passwd entry.
    User(UnixUser),
    /// A group entry.
    Group(UnixGroup),
    /// Enumerated passwd entries.
    Users {
        /// The entries.
        users: Vec<UnixUser>,
    },
    /// Enumerated group entries.
    Groups {
        /// The entries.
        groups: Vec<UnixGroup>,
    },
    /// Supplementary GIDs for `initgroups`.
    GroupIds {
        /// The GIDs.
        gids: Vec<u32>,
    },
    /// The daemon looked and there is no such entry.
    NotFound,
    /// The daemon is running but cannot answer (database broken, ...). NSS maps this to UNAVAIL.
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The request failed.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What happened, for a human.
        message: String,
        /// One line per problem, when there are several (an import's bad entries).
        #[serde(default)]
        details: Vec<String>,
    },
    /// The peer does not speak the sender's version. Its shape is the same in every version.
    UnsupportedVersion {
        /// Versions the answering side speaks.
        supported: Vec<u16>,
    },

    /// Answer to [`Request::LoginPrecheck`]: the daemon would start a login for this user
    /// (a refusal is [`Response::LoginFailed`]).
    LoginPossible,
    /// A device-flow login started: show this to the user.
    LoginStarted(LoginPrompt),
    /// Not approved yet: ask again.
    LoginPending,
    /// Approved by an identity that maps to the user logging in.
    LoginApproved {
        /// The Unix name that logged in.
        user: String,
        /// `[offline]`: the user may now set an offline PIN of at least this many characters
        /// ([`Request::OfflineSetPin`]). Absent otherwise, and from older daemons.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offline_pin: Option<u32>,
    },
    /// Answer to [`Request::LoginStart`] when this user's previous connection from the same
    /// place was refused only because it held another UID (a first SSH login under
    /// `login.ssh_first_uid = "fleet"`) and showed a code: ask for it
    /// ([`Request::LoginResume`]) instead of a new device-flow approval.
    ResumeAvailable {
        /// PAM_USER.
        user: String,
    },
    /// Answer to [`Request::LoginStart`] when the identity provider cannot be used but this
    /// user may log in with their offline PIN ([`Request::OfflineLogin`]).
    OfflineAvailable {
        /// PAM_USER.
        user: String,
    },
    /// The login ended without success.
    LoginFailed {
        /// Why, as a code.
        reason: LoginFailure,
        /// Why, for the user.
        message: String,
    },
    /// Answer to [`Request::AccountCheck`].
    Account {
        /// The verdict.
        account: AccountStatus,
    },

    /// Answer to [`Request::GetSshKeys`].
    SshKeys(SshKeyList),

    /// Answer to [`Request::Status`].
    Status(StatusInfo),
    /// Answer to [`Request::AdminUserList`].
    UserList {
        /// The users.
        users: Vec<UserRecord>,
    },
    /// Answer to [`Request::AdminUserShow`].
    UserDetails(UserRecord),
    /// Answer to [`Request::AdminGroupList`].
    GroupList {
        /// The groups.
        groups: Vec<GroupRecord>,
    },
    /// Answer to [`Request::AdminGroupShow`].
    GroupDetails(GroupRecord),
    /// Answer to [`Request::AdminImport`].
    Imported {
        /// The users applied, in input order.
        users: Vec<ImportedUser>,
    },
    /// Answer to [`Request::AdminExport`].
    Map(IdMap),
    /// Answer to [`Request::AdminExportPage`].
    MapPage(IdMapPage),
    /// Answer to [`Request::AdminIdCheck`].
    IdCheck(IdCheck),
    /// Answer to [`Request::AdminLinkList`].
    LinkList {
        /// The links.
        links: Vec<LinkRecord>,
    },
    /// Answer to [`Request::AdminMigrate`].
    Migration(MigrationReport),
    /// A change was made.
    Done {
        /// What was done, for a human.
        message: String,
    },
}

impl Response {
    /// A [`Response::Error`] without details.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }
}

/// Why a received envelope could not be turned into a message of this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The peer speaks other versions.
    VersionMismatch {
        /// The version(s) the peer speaks.
        peer: Vec<u16>,
    },
    /// The body is not a message we know.
    Malformed(String),
}

/// Opens an envelope received from the daemon.
pub fn open_response(env: Envelope<Value>) -> Result<Response, EnvelopeError> {
    if env.body.get("type").and_then(Value::as_str) == Some(UNSUPPORTED_VERSION_TAG) {
        let peer = env
            .body
            .get("supported")
            .and_then(|s| serde_json::from_value::<Vec<u16>>(s.clone()).ok())
            .unwrap_or_default();
        return Err(EnvelopeError::VersionMismatch { peer });
    }
    if env.version != PROTOCOL_VERSION {
        return Err(EnvelopeError::VersionMismatch {
            peer: vec![env.version],
        });
    }
    serde_json::from_value(env.body).map_err(|e| EnvelopeError::Malformed(e.to_string()))
}

/// Decodes a request frame's body (the JSON after the length prefix) straight into a
/// [`Request`], without building a generic JSON value of it first: the version is read with
/// everything else skipped, then the body is decoded for that version. A version the daemon
/// does not speak gives the answer to send back, as does a body that is not a request.
pub fn decode_request(body: &[u8]) -> Result<Request, Box<Response>> {
    #[derive(Deserialize)]
    struct Version {
        version: u16,
    }
    let malformed = |e: serde_json::Error| {
        Box::new(Response::error(
            ErrorCode::BadRequest,
            format!("malformed request: {e}"),
        ))
    };
    let Version { version } = serde_json::from_slice(body).map_err(malformed)?;
    if version != PROTOCOL_VERSION {
        return Err(Box::new(Response::UnsupportedVersion {
            supported: vec![PROTOCOL_VERSION],
        }));
    }
    let env: Envelope<Request> = serde_json::from_slice(body).map_err(malformed)?;
    Ok(env.body)
}

/// Opens an envelope received from a client. A version the daemon does not speak gives the
/// answer to send back.
pub fn open_request(env: Envelope<Value>) -> Result<Request, Box<Response>> {
    if env.version != PROTOCOL_VERSION {
        return Err(Box::new(Response::UnsupportedVersion {
            supported: vec![PROTOCOL_VERSION],
        }));
    }
    serde_json::from_value(env.body).map_err(|e| {
        Box::new(Response::error(
            ErrorCode::BadRequest,
            format!("malformed request: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Requests and responses keep their shape through JSON.
    #[test]
    fn round_trip() {
        let reqs = [
            Request::GetUserByName {
                name: "alice".into(),
            },
            Request::GetGroupByGid { gid: 7 },
            Request::ListUsers,
            Request::LoginStart {
                user: "alice".into(),
                service: "sshd".into(),
                rhost: Some("10.0.0.1".into()),
                tty: None,
            },
            Request::LoginPrecheck {
                user: "alice".into(),
                service: "sshd".into(),
                rhost: None,
            },
            Request::AdminImport {
                entries: vec![json!({"sub": "x"})],
            },
        ];
        for r in reqs {
            let v = serde_json::to_value(Envelope::new(r.clone())).unwrap();
            let env: Envelope<Value> = serde_json::from_value(v).unwrap();
            assert_eq!(open_request(env).unwrap(), r);
        }
        let resp = Response::User(UnixUser {
            name: "alice".into(),
            uid: 1,
            gid: 1,
            gecos: String::new(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        });
        let env: Envelope<Value> =
            serde_json::from_value(serde_json::to_value(Envelope::new(resp.clone())).unwrap())
                .unwrap();
        assert_eq!(open_response(env).unwrap(), resp);
    }

    /// The wire form of a lookup is what docs/protocol.md shows.
    #[test]
    fn wire_form_is_stable() {
        let v = serde_json::to_value(Envelope::new(Request::GetUserByUid { uid: 5 })).unwrap();
        assert_eq!(
            v,
            json!({"version": 1, "body": {"type": "get_user_by_uid", "uid": 5}})
        );
        let v = serde_json::to_value(Envelope::new(Response::NotFound)).unwrap();
        assert_eq!(v, json!({"version": 1, "body": {"type": "not_found"}}));
        let v = serde_json::to_value(Envelope::new(Request::LoginPrecheck {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"version": 1, "body": {"type": "login_precheck", "user": "alice",
                                          "service": "sshd", "rhost": "192.0.2.7"}})
        );
        let v = serde_json::to_value(Envelope::new(Response::LoginPossible)).unwrap();
        assert_eq!(v, json!({"version": 1, "body": {"type": "login_possible"}}));
    }

    /// A request of another version gets UnsupportedVersion, and a client reading that (in any
    /// envelope version) reports a mismatch instead of guessing.
    #[test]
    fn version_mismatch_both_ways() {
        let env = Envelope {
            version: 2,
            body: json!({"type": "get_user_by_uid", "uid": 5}),
        };
        let answer = open_request(env).unwrap_err();
        assert_eq!(*answer, Response::UnsupportedVersion { supported: vec![1] });

        let from_old_daemon = Envelope {
            version: 0,
            body: json!({"type": "unsupported_version", "supported": [0]}),
        };
        assert_eq!(
            open_response(from_old_daemon),
            Err(EnvelopeError::VersionMismatch { peer: vec![0] })
        );
        let from_new_daemon = Envelope {
            version: 2,
            body: json!({"type": "user", "x": 1}),
        };
        assert_eq!(
            open_response(from_new_daemon),
            Err(EnvelopeError::VersionMismatch { peer: vec![2] })
        );
    }

    /// fuzz/request_frame: a float in an import entry decodes to the same number after being
    /// encoded again. serde_json without `float_roundtrip` read "0.5e+33" as 5e32 but the
    /// "5e32" it then wrote as 5.0000000000000004e32.
    #[test]
    fn fuzz_float_in_request_round_trips() {
        let frame = b"\x00\x00\x00\xa4{\"version\":1,\"body\":{\"type\":\"admin_import\",\
            \"entries\":[{\"sub\":\"s-1\",\"preferred_username\":\"alice\",\"groups\":[\"a\",\
            \"b\"],\"n\":0.5e+33 ,\"m\":0,\"big\":18446744073709551615}]}}";
        let decode = |bytes: &[u8]| {
            let (env, used) = crate::frame::decode::<Envelope<Value>>(bytes, usize::MAX)
                .unwrap()
                .unwrap();
            assert_eq!(used, bytes.len());
            open_request(env).unwrap()
        };
        let request = decode(frame);
        let again =
            decode(&crate::frame::encode(&Envelope::new(request.clone()), usize::MAX).unwrap());
        assert_eq!(again, request);
        let Request::AdminImport { entries } = request else {
            panic!("{request:?}")
        };
        assert_eq!(entries[0]["n"].as_f64(), Some(5e32));
    }

    /// `one_of_each` holds every request type serde knows (its "unknown variant" error lists
    /// them all), each once.
    #[test]
    fn one_of_each_covers_every_variant() {
        let err = serde_json::from_value::<Request>(json!({"type": "?"})).unwrap_err();
        let msg = err.to_string();
        let listed = msg.split("expected one of ").nth(1).expect(&msg);
        let mut known: Vec<&str> = listed
            .split(", ")
            .map(|s| s.trim_matches(|c: char| c == '`' || c.is_whitespace()))
            .collect();
        known.sort_unstable();
        let mut have: Vec<String> = Request::one_of_each()
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        have.sort_unstable();
        assert_eq!(have, known);
    }

    /// `decode_request` reads what `open_request` reads, and answers the same for another
    /// version or a body that is not a request.
    #[test]
    fn decode_request_agrees_with_open_request() {
        for r in Request::one_of_each() {
            let bytes = serde_json::to_vec(&Envelope::new(r.clone())).unwrap();
            assert_eq!(decode_request(&bytes).unwrap(), r);
        }
        let other = br#"{"body":{"type":"status"},"version":2}"#;
        assert_eq!(
            *decode_request(other).unwrap_err(),
            Response::UnsupportedVersion { supported: vec![1] }
        );
        for bad in [
            &b"null"[..],
            b"{\"version\":1}",
            b"{\"version\":1,\"body\":{\"type\":\"x\"}}",
            b"\xff",
        ] {
            match *decode_request(bad).unwrap_err() {
                Response::Error {
                    code: ErrorCode::BadRequest,
                    ..
                } => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// An unknown request type is a BadRequest answer, not a dropped connection.
    #[test]
    fn unknown_request_is_bad_request() {
        let env = Envelope {
            version: 1,
            body: json!({"type": "format_disk"}),
        };
        match *open_request(env).unwrap_err() {
            Response::Error {
                code: ErrorCode::BadRequest,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
}
