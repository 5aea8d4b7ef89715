//! nsswitch.conf: `oidc` on the passwd and group lines (and initgroups, if the file has one),
//! always after `files`, so local accounts never depend on oidcd; and the module installed.

use std::path::Path;

use super::{Host, NSSWITCH_HELPER, Report};

const N: &str = "nss";

/// One source of a database line, with its `[STATUS=action]` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Source {
    /// `files`, `systemd`, `oidc`...
    pub name: String,
    /// `NOTFOUND=return`, `!UNAVAIL=continue`..., as written.
    pub actions: Vec<String>,
}

impl Source {
    /// Whether a `NOTFOUND=return` item ends the lookup after this source for a name it does
    /// not know, so later sources are never asked about it.
    fn returns_on_notfound(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("notfound=return"))
    }
}

/// The sources of every line for `db` (`passwd:`, `group:`...), comments removed, in file order.
pub(super) fn lines_for(text: &str, db: &str) -> Vec<Vec<Source>> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let (name, rest) = line.split_once(':')?;
            (name.trim() == db).then(|| parse_sources(rest))
        })
        .collect()
}

/// Splits `files [NOTFOUND=return] systemd oidc` into sources with their action items.
pub(super) fn parse_sources(body: &str) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (group, after) = inner.split_once(']').unwrap_or((inner, ""));
            if let Some(last) = out.last_mut() {
                last.actions
                    .extend(group.split_whitespace().map(str::to_owned));
            }
            rest = after.trim_start();
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '[')
                .unwrap_or(rest.len());
            out.push(Source {
                name: rest[..end].to_owned(),
                actions: Vec::new(),
            });
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// Checks `host.nsswitch` and that libnss_oidc.so.2 is installed.
pub(super) fn check(r: &mut Report, host: &Host) {
    let path = &host.nsswitch;
    let shown = path.display();
    let add_fix = if Path::new(NSSWITCH_HELPER).exists() {
        format!("{NSSWITCH_HELPER} add (puts oidc right after files, or after files systemd)")
    } else {
        format!("add oidc after files (and systemd) on the passwd and group lines of {shown}")
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.error(
                N,
                format!("{shown}: {e}: glibc then uses files only, so oidcd's users are unknown"),
                format!(
                    "create {shown} with the lines \"passwd: files oidc\" and \"group: files oidc\""
                ),
            );
            return;
        }
    };
    let mut names_oidc = false;
    let mut summary = Vec::new();
    let mut bad = false;
    for db in ["passwd", "group", "initgroups"] {
        let lines = lines_for(&text, db);
        if lines.is_empty() && db != "initgroups" {
            r.error(
                N,
                format!("{shown} has no {db} line: glibc uses files only"),
                add_fix.clone(),
            );
            bad = true;
        }
        for sources in &lines {
            let oidc = sources.iter().position(|s| s.name == "oidc");
            let files = sources
                .iter()
                .position(|s| s.name == "files" || s.name == "compat");
            let shown_line = sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let Some(o) = oidc else {
                if db == "initgroups" {
                    r.warn(
                        N,
                        format!("initgroups: {shown_line} does not name oidc: users get no supplementary groups from oidcd"),
                        add_fix.clone(),
                    );
                } else {
                    r.error(
                        N,
                        format!("{db}: {shown_line} does not name oidc: oidcd's users and groups are unknown to the system"),
                        add_fix.clone(),
                    );
                    bad = true;
                }
                continue;
            };
            names_oidc = true;
            match files {
                Some(f) if f < o => {}
                _ => {
                    r.error(
                        N,
                        format!("{db}: {shown_line}: oidc is not after files, so local accounts (root too) would wait on oidcd and could be shadowed by it"),
                        format!("edit {shown}: put oidc after files (and systemd)"),
                    );
                    bad = true;
                    continue;
                }
            }
            if let Some(s) = sources[..o].iter().find(|s| s.returns_on_notfound()) {
                r.warn(
                    N,
                    format!("{db}: {} [NOTFOUND=return] comes before oidc: names it does not know never reach oidcd", s.name),
                    format!("edit {shown}: remove the [NOTFOUND=return] or move oidc before it (but after files)"),
                );
            }
            summary.push(format!("{db}: {shown_line}"));
        }
    }
    for db in ["shadow", "gshadow"] {
        if lines_for(&text, db)
            .iter()
            .any(|l| l.iter().any(|s| s.name == "oidc"))
        {
            r.warn(
                N,
                format!("{db} names oidc, but oidcd serves no {db} entries"),
                format!("edit {shown}: remove oidc from the {db} line"),
            );
        }
    }
    if names_oidc {
        match host.find_lib("libnss_oidc.so.2") {
            Some(lib) => summary.push(format!("module {}", lib.display())),
            None => {
                r.error(
                    N,
                    "libnss_oidc.so.2 is not installed: glibc skips the oidc source silently",
                    "reinstall the package (apt install --reinstall oidcd, or dnf reinstall oidcd)",
                );
                bad = true;
            }
        }
    }
    if !bad {
        r.ok(N, summary.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;

    fn host_with(text: &str) -> (Host, std::path::PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oidcctl-nss-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("lib/libnss_oidc.so.2"), b"").unwrap();
        std::fs::write(dir.join("nsswitch.conf"), text).unwrap();
        let host = Host {
            nsswitch: dir.join("nsswitch.conf"),
            pam_dir: dir.join("pam.d"),
            lib_dirs: vec![dir.join("lib")],
        };
        (host, dir)
    }

    fn severities(text: &str) -> Vec<Severity> {
        let (host, dir) = host_with(text);
        let mut r = Report::default();
        check(&mut r, &host);
        let _ = std::fs::remove_dir_all(dir);
        r.findings.iter().map(|f| f.severity).collect()
    }

    /// Sources and their bracketed actions are split the way glibc reads them.
    #[test]
    fn sources_parse_with_actions() {
        let s = parse_sources(
            " files [NOTFOUND=return  UNAVAIL=continue] systemd oidc[!UNAVAIL=return]",
        );
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["files", "systemd", "oidc"]);
        assert_eq!(s[0].actions, ["NOTFOUND=return", "UNAVAIL=continue"]);
        assert_eq!(s[2].actions, ["!UNAVAIL=return"]);
        assert!(s[0].returns_on_notfound());
        assert_eq!(
            lines_for("# passwd: oidc\npasswd: files # oidc\n", "passwd").len(),
            1
        );
        assert_eq!(lines_for("passwd: files # oidc\n", "passwd")[0].len(), 1);
    }

    /// The package's lines pass; missing oidc, oidc before files, and oidc in shadow do not.
    #[test]
    fn findings_by_line() {
        assert_eq!(
            severities("passwd: files oidc\ngroup: files systemd oidc\n"),
            [Severity::Ok]
        );
        assert_eq!(
            severities("passwd: files\ngroup: files oidc\n"),
            [Severity::Error]
        );
        assert_eq!(
            severities("passwd: oidc files\ngroup: files oidc\n"),
            [Severity::Error]
        );
        assert_eq!(
            severities("passwd: files oidc\ngroup: files oidc\nshadow: files oidc\n"),
            [Severity::Warning, Severity::Ok]
        );
        assert_eq!(
            severities("passwd: files [NOTFOUND=return] oidc\ngroup: files oidc\n"),
            [Severity::Warning, Severity::Ok]
        );
        assert_eq!(
            severities("passwd: files oidc\ngroup: files oidc\ninitgroups: files\n"),
            [Severity::Warning, Severity::Ok]
        );
        assert_eq!(
            severities("hosts: files dns\n"),
            [Severity::Error, Severity::Error]
        );
    }
}
