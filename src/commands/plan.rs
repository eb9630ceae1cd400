//! `validate` and `plan`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Refused, base_url, client, default_state_path, load_token, relative_to, state_dir};
use crate::cli::{PlanArgs, ValidateArgs};
use crate::exit::Exit;
use crate::manifest::{self, Manifest};
use crate::render::{self, Format, PlanView, Redaction};
use crate::stage::Stage;
use crate::state::lock::{FileLock, Holder};
use crate::state::{self, FORMAT_VERSION, Meta, Sealer, SourceRecord, State};
pub use crate::text::rate_text;

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

/// Distinct lookups resolved per chunk: bounds memory while keeping the resolver's pipeline
/// full (the pause between chunks is one request's latency).
pub const RESOLVE_CHUNK: usize = 50_000;

/// `idprune plan MANIFEST`: stage, resolve, plan, seal, print. Ctrl-C drops the work in
/// progress (the scratch and half-written files go with it) and exits 130.
pub async fn plan(args: &PlanArgs) -> anyhow::Result<Exit> {
    let mut interrupt = super::interrupts()?;
    tokio::select! {
        exit = run_plan(args) => exit,
        _ = interrupt.recv() => {
            eprintln!("\nInterrupted: no state file was written.");
            Ok(Exit::Interrupted)
        }
    }
}

async fn run_plan(args: &PlanArgs) -> anyhow::Result<Exit> {
    let state_path = args
        .out
        .clone()
        .unwrap_or_else(|| default_state_path(&args.manifest));
    let fresh = seal_fresh(args, &state_path).await?;
    let (digest, deletes) = (fresh.digest, fresh.deletes);
    let state = State::open(&state_path)?;
    let redact = default_redaction(args.format, args.redact.is_some(), args.reveal);
    print_plan(&state, args.format, redact, args.redact)?;
    eprintln!("Sealed plan {digest} into `{}`.", state_path.display());
    super::review::warn_if_committable(&state_path);
    if let Some(exit) = super::review::after_plan(args, &state)? {
        return Ok(exit);
    }
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

/// A plan just sealed into its state file.
pub(super) struct Fresh {
    /// Its digest.
    pub digest: String,
    /// How many `delete` items it holds.
    pub deletes: u64,
}

/// Stages the manifest, resolves it and seals the plan into `state_path`; prints progress
/// and warnings on stderr, not the plan. `plan` and `apply MANIFEST` share it.
pub(super) async fn seal_fresh(args: &PlanArgs, state_path: &Path) -> anyhow::Result<Fresh> {
    seal_inputs(
        &PlanInputs {
            manifest: args.manifest.clone(),
            force: args.force,
            ttl: args.ttl,
            pace: args.pace.clone(),
            api: args.api.clone(),
            refresh: args.refresh,
        },
        state_path,
    )
    .await
}

/// What sealing a fresh plan needs from the command line.
pub(super) struct PlanInputs {
    /// The manifest.
    pub manifest: std::path::PathBuf,
    /// Replace a state file holding a journal.
    pub force: bool,
    /// The plan's TTL.
    pub ttl: std::time::Duration,
    /// Pacing.
    pub pace: crate::cli::PaceArgs,
    /// The API.
    pub api: crate::cli::ApiArgs,
    /// Read every lookup (false: `--refresh=false`, only those an entry needs).
    pub refresh: bool,
}

/// [`seal_fresh`] from its inputs.
pub(super) async fn seal_inputs(args: &PlanInputs, state_path: &Path) -> anyhow::Result<Fresh> {
    let state_path = state_path.to_owned();
    let leftovers = state::remove_leftovers(&state_path);
    if leftovers > 0 {
        eprintln!(
            "Removed {leftovers} scratch file(s) a killed plan left beside `{}`.",
            state_path.display()
        );
    }
    check_ttl(args.ttl)?;
    // Held from the first look at the old file to the rename of the new one: no `apply` can
    // start on the old file meanwhile, and none is running on it now.
    let lock = FileLock::take_or_refuse(&state_path, &Holder::this_process(), "planning over it")?;
    guard_existing(&state_path, args.force)?;
    let mut stage = Stage::create(&state_path)?;
    stage.set_refresh(args.refresh);
    let manifest = manifest::load_into(&args.manifest, &mut stage)?;
    for w in &manifest.warnings {
        eprintln!("warning: {}", render::clean(&w.to_string()));
    }
    let base = base_url(&args.api, manifest.region.base_url())?;
    let token = load_token(&args.api)?;
    let api = Arc::new(client(&base, &manifest.space, token, &args.pace)?);

    let total = stage.lookup_count()?;
    eprintln!(
        "Resolving {} profile lookups at {} ...",
        render::thousands(total),
        rate_text(args.pace.rate)
    );
    let progress = Arc::new(super::progress::ProgressOut::new("resolved", total));
    let mut done = 0u64;
    let mut after = None;
    let mut window = crate::window::Window::new(args.pace.concurrency as usize);
    loop {
        let chunk = stage.lookups(after.as_ref(), RESOLVE_CHUNK)?;
        let Some(last) = chunk.last().cloned() else {
            break;
        };
        let (shown, base_count) = (progress.clone(), done);
        let n = chunk.len() as u64;
        let resolved = crate::resolve::resolve_all(
            api.clone(),
            chunk,
            &mut window,
            Some(api.pacer().clone()),
            move |k| shown.update(base_count + k, String::new),
        )
        .await;
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                progress.finish();
                return Err(
                    e.context("resolving the manifest's profiles; no state file was written")
                );
            }
        };
        stage.record(&resolved)?;
        done += n;
        after = Some(last);
    }
    progress.finish();

    let writing = || format!("writing state file `{}`", state_path.display());
    let mut sealer = Sealer::begin_locked(
        lock,
        meta(&manifest, &state_path, &base, args.ttl.as_secs())?,
        &sources(&manifest, &state_path)?,
    )
    .with_context(writing)?;
    let planned = stage.seal(&mut sealer).with_context(writing)?;
    let digest = sealer
        .finish()
        .with_context(|| format!("writing state file `{}`", state_path.display()))?;
    drop(stage);
    Ok(Fresh {
        digest,
        deletes: planned.deletes,
    })
}

