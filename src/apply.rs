//! The executor: sends the sealed plan's deletions and journals every step.
//!
//! It owns the dispatch loop (its in-flight window, with slow start, is [`crate::window`];
//! each item's send, retries and journal outcome are `apply/settle.rs`'s, whose retries follow
//! [`crate::retry::Attempts`]) and the stop decisions; it does not
//! verify the seal (the command layer does, before calling [`execute`]) and does not format
//! output (it reports [`Progress`] through a callback).
//!
//! Journal discipline: a batch of items is committed `in_flight` before any of their requests
//! leaves; each outcome is committed right after its response, in group commits (every outcome
//! that arrived while the previous commit ran goes into the next one). A crash at any point
//! therefore leaves every item either settled or `in_flight`, and a resumed run re-sends the
//! `in_flight` ones: at worst a request is repeated (a `404 eid_not_found` then counts as done),
//! never lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::pace::Pacer;
use crate::segment::{Fault, ProfileApi};
use crate::state::{ItemState, Outcome, State, Work};
use crate::window::Window;

mod settle;

pub use settle::send_one;
use settle::{Sent, Shared, send, unsent};

/// Items committed `in_flight` per batch: bounds how many may be re-sent after a crash,
/// together with the concurrency.
pub const DISPATCH_BATCH: usize = 256;
/// Segment's limit of deletions per second on one profile.
pub const PROFILE_RATE: u32 = 100;

/// How to run.
#[derive(Clone, Debug)]
pub struct ExecuteOptions {
    /// Requests in flight at most (`--concurrency`).
    pub concurrency: usize,
    /// Also retry permanently failed items.
    pub retry_failed: bool,
    /// Per-profile deletions per second (0: unlimited).
    pub profile_rate: u32,
}

/// Why a run stopped before its work was done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A fault of the whole space (bad token, feature not activated, no source).
    Space(Fault),
    /// Transient faults were sustained across items: the retry budget is spent.
    BudgetSpent(String),
    /// Ctrl-C (or another cancellation).
    Interrupted,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// Requests sent in this run.
    pub requests: u64,
    /// Requests the server answered 429.
    pub throttled: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Why it stopped early, if it did.
    pub stop: Option<Stop>,
    /// Items settled in this run, by final state.
    pub settled: Settled,
    /// Median request latency.
    pub latency_p50: Option<Duration>,
    /// 99th-percentile request latency.
    pub latency_p99: Option<Duration>,
}

impl ApplyReport {
    /// Requests per second achieved.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The figures the `runs` table records for this run.
    pub fn figures(&self) -> crate::state::RunFigures {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        crate::state::RunFigures {
            requests: self.requests,
            throttled: self.throttled,
            rate: self.rate(),
            latency_p50_ms: ms(self.latency_p50),
            latency_p99_ms: ms(self.latency_p99),
        }
    }
}

/// Items settled in this run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settled {
    /// Deleted.
    pub done: u64,
    /// Not there.
    pub already_absent: u64,
    /// Gave up.
    pub failed: u64,
}

/// A progress snapshot for the command layer.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Items settled so far in this run.
    pub settled: Settled,
    /// Items this run set out to send.
    pub total: u64,
    /// Requests sent.
    pub requests: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// A run's request latencies as counts in logarithmic buckets, each 1 % wider than the last
/// from 10 µs (the last one, past an hour, takes everything longer): the same 16 KB however
/// long the run, where a list of every latency grew by 16 bytes a request. A percentile is the
/// upper edge of its bucket, within 1 % above the sample a sorted list would give.
#[derive(Clone, Debug)]
struct Latencies {
    counts: Vec<u64>,
    total: u64,
}

impl Latencies {
    const FIRST_US: f64 = 10.0;
    const GROWTH: f64 = 1.01;
    const BUCKETS: usize = 2_000;

    fn new() -> Latencies {
        Latencies {
            counts: vec![0; Self::BUCKETS],
            total: 0,
        }
    }

