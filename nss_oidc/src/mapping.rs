//! The daemon's map ([`oidc_proto::nss_map`]) mapped into this process: opened once, shared by
//! every thread, remapped when the daemon replaces it or lets it expire.
//!
//! This module and `ffi` are the crate's only unsafe code: `mmap`/`munmap`, the two volatile
//! reads of the header fields the daemon rewrites, and the clock.
//!
//! # Per lookup
//! A thread keeps its own reference to the current mapping ([`with_map`]) and compares a global
//! generation counter with the one it saw last: one relaxed load of a shared, read-mostly word
//! and a coarse clock read (vDSO, no system call). Nothing is locked and no shared counter is
//! written, so threads do not slow each other down.
//!
//! # Replacing a mapping
//! When the mapped file says "replaced" or its `valid_until` has passed, one thread (picked by a
//! compare-and-swap on the time of the last attempt, at most one attempt per [`RETRY_MS`]) opens
//! the path again, outside any lock, and installs the new mapping under `try_lock` only: no
//! thread ever waits for another, so a lock held by some thread when the process forks cannot
//! hang the child (on contention the lookup asks the daemon instead). A retired mapping is
//! unmapped when its last user lets go: the global slot and each thread's reference are
//! `Arc`s, dropped when replaced or when the thread ends, so sshd or systemd running for months
//! hold at most one old mapping per thread, never a growing pile.
//!
//! # Opening
//! `open(O_RDONLY | O_CLOEXEC | O_NOFOLLOW)`, then `fstat`: a regular file owned by root, not
//! writable by group or others, of a sane size, in a root-owned directory not writable by
//! others. The descriptor is closed as soon as the file is mapped, so nothing leaks into
//! programs the host executes.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oidc_proto::nss_map::{
    HEADER_LEN, Layout, MAX_FILE_LEN, MUTABLE_LEN, MapView, STATE_OFFSET, STATE_REPLACED,
    VALID_UNTIL_OFFSET,
};
use oidc_proto::paths::NSS_MAP_PATH;

/// Least time between two attempts to map the file again, in milliseconds.
pub const RETRY_MS: u64 = 100;

/// Whether a mapped map may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// State "current" and within `valid_until`: hits and misses are answered from it.
    Current,
    /// State "behind the store" or "replaced" (a newer map is in place, not yet mapped here)
    /// within `valid_until`: only if the daemon cannot answer. Either is at most one change
    /// behind, as a map whose daemon is down is.
    Behind,
    /// Expired, or an unknown state: never answers.
    Unusable,
}

/// The rule of [`Freshness`] for a header's `state` and `valid_until` at `now` (unix seconds).
pub fn freshness(state: u8, valid_until: i64, now: i64) -> Freshness {
    if now >= valid_until {
        return Freshness::Unusable;
    }
    match state {
        oidc_proto::nss_map::STATE_CURRENT => Freshness::Current,
        oidc_proto::nss_map::STATE_BEHIND | STATE_REPLACED => Freshness::Behind,
        _ => Freshness::Unusable,
    }
}

/// One mapping of the file.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    /// Whether this process runs one of the map's sshd programs: 0 not yet known, 1 no, 2 yes.
    /// Cached per mapping (the list comes with the map; the executable is the same until exec,
    /// which discards everything), written by whichever thread finds out first.
    sshd: AtomicU8,
}

