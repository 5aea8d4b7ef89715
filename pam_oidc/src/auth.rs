//! `auth`: the device-flow login, as one loop over the daemon's answers.
//!
//! On one connection (the daemon cancels the login when it closes):
//! 0. `LoginPrecheck` within [`crate::local::quick_deadline`]: is the user the daemon's at all?
//!    Answered from memory, so a frozen or overloaded daemon costs a local account's login a
//!    quarter of a second, not the `LoginStart` deadline (issue 15 #9); a
//!    daemon older than this request answers `bad_request`, and the login goes on;
//! 1. `LoginStart` → `LoginStarted` with the URL, code, host and QR;
//! 2. one prompt holding all of it ([`crate::prompt`]); the answer is discarded;
//! 3. `LoginWait` until `LoginApproved` for exactly this user, `LoginFailed`, an error, or the
//!    deadline (`timeout=`, or the code's `expires_in` if sooner).
//!
//! With `[offline]` on in the daemon, an approval may invite the user to set an offline PIN,
//! and a `LoginStart` that finds the provider unreachable may offer a login with it
//! ([`crate::offline`]).
//!
//! Success is returned only for `LoginApproved` whose user is the one logging in.
//! Every other way out is an [`AuthError`], and every error after the login started sends
//! `LoginCancel` (best effort) before the connection is dropped.
//!
//! Before the prompt the module is silent unless the daemon gives a reason meant for the user,
//! so users the daemon does not manage (root, local accounts) see nothing from this module and
//! go on to the next one. After the prompt every failure says one line.
//!
//! Everything outside is behind small traits ([`Conversation`], [`Daemon`], [`Clock`],
//! [`Log`]) so tests drive the loop with a scripted user, a fake daemon and virtual time.

use std::fmt;
use std::time::{Duration, Instant};

use oidc_proto::client::{Client, ClientError};
use oidc_proto::secret::Secret;
use oidc_proto::types::{ErrorCode, LoginFailure, LoginPrompt};
use oidc_proto::{Request, Response};
use pam::constants::PamResultCode;

use crate::args::Options;
use crate::prompt;
use crate::resume::Resumed;
use crate::syslog::{Level, Log};

/// Budget for connecting to the daemon (a Unix socket: instant unless its backlog is full).
/// `LoginPrecheck` and `AccountCheck`, which the daemon answers from memory and its cache, get
/// [`crate::local::quick_deadline`]: the NSS module's deadline for a local account, so a frozen
/// or overloaded daemon delays local logins by at most that, before any step that may wait on
/// the provider.
pub const CONNECT_DEADLINE: Duration = Duration::from_millis(250);
/// Budget for `LoginStart`: the daemon checks the other NSS sources (at most 2 s) and asks the
/// identity provider for a code (at most 10 s, `auth::login::START_BUDGET`) meanwhile, and
/// answers `ProviderUnavailable` with its reason before this one passes.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// Budget for one `LoginWait`: the daemon answers within about 3 s.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(10);
/// Budget for the best-effort `LoginCancel`.
pub const CANCEL_DEADLINE: Duration = Duration::from_secs(2);
/// `LoginWait`s start at least this far apart, so a daemon that answers "pending" at once
/// is not asked in a busy loop.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest user name the module asks the daemon about, in bytes.
pub const MAX_USER_LEN: usize = oidc_proto::types::MAX_NAME_LEN;

/// Shown once if the user pressed Enter before the login was approved.
pub const WAITING: &str = "Waiting for approval...";

/// The user, as far as this module is concerned.
pub trait Conversation {
    /// Shows `text` as one prompt and waits for the answer, which is discarded: the module
    /// only needs to know the user is done. (Not returning it means a password typed there by
    /// habit is never copied out of pam-bindings' zeroised buffer.)
    fn prompt(&mut self, text: &str) -> Result<(), ConvError>;
    /// Shows `text` as information (`PAM_TEXT_INFO`).
    fn info(&mut self, text: &str) -> Result<(), ConvError>;
    /// Shows `text` as an error (`PAM_ERROR_MSG`).
    fn error(&mut self, text: &str) -> Result<(), ConvError>;
    /// Asks for a secret (`PAM_PROMPT_ECHO_OFF`) and returns what was typed (the offline PIN,
    /// [`crate::offline`]).
    fn secret(&mut self, text: &str) -> Result<Secret, ConvError>;
}

