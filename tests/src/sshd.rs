//! A real OpenSSH server inside a test namespace, and a keyboard-interactive client.
//!
//! sshd runs from a symlink named after its PAM service (OpenSSH-portable takes the service
//! name from `argv[0]`), so it reads its own file in the namespace's bound `/etc/pam.d`: a
//! minimal stack naming the built `pam_oidc.so` by absolute path for `auth` and `account` (and
//! `pam_permit.so` for `session`), or the shipped `packaging/pam/sshd` as it is. Inside the
//! namespace it resolves users through the built NSS module like everything else, and
//! `/proc/PID/exe` still shows `/usr/sbin/sshd`, which is how oidcd recognises it for
//! provisional entries. Keyboard-interactive only, or also public keys from the built
//! `oidc-authorized-keys` run as `nobody`; on a free loopback port, `LoginGraceTime` above the
//! longest device-flow wait of a test.
//!
//! The client, `tests/tools/kbdint_client.py` (paramiko), prints one JSON object per line
//! (`info_request`, `auth`, `command`, `error`) and, with `--interactive`, answers a prompt
//! only when the test writes a line to its stdin: the test reads the code, approves it, then
//! "presses Enter".

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ns::Namespace;
use crate::pam::{self, Approver, Prompt};
use crate::paths;
use crate::util::{self, Interactive, Run, TempDir};

/// Where Debian's sshd is.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The PAM service (and symlink) name.
pub const SERVICE: &str = "sshd-oidctest";

/// How long sshd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which PAM stack sshd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// `auth` and `account` required pam_oidc, `session` pam_permit: the module alone.
    Minimal,
    /// `packaging/pam/sshd` as shipped (root skip, pam_oidc then common-auth's pam_unix, the
    /// account line, the home-directory lines, Debian's session stack), as it is.
    Shipped,
}

/// The shipped `packaging/pam/sshd`, as it is: the namespace's lib dir holds the built module
/// as `security/pam_oidc.so`, where the bare name finds it.
pub fn shipped_stack() -> String {
    std::fs::read_to_string(paths::workspace_dir().join("packaging/pam/sshd"))
        .expect("read packaging/pam/sshd")
}

/// Where the namespace sees the built `oidc-authorized-keys` (a root-owned path, as sshd
/// demands of an AuthorizedKeysCommand and of every directory above it).
pub const KEYS_COMMAND: &str = "/run/oidcd-test/oidc-authorized-keys";

