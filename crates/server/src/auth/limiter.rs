//! Counting failed sign-ins, per account and per source address, in a sliding window.
//!
//! Kept in memory: a restart forgets counts, which costs an attacker nothing they could not get
//! by waiting, and spares the database a write per guess. The audit trail keeps the record.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

/// Keys beyond which old entries are swept, so a flood of addresses cannot grow memory forever.
const SWEEP_ABOVE: usize = 10_000;

/// Failure times per key (`user:NAME` or `source:ADDRESS`).
#[derive(Debug, Default)]
pub struct Limiter {
    failures: BTreeMap<String, VecDeque<Timestamp>>,
}

impl Limiter {
    /// Failures for `key` within `window` of `now`.
    pub fn count(&mut self, key: &str, now: Timestamp, window: Duration) -> usize {
        match self.failures.get_mut(key) {
            Some(times) => {
                forget_before(times, now, window);
                times.len()
            }
            None => 0,
        }
    }

    /// Records one failure.
    pub fn fail(&mut self, key: &str, now: Timestamp, window: Duration) {
        if self.failures.len() > SWEEP_ABOVE {
            self.failures.retain(|_, times| {
                forget_before(times, now, window);
                !times.is_empty()
            });
        }
        self.failures
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

fn forget_before(times: &mut VecDeque<Timestamp>, now: Timestamp, window: Duration) {
    while let Some(first) = times.front() {
        if now.duration_since(*first).unsigned_abs() > window {
            times.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_expire_after_the_window() {
        let mut limiter = Limiter::default();
        let window = Duration::from_secs(900);
        let start: Timestamp = "2026-12-03T09:00:00Z".parse().unwrap();
        for minute in 0..5 {
            limiter.fail(
                "user:suzuki",
                start + jiff::SignedDuration::from_mins(minute),
                window,
            );
        }
        assert_eq!(
            limiter.count(
                "user:suzuki",
                start + jiff::SignedDuration::from_mins(5),
                window
            ),
            5
        );
        // At minute 17 the failures of minutes 2 (exactly 15 minutes old), 3 and 4 still count.
        assert_eq!(
            limiter.count(
                "user:suzuki",
                start + jiff::SignedDuration::from_mins(17),
                window
            ),
            3
        );
        assert_eq!(
            limiter.count(
                "user:suzuki",
                start + jiff::SignedDuration::from_mins(20),
                window
            ),
            0
        );
        limiter.clear("user:suzuki");
        assert_eq!(limiter.count("user:suzuki", start, window), 0);
    }
}
