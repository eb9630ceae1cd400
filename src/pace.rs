//! The pacer: one per space, shared by every request of the process (plan reads and apply
//! deletes alike, since Segment counts them against one budget). It owns *when* each request
//! may leave; the in-flight window (how many may be outstanding) lives with the dispatchers
//! (see [`crate::window`]).
//!
//! # Control law
//!
//! Requests leave one at a time through a FIFO turnstile, **evenly spaced** at `1 / r`. Even
//! spacing is the robust form against any limiter: a sliding 1 s window, clock-aligned
//! buckets and a token bucket all admit an even stream at their rate, while a burst (even
//! one GCRA would allow) is what a strict sliding window refuses, the more so when network
//! delay moves arrivals a few milliseconds closer together. A slot is never handed out
//! earlier than one interval after the previous one and never in the past, so an idle
//! stretch is not made up for with a burst: no 1 s window ever sees more than the ceiling.
//!
//! The rate `r` follows the server's answers ([`RateControl`], pure, explicit clock):
//!
//! * Before any 429 it is `HEADROOM × ceiling` (99/s for `--rate 100`): just under the
//!   ceiling, so rounding of the spacing never puts `ceiling + 1` sends in a second.
//! * A 429 to a request sent **after** the last cut is news (older ones answer a rate
//!   already left behind, and are ignored). The rate where it happened is remembered as `W`:
//!   the rate the request was sent at; or, when the last [`DELIVERY_WINDOW`] saw refusals by
//!   the dozen (at least `OVERLOAD` of a window's worth, and `OVERLOAD_MIN`), the rate the
//!   server accepted in that window × `OVERLOAD_OPTIMISM`: the limit actually available (a
//!   space shared with other traffic, a lower limit than `--rate`). One cut is at most
//!   `MAX_CUT` of the rate.
//! * The rate then restarts at `W × (1 − CUT)` and follows a cubic (TCP CUBIC's shape):
//!   `r(t) = W × (HOLD + s × (t − REGROW)³)`, `s = (HOLD − 1 + CUT) / REGROW³`. It climbs
//!   fastest right after the cut, flattens to hold at `HOLD × W` around `t = REGROW`, then
//!   probes upward slowly (it passes `W` about 2.5 s later, so a limit that has not moved
//!   answers with a lone 429 and a 1 % cut) and ever faster (a limit 1.67 × higher, 60 → 100,
//!   is reached about 17 s after holding). The rate never goes above `HEADROOM × ceiling` nor
//!   below `FLOOR × ceiling`.
//!
//! With the constants below, against a strict sliding window at 100/s with 20 ms of arrival
//! jitter the rate settles just under 98/s (jitter makes about 98.0/s the most any client can
//! send without refusals there) with a 429 every few seconds; against fixed windows and token
//! buckets at 99/s; when 40/s of other traffic joins, it is down to 57–60/s within a second
//! or two, and back near the ceiling about 20 s after the traffic leaves (`pace/tests.rs`
//! simulates each case).
//!
//! A request the server throttled goes back through the turnstile like any other, so a
//! retry never jumps the queue or adds a burst.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// The share of the ceiling aimed at before any 429.
pub const HEADROOM: f64 = 0.99;
/// How far below the remembered bad rate `W` a cut restarts: `r = W × (1 − CUT)`.
pub const CUT: f64 = 0.01;
/// The share of `W` the rate holds at, between regrowing and probing.
pub const HOLD: f64 = 0.998;
/// Seconds from a cut until the rate holds at `HOLD × W` (CUBIC's `K`).
pub const REGROW: Duration = Duration::from_secs(4);
/// The largest cut one 429 makes, as a share of the current rate.
pub const MAX_CUT: f64 = 0.4;
/// When at least this share of a window's worth of requests was refused in the last
/// [`DELIVERY_WINDOW`] (and at least [`OVERLOAD_MIN`]), the server holds us to a lower limit
/// than we send at, and the rate it accepted in that window is that limit.
pub const OVERLOAD: f64 = 0.05;
/// How much above the rate it just accepted the server is assumed to have room for: the
/// answers to the last moments' requests are still on their way.
pub const OVERLOAD_OPTIMISM: f64 = 1.03;
/// The fewest refusals in a window that count as an overload.
pub const OVERLOAD_MIN: f64 = 3.0;
/// The window over which accepted and refused answers are counted.
pub const DELIVERY_WINDOW: Duration = Duration::from_secs(1);
/// The lowest the rate goes, as a share of the ceiling.
pub const FLOOR: f64 = 0.05;

