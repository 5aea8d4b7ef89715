//! The socket: a few acceptor threads identify each peer by `SO_PEERCRED`, answer quick
//! lookups themselves ([`fast`]) and give every other connection a thread of its own, within
//! per-uid limits; all stop when asked.

mod fast;

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, getsockopt, recv, sockopt};
use oidc_proto::frame::{self, FrameError, MAX_FRAME_LEN, MAX_REQUEST_LEN};
use oidc_proto::message::{self, Envelope};
use oidc_proto::types::ErrorCode;
use oidc_proto::{Request, Response};
use serde_json::Value;

use crate::auth;
use crate::handler::{self, Peer};
use crate::state::{State, lock};

/// Connections served at once; more are told "busy" and closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one non-root uid may hold at once: the socket is open to every local user, and
/// one of them must not be able to starve everyone else's lookups.
pub const MAX_PER_UID: usize = 128;
/// Slots only root may use, so root's logins, sudo and `oidcctl` always get through.
pub const RESERVED_FOR_ROOT: usize = 128;
/// How long a new connection may take to send its first request.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(200);
/// How long shutdown waits for connections in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

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

/// Acceptor threads: each accepts connections and answers quick lookups itself ([`fast`]).
pub const ACCEPTORS: usize = 4;

/// Serves `listener` until `stop` is set, then waits briefly for connections in flight.
pub fn run(listener: UnixListener, state: Arc<State>, stop: Arc<AtomicBool>) -> io::Result<()> {
    // Non-blocking, so an acceptor woken with the others for one connection does not sleep
    // in accept() when another took it.
    listener.set_nonblocking(true)?;
    let listener = Arc::new(listener);
    let slots = Arc::new(Slots::default());
    let mut acceptors = Vec::with_capacity(ACCEPTORS);
    for i in 0..ACCEPTORS {
        let (listener, state, stop, slots) = (
            Arc::clone(&listener),
            Arc::clone(&state),
            Arc::clone(&stop),
            Arc::clone(&slots),
        );
        acceptors.push(
            std::thread::Builder::new()
                .name(format!("accept-{i}"))
                .spawn(move || accept_loop(&listener, &state, &stop, &slots))?,
        );
    }
    let mut result = Ok(());
    for a in acceptors {
        match a.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(io::Error::other("an acceptor thread panicked")),
        }
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while slots.total() > 0 && Instant::now() < deadline {
        crate::clock::sleep(Duration::from_millis(20));
    }
    result
}

