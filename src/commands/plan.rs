//! `validate` and `plan`.

use std::io::Write as _;

use super::{Ui, default_state_path, relative_to, state_dir};
use crate::cli::{OutputFormat, PlanArgs, ValidateArgs};
use crate::exit::Exit;
use crate::manifest;
use crate::ops::plan::PlanOptions;
use crate::ops::{self, Api, checks, sniff};
use crate::receipt::{Receipt, Unresolved, receipt_path};
use crate::render::{self, Format, PlanView, Redaction};
use crate::state::State;
use crate::text::thousands;

/// `idprune validate MANIFEST`: offline checks of the manifest and of the policy `plan` would
/// judge it by. Either one invalid exits 1: the text form as an error naming every problem,
/// the JSON form as its object.
pub fn validate(args: &ValidateArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_manifest(&args.manifest, "validate")?;
    if args.format == OutputFormat::Json {
        let policy = ops::validate::policy(args.policy.as_deref(), &args.manifest)?;
        let validated = ops::validate::validate(&args.manifest)?;
        ui.out(render::validate_json(&validated, policy.as_ref()))?;
        let policy_ok = policy.is_none_or(|p| p.found.is_ok());
        return Ok(if validated.found.is_ok() && policy_ok {
            Exit::Success
        } else {
            Exit::Error
        });
    }
    let validated = ops::validate::validate(&args.manifest)?;
    let valid = match validated.found {
        Ok(valid) => valid,
        Err(problems) => return Err(manifest::ManifestError::Invalid(problems).into()),
    };
    for w in &valid.warnings {
        ui.warn(render::clean(&w.to_string()));
    }
    for line in render::validate_text(&validated.manifest, &valid) {
        ui.say(line)?;
    }
    if let Some(checked) = ops::validate::policy(args.policy.as_deref(), &args.manifest)? {
        match checked.found {
            Ok(policy) => ui.say(render::policy_valid_text(&checked.path, &policy))?,
            Err(problems) => return Err(crate::policy::PolicyError::Invalid(problems).into()),
        }
    }
    Ok(Exit::Success)
}

/// `idprune plan MANIFEST`: load into the scratch file, resolve, plan, seal, print. SIGINT or
/// SIGTERM drops the work in progress at once (no request starts after it; the scratch and
/// half-written files go with it) and exits 130 or 143.
pub async fn plan(args: &PlanArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let mut signals = super::Signals::listen()?;
    tokio::select! {
        exit = run_plan(args, api, ui) => exit,
        signal = signals.next() => {
            ui.note(format!("\n{}: no state file was written.", signal.name()));
            Ok(signal.exit())
        }
    }
}

