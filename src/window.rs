//! The in-flight window shared by plan's resolver and apply's executor: how many requests may
//! be outstanding at once. It opens by slow start: the first request goes alone, and only
//! once the service has said yes does it open to the window that holds the pacer's rate at
//! the observed latency (Little's law with headroom), at most the `--concurrency` cap. So a
//! wrong token or a space without the feature costs one request, not a window's worth.
//!
//! Why not double per round trip, as TCP does: the window here is not what keeps the wire
//! from bursting (the pacer spaces every request), only what may wait for an answer, and the
//! one thing slow start guards against (a space-level refusal) is settled by the first
//! answer. Doubling per round trip would need seven round trips to reach 150 requests in
//! flight, seven seconds at a fraction of the rate when the latency is one second. The pacer (see [`crate::pace`]) decides *when* each
//! request leaves; this decides *how many* may be waiting for an answer.

use std::time::Duration;

/// The latency assumed before the first answer: generous, so a slow API is not throttled by a
/// too-small window while the first answers are on their way.
pub const INITIAL_LATENCY: Duration = Duration::from_secs(1);
/// Headroom over rate × latency, so jitter in latency never starves the pacer.
pub const IN_FLIGHT_HEADROOM: f64 = 1.5;
/// Time added to the latency when sizing the window: requests queued at the pacer keep it
/// busy while the dispatcher is held up (a journal commit waiting on a slow disk, a busy
/// machine). They wait their turn at the pacer, so a larger window sends no burst.
pub const DISPATCH_SLACK: Duration = Duration::from_secs(2);
/// The weight of a new latency sample in the moving average.
pub const LATENCY_WEIGHT: f64 = 0.1;

/// The in-flight window that holds `rate` (requests/s; None: unlimited) at `latency`:
/// Little's law with headroom and [`DISPATCH_SLACK`], at least 1, at most `cap`.
pub fn in_flight_window(rate: Option<f64>, latency: Duration, cap: usize) -> usize {
    match rate {
        None => cap.max(1),
        Some(r) => {
            let time = latency.as_secs_f64() * IN_FLIGHT_HEADROOM + DISPATCH_SLACK.as_secs_f64();
            let needed = (r * time).ceil() as usize + 2;
            needed.clamp(1, cap.max(1))
        }
    }
}

/// Slow start plus the latency-sized window. Pure: the caller feeds it answers.
#[derive(Clone, Debug)]
pub struct Window {
    cap: usize,
    /// 1 until the service said yes, then the cap.
    opened: usize,
    latency: Duration,
}

impl Window {
    /// A closed window (one request) that may open up to `cap`.
    pub fn new(cap: usize) -> Window {
        Window {
            cap: cap.max(1),
            opened: 1,
            latency: INITIAL_LATENCY,
        }
    }

    /// Requests that may be outstanding now, given the pacer's current rate.
    pub fn allowed(&self, rate: Option<f64>) -> usize {
        self.opened
            .min(in_flight_window(rate, self.latency, self.cap))
    }

    /// True once the service has said yes at least once.
    pub fn is_open(&self) -> bool {
        self.opened > 1
    }

    /// The service answered a request in a way that shows it accepts us (a 200, or a 404 about
    /// the item): the window opens to the latency-sized window.
    pub fn said_yes(&mut self) {
        self.opened = self.cap;
    }

    /// One request took `latency` (sizes the window to the rate).
    pub fn observe(&mut self, latency: Duration) {
        self.latency = self.latency.mul_f64(1.0 - LATENCY_WEIGHT) + latency.mul_f64(LATENCY_WEIGHT);
    }

    /// The moving average of the observed latency.
    pub fn latency(&self) -> Duration {
        self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_goes_alone_then_the_window_opens_to_the_latency_window() {
        let mut w = Window::new(512);
        assert_eq!(w.allowed(Some(100.0)), 1);
        assert_eq!(
            w.allowed(None),
            1,
            "unlimited or not, nothing fans out before a yes"
        );
        assert!(!w.is_open());
        w.observe(Duration::from_secs(1));
        assert_eq!(
            w.allowed(Some(100.0)),
            1,
            "an answer that is not a yes opens nothing"
        );
        w.said_yes();
        // 100/s × (1 s latency × 1.5 headroom + 2 s slack) + 2 = 352.
        assert_eq!(w.allowed(Some(100.0)), 352);
        assert!(w.is_open());
        for _ in 0..100 {
            w.observe(Duration::from_millis(50));
        }
        assert_eq!(w.allowed(Some(100.0)), 210);
        assert_eq!(w.allowed(None), 512);
    }

    #[test]
    fn window_is_littles_law_with_headroom_and_capped() {
        let cap = 4096;
        assert_eq!(
            in_flight_window(Some(100.0), Duration::from_secs(3), cap),
            652
        );
        assert_eq!(
            in_flight_window(Some(100.0), Duration::from_millis(50), cap),
            210
        );
        assert_eq!(
            in_flight_window(Some(100.0), Duration::from_secs(3), 64),
            64
        );
        assert_eq!(in_flight_window(None, Duration::from_secs(3), 64), 64);
        assert_eq!(in_flight_window(Some(0.5), Duration::ZERO, 0), 1);
    }
}
