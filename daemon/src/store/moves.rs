//! Moving identities from one issuer to another (`oidcctl migrate`): a company changes provider,
//! and its people must keep their UIDs, names and so their files.
//!
//! A user is (issuer, subject); a move rewrites that pair and nothing else. By an explicit table
//! (a name and its subject at the new issuer) the move happens at once. By verified email it
//! happens at the user's first login through the new provider, when that provider vouches for
//! the same address and maps the person to the same name (a subject at the new issuer is not
//! known before). Either way the move is recorded, and the new provider's groups then take over
//! the old groups of the same Unix name, GID and all. A dry run reports the same lines and
//! changes nothing.

use oidc_proto::types::{MigrationLine, MigrationReport, SubjectMove};
use rusqlite::{OptionalExtension, Transaction, params};

use super::write::NewIds;
use super::{Store, StoreError};
use crate::identity::mapping::MappedUser;

/// A user of the old issuer.
struct OldUser {
    name: String,
    uid: u32,
    sub: String,
    email: Option<String>,
    verified: bool,
}

impl Store {
    /// Plans the move of `from`'s identities to `to` and, with `apply`, makes it, in one
    /// transaction. `Err` lists what is wrong with the request (then nothing changes).
    pub fn migrate(
        &mut self,
        from: &str,
        to: &str,
        table: &[SubjectMove],
        by_email: bool,
        apply: bool,
        now: i64,
    ) -> Result<Result<MigrationReport, Vec<String>>, StoreError> {
        let tx = self.conn.transaction()?;
        let users = old_users(&tx, from)?;
        let links: Vec<(String, String)> = {
            let mut st = tx.prepare(
                "SELECT local_name, sub FROM links WHERE issuer = ?1 ORDER BY local_name",
            )?;
            st.query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let errors = check_table(&tx, from, to, table, &users, &links)?;
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let in_table = |name: &str| {
            table
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.new_sub.clone())
        };
        let mut moves = Vec::new();
        for u in &users {
            let (outcome, new_sub, note) = match in_table(&u.name) {
                Some(new) => {
                    if apply {
                        tx.execute(
                            "UPDATE users SET issuer = ?1, sub = ?2, updated_at = ?3 WHERE name = ?4",
                            params![to, new, now, u.name],
                        )?;
                    }
                    ("moved", Some(new), None)
                }
                None if by_email => match email_move(&tx, to, u, &users)? {
                    Ok(email) => ("by_email", None, Some(email)),
                    Err(why) => ("stays", None, Some(why)),
                },
                None => ("stays", None, Some("not in the table".to_string())),
            };
            moves.push(MigrationLine {
                name: u.name.clone(),
                uid: Some(u.uid),
                old_sub: u.sub.clone(),
                new_sub,
                outcome: outcome.into(),
                note,
            });
        }
        for (local, sub) in &links {
            let line = match in_table(local) {
                Some(new) => {
                    if apply {
                        tx.execute(
                            "UPDATE links SET issuer = ?1, sub = ?2 WHERE local_name = ?3",
                            params![to, new, local],
                        )?;
                    }
                    ("moved", Some(new), None)
                }
                None => (
                    "stays",
                    None,
                    Some("a linked local account moves only by the table".to_string()),
                ),
            };
            moves.push(MigrationLine {
                name: local.clone(),
                uid: None,
                old_sub: sub.clone(),
                new_sub: line.1,
                outcome: line.0.into(),
                note: line.2,
            });
        }
        let groups: i64 = tx.query_row(
            "SELECT count(*) FROM groups WHERE issuer = ?1",
            [from],
            |r| r.get(0),
        )?;
        if apply {
            tx.execute(
                "INSERT INTO issuer_moves (from_issuer, to_issuer, by_email, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (from_issuer) DO UPDATE SET to_issuer = ?2, by_email = ?3, created_at = ?4",
                params![from, to, by_email, now],
            )?;
            tx.commit()?;
        }
        Ok(Ok(MigrationReport {
            from_issuer: from.into(),
            to_issuer: to.into(),
            applied: apply,
            moves,
            groups: u64::try_from(groups).unwrap_or(0),
        }))
    }