/// The pure rate controller (see the module doc for the law). Every method takes the time.
#[derive(Clone, Debug)]
pub struct RateControl {
    ceiling: f64,
    /// The rate where the last 429 happened (`W`), once there was one.
    bad: Option<f64>,
    /// When the current cubic started (the last cut).
    epoch: Option<Instant>,
    /// The answers of the last [`DELIVERY_WINDOW`]: when, and whether accepted.
    answers: VecDeque<Answer>,
    /// The first answer of the run.
    first_answer: Option<Instant>,
    /// The last slot handed out.
    last_slot: Option<Instant>,
}

impl RateControl {
    /// A controller for `ceiling` requests per second (> 0).
    pub fn new(ceiling: f64) -> RateControl {
        RateControl {
            ceiling,
            bad: None,
            epoch: None,
            answers: VecDeque::new(),
            first_answer: None,
            last_slot: None,
        }
    }

    /// The rate aimed at, at `now`.
    pub fn rate(&self, now: Instant) -> f64 {
        let top = self.ceiling * HEADROOM;
        let (Some(w), Some(epoch)) = (self.bad, self.epoch) else {
            return top;
        };
        let k = REGROW.as_secs_f64();
        let slope = (HOLD - 1.0 + CUT) / k.powi(3);
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        (w * (HOLD + slope * (t - k).powi(3))).clamp(self.ceiling * FLOOR, top)
    }

    /// The rate where the last 429 happened, if one did.
    pub fn remembered(&self) -> Option<f64> {
        self.bad
    }

    /// The next send slot for a request asking at `now`: one interval after the previous
    /// slot, never before `now`.
    pub fn next_slot(&mut self, now: Instant) -> Instant {
        let interval = Duration::from_secs_f64(1.0 / self.rate(now));
        let slot = match self.last_slot {
            Some(last) => (last + interval).max(now),
            None => now,
        };
        self.last_slot = Some(slot);
        slot
    }

    /// The server accepted a request (answered anything but 429) at `now`.
    pub fn accepted(&mut self, now: Instant) {
        self.remember(now, true);
    }

    fn remember(&mut self, now: Instant, accepted: bool) {
        self.first_answer.get_or_insert(now);
        self.answers.push_back(Answer { at: now, accepted });
        while let Some(a) = self.answers.front() {
            if now.saturating_duration_since(a.at) > DELIVERY_WINDOW {
                self.answers.pop_front();
            } else {
                break;
            }
        }
    }

    /// The server answered 429 at `now` to a request sent at `sent_at`.
    pub fn throttled(&mut self, sent_at: Instant, now: Instant) {
        self.remember(now, false);
        if self.epoch.is_some_and(|cut| sent_at < cut) {
            return;
        }
        let current = self.rate(sent_at);
        let refused = self.answers.iter().filter(|a| !a.accepted).count() as f64;
        let accepted = self.answers.len() as f64 - refused;
        // Over less than a window when the run is younger than one.
        let window = self.first_answer.map_or(DELIVERY_WINDOW, |first| {
            now.saturating_duration_since(first).min(DELIVERY_WINDOW)
        });
        let window = window.as_secs_f64().max(0.05);
        let bad = if refused >= (current * window * OVERLOAD).max(OVERLOAD_MIN) {
            // Refused by the dozen: the server holds us to what it let through (a little
            // more: answers of the last moments are still on their way).
            (accepted / window * OVERLOAD_OPTIMISM).min(current)
        } else {
            current
        };
        let bad = bad.max(current * (1.0 - MAX_CUT));
        self.bad = Some(bad.max(self.ceiling * FLOOR));
        self.epoch = Some(now);
    }
}

/// One answer as [`RateControl`] remembers it.
#[derive(Clone, Copy, Debug)]
struct Answer {
    at: Instant,
    accepted: bool,
}

