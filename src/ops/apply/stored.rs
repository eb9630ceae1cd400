//! `apply` of a state that lives in a store: the lease is held for the whole run, the working
//! copy is replaced by the store's latest state before anything is read, and the journal goes
//! back to the store on every way out (finished, failed, refused, stopped by a budget, a space
//! refusal or a signal), besides the checkpoints during the run (`run_locked`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ApplyOptions, apply as apply_here};
use crate::ops::stored::{PrivateCopy, StoreAt};
use crate::ops::{Api, checks, default_state_path, sniff};
use crate::outcome::Applied;
use crate::store::Pulled;
use crate::ui::Ui;

/// Runs [`apply_here`] on a working copy of `store`'s state under the store's lease.
pub(super) async fn apply(
    opts: &ApplyOptions,
    store: &StoreAt,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<Applied> {
    let named = !opts.state.as_os_str().is_empty();
    let manifest = named && opts.state.exists() && !sniff::is_sqlite(&opts.state)?;
    let (working, scratch) = if manifest {
        (default_state_path(&opts.state), None)
    } else if named {
        (opts.state.clone(), None)
    } else {
        let scratch = PrivateCopy::for_store(store)?;
        (scratch.file().to_owned(), Some(scratch))
    };
    checks::refuse_tracked(&working)?;
    let held = Arc::new(store.hold(&working, scratch, "apply").await?);
    let run = async {
        match held.pull().await? {
            Pulled::Fetched { .. } => {
                ui.note(format!(
                    "Fetched the state from `{}` into the working copy `{}`.",
                    store.url(),
                    working.display()
                ));
            }
            Pulled::Absent if manifest => set_aside(&working, ui)?,
            Pulled::Absent if working.exists() => {
                ui.note(format!(
                    "`{}` holds no state yet: this run starts it from `{}`.",
                    store.url(),
                    working.display()
                ));
            }
            Pulled::Absent => return Err(store.absent()),
        }
        let inner = ApplyOptions {
            state: if manifest {
                opts.state.clone()
            } else {
                working.clone()
            },
            held: Some(Arc::clone(&held)),
            ..opts.clone()
        };
        Box::pin(apply_here(&inner, api, ui)).await
    }
    .await;
    // Every way out pushes what the working copy now holds. An apply refused before it
    // wrote anything pushes the store's own state back unchanged.
    let pushed = if working.exists() {
        held.finish().await.map(|_| ())
    } else {
        held.release().await
    };
    let applied = run?;
    pushed?;
    Ok(applied)
}

/// With a store and no state in it yet, `apply MANIFEST` never trusts a local state file at
/// the default path (a leftover, or one a pull request placed there): it is moved aside,
/// kept, and the manifest is planned afresh.
fn set_aside(working: &Path, ui: &Ui) -> anyhow::Result<()> {
    if !working.exists() {
        return Ok(());
    }
    let suffix = format!(".set-aside-{}", crate::state::now_unix());
    let with = |path: &Path, tail: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(tail);
        PathBuf::from(p)
    };
    let aside = with(working, &suffix);
    for side in ["", "-wal", "-shm"] {
        let from = with(working, side);
        if side.is_empty() || from.exists() {
            std::fs::rename(&from, with(&aside, side)).map_err(|e| {
                anyhow::anyhow!(
                    "moving the local state file `{}` aside (the store holds no state, and only the store is trusted): {e}",
                    from.display()
                )
            })?;
        }
    }
    ui.warn(format!(
        "the store holds no state yet, and only the store is trusted: moved the local state file `{}` aside to `{}`",
        working.display(),
        aside.display()
    ));
    Ok(())
}
