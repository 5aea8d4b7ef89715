//! A user's provider groups: read from one claim or several combined, told apart from "unknown"
//! (a groups overage), and given Unix names by the mapping rules.
//!
//! No group is dropped without a log line: a group whose name is not usable, is reserved or
//! local, or collides with another group's name is left out with a note saying why and what to
//! change, and the login logs every note.

use serde_json::Value;

use super::local::LocalAccounts;
use super::mapping::{MAX_CLAIM_LEN, MAX_GROUPS, MAX_RAW_GROUPS, MappedGroup, Refusal, bad, kind};
use super::names::{self, glob_match};
use crate::config::{ClaimPath, Config, GroupPath, MappingConfig};

/// The groups a provider sent for a user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimedGroups {
    /// Provider group names from every groups claim, without repeats, in claim order.
    pub names: Vec<String>,
    /// Set when the provider left the groups out and said so (Entra ID's groups overage:
    /// `_claim_names` points elsewhere instead of a `groups` claim): what it said.
    pub unknown: Option<String>,
}

/// Reads every claim of `claims.groups_claim` and combines them. Absent or null is no groups;
/// a single string is one group; otherwise an array of strings.
pub fn claimed(claims: &Value, cfg: &Config) -> Result<ClaimedGroups, Refusal> {
    let mut out = ClaimedGroups::default();
    let mut found_any = false;
    for path in &cfg.claims.groups {
        let Some(items) = one_claim(claims, path)? else {
            continue;
        };
        found_any = true;
        for g in items {
            if !out.names.contains(&g) {
                out.names.push(g);
            }
        }
        if out.names.len() > MAX_RAW_GROUPS {
            return Err(bad(
                &path.0,
                &format!("more than {MAX_RAW_GROUPS} groups in all"),
            ));
        }
    }
    if !found_any {
        out.unknown = overage(claims, &cfg.claims.groups);
    }
    Ok(out)
}

/// A groups overage: the claim is absent and `_claim_names` names it (OpenID Connect Core
/// §5.6.2 distributed claims; Entra ID does this for users in more than 200 groups).
fn overage(claims: &Value, paths: &[ClaimPath]) -> Option<String> {
    let names = claims.get("_claim_names")?.as_object()?;
    paths.iter().find_map(|p| {
        let top = p.0.split('.').next().unwrap_or(&p.0);
        let key = if names.contains_key(&p.0) { &p.0 } else { top };
        names.get(key).map(|source| {
            let endpoint = source
                .as_str()
                .and_then(|s| {
                    claims
                        .get("_claim_sources")?
                        .get(s)?
                        .get("endpoint")?
                        .as_str()
                })
                .filter(|e| e.len() <= 200 && !e.chars().any(char::is_control));
            match endpoint {
                Some(e) => format!(
                    "the provider sent no {key:?} claim but a reference to {e} (a groups \
                     overage: the user is in too many groups)"
                ),
                None => format!(
                    "the provider sent no {key:?} claim but a reference to another source (a \
                     groups overage: the user is in too many groups)"
                ),
            }
        })
    })
}

fn one_claim(claims: &Value, path: &ClaimPath) -> Result<Option<Vec<String>>, Refusal> {
    let items = match path.find(claims) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(bad(
                &path.0,
                &format!("must be an array of strings, not {}", kind(other)),
            ));
        }
    };
    if items.len() > MAX_RAW_GROUPS {
        return Err(bad(
            &path.0,
            &format!("{} entries, more than {MAX_RAW_GROUPS}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) if s.len() <= MAX_CLAIM_LEN && !s.is_empty() => {
                if s.chars().any(char::is_control) {
                    return Err(bad(&path.0, "has a group name with control characters"));
                }
                out.push(s);
            }
            Value::String(_) => return Err(bad(&path.0, "has an empty or overlong group name")),
            other => {
                return Err(bad(
                    &path.0,
                    &format!("must be an array of strings, found {}", kind(&other)),
                ));
            }
        }
    }
    Ok(Some(out))
}

/// Whether `list` (from the configuration) names provider group `g`, exactly or, with
/// `access.ignore_group_case`, without regard to ASCII case.
pub fn listed(list: &[String], g: &str, ignore_case: bool) -> bool {
    list.iter()
        .any(|x| x == g || (ignore_case && x.eq_ignore_ascii_case(g)))
}

