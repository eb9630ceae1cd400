//! Planning as a library call: [`seal`] loads a manifest into the scratch file, resolves
//! its lookups in chunks through the paced client, plans each profile (the pure
//! [`crate::plan`]) and seals the items into the state file. `plan` and `apply MANIFEST`
//! both call it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{Api, Refused, relative_to, sniff, state_dir};
use crate::manifest::{self, Manifest};
use crate::render;
use crate::scratch::Scratch;
use crate::state::lock::{FileLock, Holder};
use crate::state::{self, FORMAT_VERSION, Meta, Sealer, SourceRecord, State};
use crate::text::{plural, rate_limit_text};
use crate::ui::Ui;
use crate::ui::progress::ProgressOut;

/// Distinct lookups resolved per chunk: bounds memory while keeping the resolver's pipeline
/// full (the pause between chunks is one request's latency).
pub const RESOLVE_CHUNK: usize = 50_000;

/// Refuses an output path whose folder does not exist, naming the folder.
fn check_out_dir(state_path: &Path) -> anyhow::Result<()> {
    let dir = state_dir(state_path);
    if !dir.is_dir() {
        anyhow::bail!(
            "folder `{}` does not exist, so the state file `{}` cannot be written there; create it (`mkdir -p {}`) or choose another -o",
            dir.display(),
            state_path.display(),
            crate::text::shell_path(&dir)
        );
    }
    Ok(())
}

/// A plan just sealed into its state file.
pub struct Sealed {
    /// Its digest.
    pub digest: String,
    /// How many `delete` items it holds.
    pub deletes: u64,
    /// The sampled check's result, when `--sample` asked for one.
    pub sample: Option<crate::sample::Sample>,
    /// The policy's verdicts, when the plan was judged by one.
    pub policy: Option<Vec<crate::policy::Verdict>>,
}

/// What sealing a fresh plan needs.
pub struct PlanOptions {
    /// The manifest.
    pub manifest: PathBuf,
    /// Where the state file is written.
    pub state: PathBuf,
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
    pub sample: Option<SampleOptions>,
    /// `--policy FILE`; without it, `idprune.policy.yaml` found walking up from the
    /// manifest's folder, if any.
    pub policy: Option<PathBuf>,
}

/// `--sample N`, `--max-drift`, `--allow-drift`.
pub struct SampleOptions {
    /// Profiles to read.
    pub size: u64,
    /// The threshold, in percent.
    pub max_drift_percent: f64,
    /// Accept a drift above it.
    pub allow: bool,
}

/// Loads the manifest into the scratch file, resolves every lookup in chunks, plans each
/// profile and seals the plan into the state file; prints progress and warnings on stderr,
/// not the plan. `plan` and `apply MANIFEST` share it.
pub async fn seal(args: &PlanOptions, ui: &Ui) -> anyhow::Result<Sealed> {
    let state_path = args.state.clone();
    check_target(&state_path, args.ttl, ui)?;
    let policy = load_policy(args.policy.as_deref(), &args.manifest, ui)?;
    // Held from the first look at the old file to the rename of the new one: no `apply` can
    // start on the old file meanwhile, and none is running on it now.
    let lock = FileLock::take_or_refuse(&state_path, &Holder::this_process(), "planning over it")?;
    guard_existing(&state_path, args.force)?;
    let mut scratch = Scratch::create(&state_path)?;
    scratch.set_refresh(args.refresh);
    let manifest = load_manifest(&args.manifest, &mut scratch, ui)?;
    warn_of(&manifest, args.redact_warnings, ui);
    let base = args.api.base_url(manifest.region)?;
    let api = Arc::new(args.api.client(&base, &manifest.space)?);
    let window = resolve_chunks(&mut scratch, &api, args.api.pace, ui).await?;

    let writing = || {
        let full = state::full_disk_note(&state_path)
            .map(|note| format!(": {note}; free space, then plan again"))
            .unwrap_or_default();
        format!("writing state file `{}`{full}", state_path.display())
    };
    let mut sealer = Sealer::begin_locked(
        lock,
        meta(
            &manifest,
            &state_path,
            &base,
            args.ttl.as_secs(),
            policy.as_ref(),
        )?,
        &sources(&manifest, &state_path)?,
    )
    .with_context(writing)?;
    let planned = scratch.seal(&mut sealer).with_context(writing)?;
    // The oldest `data_as_of` of the sources: the plan is as fresh as its stalest export.
    let data_as_of = manifest.sources.iter().filter_map(|s| s.data_as_of).min();
    if let Some(at) = data_as_of {
        sealer
            .meta_row(state::DATA_AS_OF_KEY, &at.to_string())
            .with_context(writing)?;
    }
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
    let verdicts = match &policy {
        Some(policy) => {
            let judged = Judged {
                deletes: planned.deletes,
                manifest: &manifest,
                ttl: args.ttl,
                state_path: &state_path,
            };
            let (verdicts, sealed) = judge(&sealer, policy, &judged)?;
            sealer
                .meta_row(crate::policy::META_KEY, &serde_json::to_string(&sealed)?)
                .with_context(writing)?;
            Some(verdicts)
        }
        None => None,
    };
    let digest = sealer.finish().with_context(writing)?;
    drop(scratch);
    Ok(Sealed {
        digest,
        deletes: planned.deletes,
        sample,
        policy: verdicts,
    })
}

