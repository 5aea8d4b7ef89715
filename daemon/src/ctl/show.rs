//! How `oidcctl` prints answers: aligned text for people, JSON with `--json`.

use std::io::{self, Write};

use oidc_proto::Response;
use oidc_proto::types::{
    GroupRecord, Lifecycle, MigrationReport, NssMapState, NssMapStatus, OfflinePinStatus,
    RefreshStatus, SshKeyList, UserRecord,
};
use serde_json::json;

/// Prints the payload of `r` as JSON.
pub fn json(out: &mut impl Write, r: &Response) -> io::Result<()> {
    let v = match r {
        Response::Status(s) => {
            let mut v = serde_json::to_value(s)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("daemon_running".into(), json!(true));
            }
            v
        }
        Response::UserList { users } => serde_json::to_value(users)?,
        Response::UserDetails(u) => serde_json::to_value(u)?,
        Response::GroupList { groups } => serde_json::to_value(groups)?,
        Response::GroupDetails(g) => serde_json::to_value(g)?,
        Response::Imported { users } => json!({ "imported": users }),
        Response::Map(m) => serde_json::to_value(m)?,
        Response::LinkList { links } => serde_json::to_value(links)?,
        Response::Migration(m) => serde_json::to_value(m)?,
        Response::Done { message } => json!({ "done": message }),
        Response::SshKeys(k) => serde_json::to_value(k)?,
        other => serde_json::to_value(other)?,
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)
}

/// Prints the payload of `r` for a person.
pub fn text(out: &mut impl Write, r: &Response) -> io::Result<()> {
    match r {
        Response::Status(s) => {
            writeln!(
                out,
                "oidcd:          running (version {}, protocol {})",
                s.daemon_version, s.protocol_version
            )?;
            writeln!(out, "uptime:         {}", duration(s.uptime_secs))?;
            writeln!(out, "configuration:  {}", s.config_path)?;
            match (&s.issuer, &s.client_id) {
                _ if s.providers.len() > 1 => {
                    for (i, p) in s.providers.iter().enumerate() {
                        let label = if i == 0 { "providers:" } else { "" };
                        writeln!(
                            out,
                            "{label:<16}{}: {} (client {}, names {}, {} user(s)){}",
                            p.id,
                            p.issuer,
                            p.client_id,
                            p.names,
                            p.users,
                            p.error
                                .as_deref()
                                .map(|e| format!(" UNUSABLE: {e}"))
                                .unwrap_or_default()
                        )?;
                    }
                }
                (Some(i), Some(c)) => writeln!(out, "provider:       {i} (client {c})")?,
                _ => writeln!(out, "provider:       not configured (logins disabled)")?,
            }
            writeln!(out, "socket:         {}", s.socket_path)?;
            match (&s.db_error, s.schema_version) {
                (Some(e), _) => writeln!(out, "database:       BROKEN: {e}")?,
                (None, Some(v)) => writeln!(out, "database:       {} (schema {v})", s.db_path)?,
                (None, None) => writeln!(out, "database:       {}", s.db_path)?,
            }
            writeln!(out, "users:          {}", s.users)?;
            writeln!(out, "groups:         {}", s.groups)?;
            writeln!(out, "logins running: {}", s.logins_in_progress)?;
            if let Some(r) = &s.refresh {
                refresh_status(out, r)?;
            }
            writeln!(
                out,
                "enumeration:    {}",
                if s.enumerate { "on" } else { "off" }
            )?;
            match &s.nss_map {
                Some(m) => nss_map(out, m, s.users, s.groups),
                None => Ok(()),
            }
        }
        Response::UserList { users } => user_table(out, users),
        Response::UserDetails(u) => user_details(out, u),
        Response::GroupList { groups } => group_table(out, groups),
        Response::GroupDetails(g) => group_details(out, g),
        Response::Imported { users } => {
            for u in users {
                let what = if u.created { "created" } else { "refreshed" };
                writeln!(out, "{what} {} (uid {})", u.name, u.uid)?;
            }
            writeln!(out, "{} user(s) imported", users.len())
        }
        Response::Map(m) => writeln!(out, "{}", serde_json::to_string_pretty(m)?),
        Response::LinkList { links } => {
            let rows: Vec<[String; 4]> = links
                .iter()
                .map(|l| {
                    [
                        l.local_name.clone(),
                        l.sub.clone(),
                        l.issuer.clone(),
                        l.last_login_at.map_or_else(|| "never".into(), when),
                    ]
                })
                .collect();
            table(
                out,
                &["LOCAL ACCOUNT", "SUB", "ISSUER", "LAST LOGIN"],
                &rows,
            )?;
            writeln!(out, "{} link(s)", links.len())
        }
        Response::Migration(m) => migration(out, m),
        Response::Done { message } => writeln!(out, "{message}"),
        Response::SshKeys(k) => ssh_keys(out, k),
        other => writeln!(out, "{other:?}"),
    }
}

