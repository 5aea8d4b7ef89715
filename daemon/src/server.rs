//! The socket: accept, identify the peer by `SO_PEERCRED`, serve each connection on its own
//! thread up to a limit, stop when asked.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};
use oidc_proto::frame::{self, FrameError, MAX_FRAME_LEN, MAX_REQUEST_LEN};
use oidc_proto::message::{self, Envelope};
use oidc_proto::types::ErrorCode;
use oidc_proto::{Request, Response};
use serde_json::Value;

use crate::handler::{self, Peer};
use crate::state::State;

/// Connections served at once; more are told "busy" and closed.
pub const MAX_CONNECTIONS: usize = 256;
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

/// Serves `listener` until `stop` is set, then waits briefly for connections in flight.
pub fn run(listener: UnixListener, state: Arc<State>, stop: Arc<AtomicBool>) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
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
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            log::warn!(
                "{MAX_CONNECTIONS} connections in flight: telling pid {} to retry",
                peer.pid
            );
            refuse_busy(stream);
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(Arc::clone(&active));
        let state = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                let _guard = guard;
                serve(stream, peer, &state);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
        }
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        crate::clock::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
fn serve(stream: UnixStream, peer: Peer, state: &Arc<State>) {
    let mut logins = Vec::new();
    serve_requests(stream, peer, state, &mut logins);
    for id in logins {
        state.logins.cancel(&id);
    }
}

fn serve_requests(
    mut stream: UnixStream,
    peer: Peer,
    state: &Arc<State>,
    logins: &mut Vec<String>,
) {
    if stream.set_write_timeout(Some(IDLE_TIMEOUT)).is_err() {
        return;
    }
    loop {
        // While a login runs, the user may take minutes to read the prompt and approve.
        let idle = if logins.is_empty() {
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
        let resp = match message::open_request(env) {
            Ok(req) => {
                let resp = dispatch(state, &peer, req);
                if let Response::LoginStarted(p) = &resp {
                    logins.push(p.login_id.clone());
                }
                resp
            }
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

fn dispatch(state: &Arc<State>, peer: &Peer, req: Request) -> Response {
    log::trace!("pid {} uid {}: {req:?}", peer.pid, peer.uid);
    handler::handle(state, peer, req)
}
