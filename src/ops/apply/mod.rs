//! `apply` as a library call: [`apply`] takes a state file (or a manifest, planned afresh by
//! [`manifest`]) and an [`Approval`], runs every refusal before a single request
//! (`preflight`), takes the lock, closes the records of dead runs, runs the canary
//! ([`super::canary`]) and the executor ([`crate::apply::execute`]) under Ctrl-C, records the
//! run and returns what happened as an [`Applied`] outcome, which `render/` draws.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use super::canary::CanaryReport;
use super::stored::{Held, StoreAt};
use super::{Api, Refused, Signal, checks, sniff, state_dir};
use crate::apply::{ApplyReport, ExecuteOptions, PROFILE_RATE, Progress, Stop, execute};
use crate::outcome::{Applied, RunOutcome, RunRecord};
use crate::receipt::Receipt;
use crate::render::{self, thousands};
use crate::segment::ProfileApi as _;
use crate::state::lock::Acquired;
use crate::state::{RunFigures, State};
use crate::text::{per_second_text, plural, rate_limit_text};
use crate::ui::Ui;
use crate::ui::progress::ProgressOut;

pub mod manifest;
mod policy;
mod preflight;
mod stored;

/// How a plan is approved, decided once from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    /// `--approve DIGEST`: the digest (or a unique prefix of it) a reviewer approved.
    Digest(String),
    /// `--receipt FILE`: the committed receipt whose digest was approved.
    Receipt(PathBuf),
    /// `--yes`: apply without asking.
    Yes,
    /// Nothing given: ask at a terminal, refuse without one.
    Prompt,
}

impl Approval {
    /// The approval the flags name: `--approve`, else `--receipt`, else `--yes`, else a prompt.
    pub fn from_flags(approve: Option<String>, receipt: Option<PathBuf>, yes: bool) -> Self {
        match (approve, receipt) {
            (Some(digest), _) => Self::Digest(digest),
            (None, Some(path)) => Self::Receipt(path),
            (None, None) if yes => Self::Yes,
            (None, None) => Self::Prompt,
        }
    }
}

/// What `apply` needs besides the [`Api`].
#[derive(Clone)]
pub struct ApplyOptions {
    /// The state file, or a manifest to plan afresh. With a store, the state file is the
    /// working copy (empty: a private one).
    pub state: PathBuf,
    /// The store the state lives in, if any: the truth, of which `state` is the working copy.
    pub store: Option<Arc<StoreAt>>,
    /// How often the journal is pushed to the store during the run.
    pub checkpoint_every: Duration,
    /// How the plan is approved.
    pub approval: Approval,
    /// Also retry items that failed permanently.
    pub retry_failed: bool,
    /// Re-run a finished journal's deletions as a new run.
    pub reapply: bool,
    /// Deletions the canary sends one at a time before the fan-out (0: none).
    pub canary: u64,
    /// How long the canary re-reads a profile.
    pub canary_wait: Duration,
    /// `--policy FILE`: the policy the plan was judged by, when not the one found walking up
    /// from the manifest (`apply MANIFEST` plans with it; `apply STATE` checks it is the
    /// sealed one).
    pub policy: Option<PathBuf>,
    /// `--override RULE`: soft policy rules to go past.
    pub overrides: Vec<String>,
    /// `--why TEXT`: the reason recorded with each override.
    pub why: Option<String>,
    /// The store's lease and working copy once taken (by [`apply`], never by a caller).
    held: Option<Arc<Held>>,
}

impl ApplyOptions {
    /// Options for `state` (a state file, a manifest, or a working copy of `store`).
    pub fn new(state: PathBuf, approval: Approval, store: Option<StoreAt>) -> Self {
        Self {
            state,
            store: store.map(Arc::new),
            checkpoint_every: super::stored::DEFAULT_CHECKPOINT_EVERY,
            approval,
            retry_failed: false,
            reapply: false,
            canary: 0,
            canary_wait: Duration::from_secs(360),
            policy: None,
            overrides: Vec::new(),
            why: None,
            held: None,
        }
    }
}

