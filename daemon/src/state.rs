//! What the request handlers share.
//!
//! A std `Mutex` around the one SQLite connection is enough: every query is a point lookup of
//! microseconds, no lock is held across I/O other than the database's own, and handlers run on
//! plain threads (nothing async to block).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use oidc_proto::Response;

use crate::clock::Clock;
use crate::config::Config;
use crate::identity::local::LocalAccounts;
use crate::store::{Store, StoreError};

/// How often a broken database is retried.
const REOPEN_EVERY: Duration = Duration::from_secs(10);
/// Entries kept in the answer cache before it is emptied.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// Shared daemon state.
pub struct State {
    config: RwLock<Arc<Config>>,
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
        let mut slot = match self.config.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(config);
        drop(slot);
        self.invalidate();
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
