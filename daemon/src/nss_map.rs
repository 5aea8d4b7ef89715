//! Writing the NSS map ([`oidc_proto::nss_map`]) that `libnss_oidc` maps into every process.
//!
//! One thread of its own ([`run`]) builds the whole map from a snapshot of the store into a
//! temporary file in the same directory, fsyncs it, renames it over [`NSS_MAP_PATH`] (root,
//! 0644) and then sets the old file's state to "replaced" through the descriptor it kept, so
//! processes that have it mapped map the path again. A file in place is never rewritten
//! except for two header fields, each with one `pwrite` (no mmap in the daemon, no unsafe
//! code):
//! - `state`: [`NssMap::changed`] (called by [`crate::state::State::invalidate`] after every
//!   change: login, import, removal, link, cache clear, configuration reload) sets it to
//!   "behind the store" at once, before the rebuild, so from then on lookups ask the daemon
//!   until the next map is in place. One byte cannot tear.
//! - `valid_until`: the heartbeat moves it forward every 5 s (or third of `cache.nss_map_ttl`) while the
//!   map is clean, so a live daemon keeps it valid and a dead or frozen one lets it expire. A
//!   reader racing this 8-byte write could see a mix of the old and new value; both are in the
//!   future, so the mix is a time near both, and the next lookup reads it again: harmless.
//!
//! A change that arrives while a map is being built leaves the new file "behind the store"
//! from the moment it is renamed into place, and starts the next build.

use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oidc_proto::nss_map::{
    HEADER_LEN, Header, MapEncoder, STATE_BEHIND, STATE_OFFSET, STATE_REPLACED, VALID_UNTIL_OFFSET,
};
use oidc_proto::paths::NSS_MAP_PATH;
use oidc_proto::types::{NssMapFile, NssMapState, NssMapStatus};

use crate::state::{State, lock};
use crate::store::{MapCounts, Store};

/// A change waits this long before the build starts, so a burst of changes makes one map.
const SETTLE: Duration = Duration::from_millis(10);
/// While nothing changes, the thread wakes this often (or every third of the TTL, if sooner):
/// it looks at /etc/passwd and /etc/group (a new local account of a user's name, an admin
/// group's GID) and moves the heartbeat on. Two `stat`s and one `pwrite`.
const LOOK_AGAIN: Duration = Duration::from_secs(5);
/// After a failed build, the next attempt waits this long.
const RETRY: Duration = Duration::from_secs(5);

/// The map's shared state: the file in place and whether the store changed since it was
/// built. Inert (nothing written) until [`run`] starts.
#[derive(Debug, Default)]
pub struct NssMap {
    shared: Mutex<Shared>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Shared {
    /// The map in place, opened for writing its header.
    file: Option<File>,
    /// The store changed since the map in place was built.
    dirty: bool,
    /// Stop the thread.
    stop: bool,
    /// When the map in place was put there, and what it left out.
    written: Option<(i64, usize)>,
    /// Why the last build failed, until one succeeds.
    build_error: Option<String>,
}

impl NssMap {
    /// The store changed: marks the map in place "behind the store" and wakes the builder.
    pub fn changed(&self) {
        let mut s = lock(&self.shared);
        if let Some(f) = &s.file {
            if let Err(e) = f.write_at(&[STATE_BEHIND], STATE_OFFSET as u64) {
                log::error!("NSS map: cannot mark {NSS_MAP_PATH} behind the store: {e}");
            }
        }
        s.dirty = true;
        self.wake.notify_all();
    }

    /// The map for `oidcctl status` and `doctor`: the file at [`NSS_MAP_PATH`] (read from its
    /// header: a status request never reads the whole map), whether it is the one this daemon
    /// keeps, and how its last build went.
    pub fn status(&self, enabled: bool, ttl: Duration) -> NssMapStatus {
        self.status_at(Path::new(NSS_MAP_PATH), enabled, ttl)
    }