fn accept_loop(
    listener: &UnixListener,
    state: &Arc<State>,
    stop: &AtomicBool,
    slots: &Arc<Slots>,
) -> io::Result<()> {
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(STOP_CHECK).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                continue;
            }
            Err(e) => {
                // EMFILE and friends: log, breathe, go on; never exit the daemon over one peer.
                log::error!("accept failed: {e}");
                crate::clock::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = match getsockopt(&stream, sockopt::PeerCredentials) {
            Ok(c) => Peer {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            Err(e) => {
                log::warn!("cannot read peer credentials, dropping connection: {e}");
                continue;
            }
        };
        let Some(guard) = slots.take(peer.uid) else {
            log::warn!(
                "connection limit reached for uid {} (pid {}): told to retry",
                peer.uid,
                peer.pid
            );
            refuse_busy(stream);
            continue;
        };
        let pending = match fast::serve(&stream, &peer, state) {
            fast::Next::Closed => continue,
            fast::Next::HandOver(pending) => pending,
        };
        let state = Arc::clone(state);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let _guard = guard;
                serve(stream, peer, &state, pending);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// Connection slots, counted in total and per uid.
#[derive(Default)]
struct Slots {
    held: Mutex<(usize, HashMap<u32, usize>)>,
}

impl Slots {
    /// A slot for `uid`, or `None` when the limits say no.
    fn take(self: &Arc<Self>, uid: u32) -> Option<SlotGuard> {
        let mut held = lock(&self.held);
        let (total, per_uid) = &mut *held;
        let mine = per_uid.get(&uid).copied().unwrap_or(0);
        let allowed = if uid == 0 {
            *total < MAX_CONNECTIONS
        } else {
            *total < MAX_CONNECTIONS - RESERVED_FOR_ROOT && mine < MAX_PER_UID
        };
        if !allowed {
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
}

struct SlotGuard {
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
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let resp = Envelope::new(Response::error(ErrorCode::Busy, "oidcd is busy; try again"));
    let _ = frame::write_frame(&mut stream, &resp, MAX_FRAME_LEN);
}

/// Serves one connection: requests in, answers out, until the peer hangs up, idles too long
/// or sends something unreadable. Logins started on the connection are cancelled when it
/// ends: the PAM conversation that would show their outcome is gone.
fn serve(stream: UnixStream, peer: Peer, state: &Arc<State>, pending: Option<Request>) {
    let mut logins = Vec::new();
    serve_requests(stream, peer, state, pending, &mut logins);
    for id in logins {
        state.logins.cancel(&id);
    }
}

fn serve_requests(
    mut stream: UnixStream,
    peer: Peer,
    state: &Arc<State>,
    mut pending: Option<Request>,
    logins: &mut Vec<String>,
) {
    if stream.set_write_timeout(Some(IDLE_TIMEOUT)).is_err() {
        return;
    }
    let mut first = pending.is_none();
    loop {
        if let Some(req) = pending.take() {
            let resp = answer(state, &peer, &stream, req, logins);
            if let Err(e) = frame::write_frame(&mut stream, &Envelope::new(&resp), MAX_FRAME_LEN) {
                log::debug!("answering pid {}: {e}", peer.pid);
                return;
            }
            continue;
        }
        // A client sends its request at once; between requests it may pause; while a login
        // runs, the user may take minutes to read the prompt and approve.
        let idle = if first {
            FIRST_REQUEST_TIMEOUT
        } else if logins.is_empty() {
            IDLE_TIMEOUT
        } else {
            state.config().login.timeout + IDLE_TIMEOUT
        };
        if stream.set_read_timeout(Some(idle)).is_err() {
            return;
        }
        let env: Envelope<Value> = match frame::read_frame(&mut stream, MAX_REQUEST_LEN) {
            Ok(Some(env)) => env,
            Ok(None) => return,
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Malformed(_))) => {
                log::warn!("bad frame from pid {} (uid {}): {e}", peer.pid, peer.uid);
                let resp = Response::error(ErrorCode::BadRequest, e.to_string());
                let _ = frame::write_frame(&mut stream, &Envelope::new(resp), MAX_FRAME_LEN);
                return;
            }
            Err(FrameError::Truncated) => {
                log::debug!("pid {} hung up mid-request", peer.pid);
                return;
            }
            Err(FrameError::Io(e)) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    log::debug!("reading from pid {}: {e}", peer.pid);
                }
                return;
            }
        };
        first = false;
        let resp = match message::open_request(env) {
            Ok(req) => answer(state, &peer, &stream, req, logins),
            Err(answer) => {
                log::warn!(
                    "unreadable request from pid {} (uid {}): {answer:?}",
                    peer.pid,
                    peer.uid
                );
                *answer
            }
        };
        if let Err(e) = frame::write_frame(&mut stream, &Envelope::new(&resp), MAX_FRAME_LEN) {
            log::debug!("answering pid {}: {e}", peer.pid);
            return;
        }
    }
}

/// Answers one request on a connection's own thread, noting the logins it starts.
fn answer(
    state: &Arc<State>,
    peer: &Peer,
    stream: &UnixStream,
    req: Request,
    logins: &mut Vec<String>,
) -> Response {
    if let Request::LoginWait { login_id } = &req {
        return auth::login::wait(state, login_id, &|| peer_hung_up(stream));
    }
    let resp = dispatch(state, peer, req);
    if let Response::LoginStarted(p) = &resp {
        logins.push(p.login_id.clone());
    }
    resp
}

/// Whether the peer closed its end (the PAM process exited or was killed): a peek that reads
/// end-of-file. Pending bytes or "nothing yet" mean it is still there.
fn peer_hung_up(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(
        recv(stream.as_raw_fd(), &mut byte, flags),
        Ok(0) | Err(nix::errno::Errno::ECONNRESET)
    )
}

fn dispatch(state: &Arc<State>, peer: &Peer, req: Request) -> Response {
    log::trace!("pid {} uid {}: {req:?}", peer.pid, peer.uid);
    handler::handle(state, peer, req)
}
