//! The bodies of the six PAM entry points: read the PAM items, run the phase over the real
//! conversation and daemon, log the outcome, return a code. Every path ends in an explicit
//! code; the only `PAM_SUCCESS` from `auth` comes from [`Login::run`] returning `Ok`.
//!
//! pam-bindings runs each body inside `catch_unwind` (a panic becomes `PAM_ABORT`); the
//! workspace lints keep panics out of the code in the first place.

use std::ffi::CStr;
use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use oidc_proto::client::{Client, ClientError, TrustedOwner};
use oidc_proto::paths::SOCKET_PATH;
use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag,
    PamMessageStyle, PamResultCode,
};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty};
use pam::module::{PamHandle, PamResult};

use crate::account::{self, PasswordPhase};
use crate::args::Options;
use crate::auth::{AuthError, ConvError, Conversation, Login, SystemClock, Who};
use crate::session;
use crate::syslog::{Level, Log, Syslog};

/// `pam_sm_authenticate`: the device-flow login.
pub(crate) fn authenticate(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let call = Call::begin(pamh, args, "auth");
    let user = call.user(pamh);
    let who = Who {
        user: user.clone(),
        service: call.service.clone(),
        rhost: text(pamh.get_item::<RHost>()),
        tty: text(pamh.get_item::<Tty>()),
    };
    let mut conv = PamConv::new(pamh, flags);
    let result = Login {
        options: &call.options,
        conv: &mut conv,
        clock: &SystemClock,
        log: &call.log,
    }
    .run(&who, connect);
    let from = who.rhost.as_deref().unwrap_or("local");
    match result {
        Ok(()) => {
            call.log(
                Level::Notice,
                &format!("{user} authenticated through the identity provider (from {from})"),
            );
            PamResultCode::PAM_SUCCESS
        }
        Err(e) => {
            let code = e.code(&call.options);
            let level = match &e {
                AuthError::NoUser
                | AuthError::Failed {
                    reason: oidc_proto::types::LoginFailure::NameRefused,
                    ..
                } => Level::Info,
                AuthError::Daemon(_) | AuthError::Unavailable(_) | AuthError::Unexpected { .. } => {
                    Level::Err
                }
                _ => Level::Notice,
            };
            call.log(
                level,
                &format!("authentication failed for {user:?} (from {from}): {e} ({code:?})"),
            );
            code
        }
    }
}

/// `pam_sm_acct_mgmt`: the daemon's verdict on the account.
pub(crate) fn account(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let call = Call::begin(pamh, args, "account");
    let user = call.user(pamh);
    let mut conv = PamConv::new(pamh, flags);
    match account::check(&user, &call.service, &mut conv, connect) {
        Ok(()) => {
            call.log(Level::Info, &format!("account {user} allowed"));
            PamResultCode::PAM_SUCCESS
        }
        Err(e) => {
            let code = e.code(&call.options);
            let level = match &e {
                account::AccountError::NoUser | account::AccountError::Unknown => Level::Debug,
                account::AccountError::Denied(_) => Level::Notice,
                _ => Level::Err,
            };
            call.log(level, &format!("account {user:?}: {e} ({code:?})"));
            code
        }
    }
}

/// `pam_sm_chauthtok`: refuses for the daemon's users, stays out of the way for the others.
pub(crate) fn change_password(
    pamh: &mut PamHandle,
    args: &[&CStr],
    flags: PamFlag,
) -> PamResultCode {
    let call = Call::begin(pamh, args, "password");
    let user = call.user(pamh);
    let mut conv = PamConv::new(pamh, flags);
    let phase = PasswordPhase::from_flags(flags);
    let code = account::change_password(&user, &call.service, phase, &mut conv, &call.log, connect);
    call.log(
        Level::Debug,
        &format!("password {phase:?} for {user:?}: {code:?}"),
    );
    code
}

/// `pam_sm_open_session`: success for a user the daemon serves, `PAM_IGNORE` for everyone
/// else and whenever the daemon cannot tell (see [`crate::session`]).
pub(crate) fn open_session(pamh: &mut PamHandle, args: &[&CStr]) -> PamResultCode {
    let call = Call::begin(pamh, args, "session");
    let user = call.user(pamh);
    let served = session::is_served(&user, connect);
    let code = session::code(&served);
    match &served {
        Ok(ours) => call.log(
            Level::Debug,
            &format!(
                "{user:?} is {}a user oidcd serves ({code:?})",
                if *ours { "" } else { "not " }
            ),
        ),
        Err(e) => call.log(
            Level::Info,
            &format!("cannot tell whether oidcd serves {user:?}: {e} ({code:?})"),
        ),
    }
    code
}

