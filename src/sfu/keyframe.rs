//! Keyframe requests toward a publisher: at most one per second per track, and never lost.
//!
//! A leading-edge-only debounce starves a viewer whose request fell inside the window (some
//! clients never ask again), so a request inside the window is remembered and sent when it ends.

use std::time::{Duration, Instant};

pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    trailing: bool,
}

impl KeyframeThrottle {
    /// Records a wish for a keyframe; `true` means send a request now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now.duration_since(last) < MIN_INTERVAL => {
                self.trailing = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.trailing = false;
                true
            }
        }
    }

    /// Called on the housekeeping tick; `true` means send the remembered request now.
    pub fn poll_trailing(&mut self, now: Instant) -> bool {
        if self.trailing && self.last_sent.is_none_or(|last| now.duration_since(last) >= MIN_INTERVAL) {
            self.last_sent = Some(now);
            self.trailing = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_goes_out_at_once_and_a_burst_collapses_into_one_trailing_request() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.request(t0));
        assert!(!throttle.request(t0 + Duration::from_millis(100)));
        assert!(!throttle.request(t0 + Duration::from_millis(300)));
        assert!(!throttle.poll_trailing(t0 + Duration::from_millis(900)), "still inside the window");
        assert!(throttle.poll_trailing(t0 + Duration::from_millis(1000)), "the trailing request is sent");
        assert!(!throttle.poll_trailing(t0 + Duration::from_millis(2500)), "and only once");
    }

    #[test]
    fn a_request_after_the_window_goes_out_at_once() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.request(t0));
        assert!(throttle.request(t0 + Duration::from_millis(1500)));
        assert!(!throttle.poll_trailing(t0 + Duration::from_secs(5)), "nothing is pending");
    }
}
