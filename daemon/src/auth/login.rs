//! Device-flow logins in progress, keyed by a daemon-issued id.
//!
//! `LoginStart` reserves a place among the logins in progress (evicting older ones by the
//! rules of [`super::limits`]), then asks the provider for a code within [`START_BUDGET`]
//! (synchronously: the PAM module needs it to show) and starts one polling thread. `LoginWait`
//! waits a few seconds for the outcome. The login ends when it is approved or refused, when it
//! expires, when `LoginCancel` arrives, when a newer login evicts it, or when the connection
//! that started it closes (the PAM conversation went away: sshd's LoginGraceTime, a
//! disconnected client, Ctrl-C) — then polling stops at once.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::{LoginFailure, LoginPrompt};

use super::flow::{self, PrecheckRefusal};
use super::limits::{self, Held, Reason};
use super::{qr, route, sshd};
use crate::audit::{self, Event};
use crate::config::{Config, UidSource};
use crate::handler::Peer;
use crate::identity::other_sources;
use crate::oidc::device;
use crate::state::{State, StoreFailure, lock};

/// Longest a `LoginWait` blocks before answering "pending".
pub const WAIT_MAX: Duration = Duration::from_secs(3);
/// How often a blocked `LoginWait` checks that its connection is still there.
pub const HANG_UP_CHECK: Duration = Duration::from_millis(100);
/// Everything `LoginStart` asks the provider (discovery and keys when not cached, then the
/// device authorization) fits in this. With the other NSS sources' check before it (at most
/// [`other_sources::LOGIN_BUDGET`], 2 s), the daemon answers within 12 s, before the PAM
/// module's deadline for `LoginStart` (15 s), with a reason of its own.
pub const START_BUDGET: Duration = Duration::from_secs(10);

/// What an evicted login's user is told.
const EVICTED: &str = "this login was ended to make room for newer ones (too many logins in \
                       progress); start again";

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
    /// Where it comes from, for the limits: PAM_RHOST, or `local:` and the service.
    pub source: String,
    /// The UID the user resolved to for the program running PAM when the login began (a stored
    /// user, or the provisional entry handed to sshd). That program holds it, so the login
    /// must end with exactly this UID or be refused.
    pub resolved_uid: Option<u32>,
    /// When it was started.
    pub started: Instant,
    deadline: Mutex<Instant>,
    outcome: Mutex<Outcome>,
    cond: Condvar,
}

enum Outcome {
    /// Waiting for the approval.
    Running,
    /// The tokens arrived and are being checked: not evicted, still in progress.
    Deciding,
    Cancelled,
    Done(Box<Response>),
}

impl Login {
    fn new(
        id: String,
        user: &str,
        service: &str,
        rhost: Option<String>,
        resolved_uid: Option<u32>,
        deadline: Instant,
    ) -> Self {
        let source = source_of(service, rhost.as_deref());
        Self {
            id,
            user: user.to_string(),
            service: service.to_string(),
            rhost,
            source,
            resolved_uid,
            started: Instant::now(),
            deadline: Mutex::new(deadline),
            outcome: Mutex::new(Outcome::Running),
            cond: Condvar::new(),
        }
    }

    /// A login as `LoginStart` would make it (tests of the flow).
    #[cfg(test)]
    pub fn for_test(user: &str, service: &str, resolved_uid: Option<u32>) -> Self {
        Self::new(
            "test-login".into(),
            user,
            service,
            None,
            resolved_uid,
            Instant::now() + Duration::from_secs(300),
        )
    }

    /// When it gives up.
    pub fn deadline(&self) -> Instant {
        *lock(&self.deadline)
    }

    /// Sleeps up to `d`; `true` if the login ended meanwhile (cancelled or evicted).
    pub fn sleep_unless_cancelled(&self, d: Duration) -> bool {
        let guard = lock(&self.outcome);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, d, |o| matches!(o, Outcome::Running))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !matches!(*guard, Outcome::Running)
    }

    /// Whether it ended before its verdict (cancelled, evicted).
    pub fn is_cancelled(&self) -> bool {
        !matches!(*lock(&self.outcome), Outcome::Running | Outcome::Deciding)
    }

    /// The tokens arrived: from now on the login is not evicted. `false` if it already ended.
    pub fn begin_decide(&self) -> bool {
        let mut o = lock(&self.outcome);
        if matches!(*o, Outcome::Running) {
            *o = Outcome::Deciding;
            true
        } else {
            false
        }
    }

    /// Records the outcome (once) and wakes waiters.
    pub fn finish(&self, resp: Response) {
        let mut o = lock(&self.outcome);
        if matches!(*o, Outcome::Running | Outcome::Deciding) {
            *o = Outcome::Done(Box::new(resp));
        }
        self.cond.notify_all();
    }

    fn cancel(&self) {
        let mut o = lock(&self.outcome);
        if matches!(*o, Outcome::Running | Outcome::Deciding) {
            *o = Outcome::Cancelled;
        }
        self.cond.notify_all();
    }

    fn in_progress(&self) -> bool {
        matches!(*lock(&self.outcome), Outcome::Running | Outcome::Deciding)
    }

    fn evictable(&self) -> bool {
        matches!(*lock(&self.outcome), Outcome::Running)
    }

    /// Describes the login for log lines: user, service and remote host.
    pub fn describe(&self) -> String {
        match &self.rhost {
            Some(r) => format!("{} (service {}, from {r})", self.user, self.service),
            None => format!("{} (service {})", self.user, self.service),
        }
    }

    /// An audit record about this login.
    pub fn audit(&self, event: Event, outcome: &str) -> audit::Record {
        audit::record(event, outcome)
            .field("user", self.user.as_str())
            .field("service", self.service.as_str())
            .opt("rhost", self.rhost.as_deref())
    }
}

