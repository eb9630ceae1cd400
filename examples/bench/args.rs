//! The bench's command line and the parameters of one run.

use super::*;

#[derive(Debug, Parser)]
#[command(about = "Benchmark idprune's plan and apply against the in-process emulator")]
pub struct Args {
    /// Items to plan and apply (profiles in the seed).
    #[arg(long, default_value_t = 5_000)]
    pub items: u64,
    /// Space limit of the emulator and idprune's `--rate`, requests/s; 0 = lifted.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Emulator latency per request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// Latency jitter, ± percent of --latency-ms.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub jitter: u32,
    /// Passed to idprune as `--concurrency`; by default idprune picks its own.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Also run the naive sequential loop and print the speed-up.
    #[arg(long)]
    pub naive: bool,
    /// Items for the naive loop (it runs at 1/latency, so a few hundred are enough).
    #[arg(long, default_value_t = 300)]
    pub naive_items: u64,
    /// Use an identifier-only CSV (each identifier is its own lookup), as target (d) does.
    #[arg(long)]
    pub identifier_only: bool,
    /// Stop after `plan` (no apply, no naive loop).
    #[arg(long, conflicts_with = "naive")]
    pub plan_only: bool,
    /// Run a preset instead of the single run the flags describe.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// With `--scenario targets`: also plan 1,000,000 identifier-only items (heavy: ~1.1 GB
    /// of emulator memory, minutes of CPU).
    #[arg(long)]
    pub big: bool,
    /// Repeat every measurement K times and print medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// `--scenario warehouse`: how many plans of the 5 %-stale warehouse measure the sampled
    /// check's detection rate (plans only read, so one emulator serves them all).
    #[arg(long, value_name = "K", default_value_t = 30)]
    pub stale_plans: u32,
    /// Keep each run's scratch directory (manifest, CSV, state file, the children's stdout and
    /// stderr) instead of deleting it; its path is printed.
    #[arg(long)]
    pub keep: bool,
    /// The emulator's space limiter (see `idprune emulator --limiter`).
    #[arg(long, value_enum, default_value_t = LimiterKind::SlidingWindow)]
    pub limiter: LimiterKind,
    /// Network delay before the emulator's limiter sees a request: uniform in [0, N) ms.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub transit_jitter_ms: u64,
    /// The limit the server enforces, below the client's --rate (a space shared with other
    /// traffic); default: --rate.
    #[arg(long, value_name = "N")]
    pub available_rate: Option<u32>,
    /// Plan with `--refresh=false` (user_id-keyed removals are not read).
    #[arg(long)]
    pub no_refresh: bool,
    /// The idprune binary (default: `idprune` next to this example's directory).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Every target of issue 3 in sequence: (a) L=50, (b) L=1000±30%, (c) lifted,
    /// (d) 1M plan items (only with --big), (e) naive loop at L=100.
    Targets,
    /// Issue 8's limiter targets, all against 20 ms of transit jitter: each limiter at
    /// L=50±20 ms (5,000 items) and L=1 s±30 % (3,000 items); a shared space (60/s available,
    /// client --rate 100); a wrong token and a space without the feature on a 5,000-item plan;
    /// 5,000 user_id-keyed deletions planned with --refresh=false.
    Limits,
    /// Issue 22: an email clean-up of N profiles discovered on DuckDB from Profiles Sync
    /// tables, planned with `--refresh=false --sample 100` against the same clean-up planned
    /// through reads, and a warehouse made 5 % stale (`--max-drift 2%`, `--allow-drift`).
    Warehouse,
}

/// The CSV shape of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `user_id,email`: the profile column is the lookup, `email` is removed.
    ByProfile,
    /// `email` only: each identifier is its own lookup.
    IdentifierOnly,
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Run {
    pub items: u64,
    pub rate: u32,
    pub latency_ms: u64,
    pub jitter: u32,
    pub concurrency: Option<u32>,
    pub shape: Shape,
    /// Run `apply` after `plan`.
    pub apply: bool,
    /// The emulator's space limiter.
    pub limiter: LimiterKind,
    /// The emulator's transit jitter, ms.
    pub transit_jitter_ms: u64,
    /// The server's limit when it is below `rate`.
    pub available: Option<u32>,
    /// Plan with `--refresh` (true) or `--refresh=false`.
    pub refresh: bool,
}

impl Run {
    pub fn lifted(&self) -> bool {
        self.rate == 0
    }

    /// The limit the server enforces (0: lifted).
    pub fn limit(&self) -> u32 {
        self.available.unwrap_or(self.rate)
    }

    /// A run against the limit with issue 8's defaults: sliding window, no transit jitter.
    pub fn limited(items: u64, latency_ms: u64, jitter: u32, concurrency: Option<u32>) -> Run {
        Run {
            items,
            rate: 100,
            latency_ms,
            jitter,
            concurrency,
            shape: Shape::ByProfile,
            apply: true,
            limiter: LimiterKind::SlidingWindow,
            transit_jitter_ms: 0,
            available: None,
            refresh: true,
        }
    }

    pub fn describe(&self) -> String {
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
        if !self.lifted() {
            let _ = write!(text, " limiter={:?}", self.limiter);
        }
        if self.transit_jitter_ms > 0 {
            let _ = write!(text, " transit-jitter={} ms", self.transit_jitter_ms);
        }
        if let Some(a) = self.available {
            let _ = write!(text, " available={a}/s");
        }
        if !self.refresh {
            text.push_str(" --refresh=false");
        }
        text
    }

    /// How long a phase of `requests` may take before it counts as stuck.
    pub fn deadline(&self, requests: u64) -> Duration {
        let per_sec = if self.lifted() {
            LIFTED_FLOOR_PER_SEC
        } else {
            u64::from(self.limit())
        };
        Duration::from_secs(requests / per_sec.max(1)) * DEADLINE_FACTOR + DEADLINE_SLACK
    }
}