/// The conversation failed: the application has none, the user hit Ctrl-C, the SSH client
/// went away. Holds what the application said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvError(pub String);

/// One connection to the daemon.
pub trait Daemon {
    /// Sends `request` and reads the answer within `timeout`.
    fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, ClientError>;
}

impl Daemon for Client {
    fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        Client::call(self, request, timeout)
    }
}

/// Time, so tests can run a five-minute wait in microseconds.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the module's one sleep, behind the Clock trait so tests control time"
    )]
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Who is logging in, from the PAM items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// PAM_USER.
    pub user: String,
    /// PAM_SERVICE.
    pub service: String,
    /// PAM_RHOST, when set.
    pub rhost: Option<String>,
    /// PAM_TTY, when set.
    pub tty: Option<String>,
}

/// Why a login did not succeed. Each variant says which PAM code it becomes ([`Self::code`]).
#[derive(Debug)]
pub enum AuthError {
    /// PAM_USER is missing, cannot be a user name, or is root: `PAM_USER_UNKNOWN` (or
    /// `PAM_IGNORE`).
    NoUser,
    /// The daemon could not be asked (not running, frozen, untrusted socket, other protocol
    /// version, garbled answer): `PAM_AUTHINFO_UNAVAIL`.
    Daemon(ClientError),
    /// The daemon answered that it cannot serve logins now (`Unavailable`, `Error`, or its
    /// version-mismatch answer): `PAM_AUTHINFO_UNAVAIL`.
    Unavailable(String),
    /// The daemon answered with a message that has no place in this step (a confused or
    /// newer daemon): `PAM_AUTHINFO_UNAVAIL`. Never success, whatever the message was.
    Unexpected {
        /// The request it answered.
        step: &'static str,
        /// The kind of answer.
        got: &'static str,
    },
    /// The daemon's prompt has no URL or no code to show: `PAM_AUTHINFO_UNAVAIL`.
    UnusablePrompt,
    /// The daemon ended the login without success: see [`failure_code`].
    Failed {
        /// Why, as a code.
        reason: LoginFailure,
        /// Why, for the user (already shown).
        message: String,
    },
    /// The daemon approved a login, but for another user than PAM_USER: `PAM_AUTH_ERR`.
    WrongUser {
        /// The user it named.
        approved: String,
    },
    /// The conversation failed (no conversation, Ctrl-C, client gone): `PAM_CONV_ERR`.
    Conversation(ConvError),
    /// Not approved before `timeout=` passed or the code expired: `PAM_AUTH_ERR`.
    TimedOut,
}

impl AuthError {
    /// The PAM code this error returns.
    pub fn code(&self, options: &Options) -> PamResultCode {
        match self {
            Self::NoUser => unknown_user_code(options),
            Self::Daemon(_) | Self::Unavailable(_) | Self::Unexpected { .. } => {
                PamResultCode::PAM_AUTHINFO_UNAVAIL
            }
            Self::UnusablePrompt => PamResultCode::PAM_AUTHINFO_UNAVAIL,
            Self::Failed { reason, .. } => failure_code(*reason, options),
            Self::WrongUser { .. } | Self::TimedOut => PamResultCode::PAM_AUTH_ERR,
            Self::Conversation(_) => PamResultCode::PAM_CONV_ERR,
        }
    }

