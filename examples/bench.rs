//! The benchmark of issue 3: how close `plan` and `apply` come to Segment's rate limit, what
//! they cost in memory, how fast the engine is with the limit lifted, and how much faster it is
//! than the naive one-request-at-a-time loop.
//!
//! Each run generates, in a temporary directory, a seed of N profiles `use_i` (each with
//! `user_id:u_i`, `email:keep_i@x.com`, `email:bad_i@x.com`) and a manifest whose CSV source
//! removes `email:bad_i@x.com` from `user_id:u_i` (or, for the 1M-item case, an identifier-only
//! CSV where each `bad_i@x.com` is its own lookup). It starts the built-in emulator in-process
//! with the space limit R, latency L and jitter, then runs the **real release binary** as a
//! child process: `plan`, `show --format json` (for the digest), `apply --approve DIGEST` and
//! `status --format json`. Each child is started by a small launcher (this program re-executed
//! as `bench __launch ...`, see [`launch`]) that times it and reaps it with `wait4`, whose
//! `ru_maxrss` is the child's peak RSS; the emulator's `/__emulator/stats` counters, read before
//! and after each phase, give the reads, deletes and 429s the server saw.
//!
//! Figures printed, one per line: apply and plan rate ÷ R (accepted requests ÷ wall time of
//! the child ÷ R, so process start-up and ramp-up count against idprune), 429s, idprune's own
//! p50/p99 request latency when its `status` reports them, peak RSS, deletions/s with the limit
//! lifted, and the speed-up over the naive loop (sequential delete POSTs with `reqwest`). To
//! tell who limits a lifted run, it also prints the CPU time of idprune (from `wait4`) and of
//! this process, which is mostly the emulator (from `getrusage`): they share the same cores.
//! The launcher stamps each stderr line of the child with its time and notes its first stdout
//! byte, which gives plan's timeline: manifest staged (the `Resolving` line), state sealed (the
//! printed plan starts), plan printed (exit).
//! With `--repeat K` every figure is the median of K runs.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- --scenario targets
//! cargo run --release --example bench -- --items 2000 --latency-ms 300 --jitter 30 --naive
//! cargo run --release --example bench -- --scenario targets --big   # adds the 1M-item plan
//! ```
//!
//! It only ever contacts the emulator on 127.0.0.1, and every child runs under a deadline so a
//! stuck run fails instead of hanging a shared machine. Figures, not assertions: tests assert
//! behaviour, this program measures (STYLE.md rule 9).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use idprune::emulator::{Config, Emulator, Seed, SeedIdentifier, SeedProfile};
use idprune::render::thousands;
use serde_json::Value;

/// The space id of the generated seed and manifest.
const SPACE: &str = "spa_bench";
/// The token the emulator accepts and the child sends.
const TOKEN: &str = "demo-token";
/// Deletes per second per profile when the space limit is on (Segment's documented value).
const PROFILE_RATE: u32 = 100;
/// The target share of R that plan and apply must reach (issue 3).
const TARGET_RATE_SHARE: f64 = 0.97;
/// The largest share of requests that may be answered 429 (issue 3).
const TARGET_429_SHARE: f64 = 0.01;
/// Deletions per second end to end with the limit lifted (issue 3).
const TARGET_LIFTED_PER_SEC: f64 = 5_000.0;
/// Seconds to write the state file of 1M items (issue 3).
const TARGET_BIG_PLAN_SECS: f64 = 60.0;
/// Peak RSS of the 1M-item plan, in MB (issue 3).
const TARGET_BIG_RSS_MB: f64 = 300.0;
/// Speed-up over the naive loop at 100 ms (issue 3).
const TARGET_SPEEDUP: f64 = 9.0;
/// The first argument that makes this program the launcher of one child (see [`launch`]).
const LAUNCHER_ARG: &str = "__launch";
/// The latency at which the speed-up target is set (issue 3).
const TARGET_SPEEDUP_LATENCY_MS: u64 = 100;
/// How often a running child is polled; small next to any phase's wall time.
const REAP_POLL: Duration = Duration::from_millis(2);
/// The slack every child deadline gets on top of its expected duration.
const DEADLINE_SLACK: Duration = Duration::from_secs(60);
/// The deadline is this many times the duration the limit alone would impose.
const DEADLINE_FACTOR: u32 = 3;
/// Items per second assumed for deadlines when the limit is lifted.
const LIFTED_FLOOR_PER_SEC: u64 = 1_000;

