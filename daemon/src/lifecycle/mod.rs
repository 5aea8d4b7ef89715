//! The identity lifecycle between logins (issue 9): refresh, revocation, expiry.
//!
//! # Layout
//! - this file: the background thread that refreshes every identity holding a token, each
//!   `refresh.interval` (jittered), `refresh.max_concurrent` at a time, backing off while the
//!   provider fails; `oidcctl user refresh` and `user revoke`; what a login leaves behind.
//! - [`refresh`]: one refresh of one identity, validated and mapped exactly like a login.
//! - [`account`]: what the PAM account phase refuses: revoked identities, and identities the
//!   provider has not confirmed recently enough (`refresh.entry_ttl`, or
//!   `access.max_login_age_days` for those without a refresh token).
//! - [`schedule`]: jitter and backoff arithmetic.
//!
//! Every change to users, groups or memberships made here ends with [`State::invalidate`],
//! like the handlers' changes, so cached answers (and any map built from the store) follow.
//!
//! One refresh at a time per identity ([`Lifecycle`] holds it): two refreshes with the same
//! rotating refresh token would make the provider see a reuse and revoke the grant.

pub mod account;
mod refresh;
mod schedule;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::{ErrorCode, RefreshStatus};

pub use refresh::Outcome;

use crate::config::Secret;
use crate::oidc::Provider;
use crate::oidc::device;
use crate::state::{State, lock};
use crate::store::{Candidate, Tokens};

/// Longest the background thread sleeps before looking again (configuration changes, new
/// logins and stops also wake it at once).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Pause between a round that refreshed someone and the next look.
const AFTER_BATCH: Duration = Duration::from_millis(100);
/// How long `oidcctl user refresh` waits for a refresh of the same identity already running.
const HOLD_WAIT: Duration = Duration::from_secs(30);

/// What the lifecycle shares between the background thread and the handlers.
#[derive(Default)]
pub struct Lifecycle {
    busy: Mutex<HashSet<i64>>,
    freed: Condvar,
    wake: Mutex<bool>,
    woken: Condvar,
}

/// One identity held for a refresh; released on drop.
struct Hold<'a> {
    lc: &'a Lifecycle,
    id: i64,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        lock(&self.lc.busy).remove(&self.id);
        self.lc.freed.notify_all();
    }
}

impl Lifecycle {
    /// Wakes the background thread (a login, a configuration change, a stop).
    pub fn wake(&self) {
        *lock(&self.wake) = true;
        self.woken.notify_all();
    }

    fn sleep(&self, d: Duration) {
        let guard = lock(&self.wake);
        let (mut guard, _) = self
            .woken
            .wait_timeout_while(guard, d, |woken| !*woken)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = false;
    }

    fn try_hold(&self, id: i64) -> Option<Hold<'_>> {
        lock(&self.busy).insert(id).then_some(Hold { lc: self, id })
    }

    fn hold(&self, id: i64, wait: Duration) -> Option<Hold<'_>> {
        let guard = lock(&self.busy);
        let (mut guard, timeout) = self
            .freed
            .wait_timeout_while(guard, wait, |busy| busy.contains(&id))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if timeout.timed_out() && guard.contains(&id) {
            return None;
        }
        guard.insert(id);
        Some(Hold { lc: self, id })
    }
}

/// Starts the background refresh thread; it ends soon after `stop` is set and
/// [`Lifecycle::wake`] called (a refresh in flight finishes first, so a rotated refresh token
/// is not lost).
pub fn spawn(state: Arc<State>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("refresh".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let wait =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round(&state, &stop)))
                        .unwrap_or_else(|_| {
                            log::error!("refresh: internal error (panic); trying again later");
                            MAX_SLEEP
                        });
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                state.lifecycle.sleep(wait.min(MAX_SLEEP));
            }
        })
}

/// Refreshes every identity that is due, provider by provider; returns how long to sleep
/// before the next is.
fn round(state: &State, stop: &AtomicBool) -> Duration {
    if !state.config().refresh.enable {
        return MAX_SLEEP;
    }
    state
        .providers()
        .iter()
        .map(|p| round_for(state, p, stop))
        .min()
        .unwrap_or(MAX_SLEEP)
}

