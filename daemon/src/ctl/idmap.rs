//! The fleet map file (format 2) and the commands that move it: `oidcctl export` (page by page
//! from the daemon, sealed), `oidcctl import` of a map (checked, then pinned in parts, a dry run
//! first), and `oidcctl idmap check|merge|seal` (files only, no daemon).
//!
//! The checksum is SHA-256 over the entries in a canonical form (sorted; each entry as its JSON
//! line), so a map truncated, edited by hand or damaged in transit is refused before anything
//! is applied. It proves integrity, not origin: the map travels as the configuration does (root
//! owned, by configuration management), and `oidcctl idmap seal` re-seals a map an
//! administrator edited on purpose.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use oidc_proto::client::{self, ClientError, TrustedOwner};
use oidc_proto::types::{ErrorCode, FleetMap, IdMap, PinnedGroup, PinnedUser};
use oidc_proto::{Request, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Config, is_reserved_id};
use crate::identity::ids::{self, IdKind, Who};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping;

/// A request's share of the daemon's request limit a part of a map may use.
const PART_BYTES: usize = oidc_proto::frame::MAX_REQUEST_LEN * 7 / 8;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Why a command that talks to the daemon did not succeed.
#[derive(Debug)]
pub enum Failed {
    /// The daemon could not be reached.
    Unreachable(ClientError),
    /// It answered with a refusal (or something unexpected).
    Answer(Box<Response>),
}

/// The checksum of `map`'s entries: `sha256:` and the hex digest of their canonical form.
pub fn checksum(map: &FleetMap) -> String {
    let mut users: Vec<&PinnedUser> = map.users.iter().collect();
    users.sort();
    let mut groups: Vec<&PinnedGroup> = map.groups.iter().collect();
    groups.sort();
    let mut h = Sha256::new();
    h.update(FleetMap::FORMAT.as_bytes());
    h.update(b"\nusers\n");
    for u in users {
        line(&mut h, u);
    }
    h.update(b"groups\n");
    for g in groups {
        line(&mut h, g);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn line(h: &mut Sha256, entry: &impl Serialize) {
    // Serializing a struct of strings and numbers cannot fail.
    h.update(serde_json::to_vec(entry).unwrap_or_default());
    h.update(b"\n");
}

/// `map` sorted and sealed with its checksum.
pub fn sealed(mut map: FleetMap) -> FleetMap {
    map.format = FleetMap::FORMAT.into();
    map.users.sort();
    map.groups.sort();
    map.checksum = checksum(&map);
    map
}

/// Reads a map file (`-`: standard input): format 2, whose checksum must match, or format 1
/// (an older oidcctl's export), converted. `sealed_only` refuses a format-2 map without a
/// checksum (`seal` accepts one).
pub fn read(file: &Path, sealed_only: bool) -> Result<FleetMap, String> {
    let text = read_text(file)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", file.display()))?;
    parse(value, sealed_only).map_err(|e| format!("{}: {e}", file.display()))
}

/// A map from JSON (see [`read`]).
pub fn parse(value: Value, sealed_only: bool) -> Result<FleetMap, String> {
    let format = value.get("format").and_then(Value::as_str).unwrap_or("");
    if format == IdMap::FORMAT {
        let old: IdMap =
            serde_json::from_value(value).map_err(|e| format!("not a valid ID map: {e}"))?;
        let (users, groups) = crate::store::from_format_1(&old)?;
        return Ok(sealed(FleetMap {
            users,
            groups,
            ..FleetMap::default()
        }));
    }
    if format != FleetMap::FORMAT {
        return Err(format!(
            "unknown format {format:?}: expected {:?} (oidcctl export) or {:?}",
            FleetMap::FORMAT,
            IdMap::FORMAT
        ));
    }
    let map: FleetMap =
        serde_json::from_value(value).map_err(|e| format!("not a valid ID map: {e}"))?;
    if map.checksum.is_empty() && !sealed_only {
        return Ok(map);
    }
    let want = checksum(&map);
    if map.checksum != want {
        return Err(if map.checksum.is_empty() {
            "the map has no checksum: seal it with oidcctl idmap seal".into()
        } else {
            format!(
                "checksum mismatch (the file says {}, its entries give {want}): the map was \
                 damaged or edited; export it again, or seal a deliberate edit with oidcctl \
                 idmap seal",
                map.checksum
            )
        });
    }
    Ok(map)
}

fn read_text(file: &Path) -> Result<String, String> {
    if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
    }
}

/// What makes a map unusable: one identity with two IDs, one ID for two identities (a user's
/// UID is also its private GID, so users and groups share the numbers), reserved IDs.
pub fn problems(map: &FleetMap) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_identity: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
    let mut by_id: BTreeMap<u32, (&str, &str, &str, &str)> = BTreeMap::new();
    let entries = (map.users.iter())
        .map(|u| {
            (
                "user",
                u.issuer.as_str(),
                u.sub.as_str(),
                u.name.as_str(),
                u.uid,
            )
        })
        .chain(map.groups.iter().map(|g| {
            let (i, k, n) = (g.issuer.as_str(), g.provider_name.as_str(), g.name.as_str());
            ("group", i, k, n, g.gid)
        }));
    for (kind, issuer, key, name, id) in entries {
        if is_reserved_id(id) {
            out.push(format!(
                "{kind} {name:?} ({key:?} at {issuer}): ID {id} is reserved"
            ));
        }
        match by_identity.insert((kind, issuer, key), id) {
            Some(other) if other != id => out.push(format!(
                "{kind} {name:?} ({key:?} at {issuer}) has two IDs: {other} and {id}"
            )),
            _ => {}
        }
        match by_id.insert(id, (kind, issuer, key, name)) {
            Some((k2, i2, key2, n2)) if (k2, i2, key2) != (kind, issuer, key) => out.push(format!(
                "ID {id} is given to two identities: {k2} {n2:?} ({key2:?} at {i2}) and \
                     {kind} {name:?} ({key:?} at {issuer}); pin one of them to another ID"
            )),
            _ => {}
        }
    }
    out
}

