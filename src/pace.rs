//! The pacer: one limiter per space, shared by every request of the process (plan reads and
//! apply deletes alike, since Segment counts them against one 100/s budget). Built on governor's
//! GCRA with a small burst, so a run starts at once but never bursts past the server's bucket.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests allowed back to back before pacing starts; small, so a run never opens with a spike.
pub const BURST: u32 = 5;

/// A shared request pacer. `rate == 0` means unlimited (the emulator's lifted limit, benchmarks).
#[derive(Debug)]
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    rate: u32,
}

impl Pacer {
    /// A pacer admitting `rate` requests per second (0: no limit).
    pub fn new(rate: u32) -> Self {
        let limiter = NonZeroU32::new(rate).map(|r| {
            let burst = NonZeroU32::new(BURST.min(rate)).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(r).allow_burst(burst))
        });
        Self { limiter, rate }
    }

    /// The configured rate (requests per second, 0 = unlimited).
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Waits until one more request may be sent.
    pub async fn ready(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }
}