/// [`round`] for the identities of one provider.
fn round_for(state: &State, provider: &Provider, stop: &AtomicBool) -> Duration {
    let cfg = state.config();
    let now = state.clock.now();
    let Ok(candidates) = state.with_store(|s| s.refresh_candidates(&provider.config.issuer)) else {
        return MAX_SLEEP;
    };
    let mut due = Vec::new();
    let mut next: Option<i64> = None;
    for c in candidates {
        if !checkable(&c, state, now) {
            continue;
        }
        let at = match c.next_refresh_at {
            Some(at) => at,
            None => {
                let at = schedule::first(now, cfg.refresh.interval, schedule::random_unit());
                let _ = state.with_store(|s| s.set_next_refresh(c.user_id, Some(at)));
                at
            }
        };
        if at <= now {
            due.push(c);
        } else {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    if !due.is_empty() {
        batch(state, provider, due, cfg.refresh.max_concurrent, stop);
        // Every identity refreshed has its next time written: look again soon (not at once:
        // one held by `oidcctl user refresh` meanwhile is still due).
        return AFTER_BATCH;
    }
    next.map_or(MAX_SLEEP, |at| {
        Duration::from_secs(u64::try_from(at.saturating_sub(state.clock.now())).unwrap_or(0))
    })
}

/// Whether the daemon holds something to re-check `c` with.
fn checkable(c: &Candidate, state: &State, now: i64) -> bool {
    c.tokens.refresh_token.is_some()
        || (state.config().refresh.userinfo_recheck
            && c.tokens.access_token.is_some()
            && c.tokens.access_expires_at.is_some_and(|e| e > now + 5))
}

/// Refreshes `due` with at most `workers` at once. Once one finds the provider unreachable,
/// the others are not sent to it again this round: they back off as if they had tried.
fn batch(state: &State, provider: &Provider, due: Vec<Candidate>, workers: u32, stop: &AtomicBool) {
    let d = match provider.discovered(Instant::now() + crate::oidc::refresh::REQUEST_BUDGET) {
        Ok(d) => d,
        Err(e) => {
            let outcome = Outcome::Failed {
                unreachable: true,
                why: e.to_string(),
            };
            for c in &due {
                finish(state, c, &outcome, Duration::ZERO);
            }
            return;
        }
    };
    let n = due.len().min(workers.max(1) as usize);
    let queue = Mutex::new(due);
    let down = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..n {
            let spawned = std::thread::Builder::new()
                .name("refresh-worker".into())
                .spawn_scoped(s, || {
                    while !stop.load(Ordering::SeqCst) {
                        let Some(c) = lock(&queue).pop() else { break };
                        let Some(_hold) = state.lifecycle.try_hold(c.user_id) else {
                            continue;
                        };
                        let started = Instant::now();
                        let outcome = if down.load(Ordering::SeqCst) {
                            Outcome::Failed {
                                why: "provider unreachable (not asked again this round)".into(),
                                unreachable: true,
                            }
                        } else {
                            refresh::one(state, provider, &d, &c)
                        };
                        if matches!(
                            outcome,
                            Outcome::Failed {
                                unreachable: true,
                                ..
                            }
                        ) {
                            down.store(true, Ordering::SeqCst);
                        }
                        finish(state, &c, &outcome, started.elapsed());
                    }
                });
            if let Err(e) = spawned {
                log::error!("refresh: cannot start a worker thread: {e}");
            }
        }
    });
}

/// Records what the refresh itself did not (failures and their backoff, the next check of an
/// identity with nothing to refresh) and logs the one line for this outcome.
fn finish(state: &State, c: &Candidate, outcome: &Outcome, took: Duration) {
    let cfg = state.config();
    let now = state.clock.now();
    let ms = took.as_millis();
    match outcome {
        Outcome::Confirmed(what) => {
            log::info!("refresh {}: ok in {ms} ms: {what}", c.name);
        }
        Outcome::Denied(why) => log::warn!(
            "refresh {}: access refused ({why}): provider and admin groups dropped; the account \
             phase refuses {} until the provider's claims pass again",
            c.name,
            c.name
        ),
        Outcome::Revoked(why) => log::warn!(
            "refresh {}: revoked: {why}; {} keeps the passwd entry, loses provider and admin \
             groups, and must log in through the identity provider again",
            c.name,
            c.name
        ),
        Outcome::Failed { why, .. } => {
            let failures = c.failures.saturating_add(1);
            let delay = schedule::backoff(failures, cfg.refresh.retry_min, cfg.refresh.retry_max);
            let next = now + schedule::jittered(delay, schedule::random_unit());
            let result = format!("failed: {why}");
            let n = state
                .with_store(|s| s.record_refresh_failure(c.user_id, &result, now, next))
                .unwrap_or(failures);
            log::warn!(
                "refresh {} failed ({n} in a row): {why}; next try in {}",
                c.name,
                account::span(next - now)
            );
        }
        Outcome::Nothing(why) => {
            let next = now + schedule::jittered(cfg.refresh.interval, schedule::random_unit());
            let _ = state.with_store(|s| s.set_next_refresh(c.user_id, Some(next)));
            log::debug!("refresh {}: nothing to do: {why}", c.name);
        }
        Outcome::Superseded => {
            log::info!(
                "refresh {}: the identity changed meanwhile (a login or a revocation); result dropped",
                c.name
            );
        }
    }
}