/// The union of `maps`: an identity in several with the same ID once (its name from the last);
/// `Err` lists every conflict.
pub fn merge(maps: Vec<FleetMap>) -> Result<FleetMap, Vec<String>> {
    let mut users: BTreeMap<(String, String), PinnedUser> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), PinnedGroup> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for m in maps {
        for u in m.users {
            let key = (u.issuer.clone(), u.sub.clone());
            if let Some(old) = users.get(&key).filter(|old| old.uid != u.uid) {
                conflicts.push(format!(
                    "user {:?} (sub {:?} at {}) has UID {} in one map and {} in another",
                    u.name, u.sub, u.issuer, old.uid, u.uid
                ));
                continue;
            }
            users.insert(key, u);
        }
        for g in m.groups {
            let key = (g.issuer.clone(), g.provider_name.clone());
            if let Some(old) = groups.get(&key).filter(|old| old.gid != g.gid) {
                conflicts.push(format!(
                    "group {:?} ({:?} at {}) has GID {} in one map and {} in another",
                    g.name, g.provider_name, g.issuer, old.gid, g.gid
                ));
                continue;
            }
            groups.insert(key, g);
        }
    }
    let merged = FleetMap {
        users: users.into_values().collect(),
        groups: groups.into_values().collect(),
        ..FleetMap::default()
    };
    conflicts.extend(problems(&merged));
    if conflicts.is_empty() {
        Ok(sealed(merged))
    } else {
        Err(conflicts)
    }
}

