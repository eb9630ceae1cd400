//! `validate` and `plan`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Api, Refused, Ui, default_state_path, relative_to, sniff, state_dir};
use crate::cli::{OutputFormat, PlanArgs, ValidateArgs};
use crate::exit::Exit;
use crate::manifest::{self, Manifest};
use crate::render::{self, Format, PlanView, Redaction};
use crate::scratch::Scratch;
use crate::state::lock::{FileLock, Holder};
use crate::state::{self, FORMAT_VERSION, Meta, Sealer, SourceRecord, State};
pub use crate::text::rate_text;

/// `idprune validate MANIFEST`: offline checks only.
pub fn validate(args: &ValidateArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_manifest(&args.manifest, "validate")?;
    if args.format == OutputFormat::Json {
        return validate_json(args, ui);
    }
    let m = manifest::load(&args.manifest)?;
    for w in &m.warnings {
        ui.warn(render::clean(&w.to_string()));
    }
    let sources: u64 = m.sources.iter().map(|s| s.rows).sum();
    let entries = m.entries.len() as u64;
    let inline = m.entries.iter().filter(|e| e.origin.file == m.path).count() as u64;
    ui.say(format!(
        "`{}` is valid: {} ({} from {} with {}) for space {}.",
        args.manifest.display(),
        render_count(entries, "entry", "entries"),
        render::thousands(entries - inline),
        render_count(m.sources.len() as u64, "CSV source", "CSV sources"),
        render_count(sources, "row", "rows"),
        render::clean(&m.space),
    ))?;
    Ok(Exit::Success)
}

/// `1 entry`, `2 entries`, `1,204 entries`.
pub fn render_count(n: u64, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        render::thousands(n),
        if n == 1 { one } else { many }
    )
}

/// The version of `validate --format json`'s object (minor: additive; major: breaking).
pub const VALIDATE_JSON_VERSION: &str = "1.0";

/// `validate --format json`: one object with every problem and warning, located. The exit code
/// is the text form's (1 when invalid).
fn validate_json(args: &ValidateArgs, ui: &Ui) -> anyhow::Result<Exit> {
    use serde_json::json;
    let diag = |d: &manifest::Diagnostic| {
        json!({
            "file": d.location.file.display().to_string(),
            "line": d.location.line,
            "column": d.location.column,
            "message": d.message,
        })
    };
    let (body, exit) = match manifest::load(&args.manifest) {
        Ok(m) => {
            let sources: u64 = m.sources.iter().map(|s| s.rows).sum();
            (
                json!({
                    "format_version": VALIDATE_JSON_VERSION,
                    "manifest": args.manifest.display().to_string(),
                    "valid": true,
                    "space": m.space,
                    "region": m.region.as_str(),
                    "entries": m.entries.len(),
                    "sources": m.sources.len(),
                    "source_rows": sources,
                    "problems": [],
                    "warnings": m.warnings.iter().map(diag).collect::<Vec<_>>(),
                }),
                Exit::Success,
            )
        }
        Err(manifest::ManifestError::Invalid(problems)) => (
            json!({
                "format_version": VALIDATE_JSON_VERSION,
                "manifest": args.manifest.display().to_string(),
                "valid": false,
                "problems": problems.iter().map(diag).collect::<Vec<_>>(),
                "warnings": [],
            }),
            Exit::Error,
        ),
        Err(e) => return Err(e.into()),
    };
    ui.out(body)?;
    Ok(exit)
}

/// Distinct lookups resolved per chunk: bounds memory while keeping the resolver's pipeline
/// full (the pause between chunks is one request's latency).
pub const RESOLVE_CHUNK: usize = 50_000;

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

/// Refuses an output path whose folder does not exist, naming the folder.
fn check_out_dir(state_path: &Path) -> anyhow::Result<()> {
    let dir = state_dir(state_path);
    if !dir.is_dir() {
        anyhow::bail!(
            "folder `{}` does not exist, so the state file `{}` cannot be written there; create it (`mkdir -p {}`) or choose another -o",
            dir.display(),
            state_path.display(),
            dir.display()
        );
    }
    Ok(())
}

