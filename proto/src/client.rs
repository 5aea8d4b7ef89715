//! A blocking client for the daemon's socket, safe to run inside any host process.
//!
//! - One deadline per call: connect, send and receive all fit in the caller's budget, so a
//!   frozen daemon costs at most that budget (the kernel accepts connections into the backlog
//!   of a stopped process, so only a deadline on the reads can notice).
//! - The socket must be a root-owned socket file and the peer must run as root (`SO_PEERCRED`),
//!   or nothing is sent: a user who binds the path while the daemon is down cannot answer.
//! - No threads, no globals, `CLOEXEC` descriptors, and `MSG_NOSIGNAL` on every send so a
//!   daemon that closes early cannot kill the host process with `SIGPIPE`.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;
use serde_json::Value;

use crate::frame::{self, FrameError, MAX_FRAME_LEN};
use crate::message::{self, Envelope, EnvelopeError, Request, Response};

/// Why a call did not produce an answer. Every variant means "the daemon could not be asked":
/// the NSS module answers UNAVAIL and PAM fails, whatever the variant.
#[derive(Debug)]
pub enum ClientError {
    /// No daemon listens at the path (socket missing or connection refused).
    NotRunning(String),
    /// The deadline passed before the answer arrived (daemon stopped, frozen or overloaded).
    Timeout,
    /// The socket file or the process behind it does not belong to root.
    Untrusted(String),
    /// The daemon speaks another protocol version.
    VersionMismatch {
        /// Versions the daemon speaks.
        daemon: Vec<u16>,
    },
    /// The answer could not be read as a message.
    Protocol(String),
    /// Another operating system error.
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning(why) => write!(f, "oidcd is not running ({why})"),
            Self::Timeout => f.write_str("oidcd did not answer in time"),
            Self::Untrusted(why) => write!(f, "refusing to talk to an untrusted socket: {why}"),
            Self::VersionMismatch { daemon } => write!(
                f,
                "protocol version mismatch: this client speaks {}, oidcd speaks {:?} \
                 (restart the program or upgrade both)",
                message::PROTOCOL_VERSION,
                daemon
            ),
            Self::Protocol(why) => write!(f, "bad answer from oidcd: {why}"),
            Self::Io(e) => write!(f, "talking to oidcd: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) if is_timeout(&e) => Self::Timeout,
            FrameError::Io(e) => Self::Io(e),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// Who may own the socket and serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedOwner {
    /// Only root (uid 0). What the modules use.
    Root,
    /// Only the given uid. For tests and unprivileged development runs, never for the modules.
    Uid(u32),
}

impl TrustedOwner {
    fn uid(self) -> u32 {
        match self {
            Self::Root => 0,
            Self::Uid(u) => u,
        }
    }
}

/// A connection to the daemon. One login uses one connection for all its steps; lookups
/// connect, ask once and drop it.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects within `timeout`, checking that the socket and its server belong to `owner`.
    pub fn connect(
        path: &Path,
        owner: TrustedOwner,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + timeout;
        check_socket_file(path, owner)?;
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| ClientError::Io(e.into()))?;
        // Linux honours SO_SNDTIMEO for connect() on a Unix socket: a full backlog cannot hang us.
        set_timeouts(&fd, remaining(deadline)?)?;
        let addr = UnixAddr::new(path).map_err(|e| ClientError::Io(e.into()))?;
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {}
            Err(Errno::ENOENT | Errno::ECONNREFUSED) => {
                return Err(ClientError::NotRunning(format!(
                    "{} refuses connections",
                    path.display()
                )));
            }
            Err(Errno::EAGAIN | Errno::EINPROGRESS | Errno::ETIMEDOUT) => {
                return Err(ClientError::Timeout);
            }
            Err(e) => return Err(ClientError::Io(e.into())),
        }
        let cred = socket::getsockopt(&fd, sockopt::PeerCredentials)
            .map_err(|e| ClientError::Io(e.into()))?;
        if cred.uid() != owner.uid() {
            return Err(ClientError::Untrusted(format!(
                "the process serving {} runs as uid {}, not {}",
                path.display(),
                cred.uid(),
                owner.uid()
            )));
        }
        Ok(Self {
            stream: UnixStream::from(fd),
        })
    }

    /// Sends `request` and reads the answer, all within `timeout`.
    pub fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut io = DeadlineIo {
            stream: &self.stream,
            deadline,
        };
        if let Err(e) = frame::write_frame(&mut io, &Envelope::new(request), MAX_FRAME_LEN) {
            // The daemon may have refused the request (too large, busy) and hung up while we
            // were still sending: its answer, if it sent one, says why better than EPIPE does.
            let hung_up = matches!(&e, FrameError::Io(err)
                if matches!(err.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset));
            if hung_up {
                if let Ok(Some(env)) = frame::read_frame::<Envelope<Value>>(&mut io, MAX_FRAME_LEN)
                {
                    return open(env);
                }
            }
            return Err(e.into());
        }
        let env: Envelope<Value> = frame::read_frame(&mut io, MAX_FRAME_LEN)?.ok_or_else(|| {
            ClientError::Protocol("oidcd closed the connection without answering".into())
        })?;
        open(env)
    }
}

fn open(env: Envelope<Value>) -> Result<Response, ClientError> {
    message::open_response(env).map_err(|e| match e {
        EnvelopeError::VersionMismatch { peer } => ClientError::VersionMismatch { daemon: peer },
        EnvelopeError::Malformed(why) => ClientError::Protocol(why),
    })
}

