//! A private mount namespace in which glibc uses the built `libnss_oidc.so.2`.
//!
//! A holder process (`unshare -m --propagation private sh -c '<mounts>; exec sleep infinity'`)
//! keeps the namespace alive; every command runs inside it with `nsenter --mount=…`, so the
//! daemon, `getent`, `id`, pamtester, sshd and sudo all see the same mounts. Inside:
//! - `/run` is a fresh tmpfs of mode 0755 holding `/run/oidcd` and `/run/sshd` (the daemon
//!   refuses a socket directory writable by others, and the host's `/run` stays untouched);
//! - `/etc/nsswitch.conf` is the host's with `passwd: files oidc` and `group: files oidc`;
//! - the multiarch lib dir is a read-only overlay whose top layer holds `libnss_oidc.so.2` and
//!   `security/pam_oidc.so`, so stacks naming the module by its bare name (the shipped ones)
//!   load the built module;
//! - optionally `/etc/passwd` and `/etc/group` (with extra local accounts), `/etc/shadow` (with
//!   their passwords), `/etc/pam.d` and `/etc/sudoers.d` are bound to copies in the namespace's
//!   temp dir, and `/var/lib/extrausers` to files of a second NSS source (`extrausers`, then
//!   listed between `files` and `oidc`).
//!
//! Nothing is created on a host path outside the temp dir: the script runs under `set -e`, so
//! if mounting the tmpfs fails, nothing is created under the host's `/run`. Dropping the
//! namespace kills the holder; the mounts vanish with the last process inside.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::paths;
use crate::util::{self, Run, TempDir, sh_quote};

/// What to put in a namespace. Build one with [`Namespace::builder`].
#[derive(Debug, Default, Clone)]
pub struct NamespaceBuilder {
    passwd_lines: Vec<String>,
    group_lines: Vec<String>,
    shadow_lines: Vec<String>,
    extrausers: Option<(Vec<String>, Vec<String>)>,
    pam_dir: bool,
    sudoers_dir: bool,
    modules: Vec<(String, std::path::PathBuf)>,
    /// Directories bound over existing ones: (target, copy of the host's contents or empty).
    dirs: Vec<(String, bool)>,
}

impl NamespaceBuilder {
    /// Adds another NSS module to the overlaid lib dir as `libnss_NAME.so.2` (the benchmark's
    /// do-nothing module).
    pub fn nss_module(mut self, name: &str, so: &Path) -> Self {
        self.modules.push((name.to_string(), so.to_path_buf()));
        self
    }

    /// Binds an empty directory (root's, mode 0755) over the existing directory `target`
    /// (`/home` and `/var/log` always are); [`Namespace::bound`] is its host path.
    pub fn empty_dir(mut self, target: &str) -> Self {
        self.dirs.push((target.to_string(), false));
        self
    }

    /// Binds a copy of the host's directory `target` over it (`/usr/share/pam-configs`,
    /// `/var/lib/pam`, `/etc/skel`); [`Namespace::bound`] is its host path, to change inside.
    pub fn copied_dir(mut self, target: &str) -> Self {
        self.dirs.push((target.to_string(), true));
        self
    }

    /// Adds a local user (a line for `/etc/passwd`, e.g. `localbob:x:4242:4242::/home/b:/bin/sh`);
    /// the namespace then binds a copy of the host's `/etc/passwd` and `/etc/group`.
    pub fn local_user(mut self, passwd_line: &str) -> Self {
        self.passwd_lines.push(passwd_line.to_string());
        self
    }

    /// Adds a local user (a line for `/etc/passwd`) whose password is `password`: the
    /// namespace also binds a copy of `/etc/shadow` holding its SHA-512 hash (made with
    /// `openssl passwd -6`), so pam_unix accepts it.
    pub fn local_user_with_password(mut self, passwd_line: &str, password: &str) -> Self {
        let name = passwd_line.split(':').next().unwrap_or_default();
        let r = util::run_with_input(
            Command::new("openssl").args(["passwd", "-6", "-stdin"]),
            Some(format!("{password}\n").as_bytes()),
            Duration::from_secs(10),
        );
        r.expect_ok();
        let hash = r.stdout.trim().to_string();
        self.shadow_lines
            .push(format!("{name}:{hash}:19000:0:99999:7:::"));
        self.passwd_lines.push(passwd_line.to_string());
        self
    }