async fn run_plan(args: &PlanArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_manifest(&args.manifest, "plan")?;
    let state_path = args
        .out
        .clone()
        .unwrap_or_else(|| default_state_path(&args.manifest));
    super::review::refuse_tracked(&state_path)?;
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
    let fresh = seal_fresh(args, &state_path, api, redact.0, ui).await?;
    let (digest, deletes, sample) = (fresh.digest, fresh.deletes, fresh.sample);
    let state = State::open(&state_path)?;
    if !ui.quiet || args.format == Format::Json {
        print_plan(&state, args.format, redact, args.values.redact, ui)?;
    }
    ui.note(format!(
        "Sealed plan {digest} into `{}`.",
        state_path.display()
    ));
    super::review::warn_if_committable(&state_path);
    if let Some(sample) = sample.filter(|s| s.over() && !s.allowed) {
        eprintln!(
            "\n!!! {}\n!!! Refusing to call this plan a success (exit 1): the warehouse data is older than the space. Export it afresh and plan again, plan with --refresh=true, or pass --allow-drift to accept it (apply still deletes only the sealed user_id and identifier pairs).",
            sample.line()
        );
        return Ok(Exit::Error);
    }
    if let Some(exit) = super::review::after_plan(args, &state)? {
        return Ok(exit);
    }
    if deletes == 0 {
        ui.note("No changes: nothing to delete.");
    } else {
        ui.note(format!(
            "Review it, then: idprune apply {} --approve {digest}",
            state_path.display()
        ));
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
    /// The sampled check's result, when `--sample` asked for one.
    pub sample: Option<crate::sample::Sample>,
}

/// Loads the manifest into the scratch file, resolves it and seals the plan into `state_path`; prints progress
/// and warnings on stderr, not the plan. `plan` and `apply MANIFEST` share it.
pub(super) async fn seal_fresh(
    args: &PlanArgs,
    state_path: &Path,
    api: &Api,
    redact_warnings: bool,
    ui: &Ui,
) -> anyhow::Result<Fresh> {
    seal_inputs(
        &PlanInputs {
            manifest: args.manifest.clone(),
            force: args.force,
            ttl: args.ttl,
            api: api.clone(),
            redact_warnings,
            refresh: args.refresh,
            sample: (args.sample > 0).then_some(SampleInputs {
                size: args.sample,
                max_drift_percent: args.max_drift,
                allow: args.allow_drift,
            }),
        },
        state_path,
        ui,
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
    /// The API and pacing.
    pub api: Api,
    /// Hide the values manifest warnings quote.
    pub redact_warnings: bool,
    /// Read every lookup (false: `--refresh=false`, only those an entry needs).
    pub refresh: bool,
    /// The sampled check of a `--refresh=false` plan (`--sample N`).
    pub sample: Option<SampleInputs>,
}

/// `--sample N`, `--max-drift`, `--allow-drift`.
pub(super) struct SampleInputs {
    /// Profiles to read.
    pub size: u64,
    /// The threshold, in percent.
    pub max_drift_percent: f64,
    /// Accept a drift above it.
    pub allow: bool,
}

/// [`seal_fresh`] from its inputs.
pub(super) async fn seal_inputs(
    args: &PlanInputs,
    state_path: &Path,
    ui: &Ui,
) -> anyhow::Result<Fresh> {
    let state_path = state_path.to_owned();
    check_out_dir(&state_path)?;
    sniff::expect_state_target(&state_path)?;
    let leftovers = state::remove_leftovers(&state_path);
    if leftovers > 0 {
        ui.note(format!(
            "Removed {} a killed plan left beside `{}`.",
            render_count(leftovers as u64, "scratch file", "scratch files"),
            state_path.display()
        ));
    }
    check_ttl(args.ttl)?;
    // Held from the first look at the old file to the rename of the new one: no `apply` can
    // start on the old file meanwhile, and none is running on it now.
    let lock = FileLock::take_or_refuse(&state_path, &Holder::this_process(), "planning over it")?;
    guard_existing(&state_path, args.force)?;
    let mut scratch = Scratch::create(&state_path)?;
    scratch.set_refresh(args.refresh);
    let manifest = manifest::load_into(&args.manifest, &mut scratch)?;
    for w in &manifest.warnings {
        ui.warn(render::clean(&warning_text(w, args.redact_warnings)));
    }
    let base = args.api.base_url(manifest.region)?;
    let pace = args.api.pace;
    let api = Arc::new(args.api.client(&base, &manifest.space)?);

    let total = scratch.lookup_count()?;
    ui.note(format!(
        "Resolving {} at {} ...",
        render_count(total, "profile lookup", "profile lookups"),
        rate_text(pace.rate)
    ));
    let progress = Arc::new(super::progress::ProgressOut::new("resolved", total, ui));
    let mut done = 0u64;
    let mut after = None;
    let mut window = crate::window::Window::new(pace.concurrency as usize);
    loop {
        let chunk = scratch.lookups(after.as_ref(), RESOLVE_CHUNK)?;
        let Some(last) = chunk.last().cloned() else {
            break;
        };
        let (shown, base_count) = (progress.clone(), done);
        let n = chunk.len() as u64;
        // On a worker of the runtime, not on this thread: every answer wakes the dispatch
        // loop, and waking the thread that blocks on the runtime costs a context switch each
        // (a third of plan's CPU at a million lookups). In a `JoinSet`, so a plan stopped by
        // Ctrl-C drops the reads with it.
        let (reader, pacer, mut chunk_window) = (api.clone(), api.pacer().clone(), window.clone());
        let mut task = tokio::task::JoinSet::new();
        task.spawn(async move {
            let resolved = crate::resolve::resolve_all(
                reader,
                chunk,
                &mut chunk_window,
                Some(pacer),
                move |k| shown.update(base_count + k, String::new),
            )
            .await;
            (resolved, chunk_window)
        });
        let (resolved, chunk_window) = task
            .join_next()
            .await
            .context("the resolver task is missing")?
            .context("the resolver task failed")?;
        window = chunk_window;
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                progress.finish();
                return Err(
                    e.context("resolving the manifest's profiles; no state file was written")
                );
            }
        };
        scratch.record(&resolved)?;
        done += n;
        after = Some(last);
    }
    progress.finish();

    let writing = || {
        let full = state::full_disk_note(&state_path)
            .map(|note| format!(": {note}; free space, then plan again"))
            .unwrap_or_default();
        format!("writing state file `{}`{full}", state_path.display())
    };
    let mut sealer = Sealer::begin_locked(
        lock,
        meta(&manifest, &state_path, &base, args.ttl.as_secs())?,
        &sources(&manifest, &state_path)?,
    )
    .with_context(writing)?;
    let planned = scratch.seal(&mut sealer).with_context(writing)?;
    let sample = match &args.sample {
        Some(inputs) => {
            let sample = sampled_check(&sealer, inputs, api.clone(), window, ui).await?;
            sealer
                .meta_row(crate::sample::META_KEY, &serde_json::to_string(&sample)?)
                .with_context(writing)?;
            Some(sample)
        }
        None => None,
    };
    let digest = sealer.finish().with_context(writing)?;
    drop(scratch);
    Ok(Fresh {
        digest,
        deletes: planned.deletes,
        sample,
    })
}