    /// The one line shown to the user when this ends a login after the prompt was shown.
    /// `None` when the daemon's own message was shown already, or nothing can be shown.
    fn user_message(&self) -> Option<&'static str> {
        match self {
            Self::NoUser | Self::Failed { .. } | Self::Conversation(_) => None,
            Self::Daemon(_)
            | Self::Unavailable(_)
            | Self::Unexpected { .. }
            | Self::UnusablePrompt => Some("The login service stopped answering; login cancelled."),
            Self::WrongUser { .. } => Some("The login was approved for another account."),
            Self::TimedOut => Some("The login was not approved in time."),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUser => f.write_str("not a name oidcd could serve"),
            Self::Daemon(e) => write!(f, "{e}"),
            Self::Unavailable(why) => write!(f, "oidcd cannot serve logins: {why}"),
            Self::Unexpected { step, got } => {
                write!(f, "oidcd answered {step} with {got}")
            }
            Self::UnusablePrompt => f.write_str("oidcd sent a prompt without URL or code"),
            Self::Failed { reason, message } => write!(f, "login failed ({reason:?}): {message}"),
            Self::WrongUser { approved } => write!(
                f,
                "oidcd approved the login for {approved:?}, not for the user logging in"
            ),
            Self::Conversation(e) => write!(f, "conversation failed: {}", e.0),
            Self::TimedOut => f.write_str("not approved in time"),
        }
    }
}

/// The code for a login the daemon ended with `reason`.
pub fn failure_code(reason: LoginFailure, options: &Options) -> PamResultCode {
    match reason {
        // The daemon does not manage this name (a local account, or refused by its rules).
        LoginFailure::NameRefused => unknown_user_code(options),
        LoginFailure::ProviderUnavailable => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        LoginFailure::Denied
        | LoginFailure::Expired
        | LoginFailure::WrongUser
        | LoginFailure::NotAllowed
        | LoginFailure::InvalidToken
        | LoginFailure::Cancelled
        | LoginFailure::UnknownLogin
        | LoginFailure::Internal => PamResultCode::PAM_AUTH_ERR,
    }
}

/// `PAM_USER_UNKNOWN`, or `PAM_IGNORE` with `ignore_unknown_user`.
pub fn unknown_user_code(options: &Options) -> PamResultCode {
    if options.ignore_unknown_user {
        PamResultCode::PAM_IGNORE
    } else {
        PamResultCode::PAM_USER_UNKNOWN
    }
}

/// True if `name` could be a user the daemon manages; anything else is an unknown user
/// without asking (see [`oidc_proto::types::is_plausible_name`]).
pub fn is_plausible_user(name: &str) -> bool {
    oidc_proto::types::is_plausible_name(name)
}

/// One device-flow login: what it talks to, and how.
pub struct Login<'a, C, K, L> {
    /// The module's options.
    pub options: &'a Options,
    /// The user.
    pub conv: &'a mut C,
    /// Time.
    pub clock: &'a K,
    /// Syslog, in the module.
    pub log: &'a L,
}

