//! One item's delete, from its first request to its journal outcome: the retry loop every
//! send goes through (the executor's tasks and `apply --canary` alike) and the table that turns
//! an answer or a fault into a journal state (docs/ARCHITECTURE.md, *The journal*). The
//! dispatch around it, and the commits, are the executor's ([`super::execute`]).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Stop;
use crate::retry::{Attempts, Next, RetryBudget, Retryable};
use crate::segment::{DeleteOutcome, Fault, ProfileApi};
use crate::state::{Failure, ItemState, Journal, Outcome, Work};
use crate::sync::lock;

/// What a sending task sends back about the item it sent.
pub(super) struct Sent {
    /// The item's outcome, to be journaled.
    pub(super) outcome: Outcome,
    /// A reason to stop the whole run, if its answers gave one.
    pub(super) stop: Option<Stop>,
    /// The duration of each request it sent.
    pub(super) latencies: Vec<Duration>,
    /// How many of its requests were answered 429.
    pub(super) throttled: u32,
    /// The last answer showed the service accepts us (a 200 or a 404 about the item).
    pub(super) said_yes: bool,
}

/// Shared between the dispatcher and the sending tasks (the API aside).
pub(super) struct Shared {
    /// Set once the run stops: tasks that have not sent yet give their item back.
    stopping: AtomicBool,
    /// Wakes tasks waiting out a retry delay when the run stops.
    stop_signal: tokio::sync::watch::Sender<bool>,
    /// Requests sent in the run.
    pub(super) requests: AtomicU64,
    /// The run's retry budget.
    pub(super) budget: Mutex<RetryBudget>,
    /// The per-profile limit (None: unlimited).
    pub(super) profiles: Option<DefaultKeyedRateLimiter<String>>,
    /// Requests go through an adaptive pacer (a rate is set).
    pub(super) paced: bool,
}

impl Shared {
    /// A fresh run's: not stopping, no request sent, a full retry budget.
    pub(super) fn new(profile_rate: u32, paced: bool) -> Self {
        Self {
            stopping: AtomicBool::new(false),
            stop_signal: tokio::sync::watch::Sender::new(false),
            requests: AtomicU64::new(0),
            budget: Mutex::new(RetryBudget::default()),
            // Evenly spaced, no burst: a fresh profile must not take a second's quota at once.
            profiles: NonZeroU32::new(profile_rate)
                .map(|r| RateLimiter::keyed(Quota::per_second(r).allow_burst(NonZeroU32::MIN))),
            paced,
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Stops the run: no task sends again, and those waiting out a retry delay wake.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_signal.send_replace(true);
    }

    /// Sleeps `delay`, or less when the run stops meanwhile.
    async fn sleep_unless_stopped(&self, delay: Duration) {
        let mut stopped = self.stop_signal.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
    }

    /// Forgets the profiles whose per-profile limit has recovered: their state is the same as a
    /// profile never seen. Without it the limiter keeps one entry per profile the run touched,
    /// about 80 bytes each (a 1,000,000-item apply peaked at 149 MB with them, 66 MB without).
    pub(super) fn forget_idle_profiles(&self) {
        if let Some(limiter) = &self.profiles {
            limiter.retain_recent();
        }
    }
}

/// Sends one item's delete on its own, outside a run (`apply --canary`): the executor's retry
/// loop and outcome table, with a retry budget of its own, no per-profile limit, and retries
/// backed off rather than handed to a pacer. The caller journals around it as the executor
/// does (`in_flight` before, the outcome after). The outcome's `attempts` are the requests it
/// sent. A stop is only ever [`Stop::Space`]: nothing interrupts it, and one item's attempts
/// run out long before a fresh budget does.
pub async fn send_one<A: ProfileApi>(api: &A, work: &Work) -> (Outcome, Option<Stop>) {
    let shared = Shared::new(0, false);
    settle(api, &shared, work, &mut Vec::new(), &mut 0).await
}

/// The outcome of an item whose request was not sent in this run: it stays where it was
/// (`in_flight` when an earlier request may have landed, else `pending`).
pub(super) fn unsent(work: &Work) -> Outcome {
    Outcome {
        seq: work.seq,
        journal: Journal::new(if work.may_have_landed {
            ItemState::InFlight
        } else {
            ItemState::Pending
        }),
        attempts: 0,
    }
}

/// Sends one item's delete, retrying transient faults, and decides its journal outcome.
pub(super) async fn send<A: ProfileApi>(api: &A, shared: &Shared, work: Work) -> Sent {
    let mut latencies = Vec::new();
    let mut throttled = 0;
    let (outcome, stop) = settle(api, shared, &work, &mut latencies, &mut throttled).await;
    let said_yes = matches!(outcome.journal.last_status, Some(200 | 404));
    Sent {
        outcome,
        stop,
        latencies,
        throttled,
        said_yes,
    }
}

/// The retry loop of one item: its journal outcome, and a reason to stop the run if any.
async fn settle<A: ProfileApi>(
    api: &A,
    shared: &Shared,
    work: &Work,
    latencies: &mut Vec<Duration>,
    throttled: &mut u32,
) -> (Outcome, Option<Stop>) {
    let mut outcome = unsent(work);
    // True once a request may have reached the server and been applied without us knowing.
    let mut ambiguous = work.may_have_landed;
    let mut attempts = Attempts::default();
    loop {
        if shared.stopping() {
            if ambiguous {
                outcome.journal.state = ItemState::InFlight;
            }
            return (outcome, None);
        }
        if let Some(limiter) = &shared.profiles {
            // An item planned without a read (`--refresh=false`) has no profile key; its
            // user_id names the profile as well.
            let key = if work.profile.is_empty() {
                &work.user_id
            } else {
                &work.profile
            };
            limiter.until_key_ready(key).await;
        }
        let reply = api.delete(&work.user_id, &work.identifier).await;
        if let Err(Fault::Stopped { sent }) = reply.result {
            // A signal halted the pacer: this request never started, or was given up on the
            // wire after the grace (it may have landed: re-sent on resume).
            let state = if ambiguous || sent {
                ItemState::InFlight
            } else {
                unsent(work).journal.state
            };
            if sent {
                shared.requests.fetch_add(1, Ordering::Relaxed);
                outcome.attempts += 1;
            }
            outcome.journal.state = state;
            return (outcome, None);
        }
        shared.requests.fetch_add(1, Ordering::Relaxed);
        latencies.push(reply.elapsed);
        outcome.attempts += 1;
        outcome.journal.last_status = reply.status;
        if reply.request_id.is_some() {
            outcome.journal.request_id = reply.request_id;
        }
        let fault = match reply.result {
            Ok(result) => {
                lock(&shared.budget).refund();
                journal_answer(&mut outcome, result, ambiguous);
                return (outcome, None);
            }
            Err(fault) => fault,
        };
        outcome.journal.last_error = Some(fault.to_string());
        let mut item = Item {
            outcome: &mut outcome,
            work,
            ambiguous: &mut ambiguous,
            attempts: &mut attempts,
            throttled,
        };
        match item.after_fault(fault, shared) {
            AfterFault::Settled(stop) => return (outcome, stop),
            AfterFault::Retry(delay) => {
                crate::ui::say_waiting(delay);
                shared.sleep_unless_stopped(delay).await
            }
        }
    }
}

/// What a fault leaves of an item's attempts.
enum AfterFault {
    /// Its outcome is decided; the run stops too when a reason is given.
    Settled(Option<Stop>),
    /// Another attempt after this delay.
    Retry(Duration),
}

/// One item in its retry loop: what a fault changes.
struct Item<'a> {
    /// Its outcome so far.
    outcome: &'a mut Outcome,
    /// The item.
    work: &'a Work,
    /// True once a request may have landed unacknowledged.
    ambiguous: &'a mut bool,
    /// Its attempts, for the retry machine.
    attempts: &'a mut Attempts,
    /// Its requests answered 429.
    throttled: &'a mut u32,
}

