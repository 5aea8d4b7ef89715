//! The socket's limits, in one place. The socket is open to every local user: each limit says
//! what one of them can make the daemon hold, and none lets them take what root needs.

use std::time::Duration;

use oidc_proto::frame::{MAX_PUBLIC_REQUEST_LEN, MAX_REQUEST_LEN};

use crate::access::Peer;

/// Connections held at once, all users together (lowered to fit the open-file limit, see
/// [`connection_limit`]). An idle connection costs a descriptor and about 200 bytes.
pub const MAX_CONNECTIONS: usize = 4096;
/// Of [`MAX_CONNECTIONS`], those only root may use: sshd, sudo, login and `oidcctl` always
/// get through, whatever other users hold.
pub const RESERVED_FOR_ROOT: usize = 1024;
/// Connections one non-root uid may hold at once. A uid's share of the shared workers is its
/// share of the connections that have a request ready, so this bounds how long one user can
/// make another wait: at most this many requests ahead of theirs.
pub const MAX_PER_UID: usize = 256;
/// Descriptors kept out of [`connection_limit`] for everything else: the database, the
/// provider's HTTPS connections, the log, the epoll instances.
const FD_RESERVE: usize = 256;

/// Workers serving root's connections only: non-root load never queues ahead of root.
pub const ROOT_WORKERS: usize = 2;
/// Workers serving every other user's connections, one request per connection per turn.
pub const SHARED_WORKERS: usize = 4;

/// How long a new connection may take to send its first request, whole.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request may take to arrive once its first byte has (a peer trickling a frame
/// in holds nothing but its connection slot, and only this long).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer may take to read an answer the socket could not take at once.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answer bytes that users other than root may leave unread in the daemon, all together (an
/// answer the socket takes at once costs nothing here). Past it, a connection that does not
/// read its answer is closed.
pub const UNREAD_ANSWERS_MAX: usize = 64 * 1024 * 1024;

/// The largest request `peer` may send, checked on the length prefix before the body is read:
/// root's `oidcctl import` may be large; everyone else's requests are lookups.
pub fn max_request(peer: &Peer) -> usize {
    if peer.is_root() {
        MAX_REQUEST_LEN
    } else {
        MAX_PUBLIC_REQUEST_LEN
    }
}

/// The connection limits in force: [`MAX_CONNECTIONS`] and [`RESERVED_FOR_ROOT`], lowered
/// in proportion when the open-file limit cannot hold them, so a flood of connections is told
/// "busy" instead of failing `accept` with EMFILE (which leaves clients waiting in the
/// backlog until their deadline). Raises the soft open-file limit to the hard one first.
pub fn connection_limit() -> (usize, usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            let wanted = hard.min((MAX_CONNECTIONS + FD_RESERVE) as u64);
            if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
                wanted
            } else {
                soft
            }
        }
        // Unknown (a seccomp filter may refuse even the read): keep the limits and let the
        // unit's LimitNOFILE= fit them.
        Err(_) => return (MAX_CONNECTIONS, RESERVED_FOR_ROOT),
    };
    let room = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_RESERVE)
        .max(64);
    if room >= MAX_CONNECTIONS {
        return (MAX_CONNECTIONS, RESERVED_FOR_ROOT);
    }
    log::warn!(
        "the open-file limit ({soft}) allows {room} connections, not {MAX_CONNECTIONS}: raise \
         LimitNOFILE (the shipped unit sets it)"
    );
    (room, room / 4)
}
