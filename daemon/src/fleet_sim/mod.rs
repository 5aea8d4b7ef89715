//! A fleet simulation (issue 13): hosts with the same configuration see the same identities
//! arrive by random paths (SSH first, console, import; later sudo and refresh) in random
//! orders, beside random local accounts, and allocate with the real rule
//! ([`crate::identity::ids::allocate`], through an in-memory [`HostIds`]). It counts what a
//! fleet cares about: identities given two UIDs on two hosts, IDs standing for two identities
//! on two hosts, the colliding pairs, refused arrivals, the extra SSH connections, and the
//! cost. The previous release's policy (probing in arrival order, the provisional UID kept) runs
//! on the same arrivals for comparison, and `verify` hosts replay their arrivals through the
//! real SQLite [`Store`] to check that the in-memory host decides as the store does.
//!
//! Run it with `cargo run --release -p oidcd --example fleet_sim -- --help`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::config::{Config, IdRange, is_reserved_id};
use crate::identity::ids::{self, Allocation, HostIds, IdKind, Who};

mod replay;

use replay::verify;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Hosts in the fleet (the figure reported).
    pub fleet: u64,
    /// Hosts simulated: all of them, or a sample.
    pub hosts: usize,
    /// Identities, each arriving once on every simulated host.
    pub identities: usize,
    /// Providers (issuers) the identities are spread over.
    pub providers: usize,
    /// Hosts with a local account inside the oidcd ranges, per thousand.
    pub local_per_mille: u32,
    /// UID range (GIDs get the range above it, as the defaults do).
    pub uids: IdRange,
    /// The provider groups' range.
    pub gids: IdRange,
    /// Apply a fleet map (exported by a reference host) on every host before the arrivals.
    pub with_map: bool,
    /// Weights of the first arrival paths: SSH first, console, import.
    pub paths: [u32; 3],
    /// Hosts whose arrivals are replayed through the SQLite store and compared.
    pub verify: usize,
    /// Worker threads.
    pub threads: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Spec {
    /// The defaults: the default ranges, two providers, 5% of hosts with a local account in
    /// range.
    pub fn new(fleet: u64, hosts: usize, identities: usize) -> Self {
        let d = Config::default();
        Self {
            fleet,
            hosts,
            identities,
            providers: 2,
            local_per_mille: 50,
            uids: d.mapping.uids,
            gids: d.mapping.gids,
            with_map: false,
            paths: [5, 3, 2],
            verify: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: 13,
        }
    }
}

/// What one policy gave over the simulated hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Identities that got two different UIDs on two hosts.
    pub split_identities: u64,
    /// UIDs that stand for two identities on two hosts.
    pub shared_uids: u64,
    /// Provider groups that got two GIDs, or GIDs standing for two groups.
    pub split_groups: u64,
    /// Arrivals refused because another identity holds the identity's UID there.
    pub refused_by_identity: u64,
    /// Arrivals refused because a local account holds it.
    pub refused_by_local: u64,
    /// First arrivals over SSH.
    pub ssh_first: u64,
    /// Hosts where the fleet map was refused (a local account holds one of its IDs): oidcctl
    /// import applies nothing there, and reports it.
    pub map_refused: u64,
    /// First SSH logins that had to connect again (sshd held another UID).
    pub reconnects: u64,
    /// Arrivals and later events processed.
    pub events: u64,
    /// Summed time of the hosts' allocations.
    pub busy: Duration,
}

/// The whole result.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was simulated.
    pub spec: Spec,
    /// Pairs of identities whose fleet UID is the same (the true conflicts).
    pub colliding_pairs: u64,
    /// This release's rule.
    pub fleet: Tally,
    /// The previous release's policy on the same arrivals.
    pub before: Tally,
    /// Hosts replayed through the SQLite store, and arrivals there per second.
    pub verified: Option<(usize, f64)>,
    /// Wall time of the whole run.
    pub wall: Duration,
}

