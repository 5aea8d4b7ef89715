//! From a provider's claims to a Unix identity, applying the mapping, protection and access
//! rules. Logins and `oidcctl import` both go through [`map_claims`], so an imported user is
//! refused exactly when the same claims at a login would be.

use std::fmt;

use serde_json::Value;

use crate::config::{ClaimPath, Config, GidSource, UidSource};
use crate::identity::groups::{self, ClaimedGroups};
use crate::identity::local::LocalAccounts;
use crate::identity::names;

/// Most entries accepted in a groups claim before any filtering (a bound on work).
pub const MAX_RAW_GROUPS: usize = 10_000;
/// Most groups a user may end up in after filtering (`NGROUPS_MAX` is 65536, but programs
/// break long before; see Himmelblau #1441).
pub const MAX_GROUPS: usize = 1024;
/// Longest string claim accepted.
pub const MAX_CLAIM_LEN: usize = 1024;

/// A user as the claims describe them, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedUser {
    /// The provider's subject.
    pub sub: String,
    /// The Unix name.
    pub name: String,
    /// GECOS, cleaned of characters that would break a passwd line.
    pub gecos: String,
    /// Email address, if any.
    pub email: Option<String>,
    /// Only `true` when the provider said so.
    pub email_verified: bool,
    /// UID from the claim, when `mapping.uid_source = "claim"`.
    pub uid_from_claim: Option<u32>,
    /// Provider groups kept by the filters, with their Unix names.
    pub groups: Vec<MappedGroup>,
    /// Whether the user is in one of `access.admin_groups`.
    pub is_admin: bool,
    /// Groups that were dropped and why (logged, not fatal).
    pub notes: Vec<String>,
}

/// A provider group kept for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedGroup {
    /// Its identity at the provider: the claim value.
    pub provider_name: String,
    /// Its Unix name.
    pub name: String,
    /// Its GID from the claim, when `mapping.gid_source = "claim"`.
    pub gid_from_claim: Option<u32>,
}

/// Why claims do not give a user. Each has its own message for the log and the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A claim is missing or of the wrong type.
    BadClaim {
        /// The claim.
        claim: String,
        /// What is wrong.
        why: String,
    },
    /// The mapped name is not a safe Unix name.
    InvalidName {
        /// The value before mapping.
        raw: String,
        /// What is wrong.
        why: String,
    },
    /// The name or ID belongs to the host (reserved or in /etc/passwd or /etc/group).
    LocalCollision {
        /// The colliding name or ID.
        what: String,
    },
    /// Another NSS source (sss, ldap, winbind, systemd, extrausers...) has the name.
    OtherSource {
        /// The name.
        what: String,
    },
    /// Not in `access.allowed_groups`.
    NotInAllowedGroups,
    /// Email domain not in `access.allowed_email_domains`.
    EmailDomain {
        /// The address (or "none").
        email: String,
    },
    /// `claims.domain_claim` absent or not in `access.allowed_email_domains`.
    DomainClaim {
        /// The claim.
        claim: String,
        /// Its value, if any.
        value: Option<String>,
    },
    /// `access.require_email_verified` and the email is not verified.
    EmailNotVerified,
    /// The user name comes from the email address (`claims.username_claim` is the email
    /// claim), which the provider has not verified: whoever set it first would own the name.
    NameFromUnverifiedEmail {
        /// The address.
        email: String,
    },
    /// `access.allowed_groups` is set and the provider did not send the groups (an overage).
    GroupsUnknown {
        /// What the provider sent instead.
        why: String,
    },
    /// The host's account files could not be read, so no new name can be checked.
    LocalFilesUnreadable(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadClaim { claim, why } => write!(f, "claim {claim:?}: {why}"),
            Self::InvalidName { raw, why } => write!(f, "name {raw:?} is refused: {why}"),
            Self::LocalCollision { what } => write!(
                f,
                "{what} belongs to a local account or is reserved (allow it explicitly with \
                 mapping.allow_names)"
            ),
            Self::OtherSource { what } => write!(
                f,
                "{what} is already an account or group of another NSS source on this host \
                 (see nsswitch.conf; allow it explicitly with mapping.allow_names)"
            ),
            Self::NotInAllowedGroups => {
                f.write_str("not a member of any group in access.allowed_groups")
            }
            Self::EmailDomain { email } => {
                write!(
                    f,
                    "email {email:?} is not in a domain listed in access.allowed_email_domains"
                )
            }
            Self::DomainClaim { claim, value } => match value {
                Some(v) => write!(
                    f,
                    "domain {v:?} (claim {claim:?}) is not listed in access.allowed_email_domains"
                ),
                None => write!(
                    f,
                    "no {claim:?} claim (claims.domain_claim), so no domain listed in \
                     access.allowed_email_domains (a personal account has none)"
                ),
            },
            Self::EmailNotVerified => f.write_str(
                "email address not verified by the provider (access.require_email_verified)",
            ),
            Self::NameFromUnverifiedEmail { email } => write!(
                f,
                "the user name would come from the email address {email:?}, which the provider \
                 has not verified (email_verified is not true)"
            ),
            Self::GroupsUnknown { why } => write!(
                f,
                "the user's groups are unknown and access.allowed_groups is set: {why}; \
                 have the provider send fewer groups (Entra ID: a group filter or app roles in \
                 the app registration)"
            ),
            Self::LocalFilesUnreadable(e) => {
                write!(f, "cannot read /etc/passwd or /etc/group: {e}")
            }
        }
    }
}