impl<C: Conversation, K: Clock, L: Log> Login<'_, C, K, L> {
    /// Runs the login for `who` over the connection `connect` opens. `Ok` means the daemon
    /// approved exactly `who.user`.
    pub fn run<D: Daemon>(
        &mut self,
        who: &Who,
        connect: impl FnOnce(Duration) -> Result<D, ClientError>,
    ) -> Result<(), AuthError> {
        if !is_plausible_user(&who.user) {
            return Err(AuthError::NoUser);
        }
        let mut daemon = connect(CONNECT_DEADLINE).map_err(AuthError::Daemon)?;
        let precheck = Request::LoginPrecheck {
            user: who.user.clone(),
            service: who.service.clone(),
            rhost: who.rhost.clone(),
        };
        let answer = daemon
            .call(&precheck, crate::local::quick_deadline(&who.user))
            .map_err(AuthError::Daemon)?;
        match Step::from(answer) {
            // A daemon from before LoginPrecheck: LoginStart checks the same.
            Step::Possible | Step::NotUnderstood(_) => {}
            other => return Err(self.before_prompt("login_precheck", other)),
        }
        let start = Request::LoginStart {
            user: who.user.clone(),
            service: who.service.clone(),
            rhost: who.rhost.clone(),
            tty: who.tty.clone(),
        };
        let mut answer = daemon
            .call(&start, START_DEADLINE)
            .map_err(AuthError::Daemon)?;
        if matches!(answer, Response::ResumeAvailable { .. }) {
            // The last connection was refused after its approval and showed a code. Given up
            // (Enter), the login goes on with a device code, asked for once more.
            if self.resume_login(&mut daemon, who)? == Resumed::Yes {
                return Ok(());
            }
            answer = daemon
                .call(&start, START_DEADLINE)
                .map_err(AuthError::Daemon)?;
        }
        let login = match Step::from(answer) {
            Step::Started(login) => login,
            // The provider cannot be used, and this user has an offline PIN.
            Step::Offline => return self.offline_login(&mut daemon, who),
            other => return Err(self.before_prompt("login_start", other)),
        };
        self.debug(&format!(
            "login {} started for {}, code valid for {} s",
            login.login_id, who.user, login.expires_in
        ));
        let result = self.prompt_and_wait(&mut daemon, who, &login);
        if let Err(e) = &result {
            if !matches!(e, AuthError::Failed { .. }) {
                self.cancel(&mut daemon, &login.login_id);
            }
            if let Some(line) = e.user_message() {
                self.show_error(line);
            }
        }
        result
    }

    /// The error for an answer, before the prompt, that does not let the login go on (the
    /// answer to `step`). No login exists yet, so there is nothing to cancel.
    fn before_prompt(&mut self, step: &'static str, answer: Step) -> AuthError {
        match answer {
            Step::Failed(reason, message) => {
                // "Not ours" stays quiet: the next module in the stack takes this user.
                if reason != LoginFailure::NameRefused {
                    self.show_error(&message);
                }
                AuthError::Failed { reason, message }
            }
            Step::Unavailable(why) | Step::NotUnderstood(why) => AuthError::Unavailable(why),
            // Too many logins in progress: only users the daemon would serve get this far
            // (it refuses other names first), so the reason is worth showing.
            Step::Busy(message) => {
                self.show_error(&message);
                AuthError::Unavailable(format!("busy: {message}"))
            }
            // An approval here is a confused daemon, never a success.
            Step::Possible => unexpected(step, "login_possible"),
            Step::Started(_) => unexpected(step, "login_started"),
            Step::Pending => unexpected(step, "login_pending"),
            Step::Approved(..) => unexpected(step, "login_approved"),
            Step::Offline => unexpected(step, "offline_available"),
            Step::Unexpected(got) => unexpected(step, got),
        }
    }

    fn prompt_and_wait<D: Daemon>(
        &mut self,
        daemon: &mut D,
        who: &Who,
        login: &LoginPrompt,
    ) -> Result<(), AuthError> {
        if !prompt::is_usable(login) {
            return Err(AuthError::UnusablePrompt);
        }
        let show_qr = self
            .options
            .qr
            .show(who.tty.as_deref(), who.rhost.as_deref());
        let text = prompt::login_prompt(login, show_qr, &who.service);
        self.conv.prompt(&text).map_err(AuthError::Conversation)?;
        // The wait starts when the user answers; the code's lifetime bounds it too. At least
        // one LoginWait is sent however late the answer, because the user may have approved
        // before pressing Enter.
        let shown = self.clock.now();
        let budget = self
            .options
            .timeout
            .min(Duration::from_secs(login.expires_in));
        let deadline = shown.checked_add(budget).unwrap_or(shown);
        self.wait(daemon, &who.user, &login.login_id, deadline)
    }

    /// The loop: one `LoginWait` per turn, until an answer other than "pending" or the deadline.
    fn wait<D: Daemon>(
        &mut self,
        daemon: &mut D,
        user: &str,
        login_id: &str,
        deadline: Instant,
    ) -> Result<(), AuthError> {
        let request = Request::LoginWait {
            login_id: login_id.to_owned(),
        };
        let mut told_waiting = false;
        loop {
            let asked = self.clock.now();
            let answer = daemon
                .call(&request, WAIT_DEADLINE)
                .map_err(AuthError::Daemon)?;
            match Step::from(answer) {
                Step::Pending => {}
                Step::Approved(approved, offline_pin) if approved == user => {
                    if let Some(min_length) = offline_pin {
                        self.offer_offline_pin(daemon, login_id, min_length);
                    }
                    return Ok(());
                }
                Step::Approved(approved, _) => return Err(AuthError::WrongUser { approved }),
                Step::Failed(reason, message) => {
                    self.show_error(&message);
                    return Err(AuthError::Failed { reason, message });
                }
                Step::Unavailable(why) | Step::Busy(why) | Step::NotUnderstood(why) => {
                    return Err(AuthError::Unavailable(why));
                }
                Step::Possible => return Err(unexpected("login_wait", "login_possible")),
                Step::Started(_) => return Err(unexpected("login_wait", "login_started")),
                Step::Offline => return Err(unexpected("login_wait", "offline_available")),
                Step::Unexpected(got) => return Err(unexpected("login_wait", got)),
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(AuthError::TimedOut);
            }
            if !told_waiting {
                told_waiting = true;
                // Optional feedback: a conversation that cannot show it is no reason to stop.
                if let Err(e) = self.conv.info(WAITING) {
                    self.debug(&format!("could not show the waiting message: {}", e.0));
                }
            }
            let since = now.saturating_duration_since(asked);
            if since < MIN_POLL_INTERVAL {
                let pause = (MIN_POLL_INTERVAL - since).min(deadline - now);
                self.clock.sleep(pause);
            }
        }
    }

    /// Tells the daemon to give up on the login; its answer, or failure, changes nothing.
    fn cancel<D: Daemon>(&self, daemon: &mut D, login_id: &str) {
        let request = Request::LoginCancel {
            login_id: login_id.to_owned(),
        };
        match daemon.call(&request, CANCEL_DEADLINE) {
            Ok(answer) => self.debug(&format!(
                "login {login_id} cancelled: {}",
                response_kind(&answer)
            )),
            Err(e) => self.debug(&format!("login {login_id}: cancel failed: {e}")),
        }
    }

    /// The daemon's answer to a request that decides the login at once (`OfflineLogin`,
    /// `LoginResume`, sent at `step`): success only for an approval of exactly `who.user`.
    pub(crate) fn verdict(
        &mut self,
        step: &'static str,
        who: &Who,
        answer: Response,
    ) -> Result<(), AuthError> {
        match Step::from(answer) {
            Step::Approved(approved, _) if approved == who.user => Ok(()),
            Step::Approved(approved, _) => Err(AuthError::WrongUser { approved }),
            Step::Failed(reason, message) => {
                self.show_error(&message);
                Err(AuthError::Failed { reason, message })
            }
            Step::Unavailable(why) | Step::Busy(why) | Step::NotUnderstood(why) => {
                Err(AuthError::Unavailable(why))
            }
            Step::Possible => Err(unexpected(step, "login_possible")),
            Step::Started(_) => Err(unexpected(step, "login_started")),
            Step::Pending => Err(unexpected(step, "login_pending")),
            Step::Offline => Err(unexpected(step, "offline_available")),
            Step::Unexpected(got) => Err(unexpected(step, got)),
        }
    }

    pub(crate) fn show_error(&mut self, text: &str) {
        let text = prompt::clean(text);
        let text = if text.is_empty() {
            "Login failed."
        } else {
            &text
        };
        if let Err(e) = self.conv.error(text) {
            self.debug(&format!("could not show an error message: {}", e.0));
        }
    }

    pub(crate) fn debug(&self, message: &str) {
        self.log.log(Level::Debug, message);
    }
}