/// Runs the simulation. `Err` when a replay through the store disagrees with the in-memory
/// host (a bug in one of them).
pub fn run(spec: &Spec) -> Result<Report, String> {
    let started = Instant::now();
    let world = World::new(spec);
    let colliding_pairs = world.colliding_pairs();
    let pins = spec.with_map.then(|| world.reference_map());
    let mut fleet = Agg::new(&world);
    let mut before = Agg::new(&world);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(HostResult, HostResult)>();
    std::thread::scope(|s| {
        for _ in 0..spec.threads.max(1) {
            let (tx, world, pins, next) = (tx.clone(), &world, pins.as_ref(), &next);
            s.spawn(move || {
                loop {
                    let h = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if h >= world.spec.hosts {
                        break;
                    }
                    let plan = world.plan(h);
                    let a = simulate(world, &plan, pins, Policy::Fleet);
                    let b = simulate(world, &plan, None, Policy::Before);
                    if tx.send((a, b)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (a, b) in rx {
            fleet.add(&a);
            before.add(&b);
        }
    });
    let verified = if spec.verify > 0 {
        Some(verify(&world, pins.as_ref())?)
    } else {
        None
    };
    Ok(Report {
        spec: spec.clone(),
        colliding_pairs,
        fleet: fleet.tally,
        before: before.tally,
        verified,
        wall: started.elapsed(),
    })
}

/// A deterministic pseudo-random source (SplitMix64): the same seed, the same fleet.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            v.swap(i, j);
        }
    }
}

/// Identities and groups of the whole fleet.
struct World<'s> {
    spec: &'s Spec,
    issuers: Vec<String>,
    /// (issuer, subject, name, groups at first arrival, group added by a later refresh).
    people: Vec<Person>,
    /// (issuer, claim value, name).
    groups: Vec<(usize, String, String)>,
}

struct Person {
    issuer: usize,
    sub: String,
    name: String,
    groups: Vec<usize>,
    later_group: usize,
}

/// How an identity first arrives on a host, and what happens later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// sshd first (a provisional entry hashed from the name), then the device-flow login.
    Ssh,
    /// A console login (or su, or any PAM service that does not resolve the user first).
    Console,
    /// `oidcctl import` of claims.
    Import,
    /// Later: sudo (the user exists; nothing may change).
    Sudo,
    /// Later: a refresh that brings a new group.
    Refresh,
}

/// One host's events and local accounts.
struct Plan {
    events: Vec<(usize, Path)>,
    local: Vec<u32>,
}