/// Maps `claims` (the merged ID token and userinfo claims) under `cfg`, checking names
/// against the host's accounts and the access gates.
pub fn map_claims(
    claims: &Value,
    cfg: &Config,
    local: &LocalAccounts,
) -> Result<MappedUser, Refusal> {
    if !claims.is_object() {
        return Err(bad("(claims)", "must be a JSON object"));
    }
    let sub =
        string_claim(claims, &ClaimPath("sub".into()))?.ok_or_else(|| bad("sub", "is required"))?;
    if sub.is_empty() {
        return Err(bad("sub", "must not be empty"));
    }
    let raw_name = string_claim(claims, &cfg.claims.username)?
        .ok_or_else(|| bad(&cfg.claims.username.0, "is required to name the user"))?;
    if name_comes_from_email(cfg) && !email_verified(claims) {
        return Err(Refusal::NameFromUnverifiedEmail { email: raw_name });
    }
    let name = map_user_name(&raw_name, cfg)?;
    check_not_local(&name, cfg, local)?;

    // A display name is cleaned rather than refused: it only decorates the passwd entry.
    let gecos = match cfg.claims.gecos.find(claims) {
        Some(Value::String(s)) => clean_gecos(s),
        _ => String::new(),
    };
    let email = string_claim(claims, &cfg.claims.email)?;
    let email_verified = email_verified(claims);
    let uid_from_claim = match (&cfg.mapping.uid_source, &cfg.claims.uid) {
        (UidSource::Claim, Some(path)) => Some(uid_claim(claims, path)?),
        _ => None,
    };

    let groups = groups::claimed(claims, cfg)?;
    let email_domain = domain(claims, cfg, email.as_deref())?;
    gates(&groups, email_domain, email.as_deref(), email_verified, cfg)?;
    let access = &cfg.access;
    let is_admin = groups.unknown.is_none()
        && groups
            .names
            .iter()
            .any(|g| groups::listed(&access.admin_groups, g, access.ignore_group_case));
    let (groups, notes) = match &groups.unknown {
        Some(why) => (
            Vec::new(),
            vec![format!(
                "groups unknown: {why}; the user gets no provider groups and no admin rights \
                 at this login"
            )],
        ),
        None => groups::map(&groups.names, &name, cfg, local)?,
    };
    let (groups, notes) = gids_from_claim(claims, cfg, groups, notes)?;
    Ok(MappedUser {
        sub,
        name,
        gecos,
        email,
        email_verified,
        uid_from_claim,
        groups,
        is_admin,
        notes,
    })
}