/// `apply STATE` or `apply MANIFEST`: the file is sniffed, not named by its extension. With a
/// store, the run holds the store's lease throughout and works on a fresh copy of the store's
/// state (`stored`).
pub async fn apply(opts: &ApplyOptions, api: &Api, ui: &Ui) -> anyhow::Result<Applied> {
    if let (Some(store), None) = (&opts.store, &opts.held) {
        return stored::apply(opts, store, api, ui).await;
    }
    if !sniff::is_sqlite(&opts.state)? {
        return manifest::apply_manifest(opts, api, ui).await;
    }
    let digest = match &opts.approval {
        Approval::Receipt(path) => {
            checks::refuse_tracked(&opts.state)?;
            let receipt = Receipt::read(path)?;
            {
                let state = State::open(&opts.state)?;
                let manifest = state_dir(&opts.state).join(state.meta()?.manifest_path);
                checks::check_receipt(&receipt, path, &state, &manifest)?;
            }
            Approval::Digest(receipt.digest)
        }
        other => other.clone(),
    };
    apply_state(opts, &digest, api, ui).await
}

/// `apply STATE` approved by `approval` (a receipt already read into its digest).
async fn apply_state(
    opts: &ApplyOptions,
    approval: &Approval,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<Applied> {
    sniff::expect_state(&opts.state, "apply")?;
    checks::refuse_tracked(&opts.state)?;
    let mut state = State::open(&opts.state)?;
    let meta = state.meta()?;
    let base = api.base_url(super::state_region(&meta)?)?;
    let origin = crate::segment::client::origin(&base);
    let digest = preflight::check_before_sending(&state, approval, opts.reapply, &origin, ui)?;
    let granted = policy::check(&state, opts, ui)?;
    let pace = api.pace;
    let client = api.client(&base, &meta.space)?;

    let mine = match state.acquire_lock()? {
        Acquired::Yes { mine, took_over } => {
            if let Some(stale) = took_over {
                ui.warn(format!(
                    "took over a stale lock left by {stale}, which no longer runs"
                ));
            }
            mine
        }
        Acquired::HeldBy(holder) => {
            return Err(Refused(format!(
                "{}; wait, or if that run is dead run `idprune unlock {} {}`",
                crate::state::lock::locked_by(&opts.state, &holder),
                crate::text::shell_path(&opts.state),
                holder.lock_id
            ))
            .into());
        }
    };
    let result = run_locked(
        &mut state,
        client,
        opts,
        pace,
        (&digest, &meta.reason, &granted),
        ui,
    )
    .await;
    let released = state.release_lock(&mine.lock_id).with_context(|| {
        format!(
            "releasing the lock on `{}`; the next apply takes it over as stale",
            opts.state.display()
        )
    });
    // The run's own error (a full disk, say) is the one to report: releasing the lock then
    // usually fails for the same reason, and the next apply takes a dead holder's lock over.
    let run = result?;
    released?;
    let completed = Some(RunOutcome::Completed.as_str());
    let runs = state.runs()?;
    let first_completion = run
        .as_ref()
        .is_some_and(|r| r.outcome == RunOutcome::Completed)
        && runs
            .iter()
            .filter(|r| r.outcome.as_deref() == completed)
            .count()
            == 1;
    Ok(Applied {
        state: opts.state.clone(),
        counts: state.counts()?,
        meta,
        run,
        first_completion,
    })
}

/// The run under the lock: dead runs closed, the run recorded, the canary, the fan-out under
/// Ctrl-C, the run's figures recorded. `None` when there was nothing to apply.
async fn run_locked(
    state: &mut State,
    api: crate::segment::Client,
    opts: &ApplyOptions,
    pace: super::Pace,
    (digest, reason, granted): (&str, &str, &[policy::Granted]),
    ui: &Ui,
) -> anyhow::Result<Option<RunRecord>> {
    let Some(run) = open_run(state, opts, pace, (digest, reason, granted), ui)? else {
        return Ok(None);
    };
    // With a store: the run's start goes there before any request, then a checkpoint every
    // interval while it runs. A failed checkpoint (a lost lease, an unreachable store) stops
    // the run like a signal: what it sent next would go unrecorded.
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let cancel_tx = Arc::new(cancel_tx);
    let checkpoint_failed = Arc::new(OnceLock::new());
    let checkpoints = match &opts.held {
        Some(held) => {
            Some(start_checkpoints(held, opts, pace, &api, &cancel_tx, &checkpoint_failed).await?)
        }
        None => None,
    };
    // From here on a signal stops the run: during the canary at once (its item stays
    // `in_flight`, re-sent on resume), during the fan-out after the requests on the wire.
    let mut signals = super::Signals::listen()?;
    let canary = match canary_phase(state, &api, opts, run, &mut signals, ui).await? {
        CanaryEnd::Passed(canary) => canary,
        CanaryEnd::Interrupted(record) => return Ok(Some(record)),
    };
    let work = state.count_work(opts.retry_failed)?;
    ui.note(format!(
        "Applying {} at {}, at most {} in flight (reason: {}).",
        plural(work, "deletion", "deletions"),
        rate_limit_text(pace.rate),
        pace.concurrency,
        render::clean(reason)
    ));
    let received = Arc::new(OnceLock::new());
    let signals = watch_signals(signals, &api, cancel_tx, Arc::clone(&received), *ui);
    let report = fan_out(state, api, opts, pace, cancel_rx, work, ui).await;
    signals.abort();
    drop(checkpoints);
    let signal = received.get().copied();
    close_run(
        state,
        run,
        report,
        &canary,
        checkpoint_failed.get(),
        signal,
        opts,
    )
}

/// Opens the run's record: dead runs closed, the run started with its rate and the policy
/// overrides it goes past, a finished journal reset for `--reapply`. `None` when there is
/// nothing to apply (no run is recorded then).
fn open_run(
    state: &mut State,
    opts: &ApplyOptions,
    pace: super::Pace,
    (digest, reason, granted): (&str, &str, &[policy::Granted]),
    ui: &Ui,
) -> anyhow::Result<Option<i64>> {
    let recording = || {
        format!(
            "recording the run in `{}` before sending anything; free space or fix the file, then run the same command to resume",
            opts.state.display()
        )
    };
    for dead in state.close_dead_runs().with_context(recording)? {
        ui.warn(format!(
            "run {} ended without closing its record (its process died); recorded it as `died` with the journal's counts: {} settled while it ran",
            dead.id,
            thousands(dead.settled)
        ));
    }
    if opts.reapply {
        let unfinished = state.unfinished()?;
        if unfinished > 0 {
            anyhow::bail!(
                "--reapply re-runs a finished journal, but {} of `{}` are still unsent or in flight; run `idprune apply {}` to finish it first",
                plural(unfinished, "deletion", "deletions"),
                opts.state.display(),
                crate::text::shell_path(&opts.state)
            );
        }
    }
    if !opts.reapply && state.count_work(opts.retry_failed)? == 0 {
        return Ok(None);
    }
    note_resuming(state, pace, ui)?;
    let run = state
        .start_run(
            &crate::state::lock::this_user(),
            &crate::state::lock::this_host(),
            digest,
            reason,
            crate::ci::RunContext::detect().as_ref(),
        )
        .with_context(recording)?;
    state
        .record_run_rate(run, pace.rate)
        .with_context(recording)?;
    for g in granted {
        state
            .record_override(
                run,
                &g.rule,
                &g.detail,
                opts.why.as_deref().unwrap_or_default(),
                &crate::state::lock::this_user(),
            )
            .with_context(recording)?;
    }
    if opts.reapply {
        let reset = state.reset_for_reapply(run)?;
        ui.note(format!(
            "Re-applying the finished journal as run #{run}: {} pending again (their earlier outcomes are kept in the item history); identifiers no longer there end `already_absent`.",
            plural(reset, "deletion is", "deletions are")
        ));
    }
    Ok(Some(run))
}

/// Says how the last run went and at what rate this one goes, when this one resumes it.
fn note_resuming(state: &State, pace: super::Pace, ui: &Ui) -> anyhow::Result<()> {
    let Some(last) = state.runs()?.pop() else {
        return Ok(());
    };
    let asked = match state.run_rate(last.id)? {
        Some(rate) => format!("was started at {}", rate_limit_text(rate)),
        None => "was started at a rate not recorded".to_owned(),
    };
    let went = if last.figures.requests > 0 {
        format!(" and went at {}", per_second_text(last.figures.rate))
    } else {
        String::new()
    };
    ui.note(format!(
        "Resuming: run {} ({}) {asked}{went}; this run goes at {}.",
        last.id,
        last.outcome.as_deref().unwrap_or("open"),
        rate_limit_text(pace.rate)
    ));
    Ok(())
}

/// Pushes the run's start to the store before any request, then keeps checkpointing beside
/// the run; a failed step records its error in `failed`, halts the pacer and cancels the run.
/// The task ends when the returned guard drops.
async fn start_checkpoints(
    held: &Arc<Held>,
    opts: &ApplyOptions,
    pace: super::Pace,
    api: &crate::segment::Client,
    cancel: &Arc<watch::Sender<bool>>,
    failed: &Arc<OnceLock<anyhow::Error>>,
) -> anyhow::Result<StopOnDrop> {
    let horizon =
        super::stored::checkpoint_horizon(pace.rate, pace.concurrency, opts.checkpoint_every);
    held.checkpoint(horizon).await.with_context(|| {
        format!(
            "pushing the run's start to `{}` before sending anything; run the same command to try again",
            held.url()
        )
    })?;
    let (held, every) = (Arc::clone(held), opts.checkpoint_every);
    let (pacer, cancel, failed) = (api.pacer().cloned(), Arc::clone(cancel), Arc::clone(failed));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        if let Some(error) = super::stored::keep_checkpointing(held, every, horizon, stopped).await
        {
            let _ = failed.set(error);
            if let Some(pacer) = pacer {
                pacer.halt();
            }
            let _ = cancel.send(true);
        }
    });
    Ok(StopOnDrop(stop))
}

