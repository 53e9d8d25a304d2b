//! Counting failed logins per key (an account's email, a client address) in a sliding window.
//!
//! An attempt counts as a failure from the moment it begins, under the same lock as the check:
//! concurrent guesses cannot all pass a check made before any of them failed, and an attempt
//! whose request is cancelled mid-verification stays a failure. Only a success takes it back.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Keys kept before stale ones are swept: bounds memory under a spray of unknown emails.
const SWEEP_ABOVE_KEYS: usize = 10_000;

/// Allows at most `max_failures` failures (attempts under way included) per key within `window`;
/// the next attempt is refused until the oldest failure leaves the window.
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// Begins an attempt for `key`, counted as a failure until [`Attempt::succeeded`]; or
    /// `Err(wait)` when `key` has used up its failures, with how long until it may try again.
    pub fn begin(&self, key: &str) -> Result<Attempt<'_>, Duration> {
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
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(Attempt { limiter: self, key: key.to_owned(), at: now })
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    fn take_back(&self, key: &str, at: Instant) {
        let mut failures = self.lock();
        if let Some(times) = failures.get_mut(key) {
            if let Some(index) = times.iter().position(|t| *t == at) {
                times.remove(index);
            }
        }
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

/// One attempt under way: a failure unless it [`succeeded`](Attempt::succeeded). Dropping it
/// (a failed check, a cancelled request) leaves the failure counted.
pub struct Attempt<'a> {
    limiter: &'a FailureLimiter,
    key: String,
    at: Instant,
}

impl Attempt<'_> {
    /// The attempt was not a failure: it no longer counts.
    pub fn succeeded(self) {
        self.limiter.take_back(&self.key, self.at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_and_names_the_wait() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            drop(limiter.begin("a").expect("allowed"));
        }
        let wait = limiter.begin("a").err().expect("refused");
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60), "{wait:?}");
        assert!(limiter.begin("b").is_ok(), "other keys are unaffected");
        limiter.clear("a");
        assert!(limiter.begin("a").is_ok());
    }

    #[test]
    fn attempts_under_way_count_and_only_a_success_takes_one_back() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        let first = limiter.begin("a").expect("allowed");
        let second = limiter.begin("a").expect("allowed");
        assert!(limiter.begin("a").is_err(), "two under way use up the limit before either ends");
        first.succeeded();
        assert!(limiter.begin("a").is_ok(), "a success frees its place");
        drop(second); // cancelled: still a failure
        assert!(limiter.begin("a").is_err());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(30));
        drop(limiter.begin("a"));
        assert!(limiter.begin("a").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.begin("a").is_ok());
    }
}