/// SSH keys as authorized_keys lines: the served keys, everything else as `#` comments, so the
/// output is itself a valid authorized_keys file.
fn ssh_keys(out: &mut impl Write, k: &SshKeyList) -> io::Result<()> {
    match &k.withheld {
        Some(why) => writeln!(out, "# no key served: {why}")?,
        None => writeln!(out, "# {} key(s) served", k.keys.len())?,
    }
    for key in &k.keys {
        writeln!(out, "{key}")?;
    }
    for key in k.stored.iter().filter(|s| !k.keys.contains(s)) {
        writeln!(out, "# stored, not served: {key}")?;
    }
    for s in &k.skipped {
        writeln!(out, "# skipped: {s}")?;
    }
    Ok(())
}

/// The NSS map: on or off, the file, what its header says, and how it stands against the
/// store (`users`, `groups`: the store's counts).
fn nss_map(out: &mut impl Write, m: &NssMapStatus, users: u64, groups: u64) -> io::Result<()> {
    let on = if m.enabled { "on" } else { "off" };
    let Some(f) = &m.file else {
        let what = if m.enabled {
            if m.written_at.is_none() && m.build_error.is_none() {
                "not written yet"
            } else {
                "MISSING"
            }
        } else {
            "absent"
        };
        writeln!(out, "NSS map:        {on}, {}: {what}", m.path)?;
        if let Some(e) = &m.build_error {
            writeln!(out, "map error:      {e}")?;
        }
        return Ok(());
    };
    writeln!(out, "NSS map:        {on}, {}", m.path)?;
    let mut file = format!("{} bytes, owner uid {}, mode {:04o}", f.size, f.uid, f.mode);
    if !f.regular || f.uid != 0 || f.mode & 0o022 != 0 {
        file.push_str(" (UNTRUSTED: the module ignores it)");
    }
    writeln!(out, "map file:       {file}")?;
    if let Some(e) = &f.error {
        writeln!(out, "map header:     UNREADABLE: {e}")?;
    }
    if let (Some(state), Some(generation)) = (f.state, f.generation) {
        let state = match state {
            NssMapState::Current => "current",
            NssMapState::Behind => "behind the store (a new map is being written)",
            NssMapState::Replaced => "replaced (lookups ask oidcd)",
            NssMapState::Unknown => "unknown (lookups ask oidcd)",
        };
        let mine = if m.held {
            ""
        } else {
            ", not the file this oidcd keeps"
        };
        writeln!(
            out,
            "map state:      {state}, generation {generation}{mine}"
        )?;
    }
    if let (Some(u), Some(g)) = (f.users, f.groups) {
        let private = g.saturating_sub(u);
        let mut line = format!("{u} users, {g} groups ({private} of them users' private groups)");
        if f.state == Some(NssMapState::Current) && (u != users || private != groups) {
            line.push_str(&format!(
                " DIFFERENT from the store's {users} users and {groups} groups"
            ));
        }
        if m.skipped > 0 {
            line.push_str(&format!(", {} left out (see the log)", m.skipped));
        }
        writeln!(out, "map entries:    {line}")?;
    }
    writeln!(
        out,
        "map written:    {}",
        m.written_at
            .map_or_else(|| "not by this oidcd".into(), when)
    )?;
    if let Some(until) = f.valid_until {
        if until <= m.now {
            writeln!(
                out,
                "map valid:      EXPIRED {} (no heartbeat for {})",
                when(until),
                duration((m.now - until).unsigned_abs())
            )?;
        } else {
            writeln!(
                out,
                "map valid:      until {} ({} left, TTL {})",
                when(until),
                duration((until - m.now).unsigned_abs()),
                duration(m.ttl_secs)
            )?;
        }
    }
    if let Some(e) = &m.build_error {
        writeln!(out, "map error:      {e}")?;
    }
    Ok(())
}