/// The source a login counts against: the remote host, or the local service.
pub fn source_of(service: &str, rhost: Option<&str>) -> String {
    match rhost {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => format!("local:{service}"),
    }
}

impl Logins {
    /// Logins in progress (not yet decided).
    pub fn count(&self) -> usize {
        lock(&self.map).values().filter(|l| l.in_progress()).count()
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

    /// Makes room for `login` by the rules of [`limits`] and inserts it, before anything is
    /// asked of the provider. `false` when no room can be made (every login that would have to
    /// go is being decided).
    fn reserve(&self, login: &Arc<Login>, cfg: &Config) -> bool {
        let mut map = lock(&self.map);
        let held: Vec<Held> = map
            .values()
            .filter(|l| l.in_progress())
            .map(|l| Held {
                id: l.id.clone(),
                source: l.source.clone(),
                started: l.started,
                evictable: l.evictable(),
            })
            .collect();
        let Some(evict) = limits::make_room(
            &held,
            &login.source,
            cfg.login.max_logins_in_progress as usize,
            cfg.login.max_logins_per_source as usize,
        ) else {
            return false;
        };
        for (id, why) in evict {
            let Some(old) = map.get(&id) else { continue };
            // Kept in the map until its connection collects the verdict or closes.
            old.finish(flow_failed(LoginFailure::Cancelled, EVICTED));
            let why = match why {
                Reason::SourceFull => format!(
                    "{} already has login.max_logins_per_source ({}) in progress",
                    old.source, cfg.login.max_logins_per_source
                ),
                Reason::TotalFull => format!(
                    "login.max_logins_in_progress ({}) reached; {} holds the most",
                    cfg.login.max_logins_in_progress, old.source
                ),
            };
            log::warn!(
                "login {} evicted for a newer one from {}: {why}",
                old.describe(),
                login.source
            );
            old.audit(Event::LoginRefused, "evicted")
                .field("reason", "evicted")
                .field("message", why)
                .emit();
        }
        map.insert(login.id.clone(), Arc::clone(login));
        self.started.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// `LoginPrecheck`: whether [`start`] would go as far as asking the provider, decided from
/// memory, the account files and the identity cache (no network, no helper process), so the
/// PAM module can ask it with a deadline of a fraction of a second.
pub fn precheck(state: &State, user: &str, service: &str, rhost: Option<&str>) -> Response {
    let provider = match route::provider_for(state, user) {
        Ok(p) => p,
        Err(u) if u.reason == LoginFailure::NameRefused => {
            log::info!("login {user} (service {service}) refused: {}", u.message);
            return not_ours(user, service, rhost, &u.message);
        }
        Err(u) => return failed(u.reason, &u.message),
    };
    let cfg = state.config().scoped(&provider.config);
    match flow::precheck_user(state, &cfg, user) {
        Ok(()) => Response::LoginPossible,
        Err(PrecheckRefusal::NotOurs(why)) => {
            log::info!(
                "login {user} (service {service}) refused before asking the provider: {why}"
            );
            not_ours(user, service, rhost, &why)
        }
        Err(PrecheckRefusal::Unavailable(why)) => {
            log::error!("login {user} (service {service}): {why}");
            Response::Unavailable {
                reason: "oidcd cannot check this user now (see its log)".into(),
            }
        }
    }
}

/// Refuses `user` as not the daemon's to serve (quietly, for the PAM module), with its audit
/// event.
fn not_ours(user: &str, service: &str, rhost: Option<&str>, why: &str) -> Response {
    audit::record(Event::LoginRefused, "not_ours")
        .field("user", user)
        .field("service", service)
        .opt("rhost", rhost)
        .field("reason", failure_name(LoginFailure::NameRefused))
        .field("message", why)
        .emit();
    failed(LoginFailure::NameRefused, why)
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
    let refused = |reason: LoginFailure, outcome: &str, message: &str| {
        audit::record(Event::LoginRefused, outcome)
            .field("user", user)
            .field("service", service)
            .opt("rhost", rhost.as_deref())
            .field("reason", failure_name(reason))
            .field("message", message)
            .emit();
        failed(reason, message)
    };
    let provider = match route::provider_for(state, user) {
        Ok(p) => p,
        Err(u) => {
            log::warn!("login {user} (service {service}) refused: {}", u.message);
            return refused(u.reason, "refused", &u.message);
        }
    };
    // The configuration as this provider sees it: its claims, gates and mapping.
    let cfg = cfg.scoped(&provider.config);
    match flow::precheck_user(state, &cfg, user) {
        Ok(()) => {}
        Err(PrecheckRefusal::NotOurs(why)) => {
            log::info!(
                "login {user} (service {service}) refused before asking the provider: {why}"
            );
            return refused(LoginFailure::NameRefused, "not_ours", &why);
        }
        Err(PrecheckRefusal::Unavailable(why)) => {
            log::error!("login {user} (service {service}): {why}");
            return Response::Unavailable {
                reason: "oidcd cannot check this user now (see its log)".into(),
            };
        }
    }
    if let Err(resp) = check_other_sources(state, &cfg, user, service, rhost.as_deref()) {
        return *resp;
    }
    let resolved_uid = match resolve_for_peer(state, &cfg, peer, user) {
        Ok(uid) => uid,
        Err(Unresolved::Store(e)) => {
            log::error!("login {user} (service {service}): {e}");
            return Response::Unavailable {
                reason: "the identity cache is unavailable (see oidcd's log)".into(),
            };
        }
        Err(Unresolved::NoEntry) => {
            let why = format!(
                "{user} is new to this host and its provisional entry, which sshd was given when \
                 the connection began, has expired or was withdrawn: connect again"
            );
            log::warn!("login {user} (service {service}) refused: {why}");
            return refused(LoginFailure::Expired, "refused", &why);
        }
    };
    if let Some(resp) = super::resume::offer(state, user, service, rhost.as_deref(), resolved_uid) {
        return resp;
    }
    let id = match random_id() {
        Ok(id) => id,
        Err(e) => {
            log::error!("cannot read /dev/urandom: {e}");
            return failed(LoginFailure::Internal, "internal error");
        }
    };
    let login = Arc::new(Login::new(
        id.clone(),
        user,
        service,
        rhost.clone(),
        resolved_uid,
        Instant::now() + cfg.login.timeout,
    ));
    if !state.logins.reserve(&login, &cfg) {
        log::warn!(
            "login {} refused: every login in progress is being decided",
            login.describe()
        );
        audit::record(Event::LoginRefused, "busy")
            .field("user", user)
            .field("service", service)
            .opt("rhost", rhost.as_deref())
            .field("reason", "busy")
            .emit();
        return Response::error(
            oidc_proto::types::ErrorCode::Busy,
            "too many logins in progress; try again shortly",
        );
    }
    let budget = Instant::now() + START_BUDGET;
    let discovered = match provider.discovered(budget) {
        Ok(d) => d,
        Err(e) => {
            state.logins.remove(&id);
            log::error!("login {}: {e}", login.describe());
            // Whatever went wrong (unreachable, or not the provider configured), no login can
            // happen: PAM falls back to other methods (AUTHINFO_UNAVAIL).
            return refused(
                LoginFailure::ProviderUnavailable,
                "refused",
                &format!("the identity provider cannot be used ({e})"),
            );
        }
    };
    let authz = match device::authorize(&provider, &discovered, budget) {
        Ok(a) => a,
        Err(e) => {
            state.logins.remove(&id);
            log::error!("login {}: device authorization: {e}", login.describe());
            return refused(
                LoginFailure::ProviderUnavailable,
                "refused",
                &format!("the identity provider refused to start a login ({e})"),
            );
        }
    };
    if login.is_cancelled() {
        // Evicted while the provider was asked.
        state.logins.remove(&id);
        return failed(LoginFailure::Cancelled, EVICTED);
    }
    let now = Instant::now();
    let deadline = now + cfg.login.timeout.min(authz.expires_in);
    *lock(&login.deadline) = deadline;
    log::info!(
        "login {} started by pid {}{}: provider {}, code {} at {}",
        login.describe(),
        peer.pid,
        tty.map(|t| format!(" on {t}")).unwrap_or_default(),
        provider.config.id,
        authz.user_code,
        authz.verification_uri
    );
    let mut started = login
        .audit(Event::LoginStarted, "started")
        .field("issuer", provider.config.issuer.as_str());
    if let Some(uid) = resolved_uid {
        started = started.number("uid", u64::from(uid));
    }
    started.emit();
    let best_uri = authz
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| authz.verification_uri.clone());
    let prompt = LoginPrompt {
        login_id: id.clone(),
        verification_uri: authz.verification_uri.clone(),
        verification_uri_complete: authz.verification_uri_complete.clone(),
        user_code: authz.user_code.clone(),
        expires_in: deadline.saturating_duration_since(now).as_secs(),
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

/// Refuses a name another NSS source (sss, ldap...) has, before the provider is asked: it is
/// not oidcd's to serve (issue 15 #5). Local accounts (linked) and names in
/// `mapping.allow_names` are not looked up.
fn check_other_sources(
    state: &State,
    cfg: &Config,
    user: &str,
    service: &str,
    rhost: Option<&str>,
) -> Result<(), Box<Response>> {
    let local = state
        .local()
        .map(|l| l.users.contains_key(user))
        .unwrap_or(false);
    if local || cfg.mapping.allow_names.iter().any(|n| n == user) {
        return Ok(());
    }
    match other_sources::lookup(&[user], &[], other_sources::LOGIN_BUDGET) {
        Ok(known) if known.users.contains(user) => {
            let why = format!(
                "{user} is an account of another NSS source on this host (see nsswitch.conf); \
                 oidcd does not serve it"
            );
            log::warn!("login {user} (service {service}) refused: {why}");
            Err(Box::new(not_ours(user, service, rhost, &why)))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            log::error!("login {user} (service {service}): {e}");
            Err(Box::new(Response::Unavailable {
                reason: "oidcd cannot check this host's other account sources now (see its log)"
                    .into(),
            }))
        }
    }
}

/// Why the user's entry for the PAM program could not be established.
enum Unresolved {
    /// The store cannot be read.
    Store(StoreFailure),
    /// sshd got a provisional entry at the connection's start that is gone now: it holds a
    /// UID nobody can promise any more.
    NoEntry,
}

/// The UID the program running PAM resolved `user` to (see [`Login::resolved_uid`]): a stored
/// user's, or for sshd the provisional entry's, which is pinned for the whole login.
fn resolve_for_peer(
    state: &State,
    cfg: &Config,
    peer: &Peer,
    user: &str,
) -> Result<Option<u32>, Unresolved> {
    if let Some(u) = state
        .store(|s| s.user_by_name(user))
        .map_err(Unresolved::Store)?
    {
        return Ok(Some(u.uid));
    }
    if !sshd::is_sshd(cfg, peer.uid, peer.pid) {
        return Ok(None);
    }
    let local = state
        .local()
        .map(|l| l.users.contains_key(user))
        .unwrap_or(false);
    if local {
        // A linked local account: sshd resolved it from the files.
        return Ok(None);
    }
    match state.pin_provisional(user, Instant::now() + cfg.login.timeout) {
        Some(uid) => Ok(Some(uid)),
        None if cfg.mapping.uid_source == UidSource::Hash => Err(Unresolved::NoEntry),
        None => Ok(None),
    }
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
                matches!(o, Outcome::Running | Outcome::Deciding)
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard = g;
        if !matches!(*guard, Outcome::Running | Outcome::Deciding) || left <= HANG_UP_CHECK {
            break;
        }
        if hung_up() {
            drop(guard);
            log::info!(
                "login {}: the PAM conversation went away; cancelled",
                login.describe()
            );
            login
                .audit(Event::LoginRefused, "cancelled")
                .field("reason", "cancelled")
                .field("message", "the PAM conversation went away")
                .emit();
            state.logins.cancel(id);
            return failed(LoginFailure::Cancelled, "the login was cancelled");
        }
    }
    match std::mem::replace(&mut *guard, Outcome::Cancelled) {
        o @ (Outcome::Running | Outcome::Deciding) => {
            *guard = o;
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
    if let Some(login) = state.logins.get(id) {
        log::info!("login {id:.8}… cancelled by the PAM module");
        if login.in_progress() {
            login
                .audit(Event::LoginRefused, "cancelled")
                .field("reason", "cancelled")
                .field("message", "cancelled by the PAM module")
                .emit();
        }
    }
    state.logins.cancel(id);
    Response::Done {
        message: "cancelled".into(),
    }
}

/// A `LoginFailed` answer.
pub fn failed(reason: LoginFailure, message: &str) -> Response {
    flow_failed(reason, message)
}

fn flow_failed(reason: LoginFailure, message: &str) -> Response {
    Response::LoginFailed {
        reason,
        message: message.to_string(),
    }
}

/// The wire name of a failure, for the audit trail.
pub fn failure_name(reason: LoginFailure) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"))
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
