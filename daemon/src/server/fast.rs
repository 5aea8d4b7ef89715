//! The fast path: an acceptor thread answers, itself, the point lookups whose request is
//! already whole in the socket buffer when it looks — what every NSS client sends, right
//! after connecting. Anything else (a request not there yet or only in part, a large one, a
//! login, an admin command) goes to a thread of its own, as before, so a slow or hostile
//! client can hold an acceptor for at most [`QUICK`] plus the time to answer one lookup.
//!
//! This saves a thread creation and a hand-over per lookup: measured with
//! `tests/benches/nss.rs`.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use oidc_proto::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};
use oidc_proto::message::{self, Envelope};
use oidc_proto::types::ErrorCode;
use oidc_proto::{Request, Response};
use serde_json::Value;

use super::dispatch;
use crate::handler::Peer;
use crate::state::State;

/// How long an acceptor waits for a request to be whole before handing the connection over.
pub const QUICK: Duration = Duration::from_millis(5);
/// Largest request answered on the fast path.
const MAX_QUICK_REQUEST: usize = 4096;
/// How long an acceptor waits to send an answer (a lookup's answer fits in the socket buffer,
/// so this only bounds a client that stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// What to do with a connection after the fast path.
pub enum Next {
    /// It is finished (closed by the peer, or broken).
    Closed,
    /// Serve it on a thread of its own, starting with this request if one was already read.
    HandOver(Option<Request>),
}

/// Answers quick requests while they arrive whole.
pub fn serve(stream: &UnixStream, peer: &Peer, state: &Arc<State>) -> Next {
    if stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        return Next::Closed;
    }
    loop {
        let env = match whole_request(stream) {
            Peeked::Eof => return Next::Closed,
            Peeked::NotYet => return Next::HandOver(None),
            Peeked::Frame(env) => env,
            Peeked::Bad(e) => {
                log::warn!("bad frame from pid {} (uid {}): {e}", peer.pid, peer.uid);
                answer(
                    stream,
                    &Response::error(ErrorCode::BadRequest, e.to_string()),
                );
                return Next::Closed;
            }
        };
        let resp = match message::open_request(env) {
            Ok(req) if is_quick(&req) => dispatch(state, peer, req),
            Ok(req) => return Next::HandOver(Some(req)),
            Err(answer) => {
                log::warn!(
                    "unreadable request from pid {} (uid {}): {answer:?}",
                    peer.pid,
                    peer.uid
                );
                *answer
            }
        };
        if !answer(stream, &resp) {
            return Next::Closed;
        }
    }
}

/// Point lookups: small answers, no waiting on anything but the database.
fn is_quick(req: &Request) -> bool {
    matches!(
        req,
        Request::GetUserByName { .. }
            | Request::GetUserByUid { .. }
            | Request::GetGroupByName { .. }
            | Request::GetGroupByGid { .. }
            | Request::GetGroupsOfUser { .. }
    )
}

fn answer(mut stream: &UnixStream, resp: &Response) -> bool {
    frame::write_frame(&mut stream, &Envelope::new(resp), MAX_FRAME_LEN).is_ok()
}

enum Peeked {
    Eof,
    NotYet,
    Frame(Envelope<Value>),
    Bad(FrameError),
}

/// A request if it is whole in the socket buffer within [`QUICK`], read without blocking.
/// Otherwise nothing is consumed, so the connection's own thread reads it from the start.
fn whole_request(stream: &UnixStream) -> Peeked {
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(stream),
        PollFlags::POLLIN,
    )];
    let ms = u16::try_from(QUICK.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) if n > 0 => {}
        _ => return Peeked::NotYet,
    }
    let mut buf = vec![0u8; MAX_QUICK_REQUEST];
    let fd = stream.as_raw_fd();
    let n = match recv(fd, &mut buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
        Ok(0) => return Peeked::Eof,
        Ok(n) => n,
        Err(_) => return Peeked::NotYet,
    };
    if n < HEADER_LEN {
        return Peeked::NotYet;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if HEADER_LEN + len > n {
        // Partial, or larger than the fast path takes: the connection's own thread reads it
        // (and refuses it if it is over the request limit).
        return Peeked::NotYet;
    }
    let take = HEADER_LEN + len;
    match recv(fd, &mut buf[..take], MsgFlags::MSG_DONTWAIT) {
        Ok(got) if got == take => {}
        _ => return Peeked::Bad(FrameError::Truncated),
    }
    match frame::decode::<Envelope<Value>>(&buf[..take], MAX_QUICK_REQUEST) {
        Ok(Some((env, _))) => Peeked::Frame(env),
        Ok(None) => Peeked::Bad(FrameError::Truncated),
        Err(e) => Peeked::Bad(e),
    }
}
