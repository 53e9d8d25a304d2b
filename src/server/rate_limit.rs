//! Counting failed logins per key (an account's email, a client address) in a sliding window.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Keys kept before stale ones are swept: bounds memory under a spray of unknown emails.
const SWEEP_ABOVE_KEYS: usize = 10_000;

/// Allows at most `max_failures` failures per key within `window`; the next attempt is refused
/// until the oldest failure leaves the window.
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` when `key` has used up its failures, with how long until it may try again.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.lock();
        let Some(times) = failures.get_mut(key) else { return Ok(()) };
        Self::forget_old(times, now, self.window);
        if times.len() < self.max_failures {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts one failure against `key`.
    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= SWEEP_ABOVE_KEYS {
            let window = self.window;
            failures.retain(|_, times| {
                Self::forget_old(times, now, window);
                !times.is_empty()
            });
        }
        let times = failures.entry(key.to_owned()).or_default();
        Self::forget_old(times, now, self.window);
        times.push_back(now);
        // Only the newest `max_failures` matter for the decision.
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    fn forget_old(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
        while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            times.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding this lock cannot leave the map inconsistent, so poison is ignored.
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_and_names_the_wait() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
            limiter.record_failure("a");
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60), "{wait:?}");
        assert!(limiter.check("b").is_ok(), "other keys are unaffected");
        limiter.clear("a");
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(30));
        limiter.record_failure("a");
        assert!(limiter.check("a").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.check("a").is_ok());
    }
}
