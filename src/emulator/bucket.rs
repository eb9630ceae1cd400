//! The emulator's token buckets: one per profile for deletes, and the space limiter's
//! `token-bucket` kind (see `limiter`). Written here rather than taken from `governor`, which the client uses, so a
//! misunderstanding of the limiter cannot hide on both sides. Time is passed in, never read.

use std::collections::HashMap;
use std::time::Instant;

/// A token bucket holding at most `rate` tokens and refilling `rate` tokens per second.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` requests per second.
    pub fn new(rate: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            per_sec: f64::from(rate),
            tokens: f64::from(rate),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.last = now;
    }

    /// Takes one token if there is one; false means the request is over the limit.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket would be full again at `now`, i.e. indistinguishable from a new one.
    fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_sec >= self.per_sec
    }
}

/// How many per-profile buckets may exist before full ones are dropped.
const PROFILE_BUCKETS_PRUNE_AT: usize = 4096;

/// One [`TokenBucket`] per profile, created on the first delete and dropped once full again,
/// so a run over a million profiles does not keep a million buckets.
#[derive(Debug)]
pub struct ProfileBuckets {
    rate: u32,
    buckets: HashMap<u32, TokenBucket>,
    prune_at: usize,
}

impl ProfileBuckets {
    /// Buckets for `rate` deletes per second per profile; 0 means unlimited.
    pub fn new(rate: u32) -> ProfileBuckets {
        ProfileBuckets {
            rate,
            buckets: HashMap::new(),
            prune_at: PROFILE_BUCKETS_PRUNE_AT,
        }
    }

    /// Takes a token from the profile's bucket; false means over the per-profile limit.
    pub fn try_take(&mut self, profile: u32, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        if self.buckets.len() >= self.prune_at {
            self.buckets.retain(|_, b| !b.is_full_at(now));
            self.prune_at = (self.buckets.len() * 2).max(PROFILE_BUCKETS_PRUNE_AT);
        }
        let rate = self.rate;
        self.buckets
            .entry(profile)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn token_interval(rate: u32) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(rate))
    }

    #[test]
    fn bucket_allows_a_burst_of_rate_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, t0);
        assert_eq!((0..20).filter(|_| b.try_take(t0)).count(), 5);
        assert!(!b.try_take(t0 + token_interval(5) / 2));
        assert!(b.try_take(t0 + token_interval(5)));
        // After a long pause the bucket holds at most `rate` tokens.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| b.try_take(later)).count(), 5);
    }

    #[test]
    fn profile_buckets_are_independent_and_pruned() {
        let t0 = Instant::now();
        let mut p = ProfileBuckets::new(2);
        assert!(p.try_take(1, t0));
        assert!(p.try_take(1, t0));
        assert!(!p.try_take(1, t0));
        assert!(p.try_take(2, t0));
        let later = t0 + Duration::from_secs(5);
        for n in 0..(PROFILE_BUCKETS_PRUNE_AT as u32 + 10) {
            assert!(p.try_take(100 + n, later));
        }
        assert!(p.buckets.len() <= PROFILE_BUCKETS_PRUNE_AT + 10);
        assert!(!p.buckets.contains_key(&1), "full buckets are dropped");
        assert!(ProfileBuckets::new(0).try_take(1, t0));
    }
}
