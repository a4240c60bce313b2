//! Keyed request throttles (governor's GCRA, one cell per key, in this
//! instance's memory): login and registration per client address and per
//! username, robot connections per device. A refusal says how long until
//! the next request of that key would pass (`Retry-After`).

use crate::config::caps::Rate;
use governor::clock::{Clock, DefaultClock};
use governor::DefaultKeyedRateLimiter;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Checks between sweeps of keys whose cells are full again (forgotten:
/// they would pass anyway), so the map holds only recently busy keys.
const SWEEP_EVERY: u64 = 4096;

/// One throttle; `None` inside when its rate is `off`.
pub struct Throttle<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(rate: Rate) -> Self {
        Throttle {
            limiter: rate.quota().map(DefaultKeyedRateLimiter::hashmap),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request of `key`; `Err(wait)` when its budget is spent.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for Throttle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Throttle(on={})", self.limiter.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_the_wait() {
        let t: Throttle<&str> = Throttle::new(Rate::per(3, 3600));
        for _ in 0..3 {
            assert!(t.check(&"a").is_ok());
        }
        let wait = t.check(&"a").unwrap_err();
        assert!(
            wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200),
            "{wait:?}"
        );
        assert!(t.check(&"b").is_ok(), "keys are counted apart");
        let off: Throttle<&str> = Throttle::new(Rate::off());
        assert!((0..100).all(|_| off.check(&"a").is_ok()));
    }
}
