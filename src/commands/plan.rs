//! `validate` and `plan`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Refused, base_url, client, default_state_path, load_token, relative_to, state_dir};
use crate::cli::{PlanArgs, ValidateArgs};
use crate::exit::Exit;
use crate::manifest::{self, Manifest};
use crate::plan::{self, Action};
use crate::render::{self, Format, PlanView, Redaction};
use crate::state::{self, FORMAT_VERSION, Meta, Seal, SourceRecord, State};

/// Loads a manifest and prints its warnings to stderr.
fn load(path: &Path) -> anyhow::Result<Manifest> {
    let manifest = manifest::load(path)?;
    for w in &manifest.warnings {
        eprintln!("warning: {}", render::clean(&w.to_string()));
    }
    Ok(manifest)
}

/// `idprune validate MANIFEST`: offline checks only.
pub fn validate(args: &ValidateArgs) -> anyhow::Result<Exit> {
    let m = load(&args.manifest)?;
    let sources: u64 = m.sources.iter().map(|s| s.rows).sum();
    println!(
        "`{}` is valid: {} entries ({} from {} CSV source{} with {} rows) for space {}.",
        args.manifest.display(),
        render::thousands(m.entries.len() as u64),
        render::thousands(
            m.entries.len() as u64
                - m.entries.iter().filter(|e| e.origin.file == m.path).count() as u64
        ),
        m.sources.len(),
        if m.sources.len() == 1 { "" } else { "s" },
        render::thousands(sources),
        render::clean(&m.space),
    );
    Ok(Exit::Success)
}

/// `idprune plan MANIFEST`: resolve, build, seal, print.
pub async fn plan(args: &PlanArgs) -> anyhow::Result<Exit> {
    let manifest = load(&args.manifest)?;
    let state_path = args
        .out
        .clone()
        .unwrap_or_else(|| default_state_path(&args.manifest));
    guard_existing(&state_path, args.force)?;
    let base = base_url(&args.api, manifest.region.base_url())?;
    let token = load_token(&args.api)?;
    let api = Arc::new(client(&base, &manifest.space, token, &args.pace)?);

    let lookups: Vec<_> = manifest
        .entries
        .iter()
        .map(plan::lookup_of)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let total = lookups.len() as u64;
    eprintln!(
        "Resolving {} profile lookups at up to {}/s ...",
        render::thousands(total),
        args.pace.rate
    );
    let progress = std::sync::Arc::new(super::progress::ProgressOut::new("resolved", total));
    let shown = progress.clone();
    let resolved =
        crate::resolve::resolve_all(api, lookups, args.pace.concurrency as usize, move |n| {
            shown.update(n, String::new)
        })
        .await;
    progress.finish();
    let resolved =
        resolved.context("resolving the manifest's profiles; no state file was written")?;
    let built = plan::build(&manifest.entries, &resolved);
    let digest = seal(&manifest, &state_path, &base, args.ttl.as_secs(), &built)?;
    let deletes = built
        .items
        .iter()
        .filter(|i| i.action == Action::Delete)
        .count();

    let state = State::open(&state_path)?;
    let redact = default_redaction(args.format, args.redact, args.reveal);
    print_plan(&state, args.format, redact)?;
    eprintln!("Sealed plan {digest} into `{}`.", state_path.display());
    if deletes == 0 {
        eprintln!("No changes: nothing to delete.");
    } else {
        eprintln!(
            "Review it, then: idprune apply {} --approve {digest}",
            state_path.display()
        );
    }
    Ok(if args.detailed_exitcode && deletes > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// Refuses to replace a state file with a journal (without `--force`) or one being applied.
fn guard_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let existing = State::open(path)?;
    if let Some(holder) = existing.lock_holder()?.filter(|h| !h.is_stale()) {
        return Err(Refused(format!(
            "state file `{}` is locked by {holder}; wait for that apply to end",
            path.display()
        ))
        .into());
    }
    if existing.has_journal()? && !force {
        anyhow::bail!(
            "state file `{}` holds an apply journal; keep it as the record of that run and write elsewhere with -o, or pass --force to replace it",
            path.display()
        );
    }
    Ok(())
}

fn seal(
    manifest: &Manifest,
    state_path: &Path,
    base: &reqwest::Url,
    ttl_secs: u64,
    built: &plan::Plan,
) -> anyhow::Result<String> {
    let dir = state_dir(state_path);
    let sources = manifest
        .sources
        .iter()
        .map(|s| {
            Ok(SourceRecord {
                written: s.written.clone(),
                path: relative_to(&s.path, &dir)?,
                sha256: s.sha256.clone(),
                pinned: s.pinned,
                rows: s.rows,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let meta = Meta {
        format_version: FORMAT_VERSION,
        digest: String::new(),
        space: manifest.space.clone(),
        region: manifest.region.to_string(),
        api_origin: crate::segment::client::origin(base),
        manifest_path: relative_to(&manifest.path, &dir)?,
        manifest_sha256: manifest.sha256.clone(),
        reason: manifest.reason.clone(),
        created_at: state::now_unix(),
        ttl_secs,
    };
    state::create(
        state_path,
        &Seal {
            meta,
            sources,
            plan: built,
        },
    )
}

/// Redaction by format: markdown and JSON hide values unless `--reveal`; text shows them
/// unless `--redact`.
pub fn default_redaction(format: Format, redact: bool, reveal: bool) -> Redaction {
    Redaction(match format {
        Format::Text => redact,
        Format::Markdown | Format::Json => !reveal,
    })
}

/// Reads the plan view from a state file.
pub fn plan_view(state: &State) -> anyhow::Result<PlanView> {
    let mut items = Vec::new();
    state.for_each_item(|i| {
        items.push(i);
        Ok(())
    })?;
    Ok(PlanView {
        meta: state.meta()?,
        counts: state.counts()?,
        items,
        profiles: state.profiles()?,
        warnings: state.warnings()?,
    })
}

/// Prints a state file's plan in `format` to stdout.
pub fn print_plan(state: &State, format: Format, redact: Redaction) -> anyhow::Result<()> {
    let view = plan_view(state)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Text => render::plan_text(&view, redact, &mut out)?,
        Format::Markdown => render::plan_markdown(&view, redact, &mut out)?,
        Format::Json => render::plan_json(&view, redact, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
