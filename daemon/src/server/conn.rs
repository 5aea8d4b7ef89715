//! One connection served by a lane: a non-blocking socket, the part of a request read so far,
//! the part of an answer not yet written, and the time by which the peer must have moved on.
//!
//! A turn ([`Conn::turn`]) never blocks: it writes what the socket takes, reads what has
//! arrived, and serves at most one whole request. The length prefix is checked against the
//! peer's limit ([`max_request`]) before any of the body is read, and the body is read as it
//! arrives, so a connection never holds more than that limit of request bytes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oidc_proto::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};
use oidc_proto::message::{self, Envelope};
use oidc_proto::types::ErrorCode;
use oidc_proto::{Request, Response};

use super::SlotGuard;
use super::limits::{FRAME_TIMEOUT, IDLE_TIMEOUT, UNREAD_ANSWERS_MAX, WRITE_TIMEOUT, max_request};
use crate::access::{self, Admitted, Cost, Peer};
use crate::handler;
use crate::state::State;

/// What the lane does with a connection after a turn.
pub enum Next {
    /// Wait until it is readable (`false`) or writable (`true`), then give it another turn.
    Wait {
        /// Wait for room to write instead of data to read.
        writable: bool,
    },
    /// Close it.
    Close,
    /// Hand it to a thread of its own, which starts by serving this request.
    HandOver(Box<Admitted>),
}

/// A connection's state between turns.
pub struct Conn {
    /// The socket (non-blocking).
    pub stream: UnixStream,
    /// Who is at the other end.
    pub peer: Peer,
    /// Its connection slot, given back when the connection ends (or taken by the thread it
    /// is handed to).
    pub slot: Option<SlotGuard>,
    /// Set when the sweeper closed it: a worker that still holds it lets go.
    pub closed: bool,
    /// When the peer must have moved on (finished a request, read an answer, sent another).
    pub deadline: Instant,
    /// Why the deadline is set, for the log line when it passes.
    pub waiting_for: &'static str,
    inbuf: Vec<u8>,
    want: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes of `out` counted in [`UNREAD`] (non-root peers only).
    unread: usize,
    close_after_write: bool,
}

/// Answer bytes that non-root peers have left unread in the daemon, all together: an
/// enumeration answer can be megabytes, and a user who asks for it on many connections and
/// never reads must not make the daemon hold it many times over.
static UNREAD: AtomicUsize = AtomicUsize::new(0);

impl Conn {
    /// A freshly accepted connection, which must send its first request within `first`.
    pub fn new(stream: UnixStream, peer: Peer, slot: SlotGuard, first: Duration) -> Self {
        Self {
            stream,
            peer,
            slot: Some(slot),
            closed: false,
            deadline: Instant::now() + first,
            waiting_for: "a first request",
            inbuf: Vec::new(),
            want: HEADER_LEN,
            out: Vec::new(),
            out_pos: 0,
            unread: 0,
            close_after_write: false,
        }
    }

    /// One turn: flush what is pending, then read and serve at most one request.
    pub fn turn(&mut self, state: &Arc<State>) -> Next {
        if self.out_pos < self.out.len() {
            match self.flush() {
                Ok(true) => {}
                Ok(false) => return Next::Wait { writable: true },
                Err(e) => {
                    log::debug!("answering pid {}: {e}", self.peer.pid);
                    return Next::Close;
                }
            }
        }
        if self.close_after_write {
            return Next::Close;
        }
        let body = match self.read_frame() {
            Ok(Some(body)) => body,
            Ok(None) => return Next::Wait { writable: false },
            Err(Ended::Closed) => return Next::Close,
            Err(Ended::Bad(e)) => {
                log::warn!(
                    "bad frame from pid {} (uid {}): {e}",
                    self.peer.pid,
                    self.peer.uid
                );
                self.close_after_write = true;
                return self.answer(&Response::error(ErrorCode::BadRequest, e.to_string()));
            }
        };
        let request = match message::decode_request(&body) {
            Ok(r) => r,
            Err(answer) => {
                log::warn!(
                    "unreadable request from pid {} (uid {}): {answer:?}",
                    self.peer.pid,
                    self.peer.uid
                );
                // A client that sends what this version cannot read gets nothing more from it.
                self.close_after_write = true;
                return self.answer(&answer);
            }
        };
        match serve_quick(state, self.peer, request) {
            Ok(resp) => self.answer(&resp),
            Err(admitted) => Next::HandOver(admitted),
        }
    }

