//! The pacer's law against simulated servers: each of the emulator's limiter models, arrival
//! jitter between sending and the limiter, latency, and (for a shared space) other traffic
//! taking part of the budget. Time is simulated; nothing sleeps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::*;
use crate::emulator::limiter::{LimiterKind, SpaceLimiter};

const ALL: [LimiterKind; 3] = [
    LimiterKind::SlidingWindow,
    LimiterKind::FixedWindow,
    LimiterKind::TokenBucket,
];

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request reaches the limiter.
    Arrival { ours: bool, sent_at: Instant },
    /// Its answer reaches the client.
    Answer { ok: bool, sent_at: Instant },
}

/// A saturated client (always a request waiting) against one limiter.
struct World {
    control: RateControl,
    limiter: SpaceLimiter,
    rng: StdRng,
    transit_jitter: Duration,
    latency: Duration,
    latency_spread: f64,
    events: BinaryHeap<Reverse<(Instant, Event)>>,
    t0: Instant,
    now: Instant,
    accepted: Vec<Instant>,
    refused: Vec<Instant>,
    sent: Vec<Instant>,
}

impl World {
    fn new(kind: LimiterKind, limit: u32, latency: Duration, spread: f64, seed: u64) -> World {
        let t0 = Instant::now();
        World {
            control: RateControl::new(100.0),
            limiter: SpaceLimiter::new(kind, limit, t0, t0.checked_sub(secs(0.7)).unwrap_or(t0))
                .expect("limited"),
            rng: StdRng::seed_from_u64(seed),
            transit_jitter: Duration::from_millis(20),
            latency,
            latency_spread: spread,
            events: BinaryHeap::new(),
            t0,
            now: t0,
            accepted: Vec::new(),
            refused: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn at(&self, s: f64) -> Instant {
        self.t0 + secs(s)
    }

    fn transit(&mut self) -> Duration {
        let span = self.transit_jitter.as_secs_f64();
        secs(self.rng.random_range(0.0..span.max(1e-9)))
    }

    /// Other traffic of the space: `rate` evenly spaced requests per second in `[from, to)`.
    fn background(&mut self, rate: f64, from: f64, to: f64) {
        let mut t = from;
        while t < to {
            let arrival = self.at(t) + self.transit();
            let sent_at = self.at(t);
            self.events.push(Reverse((
                arrival,
                Event::Arrival {
                    ours: false,
                    sent_at,
                },
            )));
            t += 1.0 / rate;
        }
    }

    fn handle(&mut self, at: Instant, event: Event) {
        match event {
            Event::Arrival { ours, sent_at } => {
                let ok = self.limiter.try_admit(at);
                if !ours {
                    return;
                }
                let back = if ok {
                    let f = self
                        .rng
                        .random_range(1.0 - self.latency_spread..=1.0 + self.latency_spread);
                    self.latency.mul_f64(f)
                } else {
                    Duration::from_micros(500)
                };
                if ok {
                    self.accepted.push(at);
                } else {
                    self.refused.push(at);
                }
                self.events
                    .push(Reverse((at + back, Event::Answer { ok, sent_at })));
            }
            Event::Answer { ok, sent_at } => {
                if ok {
                    self.control.accepted(at);
                } else {
                    self.control.throttled(sent_at, at);
                }
            }
        }
    }

    /// Sends back to back through the pacer until `until` seconds.
    fn run(&mut self, until: f64) {
        let end = self.at(until);
        loop {
            let slot = self.control.next_slot(self.now);
            if slot > end {
                break;
            }
            while let Some(Reverse((t, _))) = self.events.peek() {
                if *t > slot {
                    break;
                }
                let Some(Reverse((t, e))) = self.events.pop() else {
                    break;
                };
                self.handle(t, e);
            }
            self.now = slot;
            self.sent.push(slot);
            // The client's timer fires up to a millisecond late.
            let late = secs(self.rng.random_range(0.0..0.001));
            let arrival = slot + late + self.transit();
            self.events.push(Reverse((
                arrival,
                Event::Arrival {
                    ours: true,
                    sent_at: slot,
                },
            )));
        }
    }

    fn count(list: &[Instant], from: Instant, to: Instant) -> usize {
        list.iter().filter(|&&t| t >= from && t < to).count()
    }

    /// Our accepted requests per second in `[from, to)`.
    fn rate(&self, from: f64, to: f64) -> f64 {
        Self::count(&self.accepted, self.at(from), self.at(to)) as f64 / (to - from)
    }

    /// The share of our requests refused in `[from, to)`.
    fn refused_share(&self, from: f64, to: f64) -> f64 {
        let r = Self::count(&self.refused, self.at(from), self.at(to)) as f64;
        let a = Self::count(&self.accepted, self.at(from), self.at(to)) as f64;
        r / (r + a).max(1.0)
    }

    /// Seconds after `from` from which every 3 s window up to `to` held at least
    /// `share × limit` accepted requests per second.
    fn settled_after(&self, from: f64, to: f64, limit: f64, share: f64) -> f64 {
        let mut settled = from;
        let mut s = from;
        while s + 3.0 <= to {
            if self.rate(s, s + 3.0) < share * limit {
                settled = s + 0.1;
            }
            s += 0.1;
        }
        settled - from
    }
}

/// Against each limiter at `latency` (± `spread`): the rate from 2 s to 60 s holds at 97.5/s
/// or more, with at most 0.5 % refused.
fn holds_just_under_each_limiter(latency: Duration, spread: f64, seed: u64) {
    for kind in ALL {
        let mut w = World::new(kind, 100, latency, spread, seed);
        w.run(60.0);
        let rate = w.rate(2.0, 60.0);
        let refused = w.refused_share(0.0, 60.0);
        eprintln!(
            "{kind:?}: {rate:.2}/s, {:.2} % refused, W {:?}",
            refused * 100.0,
            w.control.remembered()
        );
        assert!(rate >= 97.5, "{kind:?}: {rate:.2}/s");
        assert!(
            refused <= 0.005,
            "{kind:?}: {:.2} % refused",
            refused * 100.0
        );
    }
}

#[test]
fn holds_just_under_each_limiter_at_low_latency() {
    holds_just_under_each_limiter(Duration::from_millis(50), 0.4, 7);
}

#[test]
fn holds_just_under_each_limiter_at_high_latency() {
    holds_just_under_each_limiter(Duration::from_secs(1), 0.3, 11);
}

#[test]
fn steps_down_when_the_space_is_shared_and_recovers_when_it_is_not() {
    for kind in ALL {
        let mut w = World::new(kind, 100, Duration::from_millis(50), 0.4, 3);
        // 40/s of other traffic from 20 s to 60 s: 60/s left for us.
        w.background(40.0, 20.0, 60.0);
        w.run(100.0);
        let before = w.rate(5.0, 20.0);
        let settle = w.settled_after(20.0, 60.0, 60.0, 0.95);
        let shared = w.rate(25.0, 60.0);
        let refused = w.refused_share(20.0, 60.0);
        let recovered = w.settled_after(60.0, 100.0, 100.0, 0.95);
        let after = w.rate(90.0, 100.0);
        eprintln!(
            "{kind:?}: before {before:.1}/s; shared {shared:.1}/s settled in {settle:.1} s, \
             {:.2} % refused; recovered to 95 % in {recovered:.1} s, then {after:.1}/s",
            refused * 100.0
        );
        assert!(before >= 98.0, "{kind:?}: {before:.1}");
        assert!(settle <= 5.0, "{kind:?}: settled after {settle:.1} s");
        assert!(shared >= 57.0, "{kind:?}: {shared:.1}/s of 60");
        assert!(refused <= 0.025, "{kind:?}: {:.2} %", refused * 100.0);
        assert!(
            recovered <= 30.0,
            "{kind:?}: recovered after {recovered:.1} s"
        );
        assert!(after >= 97.0, "{kind:?}: {after:.1}/s after recovery");
    }
}

#[test]
fn a_lower_limit_from_the_start_is_found_within_seconds() {
    for kind in ALL {
        let mut w = World::new(kind, 60, Duration::from_millis(50), 0.4, 5);
        w.run(60.0);
        let settle = w.settled_after(0.0, 60.0, 60.0, 0.95);
        let rate = w.rate(5.0, 60.0);
        let refused = w.refused_share(0.0, 60.0);
        eprintln!(
            "{kind:?}: {rate:.1}/s of 60, settled in {settle:.1} s, {:.2} % refused",
            refused * 100.0
        );
        assert!(settle <= 15.0, "{kind:?}: {settle:.1} s");
        assert!(rate >= 57.0, "{kind:?}: {rate:.1}/s");
        assert!(refused <= 0.02, "{kind:?}: {:.2} %", refused * 100.0);
    }
}

/// What no pacer can beat: an even stream sent open loop (429s ignored) through a strict
/// sliding window of 100/s, behind 20 ms of arrival jitter and a timer up to 1 ms late.
/// Arrivals of any 1.02 s of sending can fall inside one second, so the most a stream holds
/// without refusals is 100 / 1.02 = 98.04/s; faster, refusals grow quickly and each leaves a
/// gap. Among send rates refused at most 0.5 % of the time (issue 8's 429 target), none gets
/// more than about 98.1/s accepted: the ceiling `holds_just_under_each_limiter` is measured
/// against, and why the sliding-window rate stops just under 0.98 of the limit.
#[test]
fn an_even_stream_through_a_jittered_sliding_window_stops_near_98() {
    let mut best = (0.0, 0.0, 0.0);
    for tenths in 970..=1000 {
        let sent_rate = f64::from(tenths) / 10.0;
        let t0 = Instant::now();
        let mut limiter =
            SpaceLimiter::new(LimiterKind::SlidingWindow, 100, t0, t0).expect("limited");
        let mut rng = StdRng::seed_from_u64(11);
        let mut arrivals: Vec<Instant> = (0..(sent_rate * 120.0) as u32)
            .map(|i| {
                let late = rng.random_range(0.0..0.001) + rng.random_range(0.0..0.02);
                t0 + secs(f64::from(i) / sent_rate + late)
            })
            .collect();
        arrivals.sort();
        let accepted = arrivals.iter().filter(|&&a| limiter.try_admit(a)).count();
        let rate = accepted as f64 / 120.0;
        let refused = 1.0 - accepted as f64 / arrivals.len() as f64;
        if refused <= 0.005 && rate > best.1 {
            best = (sent_rate, rate, refused);
        }
    }
    let (sent_rate, rate, refused) = best;
    eprintln!(
        "best within 0.5 % refused: {rate:.2}/s accepted, sent at {sent_rate:.1}/s, {:.2} % refused",
        refused * 100.0
    );
    assert!((97.9..98.2).contains(&rate), "{rate:.2}/s");
}

#[test]
fn slots_never_put_more_than_the_ceiling_in_any_second() {
    let t0 = Instant::now();
    let mut c = RateControl::new(100.0);
    let mut slots = Vec::new();
    let mut now = t0;
    for i in 0..1_000 {
        // An idle stretch in the middle is not made up for with a burst.
        if i == 500 {
            now += secs(3.0);
        }
        let slot = c.next_slot(now);
        assert!(slot >= now);
        slots.push(slot);
        now = slot;
    }
    for (i, &s) in slots.iter().enumerate() {
        let in_window = slots[i..]
            .iter()
            .take_while(|&&t| t < s + secs(1.0))
            .count();
        assert!(
            in_window <= 100,
            "{in_window} sends in the second from slot {i}"
        );
    }
}

#[test]
fn throttles_of_requests_sent_before_a_cut_do_not_compound() {
    let t0 = Instant::now();
    let mut c = RateControl::new(100.0);
    c.throttled(t0, t0 + secs(0.01));
    let after_one = c.rate(t0 + secs(0.02));
    assert!((after_one - 99.0 * (1.0 - CUT)).abs() < 0.01, "{after_one}");
    // Answers to requests sent before the cut say nothing about the new rate.
    for i in 0..50 {
        c.throttled(t0 + secs(0.005), t0 + secs(0.02 + f64::from(i) * 0.001));
    }
    assert!((c.rate(t0 + secs(0.02)) - after_one).abs() < 0.5);
    // One sent after it does.
    c.throttled(t0 + secs(0.1), t0 + secs(0.11));
    assert!(c.rate(t0 + secs(0.12)) < after_one - 1.0);
    // It regrows to hold just under the remembered rate, then probes above it.
    let w = c.remembered().expect("a bad rate");
    let held = c.rate(t0 + secs(0.11) + REGROW);
    assert!((held - w * HOLD).abs() < 0.01, "{held} vs {w}");
    assert!(c.rate(t0 + secs(0.11) + REGROW * 3) > w);
    assert!(c.rate(t0 + secs(100.0)) <= 100.0 * HEADROOM);
}

#[test]
fn the_floor_holds_under_a_storm() {
    let t0 = Instant::now();
    let mut c = RateControl::new(100.0);
    for i in 0..1_000 {
        let t = t0 + secs(f64::from(i) * 0.01);
        c.throttled(t, t);
    }
    let r = c.rate(t0 + secs(10.0));
    assert!(r >= 100.0 * FLOOR - 1e-9, "{r}");
}

#[test]
#[ignore = "prints a trajectory, for tuning"]
fn trajectory() {
    let kind = match std::env::var("KIND").as_deref() {
        Ok("fixed") => LimiterKind::FixedWindow,
        Ok("bucket") => LimiterKind::TokenBucket,
        _ => LimiterKind::SlidingWindow,
    };
    let limit: u32 = std::env::var("LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let lat: f64 = std::env::var("LAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.05);
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut w = World::new(kind, limit, secs(lat), 0.3, seed);
    w.run(60.0);
    for s in 0..60 {
        let s = f64::from(s);
        let refused = World::count(&w.refused, w.at(s), w.at(s + 1.0));
        eprintln!("{s:>3} {:>6.1} {refused}", w.rate(s, s + 1.0));
    }
    eprintln!(
        "2-60 s: {:.2}/s, {:.2} % refused",
        w.rate(2.0, 60.0),
        w.refused_share(0.0, 60.0) * 100.0
    );
}
