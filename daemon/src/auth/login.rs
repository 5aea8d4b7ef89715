//! Device-flow logins in progress, keyed by a daemon-issued id.
//!
//! `LoginStart` asks the provider for a code (synchronously: the PAM module needs it to show)
//! and starts one polling thread. `LoginWait` waits a few seconds for the outcome. The login
//! ends when it is approved or refused, when it expires, when `LoginCancel` arrives, or when the
//! connection that started it closes (the PAM conversation went away: sshd's LoginGraceTime,
//! a disconnected client, Ctrl-C) — then polling stops at once.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::{ErrorCode, LoginFailure, LoginPrompt};

use super::{flow, qr};
use crate::handler::Peer;
use crate::oidc::device;
use crate::state::{State, lock};

/// Longest a `LoginWait` blocks before answering "pending".
pub const WAIT_MAX: Duration = Duration::from_secs(3);
/// How often a blocked `LoginWait` checks that its connection is still there.
pub const HANG_UP_CHECK: Duration = Duration::from_millis(100);
/// Concurrent logins for one user name (a bound on code requests made in someone's name).
const MAX_PER_USER: usize = 3;

/// Logins in progress.
#[derive(Default)]
pub struct Logins {
    map: Mutex<HashMap<String, Arc<Login>>>,
    started: AtomicU64,
}

/// One login.
pub struct Login {
    /// Its id.
    pub id: String,
    /// PAM_USER.
    pub user: String,
    /// PAM_SERVICE.
    pub service: String,
    /// PAM_RHOST.
    pub rhost: Option<String>,
    /// When it was started.
    pub started: Instant,
    /// When it gives up.
    pub deadline: Instant,
    outcome: Mutex<Outcome>,
    cond: Condvar,
}

enum Outcome {
    Running,
    Cancelled,
    Done(Box<Response>),
}

impl Login {
    /// Sleeps up to `d`; `true` if the login was cancelled meanwhile.
    pub fn sleep_unless_cancelled(&self, d: Duration) -> bool {
        let guard = lock(&self.outcome);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, d, |o| matches!(o, Outcome::Running))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !matches!(*guard, Outcome::Running)
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(*lock(&self.outcome), Outcome::Cancelled)
    }

    /// Records the outcome (once) and wakes waiters.
    pub fn finish(&self, resp: Response) {
        let mut o = lock(&self.outcome);
        if matches!(*o, Outcome::Running) {
            *o = Outcome::Done(Box::new(resp));
        }
        self.cond.notify_all();
    }

    fn cancel(&self) {
        let mut o = lock(&self.outcome);
        if matches!(*o, Outcome::Running) {
            *o = Outcome::Cancelled;
        }
        self.cond.notify_all();
    }

    /// Describes the login for log lines: user, service and remote host.
    pub fn describe(&self) -> String {
        match &self.rhost {
            Some(r) => format!("{} (service {}, from {r})", self.user, self.service),
            None => format!("{} (service {})", self.user, self.service),
        }
    }
}

impl Logins {
    /// Logins in progress.
    pub fn count(&self) -> usize {
        lock(&self.map).len()
    }

    /// Logins started since the daemon started.
    pub fn started_total(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    fn get(&self, id: &str) -> Option<Arc<Login>> {
        lock(&self.map).get(id).cloned()
    }

    fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }

    /// Cancels a login (its connection closed, or LoginCancel).
    pub fn cancel(&self, id: &str) {
        if let Some(l) = lock(&self.map).remove(id) {
            l.cancel();
        }
    }
}

