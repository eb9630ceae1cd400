//! `apply`: the flags into [`ApplyOptions`], one [`ops::apply::apply`] call, then the run's
//! summary, report and exit code.

use super::Ui;
use crate::cli::{ApplyArgs, OutputFormat};
use crate::exit::Exit;
use crate::ops::{self, Api, ApplyOptions, Approval};
use crate::outcome::Applied;
use crate::render;
use crate::state::ItemState;
use crate::text::plural;

/// `idprune apply STATE`, or `idprune apply MANIFEST`: the file is sniffed, not named by its
/// extension.
pub async fn apply(args: &ApplyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let approval = Approval::from_flags(args.approve.clone(), args.receipt.clone(), args.yes);
    // The state path may be a store URL itself; otherwise `--state` names the store and the
    // path is the working copy (or the manifest).
    let url_named = args.state.to_str().is_some_and(|s| s.contains("://"));
    let resolved = ops::stored::resolve(
        url_named.then_some(args.state.as_path()),
        args.store.url.as_deref(),
        args.store.state_key_file.as_deref(),
    )?;
    let state = match (resolved.local, &resolved.store) {
        (_, Some(_)) if url_named => std::path::PathBuf::new(),
        (Some(local), None)
            if std::path::absolute(&local)? != std::path::absolute(&args.state)? =>
        {
            anyhow::bail!(
                "`--state {}` names a local state file, and `{}` was given to apply: give the state file alone as apply's argument",
                local.display(),
                args.state.display()
            )
        }
        _ => args.state.clone(),
    };
    let mut opts = ApplyOptions::new(state, approval, resolved.store);
    opts.retry_failed = args.retry_failed;
    opts.reapply = args.reapply;
    opts.canary = args.canary;
    opts.canary_wait = args.canary_wait;
    opts.checkpoint_every = args.checkpoint_every;
    opts.policy = args.policy.clone();
    opts.overrides = args.overrides.clone();
    opts.why = args.why.clone();
    let applied = ops::apply::apply(&opts, api, ui).await?;
    report(&applied, args.format, ui)
}

/// Prints what `apply` did and decides its exit code.
fn report(applied: &Applied, format: OutputFormat, ui: &Ui) -> anyhow::Result<Exit> {
    let failed = applied.counts.state(ItemState::Failed);
    let Some(run) = &applied.run else {
        if format == OutputFormat::Json {
            ui.out(render::apply_json(applied))?;
        } else {
            ui.say(render::progress_line(&applied.counts))?;
        }
        if failed > 0 {
            ui.note(format!(
                "nothing to apply: every planned item is settled, {} permanently; `--retry-failed` sends {} again.",
                plural(failed, "failed", "failed"),
                if failed == 1 { "it" } else { "them" }
            ));
            return Ok(Exit::ItemsFailed);
        }
        ui.note("nothing to apply: every planned item is settled.");
        return Ok(Exit::Success);
    };
    if let (Some(signal), true) = (run.signal, run.in_canary) {
        ui.note(format!(
            "\n{} during the canary: stopped; the state is consistent. Run the same command to resume.",
            signal.name()
        ));
        return Ok(signal.exit());
    }
    ui.note(render::run_summary_text(run));
    if format == OutputFormat::Json {
        ui.out(render::apply_json(applied))?;
    } else {
        ui.say(render::progress_line(&applied.counts))?;
    }
    match &run.report.stop {
        Some(crate::apply::Stop::Interrupted) => {
            ui.note("Stopped; the state is consistent. Run the same command to resume.");
            // Stopped by a signal: the exit code names which (130 or 143).
            return Ok(run.signal.map_or(Exit::Interrupted, |s| s.exit()));
        }
        Some(crate::apply::Stop::Space(fault)) => {
            anyhow::bail!("{}", crate::text::space_refused(fault, " to resume"))
        }
        Some(crate::apply::Stop::BudgetSpent(why)) => anyhow::bail!(
            "stopped dispatching: {why}. Unsent items stay pending and in-flight ones are re-sent on resume: run the same command later"
        ),
        None => {}
    }
    // Once per plan: after the first run that completed it, not after every resume.
    if applied.first_completion {
        for line in render::SCOPE_AFTER_APPLY {
            ui.note(format!("note: {line}"));
        }
    }
    if failed > 0 {
        ui.note(format!(
            "{} failed: `idprune status {}` lists the last errors; a plain `apply` retries transient ones, `--retry-failed` all.",
            plural(failed, "item", "items"),
            crate::text::shell_path(&applied.state)
        ));
        return Ok(Exit::ItemsFailed);
    }
    Ok(Exit::Success)
}
