//! Who may send which request, and how it is served: one exhaustive table ([`rule`]), so a new
//! request is a compile error here until someone decides, and one gate ([`admit`]) that every
//! request passes before the daemon does any work for it. [`crate::handler::handle`] takes only
//! an [`Admitted`] request, which nothing but [`admit`] makes.
//!
//! The socket is open to every local user (mode 0666), so the table is the whole of the
//! authorisation: lookups are public; logins, the account phase and every change are root's
//! (sshd, sudo and login run their PAM stacks as root); reads that show other people's details
//! are root's, or limited to the peer's own record.

use oidc_proto::Request;
use oidc_proto::Response;
use oidc_proto::types::ErrorCode;

/// Who is asking, from `SO_PEERCRED` (not from anything the peer says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Process ID.
    pub pid: i32,
}

impl Peer {
    /// Whether the peer runs as root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Who may send a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: what `getent` shows (the NSS lookups) and the daemon's status.
    Anyone,
    /// Anyone, but a non-root peer sees only its own record (the user whose UID it runs as).
    OwnRecord,
    /// Root only.
    Root,
}

/// How a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A few database reads: answered on a shared worker, one request per turn.
    Quick,
    /// May take seconds (the provider, a login's wait, a large import or export): the
    /// connection gets a thread of its own. Only root's requests are slow (a unit test checks),
    /// so no other user can make the daemon start threads.
    Slow,
}

/// The policy for one kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The request's wire name (`body.type`), for logs: never the request itself, which may
    /// hold a login id.
    pub name: &'static str,
    /// Who may send it.
    pub access: Access,
    /// How it is served.
    pub cost: Cost,
}

/// The access table. No wildcard: a new request does not compile until it has a row.
pub fn rule(req: &Request) -> Rule {
    use Access::{Anyone, OwnRecord, Root};
    use Cost::{Quick, Slow};
    let (name, access, cost) = match req {
        Request::GetUserByName { .. } => ("get_user_by_name", Anyone, Quick),
        Request::GetUserByUid { .. } => ("get_user_by_uid", Anyone, Quick),
        Request::GetGroupByName { .. } => ("get_group_by_name", Anyone, Quick),
        Request::GetGroupByGid { .. } => ("get_group_by_gid", Anyone, Quick),
        Request::GetGroupsOfUser { .. } => ("get_groups_of_user", Anyone, Quick),
        // Empty unless `cache.enumerate`, which is the administrator's decision to publish.
        Request::ListUsers => ("list_users", Anyone, Quick),
        Request::ListGroups => ("list_groups", Anyone, Quick),
        // sshd runs its AuthorizedKeysCommand as `AuthorizedKeysCommandUser` (nobody), so the
        // keys sshd needs are public. What a non-root peer learns: the public keys (public by
        // design: sshd hands them to every client that offers one, providers publish them), and
        // whether any are served now, which follows revocation and expiry; a revoked user also
        // loses their provider groups, which `id NAME` shows anyone. Which keys are stored but
        // withheld, and why, is root's (`oidcctl user keys`).
        Request::GetSshKeys { .. } => ("get_ssh_keys", Anyone, Quick),
        // Answered from memory within the PAM module's 250 ms: is this user ours at all?
        Request::LoginPrecheck { .. } => ("login_precheck", Root, Quick),
        Request::LoginStart { .. } => ("login_start", Root, Slow),
        Request::LoginWait { .. } => ("login_wait", Root, Slow),
        Request::LoginCancel { .. } => ("login_cancel", Root, Slow),
        // A wrong code is answered after a pause.
        Request::LoginResume { .. } => ("login_resume", Root, Slow),
        // Checks that the provider is unreachable (seconds) and a slow hash.
        Request::OfflineLogin { .. } => ("offline_login", Root, Slow),
        Request::OfflineSetPin { .. } => ("offline_set_pin", Root, Slow),
        Request::AccountCheck { .. } => ("account_check", Root, Quick),
        // Counts, paths and the issuer: nothing about any one person.
        Request::Status => ("status", Anyone, Quick),
        // Email, subject, groups and last login of everyone would defeat `enumerate = false`.
        Request::AdminUserList => ("admin_user_list", OwnRecord, Quick),
        Request::AdminUserShow { .. } => ("admin_user_show", OwnRecord, Quick),
        Request::AdminUserRemove { .. } => ("admin_user_remove", Root, Slow),
        // Asks the provider (seconds), or changes what a user may do.
        Request::AdminUserRefresh { .. } => ("admin_user_refresh", Root, Slow),
        Request::AdminUserRevoke { .. } => ("admin_user_revoke", Root, Slow),
        Request::AdminUserClearPin { .. } => ("admin_user_clear_pin", Root, Quick),
        // Every group and its members: enumeration.
        Request::AdminGroupList => ("admin_group_list", Root, Slow),
        // What `getent group NAME` shows, plus the provider's name for it and two times.
        Request::AdminGroupShow { .. } => ("admin_group_show", Anyone, Quick),
        Request::AdminCacheClear => ("admin_cache_clear", Root, Slow),
        Request::AdminImport { .. } => ("admin_import", Root, Slow),
        // A large import in parts: staged (bounded in size), then applied at once.
        Request::AdminImportPart { .. } => ("admin_import_part", Root, Slow),
        Request::AdminImportCommit { .. } => ("admin_import_commit", Root, Slow),
        Request::AdminImportMap { .. } => ("admin_import_map", Root, Slow),
        Request::AdminExport { .. } => ("admin_export", Root, Slow),
        Request::AdminExportPage { .. } => ("admin_export_page", Root, Slow),
        Request::AdminImportPins { .. } => ("admin_import_pins", Root, Slow),
        // Every identity's subject and IDs.
        Request::AdminIdCheck => ("admin_id_check", Root, Slow),
        Request::AdminLink { .. } => ("admin_link", Root, Slow),
        Request::AdminUnlink { .. } => ("admin_unlink", Root, Slow),
        Request::AdminLinkList => ("admin_link_list", Root, Slow),
        // Moves every identity of an issuer to another provider.
        Request::AdminMigrate { .. } => ("admin_migrate", Root, Slow),
    };
    Rule { name, access, cost }
}

