//! `apply`: verify the seal, take the lock, run the executor, report.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use super::{Refused, base_url, client, load_token, state_dir};
use crate::apply::{ApplyOptions, ApplyReport, PROFILE_RATE, Progress, Stop, execute};
use crate::cli::ApplyArgs;
use crate::digest;
use crate::exit::Exit;
use crate::render::{self, thousands};
use crate::state::lock::Acquired;
use crate::state::{ItemState, RunFigures, State, now_unix};

use super::progress::ProgressOut;

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut sha = Sha256::new();
    std::io::copy(&mut file, &mut sha).with_context(|| format!("reading `{}`", path.display()))?;
    Ok(hex::encode(sha.finalize()))
}

/// Every check that must pass before a single request: seal, inputs, target, age, approval.
fn check_seal(state: &State, args: &ApplyArgs, api_origin: &str) -> anyhow::Result<String> {
    let meta = state.meta()?;
    let path = state.path().display().to_string();
    if state.purged_at()?.is_some() {
        return Err(Refused(format!(
            "state file `{path}` was purged after its run; there is nothing left to apply"
        ))
        .into());
    }
    let recomputed = state.recompute_digest()?;
    if recomputed != meta.digest {
        return Err(Refused(format!(
            "state file `{path}` was changed after it was sealed (its items hash to {recomputed}, the seal says {}); plan again",
            meta.digest
        ))
        .into());
    }
    let dir = state_dir(state.path());
    let manifest = dir.join(&meta.manifest_path);
    if manifest.exists() {
        if sha256_file(&manifest)? != meta.manifest_sha256 {
            return Err(Refused(format!(
                "manifest `{}` changed since the plan was made; run `idprune plan` again and get the new plan approved",
                manifest.display()
            ))
            .into());
        }
    } else {
        eprintln!(
            "warning: manifest `{}` is not there; relying on the plan digest alone",
            manifest.display()
        );
    }
    for source in state.sources()?.iter().filter(|s| s.pinned) {
        let file = dir.join(&source.path);
        if !file.exists() {
            eprintln!(
                "warning: pinned source `{}` is not there; relying on the plan digest alone",
                file.display()
            );
        } else if sha256_file(&file)? != source.sha256 {
            return Err(Refused(format!(
                "pinned source `{}` changed since the plan was made; run `idprune plan` again",
                file.display()
            ))
            .into());
        }
    }
    if api_origin != meta.api_origin {
        return Err(Refused(format!(
            "the plan was resolved against {} but this apply would send to {api_origin}; use the same --api-url / IDPRUNE_API_URL, or plan again",
            meta.api_origin
        ))
        .into());
    }
    let age = now_unix().saturating_sub(meta.created_at).max(0) as u64;
    if age > meta.ttl_secs {
        return Err(Refused(format!(
            "the plan is {} old, past its TTL of {}; profiles may have changed: plan again",
            humantime::format_duration(Duration::from_secs(age)),
            humantime::format_duration(Duration::from_secs(meta.ttl_secs))
        ))
        .into());
    }
    match (&args.approve, args.yes) {
        (Some(approval), _) if digest::approves(approval, &meta.digest) => {}
        (Some(approval), _) => {
            return Err(Refused(format!(
                "`--approve {}` does not name this plan's digest {}; review the plan again (`idprune show {path}`)",
                render::clean(approval),
                meta.digest
            ))
            .into());
        }
        (None, true) => {}
        (None, false) => confirm(state, &meta.digest, args.reapply)?,
    }
    Ok(meta.digest)
}

/// Asks on a terminal; refuses without one.
fn confirm(state: &State, digest: &str, reapply: bool) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Refused(format!(
            "not approved: pass --approve {digest} (or --yes) to apply `{}` without a terminal",
            state.path().display()
        ))
        .into());
    }
    eprint!(
        "{} {} deletions to space {} (plan {digest})? Type `yes` to go on: ",
        if reapply { "Re-apply" } else { "Apply" },
        thousands(if reapply {
            let counts = state.counts()?;
            counts.state(ItemState::Done) + counts.state(ItemState::AlreadyAbsent)
        } else {
            state.count_work(false)?
        }),
        render::clean(&state.meta()?.space)
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(Refused("not approved at the prompt; nothing was sent".into()).into());
    }
    Ok(())
}

/// `idprune apply STATE`, or `idprune apply MANIFEST` (see [`super::review`]): the file is
/// sniffed, not named by its extension.
pub async fn apply(args: &ApplyArgs) -> anyhow::Result<Exit> {
    if !super::review::is_state_file(&args.state)? {
        return super::review::apply_manifest(args).await;
    }
    if let Some(receipt) = &args.receipt {
        let mut approved = args.clone();
        approved.approve = Some(crate::receipt::Receipt::read(receipt)?.digest);
        return apply_state(&approved).await;
    }
    apply_state(args).await
}