/// How the canary phase ended.
enum CanaryEnd {
    /// It passed (or there was none): the fan-out goes on, the canary's figures added.
    Passed(CanaryReport),
    /// A signal stopped it; the run is recorded as interrupted.
    Interrupted(RunRecord),
}

/// `--canary N`: the first deletions sent one at a time, each profile re-read, before the
/// fan-out. A signal ends it at once; a problem it finds ends the run with an error.
async fn canary_phase(
    state: &mut State,
    api: &crate::segment::Client,
    opts: &ApplyOptions,
    run: i64,
    signals: &mut super::Signals,
    ui: &Ui,
) -> anyhow::Result<CanaryEnd> {
    if opts.canary == 0 || state.count_work(opts.retry_failed)? == 0 {
        return Ok(CanaryEnd::Passed(CanaryReport::default()));
    }
    ui.note(format!(
        "Canary: sending the first {} one at a time and re-reading each profile (up to {} per profile for Segment to propagate) before the fan-out.",
        plural(opts.canary, "deletion", "deletions"),
        humantime::format_duration(opts.canary_wait)
    ));
    let mut canary = tokio::select! {
        report = super::canary::run(
            state,
            api,
            opts.canary,
            opts.retry_failed,
            opts.canary_wait,
        ) => report?,
        signal = signals.next() => {
            if let Some(pacer) = api.pacer() {
                pacer.halt();
            }
            let figures = RunFigures::default();
            state.finish_run(run, RunOutcome::Interrupted.as_str(), &figures)?;
            return Ok(CanaryEnd::Interrupted(RunRecord {
                id: run,
                report: ApplyReport::default(),
                outcome: RunOutcome::Interrupted,
                figures,
                signal: Some(signal),
                in_canary: true,
            }));
        }
    };
    if let Some(problem) = canary.stop.take() {
        let figures = RunFigures {
            requests: canary.requests,
            ..RunFigures::default()
        };
        state.finish_run(run, "stopped", &figures)?;
        anyhow::bail!(
            "the canary stopped the run before the fan-out: {problem}. {} deletions were verified; the other {} stay pending. Find out why (`idprune status {}`), then run again (`--canary 0` skips the check)",
            thousands(canary.verified),
            thousands(state.count_work(opts.retry_failed)?),
            crate::text::shell_path(&opts.state)
        );
    }
    ui.note(format!(
        "Canary passed: {} sent one at a time, each profile re-read: the target gone and nothing else changed.",
        plural(canary.verified, "deletion", "deletions")
    ));
    Ok(CanaryEnd::Passed(canary))
}

