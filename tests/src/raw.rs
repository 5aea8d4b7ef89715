//! A raw client for the daemon's socket, for feeding it malformed frames: bytes in, frames
//! (parsed as JSON) out, and whether the daemon closed the connection.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::SOCKET;
use crate::ns::Namespace;

/// What a raw client got back: the frames (parsed) and whether the daemon closed.
#[derive(Debug)]
pub struct RawReply {
    /// Every frame received, parsed.
    pub frames: Vec<Value>,
    /// True if the daemon closed (EOF or reset) within the read timeout.
    pub closed: bool,
}

/// Connects to the daemon's socket from the test itself (through /proc/PID/root), sends
/// `bytes`, optionally half-closes, and reads what comes back for at most 3 s.
pub fn exchange(ns: &Namespace, bytes: &[u8], half_close: bool) -> RawReply {
    let mut s = UnixStream::connect(ns.host_path(SOCKET)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes); // the daemon may close before reading everything
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut buf = Vec::new();
    let closed = match s.read_to_end(&mut buf) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(_) => false,
    };
    let mut frames = Vec::new();
    let mut rest = &buf[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let body = rest
            .get(4..4 + len)
            .unwrap_or_else(|| panic!("the daemon sent a truncated frame: {buf:?}"));
        frames.push(serde_json::from_slice(body).expect("daemon sent a bad frame"));
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "trailing bytes from the daemon: {rest:?}");
    RawReply { frames, closed }
}

/// `body` with its u32 big-endian length prefix.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The body of the only frame of `r`, checked to be an error with `code`.
#[track_caller]
pub fn error_with(r: &RawReply, code: &str) -> String {
    assert_eq!(r.frames.len(), 1, "{r:?}");
    let body = &r.frames[0]["body"];
    assert_eq!(body["type"], "error", "{r:?}");
    assert_eq!(body["code"], code, "{r:?}");
    body["message"].as_str().unwrap().to_string()
}