    /// Queues `resp` and writes what the socket takes now.
    fn answer(&mut self, resp: &Response) -> Next {
        self.out = match frame::encode(&Envelope::new(resp), MAX_FRAME_LEN) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::error!("cannot encode an answer to pid {}: {e}", self.peer.pid);
                return Next::Close;
            }
        };
        self.out_pos = 0;
        match self.flush() {
            Ok(true) if self.close_after_write => Next::Close,
            Ok(true) => {
                self.expect("another request", IDLE_TIMEOUT);
                Next::Wait { writable: false }
            }
            Ok(false) if self.hold_unread() => {
                self.expect("the answer to be read", WRITE_TIMEOUT);
                Next::Wait { writable: true }
            }
            Ok(false) => {
                log::warn!(
                    "pid {} (uid {}) leaves answers unread while others do too: closed",
                    self.peer.pid,
                    self.peer.uid
                );
                Next::Close
            }
            Err(e) => {
                log::debug!("answering pid {}: {e}", self.peer.pid);
                Next::Close
            }
        }
    }

    /// Writes pending answer bytes; `Ok(true)` once all are written.
    fn flush(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            match (&self.stream).write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.out = Vec::new();
        self.out_pos = 0;
        self.release_unread();
        if !self.close_after_write {
            self.expect("another request", IDLE_TIMEOUT);
        }
        Ok(true)
    }

    /// Reads what has arrived of the current frame, never past its end (the next request stays
    /// in the socket for the next turn). `Ok(Some(body))` once it is whole.
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>, Ended> {
        let mut chunk = [0u8; 16 * 1024];
        while self.inbuf.len() < self.want {
            let room = (self.want - self.inbuf.len()).min(chunk.len());
            match (&self.stream).read(&mut chunk[..room]) {
                Ok(0) => {
                    if !self.inbuf.is_empty() {
                        log::debug!("pid {} hung up mid-request", self.peer.pid);
                    }
                    return Err(Ended::Closed);
                }
                Ok(n) => {
                    if self.inbuf.is_empty() {
                        // A frame has begun: it must be whole soon, however it trickles in.
                        self.expect_by("the rest of a request", FRAME_TIMEOUT);
                    }
                    self.inbuf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => {
                    log::debug!("reading from pid {}: {e}", self.peer.pid);
                    return Err(Ended::Closed);
                }
            }
            if self.want == HEADER_LEN && self.inbuf.len() == HEADER_LEN {
                // Checked before a byte of the body is read or room made for it.
                let len =
                    frame::body_len(&self.inbuf, max_request(&self.peer)).map_err(Ended::Bad)?;
                self.want = HEADER_LEN + len;
            }
        }
        let frame = std::mem::take(&mut self.inbuf);
        self.want = HEADER_LEN;
        Ok(Some(frame[HEADER_LEN..].to_vec()))
    }

    /// Counts the rest of the answer in [`UNREAD`] if this peer is not root; false when that
    /// would pass [`UNREAD_ANSWERS_MAX`].
    fn hold_unread(&mut self) -> bool {
        if self.peer.is_root() {
            return true;
        }
        let n = self.out.len() - self.out_pos;
        let before = UNREAD.fetch_add(n, Ordering::SeqCst);
        self.unread = n;
        if before + n > UNREAD_ANSWERS_MAX {
            self.release_unread();
            return false;
        }
        true
    }

    fn release_unread(&mut self) {
        UNREAD.fetch_sub(std::mem::take(&mut self.unread), Ordering::SeqCst);
    }

    /// Sets the deadline to `after` from now.
    fn expect(&mut self, what: &'static str, after: Duration) {
        self.waiting_for = what;
        self.deadline = Instant::now() + after;
    }

    /// Brings the deadline forward to `after` from now (never later than it was).
    fn expect_by(&mut self, what: &'static str, after: Duration) {
        let by = Instant::now() + after;
        if by < self.deadline {
            self.waiting_for = what;
            self.deadline = by;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.release_unread();
    }
}

/// Why a connection's frame ended early.
enum Ended {
    /// The peer hung up (or the socket failed).
    Closed,
    /// The frame is refused (too large).
    Bad(FrameError),
}

/// Serves `request` now if the table says it is quick, after the access check; a slow one is
/// returned, admitted, for a thread of its own.
pub fn serve_quick(
    state: &Arc<State>,
    peer: Peer,
    request: Request,
) -> Result<Response, Box<Admitted>> {
    let admitted = match access::admit(peer, request) {
        Ok(a) => a,
        Err(denied) => return Ok(*denied),
    };
    if admitted.rule().cost == Cost::Slow {
        return Err(Box::new(admitted));
    }
    Ok(handler::handle(state, admitted, &|| false))
}
