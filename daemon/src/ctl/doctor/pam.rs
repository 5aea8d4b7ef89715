//! PAM stacks, run the way Linux-PAM runs them, to answer one question for every service that
//! uses pam_oidc: whatever pam_oidc answers (daemon down, module missing, a bug), do root and
//! local users still get in with their local password through pam_unix?
//!
//! The stacks are read from the PAM directory with `@include`, `include` and `substack`
//! expanded, and run with assumed module results: pam_unix accepts the password, pam_deny
//! refuses, pam_permit accepts, pam_succeed_if and pam_usertype are evaluated for the user,
//! network modules (pam_sss, pam_ldap, pam_krb5, pam_winbind, pam_systemd_home) do not know
//! local users, pam_rootok is never counted on (su runs as the caller), and every other
//! module succeeds.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use super::{Host, Report};

const P: &str = "pam";
const MAX_DEPTH: usize = 16;

/// What pam_oidc can return in `auth` for root or a local user when something is wrong (or
/// it is not installed, `module_unknown`). pam_oidc/README.md lists its codes.
const AUTH_CODES: &[&str] = &[
    "user_unknown",
    "ignore",
    "authinfo_unavail",
    "auth_err",
    "conv_err",
    "abort",
    "module_unknown",
];
/// What pam_oidc returns in `account` for root (never asked), a local account or a daemon
/// that is down.
const ACCOUNT_CODES: &[&str] = &["user_unknown", "ignore", "authinfo_unavail"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    Jump(usize),
}

#[derive(Debug, Clone)]
enum Control {
    /// `[value=action ...]`, or a keyword (required...) turned into it.
    Actions {
        map: Vec<(String, Action)>,
        default: Action,
    },
    /// `substack FILE`: its own scope for done and die.
    Substack(Vec<Entry>),
}

/// One module line of a stack.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    control: Control,
    /// The module's file name without directory and `.so`: `pam_unix`.
    module: String,
    args: Vec<String>,
}

/// Who logs in.
#[derive(Debug, Clone, Copy)]
struct Who {
    label: &'static str,
    user: &'static str,
    uid: u32,
}

const ROOT: Who = Who {
    label: "root",
    user: "root",
    uid: 0,
};
const LOCAL: Who = Who {
    label: "a local user",
    user: "localuser",
    uid: 1000,
};

/// Checks that pam_oidc is installed where stacks use it, and that no stack using it lets
/// root's or a local user's login depend on it.
pub(super) fn check(r: &mut Report, host: &Host) {
    let dir = &host.pam_dir;
    let mut services: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_service_name(n))
            .collect(),
        Err(e) => {
            r.warn(
                P,
                format!("{}: {e}", dir.display()),
                "check the PAM configuration",
            );
            return;
        }
    };
    services.sort();
    let mut users = Vec::new();
    // (who, stack, what happens) -> the services where it happens, reported once.
    let mut lockouts: Vec<(&'static str, &'static str, String, Vec<String>)> = Vec::new();
    for service in &services {
        let (auth, account) = match (
            load(dir, service, "auth", 0),
            load(dir, service, "account", 0),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                if std::fs::read_to_string(dir.join(service)).is_ok_and(|t| t.contains("pam_oidc"))
                {
                    r.warn(
                        P,
                        format!("{service}: {e}"),
                        "fix the include; until then the check cannot follow the stack",
                    );
                }
                continue;
            }
        };
        if !uses_oidc(&auth) && !uses_oidc(&account) {
            continue;
        }
        users.push(service.clone());
        for who in [ROOT, LOCAL] {
            let found = [
                ("auth", &auth, AUTH_CODES),
                ("account", &account, ACCOUNT_CODES),
            ]
            .into_iter()
            .filter(|(_, stack, _)| uses_oidc(stack))
            .filter_map(|(kind, stack, codes)| Some((kind, lockout(stack, kind, codes, who)?)));
            for (kind, msg) in found {
                match lockouts
                    .iter_mut()
                    .find(|l| l.0 == who.label && l.1 == kind && l.2 == msg)
                {
                    Some(l) => l.3.push(service.clone()),
                    None => lockouts.push((who.label, kind, msg, vec![service.clone()])),
                }
            }
        }
    }
    let mut failed = !lockouts.is_empty();
    for (who, kind, msg, where_) in lockouts {
        let fix = if kind == "auth" {
            "keep pam_unix after pam_oidc and give pam_oidc's auth line the control \
             [success=end default=ignore], after a pam_succeed_if user = root skip (the shipped \
             profile: pam-auth-update --enable oidc); see pam_oidc(8)"
        } else {
            "give pam_oidc's account line user_unknown=ignore authinfo_unavail=ignore (as the \
             shipped profile does); see pam_oidc(8)"
        };
        r.error(P, format!("{}: {who} {msg}", where_.join(", ")), fix);
    }
    if users.is_empty() {
        r.warn(
            P,
            "no PAM service uses pam_oidc.so: logins through oidcd are off",
            "once the other checks pass: pam-auth-update --enable oidc (Debian, Ubuntu); on \
             other systems see pam_oidc(8)",
        );
        return;
    }
    match host.find_lib("security/pam_oidc.so") {
        Some(_) => {}
        None => {
            failed = true;
            r.error(
                P,
                format!(
                    "pam_oidc.so is not installed, but {} use it",
                    users.join(", ")
                ),
                "reinstall the package, or remove pam_oidc from those stacks \
                 (pam-auth-update --disable oidc)",
            );
        }
    }
    if !failed {
        r.ok(
            P,
            format!(
                "pam_oidc is in {}: root and local users keep their local password whatever it \
                 answers",
                users.join(", ")
            ),
        );
    }
}

