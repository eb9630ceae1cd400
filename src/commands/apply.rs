//! `apply`: verify the seal (`apply/preflight.rs`), take the lock, run the executor, report.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use super::plan::render_count;
use super::{Api, Refused, Ui, sniff};
use crate::apply::{ApplyOptions, ApplyReport, PROFILE_RATE, Progress, Stop, execute};
use crate::cli::{ApplyArgs, OutputFormat};
use crate::exit::Exit;
use crate::render::{self, thousands};
use crate::state::lock::Acquired;
use crate::state::{ItemState, RunFigures, State};

use super::progress::ProgressOut;

mod preflight;

/// What a space-level refusal (401, 403, unknown source) says, for apply and its canary:
/// nothing was marked failed, and the same command picks up once access is fixed.
pub(super) fn space_refused(fault: impl std::fmt::Display, then: &str) -> String {
    format!(
        "Segment refused the space ({fault}); no item was marked failed. Fix the token or the space's access, then run the same command{then}"
    )
}

use preflight::check_seal;

/// `idprune apply STATE`, or `idprune apply MANIFEST` (see [`super::review`]): the file is
/// sniffed, not named by its extension.
pub async fn apply(args: &ApplyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    if !super::review::is_state_file(&args.state)? {
        return super::review::apply_manifest(args, api, ui).await;
    }
    if let Some(path) = &args.receipt {
        super::review::refuse_tracked(&args.state)?;
        let receipt = crate::receipt::Receipt::read(path)?;
        {
            let state = State::open(&args.state)?;
            let manifest = super::state_dir(&args.state).join(state.meta()?.manifest_path);
            super::review::check_receipt(&receipt, path, &state, &manifest)?;
        }
        let mut approved = args.clone();
        approved.approve = Some(receipt.digest);
        return apply_state(&approved, api, ui).await;
    }
    apply_state(args, api, ui).await
}

/// `idprune apply STATE`: the classic form.
pub(super) async fn apply_state(args: &ApplyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "apply")?;
    super::review::refuse_tracked(&args.state)?;
    let mut state = State::open(&args.state)?;
    let meta = state.meta()?;
    let base = api.base_url(super::state_region(&meta)?)?;
    let origin = crate::segment::client::origin(&base);
    let digest = check_seal(&state, args, &origin, ui)?;
    let pace = api.pace;
    let api = api.client(&base, &meta.space)?;

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
                "state file `{}` is locked by {holder}; wait, or if that run is dead run `idprune unlock {} {}`",
                args.state.display(),
                args.state.display(),
                holder.lock_id
            ))
            .into());
        }
    };
    let result = run_locked(&mut state, api, args, pace, &digest, &meta.reason, ui).await;
    let released = state.release_lock(&mine.lock_id).with_context(|| {
        format!(
            "releasing the lock on `{}`; the next apply takes it over as stale",
            args.state.display()
        )
    });
    // The run's own error (a full disk, say) is the one to report: releasing the lock then
    // usually fails for the same reason, and the next apply takes a dead holder's lock over.
    let exit = result?;
    released?;
    Ok(exit)
}