/// A running sshd. Dropping it kills it and every per-connection process it forked.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Sshd {
    /// Writes the PAM service and the config, then starts sshd inside `ns` (built with
    /// `pam_dir()`) and waits until it listens.
    pub fn start(ns: &Namespace) -> Self {
        Self::start_with(ns, Stack::Minimal)
    }

    /// [`Sshd::start`] with the PAM stack `stack`.
    pub fn start_with(ns: &Namespace, stack: Stack) -> Self {
        Self::start_full(ns, stack, false)
    }

    /// [`Sshd::start_with`], also accepting public keys from `oidc-authorized-keys %u` run as
    /// `nobody` (the lines README.md gives administrators), and no `authorized_keys` file.
    pub fn start_with_keys(ns: &Namespace, stack: Stack) -> Self {
        Self::start_full(ns, stack, true)
    }

    fn start_full(ns: &Namespace, stack: Stack, keys: bool) -> Self {
        let module = paths::pam_module();
        let text = match stack {
            Stack::Minimal => format!(
                "auth     required {m}\naccount  required {m}\nsession  required pam_permit.so\n",
                m = module.display()
            ),
            Stack::Shipped => shipped_stack(),
        };
        pam::install_service_text(ns, SERVICE, &text);
        let dir = TempDir::with_mode("sshd", 0o755);
        let key = dir.join("hostkey_ed25519");
        util::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
        )
        .expect_ok();
        let port = util::free_port();
        let methods = if keys {
            install_keys_command(ns);
            format!(
                "PubkeyAuthentication yes\n\
                 AuthorizedKeysFile none\n\
                 AuthorizedKeysCommand {KEYS_COMMAND} %u\n\
                 AuthorizedKeysCommandUser nobody\n\
                 AuthenticationMethods any\n"
            )
        } else {
            "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n".into()
        };
        let config = dir.write(
            "sshd_config",
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {key}\n\
                 PidFile {pid}\n\
                 UsePAM yes\n\
                 KbdInteractiveAuthentication yes\n\
                 PasswordAuthentication no\n\
                 {methods}\
                 PermitRootLogin no\n\
                 LogLevel DEBUG1\n\
                 StrictModes no\n\
                 LoginGraceTime 60\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 PrintLastLog no\n",
                key = key.display(),
                pid = dir.join("sshd.pid").display(),
            ),
            0o644,
        );
        let program = dir.join(SERVICE);
        std::os::unix::fs::symlink(SSHD, &program).unwrap();
        util::run(ns.command(&program).arg("-t").arg("-f").arg(&config)).expect_ok();

        let log = dir.join("sshd.log");
        let out = File::create(&log).unwrap();
        let mut cmd = ns.command(&program);
        cmd.args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        util::kill_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawn sshd");
        let mut s = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let listening = format!("Server listening on 127.0.0.1 port {port}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if s.logs().contains(&listening) {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sshd exited ({status}) before listening:\n{}", s.logs());
            }
            assert!(
                Instant::now() < deadline,
                "sshd not listening after {START_TIMEOUT:?}:\n{}",
                s.logs()
            );
            util::sleep(Duration::from_millis(10));
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listener's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What sshd logged (`-e`, `LogLevel DEBUG1`).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Binds the built `oidc-authorized-keys` at [`KEYS_COMMAND`] inside `ns` (its `/run` is the
/// namespace's own tmpfs).
fn install_keys_command(ns: &Namespace) {
    let dir = ns.host_path("/run/oidcd-test");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(ns.host_path(KEYS_COMMAND), "").unwrap();
    let built = paths::authorized_keys_command();
    ns.run("mount", &["--bind", &built.to_string_lossy(), KEYS_COMMAND])
        .expect_ok();
}

impl Drop for Sshd {
    fn drop(&mut self) {
        util::kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// One keyboard-interactive SSH login, as the client saw it.
#[derive(Debug)]
pub struct SshLogin {
    /// The client's events (one JSON object per line of its output).
    pub events: Vec<Value>,
    /// The first prompt, read like pamtester's.
    pub prompt: Option<Prompt>,
    /// The approval script's run, if someone approved.
    pub approval: Option<Run>,
    /// The client's run.
    pub client: Run,
}

impl SshLogin {
    /// Whether the client was authenticated.
    pub fn authenticated(&self) -> bool {
        self.events
            .iter()
            .any(|e| e["event"] == "auth" && e["authenticated"] == true)
    }

    /// The INFO_REQUESTs that held at least one prompt.
    pub fn prompts(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| {
                e["event"] == "info_request"
                    && e["prompts"].as_array().is_some_and(|p| !p.is_empty())
            })
            .collect()
    }

    /// The command's result (`rc`, `stdout`, `stderr`), if one ran.
    pub fn command(&self) -> Option<&Value> {
        self.events.iter().find(|e| e["event"] == "command")
    }

    /// The code a refused first login showed for its next connection ("... enter the code
    /// BCDF-GHJK when asked ...").
    pub fn resume_code(&self) -> Option<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "info_request")
            .filter_map(|e| e["instruction"].as_str())
            .find_map(|text| {
                let at = text.find(RESUME_CODE_BEFORE)? + RESUME_CODE_BEFORE.len();
                text.get(at..at + 9).map(str::to_string)
            })
    }
}

