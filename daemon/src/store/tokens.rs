//! The identity lifecycle in the store: tokens kept from logins and refreshes, refresh
//! outcomes, revocation. Tokens are [`Secret`]s: nothing here formats them, and no record
//! that leaves the daemon carries them.
//!
//! A refresh result is written with a compare-and-swap on the tokens it was made with: if a
//! login, a revocation or another refresh changed them meanwhile, the result is dropped, so a
//! rotated refresh token is stored exactly once and a revocation is never undone by a refresh
//! that was already in flight.

use std::collections::HashSet;

use oidc_proto::types::Lifecycle;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::write::{Applied, NewIds, Source, upsert};
use super::{Store, StoreError};
use crate::config::Secret;
use crate::identity::mapping::MappedUser;

/// What the provider gave, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<Secret>,
    /// The access token, for userinfo.
    pub access_token: Option<Secret>,
    /// When the access token expires (Unix seconds), if the provider said.
    pub access_expires_at: Option<i64>,
}

/// An identity the lifecycle may act on.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Row id of the user.
    pub user_id: i64,
    /// Unix name.
    pub name: String,
    /// Issuer.
    pub issuer: String,
    /// Subject.
    pub sub: String,
    /// Tokens held.
    pub tokens: Tokens,
    /// When the provider last confirmed the identity.
    pub verified_at: Option<i64>,
    /// When the next refresh is due, if scheduled.
    pub next_refresh_at: Option<i64>,
    /// Failed refreshes in a row.
    pub failures: u32,
    /// When it was revoked, if it is.
    pub revoked_at: Option<i64>,
}

/// What a successful refresh writes about the user.
#[derive(Debug)]
pub enum RefreshWrite<'a> {
    /// The claims mapped: the user follows them (name, groups, admin status).
    Mapped(&'a MappedUser, &'a Value),
    /// The claims no longer pass the access rules: they are kept (so the account phase says
    /// why) and the user loses every provider and admin group.
    Denied(&'a Value),
    /// Nothing to update about the user (a liveness check at userinfo).
    Unchanged,
}

/// The outcome of [`Store::apply_refresh`].
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Written; `Some` when the user record was updated.
    Done(Option<Applied>),
    /// The tokens changed meanwhile (a login, a revocation, another refresh): nothing written.
    Superseded,
}

const CANDIDATE_COLS: &str =
    "SELECT u.id, u.name, u.issuer, u.sub, t.refresh_token, t.access_token,
        t.access_expires_at, coalesce(l.verified_at, u.last_login_at), l.next_refresh_at,
        coalesce(l.failures, 0), l.revoked_at
     FROM users u LEFT JOIN tokens t ON t.user_id = u.id LEFT JOIN lifecycle l ON l.user_id = u.id";

fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        user_id: r.get(0)?,
        name: r.get(1)?,
        issuer: r.get(2)?,
        sub: r.get(3)?,
        tokens: Tokens {
            refresh_token: r.get::<_, Option<String>>(4)?.map(Secret::new),
            access_token: r.get::<_, Option<String>>(5)?.map(Secret::new),
            access_expires_at: r.get(6)?,
        },
        verified_at: r.get(7)?,
        next_refresh_at: r.get(8)?,
        failures: r.get(9)?,
        revoked_at: r.get(10)?,
    })
}

fn secret(s: &Option<Secret>) -> Option<&str> {
    s.as_ref().map(Secret::expose)
}