#[derive(Debug, Parser)]
#[command(about = "Benchmark idprune's plan and apply against the in-process emulator")]
struct Args {
    /// Items to plan and apply (profiles in the seed).
    #[arg(long, default_value_t = 5_000)]
    items: u64,
    /// Space limit of the emulator and idprune's `--rate`, requests/s; 0 = lifted.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Emulator latency per request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Latency jitter, ± percent of --latency-ms.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    jitter: u32,
    /// Passed to idprune as `--concurrency`; by default idprune picks its own.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Also run the naive sequential loop and print the speed-up.
    #[arg(long)]
    naive: bool,
    /// Items for the naive loop (it runs at 1/latency, so a few hundred are enough).
    #[arg(long, default_value_t = 300)]
    naive_items: u64,
    /// Use an identifier-only CSV (each identifier is its own lookup), as target (d) does.
    #[arg(long)]
    identifier_only: bool,
    /// Stop after `plan` (no apply, no naive loop).
    #[arg(long, conflicts_with = "naive")]
    plan_only: bool,
    /// Run a preset instead of the single run the flags describe.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// With `--scenario targets`: also plan 1,000,000 identifier-only items (heavy: ~1.1 GB
    /// of emulator memory, minutes of CPU).
    #[arg(long)]
    big: bool,
    /// Repeat every measurement K times and print medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
    /// Keep each run's scratch directory (manifest, CSV, state file, the children's stdout and
    /// stderr) instead of deleting it; its path is printed.
    #[arg(long)]
    keep: bool,
    /// The idprune binary (default: `idprune` next to this example's directory).
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every target of issue 3 in sequence: (a) L=50, (b) L=1000±30%, (c) lifted,
    /// (d) 1M plan items (only with --big), (e) naive loop at L=100.
    Targets,
}

/// The CSV shape of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `user_id,email`: the profile column is the lookup, `email` is removed.
    ByProfile,
    /// `email` only: each identifier is its own lookup.
    IdentifierOnly,
}

/// One run's parameters.
#[derive(Clone, Debug)]
struct Run {
    items: u64,
    rate: u32,
    latency_ms: u64,
    jitter: u32,
    concurrency: Option<u32>,
    shape: Shape,
    /// Run `apply` after `plan`.
    apply: bool,
}

impl Run {
    fn lifted(&self) -> bool {
        self.rate == 0
    }

    fn describe(&self) -> String {
        let limit = if self.lifted() {
            "lifted".to_owned()
        } else {
            format!("{}/s", self.rate)
        };
        let mut text = format!(
            "N={} R={} L={} ms",
            thousands(self.items),
            limit,
            self.latency_ms
        );
        if self.jitter > 0 {
            let _ = write!(text, " ±{} %", self.jitter);
        }
        match self.concurrency {
            Some(c) => {
                let _ = write!(text, " concurrency={c}");
            }
            None => text.push_str(" concurrency=default"),
        }
        if self.shape == Shape::IdentifierOnly {
            text.push_str(" identifier-only CSV");
        }
        text
    }

    /// How long a phase of `requests` may take before it counts as stuck.
    fn deadline(&self, requests: u64) -> Duration {
        let per_sec = if self.lifted() {
            LIFTED_FLOOR_PER_SEC
        } else {
            u64::from(self.rate)
        };
        Duration::from_secs(requests / per_sec.max(1)) * DEADLINE_FACTOR + DEADLINE_SLACK
    }
}

/// What a child process left behind.
struct Child {
    wall: Duration,
    /// User + system CPU time of the child.
    cpu: Duration,
    /// When the child's first stdout byte came, since its start.
    first_stdout: Option<Duration>,
    peak_rss_kib: u64,
    code: i32,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// The emulator's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    requests: u64,
    reads: u64,
    deletes: u64,
    rate_limited: u64,
}

impl Counters {
    fn since(self, before: Counters) -> Counters {
        Counters {
            requests: self.requests - before.requests,
            reads: self.reads - before.reads,
            deletes: self.deletes - before.deletes,
            rate_limited: self.rate_limited - before.rate_limited,
        }
    }
}

/// One phase (plan or apply) as measured.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    wall_secs: f64,
    cpu_secs: f64,
    /// CPU time of this process (the emulator, mostly) during the phase.
    emulator_cpu_secs: f64,
    /// Plan only: when the manifest was staged (the `Resolving` line), since the start.
    staged_secs: Option<f64>,
    /// Plan only: when the state file was sealed (the first byte of the printed plan).
    sealed_secs: Option<f64>,
    peak_rss_kib: u64,
    seen: Counters,
}

