//! The one poll-until-deadline rule, shared by `verify --wait` and the canary's re-reads:
//! a pause that doubles from a first delay up to a longest one, cut short by the deadline.

use std::time::{Duration, Instant};

/// Pauses between polls until a deadline.
#[derive(Debug)]
pub struct Poll {
    deadline: Instant,
    delay: Duration,
    max: Duration,
}

impl Poll {
    /// Polls for `wait` from now, pausing `first`, then twice as long each time, up to `max`.
    pub fn new(wait: Duration, first: Duration, max: Duration) -> Self {
        Self {
            deadline: Instant::now() + wait,
            delay: first,
            max,
        }
    }

    /// The next pause (never past the deadline), or `None` once the deadline has passed.
    pub fn next_pause(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        let pause = self.delay.min(self.deadline - now);
        self.delay = (self.delay * 2).min(self.max);
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_longest() {
        let mut poll = Poll::new(
            Duration::from_secs(3600),
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        let pauses: Vec<_> = (0..5).map(|_| poll.next_pause().expect("before")).collect();
        assert_eq!(
            pauses,
            [1, 2, 4, 5, 5].map(Duration::from_secs).to_vec(),
            "doubling, capped"
        );
    }

    #[test]
    fn no_pause_once_the_deadline_passed() {
        let mut poll = Poll::new(
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        assert_eq!(poll.next_pause(), None);
    }
}
