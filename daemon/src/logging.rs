//! Logging to stderr, one line per event.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with a `<N>` syslog priority, which
//! journald turns into the entry's priority; elsewhere it starts with the level name. Line
//! breaks inside a message are escaped so one event stays one line.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    journal: bool,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Dependencies (HTTP, TLS) only at debug and below.
        let ours = record.target().starts_with("oidcd") || record.target().starts_with("oidcctl");
        if !ours && record.level() > Level::Warn && log::max_level() < LevelFilter::Debug {
            return;
        }
        let msg = record.args().to_string().replace('\n', "\\n");
        let line = if self.journal {
            format!("<{}>{msg}\n", priority(record.level()))
        } else {
            format!("{:<5} {msg}\n", record.level())
        };
        // One write per line, so lines from different threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Writes one audit line (`AUDIT {json}`, see [`crate::audit`]) whatever the log level, with
/// journald priority 5 (notice) under systemd.
pub fn audit_line(json: &str) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let json = json.replace('\n', "\\n");
    let line = if journal {
        format!("<5>AUDIT {json}\n")
    } else {
        format!("AUDIT {json}\n")
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Installs the logger. Safe to call more than once (later calls only change the level).
pub fn init(level: LevelFilter) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let _ = log::set_boxed_logger(Box::new(StderrLogger { journal }));
    log::set_max_level(level);
}