/// Whose records an admitted request may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every record (root, or a public request).
    Everything,
    /// Only the records of this UID.
    Own(u32),
}

/// A request [`admit`] let through, with who sent it and what it may see.
#[derive(Debug)]
pub struct Admitted {
    peer: Peer,
    request: Request,
    rule: Rule,
    scope: Scope,
}

impl Admitted {
    /// Who sent it.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Its row of the table.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The request, who sent it and whose records it may see.
    pub fn into_parts(self) -> (Request, Peer, Scope) {
        (self.request, self.peer, self.scope)
    }
}

/// Applies the table: the request to serve, or the answer for a peer that may not send it.
pub fn admit(peer: Peer, request: Request) -> Result<Admitted, Box<Response>> {
    let rule = rule(&request);
    let scope = match (rule.access, peer.is_root()) {
        (_, true) | (Access::Anyone, false) => Scope::Everything,
        (Access::OwnRecord, false) => Scope::Own(peer.uid),
        (Access::Root, false) => {
            log::info!(
                "{} refused to uid {} (pid {}): root only",
                rule.name,
                peer.uid,
                peer.pid
            );
            return Err(Box::new(Response::error(
                ErrorCode::PermissionDenied,
                format!("{} needs root", rule.name),
            )));
        }
    };
    Ok(Admitted {
        peer,
        request,
        rule,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: Peer = Peer {
        uid: 65534,
        gid: 65534,
        pid: 1,
    };
    const ROOT: Peer = Peer {
        uid: 0,
        gid: 0,
        pid: 1,
    };

    /// Each row names the request's wire type, and every request is in the table.
    #[test]
    fn every_request_has_a_row_named_after_its_wire_type() {
        for req in Request::one_of_each() {
            let wire = serde_json::to_value(&req).unwrap()["type"].clone();
            assert_eq!(rule(&req).name, wire, "{req:?}");
        }
    }

    /// Root may send everything and sees everything.
    #[test]
    fn root_is_admitted_to_everything() {
        for req in Request::one_of_each() {
            let a = admit(ROOT, req).unwrap();
            assert_eq!(a.into_parts().2, Scope::Everything);
        }
    }

    /// A non-root peer gets permission_denied for every root-only request, its own records
    /// for the own-record reads, and the public requests unchanged.
    #[test]
    fn non_root_gets_public_requests_and_own_records_only() {
        for req in Request::one_of_each() {
            let r = rule(&req);
            match (r.access, admit(NOBODY, req)) {
                (Access::Root, Err(denied)) => {
                    let Response::Error { code, .. } = *denied else {
                        panic!("{denied:?}")
                    };
                    assert_eq!(code, ErrorCode::PermissionDenied, "{}", r.name);
                }
                (Access::Anyone, Ok(a)) => assert_eq!(a.into_parts().2, Scope::Everything),
                (Access::OwnRecord, Ok(a)) => assert_eq!(a.into_parts().2, Scope::Own(65534)),
                (access, other) => panic!("{}: {access:?} gave {other:?}", r.name),
            }
        }
    }

    /// Only root's requests may get a thread of their own; logins, the account phase and
    /// every change are root's.
    #[test]
    fn slow_requests_and_logins_are_root_only() {
        for req in Request::one_of_each() {
            let r = rule(&req);
            if r.cost == Cost::Slow || r.name.starts_with("login_") || r.name == "account_check" {
                assert_eq!(r.access, Access::Root, "{}", r.name);
            }
        }
    }
}