impl Item<'_> {
    /// Journals a fault (not a stop, handled before): failed for good, back where it was with
    /// the run stopped (a space-level fault, a spent budget), or retried after a delay.
    fn after_fault(&mut self, fault: Fault, shared: &Shared) -> AfterFault {
        let outcome = &mut *self.outcome;
        match fault {
            Fault::Stopped { .. } => unreachable!("handled before the answer is journaled"),
            Fault::Permanent { .. } => {
                outcome.journal.state = ItemState::Failed;
                outcome.journal.failure = Some(Failure::Permanent);
                AfterFault::Settled(None)
            }
            Fault::Space { .. } => {
                // Refused before any change: the item goes back to where it was.
                outcome.journal.state = if *self.ambiguous {
                    ItemState::InFlight
                } else {
                    unsent(self.work).journal.state
                };
                AfterFault::Settled(Some(Stop::Space(fault)))
            }
            Fault::Retryable {
                throttled: was_throttled,
                retry_after,
                ref reason,
            } => {
                if was_throttled {
                    *self.throttled += 1;
                } else {
                    // A timeout or a 5xx may hide a delete the server applied.
                    *self.ambiguous = true;
                }
                let fault = Retryable {
                    throttled: was_throttled,
                    retry_after,
                    paced: shared.paced,
                };
                let next = self
                    .attempts
                    .on_fault(fault, &mut lock(&shared.budget), rand::random());
                match next {
                    Next::Retry(delay) => AfterFault::Retry(delay),
                    Next::GiveUp => {
                        outcome.journal.state = ItemState::Failed;
                        outcome.journal.failure = Some(Failure::Transient);
                        AfterFault::Settled(None)
                    }
                    Next::BudgetSpent => {
                        outcome.journal.state = ItemState::InFlight;
                        let why = format!("transient faults are sustained (last: {reason})");
                        AfterFault::Settled(Some(Stop::BudgetSpent(why)))
                    }
                }
            }
        }
    }
}

/// Journals an answered delete (docs/ARCHITECTURE.md, *The journal*): `ambiguous` is true when
/// an earlier request for the item may have landed unacknowledged, so `404 eid_not_found`
/// then means the deletion happened (`done`), not that it was never there.
fn journal_answer(outcome: &mut Outcome, result: DeleteOutcome, ambiguous: bool) {
    outcome.journal.last_error = None;
    (outcome.journal.state, outcome.journal.failure) = match result {
        DeleteOutcome::Deleted => (ItemState::Done, None),
        DeleteOutcome::IdentifierNotFound if ambiguous => (ItemState::Done, None),
        DeleteOutcome::IdentifierNotFound => (ItemState::AlreadyAbsent, None),
        DeleteOutcome::ProfileNotFound => {
            outcome.journal.last_error =
                Some("404 not_found: no profile has this user_id any more (drift: merged or deleted since the data the plan came from); re-plan".into());
            (ItemState::Failed, Some(Failure::Permanent))
        }
    };
}
