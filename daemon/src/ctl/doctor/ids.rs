//! The fleet's IDs on this host (issue 13): identities whose ID is not the one their pin in an
//! imported ID map gives (an error: two hosts disagree about a person's files) or, without a
//! pin, the one the fleet's rule gives (a warning: left by an earlier release's SSH-first or
//! probing; other hosts give the rule's); and, with `--map`, every identity whose ID here
//! differs from the fleet map's.

use std::collections::HashMap;
use std::path::Path;

use oidc_proto::types::{FleetMap, IdFinding};
use oidc_proto::{Request, Response};

use super::Report;
use crate::ctl::idmap::{self, Failed};

const C: &str = "ids";

/// Entries listed one by one before the rest are counted.
const LISTED: usize = 10;

/// Asks the daemon for its check and compares with `map` when given. Skipped (with a note)
/// when the daemon cannot be asked: the daemon check says why.
pub(super) fn check(r: &mut Report, socket: &Path, map: Option<&Path>) {
    let check = match idmap::call(socket, &Request::AdminIdCheck) {
        Ok(Response::IdCheck(c)) => c,
        Ok(Response::Error { message, .. }) => {
            r.warn(
                C,
                format!("cannot check the IDs: {message}"),
                "run oidcctl doctor as root",
            );
            return;
        }
        Ok(other) => {
            r.warn(
                C,
                format!("cannot check the IDs: the daemon answered {other:?}"),
                "restart oidcd after an upgrade (systemctl restart oidcd)",
            );
            return;
        }
        Err(_) => return,
    };
    let (pinned, rule): (Vec<&IdFinding>, Vec<&IdFinding>) =
        check.findings.iter().partition(|f| f.pinned);
    for f in pinned.iter().take(LISTED) {
        r.error(
            C,
            format!(
                "{} {} ({:?} at {}) has {} {} here, the fleet's ID map pins {}",
                f.kind,
                f.name,
                f.key,
                f.issuer,
                id_name(f),
                f.id,
                f.expected.unwrap_or_default()
            ),
            "IDs never change by themselves: renumber it here by hand (its files too), or make \
             the map agree with this host (oidcctl export here, oidcctl idmap merge, oidcctl \
             import on every host)",
        );
    }
    for f in rule.iter().take(LISTED) {
        r.warn(
            C,
            format!(
                "{} {} ({:?} at {}) has {} {} here; hosts where it is free give it {}",
                f.kind,
                f.name,
                f.key,
                f.issuer,
                id_name(f),
                f.id,
                f.expected
                    .map_or_else(|| "none".to_string(), |e| e.to_string())
            ),
            "pin this host's IDs for the fleet: oidcctl export > map.json here, oidcctl idmap \
             merge with the fleet's map, oidcctl import of the result on every host",
        );
    }
    let listed = pinned.len().min(LISTED) + rule.len().min(LISTED);
    let more = usize::try_from(check.differing)
        .unwrap_or(usize::MAX)
        .saturating_sub(listed);
    if more > 0 {
        r.warn(
            C,
            format!("{more} more identities have IDs other than the fleet's"),
            "oidcctl doctor --json lists the first 100; oidcctl export shows them all",
        );
    }
    if check.differing == 0 {
        r.ok(
            C,
            format!(
                "{} users and groups checked: every ID is the one the fleet's rule or ID map \
                 gives ({} pins imported)",
                check.checked, check.pins
            ),
        );
    }
    if let Some(path) = map {
        against_map(r, socket, path);
    }
}

fn id_name(f: &IdFinding) -> &'static str {
    if f.kind == "user" { "UID" } else { "GID" }
}