/// The access gates alone (`allowed_groups`, `allowed_email_domains`,
/// `require_email_verified`), for accounts that are not mapped (linked local accounts) and for
/// re-checking a stored user at `account` time.
pub fn check_access(claims: &Value, cfg: &Config) -> Result<(), Refusal> {
    let groups = groups::claimed(claims, cfg)?;
    let email = string_claim(claims, &cfg.claims.email)?;
    let email_domain = domain(claims, cfg, email.as_deref())?;
    gates(
        &groups,
        email_domain,
        email.as_deref(),
        email_verified(claims),
        cfg,
    )
}

/// The domain `access.allowed_email_domains` checks: `claims.domain_claim` when set (Google's
/// `hd`, the Workspace domain, which a personal account never has), else the email's.
fn domain(claims: &Value, cfg: &Config, email: Option<&str>) -> Result<Option<String>, Refusal> {
    Ok(match &cfg.claims.domain {
        Some(path) => string_claim(claims, path)?,
        None => email
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_string()),
    }
    .map(|d| d.to_ascii_lowercase()))
}

fn gates(
    groups: &ClaimedGroups,
    domain: Option<String>,
    email: Option<&str>,
    email_verified: bool,
    cfg: &Config,
) -> Result<(), Refusal> {
    let access = &cfg.access;
    if !access.allowed_groups.is_empty() {
        if let Some(why) = &groups.unknown {
            return Err(Refusal::GroupsUnknown { why: why.clone() });
        }
        if !groups
            .names
            .iter()
            .any(|g| groups::listed(&access.allowed_groups, g, access.ignore_group_case))
        {
            return Err(Refusal::NotInAllowedGroups);
        }
    }
    if !access.allowed_email_domains.is_empty()
        && !domain
            .as_ref()
            .is_some_and(|d| access.allowed_email_domains.contains(d))
    {
        return Err(match &cfg.claims.domain {
            Some(path) => Refusal::DomainClaim {
                claim: path.0.clone(),
                value: domain,
            },
            None => Refusal::EmailDomain {
                email: email.unwrap_or("none").to_string(),
            },
        });
    }
    if access.require_email_verified && !email_verified {
        return Err(Refusal::EmailNotVerified);
    }
    Ok(())
}

/// Whether the user name is read from the email claim (`username_claim = "email"`, or the
/// same claim as `email_claim`).
pub fn name_comes_from_email(cfg: &Config) -> bool {
    cfg.claims.username == cfg.claims.email || cfg.claims.username.0 == "email"
}

/// `email_verified`: only `true` (or the string "true", as AWS Cognito sends it) counts.
fn email_verified(claims: &Value) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Applies the user-name rules: strip the first matching suffix, lowercase, add the provider's
/// `user_prefix` and `user_suffix`, check.
pub fn map_user_name(raw: &str, cfg: &Config) -> Result<String, Refusal> {
    let m = &cfg.mapping;
    // ASCII case only: full Unicode lowercasing changes byte lengths (the cut below would fall
    // inside a character and panic) and folds look-alikes into ASCII (U+212A KELVIN SIGN
    // becomes "k", so "bob\u{212A}" would take the name "bobk").
    let lower_raw = raw.to_ascii_lowercase();
    let mut name = raw.to_string();
    for suffix in &m.strip_suffixes {
        if lower_raw.ends_with(&suffix.to_ascii_lowercase()) && raw.len() > suffix.len() {
            name.truncate(raw.len() - suffix.len());
            break;
        }
    }
    if m.lowercase_names {
        name = name.to_ascii_lowercase();
    }
    let name = format!("{}{name}{}", m.user_prefix, m.user_suffix);
    if !names::is_valid_name(&name, !m.lowercase_names) {
        return Err(Refusal::InvalidName {
            raw: raw.to_string(),
            why: format!(
                "{name:?} is not a safe Unix name (a letter or _, then letters, digits, _ . -; \
                 at most {} characters)",
                names::MAX_NAME_LEN
            ),
        });
    }
    Ok(name)
}

