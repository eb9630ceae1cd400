//! The pull-request flow at the command line: the receipt (`plan --receipt`,
//! `plan --check-receipt`), the loud suspicious plan (`plan --allow-unresolved`), the warning
//! about a state file git would commit, and `apply MANIFEST --approve DIGEST | --receipt FILE`,
//! which plans afresh and applies only when the fresh digest is the approved one.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::plan::{PlanInputs, seal_inputs};
use super::{Api, Refused, Ui, default_state_path, relative_to, state_dir};
use crate::cli::{ApplyArgs, PlanArgs};
use crate::digest;
use crate::exit::Exit;
use crate::mask::{Masker, RedactLevel};
use crate::receipt::{Receipt, ReceiptCounts, Unresolved, receipt_path, side_by_side};
use crate::render::{clean, thousands};
use crate::state::lock::{FileLock, Holder};
use crate::state::{self, State};

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// Changed items listed at most when an approved plan and a fresh one differ.
const CHANGED_ITEMS_SHOWN: usize = 20;

/// Warns when `state` sits in a git work tree and git would not ignore it: the state file
/// holds the identifiers and must never be committed. Silent outside a work tree or without git.
pub fn warn_if_committable(state: &Path) {
    if crate::git::would_commit(state) {
        eprintln!(
            "warning: state file `{}` is inside a git work tree and git would not ignore it; it holds personal data and must never be committed: add `*.state.db*` to a .gitignore (plans/.gitignore does this)",
            state.display()
        );
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
            manifest.display()
        ))
        .into());
    }
    Ok(())
}

/// What `plan` does after sealing and printing: the suspicious-plan check, then writing or
/// checking the receipt. `Some(exit)` ends the command with that exit.
pub fn after_plan(args: &PlanArgs, state: &State) -> anyhow::Result<Option<Exit>> {
    let unresolved = Unresolved::of(state)?;
    if unresolved.suspicious() {
        eprintln!(
            "\n!!! {} of {} profile lookups found no profile. {}",
            thousands(unresolved.unresolved),
            thousands(unresolved.lookups),
            unresolved.cause()
        );
        if !args.allow_unresolved {
            eprintln!(
                "!!! Refusing to call this plan a success (exit 1): fix that, or pass --allow-unresolved if these lookups really have no profile.\n"
            );
            return Ok(Some(Exit::Error));
        }
        eprintln!("!!! Accepted with --allow-unresolved.\n");
    }
    if args.receipt {
        let path = receipt_path(&args.manifest);
        let receipt = Receipt::of(state, &relative_to(&args.manifest, &state_dir(&path))?)?;
        receipt.write(&path)?;
        eprintln!(
            "Wrote receipt `{}` (no identifier values): commit it with the manifest for review.",
            path.display()
        );
    }
    if let Some(file) = &args.check_receipt {
        let path = file.clone().unwrap_or_else(|| receipt_path(&args.manifest));
        let committed = Receipt::read(&path)?;
        refuse_expired(&committed, &path)?;
        check_receipt(&committed, &path, state, &args.manifest)?;
        eprintln!(
            "Receipt `{}` matches the fresh plan {}.",
            path.display(),
            state.meta()?.digest
        );
    }
    Ok(None)
}

/// Refuses a receipt past its expiry: the review it records is as old as its plan's TTL.
fn refuse_expired(receipt: &Receipt, path: &Path) -> anyhow::Result<()> {
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

/// True when `path` starts with the SQLite header (a state file), false for anything else
/// (a manifest).
pub fn is_state_file(path: &Path) -> anyhow::Result<bool> {
    let mut file = crate::bounded::open_regular(path, "file")?;
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
        }
    }
    Ok(read == head.len() && &head == SQLITE_HEADER)
}