    /// A second NSS source before `oidc`: Debian's `extrausers` module (libnss-extrausers),
    /// reading `passwd` and `group` files bound over `/var/lib/extrausers`, with these lines;
    /// nsswitch.conf then says `files extrausers oidc`. [`Namespace::extrausers_dir`] is
    /// where the files are, to change them while the test runs.
    pub fn other_source(mut self, passwd_lines: &[&str], group_lines: &[&str]) -> Self {
        let own = |v: &[&str]| v.iter().map(|l| (*l).to_string()).collect();
        self.extrausers = Some((own(passwd_lines), own(group_lines)));
        self
    }

    /// Adds a local group (a line for `/etc/group`).
    pub fn local_group(mut self, group_line: &str) -> Self {
        self.group_lines.push(group_line.to_string());
        self
    }

    /// Binds a copy of the host's `/etc/pam.d` over it; write services into
    /// [`Namespace::pam_dir`].
    pub fn pam_dir(mut self) -> Self {
        self.pam_dir = true;
        self
    }

    /// Binds a copy of the host's `/etc/sudoers.d` over it; write rules into
    /// [`Namespace::sudoers_dir`].
    pub fn sudoers_dir(mut self) -> Self {
        self.sudoers_dir = true;
        self
    }

    /// Creates the namespace and waits until its mounts are in place.
    pub fn start(self) -> Namespace {
        let dir = TempDir::with_mode("ns", 0o755);
        let lib = dir.join("lib");
        std::fs::create_dir(&lib).unwrap();
        std::fs::copy(paths::nss_module(), lib.join("libnss_oidc.so.2"))
            .expect("copy libnss_oidc.so");
        for (name, so) in &self.modules {
            std::fs::copy(so, lib.join(format!("libnss_{name}.so.2"))).expect("copy module");
        }
        std::fs::create_dir(lib.join("security")).unwrap();
        std::fs::copy(paths::pam_module(), lib.join("security/pam_oidc.so"))
            .expect("copy libpam_oidc.so");
        let extra = self.extrausers.is_some();
        let nsswitch = dir.write("nsswitch.conf", nsswitch_conf(NssMode::Oidc, extra), 0o644);
        let ma = paths::multiarch_lib_dir();

        let mut script = vec![
            "set -eu".to_string(),
            "umask 022".to_string(),
            "mount -t tmpfs -o mode=0755 tmpfs /run".to_string(),
            "mkdir -p /run/oidcd /run/sshd".to_string(),
            format!(
                "mount --bind {} /etc/nsswitch.conf",
                sh_quote(&nsswitch.to_string_lossy())
            ),
            format!(
                "mount -t overlay overlay -o {} {}",
                sh_quote(&format!("lowerdir={}:{}", lib.display(), ma.display())),
                sh_quote(&ma.to_string_lossy())
            ),
        ];
        if !self.passwd_lines.is_empty() || !self.group_lines.is_empty() {
            for (file, extra) in [("passwd", &self.passwd_lines), ("group", &self.group_lines)] {
                let mut text = std::fs::read_to_string(format!("/etc/{file}")).unwrap();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                for l in extra {
                    text.push_str(l);
                    text.push('\n');
                }
                let copy = dir.write(file, text, 0o644);
                script.push(format!(
                    "mount --bind {} /etc/{file}",
                    sh_quote(&copy.to_string_lossy())
                ));
            }
        }
        if let Some((passwd, group)) = &self.extrausers {
            let ex = dir.join("extrausers");
            std::fs::create_dir(&ex).unwrap();
            let lines = |v: &[String]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
            std::fs::write(ex.join("passwd"), lines(passwd)).unwrap();
            std::fs::write(ex.join("group"), lines(group)).unwrap();
            std::fs::write(ex.join("shadow"), "").unwrap();
            script.push(format!(
                "mount --bind {} /var/lib/extrausers",
                sh_quote(&ex.to_string_lossy())
            ));
        }
        if !self.shadow_lines.is_empty() {
            let mut text = std::fs::read_to_string("/etc/shadow").unwrap();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            for l in &self.shadow_lines {
                text.push_str(l);
                text.push('\n');
            }
            let copy = dir.write("shadow", text, 0o640);
            script.push(format!(
                "mount --bind {} /etc/shadow",
                sh_quote(&copy.to_string_lossy())
            ));
        }
        for (wanted, name) in [(self.pam_dir, "pam.d"), (self.sudoers_dir, "sudoers.d")] {
            if wanted {
                let copy = dir.join(name);
                util::run(
                    Command::new("cp")
                        .arg("-a")
                        .arg(format!("/etc/{name}"))
                        .arg(&copy),
                )
                .expect_ok();
                script.push(format!(
                    "mount --bind {} /etc/{name}",
                    sh_quote(&copy.to_string_lossy())
                ));
            }
        }
        // Homes are made at sessions (pam_mkhomedir in the shipped stacks), and sshd and login
        // record logins and failures in /var/log (btmp, wtmp, lastlog): never on the host.
        let mut dirs = self.dirs.clone();
        for always in ["/home", "/var/log"] {
            if !dirs.iter().any(|(t, _)| t == always) {
                dirs.insert(0, (always.to_string(), false));
            }
        }
        for (target, copy) in &dirs {
            let bound = dir.join(bound_name(target));
            if *copy {
                util::run(Command::new("cp").arg("-a").arg(target).arg(&bound)).expect_ok();
            } else {
                std::fs::create_dir(&bound).unwrap();
                std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            script.push(format!(
                "mount --bind {} {}",
                sh_quote(&bound.to_string_lossy()),
                sh_quote(target)
            ));
        }
        script.push("echo READY".into());
        script.push("exec sleep infinity".into());

        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(script.join("\n"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        util::kill_with_parent(&mut cmd);
        let mut holder = cmd.spawn().expect("spawn unshare");
        let mut line = String::new();
        let mut out = BufReader::new(holder.stdout.take().unwrap());
        let _ = out.read_line(&mut line);
        if line.trim() != "READY" {
            let _ = holder.kill();
            let output = holder.wait_with_output().unwrap();
            panic!(
                "namespace setup failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Namespace {
            pid: holder.id(),
            holder,
            nsswitch,
            extrausers: extra,
            pam_dir: self.pam_dir.then(|| dir.join("pam.d")),
            sudoers_dir: self.sudoers_dir.then(|| dir.join("sudoers.d")),
            dir,
        }
    }
}

/// The name under the namespace's temp dir of the directory bound over `target`.
fn bound_name(target: &str) -> String {
    format!("bound{}", target.replace('/', "-"))
}

/// Which sources `passwd` and `group` use in the namespace's nsswitch.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NssMode {
    /// `files oidc`: the module is asked after the local files.
    Oidc,
    /// `files` only: the module is never loaded (a baseline for timings).
    FilesOnly,
}

/// The host's nsswitch.conf with `passwd` and `group` replaced (the rest kept); `extrausers`
/// puts that source after `files`.
fn nsswitch_conf(mode: NssMode, extrausers: bool) -> String {
    let host = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let sources = match (mode, extrausers) {
        (NssMode::Oidc, false) => "files oidc",
        (NssMode::Oidc, true) => "files extrausers oidc",
        (NssMode::FilesOnly, false) => "files",
        (NssMode::FilesOnly, true) => "files extrausers",
    };
    let mut out = String::new();
    for line in host.lines() {
        let db = line.split(':').next().unwrap_or("").trim();
        if !line.trim_start().starts_with('#') && (db == "passwd" || db == "group") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "passwd:         {sources}\ngroup:          {sources}\n"
    ));
    out
}

/// A private mount namespace; see the module docs.
#[derive(Debug)]
pub struct Namespace {
    holder: Child,
    pid: u32,
    nsswitch: PathBuf,
    extrausers: bool,
    pam_dir: Option<PathBuf>,
    sudoers_dir: Option<PathBuf>,
    dir: TempDir,
}

impl Namespace {
    /// A namespace with the default mounts.
    pub fn new() -> Self {
        Self::builder().start()
    }

    /// A builder for a namespace with extra mounts.
    pub fn builder() -> NamespaceBuilder {
        NamespaceBuilder::default()
    }

    /// The holder's PID (its `/proc/PID/ns/mnt` is the namespace).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A temp dir on the host (mode 0755), visible at the same path inside.
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    /// The path through which the host sees `path` as the namespace sees it
    /// (`/proc/PID/root/...`): for reading files and connecting to sockets from the test itself.
    pub fn host_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let rel = path.as_ref().strip_prefix("/").unwrap_or(path.as_ref());
        PathBuf::from(format!("/proc/{}/root", self.pid)).join(rel)
    }

    /// The copy of `/etc/pam.d` bound inside (only with [`NamespaceBuilder::pam_dir`]).
    pub fn pam_dir(&self) -> &Path {
        self.pam_dir
            .as_deref()
            .expect("namespace built without pam_dir()")
    }

    /// The host path of the directory bound over `target` (with [`NamespaceBuilder::empty_dir`]
    /// or [`NamespaceBuilder::copied_dir`]).
    pub fn bound(&self, target: &str) -> PathBuf {
        let p = self.dir.join(bound_name(target));
        assert!(
            p.is_dir(),
            "namespace built without a directory over {target}"
        );
        p
    }

    /// The copy of `/etc/sudoers.d` bound inside (only with [`NamespaceBuilder::sudoers_dir`]).
    pub fn sudoers_dir(&self) -> &Path {
        self.sudoers_dir
            .as_deref()
            .expect("namespace built without sudoers_dir()")
    }

    /// Rewrites the bound nsswitch.conf in place (same inode, so the bind mount follows);
    /// each new process reads it afresh.
    pub fn set_nss(&self, mode: NssMode) {
        std::fs::write(&self.nsswitch, nsswitch_conf(mode, self.extrausers)).unwrap();
    }

    /// Rewrites the bound nsswitch.conf with `sources` for `passwd`, `group` and `initgroups`
    /// (e.g. `"files oidc extrausers"`, `"oidc"`, `"sss"`).
    pub fn set_nss_sources(&self, sources: &str) {
        let mut text: String = nsswitch_conf(NssMode::FilesOnly, false)
            .lines()
            .filter(|l| {
                !["passwd:", "group:", "initgroups:"]
                    .iter()
                    .any(|d| l.starts_with(d))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for db in ["passwd", "group", "initgroups"] {
            text.push_str(&format!("{db}: {sources}\n"));
        }
        std::fs::write(&self.nsswitch, text).unwrap();
    }

    /// The directory bound over `/var/lib/extrausers` (only with
    /// [`NamespaceBuilder::other_source`]).
    pub fn extrausers_dir(&self) -> PathBuf {
        assert!(self.extrausers, "namespace built without other_source()");
        self.dir.join("extrausers")
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.pid))
            .arg("--")
            .arg(program)
            .env_remove(oidc_proto::paths::NSS_BYPASS_ENV)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("SYSTEMD_ACTIVATION_UNIT");
        cmd
    }

    /// Runs `program args…` inside the namespace and waits for it.
    pub fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
        util::run(self.command(program).args(args))
    }

