//! The pull-request checks that plan and apply share: a state file git tracks or would
//! commit, and a receipt that no longer names the sealed plan or has expired.

use std::path::Path;

use super::{Refused, relative_to, state_dir};
use crate::receipt::{Receipt, side_by_side};
use crate::render::clean;
use crate::state::State;
use crate::ui::Ui;

/// Warns when `state` sits in a git work tree and git would not ignore it: the state file
/// holds the identifiers and must never be committed. Silent outside a work tree or without git.
pub fn warn_if_committable(state: &Path, ui: &Ui) {
    if crate::git::would_commit(state) {
        ui.shout(format!(
            "warning: state file `{}` is inside a git work tree and git would not ignore it; it holds personal data and must never be committed: add `*.state.db*` to a .gitignore (plans/.gitignore does this)",
            state.display()
        ));
    }
}

/// Refuses (exit 4) a state file path that git tracks, before anything is read or sent: a
/// committed state file holds personal data, and it cannot be trusted, since anyone who can
/// open a pull request can write one (the merge job would resume a forged journal).
pub fn refuse_tracked(state: &Path) -> anyhow::Result<()> {
    if crate::git::tracked(state) {
        return Err(Refused(format!(
            "state file `{}` is tracked by git; a committed state file holds personal data and cannot be trusted (anyone with a pull request can write one): remove it from git (`git rm --cached {}`), add `*.state.db*` to a .gitignore, and keep state in a store (`--state s3://...`) or an untracked file",
            state.display(),
            crate::text::shell_quote(&state.display().to_string())
        ))
        .into());
    }
    Ok(())
}

/// Refuses (exit 4) a receipt that does not name the sealed plan in `state` field by field
/// ([`Receipt::mismatches`]): a stale receipt, or one edited by hand. `manifest` is the
/// plan's manifest, named in the receipt relative to the receipt's folder.
pub fn check_receipt(
    receipt: &Receipt,
    path: &Path,
    state: &State,
    manifest: &Path,
) -> anyhow::Result<()> {
    let sealed = Receipt::of(state, &relative_to(manifest, &state_dir(path))?)?;
    let why = receipt.mismatches(&sealed);
    if !why.is_empty() {
        return Err(Refused(format!(
            "receipt `{}` no longer matches the plan of `{}`:\n  - {}\n{}the profiles or the inputs changed since the receipt was written, or the receipt was edited; run `idprune plan {} --receipt`, commit the new receipt and get it reviewed again",
            path.display(),
            manifest.display(),
            why.join("\n  - "),
            side_by_side("receipt", &receipt.counts, &sealed.counts),
            crate::text::shell_path(manifest)
        ))
        .into());
    }
    Ok(())
}

/// Refuses a receipt past its expiry: the review it records is as old as its plan's TTL.
pub fn refuse_expired(receipt: &Receipt, path: &Path) -> anyhow::Result<()> {
    if receipt.expired() {
        return Err(Refused(format!(
            "receipt `{}` expired at {}; profiles may have changed since that review: run `idprune plan MANIFEST --receipt`, commit the new receipt and get it reviewed again",
            path.display(),
            clean(&receipt.expires_at)
        ))
        .into());
    }
    Ok(())
}