/// `LoginStart`.
pub fn start(
    state: &Arc<State>,
    peer: &Peer,
    user: &str,
    service: &str,
    rhost: Option<String>,
    tty: Option<String>,
) -> Response {
    let cfg = state.config();
    let Some(provider) = state.provider() else {
        return failed(
            LoginFailure::ProviderUnavailable,
            "no identity provider is configured on this host",
        );
    };
    if let Err(refusal) = flow::precheck_user(state, user) {
        log::warn!(
            "login {user} (service {service}) refused before asking the provider: {refusal}"
        );
        return failed(LoginFailure::NameRefused, &refusal);
    }
    {
        let map = lock(&state.logins.map);
        if map.len() >= cfg.login.max_logins_in_progress as usize {
            log::warn!(
                "login {user} refused: {} logins already in progress",
                map.len()
            );
            return Response::error(
                ErrorCode::Busy,
                "too many logins in progress; try again shortly",
            );
        }
        if map.values().filter(|l| l.user == user).count() >= MAX_PER_USER {
            return Response::error(
                ErrorCode::Busy,
                format!("too many logins in progress for {user}"),
            );
        }
    }
    let discovered = match provider.discovered() {
        Ok(d) => d,
        Err(e) => {
            log::error!("login {user} (service {service}): {e}");
            // Whatever went wrong (unreachable, or not the provider configured), no login can
            // happen: PAM falls back to other methods (AUTHINFO_UNAVAIL).
            return failed(
                LoginFailure::ProviderUnavailable,
                &format!("the identity provider cannot be used ({e})"),
            );
        }
    };
    let authz = match device::authorize(&provider, &discovered) {
        Ok(a) => a,
        Err(e) => {
            log::error!("login {user} (service {service}): device authorization: {e}");
            return failed(
                LoginFailure::ProviderUnavailable,
                &format!("the identity provider refused to start a login ({e})"),
            );
        }
    };
    let id = match random_id() {
        Ok(id) => id,
        Err(e) => {
            log::error!("cannot read /dev/urandom: {e}");
            return failed(LoginFailure::Internal, "internal error");
        }
    };
    let now = Instant::now();
    let login = Arc::new(Login {
        id: id.clone(),
        user: user.to_string(),
        service: service.to_string(),
        rhost: rhost.clone(),
        started: now,
        deadline: now + cfg.login.timeout.min(authz.expires_in),
        outcome: Mutex::new(Outcome::Running),
        cond: Condvar::new(),
    });
    lock(&state.logins.map).insert(id.clone(), Arc::clone(&login));
    state.logins.started.fetch_add(1, Ordering::Relaxed);
    log::info!(
        "login {} started by pid {}{}: code {} at {}",
        login.describe(),
        peer.pid,
        tty.map(|t| format!(" on {t}")).unwrap_or_default(),
        authz.user_code,
        authz.verification_uri
    );
    let best_uri = authz
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| authz.verification_uri.clone());
    let prompt = LoginPrompt {
        login_id: id.clone(),
        verification_uri: authz.verification_uri.clone(),
        verification_uri_complete: authz.verification_uri_complete.clone(),
        user_code: authz.user_code.clone(),
        expires_in: login.deadline.saturating_duration_since(now).as_secs(),
        host: hostname(),
        qr: cfg.login.qr.then(|| qr::render(&best_uri)).flatten(),
    };
    let spawned = {
        let (state, login) = (Arc::clone(state), Arc::clone(&login));
        std::thread::Builder::new()
            .name("login".into())
            .spawn(move || {
                flow::run(&state, &provider, &discovered, &login, &authz);
            })
    };
    if let Err(e) = spawned {
        log::error!("cannot start the login thread: {e}");
        state.logins.remove(&id);
        return failed(LoginFailure::Internal, "internal error");
    }
    Response::LoginStarted(prompt)
}

/// `LoginWait`: the outcome, or "pending" after at most [`WAIT_MAX`]. `hung_up` tells whether
/// the PAM side went away meanwhile; it is checked every [`HANG_UP_CHECK`], and a login whose
/// conversation is gone is cancelled at once instead of polling the provider until it ends.
pub fn wait(state: &State, id: &str, hung_up: &dyn Fn() -> bool) -> Response {
    let Some(login) = state.logins.get(id) else {
        return failed(
            LoginFailure::UnknownLogin,
            "this login is unknown (it expired or the daemon restarted)",
        );
    };
    let until = Instant::now() + WAIT_MAX;
    let mut guard = lock(&login.outcome);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let (g, _) = login
            .cond
            .wait_timeout_while(guard, left.min(HANG_UP_CHECK), |o| {
                matches!(o, Outcome::Running)
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard = g;
        if !matches!(*guard, Outcome::Running) || left <= HANG_UP_CHECK {
            break;
        }
        if hung_up() {
            drop(guard);
            log::info!(
                "login {}: the PAM conversation went away; cancelled",
                login.describe()
            );
            state.logins.cancel(id);
            return failed(LoginFailure::Cancelled, "the login was cancelled");
        }
    }
    match std::mem::replace(&mut *guard, Outcome::Cancelled) {
        Outcome::Running => {
            *guard = Outcome::Running;
            Response::LoginPending
        }
        Outcome::Cancelled => failed(LoginFailure::Cancelled, "the login was cancelled"),
        Outcome::Done(resp) => {
            drop(guard);
            state.logins.remove(id);
            *resp
        }
    }
}

/// `LoginCancel`.
pub fn cancel(state: &State, id: &str) -> Response {
    if state.logins.get(id).is_some() {
        log::info!("login {id:.8}… cancelled by the PAM module");
    }
    state.logins.cancel(id);
    Response::Done {
        message: "cancelled".into(),
    }
}

/// A `LoginFailed` answer.
pub fn failed(reason: LoginFailure, message: &str) -> Response {
    Response::LoginFailed {
        reason,
        message: message.to_string(),
    }
}

fn random_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty() && h.len() <= 253 && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "this host".into())
}