/// The groups kept for user `user`, with their Unix names, and a note for every group left out.
pub fn map(
    raw: &[String],
    user: &str,
    cfg: &Config,
    local: &LocalAccounts,
) -> Result<(Vec<MappedGroup>, Vec<String>), Refusal> {
    let m = &cfg.mapping;
    let mut candidates: Vec<MappedGroup> = Vec::new();
    let mut notes = Vec::new();
    for g in raw {
        if !m.groups_include.is_empty() && !m.groups_include.iter().any(|p| glob_match(p, g)) {
            continue;
        }
        if m.groups_exclude.iter().any(|p| glob_match(p, g)) {
            continue;
        }
        let name = unix_name(g, m);
        if !names::is_valid_name(&name, !m.lowercase_names) {
            notes.push(format!(
                "group {g:?} skipped: {name:?} is not a safe Unix name{}",
                hint(g, m)
            ));
            continue;
        }
        if name == user {
            notes.push(format!(
                "group {g:?} skipped: its name equals the user's private group"
            ));
            continue;
        }
        if let Err(r) = super::mapping::check_not_local(&name, cfg, local) {
            notes.push(format!("group {g:?} skipped: {r}"));
            continue;
        }
        candidates.push(MappedGroup {
            provider_name: g.clone(),
            name,
            gid_from_claim: None,
        });
    }
    // Two provider groups with one Unix name: neither is kept, whichever came first, so that
    // the name never stands for one group for some users and the other for the rest.
    let mut kept = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let rivals: Vec<&str> = candidates
            .iter()
            .filter(|o| o.name == c.name && o.provider_name != c.provider_name)
            .map(|o| o.provider_name.as_str())
            .collect();
        if rivals.is_empty() {
            kept.push(c.clone());
        } else {
            notes.push(format!(
                "group {:?} refused: it and {rivals:?} all map to {:?}; give them distinct \
                 names in mapping.group_names",
                c.provider_name, c.name
            ));
        }
    }
    if kept.len() > MAX_GROUPS {
        let claim = cfg.claims.groups.first().map_or("groups", |p| p.0.as_str());
        return Err(bad(
            claim,
            &format!(
                "{} groups after filtering, more than the {MAX_GROUPS} allowed: narrow them with \
                 mapping.groups_include",
                kept.len()
            ),
        ));
    }
    Ok((kept, notes))
}

/// The Unix name of provider group `g`: its `group_names` entry, else the name without the
/// first matching `group_strip_prefixes`, shaped by `group_path`, after `group_prefix`, and
/// lowercased with `lowercase_names`.
pub fn unix_name(g: &str, m: &MappingConfig) -> String {
    if let Some(n) = m.group_names.get(g) {
        return n.clone();
    }
    let mut rest = g;
    for prefix in &m.group_strip_prefixes {
        if let Some(r) = rest.strip_prefix(prefix.as_str()) {
            rest = r;
            break;
        }
    }
    let shaped = match m.group_path {
        GroupPath::Keep => rest.to_string(),
        GroupPath::Dash => rest.trim_matches('/').replace('/', "-"),
        GroupPath::Last => rest
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(rest)
            .to_string(),
    };
    let name = format!("{}{shaped}", m.group_prefix);
    if m.lowercase_names {
        // ASCII only, as for user names: no look-alike may fold into another group's name.
        name.to_ascii_lowercase()
    } else {
        name
    }
}

