//! `apply MANIFEST --approve DIGEST | --receipt FILE`: the manifest is planned afresh beside
//! its default state file, and applied only when the fresh digest is the approved one; a
//! state file that already holds the approved plan and its journal is resumed instead. When
//! the digests differ, nothing is sent and the refusal shows the counts side by side and the
//! changed items, masked.

use std::path::{Path, PathBuf};

use super::{ApplyOptions, Approval};
use crate::digest;
use crate::mask::{Masker, RedactLevel};
use crate::ops::api::Api;
use crate::ops::checks::{check_receipt, refuse_expired, refuse_tracked, warn_if_committable};
use crate::ops::plan::{PlanOptions, Sealed, seal};
use crate::ops::{Refused, default_state_path};
use crate::outcome::Applied;
use crate::receipt::{Receipt, ReceiptCounts, side_by_side};
use crate::state::lock::{FileLock, Holder};
use crate::state::{self, State};
use crate::text::{clean, thousands};
use crate::ui::Ui;

/// Changed items listed at most when an approved plan and a fresh one differ.
const CHANGED_ITEMS_SHOWN: usize = 20;

/// The fresh plan's file beside the state file, removed with its SQLite side files when
/// dropped (unless it replaced the state file).
struct FreshFile(PathBuf);

impl Drop for FreshFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// `apply MANIFEST --approve DIGEST | --receipt FILE`: plans afresh and applies only when
/// the fresh digest is the approved one.
pub async fn apply_manifest(opts: &ApplyOptions, api: &Api, ui: &Ui) -> anyhow::Result<Applied> {
    let manifest = &opts.state;
    let (approved, receipt) = approved_digest(opts)?;
    // The one approval this run goes by, resolved once: pre-flight checks it against the
    // digest of the state file it sends from, whichever plan is chosen below.
    let approval = Approval::Digest(approved.clone());
    let state_path = default_state_path(manifest);
    refuse_tracked(&state_path)?;
    let at_hand = match existing_state(opts, &state_path, &approved, receipt.as_ref(), ui)? {
        Existing::Resume => return resume(opts, &state_path, &approval, api, ui).await,
        Existing::AtHand(at_hand) => at_hand,
    };
    let (scratch, fresh) = plan_afresh(opts, &state_path, api, ui).await?;
    if digest::approves(&approved, &fresh.digest) {
        if let Some((path, r)) = &receipt {
            check_receipt(r, path, &State::open(&scratch.0)?, manifest)?;
        }
        drop(at_hand);
        {
            // The same discipline as `plan`: no apply may run on the old file while it is
            // replaced, and none of its side files may follow the new one.
            let _lock = FileLock::take_or_refuse(
                &state_path,
                &Holder::this_process(),
                "replacing it with the fresh plan",
            )?;
            state::replace_file(&scratch.0, &state_path)?;
        }
        warn_if_committable(&state_path, ui);
        ui.shout(format!(
            "The fresh plan is the approved one ({}); applying `{}`.",
            fresh.digest,
            state_path.display()
        ));
        return resume(opts, &state_path, &approval, api, ui).await;
    }
    let approved_plan = Approved {
        digest: &approved,
        receipt: receipt.as_ref(),
        state: at_hand.as_deref(),
        state_path: &state_path,
    };
    Err(not_approved(manifest, &approved_plan, &fresh.digest, &scratch.0)?.into())
}

/// The approved digest (`--approve`, or the receipt's) and the receipt it came from, read
/// and checked unexpired. Refused when neither names an approved plan: a manifest alone is
/// never applied.
fn approved_digest(opts: &ApplyOptions) -> anyhow::Result<(String, Option<(PathBuf, Receipt)>)> {
    let manifest = &opts.state;
    let receipt = match &opts.approval {
        Approval::Receipt(path) => {
            let r = Receipt::read(path)?;
            refuse_expired(&r, path)?;
            Some((path.clone(), r))
        }
        _ => None,
    };
    let approved = match (&opts.approval, &receipt) {
        (Approval::Digest(a), _) => a.clone(),
        (_, Some((_, r))) => r.digest.clone(),
        (_, None) => {
            return Err(Refused(format!(
                "`{}` is a manifest, not a state file: run `idprune plan {}` first and apply the state file it writes, or apply the manifest with the approved plan named (`--approve DIGEST`, or `--receipt FILE` for the committed receipt), which plans afresh",
                manifest.display(),
                crate::text::shell_path(manifest)
            ))
            .into());
        }
    };
    Ok((approved, receipt))
}

