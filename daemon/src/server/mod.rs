//! The socket. Workers accept connections, identify each peer by `SO_PEERCRED`, take a
//! connection slot within the per-uid limits before reading a byte, and put the connection in
//! a lane: root's (sshd, sudo, login, `oidcctl`), served by workers of its own, or everyone
//! else's. A housekeeping thread closes connections past their deadlines.
//! In a lane every connection gets one request per turn and no worker ever waits on a slow
//! peer ([`lane`]); root's slow requests (logins, imports) get a thread of their own
//! ([`dedicated`]). Limits: [`limits`].

mod conn;
mod dedicated;
mod lane;
pub mod limits;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt};
use oidc_proto::Response;
use oidc_proto::frame::{self, MAX_FRAME_LEN};
use oidc_proto::message::Envelope;
use oidc_proto::types::ErrorCode;

use crate::access::Peer;
use crate::state::{State, lock};
use conn::Conn;
use lane::Lane;
use limits::{FIRST_REQUEST_TIMEOUT, MAX_PER_UID, ROOT_WORKERS, SHARED_WORKERS};

/// How often connections past their deadline are swept and the stop flag is looked at.
const TICK: Duration = Duration::from_millis(200);
/// How long shutdown waits for connections in flight on threads of their own.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections a worker accepts per wake-up before it serves again.
const ACCEPT_BATCH: usize = 16;

/// Binds the socket at `path`, replacing a stale socket file (never another kind of file), and
/// makes it connectable by everyone: lookups are public, privileged requests are checked per
/// request against the peer's uid.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serves `listener` until `stop` is set, then waits briefly for connections in flight.
pub fn run(listener: UnixListener, state: Arc<State>, stop: Arc<AtomicBool>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let (max, reserved) = limits::connection_limit();
    let server = Arc::new(Server {
        listener,
        slots: Arc::new(Slots::new(max, reserved)),
        root: Lane::new("root")?,
        shared: Lane::new("shared")?,
    });
    server.root.watch_listener(&server.listener)?;
    server.shared.watch_listener(&server.listener)?;
    let mut workers = Vec::new();
    for (root, n) in [(true, ROOT_WORKERS), (false, SHARED_WORKERS)] {
        for i in 0..n {
            let (server, state, flag) =
                (Arc::clone(&server), Arc::clone(&state), Arc::clone(&stop));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", if root { "root" } else { "worker" }))
                .spawn(move || {
                    let lane = if root { &server.root } else { &server.shared };
                    lane.work(&state, &flag, &|| server.accept(&state, root));
                });
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
    }
    while !stop.load(Ordering::SeqCst) {
        crate::clock::sleep(TICK);
        let now = Instant::now();
        server.root.sweep(now);
        server.shared.sweep(now);
        server.slots.report_refusals();
    }
    for w in workers {
        if w.join().is_err() {
            log::error!("a worker thread panicked");
        }
    }
    server.root.clear();
    server.shared.clear();
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while server.slots.total() > 0 && Instant::now() < deadline {
        crate::clock::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The listener, the connection slots and the two lanes: root's and everyone else's.
struct Server {
    listener: UnixListener,
    slots: Arc<Slots>,
    root: Lane,
    shared: Lane,
}

impl Server {
    /// Accepts what is waiting, a batch at most (the listener stays ready for the next
    /// worker if more are). A worker of root's lane serves root's new connections' first
    /// turn itself, a shared worker everyone else's; never the other lane's.
    fn accept(&self, state: &Arc<State>, root_worker: bool) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, state, root_worker),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and friends: log, breathe, go on; never exit over one peer.
                    log::error!("accept failed: {e}");
                    crate::clock::sleep(Duration::from_millis(50));
                    return;
                }
            }
        }
    }

    /// Identifies the peer, takes a slot for it (or tells it "busy") and puts the connection
    /// in its lane. Nothing is read before the slot is taken.
    fn admit(&self, stream: UnixStream, state: &Arc<State>, root_worker: bool) {
        let peer = match getsockopt(&stream, sockopt::PeerCredentials) {
            Ok(c) => Peer {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            Err(e) => {
                log::warn!("cannot read peer credentials, dropping connection: {e}");
                return;
            }
        };
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("cannot make a connection non-blocking: {e}");
            return;
        }
        let Some(slot) = self.slots.take(peer.uid) else {
            refuse_busy(stream);
            return;
        };
        let lane = if peer.is_root() {
            &self.root
        } else {
            &self.shared
        };
        let serve_now = (peer.is_root() == root_worker).then_some(state);
        let conn = Conn::new(stream, peer, slot, FIRST_REQUEST_TIMEOUT);
        if let Err(e) = lane.add(conn, serve_now) {
            log::error!("cannot serve the connection of pid {}: {e}", peer.pid);
        }
    }
}

/// Connection slots, counted in total and per uid.
struct Slots {
    held: Mutex<(usize, HashMap<u32, usize>)>,
    max: usize,
    reserved_for_root: usize,
    /// Connections refused since the last report, and the uid of the last one.
    refused: AtomicU64,
    refused_uid: AtomicU64,
}

impl Slots {
    fn new(max: usize, reserved_for_root: usize) -> Self {
        Self {
            held: Mutex::new((0, HashMap::new())),
            max,
            reserved_for_root,
            refused: AtomicU64::new(0),
            refused_uid: AtomicU64::new(0),
        }
    }

    /// A slot for `uid`, or `None` when the limits say no.
    fn take(self: &Arc<Self>, uid: u32) -> Option<SlotGuard> {
        let mut held = lock(&self.held);
        let (total, per_uid) = &mut *held;
        let mine = per_uid.get(&uid).copied().unwrap_or(0);
        let allowed = if uid == 0 {
            *total < self.max
        } else {
            *total < self.max - self.reserved_for_root && mine < MAX_PER_UID
        };
        if !allowed {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.refused_uid.store(u64::from(uid), Ordering::Relaxed);
            return None;
        }
        *total += 1;
        per_uid.insert(uid, mine + 1);
        Some(SlotGuard {
            slots: Arc::clone(self),
            uid,
        })
    }

    fn total(&self) -> usize {
        lock(&self.held).0
    }

    /// Logs the connections refused since the last call, in one line (a flood of refusals
    /// would otherwise be a flood of log lines).
    fn report_refusals(&self) {
        let n = self.refused.swap(0, Ordering::Relaxed);
        if n > 0 {
            log::warn!(
                "connection limits reached: {n} connections told to retry (the last from uid {})",
                self.refused_uid.load(Ordering::Relaxed)
            );
        }
    }
}

/// A connection slot, given back when dropped.
pub struct SlotGuard {
    slots: Arc<Slots>,
    uid: u32,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut held = lock(&self.slots.held);
        let (total, per_uid) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                per_uid.remove(&self.uid);
            }
        }
    }
}

fn refuse_busy(mut stream: UnixStream) {
    // A fresh connection's socket buffer is empty: this small frame never blocks.
    let resp = Envelope::new(Response::error(ErrorCode::Busy, "oidcd is busy; try again"));
    let _ = frame::write_frame(&mut stream, &resp, MAX_FRAME_LEN);
}