/// `pam_sm_setcred`, `pam_sm_close_session`: nothing to do. Success is harmless here: for
/// setcred libpam follows the path `auth` took through the stack, and closing a session needs
/// nothing from this module.
pub(crate) fn nothing_to_do(pamh: &PamHandle, args: &[&CStr], phase: &str) -> PamResultCode {
    let call = Call::begin(pamh, args, phase);
    call.log(Level::Debug, "nothing to do");
    PamResultCode::PAM_SUCCESS
}

/// The daemon at the compiled-in path, served by root. Never a path from the environment:
/// su and sudo are setuid and inherit the caller's.
fn connect(timeout: Duration) -> Result<Client, ClientError> {
    Client::connect(Path::new(SOCKET_PATH), TrustedOwner::Root, timeout)
}

/// What every hook needs: options, logger and service name.
struct Call {
    options: Options,
    log: Syslog,
    service: String,
}

impl Call {
    /// Parses the options and logs what was wrong with them (on every call: never silent).
    fn begin(pamh: &PamHandle, args: &[&CStr], phase: &str) -> Self {
        let service = text(pamh.get_item::<Service>()).unwrap_or_default();
        let (options, problems) = Options::parse(args);
        let log = Syslog::new(&service, phase, options.debug);
        for problem in problems {
            log.log(Level::Err, &problem);
        }
        Self {
            options,
            log,
            service,
        }
    }

    /// PAM_USER (pam_get_user may ask for it), or "" when there is none; the phases turn ""
    /// into "unknown user".
    fn user(&self, pamh: &mut PamHandle) -> String {
        match pamh.get_user(None) {
            Ok(user) => user,
            Err(code) => {
                self.log(Level::Info, &format!("no user name ({code:?})"));
                String::new()
            }
        }
    }

    fn log(&self, level: Level, message: &str) {
        self.log.log(level, message);
    }
}

/// A string item, `None` when unset, empty or unavailable. Not UTF-8 is kept lossily: these
/// are only shown, logged and passed on, never compared.
fn text<'a, T: Deref<Target = &'a CStr>>(item: PamResult<Option<T>>) -> Option<String> {
    match item {
        Ok(Some(value)) if !value.is_empty() => Some(value.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// The application's conversation function. With `PAM_SILENT` no information or error
/// messages are sent; the login prompt still is (the module cannot work without it).
struct PamConv<'a> {
    conv: Option<Conv<'a>>,
    silent: bool,
}

impl<'a> PamConv<'a> {
    fn new(pamh: &'a PamHandle, flags: PamFlag) -> Self {
        Self {
            conv: pamh.get_item::<Conv>().ok().flatten(),
            silent: flags & PAM_SILENT != 0,
        }
    }

    fn send(&self, style: PamMessageStyle, text: &str) -> Result<(), ConvError> {
        let Some(conv) = &self.conv else {
            return Err(ConvError("the application has no conversation".into()));
        };
        // The answer, if any, is dropped here: pam-bindings zeroes it.
        conv.send(style, text)
            .map(drop)
            .map_err(|code| ConvError(format!("{code:?}")))
    }
}

impl Conversation for PamConv<'_> {
    /// Echo on: the answer is ignored, and an application that answers hidden prompts with a
    /// stored password (sshd's "password" method) fails at once with PAM_CONV_ERR instead of
    /// feeding the password in and waiting, unseen, for an approval nobody was asked for.
    fn prompt(&mut self, text: &str) -> Result<(), ConvError> {
        self.send(PAM_PROMPT_ECHO_ON, text)
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        if self.silent {
            return Ok(());
        }
        self.send(PAM_TEXT_INFO, text)
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        if self.silent {
            return Ok(());
        }
        self.send(PAM_ERROR_MSG, text)
    }

    fn secret(&mut self, text: &str) -> Result<oidc_proto::secret::Secret, ConvError> {
        let Some(conv) = &self.conv else {
            return Err(ConvError("the application has no conversation".into()));
        };
        let answer = conv
            .send(PAM_PROMPT_ECHO_OFF, text)
            .map_err(|code| ConvError(format!("{code:?}")))?;
        // pam-bindings zeroes its copy when `answer` drops; this one goes to the daemon.
        Ok(oidc_proto::secret::Secret::new(
            answer
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
                .unwrap_or_default(),
        ))
    }
}