fn refresh_status(out: &mut impl Write, r: &RefreshStatus) -> io::Result<()> {
    if r.enabled {
        writeln!(
            out,
            "refresh:        every {}, {} identities with a refresh token, {} failing, {} revoked",
            duration(r.interval_secs.round() as u64),
            r.refreshable,
            r.failing,
            r.revoked
        )?;
    } else {
        writeln!(out, "refresh:        off ({} revoked)", r.revoked)?;
    }
    writeln!(
        out,
        "last refresh:   {}",
        match (r.last_refresh_at, &r.last_refresh) {
            (Some(t), Some(what)) => format!("{} ({what})", when(t)),
            (Some(t), None) => when(t),
            _ => "none yet".into(),
        }
    )?;
    writeln!(
        out,
        "next refresh:   {}",
        r.next_refresh_at
            .filter(|_| r.enabled)
            .map_or_else(|| "none scheduled".into(), when)
    )
}

fn migration(out: &mut impl Write, m: &MigrationReport) -> io::Result<()> {
    writeln!(out, "from: {}", m.from_issuer)?;
    writeln!(out, "to:   {}", m.to_issuer)?;
    let rows: Vec<[String; 5]> = m
        .moves
        .iter()
        .map(|l| {
            [
                l.name.clone(),
                l.uid.map_or_else(|| "local".into(), |u| u.to_string()),
                l.old_sub.clone(),
                l.new_sub.clone().unwrap_or_else(|| "-".into()),
                match &l.note {
                    Some(n) => format!("{}: {n}", l.outcome),
                    None => l.outcome.clone(),
                },
            ]
        })
        .collect();
    table(
        out,
        &["NAME", "UID (KEPT)", "OLD SUB", "NEW SUB", "OUTCOME"],
        &rows,
    )?;
    writeln!(
        out,
        "{} provider group(s) of the old issuer keep their GIDs: each is taken over by the new \
         provider's group that maps to its name, at the first login that brings it",
        m.groups
    )?;
    if m.applied {
        writeln!(out, "applied")
    } else {
        writeln!(
            out,
            "dry run: nothing was changed (add --apply to make these changes)"
        )
    }
}

fn user_table(out: &mut impl Write, users: &[UserRecord]) -> io::Result<()> {
    let rows: Vec<[String; 5]> = users
        .iter()
        .map(|u| {
            let mut groups = u.groups.clone();
            groups.extend(u.local_groups.iter().map(|g| format!("{g}*")));
            [
                u.unix.name.clone(),
                u.unix.uid.to_string(),
                if groups.is_empty() {
                    "-".into()
                } else {
                    groups.join(",")
                },
                u.source.clone(),
                u.last_login_at.map_or_else(|| "never".into(), when),
            ]
        })
        .collect();
    table(
        out,
        &[
            "NAME",
            "UID",
            "GROUPS (*=admin local)",
            "SOURCE",
            "LAST LOGIN",
        ],
        &rows,
    )?;
    writeln!(out, "{} user(s)", users.len())
}

fn user_details(out: &mut impl Write, u: &UserRecord) -> io::Result<()> {
    let x = &u.unix;
    writeln!(out, "name:           {}", x.name)?;
    writeln!(out, "uid / gid:      {} / {}", x.uid, x.gid)?;
    writeln!(out, "gecos:          {}", x.gecos)?;
    writeln!(out, "home:           {}", x.home)?;
    writeln!(out, "shell:          {}", x.shell)?;
    writeln!(
        out,
        "passwd line:    {}:*:{}:{}:{}:{}:{}",
        x.name, x.uid, x.gid, x.gecos, x.home, x.shell
    )?;
    writeln!(out, "issuer:         {}", u.issuer)?;
    writeln!(out, "subject:        {}", u.sub)?;
    writeln!(
        out,
        "email:          {}{}",
        u.email.as_deref().unwrap_or("-"),
        if u.email_verified { " (verified)" } else { "" }
    )?;
    writeln!(
        out,
        "groups:         {}",
        if u.groups.is_empty() {
            "-".into()
        } else {
            u.groups.join(", ")
        }
    )?;
    writeln!(
        out,
        "admin groups:   {}",
        if u.local_groups.is_empty() {
            "-".into()
        } else {
            u.local_groups.join(", ")
        }
    )?;
    writeln!(out, "source:         {}", u.source)?;
    writeln!(out, "created:        {}", when(u.created_at))?;
    writeln!(out, "updated:        {}", when(u.updated_at))?;
    writeln!(
        out,
        "last login:     {}",
        u.last_login_at.map_or_else(|| "never".into(), when)
    )?;
    if let Some(l) = &u.lifecycle {
        lifecycle(out, l)?;
    }
    if let Some(p) = &u.offline_pin {
        writeln!(out, "offline PIN:    {}", offline_pin(p))?;
    }
    if !u.claims.is_null() {
        writeln!(out, "claims:         {}", serde_json::to_string(&u.claims)?)?;
    }
    Ok(())
}

