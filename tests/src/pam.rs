//! Real PAM logins: a service file in the namespace's bound `/etc/pam.d` naming the built
//! `pam_oidc.so` by absolute path, and a pamtester driver that reads the module's prompt,
//! takes the URL and code from it, has the code approved at the provider by the scripted
//! browser (`approve_device.py`), answers Enter and collects exit code, output and timing.
//!
//! pamtester shows prompts and `PAM_ERROR_MSG` on stderr and `PAM_TEXT_INFO` on stdout, and
//! exits 0 only when every operation succeeded.

use std::time::{Duration, Instant};

use crate::Provider;
use crate::ns::Namespace;
use crate::paths;
use crate::util::{self, Interactive, Run, ms};

/// The last line of the module's prompt (pam_oidc's `prompt::PRESS_ENTER`).
pub const PRESS_ENTER: &str = "Press Enter after you have approved the login.";

/// The PAM service name the login tests use unless they need another.
pub const SERVICE: &str = "oidc-test";

/// How long the prompt may take to appear (the daemon asks the provider for a code first).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long pamtester may take after Enter unless a test says otherwise.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `/etc/pam.d/NAME` (in the namespace's bound copy) with `text`.
pub fn install_service_text(ns: &Namespace, name: &str, text: &str) {
    let file = ns.pam_dir().join(name);
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// Writes `/etc/pam.d/NAME` with `auth` and `account` lines, both `required` and naming the
/// built module by absolute path with `args` (e.g. `"debug noqr"`).
pub fn install_service(ns: &Namespace, name: &str, args: &str) {
    let module = paths::pam_module();
    let module = module.display();
    install_service_text(
        ns,
        name,
        &format!("auth     required {module} {args}\naccount  required {module} {args}\n"),
    );
}

/// The prompt as the user saw it, and what was read from it.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Everything pamtester had shown on stderr when the prompt was complete.
    pub text: String,
    /// The URL after "Visit ".
    pub url: String,
    /// The code after "enter the code: ".
    pub code: String,
    /// The host after "to log in to " or "to approve sudo on " (without the final '.'), if
    /// shown.
    pub host: Option<String>,
    /// When the prompt was complete.
    pub seen: Instant,
}

impl Prompt {
    /// Reads URL, code and host from a prompt's text; `None` unless it has URL and code.
    pub fn parse(text: &str, seen: Instant) -> Option<Self> {
        let after = |marker: &str| {
            let start = text.find(marker)? + marker.len();
            let rest = &text[start..];
            Some(
                rest[..rest.find('\n').unwrap_or(rest.len())]
                    .trim()
                    .to_string(),
            )
        };
        Some(Self {
            text: text.to_string(),
            url: after("Visit ")?,
            code: after("enter the code: ")?,
            host: after("to log in to ")
                .or_else(|| Some(after("to approve ")?.split_once(" on ")?.1.to_string()))
                .map(|h| h.trim_end_matches('.').to_string()),
            seen,
        })
    }
}

/// pamtester running `SERVICE USER OPS…` (verbose) inside a namespace.
#[derive(Debug)]
pub struct Pamtester {
    proc: Interactive,
}

impl Pamtester {
    /// Starts `pamtester -v SERVICE USER OPS…` inside `ns`.
    pub fn spawn(ns: &Namespace, service: &str, user: &str, ops: &[&str]) -> Self {
        let mut cmd = ns.command("pamtester");
        cmd.args(["-v", service, user]).args(ops);
        Self {
            proc: Interactive::spawn(&mut cmd),
        }
    }

    /// Waits for the module's prompt; `None` if pamtester ended (or `timeout` passed) first.
    pub fn wait_prompt(&self, timeout: Duration) -> Option<Prompt> {
        if !self
            .proc
            .wait_output(timeout, |_, err| err.contains(PRESS_ENTER))
        {
            return None;
        }
        Prompt::parse(&self.proc.stderr(), Instant::now())
    }

    /// Answers the prompt with an empty line.
    pub fn press_enter(&mut self) {
        self.proc.write("\n");
    }

    /// The process, for signals and output so far.
    pub fn process(&mut self) -> &mut Interactive {
        &mut self.proc
    }

    /// Waits for the exit (panics after `timeout`).
    pub fn finish(self, timeout: Duration) -> (Run, Instant) {
        self.proc.finish(timeout)
    }
}

/// Who approves a code, and how.
#[derive(Debug, Clone, Copy)]
pub struct Approver<'a> {
    /// The provider.
    pub op: &'a Provider,
    /// The login name typed at the provider.
    pub login: &'a str,
    /// The password.
    pub password: &'a str,
    /// Flags for approve_device.py (`--deny`, `--abort-code`, `--wrong-password`).
    pub flags: &'a [&'a str],
}

impl<'a> Approver<'a> {
    /// The provider's test user `who` ("alice", "bob" or "carol") approving.
    pub fn user(op: &'a Provider, who: &str) -> Self {
        let (login, password) = match who {
            "alice" => ("alice", "alice-pw"),
            "bob" => ("bob", "bob-pw"),
            "carol" => ("carol@example.test", "carol-pw"),
            other => panic!("no test account {other}"),
        };
        Self {
            op,
            login,
            password,
            flags: &[],
        }
    }

    /// The same person, with approve_device.py flags (e.g. `&["--deny"]`).
    pub fn with_flags(mut self, flags: &'a [&'a str]) -> Self {
        self.flags = flags;
        self
    }
}