/// Watches for signals during the fan-out: the first halts the pacer, cancels the run and is
/// kept in `received`; the second ends the process at once. Aborted when the run returns.
fn watch_signals(
    mut signals: super::Signals,
    api: &crate::segment::Client,
    cancel: Arc<watch::Sender<bool>>,
    received: Arc<OnceLock<Signal>>,
    ui: Ui,
) -> tokio::task::JoinHandle<()> {
    let pacer = api.pacer().cloned();
    tokio::spawn(async move {
        let first = signals.next().await;
        let _ = received.set(first);
        // No request starts from here on: queued ones and those waiting for a slot are
        // dropped before the pacer; those on the wire get the grace.
        if let Some(pacer) = pacer {
            pacer.halt();
        }
        let _ = cancel.send(true);
        ui.note(format!(
            "\n{}: no new request starts; waiting up to {} s for the requests in flight, then stopping. Send the signal again to quit at once.",
            first.name(),
            crate::pace::HALT_GRACE.as_secs()
        ));
        signals.next().await;
        // The one exit outside `main` (documented in `exit.rs`): the journal is consistent
        // at every commit; in-flight items are re-sent on resume.
        ui.note("Stopped at once; run the same command to resume.");
        std::process::exit(i32::from(first.exit().code()));
    })
}