    fn status_at(&self, path: &Path, enabled: bool, ttl: Duration) -> NssMapStatus {
        let file = inspect(path);
        let s = lock(&self.shared);
        let held = match (&s.file, std::fs::symlink_metadata(path)) {
            (Some(f), Ok(at_path)) => f
                .metadata()
                .is_ok_and(|m| (m.dev(), m.ino()) == (at_path.dev(), at_path.ino())),
            _ => false,
        };
        NssMapStatus {
            enabled,
            path: path.display().to_string(),
            ttl_secs: ttl.as_secs(),
            now: unix_now(),
            file,
            held,
            written_at: s.written.map(|(at, _)| at),
            skipped: s.written.map_or(0, |(_, n)| n as u64),
            build_error: s.build_error.clone(),
        }
    }

    /// Asks the thread to stop (the map in place stays, valid until its `valid_until`, so
    /// users keep resolving across a restart).
    pub fn stop(&self) {
        lock(&self.shared).stop = true;
        self.wake.notify_all();
    }
}

/// The builder thread's body: marks a map left by an earlier run replaced, builds a new one,
/// then rebuilds after each change and keeps the map valid with heartbeats, until stopped.
pub fn run(state: Arc<State>) {
    run_at(&state, Path::new(NSS_MAP_PATH));
}

fn run_at(state: &State, path: &Path) {
    let map = &state.nss_map;
    mark_old_map_replaced(path);
    lock(&map.shared).dirty = true;
    let mut reader = None;
    let mut generation = unix_now().max(0) as u64 * 1000;
    let mut admin = admin_gids(state);
    let mut first = true;
    loop {
        let cfg = state.config();
        let ttl = cfg.cache.nss_map_ttl;
        let mut s = lock(&map.shared);
        if !s.dirty && !s.stop {
            s = match map
                .wake
                .wait_timeout(s, (ttl / 3).clamp(Duration::from_secs(1), LOOK_AGAIN))
            {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
            if !s.dirty && !s.stop {
                drop(s);
                let now_admin = admin_gids(state);
                if now_admin != admin {
                    admin = now_admin; // /etc/group changed an admin group's GID
                    map.changed();
                } else {
                    heartbeat(map, ttl);
                }
                continue;
            }
        }
        if s.stop {
            return;
        }
        drop(s);
        crate::clock::sleep(SETTLE);
        // Cleared before the snapshot is taken: a change after this point marks the new map.
        lock(&map.shared).dirty = false;
        let cfg = state.config(); // as it is now (a reload is a change too)
        if !cfg.cache.nss_map {
            remove(map, path, first);
            first = false;
            continue;
        }
        first = false;
        if reader.is_none() {
            reader = Store::open_read_only(&cfg.cache.db_path)
                .map_err(|e| log::warn!("NSS map: read-only connection: {e}; using the main one"))
                .ok();
        }
        generation += 1;
        admin = admin_gids(state);
        let started = Instant::now();
        match build(state, reader.as_ref(), path, generation, &admin) {
            Ok((counts, bytes)) => {
                log::info!(
                    "NSS map {} written: {} users, {} groups, {} bytes in {} ms",
                    path.display(),
                    counts.users,
                    counts.groups,
                    bytes,
                    started.elapsed().as_millis()
                );
                // The map was laid out whole in memory: hand that back.
                crate::memory::give_back();
                let mut s = lock(&map.shared);
                s.written = Some((unix_now(), counts.skipped));
                s.build_error = None;
            }
            Err(e) => {
                log::error!("NSS map: {e}; lookups ask oidcd until a map is written");
                reader = None;
                let mut s = lock(&map.shared);
                s.build_error = Some(e);
                s.dirty = true;
                let _ = map.wake.wait_timeout(s, RETRY);
            }
        }
    }
}

/// The GIDs of the local admin groups (`access.admin_local_groups`) as `/etc/group` has them.
fn admin_gids(state: &State) -> Vec<u32> {
    let cfg = state.config();
    match state.local() {
        Ok(local) => cfg
            .access
            .admin_local_groups
            .iter()
            .filter_map(|g| local.group_gid(g))
            .collect(),
        Err(why) => {
            log::error!("{why}: admin groups left out of the NSS map");
            Vec::new()
        }
    }
}

/// Builds the map into a temporary file and puts it in place; the counts and the size.
fn build(
    state: &State,
    reader: Option<&Store>,
    path: &Path,
    generation: u64,
    admin: &[u32],
) -> Result<(MapCounts, u64), String> {
    let cfg = state.config();
    let seed = std::collections::hash_map::RandomState::new().hash_one(generation);
    let mut enc = MapEncoder::new(seed);
    if cfg.login.ssh_first_login && !cfg.providers.is_empty() {
        for p in &cfg.login.ssh_programs {
            if let Err(e) = enc.add_sshd_path(&p.to_string_lossy()) {
                log::warn!("NSS map: {}: {e}", p.display());
            }
        }
    }
    let dir = path.parent().ok_or("the map path has no directory")?;
    let tmp: PathBuf = dir.join(".nss.map.new");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let io = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io)?;
    // Records go to the file as they are made (after room for the header, written last).
    let mut w = BufWriter::with_capacity(1 << 16, &file);
    w.write_all(&[0; HEADER_LEN]).map_err(io)?;
    // Names in /etc/passwd: such a local account is what initgroups asks about.
    let local: std::collections::HashSet<String> = state
        .local()
        .map(|l| l.users.keys().cloned().collect())
        .unwrap_or_default();
    let is_local = |name: &str| local.contains(name);
    let counts = match reader {
        Some(r) => r
            .fill_map(&mut enc, admin, &is_local, &mut w)
            .map_err(|e| e.to_string())?,
        None => state.with_store(|s| s.fill_map(&mut enc, admin, &is_local, &mut w))?,
    };
    let valid_until = unix_now().saturating_add(cfg.cache.nss_map_ttl.as_secs() as i64);
    enc.write_tail(&mut w).map_err(io)?;
    w.flush().map_err(io)?;
    drop(w);
    let header = enc.header(generation, valid_until).map_err(io)?;
    file.write_all_at(&header, 0).map_err(io)?;
    file.sync_all().map_err(io)?;
    let written = file.metadata().map_err(io)?.len();
    drop(enc);
    let map = &state.nss_map;
    let mut s = lock(&map.shared);
    if s.dirty {
        // A change arrived during the build: this map may not have it.
        let _ = file.write_at(&[STATE_BEHIND], STATE_OFFSET as u64);
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
    if let Some(old) = s.file.replace(file) {
        let _ = old.write_at(&[STATE_REPLACED], STATE_OFFSET as u64);
    }
    Ok((counts, written))
}

/// Moves `valid_until` forward, unless a change is pending.
fn heartbeat(map: &NssMap, ttl: Duration) {
    let s = lock(&map.shared);
    if s.dirty {
        return;
    }
    if let Some(f) = &s.file {
        let until = unix_now().saturating_add(ttl.as_secs() as i64);
        if let Err(e) = f.write_at(&until.to_le_bytes(), VALID_UNTIL_OFFSET as u64) {
            log::error!("NSS map: heartbeat: {e}");
        }
    }
}

/// `cache.nss_map = false`: the map goes (marked replaced first, so mapped readers let go), and
/// at start also a map left by an earlier run (marked replaced already).
fn remove(map: &NssMap, path: &Path, at_start: bool) {
    let mut s = lock(&map.shared);
    s.written = None;
    s.build_error = None;
    match s.file.take() {
        Some(old) => {
            let _ = old.write_at(&[STATE_REPLACED], STATE_OFFSET as u64);
        }
        None if !at_start => return,
        None => {}
    }
    match std::fs::remove_file(path) {
        Ok(()) => log::info!("NSS map {} removed (cache.nss_map = false)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("NSS map: cannot remove {}: {e}", path.display()),
    }
}

/// A map left by an earlier run may not match the store: marked replaced before anything else.
fn mark_old_map_replaced(path: &Path) {
    let Ok(f) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return;
    };
    if f.metadata().is_ok_and(|m| m.is_file()) {
        let _ = f.write_at(&[STATE_REPLACED], STATE_OFFSET as u64);
    }
}

/// The file at `path` as its metadata and header describe it; `None` when there is none. Reads
/// [`HEADER_LEN`] bytes at most, through no symbolic link, and never blocks (a FIFO put there
/// is not read). Also what `oidcctl doctor` looks at when the daemon cannot be asked.
pub fn inspect(path: &Path) -> Option<NssMapFile> {
    let describe = |m: &std::fs::Metadata| NssMapFile {
        regular: m.file_type().is_file(),
        uid: m.uid(),
        mode: m.mode() & 0o7777,
        size: m.len(),
        modified_at: m.mtime(),
        ..NssMapFile::default()
    };
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            // A symbolic link (O_NOFOLLOW), or a file root cannot open.
            let m = std::fs::symlink_metadata(path).ok()?;
            let why = if m.file_type().is_symlink() {
                "a symbolic link".to_string()
            } else {
                format!("cannot be opened: {e}")
            };
            return Some(NssMapFile {
                error: Some(why),
                ..describe(&m)
            });
        }
    };
    let meta = file.metadata().ok()?;
    let mut f = describe(&meta);
    if !f.regular {
        f.error = Some("not a regular file".into());
        return Some(f);
    }
    let mut head = Vec::with_capacity(HEADER_LEN);
    let header = (&file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot be read: {e}"))
        .and_then(|_| {
            let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            Header::read(&head, len).map_err(|e| e.to_string())
        });
    match header {
        Ok(h) => {
            f.generation = Some(h.layout.generation);
            f.users = Some(u64::from(h.layout.users));
            f.groups = Some(u64::from(h.layout.groups));
            f.valid_until = Some(h.valid_until);
            f.state = Some(NssMapState::from_byte(h.state));
        }
        Err(e) => f.error = Some(e),
    }
    Some(f)
}

fn unix_now() -> i64 {
    crate::clock::Clock::system().now()
}

#[cfg(test)]
mod tests {
    use oidc_proto::nss_map::{MapView, STATE_CURRENT};
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::identity::local::LocalAccounts;
    use crate::store::NewIds;

