//! sshd's effective configuration against what oidcd's logins need: PAM and keyboard-interactive
//! for the device prompt, a LoginGraceTime that outlasts a device login, the start-up limits
//! docs/limits.md recommends, and AuthorizedKeysCommand when a provider's SSH keys are served.
//!
//! The settings come from `sshd -T` (sshd's own reading of its file and every `Include`), run
//! with a deadline. Only global settings are judged: `Match` blocks are not evaluated. The
//! parsing ([`parse`]) and the judging ([`judge`]) are pure; [`check`] runs sshd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::config::Config;

use super::{Host, Report, pam};

const S: &str = "sshd";

/// Where sshd is looked for, in order.
const SSHD_PROGRAMS: &[&str] = &["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"];

/// How long `sshd -T` may take (it reads files only; a hang is a broken host).
const SSHD_DEADLINE: Duration = Duration::from_secs(5);

/// The AuthorizedKeysCommand the packages install and README gives.
const KEYS_COMMAND: &str = "/usr/libexec/oidcd/oidc-authorized-keys";

/// OpenSSH's default MaxStartups, which docs/limits.md recommends raising.
const DEFAULT_MAX_STARTUPS: (u32, u32, u32) = (10, 30, 100);

/// A LoginGraceTime longer than this (and than a device login needs) lets an unauthenticated
/// client hold a login slot needlessly long.
const LONG_GRACE: u64 = 600;

/// The settings of `sshd -T` that oidcd's logins depend on; `None` where the output has no
/// such line (older or newer OpenSSH) or a value this check does not understand.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    use_pam: Option<bool>,
    /// `kbdinteractiveauthentication`.
    kbd_interactive: Option<bool>,
    /// `challengeresponseauthentication`: printed by OpenSSH before 8.7, where it also gates
    /// keyboard-interactive.
    challenge_response: Option<bool>,
    /// `authenticationmethods` as printed (`any`, or comma lists separated by blanks).
    authentication_methods: Option<String>,
    pubkey: Option<bool>,
    /// `authorizedkeyscommand`; `None` also for `none`.
    keys_command: Option<String>,
    /// `authorizedkeyscommanduser`; `None` also for `none`.
    keys_command_user: Option<String>,
    /// `logingracetime`, in seconds (0: no limit).
    login_grace_time: Option<u64>,
    /// `maxstartups` start:rate:full.
    max_startups: Option<(u32, u32, u32)>,
    /// `persourcemaxstartups` (OpenSSH 8.5+).
    per_source_max_startups: Option<PerSource>,
    /// `persourcepenalties` (OpenSSH 9.8+) is `no`.
    penalties_off: Option<bool>,
}

/// `persourcemaxstartups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PerSource {
    /// `none`: one address may fill MaxStartups.
    Unlimited,
    At(u32),
}

/// What oidcd needs of sshd on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Needs {
    /// pam_oidc is in sshd's PAM stack: device-flow logins over SSH.
    device_logins: bool,
    /// A provider's SSH keys are served (`claims.ssh_keys_claim`).
    keys: bool,
    /// `login.timeout`: the longest a device login may take.
    login_timeout: Duration,
    /// `login.max_logins_per_source`.
    max_logins_per_source: u32,
    /// The file the fixes name: the one given with --sshd-config, else sshd's default.
    file: String,
}