pub(crate) fn unexpected(step: &'static str, got: &'static str) -> AuthError {
    AuthError::Unexpected { step, got }
}

/// A daemon answer, as the login loop sees it.
#[derive(Debug)]
pub(crate) enum Step {
    /// `LoginPrecheck` passed.
    Possible,
    Started(LoginPrompt),
    Pending,
    /// Approved for this user; with `Some(n)` the user may set an offline PIN of `n` or more
    /// characters.
    Approved(String, Option<u32>),
    /// The provider cannot be used; the user may log in with the offline PIN.
    Offline,
    Failed(LoginFailure, String),
    /// The daemon cannot serve this now.
    Unavailable(String),
    /// The daemon is too busy for another login; the message is meant for the user.
    Busy(String),
    /// The daemon did not understand the request (`bad_request`): it predates it.
    NotUnderstood(String),
    /// An answer that belongs to another kind of request.
    Unexpected(&'static str),
}

impl From<Response> for Step {
    // Every variant is listed, with no wildcard: a new answer must be placed here by hand.
    fn from(answer: Response) -> Self {
        match answer {
            Response::LoginStarted(login) => Self::Started(login),
            Response::LoginPending => Self::Pending,
            Response::LoginApproved { user, offline_pin } => Self::Approved(user, offline_pin),
            Response::OfflineAvailable { .. } => Self::Offline,
            // Handled where `LoginStart` is answered; anywhere else it is out of place.
            other @ Response::ResumeAvailable { .. } => Self::Unexpected(response_kind(&other)),
            Response::LoginFailed { reason, message } => Self::Failed(reason, message),
            Response::Unavailable { reason } => Self::Unavailable(reason),
            Response::LoginPossible => Self::Possible,
            Response::Error {
                code: ErrorCode::Busy,
                message,
                ..
            } => Self::Busy(message),
            Response::Error {
                code: ErrorCode::BadRequest,
                message,
                ..
            } => Self::NotUnderstood(format!("BadRequest: {message}")),
            Response::Error { code, message, .. } => {
                Self::Unavailable(format!("{code:?}: {message}"))
            }
            Response::UnsupportedVersion { supported } => Self::Unavailable(format!(
                "protocol version mismatch: oidcd speaks {supported:?}"
            )),
            other @ (Response::User(_)
            | Response::Group(_)
            | Response::Users { .. }
            | Response::Groups { .. }
            | Response::GroupIds { .. }
            | Response::NotFound
            | Response::Account { .. }
            | Response::SshKeys(_)
            | Response::Status(_)
            | Response::UserList { .. }
            | Response::UserDetails(_)
            | Response::GroupList { .. }
            | Response::GroupDetails(_)
            | Response::Imported { .. }
            | Response::Map(_)
            | Response::MapPage(_)
            | Response::IdCheck(_)
            | Response::LinkList { .. }
            | Response::Migration(_)
            | Response::Done { .. }) => Self::Unexpected(response_kind(&other)),
        }
    }
}

/// The wire name of an answer's type, for logs (never its content).
pub fn response_kind(answer: &Response) -> &'static str {
    match answer {
        Response::User(_) => "user",
        Response::Group(_) => "group",
        Response::Users { .. } => "users",
        Response::Groups { .. } => "groups",
        Response::GroupIds { .. } => "group_ids",
        Response::NotFound => "not_found",
        Response::Unavailable { .. } => "unavailable",
        Response::Error { .. } => "error",
        Response::UnsupportedVersion { .. } => "unsupported_version",
        Response::LoginPossible => "login_possible",
        Response::LoginStarted(_) => "login_started",
        Response::LoginPending => "login_pending",
        Response::LoginApproved { .. } => "login_approved",
        Response::LoginFailed { .. } => "login_failed",
        Response::OfflineAvailable { .. } => "offline_available",
        Response::ResumeAvailable { .. } => "resume_available",
        Response::Account { .. } => "account",
        Response::SshKeys(_) => "ssh_keys",
        Response::Status(_) => "status",
        Response::UserList { .. } => "user_list",
        Response::UserDetails(_) => "user_details",
        Response::GroupList { .. } => "group_list",
        Response::GroupDetails(_) => "group_details",
        Response::Imported { .. } => "imported",
        Response::Map(_) => "map",
        Response::MapPage(_) => "map_page",
        Response::IdCheck(_) => "id_check",
        Response::LinkList { .. } => "link_list",
        Response::Migration(_) => "migration",
        Response::Done { .. } => "done",
    }
}

#[cfg(test)]
mod tests;