/// `oidcctl user refresh NAME`: refreshes now and says what came of it.
pub fn refresh_now(state: &State, name: &str) -> Response {
    let found = match state.with_store(|s| s.candidate(name)) {
        Ok(Some(c)) => c,
        Ok(None) => return Response::NotFound,
        Err(reason) => return Response::Unavailable { reason },
    };
    let Some(provider) = state.provider_by_issuer(&found.issuer) else {
        return Response::error(
            ErrorCode::Unavailable,
            format!(
                "{name}'s identity provider {} is not configured (or could not be set up)",
                found.issuer
            ),
        );
    };
    let Some(_hold) = state.lifecycle.hold(found.user_id, HOLD_WAIT) else {
        return Response::error(ErrorCode::Busy, format!("a refresh of {name} is running"));
    };
    // Read again under the hold: a refresh that just ended may have rotated the tokens.
    let c = match state.with_store(|s| s.candidate(name)) {
        Ok(Some(c)) if c.user_id == found.user_id => c,
        Ok(_) => return Response::NotFound,
        Err(reason) => return Response::Unavailable { reason },
    };
    if let Some(at) = c.revoked_at {
        return Response::error(
            ErrorCode::Rejected,
            format!(
                "{name} was revoked on {}: only a new login through the identity provider restores it",
                account::date(at)
            ),
        );
    }
    let started = Instant::now();
    let outcome = match provider.discovered(Instant::now() + crate::oidc::refresh::REQUEST_BUDGET) {
        Ok(d) => refresh::one(state, &provider, &d, &c),
        Err(e) => Outcome::Failed {
            unreachable: true,
            why: e.to_string(),
        },
    };
    finish(state, &c, &outcome, started.elapsed());
    let done = |message: String| Response::Done { message };
    match outcome {
        Outcome::Confirmed(what) => done(format!("{name} refreshed: {what}")),
        Outcome::Denied(why) => done(format!(
            "{name} refreshed, and refused by the access rules: {why}"
        )),
        Outcome::Revoked(why) => done(format!("{name} revoked: {why}")),
        Outcome::Failed { why, .. } => Response::error(
            ErrorCode::Unavailable,
            format!("refresh of {name} failed, nothing changed: {why}"),
        ),
        Outcome::Nothing(why) => Response::error(
            ErrorCode::Rejected,
            format!("{name} cannot be refreshed: {why}"),
        ),
        Outcome::Superseded => done(format!(
            "{name} changed meanwhile (a login or a revocation); nothing written"
        )),
    }
}

/// `oidcctl user revoke NAME`: revokes now, locally.
pub fn revoke_now(state: &State, name: &str, by_uid: u32) -> Response {
    let now = state.clock.now();
    let reason = format!("revoked on this host with oidcctl user revoke by uid {by_uid}");
    let done = state.with_store(|s| s.revoke(name, &reason, now, None));
    state.invalidate();
    match done {
        Ok(true) => {
            log::warn!(
                "user {name} revoked by uid {by_uid}: account phase refused, provider and admin \
                 groups dropped, tokens forgotten, until a new login through the provider"
            );
            Response::Done {
                message: format!(
                    "{name} revoked: refused by the account phase until a new login through the \
                     identity provider; provider and admin groups dropped; the passwd entry stays"
                ),
            }
        }
        Ok(false) => Response::NotFound,
        Err(reason) => Response::Unavailable { reason },
    }
}

/// After the device-flow login `login_id` ended in `resp`: when approved, keeps the tokens,
/// ends a revocation, schedules the first refresh, and invites the user to set an offline PIN
/// when `[offline]` allows. A failure to keep the tokens is logged: the identity then has no
/// token to be refreshed with, and a revocation stays (fail closed).
pub fn after_login(
    state: &State,
    login_id: &str,
    resp: Response,
    tokens: &device::Tokens,
) -> Response {
    let Response::LoginApproved { user, .. } = resp else {
        return resp;
    };
    keep_tokens(state, &user, tokens);
    let offline_pin = state.offline.invite(state, login_id, &user);
    Response::LoginApproved { user, offline_pin }
}

fn keep_tokens(state: &State, name: &str, tokens: &device::Tokens) {
    let cfg = state.config();
    let now = state.clock.now();
    let t = Tokens {
        refresh_token: tokens.refresh_token.clone().map(Secret::new),
        access_token: Some(Secret::new(tokens.access_token.clone())),
        access_expires_at: tokens.expires_in.map(|s| now.saturating_add_unsigned(s)),
    };
    let next = now + schedule::jittered(cfg.refresh.interval, schedule::random_unit());
    match state.with_store(|s| s.save_login_tokens(name, &t, now, next)) {
        Ok(true) if t.refresh_token.is_some() => log::info!(
            "login {name}: refresh token kept; next refresh in {}",
            account::span(next - now)
        ),
        Ok(true) => log::info!(
            "login {name}: the provider issued no refresh token; {name} is re-checked at \
             userinfo while the access token lives, then access.max_login_age_days applies"
        ),
        Ok(false) => {}
        Err(why) => log::error!("login {name}: cannot keep the tokens: {why}"),
    }
    state.invalidate();
    state.lifecycle.wake();
}

/// For `oidcctl status`.
pub fn status(state: &State) -> RefreshStatus {
    let cfg = state.config();
    let summary = state
        .with_store(|s| s.refresh_summary())
        .unwrap_or_default();
    RefreshStatus {
        enabled: cfg.refresh.enable && !state.providers().is_empty(),
        interval_secs: cfg.refresh.interval.as_secs_f64(),
        refreshable: summary.refreshable,
        revoked: summary.revoked,
        failing: summary.failing,
        last_refresh_at: summary.last_refresh_at,
        last_refresh: summary.last_refresh,
        next_refresh_at: summary.next_refresh_at,
    }
}