/// What the default state file beside the manifest holds.
enum Existing {
    /// The approved plan with its journal (or fresh from the store): resume it, no re-plan.
    Resume,
    /// The approved plan, never applied (kept to compare with a fresh plan that differs), or
    /// nothing of use.
    AtHand(Option<Box<State>>),
}

/// Looks at the state file at `state_path`: a state file of the approved plan that was
/// already applied (in part) is resumed, since a fresh plan would differ by exactly the
/// deletions already made; another plan's journal is refused.
fn existing_state(
    opts: &ApplyOptions,
    state_path: &Path,
    approved: &str,
    receipt: Option<&(PathBuf, Receipt)>,
    ui: &Ui,
) -> anyhow::Result<Existing> {
    if !state_path.exists() {
        return Ok(Existing::AtHand(None));
    }
    let existing = State::open(state_path)?;
    let meta = existing.meta()?;
    let journal = existing.has_journal()?;
    if !digest::approves(approved, &meta.digest) {
        if journal {
            return Err(Refused(format!(
                "state file `{}` holds the journal of another plan ({}); keep it as the record of that run: move it away, then run this again",
                state_path.display(),
                meta.digest
            ))
            .into());
        }
        return Ok(Existing::AtHand(None));
    }
    if let Some((path, r)) = receipt {
        check_receipt(r, path, &existing, &opts.state)?;
    }
    // A copy fresh from the store is trusted as it is: the approved plan, sealed in the
    // store, is applied (or resumed) with no re-plan. This is how a cancelled or failed
    // merge job is re-run.
    let from_store = opts.held.is_some();
    if !(journal || from_store) {
        return Ok(Existing::AtHand(Some(Box::new(existing))));
    }
    ui.shout(format!(
        "{} holds the approved plan {}{}: {} it.",
        match &opts.held {
            Some(held) => format!("The store `{}`", held.url()),
            None => format!("State file `{}`", state_path.display()),
        },
        meta.digest,
        if journal { " and its journal" } else { "" },
        if journal { "resuming" } else { "applying" }
    ));
    Ok(Existing::Resume)
}

/// Plans the manifest afresh into a file beside `state_path`, removed when the returned
/// guard drops (unless it replaced the state file).
async fn plan_afresh(
    opts: &ApplyOptions,
    state_path: &Path,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<(FreshFile, Sealed)> {
    let manifest = &opts.state;
    let mut scratch_path = state_path.as_os_str().to_owned();
    scratch_path.push(format!(".tmp-{}", std::process::id()));
    let scratch = FreshFile(PathBuf::from(scratch_path));
    let inputs = PlanOptions {
        manifest: manifest.clone(),
        state: scratch.0.clone(),
        force: true,
        ttl: std::time::Duration::from_secs(7 * 24 * 3600),
        api: api.clone(),
        redact_warnings: false,
        // A fresh plan reads every profile; one approved with --refresh=false has another
        // digest, and is refused like any other change.
        refresh: true,
        sample: None,
        policy: opts.policy.clone(),
    };
    ui.shout(format!(
        "Planning `{}` afresh; it is applied only if its digest is the approved one.",
        manifest.display()
    ));
    let fresh = seal(&inputs, ui).await.map_err(|e| {
        if e.downcast_ref::<crate::manifest::ManifestError>().is_some() {
            e.context(format!(
                "`{}` is not a state file (no SQLite header), so apply read it as a manifest",
                manifest.display()
            ))
        } else {
            e
        }
    })?;
    Ok((scratch, fresh))
}

/// The plan a reviewer approved, as far as it is at hand.
struct Approved<'a> {
    /// Its digest (or a prefix of it), as given.
    digest: &'a str,
    /// The receipt it came from, if any.
    receipt: Option<&'a (PathBuf, Receipt)>,
    /// Its state file, when the default one holds it.
    state: Option<&'a State>,
    /// Where that state file is.
    state_path: &'a Path,
}