/// Service files, not editor or package-manager leftovers (`sshd.dpkg-old`, `login~`).
fn is_service_name(n: &str) -> bool {
    !n.starts_with('.') && !n.contains('.') && !n.ends_with('~')
}

pub(super) fn uses_oidc(stack: &[Entry]) -> bool {
    stack.iter().any(|e| match &e.control {
        Control::Substack(s) => uses_oidc(s),
        Control::Actions { .. } => e.module == "pam_oidc",
    })
}

/// Runs `stack` for `who` with pam_oidc answering each of `codes`; describes the first answer
/// that keeps `who` out (or lets them in without pam_unix), or `None`.
fn lockout(stack: &[Entry], kind: &str, codes: &[&'static str], who: Who) -> Option<String> {
    let mut bad = Vec::new();
    for &code in codes {
        let unix_ran = Cell::new(false);
        let result = run(stack, &|e: &Entry| {
            if e.module == "pam_unix" {
                unix_ran.set(true);
            }
            outcome(e, who, code)
        });
        if result != "success" || !unix_ran.get() {
            bad.push((code, result, unix_ran.get()));
        }
    }
    let (code, result, unix_ran) = *bad.first()?;
    let upper = |s: &str| format!("PAM_{}", s.to_ascii_uppercase());
    Some(if !unix_ran && result == "success" && kind == "auth" {
        format!(
            "gets in without pam_unix when pam_oidc returns {}: no local password fallback",
            upper(code)
        )
    } else if bad.len() == codes.len() {
        format!(
            "cannot pass the {kind} stack whatever pam_oidc returns (ends in {})",
            upper(result)
        )
    } else {
        format!(
            "would be refused by the {kind} stack ({}) when pam_oidc returns {}",
            upper(result),
            bad.iter()
                .map(|b| upper(b.0))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The assumed result of one module for `who`, pam_oidc answering `oidc`.
fn outcome(e: &Entry, who: Who, oidc: &'static str) -> &'static str {
    let has = |a: &str| e.args.iter().any(|x| x == a);
    let regular = who.uid >= 1000 && who.uid != 65534;
    match e.module.as_str() {
        "pam_oidc" => oidc,
        "pam_deny" | "pam_rootok" => "auth_err",
        "pam_succeed_if" if !succeed_if(&e.args, who) => "auth_err",
        "pam_usertype" if (has("isregular") && !regular) || (has("issystem") && regular) => {
            "auth_err"
        }
        "pam_sss" | "pam_ldap" | "pam_krb5" | "pam_winbind" | "pam_systemd_home" => "user_unknown",
        _ => "success",
    }
}

/// pam_succeed_if's conditions (all must hold) for `who`. Fields other than user, uid and gid
/// (the user's private group) are taken as true.
fn succeed_if(args: &[String], who: Who) -> bool {
    const OPTIONS: &[&str] = &[
        "debug",
        "use_uid",
        "quiet",
        "quiet_fail",
        "quiet_success",
        "audit",
    ];
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !OPTIONS.contains(a))
        .collect();
    words.chunks(3).all(|c| match c {
        [field, op, value] => condition(field, op, value, who).unwrap_or(true),
        _ => true,
    })
}

fn condition(field: &str, op: &str, value: &str, who: Who) -> Option<bool> {
    match field {
        "user" => match op {
            "=" => Some(who.user == value),
            "!=" => Some(who.user != value),
            "in" => Some(value.split(':').any(|v| v == who.user)),
            "notin" => Some(!value.split(':').any(|v| v == who.user)),
            _ => None,
        },
        "uid" | "gid" => {
            let n: u64 = value.parse().ok()?;
            let id = u64::from(who.uid);
            match op {
                "<" | "lt" => Some(id < n),
                "<=" | "le" => Some(id <= n),
                "eq" => Some(id == n),
                ">=" | "ge" => Some(id >= n),
                ">" | "gt" => Some(id > n),
                "ne" => Some(id != n),
                _ => None,
            }
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impression {
    Undefined,
    Positive,
    Negative,
}

struct State {
    impression: Impression,
    status: &'static str,
}

/// Runs a stack; returns `"success"` or the failing code (Linux-PAM's `_pam_dispatch_aux`).
fn run(stack: &[Entry], result: &dyn Fn(&Entry) -> &'static str) -> &'static str {
    let mut st = State {
        impression: Impression::Undefined,
        status: "must_fail",
    };
    exec(stack, result, &mut st);
    match (st.impression, st.status) {
        (Impression::Positive, "success") => "success",
        (_, "success") => "must_fail",
        (_, s) => s,
    }
}

/// Runs `stack` into `st`; true when a done or die action ended it.
fn exec(stack: &[Entry], result: &dyn Fn(&Entry) -> &'static str, st: &mut State) -> bool {
    let required = [
        ("success".to_string(), Action::Ok),
        ("ignore".to_string(), Action::Ignore),
    ];
    let mut i = 0;
    while i < stack.len() {
        let e = &stack[i];
        i += 1;
        let (code, action) = match &e.control {
            Control::Substack(sub) => {
                // done and die end only the substack; its result counts like a required line.
                let mut inner = State {
                    impression: Impression::Undefined,
                    status: "must_fail",
                };
                exec(sub, result, &mut inner);
                let code = match inner.impression {
                    Impression::Undefined => continue,
                    Impression::Positive => inner.status,
                    Impression::Negative => inner.status,
                };
                (code, lookup(&required, Action::Bad, code))
            }
            Control::Actions { map, default } => {
                let code = result(e);
                (code, lookup(map, *default, code))
            }
        };
        match action {
            Action::Reset => {
                st.impression = Impression::Undefined;
                st.status = "must_fail";
            }
            Action::Ok | Action::Done => {
                let open = st.impression == Impression::Undefined
                    || (st.impression == Impression::Positive && st.status == "success");
                if open && code != "ignore" {
                    st.impression = Impression::Positive;
                    st.status = code;
                }
                if action == Action::Done && st.impression != Impression::Negative {
                    return true;
                }
            }
            Action::Bad | Action::Die => {
                if st.impression != Impression::Negative {
                    st.impression = Impression::Negative;
                    st.status = if code == "success" { "must_fail" } else { code };
                }
                if action == Action::Die {
                    return true;
                }
            }
            Action::Ignore => {}
            Action::Jump(n) => i += n,
        }
    }
    false
}

fn lookup(map: &[(String, Action)], default: Action, code: &str) -> Action {
    map.iter()
        .find(|(k, _)| k == code)
        .map_or(default, |(_, a)| *a)
}

/// The `kind` lines (auth, account) of service `name` in `dir`, includes expanded.
pub(super) fn load(dir: &Path, name: &str, kind: &str, depth: usize) -> Result<Vec<Entry>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{name}: includes nested too deeply"));
    }
    let path = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        dir.join(name)
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in logical_lines(&text) {
        let toks = tokens(&line);
        let Some(first) = toks.first() else { continue };
        if first == "@include" {
            if let Some(f) = toks.get(1) {
                out.extend(load(dir, f, kind, depth + 1)?);
            }
            continue;
        }
        if !first.trim_start_matches('-').eq_ignore_ascii_case(kind) || toks.len() < 3 {
            continue;
        }
        let entry = match toks[1].as_str() {
            "include" => {
                out.extend(load(dir, &toks[2], kind, depth + 1)?);
                continue;
            }
            "substack" => Entry {
                control: Control::Substack(load(dir, &toks[2], kind, depth + 1)?),
                module: String::new(),
                args: Vec::new(),
            },
            c => Entry {
                control: parse_control(c),
                module: module_name(&toks[2]),
                args: toks[3..].to_vec(),
            },
        };
        out.push(entry);
    }
    Ok(out)
}

/// Lines with backslash continuations joined and `#` comments removed.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        if let Some(head) = raw.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(raw);
        let line = cur.split('#').next().unwrap_or("").trim().to_owned();
        if !line.is_empty() {
            out.push(line);
        }
        cur.clear();
    }
    out
}

/// Words, with a `[...]` group (which may hold blanks) as one word.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    out
}

fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.strip_suffix(".so").unwrap_or(base).to_owned()
}

/// A control field as Linux-PAM reads it; an unknown keyword fails the line, as there.
fn parse_control(c: &str) -> Control {
    let pairs = |v: &[(&str, Action)]| v.iter().map(|(k, a)| ((*k).to_owned(), *a)).collect();
    let (map, default) = match c {
        "required" => (
            pairs(&[
                ("success", Action::Ok),
                ("new_authtok_reqd", Action::Ok),
                ("ignore", Action::Ignore),
            ]),
            Action::Bad,
        ),
        "requisite" => (
            pairs(&[
                ("success", Action::Ok),
                ("new_authtok_reqd", Action::Ok),
                ("ignore", Action::Ignore),
            ]),
            Action::Die,
        ),
        "sufficient" => (
            pairs(&[
                ("success", Action::Done),
                ("new_authtok_reqd", Action::Done),
            ]),
            Action::Ignore,
        ),
        "optional" => (
            pairs(&[("success", Action::Ok), ("new_authtok_reqd", Action::Ok)]),
            Action::Ignore,
        ),
        _ => {
            let inner = c.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
            let mut map = Vec::new();
            let mut default = Action::Bad;
            for item in inner.unwrap_or("").split_whitespace() {
                let Some((k, v)) = item.split_once('=') else {
                    continue;
                };
                let action = match v.to_ascii_lowercase().as_str() {
                    "ignore" => Action::Ignore,
                    "ok" => Action::Ok,
                    "done" => Action::Done,
                    "bad" => Action::Bad,
                    "die" => Action::Die,
                    "reset" => Action::Reset,
                    n => match n.parse() {
                        Ok(n) => Action::Jump(n),
                        Err(_) => Action::Bad,
                    },
                };
                let k = k.to_ascii_lowercase();
                if k == "default" {
                    default = action;
                } else {
                    map.push((k, action));
                }
            }
            (map, default)
        }
    };
    Control::Actions { map, default }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;

    const DEBIAN_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
";
    /// common-auth as pam-auth-update writes it with the shipped oidc profile enabled.
    const PROFILE_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_succeed_if.so quiet user = root
auth\t[success=2 default=ignore]\tpam_oidc.so
auth\t[success=1 default=ignore]\tpam_unix.so nullok try_first_pass
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
";
    const PROFILE_ACCOUNT: &str = "\
account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so
account\trequisite\t\t\tpam_deny.so
account\trequired\t\t\tpam_permit.so
account\t[success=ok new_authtok_reqd=done ignore=ignore user_unknown=ignore authinfo_unavail=ignore default=bad]\tpam_oidc.so
";

    fn pam_dir(files: &[(&str, &str)]) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oidcctl-pam-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    fn findings(files: &[(&str, &str)]) -> Vec<(Severity, String)> {
        let dir = pam_dir(files);
        let lib = PathBuf::from(format!("{}-lib", dir.display()));
        std::fs::create_dir_all(lib.join("security")).unwrap();
        std::fs::write(lib.join("security/pam_oidc.so"), b"").unwrap();
        let host = Host {
            nsswitch: dir.join("nsswitch.conf"),
            pam_dir: dir.clone(),
            lib_dirs: vec![lib.clone()],
        };
        let mut r = Report::default();
        check(&mut r, &host);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&lib);
        r.findings
            .into_iter()
            .map(|f| (f.severity, f.message))
            .collect()
    }

    /// Debian's stock stack and the stack the shipped profile produces both let root and local
    /// users in whatever pam_oidc answers.
    #[test]
    fn shipped_profile_keeps_local_logins() {
        let stack = |t: &str| {
            let d = pam_dir(&[("x", t)]);
            let s = load(&d, "x", "auth", 0).unwrap();
            let _ = std::fs::remove_dir_all(d);
            s
        };
        for who in [ROOT, LOCAL] {
            assert_eq!(lockout(&stack(DEBIAN_AUTH), "auth", AUTH_CODES, who), None);
            assert_eq!(lockout(&stack(PROFILE_AUTH), "auth", AUTH_CODES, who), None);
        }
        let f = findings(&[
            ("common-auth", PROFILE_AUTH),
            ("common-account", PROFILE_ACCOUNT),
            ("login", "@include common-auth\n@include common-account\n"),
            (
                "sshd",
                "# comment\n@include common-auth\naccount include common-account\n",
            ),
        ]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Severity::Ok);
        assert!(
            f[0].1
                .starts_with("pam_oidc is in common-account, common-auth, login, sshd:")
        );
    }

    /// pam_oidc as `required` (or `requisite`) locks everyone out when the daemon is down.
    #[test]
    fn required_pam_oidc_is_an_error() {
        let auth = "auth required pam_oidc.so\nauth required pam_unix.so\n";
        let f = findings(&[("login", auth)]);
        let errors: Vec<_> = f.iter().filter(|x| x.0 == Severity::Error).collect();
        assert_eq!(errors.len(), 2, "{f:?}");
        assert!(
            errors[0].1.contains("root would be refused"),
            "{}",
            errors[0].1
        );
        assert!(errors[0].1.contains("PAM_AUTHINFO_UNAVAIL"));

        let f = findings(&[(
            "login",
            "auth sufficient pam_oidc.so\nauth required pam_unix.so\n",
        )]);
        assert_eq!(f[0].0, Severity::Ok, "{f:?}");
    }

    /// An account line that treats the daemon being down as failure locks local users out.
    #[test]
    fn account_default_bad_on_unavail_is_an_error() {
        let f = findings(&[(
            "login",
            "auth required pam_unix.so\naccount required pam_unix.so\naccount [success=ok user_unknown=ignore default=bad] pam_oidc.so\n",
        )]);
        assert!(
            f.iter()
                .any(|x| x.0 == Severity::Error && x.1.contains("PAM_AUTHINFO_UNAVAIL")),
            "{f:?}"
        );
    }

    /// No stack using pam_oidc is a warning; the check follows substacks and skips leftovers.
    #[test]
    fn unused_and_substack() {
        let f = findings(&[
            ("login", DEBIAN_AUTH),
            ("sshd.dpkg-old", "auth required pam_oidc.so\n"),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, Severity::Warning);

        let f = findings(&[
            (
                "password-auth",
                "auth required pam_oidc.so\nauth sufficient pam_unix.so\nauth required pam_deny.so\n",
            ),
            (
                "sshd",
                "auth substack password-auth\nauth include postlogin\n",
            ),
            ("postlogin", "auth optional pam_permit.so\n"),
        ]);
        assert!(
            f.iter()
                .any(|x| x.0 == Severity::Error && x.1.starts_with("password-auth, sshd: root")),
            "{f:?}"
        );
    }

    /// pam_succeed_if's user and uid conditions are evaluated for the simulated user.
    #[test]
    fn succeed_if_conditions() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert!(succeed_if(&args("quiet user = root"), ROOT));
        assert!(!succeed_if(&args("quiet user = root"), LOCAL));
        assert!(succeed_if(&args("uid >= 1000 quiet_success"), LOCAL));
        assert!(!succeed_if(&args("uid >= 1000"), ROOT));
        assert!(succeed_if(&args("user in root:admin uid eq 0"), ROOT));
        assert!(succeed_if(&args("service = sshd"), ROOT));
    }
}
