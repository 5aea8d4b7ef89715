//! The last defence around every entry point: a panic in a lookup becomes UNAVAIL instead of
//! unwinding into glibc (a panic reaching an `extern "C"` function aborts the host: sshd, sudo,
//! systemd). The lint denies are the first defence, this is the last.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::lookup::Status;

/// Runs one entry point's body; UNAVAIL if it panics.
pub(crate) fn run(body: impl FnOnce() -> Status) -> Status {
    quiet_panics();
    let _ = IN_HOOK.try_with(|h| h.set(true));
    // AssertUnwindSafe: after a panic nothing the body touched is used again; the answer is
    // UNAVAIL and the (per-call) connection, if any, is dropped during unwinding.
    let answer = panic::catch_unwind(AssertUnwindSafe(body));
    let _ = IN_HOOK.try_with(|h| h.set(false));
    answer.unwrap_or(Status::Unavail)
}

thread_local! {
    /// True while this thread runs an entry point's body.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Keeps a caught panic from printing "thread panicked at ..." on the host's stderr (sshd's,
/// or the terminal of `id`). Installed by the first entry point called; panics outside a body
/// still reach the hook that was there before. No `Once`: a thread that forks while another is
/// inside a `Once` would leave the child waiting on it forever; two threads racing here at
/// most install the hook twice, each keeping the previous one.
fn quiet_panics() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.load(Ordering::Relaxed) || std::thread::panicking() {
        return;
    }
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !IN_HOOK.try_with(Cell::get).unwrap_or(false) {
            previous(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panicking body answers UNAVAIL instead of unwinding into glibc, and the thread works
    /// normally afterwards.
    #[test]
    fn panicking_body_is_unavail() {
        assert_eq!(run(|| panic!("bug in a lookup")), Status::Unavail);
        assert_eq!(run(|| Status::Success), Status::Success);
    }

    /// Answers pass through unchanged.
    #[test]
    fn answers_pass_through() {
        for s in [
            Status::Success,
            Status::NotFound,
            Status::Unavail,
            Status::TryAgain(libc::ERANGE),
        ] {
            assert_eq!(run(|| s), s);
        }
    }
}