async fn run_plan(args: &PlanArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_manifest(&args.manifest, "plan")?;
    // `-o` (a path or a store URL) and `--state`: with a store, the local file is the
    // working copy the plan is sealed into before it is pushed.
    let resolved = ops::stored::resolve(
        args.out.as_deref(),
        args.store.url.as_deref(),
        args.store.state_key_file.as_deref(),
    )?;
    let state_path = resolved
        .local
        .clone()
        .unwrap_or_else(|| default_state_path(&args.manifest));
    checks::refuse_tracked(&state_path)?;
    if let Some(store) = &resolved.store {
        // Before hours of reads: the same check runs again under the lease at the end.
        store.refuse_replacing_a_journal(args.force).await?;
    }
    if args.sample > 0 && args.refresh {
        anyhow::bail!(
            "--sample checks a plan that read no profile; add --refresh=false (a plan that reads every profile needs no sample)"
        );
    }
    let redact = default_redaction(
        args.format,
        args.values.redact.is_some(),
        args.values.reveal,
    );
    let fresh = ops::plan::seal(&plan_options(args, api, &state_path, redact), ui).await?;
    let (digest, deletes, sample, policy) =
        (fresh.digest, fresh.deletes, fresh.sample, fresh.policy);
    if let Some(store) = &resolved.store {
        let bytes = store.publish_plan(&state_path, args.force).await?;
        ui.note(format!(
            "Pushed the sealed plan to `{}` ({:.1} MB, encrypted).",
            store.url(),
            bytes as f64 / 1e6
        ));
    }
    let shown_state = match &resolved.store {
        Some(store) => store.url().to_string(),
        None => state_path.display().to_string(),
    };
    let state = State::open(&state_path)?;
    if !ui.quiet || args.format == Format::Json {
        print_plan(
            &state,
            args.format,
            redact,
            args.values.redact,
            Some(args.diff),
            ui,
        )?;
    }
    ui.note(format!(
        "Sealed plan {digest} into `{}`.",
        state_path.display()
    ));
    checks::warn_if_committable(&state_path, ui);
    if let Some(exit) = sample_verdict(sample, ui) {
        return Ok(exit);
    }
    if let Some(exit) = policy_verdict(policy.as_deref(), &state_path, ui) {
        return Ok(exit);
    }
    if let Some(exit) = after_plan(args, &state, ui)? {
        return Ok(exit);
    }
    say_next(deletes, &shown_state, &digest, ui);
    Ok(if args.detailed_exitcode && deletes > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// What to do next with a sealed plan of `deletes` deletions: review and apply it (with the
/// reminder of what a deletion does not reach), or nothing.
fn say_next(deletes: u64, shown_state: &str, digest: &str, ui: &Ui) {
    if deletes == 0 {
        ui.note("No changes: nothing to delete.");
    } else {
        for line in render::SCOPE_REMINDER {
            ui.note(format!("note: {line}"));
        }
        ui.note(format!(
            "Review it, then: idprune apply {shown_state} --approve {digest}"
        ));
    }
}

/// The flags of `plan` as [`PlanOptions`], sealing into `state`.
fn plan_options(
    args: &PlanArgs,
    api: &Api,
    state: &std::path::Path,
    redact: Redaction,
) -> PlanOptions {
    PlanOptions {
        manifest: args.manifest.clone(),
        state: state.to_owned(),
        force: args.force,
        ttl: args.ttl,
        api: api.clone(),
        redact_warnings: redact.0,
        refresh: args.refresh,
        sample: (args.sample > 0).then_some(ops::plan::SampleOptions {
            size: args.sample,
            max_drift_percent: args.max_drift,
            allow: args.allow_drift,
        }),
        policy: args.policy.clone(),
    }
}

/// What the sampled check means for `plan`'s exit: 1 when the drift is over `--max-drift`
/// and `--allow-drift` did not accept it.
fn sample_verdict(sample: Option<crate::sample::Sample>, ui: &Ui) -> Option<Exit> {
    let sample = sample.filter(|s| s.over() && !s.allowed)?;
    ui.shout(format!(
        "\n!!! {}\n!!! Refusing to call this plan a success (exit 1): the observed drift {:.1} % is above --max-drift {}, so the warehouse data is older than the space. Export it afresh and plan again, plan with --refresh=true, or pass --allow-drift to accept it (apply still deletes only the sealed user_id and identifier pairs).",
        sample.line(),
        sample.rate_percent(),
        crate::sample::percent_text(sample.max_drift_percent),
    ));
    Some(Exit::Error)
}

/// What the policy's verdicts mean for `plan`'s exit: 1 on a failed hard rule (the state file
/// stays, to inspect); a failed soft rule only says what apply will need.
fn policy_verdict(
    verdicts: Option<&[crate::policy::Verdict]>,
    state: &std::path::Path,
    ui: &Ui,
) -> Option<Exit> {
    use crate::policy::Level;
    let verdicts = verdicts?;
    let failed = |level| {
        verdicts
            .iter()
            .filter(|v| !v.passed && v.level == level)
            .map(|v| v.rule.as_str())
            .collect::<Vec<_>>()
    };
    let (hard, soft) = (failed(Level::Hard), failed(Level::Soft));
    if !hard.is_empty() {
        ui.shout(format!(
            "\n!!! The policy's hard rule{} {} failed: apply will refuse this plan (exit 4). Refusing to call it a success (exit 1); the state file `{}` is written, to inspect. Change the manifest (or the policy, in review) and plan again.",
            if hard.len() == 1 { "" } else { "s" },
            hard.join(", "),
            state.display()
        ));
        return Some(Exit::Error);
    }
    if !soft.is_empty() {
        ui.shout(format!(
            "\nThe policy's soft rule{} {} failed: apply refuses unless told why: {}--why \"...\" (recorded with the run).",
            if soft.len() == 1 { "" } else { "s" },
            soft.join(", "),
            soft.iter()
                .map(|r| format!("--override {r} "))
                .collect::<String>()
        ));
    }
    None
}

/// What `plan` does after sealing and printing: the suspicious-plan check, then writing or
/// checking the receipt. `Some(exit)` ends the command with that exit.
pub fn after_plan(args: &PlanArgs, state: &State, ui: &Ui) -> anyhow::Result<Option<Exit>> {
    let unresolved = Unresolved::of(state)?;
    if unresolved.suspicious() {
        ui.shout(format!(
            "\n!!! {} of {} profile lookups found no profile. {}",
            thousands(unresolved.unresolved),
            thousands(unresolved.lookups),
            unresolved.cause()
        ));
        if !args.allow_unresolved {
            ui.shout("!!! Refusing to call this plan a success (exit 1): fix that, or pass --allow-unresolved if these lookups really have no profile.\n");
            return Ok(Some(Exit::Error));
        }
        ui.shout("!!! Accepted with --allow-unresolved.\n");
    }
    if args.receipt {
        let path = receipt_path(&args.manifest);
        let receipt = Receipt::of(state, &relative_to(&args.manifest, &state_dir(&path))?)?;
        receipt.write(&path)?;
        ui.shout(format!(
            "Wrote receipt `{}` (no identifier values): commit it with the manifest for review.",
            path.display()
        ));
    }
    if let Some(file) = &args.check_receipt {
        let path = file.clone().unwrap_or_else(|| receipt_path(&args.manifest));
        let committed = Receipt::read(&path)?;
        checks::refuse_expired(&committed, &path)?;
        checks::check_receipt(&committed, &path, state, &args.manifest)?;
        ui.shout(format!(
            "Receipt `{}` matches the fresh plan {}.",
            path.display(),
            state.meta()?.digest
        ));
    }
    Ok(None)
}

/// Redaction by format: markdown and JSON hide values unless `--reveal`; text shows them
/// unless `--redact`.
pub fn default_redaction(format: Format, redact: bool, reveal: bool) -> Redaction {
    Redaction(match format {
        Format::Text => redact,
        Format::Markdown | Format::Json => !reveal,
    })
}

/// Prints a state file's plan in `format` to stdout. `level` is the `--redact` level asked
/// for (markdown: `full` hides even the masked preview). `diff`: `plan`'s summary-first text,
/// with every diff only when `Some(true)` (`--diff`) or short; `None` (`show`): everything.
pub fn print_plan(
    state: &State,
    format: Format,
    redact: Redaction,
    level: Option<crate::mask::RedactLevel>,
    diff: Option<bool>,
    ui: &Ui,
) -> anyhow::Result<()> {
    let view = PlanView::new(state)?;
    // Colour only in the text view: markdown and JSON go to files and programs.
    let color = ui.color && format == Format::Text;
    let mut out = super::ui::Colored::new(std::io::BufWriter::new(super::ui::stdout()), color);
    match format {
        Format::Text => {
            let text = diff.map_or(render::TextOptions::FULL, |d| {
                render::TextOptions::summary(&view.counts, d)
            });
            render::plan_text(&view, redact, text, &mut out)?
        }
        Format::Markdown => {
            let level = redact
                .0
                .then(|| level.unwrap_or(crate::mask::RedactLevel::Preview));
            let masker = crate::mask::Masker::for_state(state, level)?;
            crate::markdown::plan(
                &view,
                &masker,
                &state.path().display().to_string(),
                &mut out,
            )?
        }
        Format::Json => render::plan_json(&view, redact, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
