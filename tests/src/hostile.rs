//! A hostile local user on the daemon's socket: `tests/tools/hostile_peer.py` run inside the
//! namespace as an unprivileged uid (setpriv), and what the daemon process holds meanwhile
//! (`/proc/PID/status` and `/proc/PID/fd`).

use std::time::Duration;

use crate::ns::Namespace;
use crate::paths;
use crate::raw::RawReply;
use crate::util::{self, Interactive};

/// The `nobody` account: the unprivileged uid (and gid) the hostile peer runs as by default.
pub const NOBODY: u32 = 65534;

/// `hostile_peer.py ARGS…` as `uid`, running in the background (killed on drop).
pub fn spawn_as(ns: &Namespace, uid: u32, args: &[&str]) -> Interactive {
    let mut cmd = ns.command("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"])
        .args([util::python3(), "-c", &paths::hostile_peer_source()])
        .args(args);
    Interactive::spawn(&mut cmd)
}

/// Starts `hostile_peer.py ARGS…` as `uid` and waits (10 s at most) until it says READY.
pub fn start_as(ns: &Namespace, uid: u32, args: &[&str]) -> Interactive {
    let p = spawn_as(ns, uid, args);
    assert!(
        p.wait_output(Duration::from_secs(10), |out, _| out.contains("READY")),
        "hostile_peer.py {args:?} did not get ready:\n{}\n{}",
        p.stdout(),
        p.stderr()
    );
    p
}

/// Sends each of `frames` (whole, with their length prefix) as `uid` on a connection of its
/// own, half-closing it, and returns what came back on each.
pub fn send_as(ns: &Namespace, uid: u32, frames: &[Vec<u8>]) -> Vec<RawReply> {
    let input: String = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    let mut cmd = ns.command("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"])
        .args([util::python3(), "-c", &paths::hostile_peer_source(), "send"]);
    let r = util::run_with_input(&mut cmd, Some(input.as_bytes()), Duration::from_secs(60));
    r.expect_ok();
    let replies: Vec<RawReply> = r.lines().iter().map(|hex| parse_reply(hex)).collect();
    assert_eq!(replies.len(), frames.len(), "{r}");
    replies
}

fn parse_reply(hex: &str) -> RawReply {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let body = rest
            .get(4..4 + len)
            .expect("a truncated frame from the daemon");
        frames.push(serde_json::from_slice(body).expect("a bad frame from the daemon"));
        rest = &rest[4 + len..];
    }
    RawReply {
        frames,
        closed: true,
    }
}

/// What a process holds, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// Resident memory now (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open descriptors.
    pub fds: u64,
}

/// `pid`'s memory, threads and descriptors now.
pub fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    ProcStats {
        rss_kib: field("VmRSS:"),
        peak_rss_kib: field("VmHWM:"),
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
    }
}
