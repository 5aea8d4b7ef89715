//! Framing: a u32 big-endian length, then that many bytes of JSON.
//!
//! The length is checked against a limit before anything is allocated, so a hostile or broken
//! peer cannot make either side allocate more than [`MAX_FRAME_LEN`].

use std::fmt;
use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame either side sends or accepts (4 MiB: an enumeration of tens of thousands
/// of users fits; a request is far smaller, and the daemon applies [`MAX_REQUEST_LEN`]).
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// The largest request frame the daemon reads from root (an `oidcctl import` of a few thousand
/// users).
pub const MAX_REQUEST_LEN: usize = 1024 * 1024;

/// The largest request frame the daemon reads from any other user, checked on the length prefix
/// before the body is read: every lookup and every request open to non-root peers fits many
/// times over (a name is at most a few hundred bytes), and a peer holding many connections can
/// make the daemon buffer no more than this per connection.
pub const MAX_PUBLIC_REQUEST_LEN: usize = 4 * 1024;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be encoded or decoded.
#[derive(Debug)]
pub enum FrameError {
    /// The announced or encoded length exceeds the limit; nothing was allocated.
    TooLarge {
        /// The length the peer announced (or that encoding produced).
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The frame is complete but its bytes are not the JSON we expect.
    Malformed(String),
    /// The connection ended in the middle of a frame.
    Truncated,
    /// The operating system reported an error (including a read or write timeout).
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            Self::Malformed(why) => write!(f, "malformed message: {why}"),
            Self::Truncated => f.write_str("connection closed in the middle of a message"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(e)
        }
    }
}

/// Encodes `value` as one frame.
pub fn encode<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; HEADER_LEN];
    serde_json::to_writer(&mut out, value).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // Cannot fail: len <= max, and max is far below u32::MAX.
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    out[..HEADER_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

/// Decodes one frame from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame, and otherwise the value and
/// the number of bytes it used. An announced length above `max` is an error before any of the
/// body is looked at.
pub fn decode<T: DeserializeOwned>(
    buf: &[u8],
    max: usize,
) -> Result<Option<(T, usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = body_len(header, max)?;
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let value = parse_body(body)?;
    Ok(Some((value, HEADER_LEN + len)))
}

/// Writes `value` as one frame.
pub fn write_frame<T: Serialize>(
    w: &mut impl Write,
    value: &T,
    max: usize,
) -> Result<(), FrameError> {
    let bytes = encode(value, max)?;
    w.write_all(&bytes)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly before a frame
/// began; a close in the middle of a frame is [`FrameError::Truncated`].
pub fn read_frame<T: DeserializeOwned>(
    r: &mut impl Read,
    max: usize,
) -> Result<Option<T>, FrameError> {
    match read_body(r, max)? {
        Some(body) => parse_body(&body).map(Some),
        None => Ok(None),
    }
}

/// Reads one frame's body, unparsed, after checking its announced length against `max`.
/// `Ok(None)` means the peer closed the connection cleanly before a frame began.
pub fn read_body(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = body_len(&header, max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The body length a frame header announces, refused when above `max`.
pub fn body_len(header: &[u8], max: usize) -> Result<usize, FrameError> {
    let bytes: [u8; HEADER_LEN] = header
        .try_into()
        .map_err(|_| FrameError::Malformed("short header".into()))?;
    let len = u32::from_be_bytes(bytes) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A value survives encode → decode and the consumed length covers the whole frame.
    #[test]
    fn round_trip() {
        let v = json!({"version": 1, "body": {"type": "status"}});
        let bytes = encode(&v, MAX_FRAME_LEN).unwrap();
        let (back, used): (Value, usize) = decode(&bytes, MAX_FRAME_LEN).unwrap().unwrap();
        assert_eq!(back, v);
        assert_eq!(used, bytes.len());
    }

    /// Every strict prefix of a frame is "incomplete", never an error or a wrong value.
    #[test]
    fn truncated_frames_are_incomplete() {
        let bytes = encode(&json!({"a": [1, 2, 3]}), MAX_FRAME_LEN).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode::<Value>(&bytes[..cut], MAX_FRAME_LEN)
                    .unwrap()
                    .is_none(),
                "cut {cut}"
            );
        }
    }

    /// A frame announcing more than the limit is refused from its header alone.
    #[test]
    fn oversized_header_is_refused_before_reading_the_body() {
        let header = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        match decode::<Value>(&header, MAX_FRAME_LEN) {
            Err(FrameError::TooLarge { len, .. }) => assert_eq!(len, MAX_FRAME_LEN + 1),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let mut r: &[u8] = &u32::MAX.to_be_bytes();
        assert!(matches!(
            read_frame::<Value>(&mut r, 16),
            Err(FrameError::TooLarge { .. })
        ));
    }

    /// Encoding refuses a value whose JSON exceeds the limit.
    #[test]
    fn oversized_value_is_not_encoded() {
        let big = "x".repeat(100);
        assert!(matches!(encode(&big, 10), Err(FrameError::TooLarge { .. })));
    }

    /// Garbage inside a well-formed frame is Malformed, not a panic.
    #[test]
    fn garbage_body_is_malformed() {
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"\xff{[}x");
        assert!(matches!(
            decode::<Value>(&bytes, 100),
            Err(FrameError::Malformed(_))
        ));
    }

    /// read_frame distinguishes a clean close from a close mid-frame.
    #[test]
    fn read_frame_eof_handling() {
        let mut empty: &[u8] = &[];
        assert!(read_frame::<Value>(&mut empty, 100).unwrap().is_none());
        let mut half: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame::<Value>(&mut half, 100),
            Err(FrameError::Truncated)
        ));
        let mut short_body: &[u8] = &[0, 0, 0, 9, b'{'];
        assert!(matches!(
            read_frame::<Value>(&mut short_body, 100),
            Err(FrameError::Truncated)
        ));
    }
}
