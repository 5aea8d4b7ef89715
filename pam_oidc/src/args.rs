//! Module options, as written after the module's name in a PAM stack line.
//!
//! | Option | Meaning |
//! |---|---|
//! | `debug` | log every step to syslog (`LOG_AUTHPRIV`, level debug) |
//! | `qr` | always put the QR code in the prompt |
//! | `noqr` | never put the QR code in the prompt (URL and code are always shown as text) |
//! | (neither) | the QR code everywhere but in sshd's keyboard-interactive prompts (`PAM_TTY` is `ssh`, or no tty and a remote host), which OpenSSH's client shows with every non-ASCII byte escaped |
//! | `timeout=SECONDS` | how long `auth` waits for approval after the prompt, 10 to 3600, default 300 |
//! | `ignore_unknown_user` | answer `PAM_IGNORE` instead of `PAM_USER_UNKNOWN` for users the daemon does not manage (`auth` and `account`) |
//!
//! A PAM stack line is not a configuration file the module can refuse: a module that failed on
//! a typo would lock users out. So a bad option never fails a call; it is logged at `LOG_ERR` on
//! every call (never silently), and the module goes on with the documented choice: unknown
//! options are ignored, a `timeout=` out of range is clamped into it, and one that is not a
//! number keeps the default.

use std::ffi::CStr;
use std::time::Duration;

/// The default of `timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The smallest `timeout=` accepted (larger values are clamped to it).
pub const MIN_TIMEOUT_SECS: u64 = 10;
/// The largest `timeout=` accepted.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// The options of one module line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `debug`: log each step.
    pub debug: bool,
    /// `qr`, `noqr`, or neither: whether the prompt shows the QR code.
    pub qr: Qr,
    /// `timeout=`: the longest wait for approval after the prompt was shown.
    pub timeout: Duration,
    /// `ignore_unknown_user`: `PAM_IGNORE` instead of `PAM_USER_UNKNOWN`.
    pub ignore_unknown_user: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            debug: false,
            qr: Qr::Auto,
            timeout: DEFAULT_TIMEOUT,
            ignore_unknown_user: false,
        }
    }
}

impl Options {
    /// Parses the module's arguments. The second value lists, one line each, what was wrong
    /// with them and what the module does instead; the caller logs each line.
    pub fn parse(args: &[&CStr]) -> (Self, Vec<String>) {
        let mut options = Self::default();
        let mut problems = Vec::new();
        for arg in args {
            let Ok(arg) = arg.to_str() else {
                problems.push(format!("ignoring option {arg:?}: not UTF-8"));
                continue;
            };
            match arg.split_once('=') {
                None if arg == "debug" => options.debug = true,
                None if arg == "noqr" => options.qr = Qr::Never,
                None if arg == "qr" => options.qr = Qr::Always,
                None if arg == "ignore_unknown_user" => options.ignore_unknown_user = true,
                Some(("timeout", value)) => match parse_timeout(value) {
                    Ok(timeout) => options.timeout = timeout,
                    Err((timeout, why)) => {
                        options.timeout = timeout;
                        problems.push(why);
                    }
                },
                _ => problems.push(format!("ignoring unknown option {:?}", arg)),
            }
        }
        (options, problems)
    }
}

/// Whether the prompt shows the QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qr {
    /// `qr`: always.
    Always,
    /// `noqr`: never.
    Never,
    /// Neither: on terminals (console, su, sudo, pamtester), not over sshd's
    /// keyboard-interactive method.
    Auto,
}

impl Qr {
    /// Whether to show the QR code to a user on `tty` (PAM_TTY) from `rhost` (PAM_RHOST).
    /// sshd sets PAM_TTY to `ssh` for its authentication; OpenSSH's client (and most others)
    /// escapes non-ASCII prompt text there, turning the code into screens of `\342\226\210`.
    /// A console, su and sudo (also inside an SSH session) write to a real terminal, which
    /// draws it.
    pub fn show(self, tty: Option<&str>, rhost: Option<&str>) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => match tty {
                Some(t) => t != "ssh",
                None => rhost.is_none(),
            },
        }
    }
}