async fn run_locked(
    state: &mut State,
    api: crate::segment::Client,
    args: &ApplyArgs,
    pace: super::Pace,
    digest: &str,
    reason: &str,
    ui: &Ui,
) -> anyhow::Result<Exit> {
    let recording = || {
        format!(
            "recording the run in `{}` before sending anything; free space or fix the file, then run the same command to resume",
            args.state.display()
        )
    };
    for dead in state.close_dead_runs().with_context(recording)? {
        ui.warn(format!(
            "run {} ended without closing its record (its process died); recorded it as `died` with the journal's counts: {} settled while it ran",
            dead.id,
            thousands(dead.settled)
        ));
    }
    if args.reapply {
        let unfinished = state.unfinished()?;
        if unfinished > 0 {
            anyhow::bail!(
                "--reapply re-runs a finished journal, but {} of `{}` are still unsent or in flight; run `idprune apply {}` to finish it first",
                render_count(unfinished, "deletion", "deletions"),
                args.state.display(),
                args.state.display()
            );
        }
    }
    if !args.reapply && state.count_work(args.retry_failed)? == 0 {
        return nothing_to_apply(state, args, ui);
    }
    if let Some(last) = state.runs()?.last() {
        let asked = match state.run_rate(last.id)? {
            Some(rate) => format!("was started at {}", super::plan::rate_text(rate)),
            None => "was started at a rate not recorded".to_owned(),
        };
        let went = if last.figures.requests > 0 {
            format!(
                " and went at {}",
                super::progress::rate_text(last.figures.rate)
            )
        } else {
            String::new()
        };
        ui.note(format!(
            "Resuming: run {} ({}) {asked}{went}; this run goes at {}.",
            last.id,
            last.outcome.as_deref().unwrap_or("open"),
            super::plan::rate_text(pace.rate)
        ));
    }
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
    if args.reapply {
        let reset = state.reset_for_reapply(run)?;
        ui.note(format!(
            "Re-applying the finished journal as run #{run}: {} pending again (their earlier outcomes are kept in the item history); identifiers no longer there end `already_absent`.",
            render_count(reset, "deletion is", "deletions are")
        ));
    }
    // From here on a signal stops the run: during the canary at once (its item stays
    // `in_flight`, re-sent on resume), during the fan-out after the requests on the wire.
    let mut signals = super::Signals::listen()?;
    let mut canary = super::canary::CanaryReport::default();
    if args.canary > 0 && state.count_work(args.retry_failed)? > 0 {
        ui.note(format!(
            "Canary: sending the first {} one at a time and re-reading each profile (up to {} per profile for Segment to propagate) before the fan-out.",
            render_count(args.canary, "deletion", "deletions"),
            humantime::format_duration(args.canary_wait)
        ));
        canary = tokio::select! {
            report = super::canary::run(
                state,
                &api,
                args.canary,
                args.retry_failed,
                args.canary_wait,
            ) => report?,
            signal = signals.next() => {
                api.pacer().halt();
                state.finish_run(run, "interrupted", &RunFigures::default())?;
                ui.note(format!(
                    "\n{} during the canary: stopped; the state is consistent. Run the same command to resume.",
                    signal.name()
                ));
                return Ok(signal.exit());
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
                thousands(state.count_work(args.retry_failed)?),
                args.state.display()
            );
        }
        ui.note(format!(
            "Canary passed: {} sent one at a time, each profile re-read: the target gone and nothing else changed.",
            render_count(canary.verified, "deletion", "deletions")
        ));
    }
    let work = state.count_work(args.retry_failed)?;
    ui.note(format!(
        "Applying {} at {}, at most {} in flight (reason: {}).",
        render_count(work, "deletion", "deletions"),
        super::plan::rate_text(pace.rate),
        pace.concurrency,
        render::clean(reason)
    ));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let received = std::sync::Arc::new(std::sync::OnceLock::new());
    let signal_ui = *ui;
    let (pacer, first_signal) = (api.pacer().clone(), received.clone());
    let signals = tokio::spawn(async move {
        let first = signals.next().await;
        let _ = first_signal.set(first);
        // No request starts from here on: queued ones and those waiting for a slot are
        // dropped before the pacer; those on the wire get the grace.
        pacer.halt();
        let _ = cancel_tx.send(true);
        signal_ui.note(format!(
            "\n{}: no new request starts; waiting up to {} s for the requests in flight, then stopping. Send the signal again to quit at once.",
            first.name(),
            crate::pace::HALT_GRACE.as_secs()
        ));
        signals.next().await;
        // The one exit outside `main` (documented in `exit.rs`): the journal is consistent
        // at every commit; in-flight items are re-sent on resume.
        signal_ui.note("Stopped at once; run the same command to resume.");
        std::process::exit(i32::from(first.exit().code()));
    });
    let options = ApplyOptions {
        concurrency: pace.concurrency as usize,
        retry_failed: args.retry_failed,
        profile_rate: PROFILE_RATE,
        pacer: Some(api.pacer().clone()),
    };
    let progress = ProgressOut::new("deleted", work, ui);
    let report = execute(api, state, &options, cancel_rx, |p: &Progress| {
        let settled = p.settled.done + p.settled.already_absent + p.settled.failed;
        progress.update(settled, || progress_text(p));
    })
    .await;
    progress.finish();
    signals.abort();
    let signal = received.get().copied();
    let report = match report {
        Ok(mut r) => {
            r.requests += canary.requests;
            r.settled.done += canary.done;
            r.settled.already_absent += canary.already_absent;
            r
        }
        Err(e) => {
            let _ = state.finish_run(run, "error", &RunFigures::default());
            let full = crate::state::full_disk_note(&args.state)
                .map(|note| format!(": {note}; free space, then"))
                .unwrap_or_else(|| ";".to_owned());
            return Err(e.context(format!(
                "applying `{}`{full} run the same command to resume",
                args.state.display()
            )));
        }
    };
    let exit = finish(state, run, &report, args, ui)?;
    // Stopped by a signal: the exit code names which (130 or 143).
    Ok(match (exit, signal) {
        (Exit::Interrupted, Some(signal)) => signal.exit(),
        (exit, _) => exit,
    })
}

/// `apply` when every planned item is settled: no run is recorded, nothing is sent.
fn nothing_to_apply(state: &State, args: &ApplyArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let counts = state.counts()?;
    let failed = counts.state(ItemState::Failed);
    if args.format == OutputFormat::Json {
        let mut body = report_json(state, None, &counts)?;
        body["stop"] = serde_json::json!("nothing_to_apply");
        ui.out(body)?;
    } else {
        ui.say(render::progress_line(&counts))?;
    }
    if failed > 0 {
        ui.note(format!(
            "nothing to apply: every planned item is settled, {} permanently; `--retry-failed` sends {} again.",
            render_count(failed, "failed", "failed"),
            if failed == 1 { "it" } else { "them" }
        ));
        return Ok(Exit::ItemsFailed);
    }
    ui.note("nothing to apply: every planned item is settled.");
    Ok(Exit::Success)
}