/// Connects, asks once and hangs up, all within `timeout`.
pub fn call(
    path: &Path,
    owner: TrustedOwner,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let start = Instant::now();
    let mut client = Client::connect(path, owner, timeout)?;
    let left = timeout
        .checked_sub(start.elapsed())
        .ok_or(ClientError::Timeout)?;
    client.call(request, left)
}

fn check_socket_file(path: &Path, owner: TrustedOwner) -> Result<(), ClientError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ClientError::NotRunning(format!(
                "{} does not exist",
                path.display()
            )));
        }
        Err(e) => return Err(ClientError::Io(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ClientError::Untrusted(format!(
            "{} is not a socket",
            path.display()
        )));
    }
    if meta.uid() != owner.uid() {
        return Err(ClientError::Untrusted(format!(
            "{} is owned by uid {}, not {}",
            path.display(),
            meta.uid(),
            owner.uid()
        )));
    }
    Ok(())
}

fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ClientError::Timeout),
    }
}

fn set_timeouts(fd: &impl AsFd, timeout: Duration) -> Result<(), ClientError> {
    // A zero timeval means "block forever" to the kernel: never pass one.
    let tv = TimeVal::new(
        timeout.as_secs().try_into().unwrap_or(i64::MAX),
        i64::from(timeout.subsec_micros().max(1)),
    );
    socket::setsockopt(fd, sockopt::SendTimeout, &tv).map_err(|e| ClientError::Io(e.into()))?;
    socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv).map_err(|e| ClientError::Io(e.into()))?;
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads and writes that never outlive the call's deadline. Each waits in `poll()`, which
/// times to the millisecond (socket timeouts round up to the kernel's tick), then moves bytes
/// without blocking.
struct DeadlineIo<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl DeadlineIo<'_> {
    fn wait(&self, flags: PollFlags) -> io::Result<()> {
        loop {
            let left =
                remaining(self.deadline).map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
            // Round up so a sub-millisecond remainder still waits instead of spinning.
            let ms = u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.stream.as_fd(), flags)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Read for DeadlineIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.wait(PollFlags::POLLIN)?;
            match socket::recv(self.stream.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl Write for DeadlineIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.wait(PollFlags::POLLOUT)?;
            let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
            match socket::send(self.stream.as_raw_fd(), buf, flags) {
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Keep the type in this module's public surface honest: OwnedFd converts into UnixStream.
const _: fn(OwnedFd) -> UnixStream = UnixStream::from;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn me() -> TrustedOwner {
        TrustedOwner::Uid(nix::unistd::geteuid().as_raw())
    }

    /// A temporary directory removed when dropped.
    struct Tmp(std::path::PathBuf);

    impl std::ops::Deref for Tmp {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir() -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "oidc-proto-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }

    /// A missing socket is "not running", answered without waiting.
    #[test]
    fn missing_socket_is_not_running_at_once() {
        let t = Instant::now();
        let err = call(
            Path::new("/nonexistent/oidcd.sock"),
            me(),
            &Request::Status,
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::NotRunning(_)), "{err}");
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    /// A server that accepts and never answers costs the deadline, not more.
    #[test]
    fn silent_server_times_out_at_the_deadline() {
        let dir = temp_dir();
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let t = Instant::now();
        let err = call(&path, me(), &Request::Status, Duration::from_millis(150)).unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(140) && took < Duration::from_millis(400),
            "{took:?}"
        );
        drop(listener);
    }

    /// A socket served by another uid is refused before anything is sent.
    #[test]
    fn foreign_owner_is_untrusted() {
        let dir = temp_dir();
        let path = dir.join("s");
        let _l = UnixListener::bind(&path).unwrap();
        let other = TrustedOwner::Uid(nix::unistd::geteuid().as_raw().wrapping_add(1));
        let err = call(&path, other, &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ClientError::Untrusted(_)), "{err}");
    }

    /// A normal exchange works, and an answer of another version is a mismatch.
    #[test]
    fn exchange_and_version_mismatch() {
        let dir = temp_dir();
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            for version in [1u16, 9] {
                let (mut s, _) = listener.accept().unwrap();
                let _req: Envelope<Value> =
                    frame::read_frame(&mut s, MAX_FRAME_LEN).unwrap().unwrap();
                let env = Envelope {
                    version,
                    body: Response::NotFound,
                };
                frame::write_frame(&mut s, &env, MAX_FRAME_LEN).unwrap();
            }
        });
        let r = call(&path, me(), &Request::ListUsers, Duration::from_secs(2)).unwrap();
        assert_eq!(r, Response::NotFound);
        let err = call(&path, me(), &Request::ListUsers, Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(err, ClientError::VersionMismatch { ref daemon } if daemon == &[9]),
            "{err}"
        );
        server.join().unwrap();
    }

    /// A server that hangs up mid-answer is a protocol error, and the closed socket does not
    /// raise SIGPIPE in the client.
    #[test]
    fn early_close_is_an_error_not_a_signal() {
        let dir = temp_dir();
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&[0, 0, 0, 50, b'{']).unwrap();
        });
        let big = Request::AdminImport {
            entries: vec![Value::String("x".repeat(1 << 20))],
        };
        let err = call(&path, me(), &big, Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(err, ClientError::Protocol(_) | ClientError::Io(_)),
            "{err}"
        );
        server.join().unwrap();
    }
}
