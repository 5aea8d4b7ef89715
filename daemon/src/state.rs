//! What the request handlers share.
//!
//! A std `Mutex` around the one SQLite connection is enough: every query is a point lookup of
//! microseconds, no lock is held across I/O other than the database's own, and handlers run on
//! plain threads (nothing async to block).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::UnixUser;

use crate::auth::login::Logins;
use crate::clock::Clock;
use crate::config::Config;
use crate::identity::local::LocalAccounts;
use crate::identity::provisional::{self, Inserted};
use crate::oidc::Provider;
use crate::store::{Store, StoreError};

/// How often a broken database is retried.
const REOPEN_EVERY: Duration = Duration::from_secs(10);
/// Entries kept in the answer cache before it is emptied.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// Shared daemon state.
pub struct State {
    config: RwLock<Arc<Config>>,
    providers: RwLock<Vec<Arc<Provider>>>,
    /// Device-flow logins in progress.
    pub logins: Logins,
    provisional: Mutex<provisional::Table>,
    store: Mutex<StoreSlot>,
    local: Mutex<LocalAccounts>,
    cache: Mutex<AnswerCache>,
    /// Wall-clock time.
    pub clock: Clock,
    /// When the daemon started.
    pub started: Instant,
    /// An import arriving in parts ([`crate::staged_import`]).
    pub staged_import: Mutex<Option<crate::staged_import::Staged>>,
    /// The NSS map `libnss_oidc` reads (written by its own thread, [`crate::nss_map::run`]).
    pub nss_map: crate::nss_map::NssMap,
    /// Refreshes between logins.
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// Offline PIN invitations and tries.
    pub offline: crate::offline::Offline,
    /// Codes that let a refused first SSH login's next connection in without a new approval.
    pub resume: crate::auth::resume::Tickets,
}

/// Why [`State::store`] failed. Each variant says how the caller reacts.
#[derive(Debug)]
pub enum StoreFailure {
    /// The database cannot be opened (the reason is logged when it broke): answer
    /// "unavailable"; it is retried every [`REOPEN_EVERY`] and on SIGHUP.
    Broken(String),
    /// The operation failed: a refused change ([`StoreError::Conflict`]) is the caller's to
    /// explain; anything else is a fault of this host, for the log and not for the user.
    Failed(StoreError),
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broken(why) => f.write_str(why),
            Self::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// The store, or why it cannot be used.
pub enum StoreSlot {
    /// Open and migrated.
    Open(Store),
    /// Broken: the reason, and when opening was last tried.
    Broken(String, Instant),
}

impl State {
    /// State around `config`, opening the database it names. A database that cannot be opened
    /// is logged and left broken: the daemon then answers "unavailable" instead of crashing.
    pub fn new(config: Config, local: LocalAccounts, clock: Clock) -> Self {
        let store = open_store(&config);
        Self {
            providers: RwLock::new(build_providers(&config, &[])),
            logins: Logins::default(),
            provisional: Mutex::new(provisional::Table::default()),
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(store),
            local: Mutex::new(local),
            cache: Mutex::new(AnswerCache::default()),
            clock,
            started: Instant::now(),
            lifecycle: crate::lifecycle::Lifecycle::default(),
            offline: crate::offline::Offline::default(),
            resume: crate::auth::resume::Tickets::default(),
            nss_map: crate::nss_map::NssMap::default(),
            staged_import: Mutex::new(None),
        }
    }