/// How long requests already on the wire may take to answer once the pacer is halted
/// ([`Pacer::halt`]): a signal's grace, after which they are given up (their items stay
/// `in_flight` and are re-sent on resume).
pub const HALT_GRACE: Duration = Duration::from_secs(5);

/// A shared request pacer. `rate == 0` means unlimited (a lifted limit, benchmarks).
///
/// It is also where a stop takes effect: once [`Pacer::halt`] is called (on SIGINT or
/// SIGTERM), no request gets a slot, so none *starts*, whether it was queued, waiting for its
/// slot, or about to retry.
#[derive(Debug)]
pub struct Pacer {
    control: Option<Mutex<RateControl>>,
    /// One request at a time waits for its slot; the rest queue in FIFO order.
    turnstile: tokio::sync::Mutex<()>,
    ceiling: u32,
    /// `Some(when)` once halted.
    halted: tokio::sync::watch::Sender<Option<Instant>>,
}

/// What [`Pacer::ready`] hands a request: when it was let through.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    /// The slot the request was sent in.
    pub sent_at: Instant,
}

impl Pacer {
    /// A pacer admitting up to `rate` requests per second (0: no limit).
    pub fn new(rate: u32) -> Self {
        Self {
            control: (rate > 0).then(|| Mutex::new(RateControl::new(f64::from(rate)))),
            turnstile: tokio::sync::Mutex::new(()),
            ceiling: rate,
            halted: tokio::sync::watch::Sender::new(None),
        }
    }

    /// Stops handing out slots, for good: every request waiting for one, and every later
    /// one, gets `None` from [`Pacer::ready`]. Idempotent.
    pub fn halt(&self) {
        self.halted.send_if_modified(|halted| {
            let first = halted.is_none();
            if first {
                *halted = Some(Instant::now());
            }
            first
        });
    }

    /// True once [`Pacer::halt`] was called.
    pub fn is_halted(&self) -> bool {
        self.halted.borrow().is_some()
    }

    /// Resolves once the pacer is halted (never while it runs).
    pub async fn halted(&self) {
        let mut rx = self.halted.subscribe();
        // The sender lives as long as `self`, so the wait only ends on a halt.
        let _ = rx.wait_for(Option::is_some).await.map(|_| ());
    }

    /// Resolves [`HALT_GRACE`] after the halt (never while the pacer runs): when a request
    /// still on the wire is given up.
    pub async fn grace_over(&self) {
        self.halted().await;
        let at = *self.halted.borrow();
        if let Some(at) = at {
            tokio::time::sleep_until((at + HALT_GRACE).into()).await;
        }
    }

    /// The configured ceiling (requests per second, 0 = unlimited).
    pub fn ceiling(&self) -> u32 {
        self.ceiling
    }

    /// The rate currently aimed at (`None`: unlimited).
    pub fn current_rate(&self) -> Option<f64> {
        self.control.as_ref().map(|c| lock(c).rate(Instant::now()))
    }

    /// Waits until one more request may be sent; `None` once the pacer is halted, before or
    /// during the wait: that request must not be sent.
    pub async fn ready(&self) -> Option<Ticket> {
        if self.is_halted() {
            return None;
        }
        let Some(control) = &self.control else {
            return Some(Ticket {
                sent_at: Instant::now(),
            });
        };
        let slot = async {
            let _turn = self.turnstile.lock().await;
            let slot = lock(control).next_slot(Instant::now());
            tokio::time::sleep_until(slot.into()).await;
            Ticket { sent_at: slot }
        };
        tokio::select! {
            biased;
            () = self.halted() => None,
            ticket = slot => (!self.is_halted()).then_some(ticket),
        }
    }

    /// The server accepted the request of `_ticket` (answered anything but 429).
    pub fn accepted(&self, _ticket: &Ticket) {
        if let Some(control) = &self.control {
            lock(control).accepted(Instant::now());
        }
    }

    /// The server throttled the request of `ticket`.
    pub fn throttled(&self, ticket: &Ticket) {
        if let Some(control) = &self.control {
            lock(control).throttled(ticket.sent_at, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