/// `oidcctl idmap build`: the fleet map of a whole directory (claim sets as the providers send
/// them), every group and identity pinned in (kind, issuer, key) order by the fleet's rule with
/// the pins before it skipped ([`ids::pin_in_order`]): no two entries share an ID, and the same
/// directory gives the same map. Claim sets the mapping rules refuse (or whose provider is not
/// configured) are left out, each with a note; they get the rule's ID when they arrive.
pub fn build(cfg: &Config, claims: &[Value]) -> (FleetMap, Vec<String>) {
    let nobody = LocalAccounts::from_paths(Path::new("/nonexistent"), Path::new("/nonexistent"));
    let mut notes = Vec::new();
    let mut users: BTreeMap<(String, String), (String, Option<u32>)> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), (String, Option<u32>)> = BTreeMap::new();
    for (index, c) in claims.iter().enumerate() {
        let p = match c.get("iss").and_then(Value::as_str) {
            Some(iss) => cfg.provider_by_issuer(iss),
            None => cfg.default_provider(),
        };
        let Some(p) = p else {
            notes.push(format!(
                "entry {index}: no configured provider for it: left out"
            ));
            continue;
        };
        let scoped = cfg.scoped(p);
        match mapping::map_claims(c, &scoped, &nobody) {
            Ok(m) => {
                for g in m.groups {
                    groups
                        .entry((p.issuer.clone(), g.provider_name))
                        .or_insert((g.name, g.gid_from_claim));
                }
                users.insert((p.issuer.clone(), m.sub), (m.name, m.uid_from_claim));
            }
            Err(r) => notes.push(format!("entry {index}: {r}: left out")),
        }
    }
    let entries = (groups.iter())
        .map(|((issuer, key), (_, claimed))| {
            let who = Who {
                issuer,
                kind: IdKind::Group,
                key,
            };
            (who, cfg.mapping.gids, *claimed)
        })
        .chain(users.iter().map(|((issuer, key), (_, claimed))| {
            let who = Who {
                issuer,
                kind: IdKind::User,
                key,
            };
            (who, cfg.mapping.uids, *claimed)
        }));
    let ids = ids::pin_in_order(entries);
    let mut map = FleetMap::default();
    let names = (groups.iter().map(|(k, v)| (IdKind::Group, k, &v.0)))
        .chain(users.iter().map(|(k, v)| (IdKind::User, k, &v.0)));
    for ((kind, (issuer, key), name), id) in names.zip(ids) {
        let id = match id {
            Ok(id) => id,
            Err(why) => {
                notes.push(format!("{} {name:?}: {why}: left out", kind.as_str()));
                continue;
            }
        };
        match kind {
            IdKind::User => map.users.push(PinnedUser {
                issuer: issuer.clone(),
                sub: key.clone(),
                name: name.clone(),
                uid: id,
            }),
            IdKind::Group => map.groups.push(PinnedGroup {
                issuer: issuer.clone(),
                provider_name: key.clone(),
                name: name.clone(),
                gid: id,
            }),
        }
    }
    (sealed(map), notes)
}

/// `oidcctl export`: every page of this host's map, sealed.
pub fn export(socket: &Path, provider: Option<&str>) -> Result<FleetMap, Failed> {
    let mut map = FleetMap::default();
    let (mut after_uid, mut after_gid) = (0, 0);
    loop {
        let req = Request::AdminExportPage {
            provider: provider.map(str::to_string),
            after_uid,
            after_gid,
        };
        let page = match call(socket, &req)? {
            Response::MapPage(p) => p,
            other => return Err(Failed::Answer(Box::new(other))),
        };
        if let Some(u) = page.users.last() {
            after_uid = u.uid;
        }
        if let Some(g) = page.groups.last() {
            after_gid = g.gid;
        }
        map.users.extend(page.users);
        map.groups.extend(page.groups);
        if !page.more {
            return Ok(sealed(map));
        }
    }
}