/// The refusal when the fresh plan (`fresh_digest`, sealed in `fresh_path`) is not the
/// approved one: the counts side by side and the changed items, masked, then what to do.
fn not_approved(
    manifest: &Path,
    approved: &Approved<'_>,
    fresh_digest: &str,
    fresh_path: &Path,
) -> anyhow::Result<Refused> {
    let fresh_state = State::open(fresh_path)?;
    let fresh_counts = ReceiptCounts::of(&fresh_state)?;
    let mut msg = format!(
        "the fresh plan of `{}` is {}, not the approved {}: the profiles or the inputs changed since review, so nothing was sent.\n",
        manifest.display(),
        fresh_digest,
        clean(approved.digest)
    );
    let approved_counts = match (approved.receipt, approved.state) {
        (Some((path, r)), _) => Some((format!("receipt `{}`", path.display()), r.counts.clone())),
        (None, Some(s)) => Some((
            format!("state `{}`", approved.state_path.display()),
            ReceiptCounts::of(s)?,
        )),
        (None, None) => None,
    };
    match approved_counts {
        Some((label, counts)) => {
            msg.push_str(&format!("Counts, approved ({label}) and fresh:\n"));
            msg.push_str(&side_by_side("approved", &counts, &fresh_counts));
        }
        None => {
            msg.push_str("Fresh counts (no receipt or approved state file at hand to compare):\n");
            msg.push_str(&side_by_side(
                "approved: ?",
                &ReceiptCounts::default(),
                &fresh_counts,
            ));
        }
    }
    if let Some(approved_state) = approved.state {
        msg.push_str(&changed_items(approved_state, &fresh_state)?);
    }
    msg.push_str(&format!(
        "Plan again (`idprune plan {} --receipt`), commit the new receipt and get it reviewed",
        crate::text::shell_path(manifest)
    ));
    Ok(Refused(msg))
}

/// The classic apply of `state`, the plan chosen as the approved one, by the same
/// `approval`: its pre-flight is where the approval is checked against the state's digest.
async fn resume(
    opts: &ApplyOptions,
    state: &Path,
    approval: &Approval,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<Applied> {
    let classic = ApplyOptions {
        state: state.to_owned(),
        ..opts.clone()
    };
    super::apply_state(&classic, approval, api, ui).await
}

/// The items that differ between an approved state file and a fresh one, by seq, masked.
fn changed_items(approved: &State, fresh: &State) -> anyhow::Result<String> {
    let masker = Masker::for_state(approved, Some(RedactLevel::Preview))?;
    let side = |s: Option<(String, String, String)>| match s {
        Some((k, v, a)) => format!("{a} {}:{}", clean(&k), clean(&masker.value(&k, &v))),
        None => "(none)".to_owned(),
    };
    let mut lines = Vec::new();
    let total = approved.for_each_changed_item(fresh, |seq, before, after| {
        if lines.len() < CHANGED_ITEMS_SHOWN {
            lines.push(format!("  #{seq}: {} → {}", side(before), side(after)));
        }
    })?;
    if total == 0 {
        return Ok(String::new());
    }
    let mut out = format!(
        "Items that changed ({} of them; approved → fresh, values masked):\n{}\n",
        thousands(total),
        lines.join("\n")
    );
    if total as usize > lines.len() {
        out.push_str(&format!(
            "  … and {} more\n",
            thousands(total - lines.len() as u64)
        ));
    }
    Ok(out)
}