// SAFETY: the mapping is read-only shared memory owned by this value; every access is a read
// (volatile for the two fields another process rewrites), so sharing it between threads is as
// safe as sharing a `&[u8]`.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the file at [`NSS_MAP_PATH`] if it can be trusted; `None` otherwise (missing,
    /// foreign, writable by others, a symbolic link, too small or large, not a map).
    pub fn open() -> Option<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(NSS_MAP_PATH)
            .ok()?;
        let meta = file.metadata().ok()?;
        let len = usize::try_from(meta.len()).ok()?;
        if !meta.file_type().is_file()
            || meta.uid() != 0
            || meta.mode() & 0o022 != 0
            || !(HEADER_LEN..=MAX_FILE_LEN).contains(&len)
        {
            return None;
        }
        let dir = std::path::Path::new(NSS_MAP_PATH).parent()?;
        let d = std::fs::symlink_metadata(dir).ok()?;
        if !d.is_dir() || d.uid() != 0 || d.mode() & 0o022 != 0 {
            return None;
        }
        let mut mapping = Self::map(&file, len)?;
        drop(file); // the mapping stays valid without the descriptor
        mapping.layout = *MapView::parse(mapping.body()).ok()?.layout();
        Some(mapping)
    }

    fn map(file: &File, len: usize) -> Option<Self> {
        // SAFETY: a fresh read-only shared mapping of `len` bytes of an open file; the kernel
        // picks the address. Nothing else refers to it until this returns.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Self {
            base: NonNull::new(p.cast())?,
            len,
            layout: Layout::default(),
            sshd: AtomicU8::new(0),
        })
    }

    /// The immutable part of the file (from [`MUTABLE_LEN`] on).
    fn body(&self) -> &[u8] {
        // SAFETY: `base..base + len` is mapped readable for as long as `self` lives, len is at
        // least HEADER_LEN > MUTABLE_LEN, and the daemon never writes past MUTABLE_LEN once
        // the file is in place (a new map is a new file), so these bytes do not change while
        // the slice is borrowed.
        unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(MUTABLE_LEN), self.len - MUTABLE_LEN)
        }
    }

    /// The map, for lookups.
    pub fn view(&self) -> MapView<'_> {
        MapView::with_layout(self.body(), self.layout)
    }

    /// The header's `state`, as the daemon last wrote it.
    pub fn state(&self) -> u8 {
        // SAFETY: inside the mapping (len >= HEADER_LEN); volatile because another process
        // rewrites this byte (a single byte cannot tear).
        unsafe { self.base.as_ptr().add(STATE_OFFSET).read_volatile() }
    }

    /// The header's `valid_until`. The daemon's heartbeat rewrites it with one `pwrite`; a read
    /// that races it could in principle mix old and new bytes, which is harmless: both values
    /// lie in the future of a live daemon, a mix of two nearby times is near both, and the next
    /// lookup reads it again.
    pub fn valid_until(&self) -> i64 {
        // SAFETY: inside the mapping and 8-byte aligned (the mapping is page-aligned and the
        // field is at offset 0); volatile because another process rewrites it.
        let raw = unsafe {
            self.base
                .as_ptr()
                .add(VALID_UNTIL_OFFSET)
                .cast::<[u8; 8]>()
                .read_volatile()
        };
        i64::from_le_bytes(raw)
    }

    /// [`freshness`] of this mapping at `now`.
    pub fn freshness(&self, now: i64) -> Freshness {
        freshness(self.state(), self.valid_until(), now)
    }

    /// Whether this process is one of the map's sshd programs (see [`crate::lookup`]).
    pub fn in_sshd(&self) -> bool {
        match self.sshd.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = crate::lookup::exe_is_one_of(self.view().sshd_paths());
                self.sshd.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once, when the last reference (an Arc)
        // goes: no slice into it outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The current time, in seconds and in milliseconds, from the coarse real-time clock (read in
/// user space through the vDSO, no system call). `valid_until` is real time.
pub fn now() -> (i64, u64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_REALTIME_COARSE always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    let ms = u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(u64::try_from(ts.tv_nsec / 1_000_000).unwrap_or(0));
    (ts.tv_sec, ms)
}

/// The process's current mapping; replaced under `try_lock` only.
static SLOT: Mutex<Option<Arc<Mapping>>> = Mutex::new(None);
/// Increased each time [`SLOT`] changes: a thread whose copy is older takes the new one.
static EPOCH: AtomicU64 = AtomicU64::new(1);
/// When the file was last (re)opened, in coarse milliseconds.
static LAST_ATTEMPT: AtomicU64 = AtomicU64::new(0);

struct Local {
    epoch: u64,
    map: Option<Arc<Mapping>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { epoch: 0, map: None }) };
}

/// Runs `f` with this thread's current mapping and its freshness (`None`: no usable file),
/// mapping the file again first if it was replaced or expired.
pub fn with_map<R>(mut f: impl FnMut(Option<(&Mapping, Freshness)>) -> R) -> R {
    let (now, now_ms) = now();
    let answer = LOCAL.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut local) => {
            refresh(&mut local, now, now_ms);
            match &local.map {
                Some(m) => f(Some((m, m.freshness(now)))),
                None => f(None),
            }
        }
        Err(_) => f(None), // re-entered (nothing here re-enters today): no map this time
    });
    // Err: this thread's locals are already destroyed (a lookup during thread exit).
    answer.unwrap_or_else(|_| f(None))
}

fn refresh(local: &mut Local, now: i64, now_ms: u64) {
    if local.epoch != EPOCH.load(Ordering::Acquire) {
        if let Ok(slot) = SLOT.try_lock() {
            local.map = slot.clone();
            local.epoch = EPOCH.load(Ordering::Acquire);
        }
    }
    if local
        .map
        .as_ref()
        .is_some_and(|m| m.state() != STATE_REPLACED && now < m.valid_until())
    {
        return;
    }
    let last = LAST_ATTEMPT.load(Ordering::Relaxed);
    if last <= now_ms && now_ms - last < RETRY_MS {
        return;
    }
    if LAST_ATTEMPT
        .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return; // another thread is trying right now
    }
    let Some(new) = Mapping::open() else {
        return;
    };
    if new.state() == STATE_REPLACED {
        return; // the daemon has marked it but not yet put the next one in place
    }
    let new = Arc::new(new);
    let old = match SLOT.try_lock() {
        Ok(mut slot) => {
            let old = slot.replace(Arc::clone(&new));
            EPOCH.fetch_add(1, Ordering::AcqRel);
            local.epoch = EPOCH.load(Ordering::Acquire);
            local.map = Some(new);
            old
        }
        Err(_) => None, // contention: `new` is unmapped on return, the daemon answers
    };
    drop(old); // unmapped here if no thread holds it any more, outside the lock
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The freshness rule: current, or behind or replaced (a stand-in only), before
    /// `valid_until`; nothing after it.
    #[test]
    fn freshness_rule() {
        assert_eq!(freshness(0, 100, 99), Freshness::Current);
        assert_eq!(freshness(1, 100, 99), Freshness::Behind);
        assert_eq!(freshness(2, 100, 99), Freshness::Behind);
        assert_eq!(freshness(7, 100, 99), Freshness::Unusable);
        assert_eq!(freshness(0, 100, 100), Freshness::Unusable);
        assert_eq!(freshness(1, 100, 1000), Freshness::Unusable);
    }

    /// The coarse clock reads real time.
    #[test]
    fn clock_is_real_time() {
        let (s, ms) = now();
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((s - sys).abs() <= 1, "{s} vs {sys}");
        assert!(ms / 1000 == s as u64 || ms / 1000 + 1 == s as u64);
    }
}