/// `oidcctl import` of a map: checked here, then pinned part by part, each part all or
/// nothing; without `dry_run`, a dry run of every part comes first, so a map refused anywhere
/// changes nothing (unless the host changes between the two passes; the same map can always be
/// applied again). The messages the daemon gave, or the first refusal.
pub fn import(socket: &Path, map: &FleetMap, dry_run: bool) -> Result<Vec<String>, Failed> {
    let found = problems(map);
    if !found.is_empty() {
        return Err(Failed::Answer(Box::new(Response::Error {
            code: ErrorCode::Rejected,
            message: format!(
                "the map is inconsistent ({} problems); nothing was applied",
                found.len()
            ),
            details: found,
        })));
    }
    let parts = parts(map);
    let passes: &[bool] = if dry_run { &[true] } else { &[true, false] };
    let mut said = Vec::new();
    for &dry in passes {
        said.clear();
        for (n, (users, groups)) in parts.iter().enumerate() {
            let req = Request::AdminImportPins {
                users: users.clone(),
                groups: groups.clone(),
                dry_run: dry,
            };
            match call(socket, &req)? {
                Response::Done { message } => said.push(message),
                Response::Error {
                    code,
                    message,
                    details,
                } => {
                    let applied = if dry { 0 } else { n };
                    return Err(Failed::Answer(Box::new(Response::Error {
                        code,
                        message: format!(
                            "part {} of {}: {message}{}",
                            n + 1,
                            parts.len(),
                            if applied > 0 {
                                format!(
                                    " ({applied} earlier parts were applied: fix the entries and \
                                     import the map again)"
                                )
                            } else {
                                " (nothing was applied)".into()
                            }
                        ),
                        details,
                    })));
                }
                other => return Err(Failed::Answer(Box::new(other))),
            }
        }
    }
    Ok(said)
}

/// The map cut in parts that each fit one request: groups first, then users.
fn parts(map: &FleetMap) -> Vec<(Vec<PinnedUser>, Vec<PinnedGroup>)> {
    let mut out = Vec::new();
    let (mut users, mut groups, mut size) = (Vec::new(), Vec::new(), 0);
    for g in &map.groups {
        let n = wire_len(g);
        if size + n > PART_BYTES && !(users.is_empty() && groups.is_empty()) {
            out.push((std::mem::take(&mut users), std::mem::take(&mut groups)));
            size = 0;
        }
        groups.push(g.clone());
        size += n;
    }
    for u in &map.users {
        let n = wire_len(u);
        if size + n > PART_BYTES && !(users.is_empty() && groups.is_empty()) {
            out.push((std::mem::take(&mut users), std::mem::take(&mut groups)));
            size = 0;
        }
        users.push(u.clone());
        size += n;
    }
    if !(users.is_empty() && groups.is_empty()) || out.is_empty() {
        out.push((users, groups));
    }
    out
}

/// An entry's size in a request, with its comma.
fn wire_len(entry: &impl Serialize) -> usize {
    serde_json::to_vec(entry).map_or(0, |v| v.len()) + 1
}