/// Whether an offline PIN is set, its wrong tries and lock (the hash is never sent).
fn offline_pin(p: &OfflinePinStatus) -> String {
    if !p.set {
        return "no".into();
    }
    let mut s = match p.set_at {
        Some(t) => format!("yes (set {})", when(t)),
        None => "yes".into(),
    };
    s.push_str(&format!(", {} wrong in a row", p.failures));
    if let Some(t) = p.locked_until {
        s.push_str(&format!(", locked until {}", when(t)));
    }
    s
}

/// The refresh and revocation state of a user.
fn lifecycle(out: &mut impl Write, l: &Lifecycle) -> io::Result<()> {
    let at = |t: Option<i64>| t.map_or_else(|| "never".into(), when);
    writeln!(
        out,
        "revoked:        {}",
        match (l.revoked_at, &l.revoked_reason) {
            (Some(t), Some(why)) => format!("YES, {} ({why})", when(t)),
            (Some(t), None) => format!("YES, {}", when(t)),
            (None, _) => "no".into(),
        }
    )?;
    writeln!(
        out,
        "refresh token:  {}",
        if l.refreshable {
            "held"
        } else {
            "none (access.max_login_age_days applies)"
        }
    )?;
    writeln!(out, "confirmed:      {}", at(l.verified_at))?;
    writeln!(out, "last refresh:   {}", at(l.last_refresh_at))?;
    writeln!(
        out,
        "refresh result: {}{}",
        l.last_refresh_result.as_deref().unwrap_or("-"),
        if l.failures > 1 {
            format!(" ({} failures in a row)", l.failures)
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "next refresh:   {}",
        match (l.revoked_at, l.next_refresh_at) {
            (Some(_), _) => "none (revoked)".into(),
            (None, t) => t.map_or_else(|| "not scheduled".into(), when),
        }
    )
}

fn group_table(out: &mut impl Write, groups: &[GroupRecord]) -> io::Result<()> {
    let rows: Vec<[String; 4]> = groups
        .iter()
        .map(|g| {
            [
                g.unix.name.clone(),
                g.unix.gid.to_string(),
                g.provider_name.clone(),
                if g.unix.members.is_empty() {
                    "-".into()
                } else {
                    g.unix.members.join(",")
                },
            ]
        })
        .collect();
    table(out, &["NAME", "GID", "PROVIDER GROUP", "MEMBERS"], &rows)?;
    writeln!(out, "{} group(s)", groups.len())
}

fn group_details(out: &mut impl Write, g: &GroupRecord) -> io::Result<()> {
    writeln!(out, "name:           {}", g.unix.name)?;
    writeln!(out, "gid:            {}", g.unix.gid)?;
    writeln!(out, "provider group: {}", g.provider_name)?;
    writeln!(out, "issuer:         {}", g.issuer)?;
    writeln!(
        out,
        "members:        {}",
        if g.unix.members.is_empty() {
            "-".into()
        } else {
            g.unix.members.join(", ")
        }
    )?;
    writeln!(
        out,
        "group line:     {}:*:{}:{}",
        g.unix.name,
        g.unix.gid,
        g.unix.members.join(",")
    )?;
    writeln!(out, "created:        {}", when(g.created_at))?;
    writeln!(out, "updated:        {}", when(g.updated_at))
}

fn table<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A Unix time as the local date and time with its UTC offset (`--json` keeps the number); the
/// number itself when it is out of the calendar's range.
pub(super) fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn times_are_dates_with_an_offset() {
        let t = when(1_796_047_003);
        // 2026-12-01 in any time zone from UTC-12 to UTC+14 starts with 2026-1.
        assert!(t.starts_with("2026-1"), "{t}");
        let offset = &t[t.len() - 6..];
        assert!(
            offset.starts_with('+') || offset.starts_with('-'),
            "{t}: no UTC offset"
        );
        assert_eq!(t.len(), "2026-11-30 13:56:43 +00:00".len(), "{t}");
    }

    #[test]
    fn out_of_range_times_stay_numbers() {
        assert_eq!(when(i64::MAX), i64::MAX.to_string());
        assert_eq!(when(i64::MIN), i64::MIN.to_string());
    }
}