/// Whether `name` is what the user-name rules make of itself once its provider's prefix and
/// suffix are taken off: a name a login could end in (for provisional entries, made before any
/// claim is seen).
pub fn is_mapped_form(name: &str, cfg: &Config) -> bool {
    let m = &cfg.mapping;
    let Some(base) = name
        .strip_prefix(m.user_prefix.as_str())
        .and_then(|n| n.strip_suffix(m.user_suffix.as_str()))
    else {
        return false;
    };
    map_user_name(base, cfg).ok().as_deref() == Some(name)
}

/// A name may be served only if it is neither reserved nor local, unless the admin allowed it.
pub fn check_not_local(name: &str, cfg: &Config, local: &LocalAccounts) -> Result<(), Refusal> {
    if name == "root" {
        return Err(Refusal::LocalCollision {
            what: "the name \"root\"".into(),
        });
    }
    if cfg.mapping.allow_names.iter().any(|n| n == name) {
        return Ok(());
    }
    if names::is_reserved_name(name) {
        return Err(Refusal::LocalCollision {
            what: format!("the reserved name {name:?}"),
        });
    }
    if local.has_name(name) {
        return Err(Refusal::LocalCollision {
            what: format!("the name {name:?}"),
        });
    }
    if local.others.has_name(name) {
        return Err(Refusal::OtherSource {
            what: format!("the name {name:?}"),
        });
    }
    Ok(())
}

pub(super) fn bad(claim: &str, why: &str) -> Refusal {
    Refusal::BadClaim {
        claim: claim.to_string(),
        why: why.to_string(),
    }
}

/// A string claim: absent or null is `None`; another type, an overlong value or control
/// characters are refusals.
fn string_claim(claims: &Value, path: &ClaimPath) -> Result<Option<String>, Refusal> {
    match path.find(claims) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > MAX_CLAIM_LEN {
                return Err(bad(&path.0, &format!("longer than {MAX_CLAIM_LEN} bytes")));
            }
            if s.chars().any(char::is_control) {
                return Err(bad(&path.0, "contains control characters"));
            }
            Ok(Some(s.clone()))
        }
        Some(other) => Err(bad(
            &path.0,
            &format!("must be a string, not {}", kind(other)),
        )),
    }
}

fn uid_claim(claims: &Value, path: &ClaimPath) -> Result<u32, Refusal> {
    let n = match path.find(claims) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        None | Some(Value::Null) => {
            return Err(bad(&path.0, "is required (mapping.uid_source = \"claim\")"));
        }
        Some(other) => {
            return Err(bad(
                &path.0,
                &format!("must be a number, not {}", kind(other)),
            ));
        }
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(&path.0, "is not a valid UID"))
}

/// Under `mapping.gid_source = "claim"`, each group's GID from the object claim
/// `claims.gid_claim` (`{"developers": 5001, ...}`, keyed by the group's claim value; a number
/// or a numeric string); a group it gives no valid GID is left out, with a note.
fn gids_from_claim(
    claims: &Value,
    cfg: &Config,
    groups: Vec<MappedGroup>,
    mut notes: Vec<String>,
) -> Result<(Vec<MappedGroup>, Vec<String>), Refusal> {
    let (GidSource::Claim, Some(path)) = (cfg.mapping.gid_source, &cfg.claims.gid) else {
        return Ok((groups, notes));
    };
    let table = match path.find(claims) {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(bad(
                &path.0,
                &format!(
                    "must be an object {{\"GROUP\": GID, ...}}, not {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut kept = Vec::with_capacity(groups.len());
    for mut g in groups {
        let gid = match table.and_then(|t| t.get(&g.provider_name)) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            _ => None,
        };
        match gid.and_then(|n| u32::try_from(n).ok()) {
            Some(gid) => {
                g.gid_from_claim = Some(gid);
                kept.push(g);
            }
            None => notes.push(format!(
                "group {:?} skipped: {} gives it no GID (mapping.gid_source = \"claim\")",
                g.provider_name, path.0
            )),
        }
    }
    Ok((kept, notes))
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// GECOS without characters that would break a passwd line (`:` and controls become spaces).
fn clean_gecos(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c == ':' || c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().chars().take(256).collect()
}

#[cfg(test)]
mod tests;
