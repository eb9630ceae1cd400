//! Fault injection: latency with jitter, 5xx answers, hangs, malformed bodies and lost
//! acknowledgements, all drawn from one seeded RNG so a run with `--random-seed N` replays the
//! same faults for the same sequence of requests. Decides only; `server.rs` sleeps and answers.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::reply::Reply;

/// The statuses an injected server error picks from.
const SERVER_ERRORS: [u16; 3] = [500, 502, 503];

/// The fault-injection settings and their RNG.
#[derive(Debug)]
pub struct Faults {
    rng: Mutex<StdRng>,
    latency: Duration,
    jitter_pct: u32,
    transit_jitter: Duration,
    /// Fraction of requests answered with a 5xx.
    pub fail_rate: f64,
    /// Fraction of requests that sleep for `hang` first.
    pub hang_rate: f64,
    /// How long a hanging request sleeps.
    pub hang: Duration,
    /// Fraction of 200/404 bodies that are cut short.
    pub malformed_rate: f64,
    /// Fraction of successful deletes answered 500 after being applied.
    pub lost_ack_rate: f64,
}

/// The settings `Faults` is built from (a subset of the command-line flags).
#[derive(Clone, Debug, Default)]
pub struct FaultSettings {
    /// Base latency.
    pub latency: Duration,
    /// Latency is uniform in ±this percentage of `latency`.
    pub jitter_pct: u32,
    /// Each request waits uniformly in `[0, transit_jitter)` before the limiter sees it.
    pub transit_jitter: Duration,
    /// See [`Faults::fail_rate`].
    pub fail_rate: f64,
    /// See [`Faults::hang_rate`].
    pub hang_rate: f64,
    /// See [`Faults::hang`].
    pub hang: Duration,
    /// See [`Faults::malformed_rate`].
    pub malformed_rate: f64,
    /// See [`Faults::lost_ack_rate`].
    pub lost_ack_rate: f64,
}

impl Faults {
    /// Faults drawn from an RNG seeded with `seed`.
    pub fn new(settings: FaultSettings, seed: u64) -> Faults {
        Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            latency: settings.latency,
            jitter_pct: settings.jitter_pct.min(100),
            transit_jitter: settings.transit_jitter,
            fail_rate: settings.fail_rate,
            hang_rate: settings.hang_rate,
            hang: settings.hang,
            malformed_rate: settings.malformed_rate,
            lost_ack_rate: settings.lost_ack_rate,
        }
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut rng)
    }

    /// The latency of one request: the base, moved uniformly within ±jitter.
    pub fn latency(&self) -> Duration {
        if self.latency.is_zero() || self.jitter_pct == 0 {
            return self.latency;
        }
        let spread = f64::from(self.jitter_pct) / 100.0;
        let factor = self.with_rng(|rng| rng.random_range(1.0 - spread..=1.0 + spread));
        self.latency.mul_f64(factor.max(0.0))
    }

    /// The network delay of one request before it arrives: uniform in `[0, transit_jitter)`.
    pub fn transit(&self) -> Duration {
        let span = self.transit_jitter.as_micros() as u64;
        if span == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.with_rng(|rng| rng.random_range(0..span)))
    }

    /// True with probability `p` (never draws when `p` is 0, so unused faults cost nothing).
    pub fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.with_rng(|rng| rng.random_bool(p.min(1.0)))
    }

    /// An injected server error with Segment's envelope.
    pub fn server_error(&self) -> Reply {
        let status = self.with_rng(|rng| SERVER_ERRORS[rng.random_range(0..SERVER_ERRORS.len())]);
        server_error(status)
    }

    /// Cuts a body short so it is no longer valid JSON (a proper prefix of a JSON object never is).
    pub fn malform(&self, body: &mut Vec<u8>) {
        let len = body.len();
        let keep = if len < 2 {
            0
        } else {
            self.with_rng(|rng| rng.random_range(1..len))
        };
        body.truncate(keep);
    }
}

/// A 5xx with Segment's envelope ("Something went wrong on Segment's side").
pub fn server_error(status: u16) -> Reply {
    Reply::error(
        status,
        "internal_error",
        "Something went wrong on Segment's side.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_faults_replay() {
        let settings = FaultSettings {
            latency: Duration::from_millis(100),
            jitter_pct: 50,
            fail_rate: 0.3,
            ..FaultSettings::default()
        };
        let draw = |f: &Faults| -> Vec<(bool, Duration)> {
            (0..50)
                .map(|_| (f.roll(f.fail_rate), f.latency()))
                .collect()
        };
        let a = draw(&Faults::new(settings.clone(), 7));
        let b = draw(&Faults::new(settings.clone(), 7));
        assert_eq!(a, b);
        assert!(a.iter().any(|(fail, _)| *fail) && a.iter().any(|(fail, _)| !*fail));
        for (_, latency) in &a {
            assert!((50..=150).contains(&latency.as_millis()), "{latency:?}");
        }
        let f = Faults::new(FaultSettings::default(), 1);
        assert_eq!(f.transit(), Duration::ZERO);
        let t = Faults::new(
            FaultSettings {
                transit_jitter: Duration::from_millis(20),
                ..FaultSettings::default()
            },
            1,
        );
        let delays: Vec<Duration> = (0..200).map(|_| t.transit()).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_millis(20)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(10)));
        assert!(!f.roll(0.0));
        assert!(f.roll(1.0));
    }

    #[test]
    fn malformed_bodies_do_not_parse() {
        let f = Faults::new(FaultSettings::default(), 3);
        for _ in 0..100 {
            let mut body = br#"{"code":"success","message":"ok"}"#.to_vec();
            f.malform(&mut body);
            assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
        }
    }
}
