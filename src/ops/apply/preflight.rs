//! `apply`'s refusals before a single request (docs/ARCHITECTURE.md, *The seal*): the state file
//! not purged, its items still hashing to the sealed digest, the manifest and pinned sources
//! unchanged, the same API origin, the plan within its TTL, and the digest approved (by
//! `--approve`, `--yes` or at a terminal prompt). Each refusal names the fix.

use std::io::{BufRead as _, IsTerminal as _};
use std::time::Duration;

use super::Approval;
use crate::digest;
use crate::manifest::sha256_file;
use crate::ops::{Refused, state_dir};
use crate::render;
use crate::state::{ItemState, Meta, State, now_unix};
use crate::text::plural;
use crate::ui::Ui;

/// Every check that must pass before a single request: seal, inputs, target, age, approval.
/// The sealed digest, once they all passed.
pub(super) fn check_before_sending(
    state: &State,
    approval: &Approval,
    reapply: bool,
    api_origin: &str,
    ui: &Ui,
) -> anyhow::Result<String> {
    let meta = state.meta()?;
    refuse_changed_seal(state, &meta)?;
    refuse_changed_inputs(state, &meta, ui)?;
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
    check_approval(state, approval, &meta.digest, reapply, ui)?;
    Ok(meta.digest)
}

/// Refuses a purged state file, and one whose items no longer hash to the sealed digest.
fn refuse_changed_seal(state: &State, meta: &Meta) -> anyhow::Result<()> {
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
    Ok(())
}

/// Refuses a manifest or a pinned local source that changed since the plan; warns when one
/// is not there (the digest alone then vouches for it).
fn refuse_changed_inputs(state: &State, meta: &Meta, ui: &Ui) -> anyhow::Result<()> {
    let dir = state_dir(state.path());
    let manifest = dir.join(&meta.manifest_path);
    if manifest.exists() {
        if sha256_file(&manifest, "file")? != meta.manifest_sha256 {
            return Err(Refused(format!(
                "manifest `{}` changed since the plan was made; run `idprune plan` again and get the new plan approved",
                manifest.display()
            ))
            .into());
        }
    } else {
        ui.warn(format!(
            "manifest `{}` is not there; relying on the plan digest alone",
            manifest.display()
        ));
    }
    for source in state.sources()?.iter().filter(|s| s.pinned) {
        // A source in a store is not fetched again: the manifest (its hash checked above, or
        // the digest, which seals both) pins the source's sha256, and the plan read exactly
        // those bytes.
        if crate::manifest::is_url_source(&source.written) {
            continue;
        }
        let file = dir.join(&source.path);
        if !file.exists() {
            ui.warn(format!(
                "pinned source `{}` is not there; relying on the plan digest alone",
                file.display()
            ));
        } else if sha256_file(&file, "file")? != source.sha256 {
            return Err(Refused(format!(
                "pinned source `{}` changed since the plan was made; run `idprune plan` again",
                file.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Refuses unless `approval` approves the sealed `digest`: `--approve` naming it (a long
/// enough prefix), `--yes`, or `yes` typed at the prompt.
fn check_approval(
    state: &State,
    approval: &Approval,
    digest: &str,
    reapply: bool,
    ui: &Ui,
) -> anyhow::Result<()> {
    match approval {
        Approval::Digest(approval) if digest::approves(approval, digest) => {}
        Approval::Digest(approval)
            if digest::normalize_approval(approval)
                .is_some_and(|hex| hex.len() < digest::MIN_APPROVAL_PREFIX) =>
        {
            return Err(Refused(format!(
                "`--approve {}` is too short to name a plan: use at least {} hex digits of the digest (`--approve {}`)",
                render::clean(approval),
                digest::MIN_APPROVAL_PREFIX,
                &digest[..digest::MIN_APPROVAL_PREFIX + "sha256:".len()]
            ))
            .into());
        }
        Approval::Digest(approval) => {
            return Err(Refused(format!(
                "`--approve {}` does not name this plan's digest {}; review the plan again (`idprune show {}`)",
                render::clean(approval),
                digest,
                crate::text::shell_path(state.path())
            ))
            .into());
        }
        Approval::Yes => {}
        Approval::Prompt => confirm(state, digest, reapply, ui)?,
        Approval::Receipt(path) => {
            // `apply` reads a receipt into its digest before pre-flight.
            anyhow::bail!(
                "receipt `{}` was not read before the pre-flight checks; this is a bug in idprune: pass `--approve` with the receipt's digest",
                path.display()
            )
        }
    }
    Ok(())
}

/// Asks on a terminal; refuses without one.
fn confirm(state: &State, digest: &str, reapply: bool, ui: &Ui) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Refused(format!(
            "not approved: pass --approve {digest} (or --yes) to apply `{}` without a terminal",
            state.path().display()
        ))
        .into());
    }
    ui.prompt(format!(
        "{} {} to space {} (plan {digest})? Type `yes` to go on: ",
        if reapply { "Re-apply" } else { "Apply" },
        plural(
            if reapply {
                let counts = state.counts()?;
                counts.state(ItemState::Done) + counts.state(ItemState::AlreadyAbsent)
            } else {
                state.count_work(false)?
            },
            "deletion",
            "deletions"
        ),
        render::clean(&state.meta()?.space)
    ));
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(Refused("not approved at the prompt; nothing was sent".into()).into());
    }
    Ok(())
}