    /// The issuer `issuer`'s identities moved to, if `oidcctl migrate` moved them.
    pub fn moved_to(&self, issuer: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT to_issuer FROM issuer_moves WHERE from_issuer = ?1",
                [issuer],
                |r| r.get(0),
            )
            .optional()?)
    }
}

fn old_users(tx: &Transaction<'_>, from: &str) -> Result<Vec<OldUser>, StoreError> {
    let mut st = tx.prepare(
        "SELECT name, uid, sub, email, email_verified FROM users WHERE issuer = ?1 ORDER BY name",
    )?;
    let rows = st.query_map([from], |r| {
        Ok(OldUser {
            name: r.get(0)?,
            uid: r.get(1)?,
            sub: r.get(2)?,
            email: r.get(3)?,
            verified: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What is wrong with the request: the same issuer twice, names that are not the old issuer's,
/// names or subjects listed twice, subjects that are not plain or already taken at `to`.
fn check_table(
    tx: &Transaction<'_>,
    from: &str,
    to: &str,
    table: &[SubjectMove],
    users: &[OldUser],
    links: &[(String, String)],
) -> Result<Vec<String>, StoreError> {
    let mut errors = Vec::new();
    if from == to {
        errors.push(format!("{from} is both the old and the new issuer"));
    }
    for (i, m) in table.iter().enumerate() {
        if !users.iter().any(|u| u.name == m.name) && !links.iter().any(|l| l.0 == m.name) {
            errors.push(format!(
                "{:?} is neither a user nor a linked local account of {from}",
                m.name
            ));
        }
        if table[..i].iter().any(|o| o.name == m.name) {
            errors.push(format!("{:?} is listed twice", m.name));
        }
        if m.new_sub.is_empty() || m.new_sub.len() > 1024 || m.new_sub.chars().any(char::is_control)
        {
            errors.push(format!("{:?}: invalid subject {:?}", m.name, m.new_sub));
            continue;
        }
        if table[..i].iter().any(|o| o.new_sub == m.new_sub) {
            errors.push(format!(
                "subject {:?} is given to two identities",
                m.new_sub
            ));
        }
        let taken: Option<String> = tx
            .query_row(
                "SELECT name FROM users WHERE issuer = ?1 AND sub = ?2
                 UNION ALL SELECT local_name FROM links WHERE issuer = ?1 AND sub = ?2 LIMIT 1",
                params![to, m.new_sub],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            errors.push(format!(
                "{:?}: subject {:?} at {to} is already {other} (remove that user first to \
                 give {:?} its UID)",
                m.name, m.new_sub, m.name
            ));
        }
    }
    Ok(errors)
}

/// Whether old user `u` can move by email: its address (verified, its own among the old
/// issuer's users, nobody's at `to` yet), or why not.
fn email_move(
    tx: &Transaction<'_>,
    to: &str,
    u: &OldUser,
    users: &[OldUser],
) -> Result<Result<String, String>, StoreError> {
    let Some(email) = u.email.as_deref().filter(|_| u.verified) else {
        return Ok(Err(
            "no verified email at the old provider: move it by the table".into(),
        ));
    };
    if let Some(other) = users.iter().find(|o| {
        o.name != u.name
            && o.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
    }) {
        return Ok(Err(format!(
            "{email} is also {}'s address: move both by the table",
            other.name
        )));
    }
    let already: Option<String> = tx
        .query_row(
            "SELECT name FROM users WHERE issuer = ?1 AND lower(email) = lower(?2) LIMIT 1",
            params![to, email],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = already {
        return Ok(Err(format!(
            "{other} at the new provider already has {email}: move it by the table"
        )));
    }
    Ok(Ok(email.to_string()))
}

/// At a login through `ctx.issuer` of an identity not stored yet: the old user it takes over
/// by verified email, if a move by email leads here, exactly one old user has that address
/// (verified), and the name is the same. The row is rewritten to the new identity; its row
/// id, name and UID are returned.
pub(super) fn take_over_by_email(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    user: &MappedUser,
) -> Result<Option<(i64, String, u32)>, StoreError> {
    let Some(email) = user.email.as_deref().filter(|_| user.email_verified) else {
        return Ok(None);
    };
    let mut st = tx.prepare_cached(
        "SELECT u.id, u.name, u.uid, u.issuer FROM users u
         JOIN issuer_moves m ON m.from_issuer = u.issuer
         WHERE m.to_issuer = ?1 AND m.by_email = 1 AND u.email_verified = 1
           AND lower(u.email) = lower(?2)",
    )?;
    let found: Vec<(i64, String, u32, String)> = st
        .query_map(params![ctx.issuer, email], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let [(id, name, uid, old_issuer)] = found.as_slice() else {
        if found.len() > 1 {
            log::warn!(
                "{email}: {} users of moved issuers have this address; none is taken over",
                found.len()
            );
        }
        return Ok(None);
    };
    if *name != user.name {
        log::warn!(
            "{name} (uid {uid}) not moved to {} by email {email}: the new provider's identity maps \
             to {:?}, not {name:?}",
            ctx.issuer,
            user.name
        );
        return Ok(None);
    }
    tx.execute(
        "UPDATE users SET issuer = ?1, sub = ?2, updated_at = ?3 WHERE id = ?4",
        params![ctx.issuer, user.sub, ctx.now, id],
    )?;
    log::info!(
        "{name} (uid {uid}) moved from {old_issuer} to {} (sub {:?}) by verified email {email}",
        ctx.issuer,
        user.sub
    );
    Ok(Some((*id, name.clone(), *uid)))
}

/// At a login through `ctx.issuer`: the old group named `name` of an issuer that moved here,
/// taken over by provider group `provider_name` (its GID kept). Its row id, if there was one.
pub(super) fn take_over_group(
    tx: &Transaction<'_>,
    ctx: &NewIds<'_>,
    provider_name: &str,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    let found: Option<(i64, u32, String, String)> = tx
        .query_row(
            "SELECT g.id, g.gid, g.issuer, g.provider_name FROM groups g
             JOIN issuer_moves m ON m.from_issuer = g.issuer
             WHERE m.to_issuer = ?1 AND g.name = ?2",
            params![ctx.issuer, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, gid, old_issuer, old_name)) = found else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE groups SET issuer = ?1, provider_name = ?2, updated_at = ?3 WHERE id = ?4",
        params![ctx.issuer, provider_name, ctx.now, id],
    )?;
    log::info!(
        "group {name} (gid {gid}) moved from {old_issuer} ({old_name:?}) to {} ({provider_name:?})",
        ctx.issuer
    );
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;
    use crate::config::Config;
    use crate::identity::local::LocalAccounts;
    use crate::identity::mapping;
    use crate::store::Source;

    const OLD: &str = "https://old.example.com";
    const NEW: &str = "https://new.example.com";

    fn local() -> LocalAccounts {
        LocalAccounts::from_paths(Path::new("/nonexistent/p"), Path::new("/nonexistent/g"))
    }

    /// Logs `claims` in at `issuer`; the UID and the GIDs of its groups.
    fn login(s: &mut Store, issuer: &str, claims: &Value) -> (u32, Vec<u32>) {
        let (cfg, local) = (Config::default(), local());
        let ctx = NewIds {
            issuer,
            cfg: &cfg,
            local: &local,
            now: 1,
        };
        let user = mapping::map_claims(claims, &cfg, &local).unwrap();
        let a = s
            .apply_user(&ctx, &user, claims, Source::Login, None)
            .unwrap();
        let gids = s.groups_of_user(&a.name).unwrap().unwrap().0;
        (a.uid, gids)
    }

    fn person(sub: &str, name: &str, email: &str, verified: bool, groups: &[&str]) -> Value {
        json!({"sub": sub, "preferred_username": name, "email": email,
               "email_verified": verified, "groups": groups})
    }

    fn mv(name: &str, new_sub: &str) -> SubjectMove {
        SubjectMove {
            name: name.into(),
            new_sub: new_sub.into(),
        }
    }

    /// By table: a dry run changes nothing; applied, alice is the new identity with her UID,
    /// and her old group is taken over (GID kept) by the new provider's group of that name.
    #[test]
    fn table_moves_keep_uids_and_gids() {
        let mut s = Store::open_in_memory().unwrap();
        let (uid, gids) = login(
            &mut s,
            OLD,
            &person("a-old", "alice", "a@x", true, &["developers"]),
        );
        let dry = s
            .migrate(OLD, NEW, &[mv("alice", "a-new")], false, false, 2)
            .unwrap()
            .unwrap();
        assert!(!dry.applied);
        assert_eq!(dry.moves[0].outcome, "moved");
        assert_eq!(dry.groups, 1);
        assert_eq!(
            s.identity_of("alice").unwrap(),
            Some((OLD.into(), "a-old".into()))
        );
        assert_eq!(s.moved_to(OLD).unwrap(), None);

        s.migrate(OLD, NEW, &[mv("alice", "a-new")], false, true, 2)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.identity_of("alice").unwrap(),
            Some((NEW.into(), "a-new".into()))
        );
        assert_eq!(s.moved_to(OLD).unwrap().as_deref(), Some(NEW));
        // The group is the new issuer's now (groups are keyed by issuer), same GID.
        let c = person("a-new", "alice", "a@x", true, &["developers"]);
        assert_eq!(login(&mut s, NEW, &c), (uid, gids));
        assert_eq!(s.group_record("developers").unwrap().unwrap().issuer, NEW);
    }

    /// By email: alice (verified, her own address) moves at her first login through the new
    /// issuer and keeps her UID; bob (unverified) stays and would get a new UID; a new identity
    /// whose name differs takes nobody over.
    #[test]
    fn email_moves_happen_at_the_first_login() {
        let mut s = Store::open_in_memory().unwrap();
        let (alice_uid, _) = login(&mut s, OLD, &person("a-old", "alice", "Alice@X", true, &[]));
        let (bob_uid, _) = login(&mut s, OLD, &person("b-old", "bob", "b@x", false, &[]));
        let (carol_uid, _) = login(&mut s, OLD, &person("c-old", "carol", "c@x", true, &[]));
        let r = s.migrate(OLD, NEW, &[], true, true, 2).unwrap().unwrap();
        let outcome = |n: &str| {
            r.moves
                .iter()
                .find(|m| m.name == n)
                .unwrap()
                .outcome
                .clone()
        };
        assert_eq!(
            (outcome("alice"), outcome("bob")),
            ("by_email".into(), "stays".into())
        );

        assert_eq!(
            login(&mut s, NEW, &person("a-new", "alice", "alice@x", true, &[])).0,
            alice_uid
        );
        assert_eq!(
            s.identity_of("alice").unwrap(),
            Some((NEW.into(), "a-new".into()))
        );
        // carol's new identity maps to another name: not taken over, carol stays as she was.
        let (other, _) = login(&mut s, NEW, &person("c-new", "carol2", "c@x", true, &[]));
        assert_ne!(other, carol_uid);
        assert_eq!(
            s.identity_of("carol").unwrap(),
            Some((OLD.into(), "c-old".into()))
        );
        assert_eq!(s.identity_of("bob").unwrap().unwrap().0, OLD);
        assert_ne!(bob_uid, 0);
    }

    /// A bad table changes nothing and says what is wrong with every entry.
    #[test]
    fn bad_tables_are_refused_whole() {
        let mut s = Store::open_in_memory().unwrap();
        login(&mut s, OLD, &person("a-old", "alice", "a@x", true, &[]));
        login(&mut s, OLD, &person("b-old", "bob", "b@x", true, &[]));
        login(&mut s, NEW, &person("taken", "zed", "z@x", true, &[]));
        let errors = s
            .migrate(
                OLD,
                NEW,
                &[
                    mv("alice", "n1"),
                    mv("bob", "n1"),
                    mv("nobody", "n2"),
                    mv("alice", "taken"),
                ],
                false,
                true,
                2,
            )
            .unwrap()
            .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.contains("already zed")),
            "{errors:#?}"
        );
        assert_eq!(s.identity_of("alice").unwrap().unwrap().0, OLD);
        assert!(s.migrate(OLD, OLD, &[], true, false, 2).unwrap().is_err());
    }
}
