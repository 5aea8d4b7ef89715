//! The host's own accounts, read straight from /etc/passwd and /etc/group, plus, for one
//! decision, the names other NSS sources answered for ([`LocalAccounts::with_others`], from
//! [`super::other_sources`]).
//!
//! The daemon never resolves users through NSS: glibc would ask libnss_oidc, which would ask
//! this daemon, which would wait on itself.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::other_sources::Known;

/// Local names and IDs, reloaded when either file changes.
#[derive(Debug, Clone)]
pub struct LocalAccounts {
    passwd_path: PathBuf,
    group_path: PathBuf,
    stamp: Option<(SystemTime, SystemTime)>,
    /// User name → UID.
    pub users: HashMap<String, u32>,
    /// UIDs in use.
    pub uids: HashSet<u32>,
    /// Group name → GID.
    pub groups: HashMap<String, u32>,
    /// GIDs in use.
    pub gids: HashSet<u32>,
    /// Names other NSS sources know (empty unless made by [`LocalAccounts::with_others`]).
    pub others: Known,
}

impl LocalAccounts {
    /// The host's files.
    pub fn system() -> Self {
        Self::from_paths(Path::new("/etc/passwd"), Path::new("/etc/group"))
    }

    /// Other files (tests).
    pub fn from_paths(passwd: &Path, group: &Path) -> Self {
        Self {
            passwd_path: passwd.to_path_buf(),
            group_path: group.to_path_buf(),
            stamp: None,
            users: HashMap::new(),
            uids: HashSet::new(),
            groups: HashMap::new(),
            gids: HashSet::new(),
            others: Known::default(),
        }
    }

    /// A copy that also counts `others` (names other NSS sources know) as taken, for one
    /// decision.
    pub fn with_others(&self, others: Known) -> Self {
        Self {
            others,
            ..self.clone()
        }
    }

    /// Rereads the files if they changed since the last read; `true` when they did. On error
    /// the previous contents stay and the error is returned (callers refuse new names rather
    /// than guess).
    pub fn refresh(&mut self) -> io::Result<bool> {
        let stamp = (mtime(&self.passwd_path)?, mtime(&self.group_path)?);
        if self.stamp == Some(stamp) {
            return Ok(false);
        }
        let passwd = std::fs::read_to_string(&self.passwd_path)?;
        let group = std::fs::read_to_string(&self.group_path)?;
        let (users, uids) = parse(&passwd, 2);
        let (groups, gids) = parse(&group, 2);
        self.users = users;
        self.uids = uids;
        self.groups = groups;
        self.gids = gids;
        self.stamp = Some(stamp);
        Ok(true)
    }

    /// Whether a local user or group has this name.
    pub fn has_name(&self, name: &str) -> bool {
        self.users.contains_key(name) || self.groups.contains_key(name)
    }

    /// The GID of a local group.
    pub fn group_gid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }
}

/// The UIDs `useradd` gives people on this host: `UID_MIN`..`UID_MAX` from /etc/login.defs,
/// 1000..60000 when the file or the keys are missing or unreadable.
pub fn people_uid_range() -> (u32, u32) {
    let text = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
    people_uid_range_in(&text)
}

/// [`people_uid_range`] from the text of a login.defs file.
pub fn people_uid_range_in(login_defs: &str) -> (u32, u32) {
    let key = |k: &str| {
        login_defs.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(k))
                .then(|| words.next()?.parse::<u32>().ok())
                .flatten()
        })
    };
    let lo = key("UID_MIN").unwrap_or(1000);
    let hi = key("UID_MAX").unwrap_or(60000);
    if lo <= hi { (lo, hi) } else { (1000, 60000) }
}

fn mtime(p: &Path) -> io::Result<SystemTime> {
    std::fs::metadata(p)?.modified()
}

/// Name → ID from colon-separated lines whose ID is field `id_field`. Comments, NIS `+`/`-`
/// lines and malformed lines are skipped.
fn parse(text: &str, id_field: usize) -> (HashMap<String, u32>, HashSet<u32>) {
    let mut names = HashMap::new();
    let mut ids = HashSet::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with(['+', '-']) {
            continue;
        }
        let mut fields = line.split(':');
        let Some(name) = fields.next() else { continue };
        let Some(id) = fields.nth(id_field - 1).and_then(|f| f.parse::<u32>().ok()) else {
            continue;
        };
        names.insert(name.to_string(), id);
        ids.insert(id);
    }
    (names, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and IDs are read; junk lines are skipped.
    #[test]
    fn parses_files() {
        let dir = std::env::temp_dir().join(format!("oidcd-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("passwd");
        let g = dir.join("group");
        std::fs::write(&p, "root:x:0:0:root:/root:/bin/bash\n# c\n+nis\nbad line\nalice:x:1000:1000::/home/alice:/bin/sh\n").unwrap();
        std::fs::write(&g, "root:x:0:\nsudo:x:27:alice\n").unwrap();
        let mut l = LocalAccounts::from_paths(&p, &g);
        l.refresh().unwrap();
        assert_eq!(l.users.get("alice"), Some(&1000));
        assert!(l.uids.contains(&0));
        assert_eq!(l.group_gid("sudo"), Some(27));
        assert!(l.has_name("sudo"));
        assert!(!l.has_name("bob"));
        assert_eq!(l.users.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// UID_MIN and UID_MAX come from login.defs, with useradd's defaults when absent, bad or
    /// inverted.
    #[test]
    fn people_uid_range_from_login_defs() {
        assert_eq!(people_uid_range_in(""), (1000, 60000));
        assert_eq!(
            people_uid_range_in("# c\nUID_MIN\t 2000\nUID_MAX 3000\nSYS_UID_MIN 100\n"),
            (2000, 3000)
        );
        assert_eq!(people_uid_range_in("UID_MIN x\n"), (1000, 60000));
        assert_eq!(people_uid_range_in("UID_MIN 5\nUID_MAX 4\n"), (1000, 60000));
    }
}
