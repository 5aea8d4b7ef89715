//! A program on a pseudo-terminal, driven the way a person types: `su`, `login` and `sudo`
//! read their prompts from a terminal (and draw the QR code there), which pipes cannot stand
//! in for.
//!
//! The test holds the master side; the program gets the slave as its standard streams and
//! controlling terminal (a new session, `TIOCSCTTY`). A reader thread collects everything the
//! program writes; [`Pty::wait_for`] waits until that output holds a text, [`Pty::send`]
//! types. The terminal echoes what is typed, as a real one does. Killed on drop unless
//! finished.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::util;

/// Output so far, and whether the program has ended.
#[derive(Debug, Default)]
struct Screen {
    data: Mutex<(Vec<u8>, bool)>,
    cond: Condvar,
}

/// A program running on a pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    master: File,
    child: Child,
    screen: Arc<Screen>,
    started: Instant,
}

impl Pty {
    /// Starts `cmd` with a new pseudo-terminal (120x50) as its terminal.
    pub fn spawn(cmd: &mut Command) -> Self {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the integers given; the other arguments
        // may be null (no name wanted, default termios) or point to a valid winsize.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(dup(&slave))
            .stdout(dup(&slave))
            .stderr(dup(&slave));
        util::kill_with_parent(cmd);
        // SAFETY: setsid and ioctl are async-signal-safe; they make the slave (now fd 0) the
        // controlling terminal of the new session, as a getty would.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        drop(slave);
        let master = File::from(master);
        let screen = Arc::new(Screen::default());
        let reader = master.try_clone().expect("dup pty master");
        let shared = Arc::clone(&screen);
        std::thread::spawn(move || read_screen(reader, &shared));
        Self {
            master,
            child,
            screen,
            started: Instant::now(),
        }
    }

    /// Everything the program wrote so far (lossy UTF-8, terminal line ends as they came).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.screen.data.lock().unwrap().0).into_owned()
    }

    /// Waits at most `timeout` until `cond(output)` holds; `false` if the program ended or the
    /// time ran out first.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut d = self.screen.data.lock().unwrap();
        loop {
            if cond(&String::from_utf8_lossy(&d.0)) {
                return true;
            }
            let now = Instant::now();
            if d.1 || now >= deadline {
                return false;
            }
            d = self.screen.cond.wait_timeout(d, deadline - now).unwrap().0;
        }
    }

    /// Waits at most `timeout` until the output holds `text` `n` times (1 for the first).
    pub fn wait_for(&self, text: &str, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |out| out.matches(text).count() >= n)
    }

    /// Types `text` (a line: end it with `\n`).
    pub fn send(&mut self, text: &str) {
        let _ = self.master.write_all(text.as_bytes());
        let _ = self.master.flush();
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the exit (killing it and panicking after `timeout`): its status and output.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Output still in the terminal reaches the reader shortly after the exit.
                let _ = self.wait_until(Duration::from_millis(300), |_| false);
                return (status, self.output());
            }
            if Instant::now() >= deadline {
                util::kill_tree(self.child.id());
                let _ = self.child.wait();
                panic!(
                    "the program on the pty did not finish within {timeout:?}, killed:\n{}",
                    self.output()
                );
            }
            util::sleep(Duration::from_millis(10));
        }
    }
}

/// Copies what the program writes into `screen` until the terminal closes for good.
fn read_screen(mut master: File, screen: &Screen) {
    let mut buf = [0u8; 4096];
    let mut idle_errors = 0;
    loop {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => {
                idle_errors = 0;
                let mut d = screen.data.lock().unwrap();
                d.0.extend_from_slice(&buf[..n]);
                screen.cond.notify_all();
            }
            // EIO: no process holds the slave open. login briefly hangs up its terminal and
            // opens it again, so only a lasting EIO (1 s) is the end.
            _ => {
                idle_errors += 1;
                if idle_errors > 100 {
                    break;
                }
                util::sleep(Duration::from_millis(10));
            }
        }
    }
    screen.data.lock().unwrap().1 = true;
    screen.cond.notify_all();
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            util::kill_tree(self.child.id());
            let _ = self.child.wait();
        }
    }
}