    fn state_with_alice() -> Arc<State> {
        let mut store = Store::open_in_memory().unwrap();
        let mut cfg = Config::default();
        cfg.cache.nss_map_ttl = Duration::from_secs(100);
        let local = LocalAccounts::from_paths(
            Path::new("/nonexistent/passwd"),
            Path::new("/nonexistent/group"),
        );
        let ctx = NewIds {
            issuer: "https://idp.test",
            cfg: &cfg,
            local: &local,
            now: 1,
        };
        let alice = json!({"sub": "a", "preferred_username": "alice", "groups": ["team"]});
        store.import(&ctx, &[alice]).unwrap().unwrap();
        Arc::new(State::from_store(
            cfg,
            store,
            local,
            crate::clock::Clock::system(),
        ))
    }

    fn read(path: &Path) -> (u8, i64, u64, bool) {
        let bytes = std::fs::read(path).unwrap();
        let (state, until, view) = MapView::from_file(&bytes).unwrap();
        let alice = view.user_by_name(b"alice").unwrap().is_some();
        (state, until, view.layout().generation, alice)
    }

    /// The builder puts a current map in place; a change marks it behind at once and the
    /// next map replaces it (the old file, still open, says "replaced"); a change during a
    /// build leaves the new map behind; stop ends the thread.
    #[test]
    fn build_change_replace() {
        let dir = tempdir("replace");
        let path = dir.join("nss.map");
        std::fs::write(&path, b"an old map").unwrap();
        let state = state_with_alice();
        let s2 = Arc::clone(&state);
        let p2 = path.clone();
        let t = std::thread::spawn(move || run_at(&s2, &p2));
        assert!(wait(|| std::fs::read(&path).is_ok_and(|b| b.len() > 100)));
        let (st, until, gen1, alice) = read(&path);
        assert_eq!(st, STATE_CURRENT);
        assert!(alice);
        assert!(until > unix_now() + 90, "{until}");
        let old = File::open(&path).unwrap();

        state.with_store(|s| s.remove_user("alice")).unwrap();
        state.invalidate();
        let mut b = [0u8; 1];
        // Either still "behind" or already replaced by the next map.
        old.read_at(&mut b, STATE_OFFSET as u64).unwrap();
        assert!(b[0] == STATE_BEHIND || b[0] == STATE_REPLACED, "{}", b[0]);
        assert!(wait(|| read(&path).2 > gen1));
        assert!(wait(|| {
            old.read_at(&mut b, STATE_OFFSET as u64).unwrap();
            b[0] == STATE_REPLACED
        }));
        let (st, _, _, alice) = read(&path);
        assert_eq!(st, STATE_CURRENT);
        assert!(!alice, "the removed user is gone from the map");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        state.nss_map.stop();
        t.join().unwrap();
    }

