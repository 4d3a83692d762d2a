//! Token-bucket rate limits keyed by client IP or by mailbox.
//!
//! Each key has a bucket of `burst` tokens refilled at `rate` per second; a
//! request takes one token or is refused (429). The table of buckets is
//! bounded: when it is full, buckets that have refilled completely (idle
//! keys, indistinguishable from new ones) are dropped first, and if none
//! is idle the new key is refused rather than the table growing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// A bounded table of token buckets.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate_per_sec: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate_per_sec` tokens a second, at most `burst` saved, at most
    /// `max_keys` keys tracked.
    pub fn new(rate_per_sec: f64, burst: u32, max_keys: usize) -> Self {
        Self {
            rate_per_sec,
            burst: f64::from(burst.max(1)),
            max_keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at time `now`; `false` means "refuse".
    pub fn allow(&self, key: &K, now: Instant) -> bool {
        self.allow_cost(key, 1.0, now)
    }

    /// Takes `cost` tokens for `key` at time `now` (e.g. bytes); `false`
    /// means "refuse" (and takes nothing).
    pub fn allow_cost(&self, key: &K, cost: f64, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(key) {
            return self.take(bucket, cost, now);
        }
        if buckets.len() >= self.max_keys {
            buckets.retain(|_, b| self.refilled(b, now) < self.burst);
            if buckets.len() >= self.max_keys {
                return false;
            }
        }
        let mut bucket = Bucket {
            tokens: self.burst,
            updated: now,
        };
        let allowed = self.take(&mut bucket, cost, now);
        buckets.insert(key.clone(), bucket);
        allowed
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate_per_sec).min(self.burst)
    }

    fn take(&self, bucket: &mut Bucket, cost: f64, now: Instant) -> bool {
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(10.0, 3, 100);
        let t0 = Instant::now();
        assert!((0..3).all(|_| rl.allow(&"a", t0)));
        assert!(!rl.allow(&"a", t0));
        assert!(rl.allow(&"b", t0), "keys are independent");
        assert!(
            rl.allow(&"a", t0 + Duration::from_millis(100)),
            "one token back after 1/rate s"
        );
        assert!(!rl.allow(&"a", t0 + Duration::from_millis(100)));
    }

    #[test]
    fn costs_are_taken_whole_or_not_at_all() {
        let rl = RateLimiter::new(100.0, 1000, 10);
        let t0 = Instant::now();
        assert!(rl.allow_cost(&"a", 800.0, t0));
        assert!(!rl.allow_cost(&"a", 300.0, t0), "only 200 left");
        assert!(rl.allow_cost(&"a", 200.0, t0), "a refusal took nothing");
        assert!(rl.allow_cost(&"a", 100.0, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn table_is_bounded_and_idle_keys_are_evicted_first() {
        let rl = RateLimiter::new(1.0, 2, 2);
        let t0 = Instant::now();
        assert!(rl.allow(&1, t0));
        assert!(rl.allow(&2, t0));
        assert!(!rl.allow(&3, t0), "full of busy keys: the new key is refused");
        assert_eq!(rl.tracked(), 2);
        let later = t0 + Duration::from_secs(10);
        assert!(rl.allow(&3, later), "idle keys were evicted");
        assert!(rl.tracked() <= 2);
    }
}