/// Checks sshd's effective configuration, read from `sshd_config` when given (else sshd's
/// default file). Adds one ok line and nothing else when sshd is not installed or nothing in
/// sshd depends on oidcd.
pub(super) fn check(
    r: &mut Report,
    host: &Host,
    config: Option<&Config>,
    sshd_config: Option<&Path>,
) {
    let Some(program) = SSHD_PROGRAMS.iter().map(Path::new).find(|p| p.exists()) else {
        r.ok(S, "sshd is not installed: sshd checks skipped");
        return;
    };
    let needs = Needs {
        device_logins: sshd_uses_oidc(&host.pam_dir),
        keys: config.is_some_and(|c| {
            c.claims.ssh_keys.is_some() || c.providers.iter().any(|p| p.claims.ssh_keys.is_some())
        }),
        login_timeout: config.map_or(Duration::from_secs(300), |c| c.login.timeout),
        max_logins_per_source: config.map_or(8, |c| c.login.max_logins_per_source),
        file: sshd_config.map_or_else(
            || "/etc/ssh/sshd_config".to_string(),
            |p| p.display().to_string(),
        ),
    };
    if !needs.device_logins && !needs.keys {
        r.ok(
            S,
            "pam_oidc is not in sshd's PAM stack and no SSH keys claim is set: nothing in sshd \
             depends on oidcd",
        );
        return;
    }
    match effective(program, sshd_config, SSHD_DEADLINE) {
        Ok(text) => judge(r, &parse(&text), &needs, &|p: &Path| p.exists()),
        Err(e) => {
            let fix = if !nix::unistd::geteuid().is_root() {
                "run oidcctl doctor as root: sshd -T reads the host keys".to_string()
            } else if e.contains("privilege separation directory") {
                "sshd -T needs /run/sshd, which exists while sshd runs: start sshd (or \
                 mkdir -m 0755 /run/sshd) and run oidcctl doctor again"
                    .to_string()
            } else {
                format!(
                    "fix what sshd reports (sshd -t -f {} checks the file); until then the \
                     sshd checks cannot run",
                    needs.file
                )
            };
            r.warn(
                S,
                format!("could not read sshd's effective configuration (sshd -T): {e}"),
                fix,
            );
        }
    }
}

/// Whether sshd's PAM `auth` stack (includes followed) runs pam_oidc.
fn sshd_uses_oidc(pam_dir: &Path) -> bool {
    match pam::load(pam_dir, "sshd", "auth", 0) {
        Ok(stack) => pam::uses_oidc(&stack),
        // A broken include: the pam check reports it; judge by the file itself.
        Err(_) => {
            std::fs::read_to_string(pam_dir.join("sshd")).is_ok_and(|t| t.contains("pam_oidc"))
        }
    }
}

/// `program -T [-f file]`'s standard output, or what went wrong (sshd's last line on stderr).
fn effective(program: &Path, file: Option<&Path>, deadline: Duration) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.arg("-T");
    if let Some(f) = file {
        cmd.arg("-f").arg(f);
    }
    let child = cmd
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("sshd-T".into())
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let output = match rx.recv_timeout(deadline) {
        Ok(done) => done,
        Err(_) => {
            // The thread has not reaped it, so the PID is still the child's.
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(format!(
                "{} -T did not answer within {} s",
                program.display(),
                deadline.as_secs()
            ));
        }
    };
    let output = output.map_err(|e| format!("{}: {e}", program.display()))?;
    let (status, out) = (output.status, String::from_utf8_lossy(&output.stdout));
    if status.success() && !out.trim().is_empty() {
        return Ok(out.into_owned());
    }
    let err = String::from_utf8_lossy(&output.stderr);
    let said = err.lines().map(str::trim).rfind(|l| !l.is_empty());
    Err(match (said, status.code()) {
        (Some(line), _) => line.chars().take(300).collect(),
        (None, Some(code)) => format!("{} -T exited with {code}", program.display()),
        (None, None) => format!("{} -T was killed by a signal", program.display()),
    })
}

/// Reads `sshd -T` output: one `keyword value...` per line, keywords in lower case.
pub(super) fn parse(text: &str) -> Settings {
    let mut s = Settings::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim();
        let yes_no = || match value {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        let word = || (value != "none").then(|| value.to_string());
        match key.to_ascii_lowercase().as_str() {
            "usepam" => s.use_pam = s.use_pam.or(yes_no()),
            "kbdinteractiveauthentication" => s.kbd_interactive = s.kbd_interactive.or(yes_no()),
            "challengeresponseauthentication" => {
                s.challenge_response = s.challenge_response.or(yes_no());
            }
            "authenticationmethods" => {
                s.authentication_methods =
                    s.authentication_methods.take().or(Some(value.to_string()));
            }
            "pubkeyauthentication" => s.pubkey = s.pubkey.or(yes_no()),
            "authorizedkeyscommand" => s.keys_command = s.keys_command.take().or(word()),
            "authorizedkeyscommanduser" => {
                s.keys_command_user = s.keys_command_user.take().or(word());
            }
            "logingracetime" => s.login_grace_time = s.login_grace_time.or(value.parse().ok()),
            "maxstartups" => {
                let n: Vec<u32> = value.split(':').filter_map(|v| v.parse().ok()).collect();
                if let [a, b, c] = n[..] {
                    s.max_startups = s.max_startups.or(Some((a, b, c)));
                }
            }
            "persourcemaxstartups" => {
                let v = if value == "none" {
                    Some(PerSource::Unlimited)
                } else {
                    value.parse().ok().map(PerSource::At)
                };
                s.per_source_max_startups = s.per_source_max_startups.or(v);
            }
            "persourcepenalties" => s.penalties_off = s.penalties_off.or(Some(value == "no")),
            _ => {}
        }
    }
    s
}