    fn add(&mut self, latency: Duration) {
        let ratio = latency.as_secs_f64() * 1e6 / Self::FIRST_US;
        let bucket = if ratio <= 1.0 {
            0
        } else {
            (ratio.ln() / Self::GROWTH.ln()).ceil() as usize
        };
        self.counts[bucket.min(Self::BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// The `q` quantile (the sample of rank `round((n − 1) × q)`), or None without samples.
    fn quantile(&self, q: f64) -> Option<Duration> {
        let rank = (self.total.checked_sub(1)? as f64 * q).round() as u64;
        let mut seen = 0;
        let bucket = self.counts.iter().position(|&n| {
            seen += n;
            seen > rank
        })?;
        let upper_us = Self::FIRST_US * Self::GROWTH.powi(bucket as i32);
        Some(Duration::from_secs_f64(upper_us / 1e6))
    }
}

/// Stops a run: no task starts another request, whether it is queued, waiting for the pacer
/// (halted: it hands out no more slots) or waiting out a retry delay. Requests on the wire get
/// the pacer's grace ([`crate::pace::HALT_GRACE`]).
fn halt(shared: &Shared, pacer: Option<&Arc<Pacer>>) {
    shared.stop();
    if let Some(pacer) = pacer {
        pacer.halt();
    }
}

/// Runs the plan's pending deletions to completion or to a stop. `cancel` flips to true on
/// Ctrl-C: dispatch stops, requests already sent finish, everything is committed.
pub async fn execute<A: ProfileApi>(
    api: A,
    state: &mut State,
    options: &ExecuteOptions,
    mut cancel: watch::Receiver<bool>,
    mut on_progress: impl FnMut(&Progress),
) -> anyhow::Result<ApplyReport> {
    let started = Instant::now();
    let total = state.count_work(options.retry_failed)?;
    let api = Arc::new(api);
    // The API's pacer sizes the in-flight window to its current rate (none: `concurrency` as
    // it is) and is halted on a stop.
    let pacer = api.pacer().cloned();
    let shared = Arc::new(Shared::new(
        options.profile_rate,
        pacer.as_ref().is_some_and(|p| p.ceiling() > 0),
    ));
    let (tx, mut rx) = mpsc::unbounded_channel::<Sent>();
    let mut queue = Queue::default();
    let mut tally = Tally::new(options.concurrency);
    let mut buffer: Vec<Outcome> = Vec::new();
    let mut last_progress = Instant::now();

    loop {
        let halted = tally.stop.is_some();
        if !halted {
            queue.refill(state, options.retry_failed, &shared)?;
        }
        if (queue.items.is_empty() || halted) && tally.outstanding == 0 {
            break;
        }
        let rate = pacer.as_ref().and_then(|p| p.current_rate());
        // Dispatch without waiting: the task itself waits for the pacer.
        if let Some(work) = (!halted && tally.outstanding < tally.window.allowed(rate))
            .then(|| queue.items.pop_front())
            .flatten()
        {
            tally.outstanding += 1;
            dispatch(&api, &shared, &tx, work);
            continue;
        }
        tokio::select! {
            biased;
            changed = cancel.changed(), if tally.stop.is_none() => {
                if changed.is_err() || *cancel.borrow() {
                    tally.stop = Some(Stop::Interrupted);
                    halt(&shared, pacer.as_ref());
                }
            }
            Some(report) = rx.recv() => {
                // A group commit: every report that arrived meanwhile goes into this one.
                let mut next = Some(report);
                while let Some(report) = next {
                    buffer.push(tally.count(report, &shared, pacer.as_ref()));
                    next = rx.try_recv().ok();
                }
                state.record(&buffer)?;
                buffer.clear();
                if last_progress.elapsed() >= Duration::from_millis(200) {
                    last_progress = Instant::now();
                    on_progress(&tally.progress(&shared, total, started));
                }
            }
        }
    }
    // Items fetched but never dispatched go back to their earlier state for an honest status
    // (leaving them `in_flight` would be safe too: they would be re-sent on resume).
    let untouched: Vec<Outcome> = queue.items.drain(..).map(|w| unsent(&w)).collect();
    state.record(&untouched)?;
    let report = tally.report(&shared, started);
    on_progress(&Progress {
        settled: report.settled,
        total,
        requests: report.requests,
        elapsed: report.elapsed,
    });
    Ok(report)
}

/// Sends `work` on a task of its own; its report comes back on `tx`.
fn dispatch<A: ProfileApi>(
    api: &Arc<A>,
    shared: &Arc<Shared>,
    tx: &mpsc::UnboundedSender<Sent>,
    work: Work,
) {
    let (api, shared) = (api.clone(), shared.clone());
    let tx = tx.clone();
    tokio::spawn(async move {
        let report = send(&*api, &shared, work).await;
        // The receiver lives until every outstanding report arrived.
        let _ = tx.send(report);
    });
}

/// The work taken from the journal and not yet dispatched.
#[derive(Default)]
struct Queue {
    /// Committed `in_flight`, in seq order.
    items: VecDeque<Work>,
    /// The last seq taken.
    after: u64,
    /// True once the journal has no more work.
    exhausted: bool,
}

impl Queue {
    /// When the queue is empty, takes the next batch from the journal and commits it
    /// `in_flight` before any of its requests leaves.
    fn refill(
        &mut self,
        state: &mut State,
        retry_failed: bool,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        if !self.items.is_empty() || self.exhausted {
            return Ok(());
        }
        let batch = state.work_batch(self.after, DISPATCH_BATCH, retry_failed)?;
        match batch.last() {
            None => self.exhausted = true,
            Some(last) => {
                shared.forget_idle_profiles();
                self.after = last.seq;
                let seqs: Vec<u64> = batch.iter().map(|w| w.seq).collect();
                state.mark_in_flight(&seqs)?;
                self.items.extend(batch);
            }
        }
        Ok(())
    }
}

/// What the answers of a run add up to so far, and what they decide: the window's size and
/// whether the run stops.
struct Tally {
    /// Items dispatched whose report has not arrived.
    outstanding: usize,
    /// Why the run stops, once it does (the first reason wins).
    stop: Option<Stop>,
    /// Items settled, by final state.
    settled: Settled,
    /// Requests answered 429.
    throttled: u64,
    /// Every request's latency.
    latencies: Latencies,
    /// Slow start, then sized to rate × latency.
    window: Window,
}

impl Tally {
    fn new(concurrency: usize) -> Self {
        Self {
            outstanding: 0,
            stop: None,
            settled: Settled::default(),
            throttled: 0,
            latencies: Latencies::new(),
            window: Window::new(concurrency),
        }
    }

    /// Counts one item's report in (its requests, the window's evidence, a stop, its final
    /// state) and returns its outcome, to be committed.
    fn count(&mut self, report: Sent, shared: &Shared, pacer: Option<&Arc<Pacer>>) -> Outcome {
        self.outstanding -= 1;
        self.throttled += u64::from(report.throttled);
        for &l in &report.latencies {
            self.window.observe(l);
            self.latencies.add(l);
        }
        if report.said_yes {
            self.window.said_yes();
        }
        if let Some(s) = report.stop {
            halt(shared, pacer);
            // The first reason wins: later tasks only echo it.
            self.stop.get_or_insert(s);
        }
        match report.outcome.journal.state {
            ItemState::Done => self.settled.done += 1,
            ItemState::AlreadyAbsent => self.settled.already_absent += 1,
            ItemState::Failed => self.settled.failed += 1,
            _ => {}
        }
        report.outcome
    }

    /// The progress snapshot at this moment.
    fn progress(&self, shared: &Shared, total: u64, started: Instant) -> Progress {
        Progress {
            settled: self.settled,
            total,
            requests: shared.requests.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }

    /// The run's report, once it ended.
    fn report(self, shared: &Shared, started: Instant) -> ApplyReport {
        ApplyReport {
            requests: shared.requests.load(Ordering::Relaxed),
            throttled: self.throttled,
            elapsed: started.elapsed(),
            latency_p50: self.latencies.quantile(0.5),
            latency_p99: self.latencies.quantile(0.99),
            stop: self.stop,
            settled: self.settled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::model::{Identifier, Lookup};
    use crate::segment::DeleteOutcome;
    use crate::segment::{ReadPage, Reply};
    use crate::state::Journal;
    use crate::state::testing::{delete_item, sealed};
    use crate::sync::lock;

    /// A server that applies every delete but loses the first `lost` acknowledgements (500).
    struct LostAcks {
        lost: u32,
        calls: AtomicU32,
        present: Mutex<bool>,
    }

    impl ProfileApi for LostAcks {
        async fn external_ids_page(&self, _: &Lookup, _: Option<&str>) -> Reply<ReadPage> {
            unreachable!("apply never reads")
        }

        async fn delete(&self, _: &str, _: &Identifier) -> Reply<DeleteOutcome> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let was_there = std::mem::replace(&mut *lock(&self.present), false);
            let result = if call < self.lost {
                Err(Fault::Retryable {
                    reason: "500".into(),
                    retry_after: None,
                    throttled: false,
                })
            } else if was_there {
                Ok(DeleteOutcome::Deleted)
            } else {
                Ok(DeleteOutcome::IdentifierNotFound)
            };
            Reply {
                result,
                status: None,
                request_id: None,
                elapsed: Duration::ZERO,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_acknowledgement_ends_done_even_across_a_failed_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")]);
        let options = ExecuteOptions {
            concurrency: 1,
            retry_failed: false,
            profile_rate: 0,
        };
        let (_tx, rx) = watch::channel(false);
        let api = Arc::new(LostAcks {
            lost: crate::retry::MAX_ATTEMPTS,
            calls: AtomicU32::new(0),
            present: Mutex::new(true),
        });
        // Run 1: every acknowledgement is lost; the item fails as transient.
        execute(
            ArcApi(api.clone()),
            &mut state,
            &options,
            rx.clone(),
            |_| {},
        )
        .await
        .expect("run 1");
        assert_eq!(state.counts().expect("counts").state(ItemState::Failed), 1);
        // Run 2: the server now says the identifier is gone, because run 1 removed it.
        execute(ArcApi(api), &mut state, &options, rx, |_| {})
            .await
            .expect("run 2");
        let counts = state.counts().expect("counts");
        assert_eq!(counts.state(ItemState::Done), 1, "{counts:?}");
        assert_eq!(counts.state(ItemState::AlreadyAbsent), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn send_one_retries_a_lost_acknowledgement_and_counts_its_requests() {
        let work = Work {
            seq: 7,
            user_id: "u1".into(),
            identifier: Identifier::new("email", "a@x.com"),
            profile: String::new(),
            may_have_landed: false,
        };
        let api = LostAcks {
            lost: 2,
            calls: AtomicU32::new(0),
            present: Mutex::new(true),
        };
        let (outcome, stop) = send_one(&api, &work).await;
        assert_eq!(stop, None);
        assert_eq!(outcome.seq, 7);
        assert_eq!(
            outcome.attempts, 3,
            "two lost acknowledgements, then an answer"
        );
        // The first request removed it; the `404 eid_not_found` after a lost ack means done.
        assert_eq!(outcome.journal, Journal::new(ItemState::Done));
    }

    /// Shares one fake between runs.
    struct ArcApi(Arc<LostAcks>);

    impl ProfileApi for ArcApi {
        async fn external_ids_page(&self, l: &Lookup, c: Option<&str>) -> Reply<ReadPage> {
            self.0.external_ids_page(l, c).await
        }

        async fn delete(&self, u: &str, i: &Identifier) -> Reply<DeleteOutcome> {
            self.0.delete(u, i).await
        }
    }

    /// The per-profile limiter keeps only the profiles still inside their limit: a run over a
    /// million profiles does not hold a million entries.
    #[test]
    fn profiles_whose_limit_recovered_are_forgotten() {
        // 10/s rather than the real 100/s, so the checks below have 200 ms of room on a loaded
        // machine.
        let shared = Shared::new(10, false);
        let limiter = shared.profiles.as_ref().expect("a per-profile limit");
        for i in 0..1_000 {
            assert!(limiter.check_key(&format!("p{i}")).is_ok());
        }
        assert_eq!(limiter.len(), 1_000);
        // One request each with no burst: governor forgets a key two intervals (200 ms) after
        // its last request. The wait is the subject (a limit recovering with time), not
        // synchronisation.
        std::thread::sleep(Duration::from_millis(300));
        assert!(limiter.check_key(&"p7".to_owned()).is_ok());
        shared.forget_idle_profiles();
        assert_eq!(limiter.len(), 1, "only the profile used just now is kept");
        assert!(
            limiter.check_key(&"p7".to_owned()).is_err(),
            "and its limit still holds"
        );
    }

    /// The histogram's percentiles sit within 1 % above the exact ones of a sorted list, for
    /// latencies from microseconds to seconds, and past its last bucket it still answers.
    #[test]
    fn latency_percentiles_are_within_one_percent() {
        let mut exact: Vec<Duration> = (0..10_000u64)
            .map(|i| Duration::from_micros(5 + (i * i * 7919) % 3_000_000))
            .collect();
        let mut histogram = Latencies::new();
        for &l in &exact {
            histogram.add(l);
        }
        exact.sort_unstable();
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let want = exact[((exact.len() - 1) as f64 * q).round() as usize].as_secs_f64();
            let got = histogram.quantile(q).expect("samples").as_secs_f64();
            let floor = want.max(10e-6);
            assert!(
                got >= want - 1e-9 && got <= floor * 1.0101,
                "q {q}: {got} for {want}"
            );
        }
        assert_eq!(Latencies::new().quantile(0.5), None);
        let mut long = Latencies::new();
        long.add(Duration::from_secs(10_000));
        assert!(long.quantile(0.99).expect("one") >= Duration::from_secs(3_600));
    }
}
