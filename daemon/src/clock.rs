//! The one place that reads the clock, so tests can run in virtual time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { offset: None }
    }

    /// A clock fixed at `unix_secs` that tests move with [`Clock::advance`].
    pub fn fixed(unix_secs: i64) -> Self {
        Self {
            offset: Some(Arc::new(AtomicI64::new(unix_secs))),
        }
    }

    /// Moves a fixed clock forward.
    pub fn advance(&self, by: Duration) {
        if let Some(o) = &self.offset {
            o.fetch_add(
                i64::try_from(by.as_secs()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> i64 {
        match &self.offset {
            Some(o) => o.load(Ordering::SeqCst),
            #[allow(clippy::disallowed_methods)] // the one read of the system clock
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        }
    }
}

/// Sleeps; the one place that may (see clippy.toml).
#[allow(clippy::disallowed_methods)]
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}
