//! When the next refresh of an identity is due: pure arithmetic on Unix seconds, so tests
//! need no clock.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Fraction of an interval by which each refresh is moved, either way, so identities logged in
/// together do not all refresh in the same second.
pub const JITTER: f64 = 0.1;

/// A number in `[0, 1)`, different at every call (std's randomly keyed hasher over a counter:
/// unpredictability does not matter here, spreading does).
pub fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `d` moved by up to [`JITTER`] of itself, either way, by `unit` in `[0, 1)`; at least one
/// second.
pub fn jittered(d: Duration, unit: f64) -> i64 {
    let secs = d.as_secs_f64() * (1.0 + JITTER * (2.0 * unit - 1.0));
    (secs.round() as i64).max(1)
}

/// The delay before retrying after `failures` failed refreshes in a row (at least one):
/// `retry_min`, doubled at each further failure, never more than `retry_max`.
pub fn backoff(failures: u32, retry_min: Duration, retry_max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    retry_min
        .saturating_mul(1u32 << doublings)
        .min(retry_max)
        .max(retry_min.min(retry_max))
}

/// When an identity first seen by the scheduler (after an upgrade, or a restart that lost
/// track) is refreshed: anywhere in the next interval, so a restart does not refresh every
/// identity at once.
pub fn first(now: i64, interval: Duration, unit: f64) -> i64 {
    now + (interval.as_secs_f64() * unit).floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// Retries double from retry_min and stop growing at retry_max; a huge count does not
    /// overflow.
    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, S(60), S(3600)), S(60));
        assert_eq!(backoff(2, S(60), S(3600)), S(120));
        assert_eq!(backoff(4, S(60), S(3600)), S(480));
        assert_eq!(backoff(7, S(60), S(3600)), S(3600));
        assert_eq!(backoff(u32::MAX, S(60), S(3600)), S(3600));
        assert_eq!(backoff(0, S(60), S(3600)), S(60));
    }

    /// Jitter stays within a tenth of the interval and never goes below a second.
    #[test]
    fn jitter_stays_within_a_tenth() {
        for i in 0..1000 {
            let j = jittered(S(900), f64::from(i) / 1000.0);
            assert!((810..=990).contains(&j), "{j}");
        }
        assert_eq!(jittered(S(1), 0.0), 1);
        assert_eq!(jittered(Duration::from_millis(100), 0.5), 1);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
        assert_ne!(random_unit(), random_unit());
    }

    /// A first refresh falls within the next interval.
    #[test]
    fn first_refresh_within_an_interval() {
        assert_eq!(first(1000, S(900), 0.0), 1000);
        assert_eq!(first(1000, S(900), 0.999_999), 1899);
    }
}