/// Prints the manifest's warnings, their quoted values hidden when `redact`.
fn warn_of(manifest: &Manifest, redact: bool, ui: &Ui) {
    for w in &manifest.warnings {
        ui.warn(render::clean(&render::warning_text(w, redact)));
    }
}

/// Checks what can be checked of the state file's path before anything is read: its folder
/// exists, it is not something else than a state file, the TTL can be written; removes the
/// scratch files a killed plan left beside it.
fn check_target(state_path: &Path, ttl: std::time::Duration, ui: &Ui) -> anyhow::Result<()> {
    check_out_dir(state_path)?;
    sniff::expect_state_target(state_path)?;
    let leftovers = state::remove_leftovers(state_path);
    if leftovers > 0 {
        ui.note(format!(
            "Removed {} a killed plan left beside `{}`.",
            plural(leftovers as u64, "scratch file", "scratch files"),
            state_path.display()
        ));
    }
    check_ttl(ttl)
}

/// Resolves every lookup of the scratch file, [`RESOLVE_CHUNK`] at a time, and records the
/// answers there; returns the in-flight window as the reads left it (the sampled check goes
/// on with it).
async fn resolve_chunks(
    scratch: &mut Scratch,
    api: &Arc<crate::segment::Client>,
    pace: super::Pace,
    ui: &Ui,
) -> anyhow::Result<crate::window::Window> {
    let total = scratch.lookup_count()?;
    ui.note(format!(
        "Resolving {} at {} ...",
        plural(total, "profile lookup", "profile lookups"),
        rate_limit_text(pace.rate)
    ));
    let progress = Arc::new(ProgressOut::new("resolved", total, ui));
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
        let (reader, mut chunk_window) = (api.clone(), window.clone());
        let mut task = tokio::task::JoinSet::new();
        task.spawn(async move {
            let resolved =
                crate::resolve::resolve_all(reader, chunk, &mut chunk_window, move |k| {
                    shown.update(base_count + k, String::new)
                })
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
    Ok(window)
}

/// What the policy judges a plan by, besides its delete items.
struct Judged<'a> {
    /// How many `delete` items the plan holds.
    deletes: u64,
    /// The manifest planned.
    manifest: &'a Manifest,
    /// The plan's TTL.
    ttl: std::time::Duration,
    /// The state file being written.
    state_path: &'a Path,
}

/// Judges the sealed delete items by `policy`: the verdicts, and the policy as the plan's
/// meta seals it (its path, hash, text and verdicts).
fn judge(
    sealer: &Sealer,
    policy: &crate::policy::Policy,
    plan: &Judged<'_>,
) -> anyhow::Result<(Vec<crate::policy::Verdict>, crate::policy::Sealed)> {
    let mut judge = crate::policy::Evaluator::new(policy);
    let profiles = sealer.for_each_delete(|seq, kind, value| {
        judge.visit(&crate::policy::Deletion { seq, kind, value })
    })?;
    let verdicts = judge.finish(&crate::policy::Summary {
        deletes: plan.deletes,
        profiles,
        reason: &plan.manifest.reason,
        ttl: plan.ttl,
        canary: None,
    });
    let sealed = crate::policy::Sealed {
        path: relative_to(&policy.path, &canonical(&state_dir(plan.state_path)))?,
        sha256: policy.sha256.clone(),
        text: policy.text.clone(),
        verdicts: verdicts.clone(),
    };
    Ok((verdicts, sealed))
}

/// Loads the manifest into the scratch file, fetching its URL sources (`csv: s3://...`) from
/// their stores. The manifest layer is synchronous and never talks to a store: it calls this
/// hook, which blocks this worker on the runtime for each fetch (the whole load runs in
/// `block_in_place`, as it is long synchronous file work anyway: millions of CSV rows).
fn load_manifest(path: &Path, scratch: &mut Scratch, ui: &Ui) -> anyhow::Result<Manifest> {
    let runtime = tokio::runtime::Handle::current();
    let fetch = |url: &url::Url| -> anyhow::Result<manifest::FetchedCsv> {
        ui.note(format!("Fetching CSV source `{url}` ..."));
        let fetched = runtime.block_on(crate::store::source::fetch(
            url,
            manifest::MAX_URL_SOURCE_BYTES,
            &[],
        ))?;
        Ok(manifest::FetchedCsv {
            file: fetched.file,
            sha256: fetched.sha256,
        })
    };
    if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        // `block_in_place` needs the multi-thread runtime `main` builds; a single-threaded
        // caller (a test) can still plan a manifest of local files.
        let loaded = manifest::load_into(path, scratch, manifest::UrlSources::Offline)?;
        if let Some(source) = loaded.sources.iter().find(|s| !s.fetched) {
            anyhow::bail!(
                "CSV source `{}` is in a store, which plan fetches only on a multi-thread runtime",
                source.written
            );
        }
        return Ok(loaded);
    }
    let load = || manifest::load_into(path, scratch, manifest::UrlSources::Fetch(&fetch));
    Ok(tokio::task::block_in_place(load)?)
}