impl<'s> World<'s> {
    fn new(spec: &'s Spec) -> Self {
        let mut rng = Rng(spec.seed);
        let issuers: Vec<String> = (0..spec.providers.max(1))
            .map(|i| format!("https://idp{i}.example.com/realms/staff"))
            .collect();
        let n_groups = (spec.identities / 50).max(4);
        let groups = (0..n_groups)
            .map(|g| {
                let issuer = g % issuers.len();
                (issuer, format!("/org/team-{g}"), format!("team-{g}"))
            })
            .collect::<Vec<_>>();
        let people = (0..spec.identities)
            .map(|i| {
                let issuer = usize::try_from(rng.below(issuers.len() as u64)).unwrap_or(0);
                let (a, b) = (rng.next(), rng.next());
                // Subjects shaped like Keycloak's UUIDs.
                let sub = format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    b >> 52,
                    b & 0xffff_ffff_ffff
                );
                let own: Vec<usize> = groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| g.0 == issuer)
                    .map(|(n, _)| n)
                    .collect();
                let pick =
                    |rng: &mut Rng| own[usize::try_from(rng.below(own.len() as u64)).unwrap_or(0)];
                let k = 1 + usize::try_from(rng.below(3)).unwrap_or(0);
                let mut gs: Vec<usize> = (0..k).map(|_| pick(&mut rng)).collect();
                gs.sort_unstable();
                gs.dedup();
                Person {
                    issuer,
                    sub,
                    name: format!("u{i}"),
                    groups: gs,
                    later_group: pick(&mut rng),
                }
            })
            .collect();
        Self {
            spec,
            issuers,
            people,
            groups,
        }
    }

    fn user(&self, i: usize) -> Who<'_> {
        let p = &self.people[i];
        Who {
            issuer: &self.issuers[p.issuer],
            kind: IdKind::User,
            key: &p.sub,
        }
    }

    fn group(&self, g: usize) -> Who<'_> {
        let (issuer, key, _) = &self.groups[g];
        Who {
            issuer: &self.issuers[*issuer],
            kind: IdKind::Group,
            key,
        }
    }

    /// Pairs of identities sharing a fleet UID (no pins): what no host can tell apart without
    /// a map.
    fn colliding_pairs(&self) -> u64 {
        let mut by_uid: HashMap<u32, u64> = HashMap::with_capacity(self.people.len());
        let mut empty = MemHost::default();
        for i in 0..self.people.len() {
            if let Ok(Ok((uid, _))) = ids::fleet_id(&self.user(i), self.spec.uids, None, &mut empty)
            {
                *by_uid.entry(uid).or_default() += 1;
            }
        }
        by_uid.values().map(|&n| n * n.saturating_sub(1) / 2).sum()
    }

    /// The fleet map `oidcctl idmap build` writes from the whole directory: every group, then
    /// every identity, pinned in (issuer, key) order by [`ids::pin_in_order`].
    fn reference_map(&self) -> Pins {
        let mut entries: Vec<(Who<'_>, IdRange, Entity)> = (0..self.groups.len())
            .map(|g| (self.group(g), self.spec.gids, Entity::Group(g)))
            .chain(
                (0..self.people.len()).map(|i| (self.user(i), self.spec.uids, Entity::Person(i))),
            )
            .collect();
        entries.sort_by(|a, b| {
            (a.0.kind as u8, a.0.issuer, a.0.key).cmp(&(b.0.kind as u8, b.0.issuer, b.0.key))
        });
        let ids = ids::pin_in_order(entries.iter().map(|(w, r, _)| (*w, *r, None)));
        let mut pins = Pins::default();
        for ((who, _, entity), id) in entries.iter().zip(ids) {
            if let Ok(id) = id {
                pins.add(who, id, *entity);
            }
        }
        pins
    }

    /// Host `h`'s events (every identity once, in a random order and by a random path; half
    /// of them later again by sudo or a refresh) and its local accounts.
    fn plan(&self, h: usize) -> Plan {
        let mut rng = Rng(self.spec.seed ^ (h as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut first: Vec<usize> = (0..self.people.len()).collect();
        rng.shuffle(&mut first);
        let mut events: Vec<(usize, Path)> = first
            .into_iter()
            .map(|i| {
                let [ssh, console, import] = self.spec.paths;
                let r = rng.below(u64::from(ssh + console + import));
                let path = if r < u64::from(ssh) {
                    Path::Ssh
                } else if r < u64::from(ssh + console) {
                    Path::Console
                } else {
                    Path::Import
                };
                (i, path)
            })
            .collect();
        let mut later: Vec<(usize, Path)> = (0..self.people.len())
            .filter_map(|i| match rng.below(4) {
                0 => Some((i, Path::Sudo)),
                1 => Some((i, Path::Refresh)),
                _ => None,
            })
            .collect();
        rng.shuffle(&mut later);
        events.extend(later);
        // Accounts of the host's own: the usual ones below the ranges, and now and then a
        // service account someone gave an ID inside them.
        let mut local: Vec<u32> = (0..20).map(|n| 1000 + n).collect();
        if rng.below(1000) < u64::from(self.spec.local_per_mille) {
            let lo = u64::from(self.spec.uids.min.min(self.spec.gids.min));
            let hi = u64::from(self.spec.uids.max.max(self.spec.gids.max));
            local.push(u32::try_from(lo + rng.below(hi - lo + 1)).unwrap_or(0));
        }
        Plan { events, local }
    }
}

/// The fleet map's pins, by identity hash (FNV of kind, issuer and key).
#[derive(Debug, Default, Clone)]
struct Pins {
    by_who: HashMap<u64, u32>,
    by_id: HashMap<u32, u64>,
    /// Whose each pin is: a person's or a group's index.
    entry: Vec<(u64, u32, Entity)>,
}

#[derive(Debug, Clone, Copy)]
enum Entity {
    Person(usize),
    Group(usize),
}

impl Pins {
    fn add(&mut self, who: &Who<'_>, id: u32, entity: Entity) {
        let h = who_hash(who);
        self.by_who.insert(h, id);
        self.by_id.insert(id, h);
        self.entry.push((h, id, entity));
    }
}

fn who_hash(w: &Who<'_>) -> u64 {
    ids::fnv1a64(&[
        w.kind.as_str().as_bytes(),
        w.issuer.as_bytes(),
        w.key.as_bytes(),
    ])
}

/// What holds an ID on a simulated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Local,
    User(u64),
    Group(u64),
}

/// A host in memory: the map's pins and who holds which ID.
#[derive(Debug, Default)]
struct MemHost {
    pins: Pins,
    held: HashMap<u32, Holder>,
}

impl HostIds for MemHost {
    type Error = std::convert::Infallible;

    fn pin_of(&mut self, who: &Who<'_>) -> Result<Option<u32>, Self::Error> {
        if self.pins.by_who.is_empty() {
            return Ok(None);
        }
        Ok(self.pins.by_who.get(&who_hash(who)).copied())
    }

    fn pinned_to_other(&mut self, id: u32, who: &Who<'_>) -> Result<bool, Self::Error> {
        Ok(self
            .pins
            .by_id
            .get(&id)
            .is_some_and(|&h| h != who_hash(who)))
    }

    fn holder(&mut self, id: u32, who: &Who<'_>) -> Result<Option<String>, Self::Error> {
        let me = who_hash(who);
        Ok(match self.held.get(&id) {
            None => None,
            Some(Holder::Local) => Some("a local account".into()),
            Some(Holder::User(h) | Holder::Group(h)) if *h == me => None,
            Some(_) => Some("another identity".into()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// This release.
    Fleet,
    /// The previous release: next free candidate in arrival order; SSH first keeps the
    /// provisional UID.
    Before,
}

/// One host's outcome: UIDs and GIDs (0: none) and counts.
struct HostResult {
    uids: Vec<u32>,
    gids: Vec<u32>,
    tally: Tally,
}

impl HostResult {
    fn new(w: &World<'_>) -> Self {
        Self {
            uids: vec![0; w.people.len()],
            gids: vec![0; w.groups.len()],
            tally: Tally::default(),
        }
    }
}

fn simulate(w: &World<'_>, plan: &Plan, pins: Option<&Pins>, policy: Policy) -> HostResult {
    let started = Instant::now();
    let mut host = MemHost::default();
    for &id in &plan.local {
        host.held.insert(id, Holder::Local);
    }
    let mut t = HostResult::new(w);
    if let Some(pins) = pins {
        // oidcctl import of the fleet map: its dry run refuses the whole map when a local
        // account holds one of its IDs (reported; the administrator fixes it). Otherwise every
        // pin, with its user or group created at once (the names are free).
        let refused = pins
            .entry
            .iter()
            .any(|(_, id, _)| host.held.contains_key(id));
        t.tally.map_refused += u64::from(refused);
        for &(h, id, entity) in pins.entry.iter().filter(|_| !refused) {
            host.pins.by_who.insert(h, id);
            host.pins.by_id.insert(id, h);
            match entity {
                Entity::Person(i) => {
                    host.held.insert(id, Holder::User(h));
                    t.uids[i] = id;
                }
                Entity::Group(g) => {
                    host.held.insert(id, Holder::Group(h));
                    t.gids[g] = id;
                }
            }
        }
    }
    for &(i, path) in &plan.events {
        arrive(w, &mut host, &mut t, i, path, policy);
    }
    t.tally.events = plan.events.len() as u64;
    t.tally.busy = started.elapsed();
    t
}

/// One event on one host.
fn arrive(
    w: &World<'_>,
    host: &mut MemHost,
    t: &mut HostResult,
    i: usize,
    path: Path,
    policy: Policy,
) {
    let p = &w.people[i];
    let who = w.user(i);
    if t.uids[i] == 0 && matches!(path, Path::Ssh | Path::Console | Path::Import) {
        // sshd's provisional entry, from the name, before the login.
        t.tally.ssh_first += u64::from(path == Path::Ssh);
        let provisional = (path == Path::Ssh).then(|| {
            ids::provisional(who.issuer, &p.name, w.spec.uids, |id| {
                host.held.contains_key(&id)
            })
        });
        let uid = match policy {
            Policy::Fleet => match ids::allocate(&who, w.spec.uids, None, host) {
                Ok(Allocation::Assigned { id, .. }) => {
                    if provisional.is_some_and(|p| p != Some(id)) {
                        t.tally.reconnects += 1;
                    }
                    id
                }
                Ok(Allocation::Taken { holder, .. }) => {
                    if holder.starts_with("a local") {
                        t.tally.refused_by_local += 1;
                    } else {
                        t.tally.refused_by_identity += 1;
                    }
                    return;
                }
                Ok(Allocation::Invalid(_)) | Err(_) => return,
            },
            Policy::Before => match provisional.flatten() {
                Some(id) => id,
                None => match first_free(host, &who, w.spec.uids) {
                    Some(id) => id,
                    None => return,
                },
            },
        };
        host.held.insert(uid, Holder::User(who_hash(&who)));
        t.uids[i] = uid;
    } else if t.uids[i] == 0 {
        // sudo or a refresh of someone refused (or absent) here: nothing to do.
        return;
    }
    let later = (path == Path::Refresh).then_some(p.later_group);
    for g in p.groups.iter().copied().chain(later) {
        if t.gids[g] != 0 {
            continue;
        }
        let gw = w.group(g);
        let gid = match policy {
            Policy::Fleet => match ids::allocate(&gw, w.spec.gids, None, host) {
                Ok(Allocation::Assigned { id, .. }) => id,
                _ => continue,
            },
            Policy::Before => match first_free(host, &gw, w.spec.gids) {
                Some(id) => id,
                None => continue,
            },
        };
        host.held.insert(gid, Holder::Group(who_hash(&gw)));
        t.gids[g] = gid;
    }
}

/// The previous release's allocation: the first candidate nobody holds here.
fn first_free(host: &MemHost, who: &Who<'_>, range: IdRange) -> Option<u32> {
    (0..ids::MAX_PROBES)
        .map(|a| ids::candidate(who.issuer, who.kind, who.key, a, range))
        .find(|id| !is_reserved_id(*id) && !host.held.contains_key(id))
}

/// Hosts' outcomes folded together.
struct Agg {
    uid_of: Vec<u32>,
    split: Vec<bool>,
    owner_of_uid: HashMap<u32, u32>,
    shared: HashMap<u32, ()>,
    gid_of: Vec<u32>,
    gsplit: Vec<bool>,
    owner_of_gid: HashMap<u32, u32>,
    tally: Tally,
}

impl Agg {
    fn new(w: &World<'_>) -> Self {
        Self {
            uid_of: vec![0; w.people.len()],
            split: vec![false; w.people.len()],
            owner_of_uid: HashMap::with_capacity(w.people.len()),
            shared: HashMap::new(),
            gid_of: vec![0; w.groups.len()],
            gsplit: vec![false; w.groups.len()],
            owner_of_gid: HashMap::new(),
            tally: Tally::default(),
        }
    }

    fn add(&mut self, r: &HostResult) {
        for (i, &uid) in r.uids.iter().enumerate() {
            if uid == 0 {
                continue;
            }
            let i32_ = u32::try_from(i).unwrap_or(u32::MAX);
            match self.uid_of[i] {
                0 => self.uid_of[i] = uid,
                seen if seen != uid && !self.split[i] => {
                    self.split[i] = true;
                    self.tally.split_identities += 1;
                }
                _ => {}
            }
            match self.owner_of_uid.insert(uid, i32_) {
                Some(other) if other != i32_ => {
                    self.owner_of_uid.insert(uid, other);
                    if self.shared.insert(uid, ()).is_none() {
                        self.tally.shared_uids += 1;
                    }
                }
                _ => {}
            }
        }
        for (g, &gid) in r.gids.iter().enumerate() {
            if gid == 0 {
                continue;
            }
            let g32 = u32::try_from(g).unwrap_or(u32::MAX);
            let mut bad = false;
            match self.gid_of[g] {
                0 => self.gid_of[g] = gid,
                seen if seen != gid => bad = true,
                _ => {}
            }
            if let Some(other) = self.owner_of_gid.insert(gid, g32) {
                if other != g32 {
                    self.owner_of_gid.insert(gid, other);
                    bad = true;
                }
            }
            if bad && !self.gsplit[g] {
                self.gsplit[g] = true;
                self.tally.split_groups += 1;
            }
        }
        let t = &r.tally;
        self.tally.refused_by_identity += t.refused_by_identity;
        self.tally.refused_by_local += t.refused_by_local;
        self.tally.reconnects += t.reconnects;
        self.tally.ssh_first += t.ssh_first;
        self.tally.map_refused += t.map_refused;
        self.tally.events += t.events;
        self.tally.busy += t.busy;
    }
}

impl Report {
    /// The result as Markdown: a table row per policy and the figures as `key=value` lines.
    pub fn markdown(&self, date: &str, command: &str) -> String {
        let s = &self.spec;
        let mut out = String::new();
        let _ = writeln!(out, "# Fleet simulation, {date}\n\n`{command}`\n");
        let _ = writeln!(
            out,
            "{} hosts in the fleet, {} simulated, {} identities over {} providers, UIDs \
             {}-{}, {} per thousand hosts with a local account inside the ranges, fleet map \
             applied first: {}; every identity arrives once on every simulated host (weights: \
             SSH first {}, console {}, import {}; half of them later by sudo or a refresh \
             bringing a new group).\n",
            s.fleet,
            s.hosts,
            s.identities,
            s.providers,
            s.uids.min,
            s.uids.max,
            s.local_per_mille,
            if s.with_map { "yes" } else { "no" },
            s.paths[0],
            s.paths[1],
            s.paths[2]
        );
        let _ = writeln!(
            out,
            "| Policy | Identities with 2 UIDs | UIDs meaning 2 identities | Groups split | \
             Refused (identity) | Refused (local) | SSH reconnects | Time per event |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for (name, t) in [
            ("this release", &self.fleet),
            ("previous release", &self.before),
        ] {
            let per = t.busy.as_secs_f64() * 1e6 / (t.events.max(1) as f64);
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {per:.2} µs |",
                t.split_identities,
                t.shared_uids,
                t.split_groups,
                t.refused_by_identity,
                t.refused_by_local,
                t.reconnects,
            );
        }
        let _ = writeln!(out, "\ncolliding_pairs={}", self.colliding_pairs);
        if s.with_map {
            let _ = writeln!(out, "hosts_refusing_the_map={}", self.fleet.map_refused);
        }
        let f = &self.fleet;
        let _ = writeln!(
            out,
            "events={} wall={:.1} s ssh_first={} reconnects={:.1} % of them",
            f.events,
            self.wall.as_secs_f64(),
            f.ssh_first,
            100.0 * f.reconnects as f64 / (f.ssh_first.max(1) as f64)
        );
        if let Some((hosts, rate)) = self.verified {
            let _ = writeln!(
                out,
                "verified_against_store={hosts} hosts, identical; store time per event={:.1} µs",
                1e6 / rate.max(1e-9)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
