//! The pacer: one limiter per space, shared by every request of the process (plan reads and
//! apply deletes alike, since Segment counts them against one 100/s budget).
//!
//! Two gates in series:
//! - a GCRA limiter (governor) at the configured ceiling (`--rate`) with a small burst, so a
//!   run starts at once but never bursts past the server's bucket;
//! - an adaptive gate ([`Aimd`]): when the server answers 429 anyway (a shared space, a lower
//!   limit than assumed) the send rate steps down multiplicatively, then recovers additively
//!   while requests succeed. It is pure state with an explicit clock so it is unit-tested, and
//!   it only delays requests while the adapted rate is below the ceiling. governor's quotas are
//!   fixed once built, which is why the adaptive part is a separate gate.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests allowed back to back before pacing starts; small, so a run never opens with a spike.
pub const BURST: u32 = 5;
/// The factor applied to the rate on a 429.
pub const DECREASE: f64 = 0.7;
/// The share of the ceiling regained per second without a 429.
pub const RECOVERY_PER_SEC: f64 = 0.05;
/// The lowest the rate goes, as a share of the ceiling.
pub const FLOOR: f64 = 0.05;
/// Several 429s arriving together answer one burst: the rate steps down at most once per this.
pub const DECREASE_COOLDOWN: Duration = Duration::from_millis(1000);

/// Additive-increase, multiplicative-decrease control of the send rate.
#[derive(Clone, Debug)]
pub struct Aimd {
    ceiling: f64,
    rate: f64,
    last_decrease: Option<Instant>,
    recovered_at: Option<Instant>,
    next_slot: Option<Instant>,
}

impl Aimd {
    /// Starts at the ceiling (requests per second, > 0).
    pub fn new(ceiling: f64) -> Self {
        Self {
            ceiling,
            rate: ceiling,
            last_decrease: None,
            recovered_at: None,
            next_slot: None,
        }
    }

    /// The current rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A 429 arrived at `now`.
    pub fn throttled(&mut self, now: Instant) {
        self.recover(now);
        let recent = self
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < DECREASE_COOLDOWN);
        if !recent {
            self.rate = (self.rate * DECREASE).max(self.ceiling * FLOOR);
            self.last_decrease = Some(now);
            self.recovered_at = Some(now);
        }
    }

    /// Regains rate for the time since the last change.
    fn recover(&mut self, now: Instant) {
        if let Some(t) = self.recovered_at {
            let secs = now.saturating_duration_since(t).as_secs_f64();
            if secs > 0.0 && self.rate < self.ceiling {
                self.rate = (self.rate + self.ceiling * RECOVERY_PER_SEC * secs).min(self.ceiling);
                self.recovered_at = Some(now);
            }
        }
    }

    /// Reserves the next send slot at or after `now`; `None` when the rate is back at the
    /// ceiling and this gate has nothing to add.
    pub fn reserve(&mut self, now: Instant) -> Option<Instant> {
        self.recover(now);
        if self.rate >= self.ceiling {
            self.next_slot = None;
            return None;
        }
        let slot = self.next_slot.map_or(now, |n| n.max(now));
        self.next_slot = Some(slot + Duration::from_secs_f64(1.0 / self.rate));
        Some(slot)
    }
}

/// A shared request pacer. `rate == 0` means unlimited (a lifted limit, benchmarks).
#[derive(Debug)]
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    adaptive: Option<Mutex<Aimd>>,
    queue: tokio::sync::Mutex<()>,
    rate: u32,
}

impl Pacer {
    /// A pacer admitting `rate` requests per second (0: no limit).
    pub fn new(rate: u32) -> Self {
        let limiter = NonZeroU32::new(rate).map(|r| {
            let burst = NonZeroU32::new(BURST.min(rate)).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(r).allow_burst(burst))
        });
        let adaptive = (rate > 0).then(|| Mutex::new(Aimd::new(f64::from(rate))));
        Self {
            limiter,
            adaptive,
            queue: tokio::sync::Mutex::new(()),
            rate,
        }
    }

    /// The configured ceiling (requests per second, 0 = unlimited).
    pub fn ceiling(&self) -> u32 {
        self.rate
    }

    /// The rate currently aimed at (the ceiling unless 429s pushed it down; `None`: unlimited).
    pub fn current_rate(&self) -> Option<f64> {
        self.adaptive.as_ref().map(|a| self.lock(a).rate())
    }

    fn lock<'a>(&self, m: &'a Mutex<Aimd>) -> std::sync::MutexGuard<'a, Aimd> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until one more request may be sent.
    pub async fn ready(&self) {
        if let Some(limiter) = &self.limiter {
            // One waiter at a time on the limiter, the rest queue in FIFO order: hundreds of
            // tasks polling governor together would all wake for every admitted request.
            let _turn = self.queue.lock().await;
            limiter.until_ready().await;
        }
        if let Some(adaptive) = &self.adaptive {
            let slot = self.lock(adaptive).reserve(Instant::now());
            if let Some(slot) = slot {
                tokio::time::sleep_until(slot.into()).await;
            }
        }
    }

    /// Tells the pacer the server throttled a request.
    pub fn throttled(&self) {
        if let Some(adaptive) = &self.adaptive {
            self.lock(adaptive).throttled(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_down_once_per_burst_and_recovers() {
        let t0 = Instant::now();
        let mut a = Aimd::new(100.0);
        assert_eq!(a.reserve(t0), None);
        a.throttled(t0);
        assert!((a.rate() - 70.0).abs() < 1e-9);
        // More 429s from the same burst do not compound.
        a.throttled(t0 + Duration::from_millis(100));
        assert!((a.rate() - 70.5).abs() < 1e-9, "{}", a.rate());
        // A 429 after the cool-down steps down again.
        a.throttled(t0 + Duration::from_millis(1200));
        assert!(a.rate() < 60.0);
        // Ten quiet seconds later it is back at the ceiling.
        assert_eq!(a.reserve(t0 + Duration::from_secs(12)), None);
        assert!((a.rate() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn slots_are_spaced_by_the_adapted_rate() {
        let t0 = Instant::now();
        let mut a = Aimd::new(10.0);
        for _ in 0..20 {
            a.throttled(t0);
        }
        let rate = a.rate();
        let s1 = a.reserve(t0).expect("slot");
        let s2 = a.reserve(t0).expect("slot");
        let gap = s2.duration_since(s1).as_secs_f64();
        assert!((gap - 1.0 / rate).abs() < 0.01, "gap {gap} rate {rate}");
        assert!(rate >= 10.0 * FLOOR);
    }
}
