//! The emulator's space limiter, in the three shapes Segment's limiter might take (it does not
//! document how it counts): a strict sliding 1-second window, fixed clock-aligned 1-second
//! buckets, and a token bucket holding a second of tokens. Each admits or refuses one arrival
//! at an explicit instant; a refused arrival uses none of the budget. Written here, not taken
//! from the client's pacer, so a misunderstanding of rate limiting cannot hide on both sides.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bucket::TokenBucket;

/// The length of every limiter's counting window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// How the space limit counts (`idprune emulator --limiter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LimiterKind {
    /// At most N accepted requests in any 1 s window (the strictest reading).
    #[default]
    SlidingWindow,
    /// At most N accepted requests per clock-aligned second (a burst may straddle a boundary).
    FixedWindow,
    /// A bucket of N tokens refilled at N per second (forgives a burst of a full second).
    TokenBucket,
}

/// A space limiter of one of the three kinds.
#[derive(Debug)]
pub enum SpaceLimiter {
    /// See [`LimiterKind::SlidingWindow`].
    Sliding(SlidingWindow),
    /// See [`LimiterKind::FixedWindow`].
    Fixed(FixedWindow),
    /// See [`LimiterKind::TokenBucket`].
    Bucket(TokenBucket),
}

impl SpaceLimiter {
    /// A limiter of `kind` for `rate` requests per second; `None` when `rate` is 0 (lifted).
    /// `second_start` is an instant at which a wall-clock second begins (fixed windows align
    /// to it).
    pub fn new(
        kind: LimiterKind,
        rate: u32,
        now: Instant,
        second_start: Instant,
    ) -> Option<SpaceLimiter> {
        (rate > 0).then(|| match kind {
            LimiterKind::SlidingWindow => SpaceLimiter::Sliding(SlidingWindow::new(rate)),
            LimiterKind::FixedWindow => SpaceLimiter::Fixed(FixedWindow::new(rate, second_start)),
            LimiterKind::TokenBucket => SpaceLimiter::Bucket(TokenBucket::new(rate, now)),
        })
    }

    /// Admits one arrival at `now` (true) or refuses it (false, nothing counted).
    pub fn try_admit(&mut self, now: Instant) -> bool {
        match self {
            SpaceLimiter::Sliding(s) => s.try_admit(now),
            SpaceLimiter::Fixed(f) => f.try_admit(now),
            SpaceLimiter::Bucket(b) => b.try_take(now),
        }
    }
}

/// At most `rate` accepted arrivals in any window `(t - 1 s, t]`.
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    rate: usize,
    /// The instants of the accepted arrivals of the last second, oldest first.
    accepted: VecDeque<Instant>,
}

impl SlidingWindow {
    /// A window admitting `rate` (> 0) arrivals per second.
    pub fn new(rate: u32) -> SlidingWindow {
        SlidingWindow {
            rate: rate as usize,
            accepted: VecDeque::with_capacity(rate as usize),
        }
    }

    /// Admits an arrival at `now` unless `rate` arrivals were accepted in the second before.
    /// Arrivals are expected in time order; a late one is judged against the same window.
    pub fn try_admit(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.accepted.front() {
            if now.saturating_duration_since(oldest) >= WINDOW {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if self.accepted.len() < self.rate {
            self.accepted
                .push_back(now.max(self.accepted.back().copied().unwrap_or(now)));
            true
        } else {
            false
        }
    }
}

/// At most `rate` accepted arrivals in each second `[origin + k s, origin + (k+1) s)`.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    rate: u32,
    origin: Instant,
    /// The index of the current second, and the arrivals it accepted.
    current: (u64, u32),
}

impl FixedWindow {
    /// Buckets of `rate` (> 0) arrivals, the first starting at `origin`.
    pub fn new(rate: u32, origin: Instant) -> FixedWindow {
        FixedWindow {
            rate,
            origin,
            current: (0, 0),
        }
    }

    /// Admits an arrival at `now` unless its second already accepted `rate`.
    pub fn try_admit(&mut self, now: Instant) -> bool {
        let second = now.saturating_duration_since(self.origin).as_secs();
        if second != self.current.0 {
            self.current = (second, 0);
        }
        if self.current.1 < self.rate {
            self.current.1 += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn sliding_window_holds_any_second_to_the_rate() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(3);
        assert!(w.try_admit(t0));
        assert!(w.try_admit(t0 + ms(100)));
        assert!(w.try_admit(t0 + ms(900)));
        assert!(!w.try_admit(t0 + ms(950)));
        // Refusals use no budget: once the first arrival is a second old, one more fits.
        assert!(!w.try_admit(t0 + ms(999)));
        assert!(w.try_admit(t0 + ms(1000)));
        assert!(!w.try_admit(t0 + ms(1050)));
        assert!(w.try_admit(t0 + ms(1100)));
        // A burst straddling a second boundary is refused, unlike fixed buckets.
        assert!(!w.try_admit(t0 + ms(1850)));
        assert!(w.try_admit(t0 + ms(1900)));
        assert!(w.try_admit(t0 + ms(2000)));
    }

    #[test]
    fn sliding_window_counts_every_window_of_an_even_stream() {
        // 100/s spaced 10 ms apart all pass; one more in between never does.
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(100);
        for i in 0..500 {
            assert!(w.try_admit(t0 + ms(10 * i)), "arrival {i}");
            if i >= 99 {
                assert!(!w.try_admit(t0 + ms(10 * i + 5)), "extra {i}");
            }
        }
    }

    #[test]
    fn fixed_window_resets_on_clock_seconds() {
        let origin = Instant::now();
        let mut f = FixedWindow::new(2, origin);
        assert!(f.try_admit(origin + ms(900)));
        assert!(f.try_admit(origin + ms(950)));
        assert!(!f.try_admit(origin + ms(999)));
        // A new second: a burst of 2 right after the last, twice the rate across the boundary.
        assert!(f.try_admit(origin + ms(1000)));
        assert!(f.try_admit(origin + ms(1001)));
        assert!(!f.try_admit(origin + ms(1500)));
        assert!(f.try_admit(origin + ms(3000)));
    }

    #[test]
    fn token_bucket_forgives_a_second_of_burst() {
        let t0 = Instant::now();
        let mut b = SpaceLimiter::new(LimiterKind::TokenBucket, 10, t0, t0).expect("limited");
        assert_eq!((0..30).filter(|_| b.try_admit(t0)).count(), 10);
        assert!(!b.try_admit(t0 + ms(50)));
        assert!(b.try_admit(t0 + ms(100)));
    }

    #[test]
    fn rate_zero_is_no_limiter_and_each_kind_builds() {
        let t0 = Instant::now();
        assert!(SpaceLimiter::new(LimiterKind::SlidingWindow, 0, t0, t0).is_none());
        for kind in [
            LimiterKind::SlidingWindow,
            LimiterKind::FixedWindow,
            LimiterKind::TokenBucket,
        ] {
            let mut l = SpaceLimiter::new(kind, 5, t0, t0).expect("limited");
            assert_eq!((0..20).filter(|_| l.try_admit(t0)).count(), 5, "{kind:?}");
        }
    }
}
