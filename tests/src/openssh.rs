//! The real OpenSSH client (`ssh`), driven the way a person types, through `SSH_ASKPASS`.
//!
//! `ssh` runs without a terminal (`setsid -w`, stdin closed) with `SSH_ASKPASS_REQUIRE=force`,
//! so every keyboard-interactive prompt, with the text sshd held back before it (the device
//! code, a PAM error), goes to a small askpass script as its argument. The script writes the
//! prompt to `prompt.N` and waits for the test to write `answer.N`, then prints it: the test
//! reads the code, has it approved, and "presses Enter" by answering `""`. An answer may be
//! written before the prompt comes (a local user's password). The client is on the host; sshd
//! and everything behind it are in the test's namespace.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sshd::Sshd;
use crate::util::{self, Run, Spawned, TempDir};

/// How long the askpass script waits for an answer before giving up (the client then fails).
const ANSWER_TIMEOUT_S: u32 = 120;

/// One `ssh` client in progress.
#[derive(Debug)]
pub struct OpenSsh {
    child: Spawned,
    dir: TempDir,
}

impl OpenSsh {
    /// Starts `ssh -p PORT USER@127.0.0.1 CMD` against `sshd` with keyboard-interactive only.
    pub fn spawn(sshd: &Sshd, user: &str, cmd: &str) -> Self {
        Self::spawn_with(
            sshd,
            user,
            cmd,
            &[
                "PreferredAuthentications=keyboard-interactive",
                "PubkeyAuthentication=no",
            ],
        )
    }

    /// Starts `ssh -i KEY` with public-key authentication only and `BatchMode=yes`: any
    /// prompt (a device code included) makes it fail instead of asking.
    pub fn spawn_with_key(sshd: &Sshd, user: &str, key: &std::path::Path, cmd: &str) -> Self {
        let identity = format!("IdentityFile={}", key.display());
        Self::spawn_with(
            sshd,
            user,
            cmd,
            &[
                "PreferredAuthentications=publickey",
                "PubkeyAuthentication=yes",
                "IdentitiesOnly=yes",
                &identity,
                "BatchMode=yes",
            ],
        )
    }

    fn spawn_with(sshd: &Sshd, user: &str, cmd: &str, auth: &[&str]) -> Self {
        let dir = TempDir::with_mode("openssh", 0o700);
        let askpass = dir.write(
            "askpass",
            format!(
                "#!/bin/sh\n\
                 d={d}\n\
                 n=$(( $(cat \"$d/count\" 2>/dev/null || echo 0) + 1 ))\n\
                 echo $n > \"$d/count\"\n\
                 printf '%s' \"$1\" > \"$d/prompt.$n.tmp\" && mv \"$d/prompt.$n.tmp\" \"$d/prompt.$n\"\n\
                 i=0\n\
                 while [ ! -e \"$d/answer.$n\" ]; do\n\
                 \x20 sleep 0.02; i=$((i+1)); [ $i -gt {limit} ] && exit 1\n\
                 done\n\
                 cat \"$d/answer.$n\"\n",
                d = util::sh_quote(&dir.path().to_string_lossy()),
                limit = ANSWER_TIMEOUT_S * 50,
            ),
            0o700,
        );
        let mut c = Command::new("setsid");
        c.arg("-w")
            .arg("ssh")
            .args(["-F", "/dev/null", "-p", &sshd.port().to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "NumberOfPasswordPrompts=1",
            ])
            .args(auth.iter().flat_map(|o| ["-o", o]))
            .arg(format!("{user}@127.0.0.1"))
            .arg(cmd)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .env_remove("SSH_AUTH_SOCK");
        let child = util::spawn(&mut c, None);
        Self { child, dir }
    }

    /// Writes the answer to prompt `n` (1 for the first), before or after it comes.
    pub fn answer(&self, n: usize, text: &str) {
        let tmp = self.dir.join(format!("answer.{n}.tmp"));
        std::fs::write(&tmp, format!("{text}\n")).unwrap();
        std::fs::rename(&tmp, self.dir.join(format!("answer.{n}"))).unwrap();
    }

    /// Prompt `n` as the client showed it (held-back text included), once it came.
    pub fn prompt(&self, n: usize) -> Option<String> {
        std::fs::read_to_string(self.prompt_path(n)).ok()
    }

    /// Waits at most `timeout` for prompt `n`.
    pub fn wait_prompt(&self, n: usize, timeout: Duration) -> Option<String> {
        util::wait_until(timeout, || self.prompt_path(n).exists());
        self.prompt(n)
    }

    /// The client's start.
    pub fn started(&self) -> Instant {
        self.child.started()
    }

    /// Waits for the client to exit (killing it after `timeout`).
    pub fn finish(self, timeout: Duration) -> Run {
        self.child.wait(timeout)
    }

    fn prompt_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("prompt.{n}"))
    }
}