    /// What `oidcctl status` gets: the header of the map in place (generation, counts, state,
    /// valid_until), that it is the daemon's own file, when it was written; a file the daemon
    /// did not write is reported as not its own, and one that is not a map as unreadable.
    #[test]
    fn status_reads_the_header_and_knows_its_file() {
        let dir = tempdir("status");
        let path = dir.join("nss.map");
        let state = state_with_alice();
        let ttl = Duration::from_secs(100);
        let before = state.nss_map.status_at(&path, true, ttl);
        assert_eq!((before.file.is_none(), before.held), (true, false));
        assert_eq!(before.written_at, None);

        let s2 = Arc::clone(&state);
        let p2 = path.clone();
        let t = std::thread::spawn(move || run_at(&s2, &p2));
        assert!(wait(|| state.nss_map.status_at(&path, true, ttl).held));
        let st = state.nss_map.status_at(&path, true, ttl);
        let f = st.file.clone().unwrap();
        let (_, until, generation, _) = read(&path);
        assert_eq!(f.generation, Some(generation));
        assert_eq!(
            (f.users, f.groups),
            (Some(1), Some(2)),
            "alice, team and her own"
        );
        assert_eq!(f.state, Some(NssMapState::Current));
        assert_eq!(f.valid_until, Some(until));
        assert_eq!(
            (f.uid, f.mode, f.regular),
            (std::fs::metadata(&dir).unwrap().uid(), 0o644, true)
        );
        assert_eq!(f.size, std::fs::metadata(&path).unwrap().len());
        assert!(
            st.written_at.is_some_and(|w| (w - st.now).abs() < 60),
            "{st:?}"
        );
        assert_eq!((st.enabled, st.ttl_secs, st.skipped), (true, 100, 0));
        assert_eq!(st.build_error, None);
        state.nss_map.stop();
        t.join().unwrap();

        // Another file in its place, not a map at all; then a symbolic link.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, vec![7u8; HEADER_LEN + 10]).unwrap();
        let st = state.nss_map.status_at(&path, true, ttl);
        assert!(!st.held);
        let f = st.file.unwrap();
        assert_eq!(f.error.as_deref(), Some("not an oidcd map (bad magic)"));
        assert_eq!((f.generation, f.state), (None, None));
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let f = inspect(&path).unwrap();
        assert_eq!(
            (f.regular, f.error.as_deref()),
            (false, Some("a symbolic link"))
        );
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oidcd-map-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn wait(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            crate::clock::sleep(Duration::from_millis(5));
        }
        false
    }
}