/// Reads the sampled profiles by `user_id` (paced like every read, through the same window)
/// and compares them with the items sealed for them (see [`crate::sample`]).
async fn sampled_check(
    sealer: &Sealer,
    inputs: &SampleInputs,
    api: Arc<crate::segment::Client>,
    mut window: crate::window::Window,
    ui: &Ui,
) -> anyhow::Result<crate::sample::Sample> {
    use crate::model::{Identifier, Lookup};
    let sealed = sealer.sample_targets(inputs.size)?;
    ui.note(format!(
        "Sampled check: reading {} by user_id ...",
        render_count(sealed.len() as u64, "profile", "profiles")
    ));
    let lookups: Vec<Lookup> = sealed
        .keys()
        .map(|u| Lookup::External(Identifier::new("user_id", u.clone())))
        .collect();
    let pacer = api.pacer().clone();
    let read = crate::resolve::resolve_all(api, lookups, &mut window, Some(pacer), |_| {})
        .await
        .context("the sampled check's reads; no state file was written")?;
    let read = read
        .into_iter()
        .filter_map(|(lookup, r)| match lookup {
            Lookup::External(id) => Some((id.id, r)),
            Lookup::SegmentId(_) => None,
        })
        .collect();
    let (drifted, gone) = crate::sample::compare(&sealed, &read);
    let mut sample = crate::sample::Sample {
        asked: inputs.size,
        read: sealed.len() as u64,
        drifted,
        gone,
        max_drift_percent: inputs.max_drift_percent,
        allowed: false,
    };
    sample.allowed = sample.over() && inputs.allow;
    Ok(sample)
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

/// A manifest warning as printed: with `--redact`, the values it quotes are hidden.
pub fn warning_text(w: &manifest::Diagnostic, redact: bool) -> String {
    if redact {
        format!("{}: {}", w.location, redact_quoted(&w.message))
    } else {
        w.to_string()
    }
}

/// `text` with every backtick-quoted value that holds a `type:value` or an `@` replaced by its
/// type and [`render::REDACTED`]: the values a manifest warning quotes are identifiers and
/// lookups, while key names (`identifier`, `profile`) have neither and stay readable.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        if quoted && (part.contains(':') || part.contains('@') || part.starts_with("use_")) {
            out.push_str(&crate::text::Redaction(true).lookup(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Prints a state file's plan in `format` to stdout. `level` is the `--redact` level asked
/// for (markdown: `full` hides even the masked preview).
pub fn print_plan(
    state: &State,
    format: Format,
    redact: Redaction,
    level: Option<crate::mask::RedactLevel>,
    ui: &Ui,
) -> anyhow::Result<()> {
    let view = PlanView::new(state)?;
    // Colour only in the text view: markdown and JSON go to files and programs.
    let color = ui.color && format == Format::Text;
    let mut out = super::ui::Colored::new(std::io::BufWriter::new(super::ui::stdout()), color);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted_and_key_names_kept() {
        assert_eq!(
            redact_quoted(
                "Segment lookups are lowercase; `email:Dave@Acme.io` may resolve to no profile"
            ),
            "Segment lookups are lowercase; `email:***` may resolve to no profile"
        );
        assert_eq!(
            redact_quoted("`profile_type` needs a `profile_column`; `use_ABC` and `a@x.com`"),
            "`profile_type` needs a `profile_column`; `***` and `***`"
        );
        assert_eq!(redact_quoted("no quotes"), "no quotes");
    }

    #[test]
    fn counts_are_plural_when_they_should_be() {
        assert_eq!(render_count(1, "deletion", "deletions"), "1 deletion");
        assert_eq!(render_count(0, "deletion", "deletions"), "0 deletions");
        assert_eq!(render_count(1204, "entry", "entries"), "1,204 entries");
    }
}
