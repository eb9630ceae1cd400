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
//! The launcher stamps each stderr line of the child with its time, notes its first stdout
//! byte and polls for the plan's state file, which gives plan's timeline: manifest staged (the
//! `Resolving` line), state file in place (the sealed file appears at its path: `plan` renames
//! it there complete), printing from (the plan's first byte, once idprune reopened and checked
//! the file), plan printed (exit).
//! With `--repeat K` every figure is the median of K runs.
//!
//! Server-side figures (issue 8): the emulator records when its space limiter accepted and
//! refused each request (`/__emulator/arrivals`); per phase the bench prints the accepted rate
//! first to last as the server saw it ÷ the available limit, the 429 share, and the seconds
//! until the rate held within 5 % of the limit; beside them, not judged, the same rate from the
//! second accepted request (the first sent after the service's first answer), which leaves out
//! the round trip slow start's first request spends alone. `--limiter`, `--transit-jitter-ms` and
//! `--available-rate` shape the server; `--scenario limits` runs issue 8's cases. The program
//! exits 1 when any printed verdict is FAIL.
//!
//! Layout: `args` (flags, one run's parameters), `scenarios` (the presets and issue 8's
//! targets), `runner` (one measurement against an in-process emulator), `launcher` (the child
//! process wrapper), `inputs` (seed, manifest, CSV), `figures` (what is printed and judged),
//! `warehouse` (issue 22's scenario: a warehouse-discovered clean-up, see its module docs).
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- --scenario targets
//! cargo run --release --example bench -- --scenario limits --repeat 3
//! cargo run --release --example bench -- --items 2000 --latency-ms 300 --jitter 30 --naive
//! cargo run --release --example bench -- --scenario targets --big   # adds the 1M-item plan
//! cargo run --release --example bench -- --scenario warehouse --repeat 3   # issue 22
//! ```
//!
//! It only ever contacts the emulator on 127.0.0.1, and every child runs under a deadline so a
//! stuck run fails instead of hanging a shared machine. Figures, not assertions: tests assert
//! behaviour, this program measures.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use idprune::emulator::{Config, Emulator, LimiterKind, Seed, SeedIdentifier, SeedProfile};
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
/// Deletions per second end to end with the limit lifted (issue 3 asked 5,000; issue 8 holds
/// it at 15,000, no regression from the figure issue 3 closed with).
const TARGET_LIFTED_PER_SEC: f64 = 15_000.0;
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

mod args;
mod figures;
mod inputs;
mod launcher;
mod runner;
mod scenarios;
mod warehouse;

use args::*;
use figures::*;
use inputs::*;
use launcher::*;

use scenarios::*;

/// A PASS/FAIL verdict against one target.
pub struct Verdict {
    pub target: String,
    pub pass: bool,
}

/// Exits 1 when a printed verdict is FAIL (or the bench itself failed), so CI and scripts
/// can rely on the exit code, not on reading the output.
pub fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut argv = std::env::args_os();
    if argv.nth(1).as_deref() == Some(OsStr::new(LAUNCHER_ARG)) {
        launch(&argv.collect::<Vec<_>>())?;
        return Ok(std::process::ExitCode::SUCCESS);
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
        Some(Scenario::Limits) => limits(&bench, &args, &mut verdicts)?,
        Some(Scenario::Warehouse) => warehouse::warehouse(&bench, &args, &mut verdicts)?,
        None => single(&bench, &args, &mut verdicts)?,
    }
    if !verdicts.is_empty() {
        println!();
        println!("== verdicts ==");
        for v in &verdicts {
            println!("{} {}", if v.pass { "PASS" } else { "FAIL" }, v.target);
        }
    }
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    if failed > 0 {
        eprintln!("bench: {failed} verdict(s) FAIL");
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `target/release/idprune`: this example lives in `target/release/examples/`.
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("the bench executable has no grandparent directory")?;
    Ok(release.join(format!("idprune{}", std::env::consts::EXE_SUFFIX)))
}

/// The shared context of all runs.
pub struct Bench {
    pub bin: PathBuf,
    pub runtime: tokio::runtime::Runtime,
    pub repeat: u32,
    pub keep: bool,
}