/// What to change for a group whose name is not usable.
fn hint(g: &str, m: &MappingConfig) -> &'static str {
    let guid = g.len() == 36
        && g.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    if guid {
        " (an object id: give it a name in mapping.group_names)"
    } else if g.contains('/') && m.group_path == GroupPath::Keep {
        " (a group path: set mapping.group_path = \"dash\" or \"last\", or name it in \
         mapping.group_names)"
    } else {
        " (name it in mapping.group_names)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nobody() -> LocalAccounts {
        LocalAccounts::from_paths(
            std::path::Path::new("/nonexistent/passwd"),
            std::path::Path::new("/nonexistent/group"),
        )
    }

    fn names_of(kept: &[MappedGroup]) -> Vec<&str> {
        kept.iter().map(|g| g.name.as_str()).collect()
    }

    /// Keycloak: `groups`, realm roles and client roles read together, repeats once.
    #[test]
    fn several_claims_are_combined() {
        let mut cfg = Config::default();
        cfg.claims.groups = [
            "groups",
            "realm_access.roles",
            "resource_access.pam-oidc.roles",
        ]
        .map(|p| ClaimPath(p.into()))
        .to_vec();
        let claims = json!({
            "groups": ["/staff"], "realm_access": {"roles": ["admin", "staff-role"]},
            "resource_access": {"pam-oidc": {"roles": ["ops", "admin"]}, "other": {"roles": ["x"]}}
        });
        let c = claimed(&claims, &cfg).unwrap();
        assert_eq!(c.names, ["/staff", "admin", "staff-role", "ops"]);
        assert_eq!(c.unknown, None);
    }

    /// A string where a list is expected is one group.
    #[test]
    fn a_string_is_one_group() {
        let c = claimed(&json!({"groups": "acme/devs"}), &Config::default()).unwrap();
        assert_eq!(c.names, ["acme/devs"]);
    }

    /// Entra's overage: no groups claim, `_claim_names` pointing elsewhere: groups unknown,
    /// with the endpoint named; no overage when the claim is there.
    #[test]
    fn overage_means_unknown() {
        let claims = json!({"_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/t/users/u/getMemberObjects"}}});
        let c = claimed(&claims, &Config::default()).unwrap();
        assert!(c.names.is_empty());
        let why = c.unknown.unwrap();
        assert!(
            why.contains("groups overage") && why.contains("graph.windows.net"),
            "{why}"
        );
        let both = json!({"groups": ["a"], "_claim_names": {"groups": "src1"}});
        assert_eq!(claimed(&both, &Config::default()).unwrap().unknown, None);
        assert_eq!(
            claimed(&json!({}), &Config::default()).unwrap().unknown,
            None
        );
    }

    /// GitLab paths: kept as they are (refused, with a hint), dashed, or cut to the last
    /// segment; an explicit table wins over the rule.
    #[test]
    fn path_rules_and_table() {
        let mut cfg = Config::default();
        let raw = ["acme/infra/linux".to_string(), "/staff/devs".to_string()];
        let (kept, notes) = map(&raw, "alice", &cfg, &nobody()).unwrap();
        assert!(kept.is_empty());
        assert!(notes[0].contains("mapping.group_path"), "{notes:?}");
        cfg.mapping.group_path = GroupPath::Dash;
        let (kept, _) = map(&raw, "alice", &cfg, &nobody()).unwrap();
        assert_eq!(names_of(&kept), ["acme-infra-linux", "staff-devs"]);
        cfg.mapping.group_path = GroupPath::Last;
        cfg.mapping.group_names = [("acme/infra/linux".to_string(), "linux-admins".to_string())]
            .into_iter()
            .collect();
        let (kept, _) = map(&raw, "alice", &cfg, &nobody()).unwrap();
        assert_eq!(names_of(&kept), ["linux-admins", "devs"]);
    }

    /// Two provider groups that map to one name are both refused, with a note naming both.
    #[test]
    fn collisions_are_refused() {
        let mut cfg = Config::default();
        cfg.mapping.group_path = GroupPath::Last;
        let raw = ["a/dev", "b/dev", "c/ops"].map(String::from);
        let (kept, notes) = map(&raw, "alice", &cfg, &nobody()).unwrap();
        assert_eq!(names_of(&kept), ["ops"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("\"b/dev\"") && notes[0].contains("refused"),
            "{notes:?}"
        );
    }

    /// Entra object ids are not names: skipped with a hint unless the table names them.
    #[test]
    fn object_ids_need_the_table() {
        let mut cfg = Config::default();
        let id = "8b7d1a2e-4c3f-4e5a-9b6c-1d2e3f4a5b6c".to_string();
        let (kept, notes) = map(std::slice::from_ref(&id), "alice", &cfg, &nobody()).unwrap();
        assert!(kept.is_empty());
        assert!(notes[0].contains("an object id"), "{notes:?}");
        cfg.mapping.group_names = [(id.clone(), "linux-admins".to_string())]
            .into_iter()
            .collect();
        let (kept, _) = map(&[id], "alice", &cfg, &nobody()).unwrap();
        assert_eq!(names_of(&kept), ["linux-admins"]);
    }

    /// Case-insensitive matching is ASCII only and off by default.
    #[test]
    fn listed_ignores_ascii_case_only_when_asked() {
        let list = ["Linux-Admins".to_string()];
        assert!(!listed(&list, "linux-admins", false));
        assert!(listed(&list, "linux-admins", true));
        assert!(!listed(&["k".to_string()], "\u{212A}", true));
    }
}
