//! Fakes for the unit tests: a scripted user, a scripted daemon, virtual time, a log in memory.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oidc_proto::client::ClientError;
use oidc_proto::secret::Secret;
use oidc_proto::{Request, Response};

use crate::auth::{Clock, ConvError, Conversation, Daemon};
use crate::syslog::{Level, Log};

/// One thing the module said to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Said {
    Prompt(String),
    Info(String),
    Error(String),
    Secret(String),
}

/// A user who presses Enter at every prompt (types `typing`, in order, at secret prompts), or
/// whose client hangs up at the first one.
#[derive(Debug, Default)]
pub(crate) struct ScriptedUser {
    pub said: Vec<Said>,
    hang_up: bool,
    typing: VecDeque<String>,
}

impl ScriptedUser {
    pub fn answering() -> Self {
        Self::default()
    }

    /// Every conversation call fails, as when the SSH client is gone or the user hit Ctrl-C.
    /// Types `answers` at the secret prompts, in order (then nothing).
    pub fn typing(answers: &[&str]) -> Self {
        Self {
            typing: answers.iter().map(|a| a.to_string()).collect(),
            ..Self::default()
        }
    }

    pub fn hanging_up() -> Self {
        Self {
            hang_up: true,
            ..Self::default()
        }
    }

    pub fn prompts(&self) -> Vec<&str> {
        self.said
            .iter()
            .filter_map(|s| match s {
                Said::Prompt(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    fn say(&mut self, what: Said) -> Result<(), ConvError> {
        self.said.push(what);
        if self.hang_up {
            Err(ConvError("PAM_CONV_ERR".into()))
        } else {
            Ok(())
        }
    }
}

impl Conversation for ScriptedUser {
    fn prompt(&mut self, text: &str) -> Result<(), ConvError> {
        self.say(Said::Prompt(text.into()))
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.say(Said::Info(text.into()))
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.say(Said::Error(text.into()))
    }

    fn secret(&mut self, text: &str) -> Result<Secret, ConvError> {
        self.say(Said::Secret(text.into()))?;
        Ok(Secret::new(self.typing.pop_front().unwrap_or_default()))
    }
}

/// Virtual time: moves only when the fake daemon makes a call cost time or the module sleeps.
#[derive(Debug, Clone)]
pub(crate) struct FakeClock {
    start: Instant,
    elapsed: Rc<Cell<Duration>>,
    slept: Rc<Cell<Duration>>,
}

impl FakeClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Rc::default(),
            slept: Rc::default(),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.elapsed.set(self.elapsed.get() + by);
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed.get()
    }

    pub fn slept(&self) -> Duration {
        self.slept.get()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed.get()
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
        self.slept.set(self.slept.get() + duration);
    }
}

#[derive(Default)]
struct DaemonState {
    script: VecDeque<Result<Response, ClientError>>,
    forever: Option<Response>,
    asked: Vec<Request>,
    timeouts: Vec<Duration>,
    gone: bool,
    clock: Option<FakeClock>,
    wait_cost: Duration,
    precheck: Option<Result<Response, ClientError>>,
}

/// A daemon that answers from a script, in order, and records what it was asked. Once it
/// returns an error it is gone: later calls fail with "not running". `LoginCancel` is answered
/// without using the script, and so is `LoginPrecheck` (`LoginPossible` unless
/// [`FakeDaemon::prechecking`] says otherwise). Clones share the state.
#[derive(Clone, Default)]
pub(crate) struct FakeDaemon(Rc<RefCell<DaemonState>>);

impl FakeDaemon {
    pub fn new(script: impl IntoIterator<Item = Result<Response, ClientError>>) -> Self {
        let fake = Self::default();
        fake.0.borrow_mut().script = script.into_iter().collect();
        fake
    }

    /// Answers `LoginPrecheck` with `answer` instead of `LoginPossible`.
    pub fn prechecking(self, answer: Result<Response, ClientError>) -> Self {
        self.0.borrow_mut().precheck = Some(answer);
        self
    }

    /// After the script, answers `answer` for ever.
    pub fn then_forever(self, answer: Response) -> Self {
        self.0.borrow_mut().forever = Some(answer);
        self
    }

    /// Each LoginWait advances `clock` by `cost`, as a daemon holding the request would.
    pub fn taking(self, clock: &FakeClock, cost: Duration) -> Self {
        {
            let mut s = self.0.borrow_mut();
            s.clock = Some(clock.clone());
            s.wait_cost = cost;
        }
        self
    }

    pub fn asked(&self) -> Vec<Request> {
        self.0.borrow().asked.clone()
    }

    pub fn timeouts(&self) -> Vec<Duration> {
        self.0.borrow().timeouts.clone()
    }

    pub fn connector(&self) -> impl FnOnce(Duration) -> Result<FakeDaemon, ClientError> + use<> {
        let fake = self.clone();
        move |_| Ok(fake)
    }
}

impl Daemon for FakeDaemon {
    fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let mut s = self.0.borrow_mut();
        s.asked.push(request.clone());
        s.timeouts.push(timeout);
        if s.gone {
            return Err(ClientError::NotRunning("the fake daemon is gone".into()));
        }
        match request {
            Request::LoginCancel { .. } => {
                return Ok(Response::Done {
                    message: "cancelled".into(),
                });
            }
            Request::LoginPrecheck { .. } => {
                return match s.precheck.take() {
                    None => Ok(Response::LoginPossible),
                    Some(Ok(answer)) => Ok(answer),
                    Some(Err(e)) => {
                        s.gone = true;
                        Err(e)
                    }
                };
            }
            Request::LoginWait { .. } => {
                if let Some(clock) = &s.clock {
                    clock.advance(s.wait_cost);
                }
            }
            _ => {}
        }
        match s.script.pop_front() {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(e)) => {
                s.gone = true;
                Err(e)
            }
            None => s
                .forever
                .clone()
                .ok_or_else(|| ClientError::Protocol("the fake daemon's script ran out".into())),
        }
    }
}

/// A connector for a daemon that is not running.
pub(crate) fn no_daemon(_: Duration) -> Result<FakeDaemon, ClientError> {
    Err(ClientError::NotRunning(
        "/run/oidcd/socket does not exist".into(),
    ))
}

/// A log kept in memory.
#[derive(Debug, Default)]
pub(crate) struct Memo(RefCell<Vec<(Level, String)>>);

impl Memo {
    pub fn lines(&self) -> Vec<(Level, String)> {
        self.0.borrow().clone()
    }
}

impl Log for Memo {
    fn log(&self, level: Level, message: &str) {
        self.0.borrow_mut().push((level, message.to_owned()));
    }
}

/// Runs a login for `who` as `user` answers, against a daemon answering `script` in order.
pub(crate) fn login_with(
    user: &mut ScriptedUser,
    who: &crate::auth::Who,
    script: Vec<Result<Response, ClientError>>,
) -> (Result<(), crate::auth::AuthError>, FakeDaemon) {
    let clock = FakeClock::new();
    let daemon = FakeDaemon::new(script);
    let result = crate::auth::Login {
        options: &crate::args::Options::default(),
        conv: user,
        clock: &clock,
        log: &Memo::default(),
    }
    .run(who, daemon.connector());
    (result, daemon)
}
