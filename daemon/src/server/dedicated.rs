//! A connection on a thread of its own, for root's slow requests (a login, which waits on the
//! provider and on the person approving; an import; an export). The access table makes every
//! slow request root's, so no other user can make the daemon start a thread.
//!
//! The thread serves the connection until it closes. Logins started on it are cancelled then:
//! the PAM conversation that would show their outcome is gone.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::sys::socket::{MsgFlags, recv};
use oidc_proto::Response;
use oidc_proto::frame::{self, FrameError, MAX_FRAME_LEN};
use oidc_proto::message::{self, Envelope};
use oidc_proto::types::ErrorCode;

use super::SlotGuard;
use super::limits::{IDLE_TIMEOUT, WRITE_TIMEOUT, max_request};
use crate::access::{self, Admitted, Peer};
use crate::handler;
use crate::state::State;

/// Starts a thread serving `stream`, beginning with `first`; the slot is held until it ends.
pub fn spawn(
    state: &Arc<State>,
    stream: UnixStream,
    peer: Peer,
    slot: SlotGuard,
    first: Box<Admitted>,
) {
    let state = Arc::clone(state);
    let spawned = std::thread::Builder::new()
        .name("conn".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _slot = slot;
            serve(stream, peer, &state, *first);
        });
    if let Err(e) = spawned {
        log::error!("cannot start a connection thread for pid {}: {e}", peer.pid);
    }
}

fn serve(stream: UnixStream, peer: Peer, state: &Arc<State>, first: Admitted) {
    let mut logins = Vec::new();
    serve_requests(stream, peer, state, first, &mut logins);
    for id in logins {
        state.logins.cancel(&id);
    }
}

fn serve_requests(
    mut stream: UnixStream,
    peer: Peer,
    state: &Arc<State>,
    first: Admitted,
    logins: &mut Vec<String>,
) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let mut next = Some(first);
    loop {
        let resp = match next.take() {
            Some(admitted) => {
                let resp = handler::handle(state, admitted, &|| peer_hung_up(&stream));
                if let Response::LoginStarted(p) = &resp {
                    logins.push(p.login_id.clone());
                }
                resp
            }
            None => {
                // Between requests the PAM module may pause; while a login runs, the user may
                // take minutes to read the prompt and approve.
                let idle = if logins.is_empty() {
                    IDLE_TIMEOUT
                } else {
                    state.config().login.timeout + IDLE_TIMEOUT
                };
                if stream.set_read_timeout(Some(idle)).is_err() {
                    return;
                }
                let Some(body) = read(&mut stream, &peer) else {
                    return;
                };
                match message::decode_request(&body) {
                    Ok(req) => match access::admit(peer, req) {
                        Ok(admitted) => {
                            next = Some(admitted);
                            continue;
                        }
                        Err(denied) => *denied,
                    },
                    Err(answer) => {
                        log::warn!(
                            "unreadable request from pid {} (uid {}): {answer:?}",
                            peer.pid,
                            peer.uid
                        );
                        let _ =
                            frame::write_frame(&mut stream, &Envelope::new(&answer), MAX_FRAME_LEN);
                        return;
                    }
                }
            }
        };
        if let Err(e) = frame::write_frame(&mut stream, &Envelope::new(&resp), MAX_FRAME_LEN) {
            log::debug!("answering pid {}: {e}", peer.pid);
            return;
        }
    }
}

/// The next request's body, or `None` when the connection is over (closed, idle too long, or
/// sent a frame it may not send, which is answered first).
fn read(stream: &mut UnixStream, peer: &Peer) -> Option<Vec<u8>> {
    match frame::read_body(stream, max_request(peer)) {
        Ok(body) => body,
        Err(e @ (FrameError::TooLarge { .. } | FrameError::Malformed(_))) => {
            log::warn!("bad frame from pid {} (uid {}): {e}", peer.pid, peer.uid);
            let resp = Response::error(ErrorCode::BadRequest, e.to_string());
            let _ = frame::write_frame(stream, &Envelope::new(resp), MAX_FRAME_LEN);
            None
        }
        Err(FrameError::Truncated) => {
            log::debug!("pid {} hung up mid-request", peer.pid);
            None
        }
        Err(FrameError::Io(e)) => {
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                log::debug!("reading from pid {}: {e}", peer.pid);
            }
            None
        }
    }
}

/// Whether the peer closed its end (the PAM process exited or was killed): a peek that reads
/// end-of-file. Pending bytes or "nothing yet" mean it is still there.
fn peer_hung_up(stream: &UnixStream) -> bool {
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(
        recv(stream.as_raw_fd(), &mut byte, flags),
        Ok(0) | Err(nix::errno::Errno::ECONNRESET)
    )
}