    /// Runs `program args…` inside as `uid`/`gid` with no supplementary groups.
    pub fn run_as(
        &self,
        uid: u32,
        gid: u32,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Run {
        let mut cmd = self.command("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(program)
            .args(args);
        util::run(&mut cmd)
    }

    /// `getent DB KEYS…` inside.
    pub fn getent(&self, db: &str, keys: &[&str]) -> Run {
        let mut args = vec![db];
        args.extend_from_slice(keys);
        self.run("getent", &args)
    }

    /// `sh -c SCRIPT` inside.
    pub fn sh(&self, script: &str) -> Run {
        self.run("sh", &["-c", script])
    }

    /// Times `getpwnam(name)` inside one process (Python's `pwd`, i.e. glibc's NSS): one
    /// warm-up call (loads the modules), then `n` calls. Returns the per-call durations,
    /// sorted. Separates the lookup's own cost from process start-up.
    pub fn time_getpwnam(&self, name: &str, n: usize) -> Vec<Duration> {
        let script = "import pwd, sys, time\n\
            name, n = sys.argv[1], int(sys.argv[2])\n\
            def once():\n\
            \x20   t = time.perf_counter()\n\
            \x20   try:\n\
            \x20       pwd.getpwnam(name)\n\
            \x20   except KeyError:\n\
            \x20       pass\n\
            \x20   return time.perf_counter() - t\n\
            once()\n\
            print(' '.join(str(once()) for _ in range(n)))\n";
        let r = self.run(util::python3(), &["-c", script, name, &n.to_string()]);
        r.expect_ok();
        let mut v: Vec<Duration> = r
            .stdout
            .split_whitespace()
            .map(|s| Duration::from_secs_f64(s.parse().unwrap()))
            .collect();
        v.sort();
        v
    }

    /// Waits at most `timeout` for `path` (as seen inside) to exist.
    pub fn wait_for_path(&self, path: &str, timeout: Duration) -> bool {
        let p = self.host_path(path);
        util::wait_until(timeout, || p.exists())
    }

    /// Spawns `cmd` (a stand-in server made with [`Self::command`]) and waits up to 10 s for
    /// it to create `socket` (as seen inside); panics with what it printed if it does not.
    pub fn spawn_server(&self, cmd: &mut Command, socket: &str) -> util::Spawned {
        let server = util::spawn(cmd, None);
        if !self.wait_for_path(socket, Duration::from_secs(10)) {
            panic!(
                "the stand-in server never created {socket}:\n{}",
                server.wait(Duration::from_secs(1))
            );
        }
        server
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