/// The version of `apply --format json`'s object (minor: additive; major: breaking).
pub const APPLY_JSON_VERSION: &str = "1.0";

/// The final report as JSON: this run's figures (when it ran) and the plan's counts by state.
fn report_json(
    state: &State,
    run: Option<(i64, &ApplyReport, &str)>,
    counts: &crate::state::Counts,
) -> anyhow::Result<serde_json::Value> {
    use serde_json::json;
    let meta = state.meta()?;
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let this_run = run.map(|(id, r, outcome)| {
        json!({
            "id": id,
            "outcome": outcome,
            "deleted": r.settled.done,
            "already_absent": r.settled.already_absent,
            "failed": r.settled.failed,
            "requests": r.requests,
            "throttled": r.throttled,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "rate": r.rate(),
            "latency_p50_ms": ms(r.latency_p50),
            "latency_p99_ms": ms(r.latency_p99),
        })
    });
    let stop = match run.and_then(|(_, r, _)| r.stop.as_ref()) {
        None => json!(null),
        Some(Stop::Interrupted) => json!("interrupted"),
        Some(Stop::Space(fault)) => json!(format!("space: {fault}")),
        Some(Stop::BudgetSpent(why)) => json!(format!("retry budget: {why}")),
    };
    let by_state: serde_json::Map<String, serde_json::Value> = [
        ItemState::Pending,
        ItemState::InFlight,
        ItemState::Done,
        ItemState::AlreadyAbsent,
        ItemState::Failed,
    ]
    .iter()
    .map(|s| (s.as_str().to_owned(), json!(counts.state(*s))))
    .collect();
    Ok(json!({
        "format_version": APPLY_JSON_VERSION,
        "digest": meta.digest,
        "space": meta.space,
        "run": this_run,
        "stop": stop,
        "summary": {"by_state": by_state},
    }))
}

fn progress_text(p: &Progress) -> String {
    let rate = p.requests as f64 / p.elapsed.as_secs_f64().max(0.001);
    format!(
        "({} already absent, {} failed, {} requests)",
        thousands(p.settled.already_absent),
        thousands(p.settled.failed),
        super::progress::rate_text(rate)
    )
}

fn finish(
    state: &State,
    run: i64,
    report: &ApplyReport,
    args: &ApplyArgs,
    ui: &Ui,
) -> anyhow::Result<Exit> {
    let outcome = match &report.stop {
        Some(Stop::Interrupted) => "interrupted",
        Some(Stop::Space(_)) | Some(Stop::BudgetSpent(_)) => "stopped",
        None => "completed",
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let figures = RunFigures {
        requests: report.requests,
        throttled: report.throttled,
        rate: report.rate(),
        latency_p50_ms: ms(report.latency_p50),
        latency_p99_ms: ms(report.latency_p99),
    };
    state.finish_run(run, outcome, &figures)?;
    let counts = state.counts()?;
    ui.note(format!(
        "This run: {} deleted, {} already absent, {} failed; {} ({} throttled) in {:.1}s ({}{}).",
        thousands(report.settled.done),
        thousands(report.settled.already_absent),
        thousands(report.settled.failed),
        render_count(report.requests, "request", "requests"),
        thousands(report.throttled),
        report.elapsed.as_secs_f64(),
        super::progress::rate_text(report.rate()),
        render::latency_text(&figures)
    ));
    if args.format == OutputFormat::Json {
        ui.out(report_json(state, Some((run, report, outcome)), &counts)?)?;
    } else {
        ui.say(render::progress_line(&counts))?;
    }
    let path = args.state.display();
    match &report.stop {
        Some(Stop::Interrupted) => {
            ui.note("Stopped; the state is consistent. Run the same command to resume.");
            return Ok(Exit::Interrupted);
        }
        Some(Stop::Space(fault)) => anyhow::bail!("{}", space_refused(fault, " to resume")),
        Some(Stop::BudgetSpent(why)) => anyhow::bail!(
            "stopped dispatching: {why}. Unsent items stay pending and in-flight ones are re-sent on resume: run the same command later"
        ),
        None => {}
    }
    for line in render::SCOPE_REMINDER {
        ui.note(format!("note: {line}"));
    }
    let failed = counts.state(ItemState::Failed);
    if failed > 0 {
        ui.note(format!(
            "{} failed: `idprune status {path}` lists the last errors; a plain `apply` retries transient ones, `--retry-failed` all.",
            render_count(failed, "item", "items")
        ));
        return Ok(Exit::ItemsFailed);
    }
    Ok(Exit::Success)
}