    /// State around an already open store (tests).
    pub fn from_store(config: Config, store: Store, local: LocalAccounts, clock: Clock) -> Self {
        Self {
            providers: RwLock::new(build_providers(&config, &[])),
            logins: Logins::default(),
            provisional: Mutex::new(provisional::Table::default()),
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(StoreSlot::Open(store)),
            local: Mutex::new(local),
            cache: Mutex::new(AnswerCache::default()),
            clock,
            started: Instant::now(),
            lifecycle: crate::lifecycle::Lifecycle::default(),
            offline: crate::offline::Offline::default(),
            resume: crate::auth::resume::Tickets::default(),
            nss_map: crate::nss_map::NssMap::default(),
            staged_import: Mutex::new(None),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the configuration (SIGHUP). Paths of the socket and database take effect at
    /// the next start; the caller warns about them. A provider whose configuration did not
    /// change keeps its client but forgets its discovery.
    pub fn set_config(&self, config: Config) {
        let old = self.providers();
        for p in &old {
            p.forget();
        }
        let fresh = build_providers(&config, &old);
        *self
            .providers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        let mut slot = match self.config.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(config);
        drop(slot);
        self.invalidate();
        self.lifecycle.wake();
    }

    /// The configured providers that could be set up, in file order.
    pub fn providers(&self) -> Vec<Arc<Provider>> {
        self.providers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The provider with this issuer, if it is configured and could be set up.
    pub fn provider_by_issuer(&self, issuer: &str) -> Option<Arc<Provider>> {
        self.providers()
            .into_iter()
            .find(|p| p.config.issuer == issuer)
    }

    /// Runs `f` with the store, reopening a broken one at most every [`REOPEN_EVERY`].
    /// `Err` says whether the store is unusable or the operation failed, so the caller can
    /// tell a refused change ([`StoreError::Conflict`]) from a broken disk.
    pub fn store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreFailure> {
        let mut slot = lock(&self.store);
        if let StoreSlot::Broken(_, tried) = &*slot {
            if tried.elapsed() >= REOPEN_EVERY {
                *slot = open_store(&self.config());
            }
        }
        match &mut *slot {
            StoreSlot::Open(store) => f(store).map_err(StoreFailure::Failed),
            StoreSlot::Broken(why, _) => Err(StoreFailure::Broken(why.clone())),
        }
    }

    /// [`State::store`] for callers that only pass the reason on (lookups answer
    /// "unavailable" with it); errors other than a broken store are logged here.
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, String> {
        self.store(f).map_err(|e| {
            if let StoreFailure::Failed(inner) = &e {
                log::error!("{inner}");
            }
            e.to_string()
        })
    }

    /// Retries a broken store now (SIGHUP).
    pub fn reopen_store_if_broken(&self) {
        let mut slot = lock(&self.store);
        if matches!(&*slot, StoreSlot::Broken(..)) {
            *slot = open_store(&self.config());
        }
    }

    /// Why the store cannot be used, if it cannot.
    pub fn store_error(&self) -> Option<String> {
        match &*lock(&self.store) {
            StoreSlot::Open(_) => None,
            StoreSlot::Broken(why, _) => Some(why.clone()),
        }
    }

    /// The host's accounts, reread if the files changed. `Err` when they cannot be read.
    pub fn local(&self) -> Result<MutexGuard<'_, LocalAccounts>, String> {
        let mut local = lock(&self.local);
        let changed = local
            .refresh()
            .map_err(|e| format!("cannot read /etc/passwd or /etc/group: {e}"))?;
        if changed {
            // Answers may depend on the files (a local account shadowing a user of ours), and
            // so may the NSS map (no groups for such a name; admin groups' GIDs).
            lock(&self.cache).entries.clear();
            self.nss_map.changed();
        }
        Ok(local)
    }

    /// A cached answer to a lookup, if still fresh.
    pub fn cached(&self, key: &CacheKey) -> Option<Response> {
        let mut cache = lock(&self.cache);
        match cache.entries.get(key) {
            Some((resp, until)) if Instant::now() < *until => Some(resp.clone()),
            Some(_) => {
                cache.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers the answer to a lookup: found entries for `positive_ttl`, "not found" for
    /// `negative_ttl`; anything else (errors, unavailability) is not cached.
    pub fn remember(&self, key: CacheKey, resp: &Response) {
        let cfg = self.config();
        let ttl = match resp {
            Response::NotFound => cfg.cache.negative_ttl,
            Response::User(_) | Response::Group(_) | Response::GroupIds { .. } => {
                cfg.cache.positive_ttl
            }
            _ => return,
        };
        if ttl.is_zero() {
            return;
        }
        let mut cache = lock(&self.cache);
        if cache.entries.len() >= CACHE_MAX_ENTRIES {
            cache.entries.clear();
        }
        cache
            .entries
            .insert(key, (resp.clone(), Instant::now() + ttl));
    }

    /// Forgets every cached answer, marks the NSS map behind the store until the next one is
    /// written, and withdraws provisional entries whose UID went to a real identity (after any
    /// change to users or groups). Call it holding no other lock of the state.
    pub fn invalidate(&self) {
        lock(&self.cache).entries.clear();
        self.nss_map.changed();
        self.reconcile_provisional();
    }
}

/// A lookup whose answer may be cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// getpwnam.
    UserName(String),
    /// getpwuid.
    Uid(u32),
    /// getgrnam.
    GroupName(String),
    /// getgrgid.
    Gid(u32),
    /// initgroups.
    GroupsOf(String),
}

#[derive(Default)]
struct AnswerCache {
    entries: HashMap<CacheKey, (Response, Instant)>,
}

/// A [`Provider`] for every configured provider, reusing those of `old` whose configuration is
/// the same. One that cannot be set up (an unreadable `ca_file`) is logged and left out: its
/// users cannot log in, the others can.
fn build_providers(config: &Config, old: &[Arc<Provider>]) -> Vec<Arc<Provider>> {
    config
        .providers
        .iter()
        .filter_map(|p| {
            if let Some(same) = old.iter().find(|o| o.config == *p) {
                return Some(Arc::clone(same));
            }
            match Provider::new(p.clone()) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    log::error!(
                        "provider {} ({}): {e}; its logins are disabled",
                        p.id,
                        p.issuer
                    );
                    None
                }
            }
        })
        .collect()
}

fn open_store(config: &Config) -> StoreSlot {
    let path = &config.cache.db_path;
    match Store::open(path) {
        Ok(s) => {
            log::info!("database {} open", path.display());
            StoreSlot::Open(s)
        }
        Err(e) => {
            let why = format!("database {} unusable: {e}", path.display());
            log::error!(
                "{why}; answering \"unavailable\" until it is fixed (retried every {}s and on SIGHUP)",
                REOPEN_EVERY.as_secs()
            );
            StoreSlot::Broken(why, Instant::now())
        }
    }
}

/// Locks a mutex, carrying on with the data if another thread panicked while holding it (each
/// operation on it is a single transaction, so the data is consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl State {
    /// A provisional passwd entry for `name`, made for sshd, which refuses users it cannot
    /// resolve before authentication. Only for names that pass the mapping rules and are
    /// neither local nor known, each living `provisional_ttl` unless a login makes the user
    /// real or holds it longer ([`identity::provisional`] has the rules). Its UID is hashed
    /// from issuer and name (no subject is known yet), skipping IDs in use and those of other
    /// live entries: a placeholder that the login ends with only when it is the identity's own
    /// UID, or under `login.ssh_first_uid = "provisional"` (see `auth::flow::decide`).
    pub fn provisional_user(&self, name: &str) -> Option<UnixUser> {
        let all = self.config();
        // The provider the name would log in with, and its rules.
        let provider = all.route_new_name(name).ok()?;
        let issuer = provider.issuer.clone();
        let cfg = all.scoped(provider);
        let now = Instant::now();
        {
            let mut p = lock(&self.provisional);
            p.expire(now);
            if let Some(u) = p.get(name, now) {
                return Some(u.clone());
            }
        }
        if !crate::identity::mapping::is_mapped_form(name, &cfg) {
            return None;
        }
        // Never a name another NSS source has (sshd would see ours, not theirs); asked before
        // any lock is taken, within a part of sshd's NSS deadline.
        if !cfg.mapping.allow_names.iter().any(|n| n == name) {
            use crate::identity::other_sources;
            match other_sources::lookup(&[name], &[], other_sources::PROVISIONAL_BUDGET) {
                Ok(known) if known.users.contains(name) => return None,
                Ok(_) => {}
                Err(e) => {
                    log::warn!("no provisional entry for {name}: {e}");
                    return None;
                }
            }
        }
        // Lock order everywhere: local accounts, then provisional entries, then the store.
        let local = self.local().ok()?;
        if crate::identity::mapping::check_not_local(name, &cfg, &local).is_err() {
            return None;
        }
        let mut p = lock(&self.provisional);
        let uid = {
            let taken = |id: u32| {
                local.uids.contains(&id)
                    || local.gids.contains(&id)
                    || p.uid_in_use(id, now)
                    || self
                        .with_store(|s| {
                            Ok(s.user_by_uid(id)?.is_some() || s.group_by_gid(id)?.is_some())
                        })
                        .unwrap_or(true)
            };
            crate::identity::ids::provisional(&issuer, name, cfg.mapping.uids, taken)?
        };
        drop(local);
        let first = crate::identity::ids::candidate(
            &issuer,
            crate::identity::ids::IdKind::User,
            &format!("name:{name}"),
            0,
            cfg.mapping.uids,
        );
        if first != uid && !crate::config::is_reserved_id(first) {
            log::info!(
                "provisional entry for {name}: uid {first} is in use (or held by another \
                 entry); the next candidate {uid} is used"
            );
        }
        let user = UnixUser {
            name: name.to_string(),
            uid,
            gid: uid,
            gecos: String::new(),
            home: cfg
                .mapping
                .home
                .replace("{username}", name)
                .replace("{uid}", &uid.to_string()),
            shell: cfg.mapping.shell.clone(),
        };
        let cap = cfg.login.max_provisional_entries as usize;
        match p.insert(user.clone(), now, cfg.login.provisional_ttl, cap) {
            Inserted::Added => {}
            Inserted::Evicted(old) => {
                log::info!(
                    "provisional entry for {} (uid {}) evicted for {name}: \
                     login.max_provisional_entries ({cap}) reached",
                    old.name,
                    old.uid
                );
                provisional_event("evicted", &old.name, old.uid).emit();
            }
            Inserted::Full => {
                log::warn!(
                    "provisional entry for {name} refused: all {cap} entries \
                     (login.max_provisional_entries) are held by logins in progress"
                );
                return None;
            }
        }
        drop(p);
        log::info!(
            "provisional entry for {name} (uid {uid}) handed to sshd; it expires in {}s unless {name} logs in",
            cfg.login.provisional_ttl.as_secs()
        );
        provisional_event("created", name, uid).emit();
        Some(user)
    }

    /// A live provisional entry by UID.
    pub fn provisional_by_uid(&self, uid: u32) -> Option<UnixUser> {
        lock(&self.provisional).by_uid(uid, Instant::now()).cloned()
    }

    /// Keeps `name`'s provisional entry until at least `until` (a login that began with it
    /// runs until then) and returns its UID; `None` when there is no live entry.
    pub fn pin_provisional(&self, name: &str, until: Instant) -> Option<u32> {
        lock(&self.provisional).pin(name, until, Instant::now())
    }

    /// Drops the provisional entry of `name` (the user is now real).
    pub fn forget_provisional(&self, name: &str) {
        lock(&self.provisional).remove(name);
    }

    /// Withdraws every provisional entry whose UID a real identity (or a local account) now
    /// has: a provisional UID yields to real ones, so a stranger holding an entry cannot steer
    /// anyone's UID, and the login that held it is refused at its end (the UID it began with
    /// is gone). Runs after every change to users and groups.
    fn reconcile_provisional(&self) {
        let now = Instant::now();
        let live = lock(&self.provisional).live_uids(now);
        if live.is_empty() {
            return;
        }
        let Ok(local) = self.local() else { return };
        let mut lost = Vec::new();
        for (name, uid) in live {
            let owner = if local.uids.contains(&uid) || local.gids.contains(&uid) {
                Some("a local account or group".to_string())
            } else {
                self.with_store(|s| {
                    if let Some(u) = s.user_by_uid(uid)? {
                        return Ok((u.name != name).then(|| format!("the user {}", u.name)));
                    }
                    Ok(s.group_by_gid(uid)?
                        .filter(|g| g.name != name)
                        .map(|g| format!("the group {}", g.name)))
                })
                .unwrap_or(None)
            };
            if let Some(owner) = owner {
                lost.push((name, uid, owner));
            }
        }
        drop(local);
        let mut p = lock(&self.provisional);
        for (name, uid, owner) in lost {
            p.remove(&name);
            log::warn!(
                "provisional entry for {name} withdrawn: its uid {uid} now belongs to {owner}; \
                 a login that began with it will be refused"
            );
            provisional_event("withdrawn", &name, uid)
                .field("message", format!("uid now belongs to {owner}"))
                .emit();
        }
    }
}

fn provisional_event(outcome: &str, name: &str, uid: u32) -> crate::audit::Record {
    crate::audit::record(crate::audit::Event::ProvisionalEntry, outcome)
        .field("user", name)
        .field("service", "sshd")
        .number("uid", u64::from(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that cannot be opened is tried again once [`REOPEN_EVERY`] has passed since
    /// the last try, without a SIGHUP, and not before: the README's "retried every 10 s".
    #[test]
    fn broken_store_is_retried_after_the_interval() {
        let dir = std::env::temp_dir().join(format!("oidcd-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::default();
        // Its directory does not exist yet: opening fails.
        cfg.cache.db_path = dir.join("db/cache.db");
        let local = LocalAccounts::from_paths(&dir.join("passwd"), &dir.join("group"));
        let state = State::new(cfg, local, Clock::fixed(0));
        assert!(state.store_error().is_some());

        std::fs::create_dir(dir.join("db")).unwrap();
        assert!(
            state.with_store(|s| s.counts()).is_err(),
            "reopened before the interval"
        );
        if let StoreSlot::Broken(_, tried) = &mut *lock(&state.store) {
            *tried = Instant::now().checked_sub(REOPEN_EVERY).unwrap();
        }
        assert!(state.with_store(|s| s.counts()).is_ok());
        assert!(state.store_error().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The interval the README states.
    #[test]
    fn reopen_interval_is_ten_seconds() {
        assert_eq!(REOPEN_EVERY, Duration::from_secs(10));
    }
}