/// `timeout=` in seconds: a number in range, or the value used instead and why.
fn parse_timeout(value: &str) -> Result<Duration, (Duration, String)> {
    let Ok(secs) = value.parse::<u64>() else {
        return Err((
            DEFAULT_TIMEOUT,
            format!(
                "timeout={value:?} is not a number of seconds: using the default {}",
                DEFAULT_TIMEOUT.as_secs()
            ),
        ));
    };
    let clamped = secs.clamp(MIN_TIMEOUT_SECS, MAX_TIMEOUT_SECS);
    if clamped == secs {
        Ok(Duration::from_secs(secs))
    } else {
        Err((
            Duration::from_secs(clamped),
            format!(
                "timeout={secs} is outside {MIN_TIMEOUT_SECS}..={MAX_TIMEOUT_SECS}: using {clamped}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    fn parse(args: &[&str]) -> (Options, Vec<String>) {
        let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        let borrowed: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
        Options::parse(&borrowed)
    }

    /// No arguments give the documented defaults and no complaint.
    #[test]
    fn defaults() {
        let (o, problems) = parse(&[]);
        assert_eq!(o, Options::default());
        assert_eq!(o.timeout, Duration::from_secs(300));
        assert!(!o.debug && o.qr == Qr::Auto && !o.ignore_unknown_user);
        assert!(problems.is_empty());
    }

    /// Every known option is understood.
    #[test]
    fn known_options() {
        let (o, problems) = parse(&["debug", "noqr", "timeout=120", "ignore_unknown_user"]);
        assert_eq!(
            o,
            Options {
                debug: true,
                qr: Qr::Never,
                timeout: Duration::from_secs(120),
                ignore_unknown_user: true,
            }
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// Unknown options are reported and ignored; the known ones around them still apply.
    #[test]
    fn unknown_options_are_ignored() {
        let (o, problems) = parse(&["noqr", "use_first_pass", "debug=1", "NOQR", "timeout"]);
        assert_eq!(
            o,
            Options {
                qr: Qr::Never,
                ..Options::default()
            }
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("use_first_pass"), "{problems:?}");
    }

    /// `qr` forces the QR code, `noqr` leaves it out, the last one written wins; by default it
    /// is left out only for sshd (PAM_TTY "ssh", or no tty and a remote host).
    #[test]
    fn qr_choice() {
        assert_eq!(parse(&["qr"]).0.qr, Qr::Always);
        assert_eq!(parse(&["qr", "noqr"]).0.qr, Qr::Never);
        let auto = Qr::Auto;
        assert!(!auto.show(Some("ssh"), Some("192.0.2.7")));
        assert!(!auto.show(None, Some("192.0.2.7")));
        assert!(auto.show(Some("/dev/pts/3"), Some("192.0.2.7")));
        assert!(auto.show(Some("/dev/tty1"), None));
        assert!(auto.show(None, None));
        assert!(Qr::Always.show(Some("ssh"), None));
        assert!(!Qr::Never.show(Some("/dev/tty1"), None));
    }

    /// A timeout out of range is clamped into 10..=3600 and reported; one that is not a number
    /// keeps the default and is reported.
    #[test]
    fn bad_timeouts() {
        for (arg, secs) in [
            ("timeout=5", 10),
            ("timeout=0", 10),
            ("timeout=99999", 3600),
            ("timeout=abc", 300),
            ("timeout=-1", 300),
            ("timeout=", 300),
            ("timeout=1.5", 300),
        ] {
            let (o, problems) = parse(&[arg]);
            assert_eq!(o.timeout, Duration::from_secs(secs), "{arg}");
            assert_eq!(problems.len(), 1, "{arg}");
        }
        for (arg, secs) in [("timeout=10", 10), ("timeout=3600", 3600)] {
            let (o, problems) = parse(&[arg]);
            assert_eq!(o.timeout, Duration::from_secs(secs), "{arg}");
            assert!(problems.is_empty(), "{arg}");
        }
    }

    /// An argument that is not UTF-8 is reported, not a failure.
    #[test]
    fn non_utf8_argument() {
        let odd = CString::new(vec![0xffu8, b'x']).unwrap();
        let (o, problems) = Options::parse(&[odd.as_c_str(), c"debug"]);
        assert!(o.debug);
        assert_eq!(problems.len(), 1);
    }
}
