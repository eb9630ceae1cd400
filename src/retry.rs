//! Retry policy as pure functions (cargo's `util/network/retry.rs` idea): the policy returns a
//! delay, the caller sleeps. Exponential backoff with full jitter, `Retry-After` honoured as a
//! floor, and a retry budget (as in the AWS SDKs) so a sustained fault stops the run instead of
//! marking thousands of items failed.

use std::time::Duration;

/// The first backoff step.
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// The largest backoff step.
pub const MAX_DELAY: Duration = Duration::from_secs(20);
/// Attempts per item for non-throttling transient faults before the item is marked failed.
pub const MAX_ATTEMPTS: u32 = 5;
/// Attempts per item when the server only throttled (429): generous, since slowing down works.
pub const MAX_THROTTLED_ATTEMPTS: u32 = 30;
/// Tokens in a full retry budget.
pub const BUDGET_CAPACITY: u32 = 500;
/// Tokens one retry of a transient fault costs.
pub const RETRY_COST: u32 = 5;
/// Tokens a success gives back.
pub const SUCCESS_REFUND: u32 = 1;

/// The delay before retry number `attempt` (1 = the first retry). `unit` is a uniform random
/// number in `[0, 1)`, passed in so the function stays pure.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    let exp = BASE_DELAY.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let jittered = exp.min(MAX_DELAY).mul_f64(unit.clamp(0.0, 1.0));
    match retry_after {
        Some(floor) => jittered.max(floor),
        None => jittered,
    }
}

/// A token bucket of retries shared by a whole run. Retries withdraw, successes refund; when
/// a retry cannot be paid for, faults are sustained and the run should stop dispatching.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    tokens: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            tokens: BUDGET_CAPACITY,
        }
    }
}

impl RetryBudget {
    /// Pays for one retry; false when the budget is spent.
    pub fn withdraw(&mut self) -> bool {
        if self.tokens >= RETRY_COST {
            self.tokens -= RETRY_COST;
            true
        } else {
            false
        }
    }

    /// Credits a success.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + SUCCESS_REFUND).min(BUDGET_CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1, None, 0.999_999).as_millis(), 199);
        assert_eq!(backoff(3, None, 0.5), Duration::from_millis(400));
        assert_eq!(backoff(30, None, 1.0), MAX_DELAY);
        assert_eq!(backoff(1, None, 0.0), Duration::ZERO);
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3)), 0.5),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn budget_runs_out_and_refills() {
        let mut b = RetryBudget::default();
        let retries = (0..1000).take_while(|_| b.withdraw()).count();
        assert_eq!(retries as u32, BUDGET_CAPACITY / RETRY_COST);
        for _ in 0..RETRY_COST {
            b.refund();
        }
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }
}