/// `idprune apply STATE`: the classic form.
pub(super) async fn apply_state(args: &ApplyArgs) -> anyhow::Result<Exit> {
    let mut state = State::open(&args.state)?;
    let meta = state.meta()?;
    let base = base_url(&args.api, super::region_url(&meta.region))?;
    let origin = crate::segment::client::origin(&base);
    let digest = check_seal(&state, args, &origin)?;
    let token = load_token(&args.api)?;
    let api = client(&base, &meta.space, token, &args.pace)?;

    let mine = match state.acquire_lock()? {
        Acquired::Yes { mine, took_over } => {
            if let Some(stale) = took_over {
                eprintln!("warning: took over a stale lock left by {stale}, which no longer runs");
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
    let result = run_locked(&mut state, api, args, &digest, &meta.reason).await;
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
    digest: &str,
    reason: &str,
) -> anyhow::Result<Exit> {
    if args.reapply {
        let unfinished = state.unfinished()?;
        if unfinished > 0 {
            anyhow::bail!(
                "--reapply re-runs a finished journal, but {} deletions of `{}` are still unsent or in flight; run `idprune apply {}` to finish it first",
                thousands(unfinished),
                args.state.display(),
                args.state.display()
            );
        }
    }
    let run = state.start_run(
        &mine_user(),
        &crate::state::lock::this_host(),
        digest,
        reason,
    )?;
    if args.reapply {
        let reset = state.reset_for_reapply(run)?;
        eprintln!(
            "Re-applying the finished journal as run #{run}: {} deletions are pending again (their earlier outcomes are kept in the item history); identifiers no longer there end `already_absent`.",
            thousands(reset)
        );
    }
    let mut canary = super::canary::CanaryReport::default();
    if args.canary > 0 && state.count_work(args.retry_failed)? > 0 {
        eprintln!(
            "Canary: sending the first {} deletions one at a time and re-reading each profile (up to {} per profile for Segment to propagate) before the fan-out.",
            thousands(args.canary),
            humantime::format_duration(args.canary_wait)
        );
        canary = super::canary::run(
            state,
            &api,
            args.canary,
            args.retry_failed,
            args.canary_wait,
        )
        .await?;
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
        eprintln!(
            "Canary passed: {} deletions sent one at a time, each profile re-read: the target gone and nothing else changed.",
            thousands(canary.verified)
        );
    }
    let work = state.count_work(args.retry_failed)?;
    eprintln!(
        "Applying {} deletions at {}, at most {} in flight (reason: {}).",
        thousands(work),
        super::plan::rate_text(args.pace.rate),
        args.pace.concurrency,
        render::clean(reason)
    );
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut interrupt = super::interrupts()?;
    let signals = tokio::spawn(async move {
        if interrupt.recv().await.is_some() {
            eprintln!(
                "\nInterrupted: finishing the requests in flight, then stopping. Press Ctrl-C again to quit at once."
            );
            let _ = cancel_tx.send(true);
            if interrupt.recv().await.is_some() {
                // The journal is consistent at every commit; in-flight items are re-sent on resume.
                eprintln!("Stopped at once; run the same command to resume.");
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        }
    });
    let options = ApplyOptions {
        concurrency: args.pace.concurrency as usize,
        retry_failed: args.retry_failed,
        profile_rate: PROFILE_RATE,
        pacer: Some(api.pacer().clone()),
    };
    let progress = ProgressOut::new("deleted", work);
    let report = execute(api, state, &options, cancel_rx, |p: &Progress| {
        let settled = p.settled.done + p.settled.already_absent + p.settled.failed;
        progress.update(settled, || progress_text(p));
    })
    .await;
    progress.finish();
    signals.abort();
    let report = match report {
        Ok(mut r) => {
            r.requests += canary.requests;
            r.settled.done += canary.done;
            r.settled.already_absent += canary.already_absent;
            r
        }
        Err(e) => {
            let _ = state.finish_run(run, "error", &RunFigures::default());
            return Err(e.context(format!(
                "applying `{}`; run the same command to resume",
                args.state.display()
            )));
        }
    };
    finish(state, run, &report, args)
}

fn mine_user() -> String {
    crate::state::lock::this_user()
}

fn progress_text(p: &Progress) -> String {
    let rate = p.requests as f64 / p.elapsed.as_secs_f64().max(0.001);
    format!(
        "({} already absent, {} failed, {:.1} requests/s)",
        thousands(p.settled.already_absent),
        thousands(p.settled.failed),
        rate
    )
}

fn finish(state: &State, run: i64, report: &ApplyReport, args: &ApplyArgs) -> anyhow::Result<Exit> {
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
    eprintln!(
        "This run: {} deleted, {} already absent, {} failed; {} requests ({} throttled) in {:.1}s ({:.1}/s{}).",
        thousands(report.settled.done),
        thousands(report.settled.already_absent),
        thousands(report.settled.failed),
        thousands(report.requests),
        thousands(report.throttled),
        report.elapsed.as_secs_f64(),
        report.rate(),
        render::latency_text(&figures)
    );
    println!("{}", render::progress_line(&counts));
    let path = args.state.display();
    match &report.stop {
        Some(Stop::Interrupted) => {
            eprintln!("Interrupted; the state is consistent. Run the same command to resume.");
            return Ok(Exit::Interrupted);
        }
        Some(Stop::Space(fault)) => anyhow::bail!(
            "Segment refused the space ({fault}); no item was marked failed. Fix the token or the space's access, then run the same command to resume"
        ),
        Some(Stop::BudgetSpent(why)) => anyhow::bail!(
            "stopped dispatching: {why}. Unsent items stay pending and in-flight ones are re-sent on resume: run the same command later"
        ),
        None => {}
    }
    for line in render::SCOPE_REMINDER {
        eprintln!("note: {line}");
    }
    let failed = counts.state(ItemState::Failed);
    if failed > 0 {
        eprintln!(
            "{} items failed: `idprune status {path}` lists the last errors; a plain `apply` retries transient ones, `--retry-failed` all.",
            thousands(failed)
        );
        return Ok(Exit::ItemsFailed);
    }
    Ok(Exit::Success)
}