/// Refuses a TTL whose end could not be written and read back (past year 9999).
fn check_ttl(ttl: std::time::Duration) -> anyhow::Result<()> {
    let room = state::MAX_UNIX.saturating_sub(state::now_unix());
    if ttl.as_secs() > u64::try_from(room).unwrap_or(0) {
        anyhow::bail!(
            "--ttl `{}` ends after year 9999, which a state file cannot hold; use a shorter TTL (the default is 24h)",
            humantime::format_duration(ttl)
        );
    }
    Ok(())
}

/// Refuses to replace a state file with a journal (without `--force`), one being applied (the
/// sidecar lock is already held, so this is the lock row of another host), or one that is not
/// a sealed idprune file. Saves the old file's log into it, so no `-wal` outlives it.
fn guard_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let existing = State::open(path)?;
    existing.checkpoint()?;
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

/// The sources as the state file records them, paths relative to the state file.
fn sources(manifest: &Manifest, state_path: &Path) -> anyhow::Result<Vec<SourceRecord>> {
    let dir = state_dir(state_path);
    manifest
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
        .collect()
}

/// The plan-level facts the state file seals.
fn meta(
    manifest: &Manifest,
    state_path: &Path,
    base: &reqwest::Url,
    ttl_secs: u64,
) -> anyhow::Result<Meta> {
    Ok(Meta {
        format_version: FORMAT_VERSION,
        digest: String::new(),
        space: manifest.space.clone(),
        region: manifest.region.to_string(),
        api_origin: crate::segment::client::origin(base),
        manifest_path: relative_to(&manifest.path, &state_dir(state_path))?,
        manifest_sha256: manifest.sha256.clone(),
        reason: manifest.reason.clone(),
        created_at: state::now_unix(),
        ttl_secs,
    })
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
/// for (markdown: `full` hides even the masked preview).
pub fn print_plan(
    state: &State,
    format: Format,
    redact: Redaction,
    level: Option<crate::mask::RedactLevel>,
) -> anyhow::Result<()> {
    let view = PlanView::new(state)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Text => render::plan_text(&view, redact, &mut out)?,
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
