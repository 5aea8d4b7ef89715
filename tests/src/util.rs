//! Small tools: temporary directories, free ports, commands with a timeout, waiting.

use std::fmt;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a command may run before [`run`] kills it and panics.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory under the system temp dir, removed (with everything in it) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new private (0700) directory whose name contains `tag`.
    pub fn new(tag: &str) -> Self {
        Self::with_mode(tag, 0o700)
    }

    /// A new directory with permission bits `mode` (applied exactly, whatever the umask).
    pub fn with_mode(tag: &str, mode: u32) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "oidcd-test-{tag}-{}-{seq}-{nanos:x}",
            std::process::id()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `contents` to `rel` inside the directory with mode `mode`, returning the path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.join(rel);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Sleeps (the workspace's clippy.toml disallows `thread::sleep` in the daemon, not here).
#[allow(clippy::disallowed_methods)]
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// Polls `cond` every 10 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

/// The median of `samples` (sorted or not); zero for none.
pub fn median(samples: &[Duration]) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Reports a measured figure: prints `MEASURE <what>` and, when `OIDCD_MEASURE_FILE` is set
/// (tests/run sets it), appends the line to that file so the figures can be shown together
/// after the run.
pub fn measure(what: &str) {
    let line = format!("MEASURE {what}");
    println!("{line}");
    if let Some(path) = std::env::var_os("OIDCD_MEASURE_FILE") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A duration in milliseconds, for MEASURE lines.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Makes the child get SIGKILL when the thread that spawned it dies: a backstop for the Drop
/// guards (a test runner killed outright leaves no daemon behind).
pub fn kill_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub cmdline: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
}

impl Run {
    /// The exit code, or 128 + signal number when killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Panics (showing everything) unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit code from:\n{self}");
        self
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Standard output parsed as JSON; panics with everything if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Standard output lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "$ {}\n[exit {} after {:.1} ms]",
            self.cmdline,
            self.code(),
            ms(self.elapsed)
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// Runs `cmd` with stdin closed, capturing output, and measures it from spawn to exit (the
/// exit is taken by a thread blocked in `wait`, so the figure is not rounded to a poll
/// interval). Killed and a panic after [`COMMAND_TIMEOUT`].
pub fn run(cmd: &mut Command) -> Run {
    run_with_input(cmd, None, COMMAND_TIMEOUT)
}

/// [`run`] with `input` on stdin (None: closed) and a timeout of one's choosing.
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Run {
    spawn(cmd, input).wait(timeout)
}

/// Starts `cmd` with `stdin`, stdout and stderr piped, dying with this thread; returns it with
/// its description and when it started.
fn start_piped(cmd: &mut Command, stdin: Stdio) -> (Child, String, Instant) {
    let cmdline = describe(cmd);
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    kill_with_parent(cmd);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    (child, cmdline, start)
}

/// Starts `cmd` in the background with its output captured; [`Spawned::wait`] collects it.
pub fn spawn(cmd: &mut Command, input: Option<&[u8]>) -> Spawned {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let (mut child, cmdline, start) = start_piped(cmd, stdin);
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
        let data = data.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data);
        });
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    Spawned {
        cmdline,
        child: Some(child),
        start,
        out,
        err,
    }
}

