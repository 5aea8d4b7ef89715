//! `oidcd`: see `oidcd --help`.
#![allow(clippy::print_stdout)] // --check-config reports on stdout

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use oidcd::clock::Clock;
use oidcd::config::Config;
use oidcd::identity::local::LocalAccounts;
use oidcd::state::State;
use oidcd::{logging, server, service};

/// OpenID Connect login daemon: the backend of pam_oidc.so and libnss_oidc.so.2.
///
/// oidcd runs in the foreground as root (under systemd, Type=notify). It answers the NSS
/// module's user and group lookups from its SQLite cache, runs RFC 8628 device-flow logins for
/// the PAM module, and serves oidcctl. It logs to stderr, one line per event, with journald
/// priorities when run by systemd.
///
/// Signals: SIGHUP rereads the configuration (a bad new file is rejected and the old one kept;
/// socket and database paths change only at restart) and retries a broken database. SIGTERM
/// or SIGINT stops it cleanly.
///
/// Exit status: 0 after a clean stop; 1 when the configuration is invalid or a path it must
/// trust is unsafe; 2 on a usage error.
#[derive(Parser, Debug)]
#[command(
    name = "oidcd",
    version,
    about,
    long_about,
    after_help = "Files:\n  /etc/oidcd/oidcd.toml   configuration (see oidcd.toml in the documentation)\n  /run/oidcd/socket       the socket the PAM and NSS modules connect to\n  /var/lib/oidcd/cache.db the identity cache"
)]
struct Args {
    /// Configuration file.
    #[arg(short, long, value_name = "PATH", default_value = oidc_proto::paths::CONFIG_PATH)]
    config: PathBuf,
    /// Check the configuration, print the problems found (file:line:column: key: message) and
    /// exit: 0 if it is valid, 1 if not.
    #[arg(long)]
    check_config: bool,
    /// Override daemon.log_level (error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<log::LevelFilter>,
}

fn main() -> ExitCode {
    mark_environment();
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("oidcd: invalid configuration, not starting");
            return ExitCode::from(1);
        }
    };
    if args.check_config {
        for notice in &config.notices {
            println!("{}: note: {notice}", args.config.display());
        }
        println!("{}: ok", args.config.display());
        return ExitCode::SUCCESS;
    }
    logging::init(args.log_level.unwrap_or(config.log_level));
    for notice in &config.notices {
        log::warn!("{}: {notice}", args.config.display());
    }
    match run(config, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Marks this process so that libnss_oidc, if anything here ever resolves a user through
/// NSS, answers at once instead of asking this daemon (which would wait on itself).
#[allow(unsafe_code)]
fn mark_environment() {
    // SAFETY: called first thing in main, before any thread exists, so nothing can read the
    // environment concurrently.
    unsafe { std::env::set_var(oidc_proto::paths::NSS_BYPASS_ENV, "1") };
}

fn run(config: Config, args: Args) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    // Whoever can write the configuration can name the issuer and so log in as anyone.
    service::check_config_file(&args.config, me)?;
    let socket = config.cache.socket_path.clone();
    let db = config.cache.db_path.clone();
    let socket_dir = socket.parent().ok_or("socket_path has no directory")?;
    let db_dir = db.parent().ok_or("db_path has no directory")?;
    service::prepare_dir(socket_dir, 0o755, &[], me)?;
    if let Ok(m) = std::fs::metadata(socket_dir) {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o005 != 0o005 {
            log::warn!(
                "{} is mode {:04o}: users other than root cannot reach the socket, so their \
                 lookups of oidcd users fail (chmod 755 it)",
                socket_dir.display(),
                m.permissions().mode() & 0o7777
            );
        }
    }
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    service::prepare_dir(db_dir, 0o700, &[&db, &wal], me)?;
    if socket != std::path::Path::new(oidc_proto::paths::SOCKET_PATH) {
        log::warn!(
            "socket_path is {}: pam_oidc and libnss_oidc always connect to {} (compiled in); only oidcctl --socket follows this setting",
            socket.display(),
            oidc_proto::paths::SOCKET_PATH
        );
    }
    for p in config.providers.iter().filter(|p| p.insecure_http_issuer) {
        log::warn!(
            "insecure_http_issuer: talking plain HTTP to {} (for tests and demos only)",
            p.issuer
        );
    }
    if config.providers.len() > 1 {
        let list: Vec<String> = config
            .providers
            .iter()
            .map(|p| format!("{} ({}, names {})", p.id, p.issuer, p.name_pattern()))
            .collect();
        log::info!("providers: {}", list.join("; "));
    }
    if config.providers.is_empty() {
        log::warn!(
            "no [provider] configured: known users still resolve; oidcctl import and logins need [provider]"
        );
    }

    // Block the signals we handle before any thread starts, so every thread inherits the mask
    // and they arrive only at the sigwait below.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;

    let state = Arc::new(State::new(config, LocalAccounts::system(), Clock::system()));
    let listener =
        server::bind(&socket).map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let server_thread = {
        let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || server::run(listener, state, stop))
            .map_err(|e| format!("cannot start the server thread: {e}"))?
    };
    let refresh_thread = oidcd::lifecycle::spawn(Arc::clone(&state), Arc::clone(&stop))
        .map_err(|e| format!("cannot start the refresh thread: {e}"))?;
    let map_thread = {
        let state = Arc::clone(&state);
        std::thread::Builder::new()
            .name("nss-map".into())
            .spawn(move || oidcd::nss_map::run(state))
            .map_err(|e| format!("cannot start the NSS map thread: {e}"))?
    };
    log::info!(
        "oidcd {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        socket.display()
    );
    service::notify("READY=1");

    loop {
        let sig = signals
            .wait()
            .map_err(|e| format!("waiting for signals: {e}"))?;
        match sig {
            Signal::SIGHUP => {
                service::notify("RELOADING=1");
                reload(&state, &args);
                service::notify("READY=1");
            }
            _ => {
                log::info!("{sig} received, stopping");
                service::notify("STOPPING=1");
                break;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    // A refresh in flight finishes first: its rotated refresh token must be stored.
    state.lifecycle.wake();
    if refresh_thread.join().is_err() {
        log::error!("refresh thread panicked");
    }
    match server_thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("server: {e}"),
        Err(_) => log::error!("server thread panicked"),
    }
    state.nss_map.stop();
    if map_thread.join().is_err() {
        log::error!("NSS map thread panicked");
    }
    let _ = std::fs::remove_file(&socket);
    log::info!("stopped");
    Ok(())
}

fn reload(state: &State, args: &Args) {
    match Config::load(&args.config) {
        Ok(new) => {
            let old = state.config();
            if new.cache.socket_path != old.cache.socket_path
                || new.cache.db_path != old.cache.db_path
            {
                log::warn!("socket_path and db_path changes take effect at the next restart");
            }
            logging::init(args.log_level.unwrap_or(new.log_level));
            state.set_config(new);
            state.reopen_store_if_broken();
            log::info!("configuration reloaded from {}", args.config.display());
        }
        Err(errors) => {
            for e in &errors.0 {
                log::error!("{e}");
            }
            log::error!("new configuration rejected; keeping the previous one");
        }
    }
}
