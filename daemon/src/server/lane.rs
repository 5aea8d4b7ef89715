//! A lane: connections waiting in one epoll instance, served by a few worker threads.
//!
//! Every connection is registered one-shot: when it becomes ready, exactly one worker gets it,
//! gives it one turn ([`Conn::turn`]: at most one request, never a blocking read or write) and
//! registers it again, which puts it at the back of the ready list behind every other
//! connection with something to say. A connection that sends requests back to back therefore
//! gets one request per turn like everyone else, and one that trickles a request in or stops
//! reading its answer holds no worker at all, only its connection slot, until its deadline
//! passes and the sweeper closes it.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::conn::{Conn, Next};
use super::dedicated;
use crate::state::{State, lock};

/// The listener's token; connections count from 1.
const LISTENER: u64 = 0;

/// How often a waiting worker looks at the stop flag, in milliseconds.
const STOP_CHECK_MS: u16 = 200;

/// One lane: its epoll instance and its connections by token.
pub struct Lane {
    name: &'static str,
    epoll: Epoll,
    conns: Mutex<HashMap<u64, Arc<Mutex<Conn>>>>,
    next_token: AtomicU64,
}

impl Lane {
    /// An empty lane.
    pub fn new(name: &'static str) -> io::Result<Self> {
        Ok(Self {
            name,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            conns: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        })
    }

    /// Lets this lane's workers accept connections too (token 0, level-triggered, one worker
    /// woken at a time): accepting then takes no hand-off, keeps up with as many workers as
    /// are free, and root's workers accept even when every shared worker is busy.
    pub fn watch_listener(&self, listener: &UnixListener) -> io::Result<()> {
        let what = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
        Ok(self.epoll.add(listener, EpollEvent::new(what, LISTENER))?)
    }

    /// Adds a connection. With `serve_now`, the worker that accepted it gives it its first
    /// turn at once (its request is usually in the socket already: this saves waking another
    /// worker); otherwise its first turn comes when its first bytes arrive.
    pub fn add(&self, mut conn: Conn, serve_now: Option<&Arc<State>>) -> io::Result<()> {
        let writable = match serve_now.map(|state| (state, conn.turn(state))) {
            None => false,
            Some((_, Next::Wait { writable })) => writable,
            Some((_, Next::Close)) => return Ok(()),
            Some((state, Next::HandOver(admitted))) => {
                hand_over(state, &mut conn, admitted);
                return Ok(());
            }
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Mutex::new(conn));
        // Registered while its lock is held, so a worker woken at once waits for the insert.
        let c = lock(&conn);
        lock(&self.conns).insert(token, Arc::clone(&conn));
        if let Err(e) = self.epoll.add(&c.stream, interest(writable, token)) {
            lock(&self.conns).remove(&token);
            return Err(e.into());
        }
        Ok(())
    }

    /// A worker: gives ready connections their turns until `stop` is set, and calls `accept`
    /// when the listener has connections waiting.
    pub fn work(&self, state: &Arc<State>, stop: &AtomicBool, accept: &dyn Fn()) {
        let mut events = [EpollEvent::empty()];
        while !stop.load(Ordering::SeqCst) {
            match self
                .epoll
                .wait(&mut events, EpollTimeout::from(STOP_CHECK_MS))
            {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("{} lane: epoll_wait: {e}", self.name);
                    crate::clock::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
            }
            let token = events[0].data();
            if token == LISTENER {
                accept();
                continue;
            }
            let Some(conn) = lock(&self.conns).get(&token).cloned() else {
                continue;
            };
            let mut c = lock(&conn);
            if c.closed {
                continue;
            }
            match c.turn(state) {
                Next::Wait { writable } => {
                    if let Err(e) = self.epoll.modify(&c.stream, &mut interest(writable, token)) {
                        log::error!("{} lane: epoll_ctl: {e}", self.name);
                        self.close(token, &mut c);
                    }
                }
                Next::Close => self.close(token, &mut c),
                Next::HandOver(admitted) => {
                    hand_over(state, &mut c, admitted);
                    self.close(token, &mut c);
                }
            }
        }
    }

    /// Closes the connections whose deadline has passed (and that no worker holds now).
    pub fn sweep(&self, now: Instant) {
        let mut conns = lock(&self.conns);
        let mut expired = Vec::new();
        for (token, conn) in conns.iter() {
            let Ok(mut c) = conn.try_lock() else {
                continue;
            };
            if c.deadline <= now && !c.closed {
                log::debug!(
                    "closing the connection of pid {} (uid {}): no {} in time",
                    c.peer.pid,
                    c.peer.uid,
                    c.waiting_for
                );
                c.closed = true;
                let _ = self.epoll.delete(&c.stream);
                expired.push(*token);
            }
        }
        for token in expired {
            conns.remove(&token);
        }
    }

    /// Closes every connection (at shutdown).
    pub fn clear(&self) {
        lock(&self.conns).clear();
    }

    fn close(&self, token: u64, c: &mut Conn) {
        c.closed = true;
        let _ = self.epoll.delete(&c.stream);
        lock(&self.conns).remove(&token);
    }
}

/// Gives the connection (a duplicate of its socket, and its slot) to a thread of its own,
/// which starts by serving `admitted`. The caller then drops its own copy.
fn hand_over(state: &Arc<State>, c: &mut Conn, admitted: Box<crate::access::Admitted>) {
    if let (Ok(stream), Some(slot)) = (c.stream.try_clone(), c.slot.take()) {
        dedicated::spawn(state, stream, c.peer, slot, admitted);
    }
}

/// One-shot interest in reading (or writing) for the connection with `token`. `EPOLLRDHUP`
/// gives a turn to a peer that hung up, so its slot is freed at once.
fn interest(writable: bool, token: u64) -> EpollEvent {
    let what = if writable {
        EpollFlags::EPOLLOUT
    } else {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
    };
    EpollEvent::new(what | EpollFlags::EPOLLONESHOT, token)
}
