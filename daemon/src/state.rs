//! What the request handlers share.
//!
//! A std `Mutex` around the one SQLite connection is enough: every query is a point lookup of
//! microseconds, no lock is held across I/O other than the database's own, and handlers run on
//! plain threads (nothing async to block).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use oidc_proto::Response;

use crate::auth::login::Logins;
use crate::clock::Clock;
use crate::config::Config;
use crate::identity::local::LocalAccounts;
use crate::oidc::Provider;
use crate::store::{Store, StoreError};

/// How often a broken database is retried.
const REOPEN_EVERY: Duration = Duration::from_secs(10);
/// Entries kept in the answer cache before it is emptied.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// Shared daemon state.
pub struct State {
    config: RwLock<Arc<Config>>,
    provider: RwLock<Option<Arc<Provider>>>,
    /// Device-flow logins in progress.
    pub logins: Logins,
    provisional: Mutex<Provisional>,
    store: Mutex<StoreSlot>,
    local: Mutex<LocalAccounts>,
    cache: Mutex<AnswerCache>,
    /// Wall-clock time.
    pub clock: Clock,
    /// When the daemon started.
    pub started: Instant,
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
            provider: RwLock::new(build_provider(&config)),
            logins: Logins::default(),
            provisional: Mutex::new(Provisional::default()),
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(store),
            local: Mutex::new(local),
            cache: Mutex::new(AnswerCache::default()),
            clock,
            started: Instant::now(),
        }
    }

    /// State around an already open store (tests).
    pub fn from_store(config: Config, store: Store, local: LocalAccounts, clock: Clock) -> Self {
        Self {
            provider: RwLock::new(build_provider(&config)),
            logins: Logins::default(),
            provisional: Mutex::new(Provisional::default()),
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(StoreSlot::Open(store)),
            local: Mutex::new(local),
            cache: Mutex::new(AnswerCache::default()),
            clock,
            started: Instant::now(),
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
    /// the next start; the caller warns about them.
    pub fn set_config(&self, config: Config) {
        let provider_changed = self.config().provider != config.provider;
        if provider_changed {
            let p = build_provider(&config);
            *self
                .provider
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = p;
        } else if let Some(p) = self.provider() {
            p.forget();
        }
        let mut slot = match self.config.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(config);
        drop(slot);
        self.invalidate();
    }

    /// The configured provider, if any.
    pub fn provider(&self) -> Option<Arc<Provider>> {
        self.provider
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` with the store, reopening a broken one at most every [`REOPEN_EVERY`].
    /// `Err` carries the reason the store is unusable.
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, String> {
        let mut slot = lock(&self.store);
        if let StoreSlot::Broken(_, tried) = &*slot {
            if tried.elapsed() >= REOPEN_EVERY {
                *slot = open_store(&self.config());
            }
        }
        match &mut *slot {
            StoreSlot::Open(store) => f(store).map_err(|e| {
                log::error!("{e}");
                e.to_string()
            }),
            StoreSlot::Broken(why, _) => Err(why.clone()),
        }
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
        local
            .refresh()
            .map_err(|e| format!("cannot read /etc/passwd or /etc/group: {e}"))?;
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

    /// Forgets every cached answer (after any change to users or groups).
    pub fn invalidate(&self) {
        lock(&self.cache).entries.clear();
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

fn build_provider(config: &Config) -> Option<Arc<Provider>> {
    let p = config.provider.as_ref()?;
    match Provider::new(p.clone()) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            log::error!("provider {}: {e}; logins are disabled", p.issuer);
            None
        }
    }
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

/// Provisional passwd entries handed to sshd for names not seen before (see
/// [`State::provisional_user`]).
#[derive(Default)]
struct Provisional {
    entries: HashMap<String, (oidc_proto::types::UnixUser, Instant)>,
    recent: Vec<Instant>,
}

impl State {
    /// A provisional passwd entry for `name`, made for sshd, which refuses users it cannot
    /// resolve before authentication. Only for names that pass the mapping rules and are
    /// neither local nor known, at most `max_provisional_per_minute` new ones a minute, each
    /// living `provisional_ttl` unless a login makes the user real. Its UID comes from the
    /// deterministic allocation (issuer and name, as no subject is known yet) and is the UID
    /// the user keeps if this login succeeds.
    pub fn provisional_user(&self, name: &str) -> Option<oidc_proto::types::UnixUser> {
        let cfg = self.config();
        let issuer = cfg.provider.as_ref()?.issuer.clone();
        if cfg.mapping.uid_source == crate::config::UidSource::Claim {
            // The UID will come from a claim nobody has seen yet: no UID can be promised.
            return None;
        }
        let now = Instant::now();
        {
            let mut p = lock(&self.provisional);
            p.entries.retain(|_, (_, until)| *until > now);
            if let Some((u, _)) = p.entries.get(name) {
                return Some(u.clone());
            }
        }
        if crate::identity::mapping::map_user_name(name, &cfg)
            .ok()
            .as_deref()
            != Some(name)
        {
            return None;
        }
        // Lock order everywhere: local accounts, then provisional entries, then the store.
        let local = self.local().ok()?;
        if crate::identity::mapping::check_not_local(name, &cfg, &local).is_err() {
            return None;
        }
        let mut p = lock(&self.provisional);
        p.recent
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if p.recent.len() >= cfg.login.max_provisional_per_minute as usize {
            log::warn!(
                "provisional entry for {name} refused: more than {} a minute",
                cfg.login.max_provisional_per_minute
            );
            return None;
        }
        let taken_in_use = |id: u32| {
            local.uids.contains(&id)
                || local.gids.contains(&id)
                || p.entries.values().any(|(u, _)| u.uid == id)
                || self
                    .with_store(|s| {
                        Ok(s.user_by_uid(id)?.is_some() || s.group_by_gid(id)?.is_some())
                    })
                    .unwrap_or(true)
        };
        let uid = crate::identity::ids::allocate(
            &issuer,
            crate::identity::ids::IdKind::User,
            &format!("name:{name}"),
            cfg.mapping.uids,
            taken_in_use,
        )?;
        let user = oidc_proto::types::UnixUser {
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
        drop(local);
        p.recent.push(now);
        p.entries.insert(
            name.to_string(),
            (user.clone(), now + cfg.login.provisional_ttl),
        );
        log::info!(
            "provisional entry for {name} (uid {uid}) handed to sshd; it expires in {}s unless {name} logs in",
            cfg.login.provisional_ttl.as_secs()
        );
        Some(user)
    }

    /// A live provisional entry by UID.
    pub fn provisional_by_uid(&self, uid: u32) -> Option<oidc_proto::types::UnixUser> {
        let now = Instant::now();
        let p = lock(&self.provisional);
        p.entries
            .values()
            .find(|(u, until)| u.uid == uid && *until > now)
            .map(|(u, _)| u.clone())
    }

    /// The UID of a live provisional entry for `name`.
    pub fn provisional_uid(&self, name: &str) -> Option<u32> {
        let now = Instant::now();
        lock(&self.provisional)
            .entries
            .get(name)
            .filter(|(_, until)| *until > now)
            .map(|(u, _)| u.uid)
    }

    /// Drops the provisional entry of `name` (the user is now real).
    pub fn forget_provisional(&self, name: &str) {
        lock(&self.provisional).entries.remove(name);
    }
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