impl Phase {
    /// Requests the server accepted (not answered 429) per second of the child's wall time.
    fn accepted_per_sec(&self) -> f64 {
        (self.seen.requests - self.seen.rate_limited) as f64 / self.wall_secs
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
struct Figures {
    plan: Phase,
    apply: Option<Phase>,
    /// Items the plan marked `delete`.
    planned_deletes: u64,
    /// The last run's `rate` from `status`.
    reported_rate: Option<f64>,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
}

impl Figures {
    fn apply_items_per_sec(&self) -> Option<f64> {
        self.apply
            .map(|a| self.planned_deletes as f64 / a.wall_secs)
    }

    fn requests(&self) -> u64 {
        self.plan.seen.requests + self.apply.map_or(0, |a| a.seen.requests)
    }

    fn rate_limited(&self) -> u64 {
        self.plan.seen.rate_limited + self.apply.map_or(0, |a| a.seen.rate_limited)
    }
}

/// A PASS/FAIL verdict against one target.
struct Verdict {
    target: String,
    pass: bool,
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args_os();
    if argv.nth(1).as_deref() == Some(OsStr::new(LAUNCHER_ARG)) {
        return launch(&argv.collect::<Vec<_>>());
    }
    let args = Args::parse();
    let bin = match &args.bin {
        Some(path) => path.clone(),
        None => default_binary()?,
    };
    if !bin.is_file() {
        bail!(
            "idprune binary `{}` not found; run `cargo build --release` first or pass --bin",
            bin.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the emulator's tokio runtime")?;
    let bench = Bench {
        bin,
        runtime,
        repeat: args.repeat,
        keep: args.keep,
    };
    let mut verdicts = Vec::new();
    match args.scenario {
        Some(Scenario::Targets) => targets(&bench, &args, &mut verdicts)?,
        None => single(&bench, &args, &mut verdicts)?,
    }
    if !verdicts.is_empty() {
        println!();
        println!("== verdicts ==");
        for v in &verdicts {
            println!("{} {}", if v.pass { "PASS" } else { "FAIL" }, v.target);
        }
    }
    Ok(())
}

/// `target/release/idprune`: this example lives in `target/release/examples/`.
fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("the bench executable has no grandparent directory")?;
    Ok(release.join(format!("idprune{}", std::env::consts::EXE_SUFFIX)))
}

/// The shared context of all runs.
struct Bench {
    bin: PathBuf,
    runtime: tokio::runtime::Runtime,
    repeat: u32,
    keep: bool,
}

fn single(bench: &Bench, args: &Args, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let run = Run {
        items: args.items,
        rate: args.rate,
        latency_ms: args.latency_ms,
        jitter: args.jitter,
        concurrency: args.concurrency,
        shape: if args.identifier_only {
            Shape::IdentifierOnly
        } else {
            Shape::ByProfile
        },
        apply: !args.plan_only,
    };
    heading("single run", &run, bench.repeat);
    let figures = bench.measure(&run)?;
    print_figures(&run, &figures);
    if !run.lifted() {
        judge_limited(&run, &figures, verdicts);
    } else if run.apply {
        judge_lifted(&figures, verdicts);
    } else {
        judge_big(&run, &figures, verdicts);
    }
    if args.naive {
        let naive_items = args.naive_items.min(args.items);
        let naive = bench.naive(naive_items, args.latency_ms, args.jitter)?;
        judge_naive(&figures, naive, args.latency_ms, verdicts);
    }
    Ok(())
}

fn targets(bench: &Bench, args: &Args, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let limited = |latency_ms, jitter| Run {
        items: 5_000,
        rate: 100,
        latency_ms,
        jitter,
        concurrency: args.concurrency,
        shape: Shape::ByProfile,
        apply: true,
    };
    let a = limited(50, 0);
    heading("(a) at the limit, low latency", &a, bench.repeat);
    let figures = bench.measure(&a)?;
    print_figures(&a, &figures);
    judge_limited(&a, &figures, verdicts);

    let b = limited(1_000, 30);
    heading("(b) at the limit, high jittery latency", &b, bench.repeat);
    let figures = bench.measure(&b)?;
    print_figures(&b, &figures);
    judge_limited(&b, &figures, verdicts);

    let c = Run {
        items: 20_000,
        rate: 0,
        latency_ms: 0,
        jitter: 0,
        concurrency: args.concurrency,
        shape: Shape::ByProfile,
        apply: true,
    };
    heading("(c) limit lifted", &c, bench.repeat);
    let figures = bench.measure(&c)?;
    print_figures(&c, &figures);
    judge_lifted(&figures, verdicts);

    if args.big {
        let d = Run {
            items: 1_000_000,
            rate: 0,
            latency_ms: 0,
            jitter: 0,
            concurrency: args.concurrency,
            shape: Shape::IdentifierOnly,
            apply: false,
        };
        heading("(d) 1M plan items", &d, bench.repeat);
        let figures = bench.measure(&d)?;
        print_figures(&d, &figures);
        judge_big(&d, &figures, verdicts);
    } else {
        println!();
        println!("== (d) 1M plan items: skipped (pass --big) ==");
    }

    let e = Run {
        items: 2_000,
        ..limited(TARGET_SPEEDUP_LATENCY_MS, 0)
    };
    heading("(e) idprune vs the naive loop", &e, bench.repeat);
    let figures = bench.measure(&e)?;
    print_figures(&e, &figures);
    let naive = bench.naive(args.naive_items, TARGET_SPEEDUP_LATENCY_MS, 0)?;
    judge_naive(&figures, naive, TARGET_SPEEDUP_LATENCY_MS, verdicts);
    Ok(())
}

fn heading(title: &str, run: &Run, repeat: u32) {
    println!();
    if repeat > 1 {
        println!(
            "== {title}: {} (medians of {repeat} runs) ==",
            run.describe()
        );
    } else {
        println!("== {title}: {} ==", run.describe());
    }
}

impl Bench {
    /// Runs `run` `self.repeat` times and returns the medians.
    fn measure(&self, run: &Run) -> anyhow::Result<Figures> {
        let mut all = Vec::new();
        for i in 0..self.repeat {
            if self.repeat > 1 {
                eprintln!("bench: repetition {} of {}", i + 1, self.repeat);
            }
            all.push(self.measure_once(run)?);
        }
        Ok(median_figures(&all))
    }

    fn measure_once(&self, run: &Run) -> anyhow::Result<Figures> {
        let mut dir = tempfile::Builder::new()
            .prefix("idprune-bench-")
            .tempdir()
            .context("creating a scratch directory")?;
        if self.keep {
            dir.disable_cleanup(true);
            eprintln!("bench: keeping {}", dir.path().display());
        }
        let manifest = write_inputs(dir.path(), run)?;
        let state = dir.path().join("bench.state.db");
        eprintln!("bench: seeding {} profiles", thousands(run.items));
        let emulator = self.runtime.block_on(Emulator::start(
            Config {
                space_rate: run.rate,
                profile_rate: if run.lifted() { 0 } else { PROFILE_RATE },
                latency_ms: run.latency_ms,
                latency_jitter: run.jitter,
                random_seed: Some(1),
                ..Config::default()
            },
            seed(run.items),
        ))?;
        let base = emulator.base_url();
        let result = self.measure_against(run, dir.path(), &manifest, &state, &base);
        self.runtime.block_on(emulator.shutdown());
        result
    }

    fn measure_against(
        &self,
        run: &Run,
        dir: &Path,
        manifest: &Path,
        state: &Path,
        base: &str,
    ) -> anyhow::Result<Figures> {
        let client = reqwest::Client::new();
        let pace = pace_args(run);

        eprintln!("bench: plan");
        let before = self.counters(&client, base)?;
        let cpu_before = own_cpu()?;
        let mut plan_args = vec![
            "plan".to_owned(),
            path_arg(manifest),
            "-o".to_owned(),
            path_arg(state),
        ];
        plan_args.extend(pace.iter().cloned());
        let plan = self.child(dir, "plan", &plan_args, base, run.deadline(run.items))?;
        expect_code(&plan, &[0])?;
        let cpu_after_plan = own_cpu()?;
        let after_plan = self.counters(&client, base)?;
        let mut figures = Figures {
            plan: phase(&plan, after_plan.since(before), cpu_after_plan - cpu_before),
            ..Figures::default()
        };
        if !run.apply {
            figures.planned_deletes = run.items;
            return Ok(figures);
        }

        let shown = self.json_view(dir, "show", state, base)?;
        let digest = shown
            .get("digest")
            .and_then(Value::as_str)
            .context("`show --format json` printed no `digest`")?
            .to_owned();
        figures.planned_deletes = shown
            .pointer("/summary/by_action/delete")
            .and_then(Value::as_u64)
            .unwrap_or(run.items);

        eprintln!(
            "bench: apply {} deletions",
            thousands(figures.planned_deletes)
        );
        let mut apply_args = vec![
            "apply".to_owned(),
            path_arg(state),
            "--approve".to_owned(),
            digest,
        ];
        apply_args.extend(pace);
        let apply = self.child(
            dir,
            "apply",
            &apply_args,
            base,
            run.deadline(figures.planned_deletes),
        )?;
        expect_code(&apply, &[0])?;
        let cpu_after_apply = own_cpu()?;
        let after_apply = self.counters(&client, base)?;
        figures.apply = Some(phase(
            &apply,
            after_apply.since(after_plan),
            cpu_after_apply - cpu_after_plan,
        ));

        let status = self.json_view(dir, "status", state, base)?;
        if let Some(last) = status
            .get("runs")
            .and_then(Value::as_array)
            .and_then(|runs| runs.last())
        {
            figures.reported_rate = last.get("rate").and_then(Value::as_f64);
            figures.latency_p50_ms = last.get("latency_p50_ms").and_then(Value::as_f64);
            figures.latency_p99_ms = last.get("latency_p99_ms").and_then(Value::as_f64);
        }
        Ok(figures)
    }

    /// Runs idprune with `args`, output to files in `dir`, and reaps it with `wait4` for its
    /// peak RSS; kills it past `deadline`.
    /// Runs `idprune VERB STATE --format json` and parses what it printed.
    fn json_view(&self, dir: &Path, verb: &str, state: &Path, base: &str) -> anyhow::Result<Value> {
        let args = [
            verb.to_owned(),
            path_arg(state),
            "--format".into(),
            "json".into(),
        ];
        let child = self.child(dir, verb, &args, base, DEADLINE_SLACK)?;
        expect_code(&child, &[0])?;
        read_json(&child.stdout)
    }

    fn child(
        &self,
        dir: &Path,
        name: &str,
        args: &[String],
        base: &str,
        deadline: Duration,
    ) -> anyhow::Result<Child> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let launcher = std::env::current_exe().context("locating the bench executable")?;
        let output = Command::new(&launcher)
            .arg(LAUNCHER_ARG)
            .arg(deadline.as_millis().to_string())
            .arg(&stdout)
            .arg(&stderr)
            .arg(&self.bin)
            .args(args)
            .env("SEGMENT_ACCESS_TOKEN", TOKEN)
            .env("IDPRUNE_API_URL", base)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting the launcher `{}`", launcher.display()))?;
        if !output.status.success() {
            bail!(
                "running `idprune {name}`: {}; its stderr ends with: {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                tail(&stderr)
            );
        }
        let report = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = report.split_whitespace().collect();
        let [code, rss, nanos, cpu, first_out] = fields.as_slice() else {
            bail!(
                "the launcher printed `{}`, not `CODE RSS WALL CPU FIRST_STDOUT`",
                report.trim()
            );
        };
        Ok(Child {
            code: code.parse().context("the launcher's exit code")?,
            peak_rss_kib: rss.parse().context("the launcher's peak RSS")?,
            wall: Duration::from_nanos(nanos.parse().context("the launcher's wall time")?),
            cpu: Duration::from_nanos(cpu.parse().context("the launcher's CPU time")?),
            first_stdout: u64::try_from(
                first_out
                    .parse::<i128>()
                    .context("the launcher's first-output time")?,
            )
            .ok()
            .map(Duration::from_nanos),
            stdout,
            stderr,
        })
    }

    fn counters(&self, client: &reqwest::Client, base: &str) -> anyhow::Result<Counters> {
        let url = format!("{base}/__emulator/stats");
        let body = self
            .runtime
            .block_on(async {
                client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            })
            .context("reading the emulator's stats")?;
        let stats: Value = serde_json::from_slice(&body).context("parsing the emulator's stats")?;
        let count = |name: &str| {
            stats
                .get(name)
                .and_then(Value::as_u64)
                .with_context(|| format!("the emulator's stats lack `{name}`"))
        };
        Ok(Counters {
            requests: count("requests")?,
            reads: count("reads")?,
            deletes: count("deletes")?,
            rate_limited: count("rate_limited")?,
        })
    }

    /// The naive loop: one delete POST at a time on a fresh emulator; returns items/s.
    fn naive(&self, items: u64, latency_ms: u64, jitter: u32) -> anyhow::Result<f64> {
        let mut rates = Vec::new();
        for _ in 0..self.repeat {
            rates.push(self.naive_once(items, latency_ms, jitter)?);
        }
        Ok(median(&mut rates))
    }

    fn naive_once(&self, items: u64, latency_ms: u64, jitter: u32) -> anyhow::Result<f64> {
        eprintln!(
            "bench: naive loop, {} items at {latency_ms} ms",
            thousands(items)
        );
        self.runtime.block_on(async {
            let emulator = Emulator::start(
                Config {
                    latency_ms,
                    latency_jitter: jitter,
                    random_seed: Some(1),
                    ..Config::default()
                },
                seed(items),
            )
            .await?;
            let base = emulator.base_url();
            let client = reqwest::Client::new();
            let start = Instant::now();
            let mut outcome = Ok(());
            for i in 1..=items {
                let url = format!(
                    "{base}/v1/spaces/{SPACE}/collections/users/profiles/user_id:u_{i}/external_ids/delete"
                );
                let body = serde_json::json!({"delete_external_ids": [{"id": format!("bad_{i}@x.com"), "type": "email"}]})
                    .to_string();
                let sent = client
                    .post(&url)
                    .basic_auth(TOKEN, Some(""))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        outcome = Err(anyhow::anyhow!(
                            "naive delete #{i} answered {}",
                            response.status()
                        ));
                        break;
                    }
                    Err(e) => {
                        outcome = Err(anyhow::Error::new(e).context("naive delete request"));
                        break;
                    }
                }
            }
            let wall = start.elapsed();
            emulator.shutdown().await;
            outcome.map(|()| items as f64 / wall.as_secs_f64())
        })
    }
}