/// Removes a scratch state file and its SQLite side files when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// `idprune apply MANIFEST --approve DIGEST | --receipt FILE`.
pub async fn apply_manifest(args: &ApplyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let manifest = &args.state;
    let receipt = match &args.receipt {
        Some(path) => {
            let r = Receipt::read(path)?;
            refuse_expired(&r, path)?;
            Some((path.clone(), r))
        }
        None => None,
    };
    let approved = match (&args.approve, &receipt) {
        (Some(a), _) => a.clone(),
        (None, Some((_, r))) => r.digest.clone(),
        (None, None) => {
            return Err(Refused(format!(
                "`{}` is a manifest, not a state file: run `idprune plan {}` first and apply the state file it writes, or apply the manifest with the approved plan named (`--approve DIGEST`, or `--receipt FILE` for the committed receipt), which plans afresh",
                manifest.display(),
                manifest.display()
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
            if existing.has_journal()? {
                eprintln!(
                    "State file `{}` holds the approved plan {} and its journal: resuming it.",
                    state_path.display(),
                    meta.digest
                );
                drop(existing);
                return resume(args, &state_path, &meta.digest, api, ui).await;
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
    let scratch = Scratch(PathBuf::from(scratch_path));
    let inputs = PlanInputs {
        manifest: manifest.clone(),
        force: true,
        ttl: std::time::Duration::from_secs(7 * 24 * 3600),
        api: api.clone(),
        redact_warnings: false,
        // A fresh plan reads every profile; one approved with --refresh=false has another
        // digest, and is refused like any other change.
        refresh: true,
        sample: None,
    };
    eprintln!(
        "Planning `{}` afresh; it is applied only if its digest is the approved one.",
        manifest.display()
    );
    let fresh = seal_inputs(&inputs, &scratch.0, ui).await.map_err(|e| {
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
        warn_if_committable(&state_path);
        eprintln!(
            "The fresh plan is the approved one ({}); applying `{}`.",
            fresh.digest,
            state_path.display()
        );
        return resume(args, &state_path, &fresh.digest, api, ui).await;
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
        manifest.display()
    ));
    drop(fresh_state);
    Err(Refused(msg).into())
}

/// The classic apply of `state`, approved by `digest`.
async fn resume(
    args: &ApplyArgs,
    state: &Path,
    digest: &str,
    api: &Api,
    ui: &Ui,
) -> anyhow::Result<Exit> {
    let mut classic = args.clone();
    classic.state = state.to_owned();
    classic.approve = Some(digest.to_owned());
    classic.receipt = None;
    super::apply::apply_state(&classic, api, ui).await
}

/// The items that differ between an approved state file and a fresh one, by seq, redacted.
fn changed_items(approved: &State, fresh: &State) -> anyhow::Result<String> {
    let masker = Masker::for_state(approved, Some(RedactLevel::Preview))?;
    let conn = approved.conn();
    let fresh_path = fresh
        .path()
        .to_str()
        .with_context(|| format!("path `{}` is not valid UTF-8", fresh.path().display()))?;
    conn.execute("ATTACH DATABASE ?1 AS fresh", [fresh_path])?;
    let result = (|| -> anyhow::Result<String> {
        const CHANGED: &str = "
            SELECT a.seq, a.id_type, a.id_value, a.action, f.id_type, f.id_value, f.action
              FROM main.items a LEFT JOIN fresh.items f ON f.seq = a.seq
             WHERE f.seq IS NULL OR a.id_type != f.id_type OR a.id_value != f.id_value
                OR a.action != f.action OR a.user_id IS NOT f.user_id
            UNION ALL
            SELECT f.seq, NULL, NULL, NULL, f.id_type, f.id_value, f.action
              FROM fresh.items f WHERE f.seq NOT IN (SELECT seq FROM main.items)
            ORDER BY 1";
        let mut stmt = conn.prepare(CHANGED)?;
        let mut rows = stmt.query([])?;
        let mut lines = Vec::new();
        let mut total = 0u64;
        while let Some(r) = rows.next()? {
            total += 1;
            if lines.len() >= CHANGED_ITEMS_SHOWN {
                continue;
            }
            let side = |kind: Option<String>, id: Option<String>, action: Option<String>| match (
                kind, id, action,
            ) {
                (Some(k), Some(v), Some(a)) => {
                    format!("{a} {}:{}", clean(&k), clean(&masker.value(&k, &v)))
                }
                _ => "(none)".to_owned(),
            };
            lines.push(format!(
                "  #{}: {} → {}",
                r.get::<_, i64>(0)?,
                side(r.get(1)?, r.get(2)?, r.get(3)?),
                side(r.get(4)?, r.get(5)?, r.get(6)?)
            ));
        }
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
    })();
    conn.execute("DETACH DATABASE fresh", [])?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_sqlite_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = dir.path().join("m.yaml");
        std::fs::write(&yaml, "version: 1\n").expect("write");
        assert!(!is_state_file(&yaml).expect("sniff"));
        let db = dir.path().join("x.db");
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("db");
        assert!(is_state_file(&db).expect("sniff"));
        let short = dir.path().join("short");
        std::fs::write(&short, "SQLite").expect("write");
        assert!(!is_state_file(&short).expect("sniff"));
    }
}
