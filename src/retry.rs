//! The one retry state machine of idprune, used by plan's reads and apply's deletes alike
//! (cargo's `util/network/retry.rs` idea): [`Attempts::on_fault`] returns what to do, the
//! caller sleeps. Exponential backoff with full jitter for transient faults, `Retry-After`
//! honoured as a floor, and a retry budget (as in the AWS SDKs) so a sustained fault stops the
//! run instead of marking thousands of items failed. A throttled request (429) goes straight
//! back through the pacer, which is what slows down (waiting only for a `Retry-After`): an
//! exponential backoff on top would park it, holding a place in the in-flight window while
//! the pacer has nothing to send. Without a pacer (`--rate 0`) it backs off like any
//! transient fault. Only transient faults, and `Retry-After` waits of [`LONG_RETRY_AFTER`] or
//! more, draw on the budget; `ui::say_waiting` says so on stderr.

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
/// A `Retry-After` at least this long is a wait, not a nudge: it draws on the run's budget like
/// a transient fault, so a server that keeps answering "come back in a minute" stops the run
/// instead of holding it for half an hour in silence.
pub const LONG_RETRY_AFTER: Duration = Duration::from_secs(2);
/// The most one request waits on `Retry-After` in all its attempts before it gives up.
pub const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(120);
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

/// What the caller does after a fault it may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then send again (through the pacer).
    Retry(Duration),
    /// This request's attempts are used up: the item fails (as transient).
    GiveUp,
    /// The run's retry budget is spent: faults are sustained, stop dispatching.
    BudgetSpent,
}

/// A fault worth retrying, as the retry machine sees it.
#[derive(Clone, Copy, Debug)]
pub struct Retryable {
    /// A 429 (else another transient fault: 5xx, timeout, reset, malformed body).
    pub throttled: bool,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// The retry goes back through an adaptive pacer (a `--rate` is set).
    pub paced: bool,
}

/// The attempts of one request (one item's delete, one page's read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempts {
    transient: u32,
    throttled: u32,
    /// `Retry-After` waited so far by this request.
    waited: Duration,
}

impl Attempts {
    /// A retryable fault happened: `throttled` for a 429, with the server's `Retry-After` if
    /// any; `paced` when the request goes back through an adaptive pacer. Transient faults
    /// draw on `budget`; `unit` is a uniform random number in `[0, 1)` for the jitter, passed
    /// in so the machine stays pure.
    pub fn on_fault(&mut self, fault: Retryable, budget: &mut RetryBudget, unit: f64) -> Next {
        let Retryable {
            throttled,
            retry_after,
            paced,
        } = fault;
        let long_wait = retry_after.filter(|w| *w >= LONG_RETRY_AFTER);
        if let Some(wait) = long_wait {
            self.waited = self.waited.saturating_add(wait);
            if self.waited > MAX_RETRY_AFTER_WAIT {
                return Next::GiveUp;
            }
            if !budget.withdraw() {
                return Next::BudgetSpent;
            }
        }
        if throttled {
            self.throttled += 1;
        } else if long_wait.is_none() {
            self.transient += 1;
            if !budget.withdraw() {
                return Next::BudgetSpent;
            }
        }
        if self.transient >= MAX_ATTEMPTS || self.throttled >= MAX_THROTTLED_ATTEMPTS {
            return Next::GiveUp;
        }
        Next::Retry(match (throttled, paced) {
            (true, true) => retry_after.unwrap_or(Duration::ZERO),
            (true, false) => backoff(self.throttled, retry_after, unit),
            (false, _) => backoff(self.transient, retry_after, unit),
        })
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
    fn attempts_give_up_or_spend_the_budget() {
        let fault = |throttled, retry_after, paced| Retryable {
            throttled,
            retry_after,
            paced,
        };
        let mut budget = RetryBudget::default();
        let mut a = Attempts::default();
        for n in 1..MAX_ATTEMPTS {
            assert_eq!(
                a.on_fault(fault(false, None, true), &mut budget, 0.5),
                Next::Retry(backoff(n, None, 0.5))
            );
        }
        assert_eq!(
            a.on_fault(fault(false, None, true), &mut budget, 0.5),
            Next::GiveUp
        );
        // Paced 429s wait only for Retry-After: the pacer is what slows down.
        let mut t = Attempts::default();
        assert_eq!(
            t.on_fault(fault(true, None, true), &mut budget, 0.5),
            Next::Retry(Duration::ZERO)
        );
        assert_eq!(
            t.on_fault(
                fault(true, Some(Duration::from_secs(2)), true),
                &mut budget,
                0.5
            ),
            Next::Retry(Duration::from_secs(2))
        );
        for _ in 2..MAX_THROTTLED_ATTEMPTS - 1 {
            assert!(matches!(
                t.on_fault(fault(true, None, true), &mut budget, 0.5),
                Next::Retry(_)
            ));
        }
        assert_eq!(
            t.on_fault(fault(true, None, true), &mut budget, 0.5),
            Next::GiveUp
        );
        // Unpaced 429s (`--rate 0`) back off.
        assert_eq!(
            Attempts::default().on_fault(fault(true, None, false), &mut budget, 0.5),
            Next::Retry(BASE_DELAY / 2)
        );
        // A spent budget stops transient retries but not throttled ones.
        let mut empty = RetryBudget { tokens: 0 };
        assert_eq!(
            Attempts::default().on_fault(fault(false, None, true), &mut empty, 0.5),
            Next::BudgetSpent
        );
        assert!(matches!(
            Attempts::default().on_fault(fault(true, None, true), &mut empty, 0.5),
            Next::Retry(_)
        ));
    }

    #[test]
    fn long_retry_afters_draw_on_the_budget_and_end() {
        let minute = Retryable {
            throttled: true,
            retry_after: Some(Duration::from_secs(60)),
            paced: true,
        };
        // One request: two one-minute waits, then it gives up (not 30 of them).
        let mut budget = RetryBudget::default();
        let mut a = Attempts::default();
        assert_eq!(
            a.on_fault(minute, &mut budget, 0.5),
            Next::Retry(Duration::from_secs(60))
        );
        assert_eq!(
            a.on_fault(minute, &mut budget, 0.5),
            Next::Retry(Duration::from_secs(60))
        );
        assert_eq!(a.on_fault(minute, &mut budget, 0.5), Next::GiveUp);
        // Many requests: each long wait is paid for, so the run stops.
        let mut budget = RetryBudget::default();
        let paid = (0..1000)
            .take_while(|_| {
                Attempts::default().on_fault(minute, &mut budget, 0.5) != Next::BudgetSpent
            })
            .count();
        assert_eq!(paid as u32, BUDGET_CAPACITY / RETRY_COST);
        // A short Retry-After stays free, as before.
        let mut empty = RetryBudget { tokens: 0 };
        let short = Retryable {
            retry_after: Some(Duration::from_secs(1)),
            ..minute
        };
        assert_eq!(
            Attempts::default().on_fault(short, &mut empty, 0.5),
            Next::Retry(Duration::from_secs(1))
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
