//! The cross-check of the simulation: a host's arrivals replayed through the real SQLite
//! [`Store`], every UID and GID compared with the in-memory host's.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{Entity, Path, Pins, Plan, Policy, Rng, World, simulate};
use crate::config::{Config, ProviderConfig};
use crate::identity::local::LocalAccounts;
use crate::identity::mapping::{MappedGroup, MappedUser};
use crate::store::{NewIds, Source, Store};

/// Replays the first `spec.verify` hosts' arrivals through the SQLite store and compares every
/// UID and GID with the in-memory host's. Arrivals per second through the store.
pub(super) fn verify(w: &World<'_>, pins: Option<&Pins>) -> Result<(usize, f64), String> {
    let hosts = w.spec.verify.min(w.spec.hosts);
    let mut events = 0u64;
    let mut busy = Duration::ZERO;
    for h in 0..hosts {
        let plan = w.plan(h);
        let mem = simulate(w, &plan, pins, Policy::Fleet);
        let started = Instant::now();
        let (uids, gids) = replay(w, &plan, pins)?;
        busy += started.elapsed();
        events += plan.events.len() as u64;
        for (i, (&a, &b)) in mem.uids.iter().zip(&uids).enumerate() {
            if a != b {
                return Err(format!(
                    "host {h}: {} has UID {a} in memory, {b} in the store",
                    w.people[i].name
                ));
            }
        }
        for (g, (&a, &b)) in mem.gids.iter().zip(&gids).enumerate() {
            if a != b {
                return Err(format!(
                    "host {h}: group {} has GID {a} in memory, {b} in the store",
                    w.groups[g].2
                ));
            }
        }
    }
    Ok((hosts, events as f64 / busy.as_secs_f64().max(1e-9)))
}

/// A host's arrivals through the real store (every path ends in `Store::apply_user`, as a
/// login, an import or a refresh does), with its local accounts in files and the fleet map
/// imported first.
fn replay(w: &World<'_>, plan: &Plan, pins: Option<&Pins>) -> Result<(Vec<u32>, Vec<u32>), String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let dir = std::env::temp_dir().join(format!(
        "oidcd-fleet-sim-{}-{:x}",
        std::process::id(),
        Rng(plan.events.len() as u64).next()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut passwd = String::from("root:x:0:0::/root:/bin/sh\n");
    for (n, id) in plan.local.iter().enumerate() {
        let _ = writeln!(passwd, "svc{n}:x:{id}:{id}::/:/bin/sh");
    }
    let (pp, gp) = (dir.join("passwd"), dir.join("group"));
    std::fs::write(&pp, passwd).map_err(|e| e.to_string())?;
    std::fs::write(&gp, "root:x:0:\n").map_err(|e| e.to_string())?;
    let mut local = LocalAccounts::from_paths(&pp, &gp);
    local.refresh().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut cfg = Config::default();
    cfg.mapping.uids = w.spec.uids;
    cfg.mapping.gids = w.spec.gids;
    cfg.providers = w
        .issuers
        .iter()
        .enumerate()
        .map(|(n, issuer)| ProviderConfig {
            id: format!("p{n}"),
            issuer: issuer.clone(),
            client_id: "oidcd".into(),
            client_secret: None,
            client_auth: None,
            scopes: vec!["openid".into()],
            ca_file: None,
            insecure_http_issuer: false,
            offline_access: true,
            claims: cfg.claims.clone(),
            access: cfg.access.clone(),
            // The ranges are the host's, whatever the provider.
            mapping: cfg.mapping.clone(),
        })
        .collect();
    let scoped: Vec<Config> = cfg.providers.iter().map(|p| cfg.scoped(p)).collect();
    let ctx = |issuer: usize| NewIds {
        issuer: &w.issuers[issuer],
        cfg: &scoped[issuer],
        local: &local,
        now: 1_700_000_000,
    };
    let mut store = Store::open_in_memory().map_err(err)?;
    if let Some(pins) = pins {
        // The fleet map as oidcctl idmap build writes it, imported in one request: all or
        // nothing, as the simulation's host does.
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for &(_, id, entity) in &pins.entry {
            match entity {
                Entity::Person(i) => {
                    let p = &w.people[i];
                    users.push(oidc_proto::types::PinnedUser {
                        issuer: w.issuers[p.issuer].clone(),
                        sub: p.sub.clone(),
                        name: p.name.clone(),
                        uid: id,
                    });
                }
                Entity::Group(g) => {
                    let (issuer, key, name) = &w.groups[g];
                    groups.push(oidc_proto::types::PinnedGroup {
                        issuer: w.issuers[*issuer].clone(),
                        provider_name: key.clone(),
                        name: name.clone(),
                        gid: id,
                    });
                }
            }
        }
        let ctxs: Vec<NewIds<'_>> = (0..w.issuers.len()).map(ctx).collect();
        let _refused = store
            .import_pins(&ctxs, &users, &groups, false)
            .map_err(err)?;
    }
    let mut present = vec![false; w.people.len()];
    for &(i, path) in &plan.events {
        let p = &w.people[i];
        let first = matches!(path, Path::Ssh | Path::Console | Path::Import);
        if !first && !present[i] {
            continue;
        }
        let mut gs = p.groups.clone();
        if path == Path::Refresh {
            gs.push(p.later_group);
        }
        let user = MappedUser {
            sub: p.sub.clone(),
            name: p.name.clone(),
            gecos: String::new(),
            email: None,
            email_verified: false,
            uid_from_claim: None,
            groups: gs
                .iter()
                .map(|&g| MappedGroup {
                    provider_name: w.groups[g].1.clone(),
                    name: w.groups[g].2.clone(),
                    gid_from_claim: None,
                })
                .collect(),
            is_admin: false,
            notes: Vec::new(),
        };
        let source = if path == Path::Import {
            Source::Import
        } else {
            Source::Login
        };
        match store.apply_user(
            &ctx(p.issuer),
            &user,
            &serde_json::Value::Null,
            source,
            None,
        ) {
            Ok(_) => present[i] = true,
            Err(crate::store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut uids = vec![0; w.people.len()];
    for (i, p) in w.people.iter().enumerate() {
        if let Some(u) = store.user_by_name(&p.name).map_err(err)? {
            uids[i] = u.uid;
        }
    }
    let mut gids = vec![0; w.groups.len()];
    for (g, (_, _, name)) in w.groups.iter().enumerate() {
        if let Some(grp) = store.group_by_name(name).map_err(err)? {
            gids[g] = grp.gid;
        }
    }
    Ok((uids, gids))
}