/// One request to the daemon.
pub fn call(socket: &Path, req: &Request) -> Result<Response, Failed> {
    client::call(socket, TrustedOwner::Root, req, TIMEOUT).map_err(Failed::Unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sub: &str, name: &str, uid: u32) -> PinnedUser {
        PinnedUser {
            issuer: "https://idp".into(),
            sub: sub.into(),
            name: name.into(),
            uid,
        }
    }

    fn map(users: Vec<PinnedUser>) -> FleetMap {
        sealed(FleetMap {
            users,
            ..FleetMap::default()
        })
    }

    /// The checksum covers every entry and not their order; a changed entry, a missing
    /// checksum or another format is refused.
    #[test]
    fn the_checksum_catches_any_change() {
        let m = map(vec![
            user("a", "alice", 2_000_000),
            user("b", "bob", 2_000_001),
        ]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(parse(v.clone(), true).unwrap(), m);
        let mut reordered = m.clone();
        reordered.users.reverse();
        assert_eq!(checksum(&reordered), m.checksum);
        let mut edited = v.clone();
        edited["users"][0]["uid"] = 2_000_002.into();
        assert!(
            parse(edited.clone(), true)
                .unwrap_err()
                .contains("checksum mismatch")
        );
        edited["checksum"] = "".into();
        assert!(
            parse(edited.clone(), true)
                .unwrap_err()
                .contains("no checksum")
        );
        assert!(parse(edited, false).is_ok());
        let mut other = v;
        other["format"] = "oidcd-idmap-9".into();
        assert!(parse(other, true).is_err());
    }

    /// A format-1 map (one issuer, gid beside each uid) reads as a sealed format-2 map.
    #[test]
    fn format_1_is_converted() {
        let v = serde_json::json!({"format": "oidcd-idmap-1", "issuer": "https://idp",
            "users": [{"sub": "a", "name": "alice", "uid": 2_000_000, "gid": 2_000_000}],
            "groups": [{"provider_name": "/dev", "name": "dev", "gid": 2_100_000}]});
        let m = parse(v, true).unwrap();
        assert_eq!(m.users, [user("a", "alice", 2_000_000)]);
        assert_eq!(m.groups[0].issuer, "https://idp");
        assert_eq!(m.checksum, checksum(&m));
    }

    /// Merging is a union; the same identity with the same ID is kept once; two IDs for one
    /// identity, or one ID for two, are conflicts naming both.
    #[test]
    fn merge_is_a_union_and_names_conflicts() {
        let a = map(vec![user("a", "alice", 2_000_000)]);
        let b = map(vec![
            user("a", "alice", 2_000_000),
            user("b", "bob", 2_000_001),
        ]);
        let m = merge(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(m.users.len(), 2);
        assert_eq!(merge(vec![b.clone(), a.clone()]).unwrap(), m);
        assert_eq!(merge(vec![m.clone(), m.clone()]).unwrap(), m);
        let two_ids = map(vec![user("a", "alice", 2_000_005)]);
        let e = merge(vec![a.clone(), two_ids]).unwrap_err();
        assert!(e[0].contains("2000000 in one map and 2000005"), "{e:?}");
        let one_id = map(vec![user("c", "carol", 2_000_000)]);
        let e = merge(vec![a, one_id]).unwrap_err();
        assert!(e[0].contains("alice") && e[0].contains("carol"), "{e:?}");
    }

    /// A directory's map: a colliding pair gets distinct UIDs, the same whatever the order of
    /// the claim sets; refused claim sets are left out with a note.
    #[test]
    fn build_pins_a_directory_without_collisions() {
        let mut cfg = Config {
            providers: vec![crate::config::ProviderConfig::for_tests("https://idp")],
            ..Config::default()
        };
        cfg.mapping.uids = crate::config::IdRange {
            min: 2_000_000,
            max: 2_000_099,
        };
        for p in &mut cfg.providers {
            p.mapping.uids = cfg.mapping.uids;
        }
        let claims: Vec<Value> = (0..60)
            .map(|i| serde_json::json!({"sub": format!("s{i}"), "preferred_username": format!("u{i}"), "groups": ["dev"]}))
            .chain([serde_json::json!({"sub": "x", "preferred_username": "root"})])
            .collect();
        let (map, notes) = build(&cfg, &claims);
        assert_eq!((map.users.len(), map.groups.len()), (60, 1));
        assert!(problems(&map).is_empty(), "{:?}", problems(&map));
        assert_eq!(notes.len(), 1, "{notes:?}");
        let mut reversed = claims.clone();
        reversed.reverse();
        assert_eq!(build(&cfg, &reversed).0, map);
    }

    /// A large map is cut into parts under the request limit, groups first, nothing lost.
    #[test]
    fn parts_fit_a_request() {
        let users: Vec<PinnedUser> = (0..20_000)
            .map(|i| {
                user(
                    &format!("subject-{i:08}"),
                    &format!("user{i}"),
                    2_000_000 + i,
                )
            })
            .collect();
        let m = FleetMap {
            groups: vec![PinnedGroup {
                issuer: "https://idp".into(),
                provider_name: "/dev".into(),
                name: "dev".into(),
                gid: 3_000_000,
            }],
            ..map(users)
        };
        let parts = parts(&m);
        assert!(parts.len() > 1);
        assert_eq!(parts[0].1.len(), 1);
        assert_eq!(parts.iter().map(|p| p.0.len()).sum::<usize>(), 20_000);
        for (u, g) in &parts {
            let req = Request::AdminImportPins {
                users: u.clone(),
                groups: g.clone(),
                dry_run: false,
            };
            let size = serde_json::to_vec(&oidc_proto::Envelope::new(&req))
                .unwrap()
                .len();
            assert!(size < oidc_proto::frame::MAX_REQUEST_LEN, "{size}");
        }
    }
}