impl Store {
    /// Keeps the tokens of a device-flow login of `name`, marks the identity confirmed now and
    /// schedules its next refresh at `next`; a revocation ends here. `false` when there is no
    /// such user (a linked local account).
    pub fn save_login_tokens(
        &mut self,
        name: &str,
        tokens: &Tokens,
        now: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let Some(id) = user_id(&tx, name)? else {
            return Ok(false);
        };
        write_tokens(&tx, id, tokens, now)?;
        tx.execute(
            "INSERT INTO lifecycle (user_id, verified_at, next_refresh_at, failures)
             VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (user_id) DO UPDATE SET verified_at = ?2, failures = 0,
                 next_refresh_at = ?3, revoked_at = NULL, revoked_reason = NULL",
            params![id, now, next],
        )?;
        // An online login ends a lockout of the offline PIN.
        tx.execute(
            "UPDATE offline_pins SET failures = 0, locked_until = NULL WHERE user_id = ?1",
            [id],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Every identity of `issuer` that is not revoked and holds a token to check it with.
    pub fn refresh_candidates(&self, issuer: &str) -> Result<Vec<Candidate>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "{CANDIDATE_COLS} WHERE u.issuer = ?1 AND l.revoked_at IS NULL
               AND (t.refresh_token IS NOT NULL OR t.access_token IS NOT NULL)
             ORDER BY u.id"
        ))?;
        let rows = st.query_map([issuer], candidate)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The identity named `name`, whatever its state.
    pub fn candidate(&self, name: &str) -> Result<Option<Candidate>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{CANDIDATE_COLS} WHERE u.name = ?1"))?;
        Ok(st.query_row([name], candidate).optional()?)
    }

    /// Schedules the next refresh of a user.
    pub fn set_next_refresh(&mut self, user_id: i64, at: Option<i64>) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO lifecycle (user_id, next_refresh_at) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET next_refresh_at = ?2",
            params![user_id, at],
        )?;
        Ok(())
    }

    /// Records a refresh that did not confirm the identity (provider unreachable, an answer
    /// refused): nothing else changes. Returns the failures in a row, this one included.
    pub fn record_refresh_failure(
        &mut self,
        user_id: i64,
        result: &str,
        now: i64,
        next: i64,
    ) -> Result<u32, StoreError> {
        self.conn.execute(
            "INSERT INTO lifecycle (user_id, last_refresh_at, last_result, next_refresh_at, failures)
             VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (user_id) DO UPDATE SET last_refresh_at = ?2, last_result = ?3,
                 next_refresh_at = ?4, failures = failures + 1",
            params![user_id, now, result, next],
        )?;
        Ok(self.conn.query_row(
            "SELECT failures FROM lifecycle WHERE user_id = ?1",
            [user_id],
            |r| r.get(0),
        )?)
    }

    /// The user's name and the names of their provider groups: what a refresh need not check
    /// against other NSS sources again.
    pub fn names_held(&self, user_id: i64) -> Result<HashSet<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT name FROM users WHERE id = ?1
             UNION SELECT g.name FROM memberships m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id = ?1",
        )?;
        let names = st.query_map([user_id], |r| r.get::<_, String>(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    /// What NSS shows of a user: the passwd fields, admin status and the GIDs of their
    /// groups. Two views differ exactly when the answer cache and the NSS map must change.
    pub fn nss_view(&self, user_id: i64) -> Result<Option<NssView>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT name, uid, gid, gecos, home, shell, is_admin FROM users WHERE id = ?1",
        )?;
        let Some(fields) = st
            .query_row([user_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .optional()?
        else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT g.gid, g.name FROM memberships m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id = ?1 ORDER BY g.gid",
        )?;
        let groups = st
            .query_map([user_id], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(NssView { fields, groups }))
    }

    /// Writes a successful refresh in one transaction, if the tokens are still `used` and the
    /// identity is not revoked: the user per `write`, the new tokens, the outcome.
    #[allow(clippy::too_many_arguments)] // one transaction, every part of it named
    pub fn apply_refresh(
        &mut self,
        ctx: &NewIds<'_>,
        user_id: i64,
        used: &Tokens,
        write: RefreshWrite<'_>,
        new: &Tokens,
        result: &str,
        next: i64,
    ) -> Result<Written, StoreError> {
        let tx = self.conn.transaction()?;
        let current: Option<(Option<String>, Option<String>, Option<i64>)> = tx
            .query_row(
                "SELECT t.refresh_token, t.access_token, l.revoked_at FROM tokens t
                 LEFT JOIN lifecycle l ON l.user_id = t.user_id WHERE t.user_id = ?1",
                [user_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let unchanged = current.is_some_and(|(rt, at, revoked)| {
            revoked.is_none()
                && rt.as_deref() == secret(&used.refresh_token)
                && at.as_deref() == secret(&used.access_token)
        });
        if !unchanged {
            return Ok(Written::Superseded);
        }
        let applied = match write {
            RefreshWrite::Mapped(user, claims) => {
                Some(upsert(&tx, ctx, user, claims, Source::Login, None)?)
            }
            RefreshWrite::Denied(claims) => {
                drop_groups(&tx, user_id, Some(claims), ctx.now)?;
                None
            }
            RefreshWrite::Unchanged => None,
        };
        write_tokens(&tx, user_id, new, ctx.now)?;
        tx.execute(
            "INSERT INTO lifecycle (user_id, verified_at, last_refresh_at, last_result,
                 next_refresh_at, failures)
             VALUES (?1, ?2, ?2, ?3, ?4, 0)
             ON CONFLICT (user_id) DO UPDATE SET verified_at = ?2, last_refresh_at = ?2,
                 last_result = ?3, next_refresh_at = ?4, failures = 0",
            params![user_id, ctx.now, result, next],
        )?;
        tx.commit()?;
        Ok(Written::Done(applied))
    }

    /// Revokes `name`: the account phase refuses it until its next device-flow login, it
    /// loses its provider and admin groups (its passwd entry stays, so files keep their
    /// owner), and its tokens are forgotten. With `used`, only while the stored tokens are
    /// still those (the provider refused them; a login since then stands). `false` when there
    /// is no such user, or its tokens changed.
    pub fn revoke(
        &mut self,
        name: &str,
        reason: &str,
        now: i64,
        used: Option<&Tokens>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let Some(id) = user_id(&tx, name)? else {
            return Ok(false);
        };
        if let Some(used) = used {
            let current: Option<(Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT refresh_token, access_token FROM tokens WHERE user_id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let same = current.is_some_and(|(rt, at)| {
                rt.as_deref() == secret(&used.refresh_token)
                    && at.as_deref() == secret(&used.access_token)
            });
            if !same {
                return Ok(false);
            }
        }
        tx.execute("DELETE FROM tokens WHERE user_id = ?1", [id])?;
        tx.execute("DELETE FROM offline_pins WHERE user_id = ?1", [id])?;
        drop_groups(&tx, id, None, now)?;
        tx.execute(
            "INSERT INTO lifecycle (user_id, last_result, revoked_at, revoked_reason)
             VALUES (?1, ?3, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET revoked_at = ?2, revoked_reason = ?3,
                 next_refresh_at = NULL",
            params![id, now, reason],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The lifecycle of user row `user_id`, for the records `oidcctl` shows.
    pub(super) fn lifecycle_of(&self, user_id: i64) -> Result<Option<Lifecycle>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT t.refresh_token IS NOT NULL, l.verified_at, l.last_refresh_at, l.last_result,
                    l.next_refresh_at, coalesce(l.failures, 0), l.revoked_at, l.revoked_reason
             FROM users u LEFT JOIN tokens t ON t.user_id = u.id
                 LEFT JOIN lifecycle l ON l.user_id = u.id
             WHERE u.id = ?1 AND (t.user_id IS NOT NULL OR l.user_id IS NOT NULL)",
        )?;
        Ok(st
            .query_row([user_id], |r| {
                Ok(Lifecycle {
                    refreshable: r.get(0)?,
                    verified_at: r.get(1)?,
                    last_refresh_at: r.get(2)?,
                    last_refresh_result: r.get(3)?,
                    next_refresh_at: r.get(4)?,
                    failures: r.get(5)?,
                    revoked_at: r.get(6)?,
                    revoked_reason: r.get(7)?,
                })
            })
            .optional()?)
    }

    /// For `oidcctl status`: identities holding a refresh token, revoked, failing; the latest
    /// refresh (time, user, result) and the next one due.
    pub fn refresh_summary(&self) -> Result<RefreshSummary, StoreError> {
        let n = |sql: &str| -> Result<u64, StoreError> {
            let v: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        let last = self
            .conn
            .query_row(
                "SELECT l.last_refresh_at, u.name, l.last_result FROM lifecycle l
                 JOIN users u ON u.id = l.user_id WHERE l.last_refresh_at IS NOT NULL
                 ORDER BY l.last_refresh_at DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()?;
        let next: Option<i64> = self.conn.query_row(
            "SELECT min(next_refresh_at) FROM lifecycle WHERE revoked_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(RefreshSummary {
            refreshable: n("SELECT count(*) FROM tokens WHERE refresh_token IS NOT NULL")?,
            revoked: n("SELECT count(*) FROM lifecycle WHERE revoked_at IS NOT NULL")?,
            failing: n("SELECT count(*) FROM lifecycle WHERE failures > 0 AND revoked_at IS NULL")?,
            last_refresh_at: last.as_ref().map(|l| l.0),
            last_refresh: last.map(|(_, name, result)| {
                format!("{name}: {}", result.unwrap_or_else(|| "?".into()))
            }),
            next_refresh_at: next,
        })
    }
}

/// Counts and times for `oidcctl status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Identities holding a refresh token.
    pub refreshable: u64,
    /// Identities revoked.
    pub revoked: u64,
    /// Identities whose last refresh failed.
    pub failing: u64,
    /// The latest refresh.
    pub last_refresh_at: Option<i64>,
    /// Its user and result.
    pub last_refresh: Option<String>,
    /// The next refresh due.
    pub next_refresh_at: Option<i64>,
}

fn user_id(tx: &Transaction<'_>, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?)
}

fn write_tokens(
    tx: &Transaction<'_>,
    user_id: i64,
    t: &Tokens,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tokens (user_id, refresh_token, access_token, access_expires_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET refresh_token = ?2, access_token = ?3,
             access_expires_at = ?4, updated_at = ?5",
        params![
            user_id,
            secret(&t.refresh_token),
            secret(&t.access_token),
            t.access_expires_at,
            now
        ],
    )?;
    Ok(())
}

/// Takes every provider group and the admin status from a user (NSS then serves the user
/// alone), keeping `claims` when given.
fn drop_groups(
    tx: &Transaction<'_>,
    user_id: i64,
    claims: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM memberships WHERE user_id = ?1", [user_id])?;
    tx.execute(
        "UPDATE users SET is_admin = 0, updated_at = ?2, claims = coalesce(?3, claims)
         WHERE id = ?1",
        params![user_id, now, claims.map(Value::to_string)],
    )?;
    Ok(())
}

/// What NSS shows of one user ([`Store::nss_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NssView {
    /// Name, UID, GID, GECOS, home, shell, admin.
    fields: (String, u32, u32, String, String, String, bool),
    /// GID and name of each provider group.
    groups: Vec<(u32, String)>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::config::{Config, ProviderConfig};
    use crate::identity::local::LocalAccounts;
    use crate::identity::mapping;

    const ISSUER: &str = "https://idp.example.com";
    const NOW: i64 = 1_700_000_000;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.access.admin_groups = vec!["admins".into()];
        c.providers = vec![ProviderConfig {
            access: c.access.clone(),
            ..ProviderConfig::for_tests(ISSUER)
        }];
        c
    }

    fn local() -> LocalAccounts {
        LocalAccounts::from_paths(Path::new("/nonexistent/p"), Path::new("/nonexistent/g"))
    }

    fn tokens(rt: &str) -> Tokens {
        Tokens {
            refresh_token: Some(Secret::new(rt.into())),
            access_token: Some(Secret::new(format!("at-{rt}"))),
            access_expires_at: Some(NOW + 300),
        }
    }

    /// A store holding alice (admin, in `admins` and `dev`) logged in with refresh token rt1.
    fn with_alice() -> (Store, Config, LocalAccounts) {
        let (cfg, local) = (cfg(), local());
        let mut s = Store::open_in_memory().unwrap();
        let c =
            json!({"sub": "s-alice", "preferred_username": "alice", "groups": ["admins", "dev"]});
        let m = mapping::map_claims(&c, &cfg, &local).unwrap();
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: NOW,
        };
        s.apply_user(&ctx, &m, &c, Source::Login, None).unwrap();
        assert!(
            s.save_login_tokens("alice", &tokens("rt1"), NOW, NOW + 900)
                .unwrap()
        );
        (s, cfg, local)
    }

    /// A login's tokens make alice a candidate, due at the time given, with the tokens kept.
    #[test]
    fn login_tokens_make_a_candidate() {
        let (s, _, _) = with_alice();
        let c = s.refresh_candidates(ISSUER).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].tokens, tokens("rt1"));
        assert_eq!(c[0].next_refresh_at, Some(NOW + 900));
        assert_eq!(c[0].verified_at, Some(NOW));
        assert!(s.refresh_candidates("https://other").unwrap().is_empty());
        let rec = s.user_record("alice").unwrap().unwrap();
        let l = rec.lifecycle.unwrap();
        assert!(l.refreshable && l.revoked_at.is_none());
    }

    /// A refresh is written only with the tokens it used: rotation stores the new refresh
    /// token once; a second result made with the old token is dropped and changes nothing.
    #[test]
    fn rotation_is_a_compare_and_swap() {
        let (mut s, cfg, local) = with_alice();
        let c = json!({"sub": "s-alice", "preferred_username": "alice2", "groups": ["dev"]});
        let m = mapping::map_claims(&c, &cfg, &local).unwrap();
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: NOW + 1,
        };
        let uid = s.user_by_name("alice").unwrap().unwrap().uid;
        let w = s
            .apply_refresh(
                &ctx,
                1,
                &tokens("rt1"),
                RefreshWrite::Mapped(&m, &c),
                &tokens("rt2"),
                "ok",
                NOW + 901,
            )
            .unwrap();
        let Written::Done(Some(a)) = w else {
            panic!("{w:?}")
        };
        assert_eq!((a.uid, a.renamed_from.as_deref()), (uid, Some("alice")));
        assert_eq!(
            s.candidate("alice2").unwrap().unwrap().tokens,
            tokens("rt2")
        );
        assert!(!s.groups_of_user("alice2").unwrap().unwrap().1);
        let stale = s
            .apply_refresh(
                &ctx,
                1,
                &tokens("rt1"),
                RefreshWrite::Unchanged,
                &tokens("rt3"),
                "ok",
                NOW,
            )
            .unwrap();
        assert_eq!(stale, Written::Superseded);
        assert_eq!(
            s.candidate("alice2").unwrap().unwrap().tokens,
            tokens("rt2")
        );
    }

    /// A revocation drops groups and admin status and the tokens, keeps the passwd entry,
    /// survives a refresh in flight, and ends at the next login.
    #[test]
    fn revocation_drops_groups_until_the_next_login() {
        let (mut s, cfg, local) = with_alice();
        // A revocation made with tokens that are no longer stored is not applied.
        assert!(!s.revoke("alice", "x", NOW, Some(&tokens("old"))).unwrap());
        assert!(
            s.revoke("alice", "grant gone", NOW, Some(&tokens("rt1")))
                .unwrap()
        );
        assert_eq!(s.groups_of_user("alice").unwrap(), Some((vec![], false)));
        assert!(s.user_by_name("alice").unwrap().is_some());
        assert!(s.refresh_candidates(ISSUER).unwrap().is_empty());
        let l = s.user_record("alice").unwrap().unwrap().lifecycle.unwrap();
        assert_eq!(l.revoked_reason.as_deref(), Some("grant gone"));
        assert!(!l.refreshable);
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: NOW,
        };
        let late = s
            .apply_refresh(
                &ctx,
                1,
                &tokens("rt1"),
                RefreshWrite::Unchanged,
                &tokens("rt2"),
                "ok",
                NOW,
            )
            .unwrap();
        assert_eq!(late, Written::Superseded);
        assert!(
            s.save_login_tokens("alice", &tokens("rt9"), NOW + 5, NOW + 905)
                .unwrap()
        );
        let l = s.user_record("alice").unwrap().unwrap().lifecycle.unwrap();
        assert!(l.revoked_at.is_none() && l.refreshable);
        assert_eq!(s.refresh_summary().unwrap().revoked, 0);
    }

    /// Claims that fail the access rules are kept while every group goes.
    #[test]
    fn denied_claims_drop_the_groups() {
        let (mut s, cfg, local) = with_alice();
        let c = json!({"sub": "s-alice", "preferred_username": "alice", "groups": []});
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: NOW,
        };
        s.apply_refresh(
            &ctx,
            1,
            &tokens("rt1"),
            RefreshWrite::Denied(&c),
            &tokens("rt1"),
            "access refused",
            NOW + 900,
        )
        .unwrap();
        assert_eq!(s.groups_of_user("alice").unwrap(), Some((vec![], false)));
        assert_eq!(s.user_record("alice").unwrap().unwrap().claims, c);
    }

    /// Failures count up and a success resets them.
    #[test]
    fn failures_count_until_a_success() {
        let (mut s, cfg, local) = with_alice();
        assert_eq!(
            s.record_refresh_failure(1, "failed: x", NOW, NOW + 60)
                .unwrap(),
            1
        );
        assert_eq!(
            s.record_refresh_failure(1, "failed: x", NOW, NOW + 120)
                .unwrap(),
            2
        );
        assert_eq!(s.refresh_summary().unwrap().failing, 1);
        let ctx = NewIds {
            issuer: ISSUER,
            cfg: &cfg,
            local: &local,
            now: NOW,
        };
        s.apply_refresh(
            &ctx,
            1,
            &tokens("rt1"),
            RefreshWrite::Unchanged,
            &tokens("rt1"),
            "ok",
            NOW + 900,
        )
        .unwrap();
        let c = s.candidate("alice").unwrap().unwrap();
        assert_eq!((c.failures, c.next_refresh_at), (0, Some(NOW + 900)));
    }
}