/// Judges `s` against `needs`; `exists` says whether a file is there (the AuthorizedKeysCommand).
pub(super) fn judge(r: &mut Report, s: &Settings, needs: &Needs, exists: &dyn Fn(&Path) -> bool) {
    let file = &needs.file;
    if needs.device_logins {
        judge_device_logins(r, s, file);
        judge_grace_time(r, s, needs);
        judge_startups(r, s, needs);
    }
    if needs.keys {
        judge_keys(r, s, file, exists);
    }
}

fn judge_device_logins(r: &mut Report, s: &Settings, file: &str) {
    let before = r.findings.len();
    let cannot = "pam_oidc is in sshd's PAM stack, but device-flow logins over SSH cannot work";
    if s.use_pam == Some(false) {
        r.error(
            S,
            format!("UsePAM is no: {cannot} (sshd never runs PAM)"),
            format!("set UsePAM yes in {file}, then reload sshd (systemctl reload ssh)"),
        );
    }
    if s.kbd_interactive == Some(false) {
        r.error(
            S,
            format!(
                "KbdInteractiveAuthentication is no: {cannot} (the device prompt is a \
                 keyboard-interactive prompt)"
            ),
            format!(
                "set KbdInteractiveAuthentication yes (and PasswordAuthentication no, see \
                 oidcctl(8)) in {file}, then reload sshd (systemctl reload ssh)"
            ),
        );
    } else if s.challenge_response == Some(false) {
        r.error(
            S,
            format!(
                "ChallengeResponseAuthentication is no: {cannot} (before OpenSSH 8.7 it turns \
                 keyboard-interactive off)"
            ),
            format!(
                "set ChallengeResponseAuthentication yes in {file}, then reload sshd \
                 (systemctl reload ssh)"
            ),
        );
    }
    if let Some(m) = &s.authentication_methods {
        let kbdint = m.split_whitespace().any(|list| {
            list.split(',')
                .any(|a| a.starts_with("keyboard-interactive"))
        });
        if m != "any" && !kbdint {
            r.error(
                S,
                format!("AuthenticationMethods {m} has no keyboard-interactive: {cannot}"),
                format!(
                    "add keyboard-interactive to AuthenticationMethods in {file} (e.g. \
                     AuthenticationMethods publickey keyboard-interactive), then reload sshd"
                ),
            );
        }
    }
    if r.findings.len() == before {
        r.ok(
            S,
            "sshd runs PAM with keyboard-interactive: the device prompt reaches SSH users",
        );
    }
}

fn judge_grace_time(r: &mut Report, s: &Settings, needs: &Needs) {
    let Some(grace) = s.login_grace_time else {
        return;
    };
    let timeout = needs.login_timeout.as_secs();
    // login.timeout and a minute to type, in whole minutes (6m for the default 300 s).
    let minutes = (timeout + 60).div_ceil(60);
    let file = &needs.file;
    let set = format!("set LoginGraceTime {minutes}m in {file} (login.timeout plus a minute)");
    if grace == 0 {
        r.warn(
            S,
            "LoginGraceTime is 0 (no limit): an unauthenticated client can hold a login slot \
             (a MaxStartups place) for ever",
            format!("{set}, then reload sshd"),
        );
    } else if grace < timeout {
        r.warn(
            S,
            format!(
                "LoginGraceTime {grace} s is shorter than login.timeout ({timeout} s): sshd cuts \
                 device-flow logins short, dropping a user still approving after {grace} s"
            ),
            format!("{set}, or lower login.timeout below {grace} s; then reload sshd"),
        );
    } else if grace > LONG_GRACE.max(minutes * 60) {
        r.warn(
            S,
            format!(
                "LoginGraceTime {grace} s is over 10 minutes: an unauthenticated client can \
                 hold a login slot (a MaxStartups place) that long"
            ),
            format!("{set}, then reload sshd"),
        );
    } else {
        r.ok(
            S,
            format!("LoginGraceTime {grace} s outlasts login.timeout ({timeout} s)"),
        );
    }
}