/// The paramiko keyboard-interactive client, answering each prompt with a line the test writes.
fn kbdint_client(sshd: &Sshd, user: &str, cmd: Option<&str>) -> Interactive {
    let mut c = Command::new(util::python3());
    c.arg(paths::tests_dir().join("tools/kbdint_client.py"))
        .args(["127.0.0.1", &sshd.port().to_string(), user])
        .args(["--interactive", "--timeout", "60"]);
    if let Some(cmd) = cmd {
        c.args(["--cmd", cmd]);
    }
    Interactive::spawn(&mut c)
}

/// The client's events: one JSON object per line of its output.
fn events_of(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What comes before the code in a refused first SSH login's message.
const RESUME_CODE_BEFORE: &str = "enter the code ";
/// Part of the module's question for that code (pam_oidc's `resume.rs`).
pub const RESUME_PROMPT: &str = "was approved and showed a code";

/// Connects to `sshd` as `user` with keyboard-interactive and, asked for the code the last
/// connection showed, types `code`; runs `cmd` in a session if authenticated.
pub fn ssh_resume(sshd: &Sshd, user: &str, code: &str, cmd: Option<&str>) -> SshLogin {
    let mut client = kbdint_client(sshd, user, cmd);
    let asked = client.wait_output(pam::PROMPT_TIMEOUT, |out, _| {
        out.lines()
            .any(|l| l.contains("\"info_request\"") && l.contains(RESUME_PROMPT))
    });
    if asked {
        client.write(&format!("{code}\n"));
    }
    let (run, _) = client.finish(Duration::from_secs(60));
    let events = events_of(&run);
    SshLogin {
        events,
        prompt: None,
        approval: None,
        client: run,
    }
}

impl std::fmt::Display for SshLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(a) = &self.approval {
            writeln!(f, "--- approval ---\n{a}")?;
        }
        write!(f, "--- ssh client ---\n{}", self.client)
    }
}

/// Connects to `sshd` as `user` with keyboard-interactive; at the first prompt that holds a
/// code, has `approver` approve it (if any), then answers Enter; runs `cmd` in a session if
/// authenticated.
pub fn ssh_login(
    sshd: &Sshd,
    user: &str,
    approver: Option<Approver<'_>>,
    cmd: Option<&str>,
) -> SshLogin {
    ssh_login_with(sshd, user, approver, cmd, None)
}

/// [`ssh_login`], but with `enter_first = Some(delay)` the user answers Enter first and the
/// code is approved `delay` later (the module then waits for the verdict meanwhile).
pub fn ssh_login_with(
    sshd: &Sshd,
    user: &str,
    approver: Option<Approver<'_>>,
    cmd: Option<&str>,
    enter_first: Option<Duration>,
) -> SshLogin {
    let mut client = kbdint_client(sshd, user, cmd);
    let prompted = client.wait_output(pam::PROMPT_TIMEOUT, |out, _| {
        out.lines()
            .any(|l| l.contains("\"info_request\"") && l.contains(pam::PRESS_ENTER))
    });
    let mut prompt = None;
    let mut approval = None;
    if prompted {
        let out = client.stdout();
        let text = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "info_request" && e.to_string().contains(pam::PRESS_ENTER))
            .map(|e| {
                let mut t = e["instruction"].as_str().unwrap_or("").to_string();
                for p in e["prompts"].as_array().into_iter().flatten() {
                    t.push('\n');
                    t.push_str(p[0].as_str().unwrap_or(""));
                }
                t
            })
            .unwrap_or_default();
        prompt = Prompt::parse(&text, Instant::now());
        if let Some(delay) = enter_first {
            client.write("\n");
            util::sleep(delay);
        }
        if let (Some(a), Some(p)) = (approver, &prompt) {
            approval = Some(a.op.approve(&p.code, a.login, a.password, a.flags));
        }
        if enter_first.is_none() {
            client.write("\n");
        }
    }
    let (run, _) = client.finish(Duration::from_secs(60));
    let events = events_of(&run);
    SshLogin {
        events,
        prompt,
        approval,
        client: run,
    }
}