/// A command running in the background (killed on drop unless waited for).
#[derive(Debug)]
pub struct Spawned {
    cmdline: String,
    child: Option<Child>,
    start: Instant,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

impl Spawned {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// When it was spawned.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Waits for the exit (killing it and panicking after `timeout`) and returns what it did.
    pub fn wait(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().expect("not yet waited for");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, Instant::now()));
        });
        let (status, ended, timed_out) = match rx.recv_timeout(timeout) {
            Ok((status, ended)) => (status, ended, false),
            Err(_) => {
                // Not reaped yet (the waiter is still blocked), so the PID is still the child's.
                signal(pid, libc::SIGKILL);
                let (status, ended) = rx.recv().expect("waiter thread");
                (status, ended, true)
            }
        };
        let r = Run {
            cmdline: std::mem::take(&mut self.cmdline),
            status: status.expect("wait"),
            stdout: take_join(&mut self.out),
            stderr: take_join(&mut self.err),
            elapsed: ended - self.start,
        };
        if timed_out {
            panic!("command did not finish within {timeout:?}, killed:\n{r}");
        }
        r
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn take_join(h: &mut JoinHandle<String>) -> String {
    let h = std::mem::replace(h, std::thread::spawn(String::new));
    h.join().unwrap_or_default()
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The command line of `cmd`, shell-like, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The system's python3 (`/usr/bin/python3`, which users other than root can run and which
/// sees the distribution's modules), else whatever `python3` is on the PATH.
pub fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Quotes `s` for `sh` (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Sends `sig` to `pid`; false if the process is gone.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) with a PID this harness spawned and has not reaped.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// `GET path` from `http://127.0.0.1:port` (plain HTTP/1.0, 10 s timeouts), the body parsed
/// as JSON; panics unless the answer is 200 with JSON.
pub fn http_get_json(port: u16, path: &str) -> serde_json::Value {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "GET {path}: {head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// A command whose output is read while it runs and whose standard input is written on cue:
/// pamtester waiting at a prompt, an SSH client waiting for the test to approve a code.
/// Killed on drop unless finished.
#[derive(Debug)]
pub struct Interactive {
    cmdline: String,
    pid: u32,
    stdin: Option<std::process::ChildStdin>,
    output: std::sync::Arc<Captured>,
    exit: mpsc::Receiver<(std::io::Result<ExitStatus>, Instant)>,
    exited: Option<(ExitStatus, Instant)>,
    start: Instant,
}

/// Output captured so far, with a condition variable signalled on every chunk.
#[derive(Debug, Default)]
struct Captured {
    /// stdout, stderr, and how many of the two pipes reached EOF.
    data: std::sync::Mutex<(Vec<u8>, Vec<u8>, u8)>,
    cond: std::sync::Condvar,
}

impl Interactive {
    /// Starts `cmd` with all three standard streams piped.
    pub fn spawn(cmd: &mut Command) -> Self {
        let (mut child, cmdline, start) = start_piped(cmd, Stdio::piped());
        let output = std::sync::Arc::new(Captured::default());
        for (pipe, is_err) in [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                false,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                true,
            ),
        ] {
            let out = std::sync::Arc::clone(&output);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                if let Some(mut p) = pipe {
                    while let Ok(n) = p.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let mut d = out.data.lock().unwrap();
                        if is_err { &mut d.1 } else { &mut d.0 }.extend_from_slice(&buf[..n]);
                        out.cond.notify_all();
                    }
                }
                out.data.lock().unwrap().2 += 1;
                out.cond.notify_all();
            });
        }
        let pid = child.id();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, Instant::now()));
        });
        Self {
            cmdline,
            pid,
            stdin,
            output,
            exit: rx,
            exited: None,
            start,
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When it was spawned.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Standard output so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.data.lock().unwrap().0).into_owned()
    }

    /// Standard error so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.data.lock().unwrap().1).into_owned()
    }

    /// Waits at most `timeout` until `cond(stdout, stderr)` holds; `false` if both pipes
    /// closed (the process is ending) or the time ran out first.
    pub fn wait_output(&self, timeout: Duration, mut cond: impl FnMut(&str, &str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut d = self.output.data.lock().unwrap();
        loop {
            if cond(
                &String::from_utf8_lossy(&d.0),
                &String::from_utf8_lossy(&d.1),
            ) {
                return true;
            }
            let now = Instant::now();
            if d.2 >= 2 || now >= deadline {
                return false;
            }
            d = self.output.cond.wait_timeout(d, deadline - now).unwrap().0;
        }
    }

    /// Writes `text` to its standard input (ignoring a closed pipe: it may have ended).
    pub fn write(&mut self, text: &str) {
        use std::io::Write;
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(text.as_bytes());
            let _ = s.flush();
        }
    }

    /// Closes its standard input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether it has ended (reaped).
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            if let Ok((status, at)) = self.exit.try_recv() {
                self.exited = Some((status.expect("wait"), at));
            }
        }
        self.exited.is_some()
    }

    /// Sends `sig` unless it has been reaped already.
    pub fn signal(&mut self, sig: libc::c_int) {
        if !self.has_exited() {
            // Not reaped yet (the waiter would have reported it), so the PID is still ours.
            signal(self.pid, sig);
        }
    }

    /// Waits for the exit (killing it and panicking after `timeout`) and returns what it did,
    /// with the moment it ended.
    pub fn finish(mut self, timeout: Duration) -> (Run, Instant) {
        self.close_stdin();
        let (status, ended, timed_out) = match self.exited.take() {
            Some((s, at)) => (s, at, false),
            None => match self.exit.recv_timeout(timeout) {
                Ok((s, at)) => (s.expect("wait"), at, false),
                Err(_) => {
                    signal(self.pid, libc::SIGKILL);
                    let (s, at) = self.exit.recv().expect("waiter thread");
                    (s.expect("wait"), at, true)
                }
            },
        };
        // The pipes close when the process (and whatever inherited them) ends.
        let _ = self.wait_output(Duration::from_secs(5), |_, _| false);
        let r = Run {
            cmdline: std::mem::take(&mut self.cmdline),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            elapsed: ended - self.start,
        };
        self.exited = Some((status, ended));
        if timed_out {
            panic!("command did not finish within {timeout:?}, killed:\n{r}");
        }
        (r, ended)
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// SIGKILLs `pid` and every process descended from it (found through `/proc/*/stat`), children
/// first found, all before any is reaped: for daemons such as sshd whose per-connection
/// children start their own sessions.
pub fn kill_tree(pid: u32) {
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        let after = s.rsplit_once(')')?.1.to_string();
                        after.split_whitespace().nth(1)?.parse::<u32>().ok()
                    });
                if ppid == Some(parent) && !family.contains(&p) {
                    family.push(p);
                }
            }
        }
        i += 1;
    }
    for p in family.iter().rev() {
        signal(*p, libc::SIGKILL);
    }
}
