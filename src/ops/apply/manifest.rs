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
use crate::ops::plan::{PlanOptions, seal};
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
    let state_path = default_state_path(manifest);
    refuse_tracked(&state_path)?;
    // A state file of the approved plan that was already applied (in part): resume it. A
    // fresh plan would differ by exactly the deletions already made.
    let mut at_hand: Option<State> = None;
    if state_path.exists() {
        let existing = State::open(&state_path)?;
        let meta = existing.meta()?;
        if digest::approves(&approved, &meta.digest) {
            if let Some((path, r)) = &receipt {
                check_receipt(r, path, &existing, manifest)?;
            }
            // A copy fresh from the store is trusted as it is: the approved plan, sealed in
            // the store, is applied (or resumed) with no re-plan. This is how a cancelled or
            // failed merge job is re-run.
            let from_store = opts.held.is_some();
            if existing.has_journal()? || from_store {
                ui.shout(format!(
                    "{} holds the approved plan {}{}: {} it.",
                    match &opts.held {
                        Some(held) => format!("The store `{}`", held.url()),
                        None => format!("State file `{}`", state_path.display()),
                    },
                    meta.digest,
                    if existing.has_journal()? {
                        " and its journal"
                    } else {
                        ""
                    },
                    if existing.has_journal()? {
                        "resuming"
                    } else {
                        "applying"
                    }
                ));
                drop(existing);
                return resume(opts, &state_path, &meta.digest, api, ui).await;
            }
            at_hand = Some(existing);
        } else if existing.has_journal()? {
            return Err(Refused(format!(
                "state file `{}` holds the journal of another plan ({}); keep it as the record of that run: move it away, then run this again",
                state_path.display(),
                meta.digest
            ))
            .into());
        }
    }
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
        return resume(opts, &state_path, &fresh.digest, api, ui).await;
    }
    let fresh_state = State::open(&scratch.0)?;
    let fresh_counts = ReceiptCounts::of(&fresh_state)?;
    let mut msg = format!(
        "the fresh plan of `{}` is {}, not the approved {}: the profiles or the inputs changed since review, so nothing was sent.\n",
        manifest.display(),
        fresh.digest,
        clean(&approved)
    );
    let approved_counts = match (&receipt, &at_hand) {
        (Some((path, r)), _) => Some((format!("receipt `{}`", path.display()), r.counts.clone())),
        (None, Some(s)) => Some((
            format!("state `{}`", state_path.display()),
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
    if let Some(approved_state) = &at_hand {
        msg.push_str(&changed_items(approved_state, &fresh_state)?);
    }
    msg.push_str(&format!(
        "Plan again (`idprune plan {} --receipt`), commit the new receipt and get it reviewed",
        crate::text::shell_path(manifest)
    ));
    drop(fresh_state);
    Err(Refused(msg).into())
}

/// The classic apply of `state`, approved by the fresh plan's `digest`.
async fn resume(
    opts: &ApplyOptions,
    state: &Path,
    digest: &str,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<Applied> {
    let classic = ApplyOptions {
        state: state.to_owned(),
        ..opts.clone()
    };
    super::apply_state(&classic, &Approval::Digest(digest.to_owned()), api, ui).await
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