/// Every identity whose ID here differs from `path`'s, and every ID of `path` another identity
/// holds here.
fn against_map(r: &mut Report, socket: &Path, path: &Path) {
    let fleet = match idmap::read(path, true) {
        Ok(m) => m,
        Err(e) => {
            r.error(
                C,
                e,
                "export the fleet's map again (oidcctl export, oidcctl idmap merge)",
            );
            return;
        }
    };
    let here = match idmap::export(socket, None) {
        Ok(m) => m,
        Err(Failed::Answer(resp)) => {
            r.warn(
                C,
                format!("cannot read this host's map: {resp:?}"),
                "run it as root",
            );
            return;
        }
        Err(Failed::Unreachable(_)) => return,
    };
    let differing = compare(&fleet, &here);
    for d in differing.iter().take(LISTED) {
        r.error(
            C,
            d.clone(),
            format!(
                "renumber it here by hand, or change {} (oidcctl idmap merge refuses the \
                 disagreement until one side is pinned)",
                path.display()
            ),
        );
    }
    if differing.len() > LISTED {
        r.error(
            C,
            format!(
                "{} more disagree with {}",
                differing.len() - LISTED,
                path.display()
            ),
            "oidcctl export here and compare",
        );
    }
    if differing.is_empty() {
        r.ok(
            C,
            format!(
                "this host agrees with {} ({} users, {} groups)",
                path.display(),
                fleet.users.len(),
                fleet.groups.len()
            ),
        );
    }
}

/// What `fleet` and `here` disagree about, one line each.
fn compare(fleet: &FleetMap, here: &FleetMap) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_identity = HashMap::new();
    let mut by_id = HashMap::new();
    for u in &here.users {
        by_identity.insert(("user", u.issuer.as_str(), u.sub.as_str()), u.uid);
        by_id.insert(
            u.uid,
            format!("the user {} (sub {:?} at {})", u.name, u.sub, u.issuer),
        );
    }
    for g in &here.groups {
        by_identity.insert(
            ("group", g.issuer.as_str(), g.provider_name.as_str()),
            g.gid,
        );
        by_id.insert(
            g.gid,
            format!(
                "the group {} ({:?} at {})",
                g.name, g.provider_name, g.issuer
            ),
        );
    }
    let entries = (fleet.users.iter())
        .map(|u| {
            (
                "user",
                "UID",
                u.issuer.as_str(),
                u.sub.as_str(),
                u.name.as_str(),
                u.uid,
            )
        })
        .chain(fleet.groups.iter().map(|g| {
            let (i, k) = (g.issuer.as_str(), g.provider_name.as_str());
            ("group", "GID", i, k, g.name.as_str(), g.gid)
        }));
    for (kind, idn, issuer, key, name, id) in entries {
        match by_identity.get(&(kind, issuer, key)) {
            Some(&mine) if mine != id => out.push(format!(
                "{kind} {name} ({key:?} at {issuer}) has {idn} {mine} here, the fleet map says {id}"
            )),
            Some(_) => {}
            None => {
                if let Some(holder) = by_id.get(&id) {
                    out.push(format!(
                        "{idn} {id} of {kind} {name} ({key:?} at {issuer}) in the fleet map is \
                         {holder} here"
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use oidc_proto::types::PinnedUser;

    use super::*;

    fn user(sub: &str, name: &str, uid: u32) -> PinnedUser {
        PinnedUser {
            issuer: "https://idp".into(),
            sub: sub.into(),
            name: name.into(),
            uid,
        }
    }

    /// A host that gave an identity another UID, or gave a map's UID to someone else, is
    /// reported; identities absent here are not.
    #[test]
    fn disagreements_with_the_fleet_map_are_named() {
        let fleet = FleetMap {
            users: vec![
                user("a", "alice", 2_000_000),
                user("b", "bob", 2_000_001),
                user("c", "carol", 2_000_002),
                user("d", "dave", 2_000_003),
            ],
            ..FleetMap::default()
        };
        let here = FleetMap {
            users: vec![
                user("a", "alice", 2_000_000),
                user("b", "bob", 2_000_009),
                user("x", "mallory", 2_000_002),
            ],
            ..FleetMap::default()
        };
        let d = compare(&fleet, &here);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("bob") && d[0].contains("2000009"), "{d:?}");
        assert!(d[1].contains("carol") && d[1].contains("mallory"), "{d:?}");
    }
}