/// A folder with symbolic links resolved (as [`crate::policy::find`] resolves them), or as
/// given when it cannot be.
fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// Where the policy of a plan of `manifest` is: `--policy FILE`, else `idprune.policy.yaml`
/// found walking up from the manifest's folder, else none.
pub fn policy_path(explicit: Option<&Path>, manifest: &Path) -> Option<PathBuf> {
    explicit
        .map(Path::to_owned)
        .or_else(|| crate::policy::find(manifest))
}

/// The policy a plan of `manifest` is judged by: `--policy FILE`, else `idprune.policy.yaml`
/// found walking up from the manifest's folder, else none. Read and validated before any
/// request; an invalid policy stops the plan with every problem located.
pub fn load_policy(
    explicit: Option<&Path>,
    manifest: &Path,
    ui: &Ui,
) -> anyhow::Result<Option<crate::policy::Policy>> {
    let Some(path) = policy_path(explicit, manifest) else {
        return Ok(None);
    };
    let policy = crate::policy::load(&path)?;
    ui.note(format!(
        "Judging the plan by policy `{}` ({}).",
        path.display(),
        plural(policy.rules.len() as u64, "rule", "rules")
    ));
    Ok(Some(policy))
}

/// Reads the sampled profiles by `user_id` (paced like every read, through the same window)
/// in rounds of N, and compares them with the items sealed for them; another round while the
/// verdict is unsettled (see [`crate::sample`]).
async fn sampled_check(
    sealer: &Sealer,
    inputs: &SampleOptions,
    api: Arc<crate::segment::Client>,
    mut window: crate::window::Window,
    ui: &Ui,
) -> anyhow::Result<crate::sample::Sample> {
    use crate::sample::{MAX_ROUNDS, Sample, compare};
    let targets = sealer.sample_targets(inputs.size.saturating_mul(MAX_ROUNDS))?;
    let mut sample = Sample {
        asked: inputs.size,
        read: 0,
        rounds: 0,
        drifted: 0,
        gone: 0,
        max_drift_percent: inputs.max_drift_percent,
        allowed: false,
    };
    let round_size = usize::try_from(inputs.size.max(1)).unwrap_or(usize::MAX);
    for round in targets.chunks(round_size) {
        if !sample.wants_another_round() {
            break;
        }
        if sample.rounds == 0 {
            ui.note(format!(
                "Sampled check: reading {} by user_id ...",
                plural(round.len() as u64, "profile", "profiles")
            ));
        } else {
            ui.note(format!(
                "Sampled check: {} of {} drifted, within --max-drift {} but its 95 % upper bound is {:.1} %: reading another {} (round {} of at most {MAX_ROUNDS}) ...",
                sample.drifted,
                sample.read,
                crate::sample::percent_text(sample.max_drift_percent),
                sample.upper_percent(),
                plural(round.len() as u64, "profile", "profiles"),
                sample.rounds + 1
            ));
        }
        let read = read_by_user_id(&api, round, &mut window).await?;
        let (drifted, gone) = compare(round, &read);
        sample.add_round(round.len() as u64, drifted, gone);
    }
    sample.allowed = sample.over() && inputs.allow;
    Ok(sample)
}

/// Reads each of `round`'s profiles by its user_id: what each read found, by user_id.
async fn read_by_user_id(
    api: &Arc<crate::segment::Client>,
    round: &[crate::sample::Target],
    window: &mut crate::window::Window,
) -> anyhow::Result<std::collections::BTreeMap<String, crate::plan::Resolution>> {
    use crate::model::{Identifier, Lookup};
    let lookups: Vec<Lookup> = round
        .iter()
        .map(|(u, _)| Lookup::External(Identifier::new("user_id", u.clone())))
        .collect();
    let read = crate::resolve::resolve_all(api.clone(), lookups, window, |_| {})
        .await
        .context("the sampled check's reads; no state file was written")?;
    Ok(read
        .into_iter()
        .filter_map(|(lookup, r)| match lookup {
            Lookup::External(id) => Some((id.id, r)),
            Lookup::SegmentId(_) => None,
        })
        .collect())
}

/// Refuses a TTL whose end could not be written and read back (past year 9999).
fn check_ttl(ttl: std::time::Duration) -> anyhow::Result<()> {
    let room = state::MAX_UNIX.saturating_sub(state::now_unix());
    if ttl.as_secs() > u64::try_from(room).unwrap_or(0) {
        anyhow::bail!(
            "--ttl `{}` ends after year 9999, which a state file cannot hold; use a shorter TTL (the default is 7d)",
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
            "{}; wait for that apply to end",
            crate::state::lock::locked_by(path, &holder)
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
                // A URL source is recorded as its URL: there is no local file to find again.
                path: match &s.url {
                    Some(url) => url.to_string(),
                    None => relative_to(&s.path, &dir)?,
                },
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
    policy: Option<&crate::policy::Policy>,
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
        policy_sha256: policy.map(|p| p.sha256.clone()),
    })
}