/// One login through pamtester: what was shown, what the approval did, how it ended.
#[derive(Debug)]
pub struct Login {
    /// The prompt, if the module got that far.
    pub prompt: Option<Prompt>,
    /// The approval script's run, if someone approved.
    pub approval: Option<Run>,
    /// When the approval script started.
    pub approval_started: Option<Instant>,
    /// When the approval script returned.
    pub approved_at: Option<Instant>,
    /// pamtester's run (exit code, stdout, stderr, time from spawn to exit).
    pub pam: Run,
    /// When pamtester ended.
    pub exited_at: Instant,
}

impl Login {
    /// pamtester's exit code was 0: every PAM operation succeeded.
    pub fn succeeded(&self) -> bool {
        self.pam.code() == 0
    }

    /// stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.pam.stdout, self.pam.stderr)
    }

    /// From the approval script returning to pamtester's exit, in milliseconds; negative
    /// when pamtester ended first (the daemon saw the approval before the provider had sent
    /// the browser its last page).
    pub fn approval_to_exit_ms(&self) -> Option<f64> {
        let approved = self.approved_at?;
        Some(if self.exited_at >= approved {
            ms(self.exited_at - approved)
        } else {
            -ms(approved - self.exited_at)
        })
    }

    /// From the approval script's start (the person begins approving) to pamtester's exit.
    pub fn approval_start_to_exit(&self) -> Option<Duration> {
        Some(
            self.exited_at
                .saturating_duration_since(self.approval_started?),
        )
    }

    /// Panics (showing everything) unless the login succeeded.
    #[track_caller]
    pub fn expect_success(&self) -> &Self {
        assert!(self.succeeded(), "the login failed:\n{self}");
        self
    }

    /// Panics unless the login failed and the output shows `needle`.
    #[track_caller]
    pub fn expect_failure(&self, needle: &str) -> &Self {
        assert!(
            !self.succeeded(),
            "the login succeeded, expected a failure:\n{self}"
        );
        assert!(
            self.output().contains(needle),
            "the output does not say {needle:?}:\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(a) = &self.approval {
            writeln!(f, "--- approval ---\n{a}")?;
        }
        write!(f, "--- pamtester ---\n{}", self.pam)
    }
}

/// A pamtester login, configured step by step, then [`Self::run`].
#[derive(Debug)]
pub struct PamLogin<'a> {
    ns: &'a Namespace,
    service: String,
    user: String,
    ops: Vec<String>,
    approver: Option<Approver<'a>>,
    enter_first: bool,
    finish_timeout: Duration,
}

impl<'a> PamLogin<'a> {
    /// `pamtester -v SERVICE USER authenticate`, nobody approving (Enter pressed at once).
    pub fn new(ns: &'a Namespace, service: &str, user: &str) -> Self {
        Self {
            ns,
            service: service.to_string(),
            user: user.to_string(),
            ops: vec!["authenticate".into()],
            approver: None,
            enter_first: false,
            finish_timeout: FINISH_TIMEOUT,
        }
    }

    /// The PAM operations (default `authenticate`), e.g. `["authenticate", "acct_mgmt"]`.
    pub fn ops(mut self, ops: &[&str]) -> Self {
        self.ops = ops.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Has the code approved (or refused) by `approver` before Enter is pressed.
    pub fn approved_by(mut self, approver: Approver<'a>) -> Self {
        self.approver = Some(approver);
        self
    }

    /// Presses Enter first and approves 100 ms later (the module is then already waiting for
    /// the daemon's verdict), instead of approving first.
    pub fn enter_before_approval(mut self) -> Self {
        self.enter_first = true;
        self
    }

    /// How long pamtester may take after Enter.
    pub fn finish_timeout(mut self, d: Duration) -> Self {
        self.finish_timeout = d;
        self
    }

    /// Runs it: waits for the prompt (if it comes), approves, presses Enter, waits for the end.
    /// An approval script that fails is recorded, not a panic (refusals are tested too).
    pub fn run(self) -> Login {
        let ops: Vec<&str> = self.ops.iter().map(String::as_str).collect();
        let mut pt = Pamtester::spawn(self.ns, &self.service, &self.user, &ops);
        let prompt = pt.wait_prompt(PROMPT_TIMEOUT);
        let mut approval = None;
        let mut approval_started = None;
        let mut approved_at = None;
        if let Some(p) = &prompt {
            if self.enter_first {
                pt.press_enter();
                util::sleep(Duration::from_millis(100));
            }
            if let Some(a) = self.approver {
                approval_started = Some(Instant::now());
                approval = Some(a.op.approve(&p.code, a.login, a.password, a.flags));
                approved_at = Some(Instant::now());
            }
            if !self.enter_first {
                pt.press_enter();
            }
        }
        let (pam, exited_at) = pt.finish(self.finish_timeout);
        Login {
            prompt,
            approval,
            approval_started,
            approved_at,
            pam,
            exited_at,
        }
    }
}

/// `pamtester -v SERVICE USER OPS…` with nothing to answer (e.g. `acct_mgmt` alone).
pub fn pamtester(ns: &Namespace, service: &str, user: &str, ops: &[&str]) -> Run {
    let mut cmd = ns.command("pamtester");
    cmd.args(["-v", service, user]).args(ops);
    util::run(&mut cmd)
}