/// `--rate` and `--concurrency` for both plan and apply.
fn pace_args(run: &Run) -> Vec<String> {
    let mut args = vec!["--rate".to_owned(), run.rate.to_string()];
    if let Some(c) = run.concurrency {
        args.extend(["--concurrency".to_owned(), c.to_string()]);
    }
    args
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn phase(child: &Child, seen: Counters, emulator_cpu: Duration) -> Phase {
    Phase {
        staged_secs: stamped(&child.stderr, "Resolving"),
        sealed_secs: child.first_stdout.map(|d| d.as_secs_f64()),
        emulator_cpu_secs: emulator_cpu.as_secs_f64(),
        wall_secs: child.wall.as_secs_f64(),
        cpu_secs: child.cpu.as_secs_f64(),
        peak_rss_kib: child.peak_rss_kib,
        seen,
    }
}

fn expect_code(child: &Child, codes: &[i32]) -> anyhow::Result<()> {
    if codes.contains(&child.code) {
        Ok(())
    } else {
        bail!(
            "idprune exited {}; its stderr ends with: {}",
            child.code,
            tail(&child.stderr)
        )
    }
}

/// The last lines of a child's stderr, for error messages.
fn tail(path: &Path) -> String {
    const TAIL_BYTES: usize = 2_000;
    match fs::read(path) {
        Ok(bytes) => {
            let from = bytes.len().saturating_sub(TAIL_BYTES);
            String::from_utf8_lossy(&bytes[from..]).into_owned()
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let file = fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("parsing `{}` as JSON", path.display()))
}

/// The launcher (`bench __launch DEADLINE_MS STDOUT STDERR PROGRAM ARGS...`): spawns PROGRAM
/// with its output in the two files, reaps it with `wait4` and prints
/// `EXIT_CODE PEAK_RSS_KIB WALL_NANOS CPU_NANOS FIRST_STDOUT_NANOS` (-1: no output), with each
/// stderr line stamped with its time (see [`copy_stamping_lines`]).
///
/// Why a separate small process: Linux folds the memory high-water mark of the process image
/// that `exec` replaces into the new program's `ru_maxrss`. Spawned straight from the bench,
/// whose in-process emulator holds every seeded profile, idprune's peak RSS would read as the
/// bench's; spawned from this fresh process it carries at most the launcher's few MB.
fn launch(args: &[OsString]) -> anyhow::Result<()> {
    let [deadline_ms, stdout, stderr, program, rest @ ..] = args else {
        bail!("usage: bench {LAUNCHER_ARG} DEADLINE_MS STDOUT STDERR PROGRAM [ARGS...]");
    };
    let deadline = Duration::from_millis(
        deadline_ms
            .to_str()
            .and_then(|d| d.parse().ok())
            .context("DEADLINE_MS is not a number")?,
    );
    let out_file = fs::File::create(stdout).context("creating the stdout file")?;
    let err_file = fs::File::create(stderr).context("creating the stderr file")?;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{}`", Path::new(program).display()))?;
    let out_pipe = child.stdout.take().context("the child's stdout pipe")?;
    let err_pipe = child.stderr.take().context("the child's stderr pipe")?;
    let out_copy = std::thread::spawn(move || copy_noting_first_byte(out_pipe, out_file, start));
    let err_copy = std::thread::spawn(move || copy_stamping_lines(err_pipe, err_file, start));
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (code, peak_rss_kib, cpu) = reap(pid, start, deadline)?;
    let wall = start.elapsed();
    let first_out = out_copy
        .join()
        .map_err(|_| anyhow::anyhow!("the stdout copier panicked"))?
        .context("copying the child's stdout")?;
    err_copy
        .join()
        .map_err(|_| anyhow::anyhow!("the stderr copier panicked"))?
        .context("copying the child's stderr")?;
    println!(
        "{code} {peak_rss_kib} {} {} {}",
        wall.as_nanos(),
        cpu.as_nanos(),
        first_out.map_or(-1, |d| i128::try_from(d.as_nanos()).unwrap_or(-1))
    );
    Ok(())
}

/// Copies the child's stdout to its file; returns when its first byte came (idprune prints
/// the plan only after sealing it, so that is when the state file was complete).
fn copy_noting_first_byte(
    mut from: impl Read,
    to: fs::File,
    start: Instant,
) -> std::io::Result<Option<Duration>> {
    let mut to = std::io::BufWriter::new(to);
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = None;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| start.elapsed());
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok(first)
}

/// Copies the child's stderr to its file, each line prefixed with `[  12.345s] `, the time
/// since the child started.
fn copy_stamping_lines(from: impl Read, to: fs::File, start: Instant) -> std::io::Result<()> {
    let mut from = std::io::BufReader::new(from);
    let mut to = std::io::BufWriter::new(to);
    let mut line = Vec::new();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        write!(to, "[{:>8.3}s] ", start.elapsed().as_secs_f64())?;
        to.write_all(&line)?;
        // Unbuffered enough for `tail` of a live run.
        if line.ends_with(b"\n") {
            to.flush()?;
        }
    }
    to.flush()
}

/// The time stamp `copy_stamping_lines` put on the first stderr line containing `needle`.
fn stamped(stderr: &Path, needle: &str) -> Option<f64> {
    let text = fs::read_to_string(stderr).ok()?;
    let line = text.lines().find(|l| l.contains(needle))?;
    let stamp = line.strip_prefix('[')?.split_once("s]")?.0;
    stamp.trim().parse().ok()
}

/// User + system CPU time of this process so far.
fn own_cpu() -> anyhow::Result<Duration> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Waits for `pid` with `wait4`, polling so a deadline can kill it; returns the exit code
/// (128 + signal when killed by one), the peak RSS in KiB and the CPU time (user + system).
fn reap(
    pid: libc::pid_t,
    start: Instant,
    deadline: Duration,
) -> anyhow::Result<(i32, u64, Duration)> {
    let mut killed = false;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid for writes.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                -1
            };
            if killed {
                bail!("killed after the {} s deadline", deadline.as_secs());
            }
            let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
            let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
            return Ok((code, rss, cpu));
        }
        if got == -1 {
            return Err(std::io::Error::last_os_error()).context("wait4 on the child");
        }
        if !killed && start.elapsed() > deadline {
            // SAFETY: sending a signal to our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(REAP_POLL);
    }
}

/// N profiles `use_i` with `user_id:u_i`, `email:keep_i@x.com`, `email:bad_i@x.com`.
fn seed(items: u64) -> Seed {
    let profiles = (1..=items)
        .map(|i| SeedProfile {
            segment_id: Some(format!("use_{i}")),
            identifiers: vec![
                SeedIdentifier::Text(format!("user_id:u_{i}")),
                SeedIdentifier::Text(format!("email:keep_{i}@x.com")),
                SeedIdentifier::Text(format!("email:bad_{i}@x.com")),
            ],
        })
        .collect();
    Seed {
        space: SPACE.to_owned(),
        token: Some(TOKEN.to_owned()),
        profiles,
    }
}

/// Writes the manifest and its CSV source into `dir`; returns the manifest's path.
fn write_inputs(dir: &Path, run: &Run) -> anyhow::Result<PathBuf> {
    let csv_path = dir.join("bench.csv");
    let mut csv =
        std::io::BufWriter::new(fs::File::create(&csv_path).context("creating the bench CSV")?);
    let source = match run.shape {
        Shape::ByProfile => {
            writeln!(csv, "user_id,email")?;
            for i in 1..=run.items {
                writeln!(csv, "u_{i},bad_{i}@x.com")?;
            }
            "  - csv: bench.csv\n    profile_column: user_id\n    remove_columns: [email]\n"
        }
        Shape::IdentifierOnly => {
            writeln!(csv, "email")?;
            for i in 1..=run.items {
                writeln!(csv, "bad_{i}@x.com")?;
            }
            "  - csv: bench.csv\n    remove_columns: [email]\n"
        }
    };
    csv.flush().context("writing the bench CSV")?;
    let manifest = dir.join("bench.yaml");
    fs::write(
        &manifest,
        format!("version: 1\nspace: {SPACE}\nregion: us\nreason: bench\nsources:\n{source}"),
    )
    .context("writing the bench manifest")?;
    Ok(manifest)
}

fn print_figures(run: &Run, f: &Figures) {
    let plan = &f.plan;
    if run.lifted() {
        println!(
            "plan: {} reads/s ({} reads in {:.2} s)",
            thousands(plan.accepted_per_sec().round() as u64),
            thousands(plan.seen.reads),
            plan.wall_secs
        );
    } else {
        let r = f64::from(run.rate);
        println!(
            "plan rate / limit: {:.3} ({:.1}/s of {}/s)",
            plan.accepted_per_sec() / r,
            plan.accepted_per_sec(),
            run.rate
        );
    }
    if let Some(apply) = &f.apply {
        if run.lifted() {
            println!(
                "lifted: {} deletions/s end to end ({} in {:.2} s)",
                thousands((f.planned_deletes as f64 / apply.wall_secs).round() as u64),
                thousands(f.planned_deletes),
                apply.wall_secs
            );
        } else {
            let r = f64::from(run.rate);
            println!(
                "apply rate / limit: {:.3} ({:.1}/s of {}/s)",
                apply.accepted_per_sec() / r,
                apply.accepted_per_sec(),
                run.rate
            );
        }
        println!(
            "apply items/s: {:.1} ({} deletions in {:.2} s)",
            f.planned_deletes as f64 / apply.wall_secs,
            thousands(f.planned_deletes),
            apply.wall_secs
        );
        match f.reported_rate {
            Some(rate) => println!("idprune's reported apply rate: {rate:.1} requests/s"),
            None => println!("idprune's reported apply rate: n/a"),
        }
    }
    let requests = f.requests();
    let limited = f.rate_limited();
    println!(
        "429s: {} of {} requests ({:.2} %){}",
        thousands(limited),
        thousands(requests),
        share(limited, requests) * 100.0,
        match &f.apply {
            Some(a) => format!(
                "; plan {}, apply {}",
                thousands(plan.seen.rate_limited),
                thousands(a.seen.rate_limited)
            ),
            None => String::new(),
        }
    );
    if f.apply.is_some() {
        match (f.latency_p50_ms, f.latency_p99_ms) {
            (Some(p50), Some(p99)) => println!("latency p50/p99: {p50:.0}/{p99:.0} ms"),
            _ => println!("latency p50/p99: n/a (idprune's status reports none)"),
        }
    }
    match &f.apply {
        Some(a) => println!(
            "peak RSS plan/apply: {:.0}/{:.0} MB",
            mb(plan.peak_rss_kib),
            mb(a.peak_rss_kib)
        ),
        None => println!("peak RSS plan: {:.0} MB", mb(plan.peak_rss_kib)),
    }
    let per_item = |secs: f64| secs * 1e6 / run.items.max(1) as f64;
    match &f.apply {
        Some(a) => println!(
            "idprune CPU plan/apply: {:.2}/{:.2} s ({:.0}/{:.0} µs per item)",
            plan.cpu_secs,
            a.cpu_secs,
            per_item(plan.cpu_secs),
            per_item(a.cpu_secs)
        ),
        None => println!(
            "idprune CPU plan: {:.2} s ({:.0} µs per item)",
            plan.cpu_secs,
            per_item(plan.cpu_secs)
        ),
    }
    match &f.apply {
        Some(a) => println!(
            "emulator CPU plan/apply: {:.2}/{:.2} s",
            plan.emulator_cpu_secs, a.emulator_cpu_secs
        ),
        None => println!("emulator CPU plan: {:.2} s", plan.emulator_cpu_secs),
    }
    println!(
        "plan timeline: manifest staged {}, state sealed {}, plan printed {:.2} s",
        seconds(plan.staged_secs),
        seconds(plan.sealed_secs),
        plan.wall_secs
    );
}

fn judge_limited(run: &Run, f: &Figures, verdicts: &mut Vec<Verdict>) {
    let r = f64::from(run.rate);
    let label = format!("L={} ms{}", run.latency_ms, jitter_label(run.jitter));
    let plan_share = f.plan.accepted_per_sec() / r;
    verdicts.push(Verdict {
        target: format!("{label}: plan rate {plan_share:.3} × R ≥ {TARGET_RATE_SHARE}"),
        pass: plan_share >= TARGET_RATE_SHARE,
    });
    if let Some(apply) = &f.apply {
        let apply_share = apply.accepted_per_sec() / r;
        verdicts.push(Verdict {
            target: format!("{label}: apply rate {apply_share:.3} × R ≥ {TARGET_RATE_SHARE}"),
            pass: apply_share >= TARGET_RATE_SHARE,
        });
    }
    let limited = share(f.rate_limited(), f.requests());
    verdicts.push(Verdict {
        target: format!(
            "{label}: 429s {:.2} % of requests ≤ {:.0} %",
            limited * 100.0,
            TARGET_429_SHARE * 100.0
        ),
        pass: limited <= TARGET_429_SHARE,
    });
}

fn judge_lifted(f: &Figures, verdicts: &mut Vec<Verdict>) {
    if let Some(per_sec) = f.apply_items_per_sec() {
        verdicts.push(Verdict {
            target: format!(
                "lifted: {} deletions/s ≥ {}",
                thousands(per_sec.round() as u64),
                thousands(TARGET_LIFTED_PER_SEC as u64)
            ),
            pass: per_sec >= TARGET_LIFTED_PER_SEC,
        });
    }
}

fn judge_big(run: &Run, f: &Figures, verdicts: &mut Vec<Verdict>) {
    let label = format!("{} plan items", thousands(run.items));
    // The state file is complete when idprune starts printing the plan.
    let written = f.plan.sealed_secs.unwrap_or(f.plan.wall_secs);
    verdicts.push(Verdict {
        target: format!(
            "{label}: state written in {written:.1} s ≤ {TARGET_BIG_PLAN_SECS:.0} s (plan printed at {:.1} s)",
            f.plan.wall_secs
        ),
        pass: written <= TARGET_BIG_PLAN_SECS,
    });
    let rss = mb(f.plan.peak_rss_kib);
    verdicts.push(Verdict {
        target: format!("{label}: peak RSS {rss:.0} MB ≤ {TARGET_BIG_RSS_MB:.0} MB"),
        pass: rss <= TARGET_BIG_RSS_MB,
    });
}

fn judge_naive(f: &Figures, naive: f64, latency_ms: u64, verdicts: &mut Vec<Verdict>) {
    let Some(ours) = f.apply_items_per_sec() else {
        return;
    };
    let speedup = ours / naive;
    println!("naive: {naive:.1} items/s; idprune: {ours:.1} items/s; speed-up {speedup:.1}x");
    if latency_ms != TARGET_SPEEDUP_LATENCY_MS {
        println!("(the speed-up target of issue 3 is set at L={TARGET_SPEEDUP_LATENCY_MS} ms)");
        return;
    }
    verdicts.push(Verdict {
        target: format!(
            "L={latency_ms} ms: speed-up over the naive loop {speedup:.1}x ≥ {TARGET_SPEEDUP:.0}x"
        ),
        pass: speedup >= TARGET_SPEEDUP,
    });
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} s"))
}

fn jitter_label(jitter: u32) -> String {
    if jitter == 0 {
        String::new()
    } else {
        format!(" ±{jitter} %")
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The median of each figure over the repetitions (counters included, each on its own).
fn median_figures(all: &[Figures]) -> Figures {
    if all.len() == 1 {
        return all[0].clone();
    }
    let med = |get: &dyn Fn(&Figures) -> f64| {
        let mut v: Vec<f64> = all.iter().map(get).collect();
        median(&mut v)
    };
    let med_opt = |get: &dyn Fn(&Figures) -> Option<f64>| {
        let mut v: Vec<f64> = all.iter().filter_map(get).collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    let med_phase = |get: &dyn Fn(&Figures) -> Option<Phase>| -> Option<Phase> {
        let phases: Vec<Phase> = all.iter().filter_map(get).collect();
        if phases.is_empty() {
            return None;
        }
        let m = |g: &dyn Fn(&Phase) -> f64| {
            let mut v: Vec<f64> = phases.iter().map(g).collect();
            median(&mut v)
        };
        Some(Phase {
            wall_secs: m(&|p| p.wall_secs),
            cpu_secs: m(&|p| p.cpu_secs),
            emulator_cpu_secs: m(&|p| p.emulator_cpu_secs),
            staged_secs: phases[0]
                .staged_secs
                .map(|_| m(&|p| p.staged_secs.unwrap_or(f64::NAN))),
            sealed_secs: phases[0]
                .sealed_secs
                .map(|_| m(&|p| p.sealed_secs.unwrap_or(f64::NAN))),
            peak_rss_kib: m(&|p| p.peak_rss_kib as f64) as u64,
            seen: Counters {
                requests: m(&|p| p.seen.requests as f64) as u64,
                reads: m(&|p| p.seen.reads as f64) as u64,
                deletes: m(&|p| p.seen.deletes as f64) as u64,
                rate_limited: m(&|p| p.seen.rate_limited as f64) as u64,
            },
        })
    };
    Figures {
        plan: med_phase(&|f| Some(f.plan)).unwrap_or_default(),
        apply: med_phase(&|f| f.apply),
        planned_deletes: med(&|f| f.planned_deletes as f64) as u64,
        reported_rate: med_opt(&|f| f.reported_rate),
        latency_p50_ms: med_opt(&|f| f.latency_p50_ms),
        latency_p99_ms: med_opt(&|f| f.latency_p99_ms),
    }
}