/// Only what docs/limits.md recommends changing.
fn judge_startups(r: &mut Report, s: &Settings, needs: &Needs) {
    let file = &needs.file;
    if s.max_startups == Some(DEFAULT_MAX_STARTUPS) {
        r.warn(
            S,
            "MaxStartups is the default 10:30:100: sshd starts dropping new connections once \
             10 are unauthenticated, and every SSH user approving a device login is one",
            format!("set MaxStartups 30:30:120 in {file} (see oidcctl(8)), then reload sshd"),
        );
    }
    if s.per_source_max_startups == Some(PerSource::Unlimited) {
        r.warn(
            S,
            "PerSourceMaxStartups is none: one address can fill MaxStartups with idle device \
             prompts",
            format!(
                "set PerSourceMaxStartups 4 in {file} (at most login.max_logins_per_source, {}; \
                 see oidcctl(8)), then reload sshd",
                needs.max_logins_per_source
            ),
        );
    }
    if s.penalties_off == Some(true) {
        r.warn(
            S,
            "PerSourcePenalties is no: addresses whose connections never authenticate are not \
             held off",
            format!(
                "remove PerSourcePenalties no from {file} (leave it on, see oidcctl(8)), then \
                 reload sshd"
            ),
        );
    }
}

fn judge_keys(r: &mut Report, s: &Settings, file: &str, exists: &dyn Fn(&Path) -> bool) {
    let shipped = format!(
        "AuthorizedKeysCommand {KEYS_COMMAND} %u and AuthorizedKeysCommandUser nobody in {file} \
         (README.md, Everyday access), then reload sshd"
    );
    let Some(command) = &s.keys_command else {
        r.warn(
            S,
            "claims.ssh_keys_claim is set, but sshd has no AuthorizedKeysCommand: the provider's \
             SSH keys are not used",
            format!("set {shipped}"),
        );
        return;
    };
    let before = r.findings.len();
    let mut words = command.split_whitespace();
    let program = PathBuf::from(words.next().unwrap_or_default());
    let args: Vec<&str> = words.collect();
    if program
        .file_name()
        .is_none_or(|n| n != "oidc-authorized-keys")
    {
        r.warn(
            S,
            format!(
                "AuthorizedKeysCommand runs {}, not {KEYS_COMMAND}: the provider's SSH keys \
                 are used only if it runs that",
                program.display()
            ),
            format!("set {shipped}, or make sure your command runs it with the user name"),
        );
        return;
    }
    let keys_lost = "no key from the provider is accepted";
    if args != ["%u"] {
        r.error(
            S,
            format!(
                "AuthorizedKeysCommand {command} does not pass the user name (%u) alone: \
                 oidc-authorized-keys refuses it, so {keys_lost}"
            ),
            format!(
                "set AuthorizedKeysCommand {} %u in {file}, then reload sshd",
                program.display()
            ),
        );
    }
    if !exists(&program) {
        r.error(
            S,
            format!(
                "AuthorizedKeysCommand {} does not exist: {keys_lost}",
                program.display()
            ),
            "reinstall the package (it installs /usr/libexec/oidcd/oidc-authorized-keys), or \
             fix the path",
        );
    }
    if s.keys_command_user.is_none() {
        r.error(
            S,
            format!("AuthorizedKeysCommandUser is not set: sshd does not run AuthorizedKeysCommand, so {keys_lost}"),
            format!("set AuthorizedKeysCommandUser nobody in {file}, then reload sshd"),
        );
    }
    if s.pubkey == Some(false) {
        r.warn(
            S,
            "PubkeyAuthentication is no: the provider's SSH keys are not used",
            format!("set PubkeyAuthentication yes in {file}, then reload sshd"),
        );
    }
    if r.findings.len() == before {
        r.ok(
            S,
            "sshd asks oidc-authorized-keys for the provider's SSH keys",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;

    /// `sshd -T` on Debian 12 (OpenSSH 9.2p1) with the stock sshd_config, algorithm lists
    /// left out: KbdInteractiveAuthentication no, LoginGraceTime 120, default start-up limits.
    const DEBIAN12: &str = include_str!("testdata/sshd-T-debian12.txt");

    /// The settings README.md and docs/limits.md give, as `sshd -T` prints them.
    const SHIPPED: &str = "\
usepam yes
logingracetime 360
pubkeyauthentication yes
passwordauthentication no
kbdinteractiveauthentication yes
authorizedkeyscommand /usr/libexec/oidcd/oidc-authorized-keys %u
authorizedkeyscommanduser nobody
authenticationmethods any
maxstartups 30:30:120
persourcemaxstartups 4
persourcepenalties crash:90 authfail:5 noauth:1 grace-exceeded:20 max:600 min:15 max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:permissive
";

    fn needs(device_logins: bool, keys: bool) -> Needs {
        Needs {
            device_logins,
            keys,
            login_timeout: Duration::from_secs(300),
            max_logins_per_source: 8,
            file: "/etc/ssh/sshd_config".into(),
        }
    }

    fn judged(text: &str, needs: &Needs) -> Vec<(Severity, String, String)> {
        let mut r = Report::default();
        judge(&mut r, &parse(text), needs, &|_: &Path| true);
        r.findings
            .into_iter()
            .map(|f| (f.severity, f.message, f.fix.unwrap_or_default()))
            .collect()
    }

    fn with(text: &str, key: &str, value: &str) -> String {
        text.lines()
            .map(|l| {
                if l.split_whitespace().next() == Some(key) {
                    format!("{key} {value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    /// A real Debian 12 dump is read into the settings the checks use.
    #[test]
    fn parses_a_real_debian_dump() {
        let s = parse(DEBIAN12);
        assert_eq!(
            s,
            Settings {
                use_pam: Some(true),
                kbd_interactive: Some(false),
                challenge_response: None,
                authentication_methods: Some("any".into()),
                pubkey: Some(true),
                keys_command: None,
                keys_command_user: None,
                login_grace_time: Some(120),
                max_startups: Some((10, 30, 100)),
                per_source_max_startups: Some(PerSource::Unlimited),
                penalties_off: None,
            }
        );
        assert_eq!(parse(""), Settings::default());
        assert_eq!(parse("garbage\nmaxstartups 1:2\n"), Settings::default());
    }

    /// Debian's stock sshd with pam_oidc in its stack: keyboard-interactive is off (an error),
    /// the grace time cuts device logins short, and the start-up limits are the defaults.
    #[test]
    fn stock_debian_with_pam_oidc() {
        let f = judged(DEBIAN12, &needs(true, false));
        let errors: Vec<_> = f.iter().filter(|x| x.0 == Severity::Error).collect();
        assert_eq!(errors.len(), 1, "{f:#?}");
        assert!(
            errors[0]
                .1
                .starts_with("KbdInteractiveAuthentication is no")
        );
        assert!(errors[0].2.contains("KbdInteractiveAuthentication yes"));
        let warnings: Vec<_> = f.iter().filter(|x| x.0 == Severity::Warning).collect();
        assert_eq!(warnings.len(), 3, "{f:#?}");
        assert!(warnings[0].1.contains("shorter than login.timeout (300 s)"));
        assert!(warnings[0].2.contains("LoginGraceTime 6m"));
        assert!(
            warnings[1]
                .1
                .starts_with("MaxStartups is the default 10:30:100")
        );
        assert!(warnings[1].2.contains("MaxStartups 30:30:120"));
        assert!(warnings[2].1.starts_with("PerSourceMaxStartups is none"));
        assert!(warnings[2].2.contains("PerSourceMaxStartups 4"));
    }

    /// The settings the documentation gives pass every check.
    #[test]
    fn shipped_settings_pass() {
        let f = judged(SHIPPED, &needs(true, true));
        assert!(f.iter().all(|x| x.0 == Severity::Ok), "{f:#?}");
        assert_eq!(f.len(), 3, "{f:#?}");
        // Nothing depends on sshd: nothing judged.
        assert!(judged(DEBIAN12, &needs(false, false)).is_empty());
    }

    /// UsePAM no, ChallengeResponseAuthentication no (OpenSSH before 8.7) and
    /// AuthenticationMethods without keyboard-interactive each make device logins impossible.
    #[test]
    fn what_stops_device_logins_is_an_error() {
        let error = |text: &str| {
            let f = judged(text, &needs(true, false));
            let e: Vec<_> = f.into_iter().filter(|x| x.0 == Severity::Error).collect();
            assert_eq!(e.len(), 1, "{e:#?}");
            e[0].1.clone()
        };
        assert!(error(&with(SHIPPED, "usepam", "no")).starts_with("UsePAM is no"));
        let old = format!("{SHIPPED}challengeresponseauthentication no\n");
        assert!(error(&old).starts_with("ChallengeResponseAuthentication is no"));
        let m = error(&with(
            SHIPPED,
            "authenticationmethods",
            "publickey password",
        ));
        assert!(
            m.starts_with("AuthenticationMethods publickey password has no"),
            "{m}"
        );
        let ok = with(
            SHIPPED,
            "authenticationmethods",
            "publickey,keyboard-interactive:pam",
        );
        assert!(
            judged(&ok, &needs(true, false))
                .iter()
                .all(|x| x.0 == Severity::Ok)
        );
    }

    /// LoginGraceTime: unlimited and over 10 minutes are warnings, unless login.timeout needs
    /// it; shorter than login.timeout says by how much.
    #[test]
    fn grace_time() {
        let warn = |grace: &str, timeout: u64| {
            let mut n = needs(true, false);
            n.login_timeout = Duration::from_secs(timeout);
            judged(&with(SHIPPED, "logingracetime", grace), &n)
                .into_iter()
                .find(|x| x.0 == Severity::Warning)
                .map(|x| (x.1, x.2))
        };
        assert!(warn("0", 300).unwrap().0.contains("no limit"));
        let (m, fix) = warn("3600", 300).unwrap();
        assert!(m.contains("over 10 minutes"), "{m}");
        assert!(fix.contains("LoginGraceTime 6m"), "{fix}");
        assert_eq!(warn("3600", 3540), None, "login.timeout needs it");
        let (m, fix) = warn("120", 600).unwrap();
        assert!(m.contains("LoginGraceTime 120 s is shorter than login.timeout (600 s)"));
        assert!(fix.contains("LoginGraceTime 11m"), "{fix}");
        assert_eq!(warn("600", 300), None);
    }

    /// With an SSH keys claim, AuthorizedKeysCommand must run oidc-authorized-keys with %u as
    /// a user; missing is a warning, broken an error.
    #[test]
    fn keys_command() {
        let worst = |text: &str| {
            let f = judged(text, &needs(false, true));
            f.into_iter().max_by_key(|x| x.0).unwrap()
        };
        let none = worst(&with(SHIPPED, "authorizedkeyscommand", "none"));
        assert_eq!(none.0, Severity::Warning);
        assert!(none.2.contains(&format!("{KEYS_COMMAND} %u")));
        let other = worst(&with(
            SHIPPED,
            "authorizedkeyscommand",
            "/usr/bin/sss_ssh_authorizedkeys %u",
        ));
        assert_eq!(other.0, Severity::Warning);
        let uid = worst(&with(
            SHIPPED,
            "authorizedkeyscommand",
            &format!("{KEYS_COMMAND} %U"),
        ));
        assert_eq!(uid.0, Severity::Error);
        assert!(uid.1.contains("does not pass the user name"), "{}", uid.1);
        let no_user = worst(&with(SHIPPED, "authorizedkeyscommanduser", "none"));
        assert_eq!(no_user.0, Severity::Error);
        assert!(
            no_user
                .1
                .starts_with("AuthorizedKeysCommandUser is not set")
        );

        let mut r = Report::default();
        judge(&mut r, &parse(SHIPPED), &needs(false, true), &|_: &Path| {
            false
        });
        assert_eq!(r.count(Severity::Error), 1, "{:#?}", r.findings);
    }

    /// sshd's complaint is passed on; a sshd that never answers is cut off at the deadline.
    #[test]
    fn running_sshd_fails_clearly() {
        let dir = std::env::temp_dir().join(format!("oidcctl-sshd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let fails = script(
            "fails",
            "echo 'Missing privilege separation directory: /run/sshd' >&2; exit 255",
        );
        assert_eq!(
            effective(&fails, None, SSHD_DEADLINE),
            Err("Missing privilege separation directory: /run/sshd".into())
        );
        let dumps = script("dumps", "[ \"$1 $2 $3\" = '-T -f /x' ] && echo 'usepam no'");
        assert_eq!(
            effective(&dumps, Some(Path::new("/x")), SSHD_DEADLINE),
            Ok("usepam no\n".into())
        );
        let hangs = script("hangs", "exec sleep 30");
        let e = effective(&hangs, None, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not answer within"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