/// The fan-out: the executor over the `work` items left, with a progress bar.
async fn fan_out(
    state: &mut State,
    api: crate::segment::Client,
    opts: &ApplyOptions,
    pace: super::Pace,
    cancel: watch::Receiver<bool>,
    work: u64,
    ui: &Ui,
) -> anyhow::Result<ApplyReport> {
    let options = ExecuteOptions {
        concurrency: pace.concurrency as usize,
        retry_failed: opts.retry_failed,
        profile_rate: PROFILE_RATE,
    };
    let progress = ProgressOut::new("deleted", work, ui);
    let report = execute(api, state, &options, cancel, |p: &Progress| {
        let settled = p.settled.done + p.settled.already_absent + p.settled.failed;
        progress.update(settled, || render::apply_progress_text(p));
    })
    .await;
    progress.finish();
    report
}

/// Closes the run's record with its figures (the canary's added) and how it ended. A failed
/// checkpoint ends it with that error, a refusal when the error was one (a lost lease).
fn close_run(
    state: &mut State,
    run: i64,
    report: anyhow::Result<ApplyReport>,
    canary: &CanaryReport,
    checkpoint_failed: Option<&anyhow::Error>,
    signal: Option<Signal>,
    opts: &ApplyOptions,
) -> anyhow::Result<Option<RunRecord>> {
    let report = match report {
        Ok(mut r) => {
            r.requests += canary.requests;
            r.settled.done += canary.done;
            r.settled.already_absent += canary.already_absent;
            r
        }
        Err(e) => {
            let _ = state.finish_run(run, "error", &RunFigures::default());
            let full = crate::state::full_disk_note(&opts.state)
                .map(|note| format!(": {note}; free space, then"))
                .unwrap_or_else(|| ";".to_owned());
            return Err(e.context(format!(
                "applying `{}`{full} run the same command to resume",
                opts.state.display()
            )));
        }
    };
    let outcome = match &report.stop {
        Some(Stop::Interrupted) => RunOutcome::Interrupted,
        Some(Stop::Space(_)) | Some(Stop::BudgetSpent(_)) => RunOutcome::Stopped,
        None => RunOutcome::Completed,
    };
    let figures = report.figures();
    if let Some(error) = checkpoint_failed {
        state.finish_run(run, RunOutcome::Stopped.as_str(), &figures)?;
        let refused = error.downcast_ref::<Refused>().is_some();
        let message = format!(
            "{error:#}; stopped sending after {} so that nothing goes unrecorded. The working copy `{}` holds the journal; run the same command to resume",
            plural(figures.requests, "request", "requests"),
            opts.state.display()
        );
        return Err(if refused {
            Refused(message).into()
        } else {
            anyhow::anyhow!(message)
        });
    }
    state.finish_run(run, outcome.as_str(), &figures)?;
    Ok(Some(RunRecord {
        id: run,
        report,
        outcome,
        figures,
        signal,
        in_canary: false,
    }))
}

/// Tells the checkpoint task to end once dropped, on every way out of the run. The task ends
/// between two steps, never inside one: a step holds the lease, so the final push that
/// follows waits for it.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}
