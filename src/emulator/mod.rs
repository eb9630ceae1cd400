//! The built-in Unify emulator (docs/ARCHITECTURE.md, *The emulator*): an axum server on loopback
//! that answers the Profile API subset idprune reads (`GET .../external_ids`) and the Delete
//! Profile Identifier endpoint the way Segment documents them, with rate limits, propagation delay
//! and injected faults. It drives the demo, the integration tests and the benchmarks.
//!
//! It must share no encoding, decoding or error-classification code with the client
//! (`src/segment/`), nor use `crate::model` parsing: a bug shared by both sides would pass every
//! test and still fail against Segment. It never binds anything but a loopback address.
//!
//! Layout: `seed` (the JSON starting data), `route` (raw path, own percent-decoder, lookups,
//! query), `space/` (the emulated space: profiles, index, Segment's decisions, limits, stats;
//! one file a job), `limiter` (the space limiter's three kinds), `bucket` (token buckets),
//! `faults` (seeded fault injection), `reply` (the error envelope), `server` (axum).

mod bucket;
mod faults;
pub(crate) mod limiter;
mod reply;
mod route;
mod seed;
mod server;
mod space;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use limiter::LimiterKind;
pub use seed::{DEFAULT_SPACE, Seed, SeedIdentifier, SeedProfile};

/// The environment variable that sets the accepted token when the seed has none.
pub const TOKEN_ENV: &str = "IDPRUNE_EMULATOR_TOKEN";
/// The accepted token when neither the seed nor [`TOKEN_ENV`] gives one.
pub const DEFAULT_TOKEN: &str = "demo-token";
/// How long [`Emulator::shutdown`] waits for in-flight requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The flags of `idprune emulator`. `Config::default()` equals the clap defaults.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on; must be loopback. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// JSON file with the space, optional token and profiles (empty space when absent).
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Requests per second for the whole space, reads and deletes together; 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub space_rate: u32,
    /// How the space limit counts: a strict sliding 1 s window (the strictest reading of
    /// Segment's docs), fixed clock-aligned seconds, or a token bucket of a second's tokens.
    /// A refused request uses none of the budget.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = LimiterKind::SlidingWindow)]
    pub limiter: LimiterKind,
    /// Each request waits uniformly in [0, N) milliseconds before the limiter sees it (network
    /// delay the client cannot see: arrival order and spacing differ from sending).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub transit_jitter_ms: u64,
    /// Deletes per second for a single profile; 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub profile_rate: u32,
    /// Added latency per request, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Latency is uniform within ±PCT% of --latency-ms.
    #[arg(long, value_name = "PCT", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub latency_jitter: u32,
    /// Fraction (0..1) of requests answered 500/502/503.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub fail_rate: f64,
    /// Fraction (0..1) of requests that sleep --hang-ms before answering.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub hang_rate: f64,
    /// How long a hanging request sleeps, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 60_000)]
    pub hang_ms: u64,
    /// Fraction (0..1) of 200/404 answers whose body is cut short (invalid JSON).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub malformed_rate: f64,
    /// Fraction (0..1) of successful deletes that are applied but answered 500.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub lost_ack_rate: f64,
    /// Deleted identifiers keep showing in reads (and resolving lookups) for N milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub propagation_ms: u64,
    /// Answer every delete with 403 `forbidden` (the feature is not activated for the space).
    #[arg(long)]
    pub not_activated: bool,
    /// Seed of the fault-injection RNG, for a reproducible run (default: from the clock).
    #[arg(long, value_name = "N")]
    pub random_seed: Option<u64>,
    /// Send `Retry-After: SECS` with every 429 (Segment documents none, so off by default).
    #[arg(long, value_name = "SECS")]
    pub retry_after: Option<u64>,
    /// Answer deletes 200 `success` without removing anything (a service that behaves
    /// differently from its documentation; what `apply --canary` guards against).
    #[arg(long)]
    pub ineffective_deletes: bool,
    /// Lookups holding an upper-case character find no profile (Segment: "queries with an
    /// external_id in other casing won't return any profiles"), even when stored that way.
    #[arg(long)]
    pub lowercase_lookups: bool,
    /// Answer deletes of this identifier type with 400 `unsupported_eid_type` (Segment's
    /// answer for a type it cannot delete); repeatable. A permanent failure to test with.
    #[arg(long = "unsupported-type", value_name = "TYPE")]
    pub unsupported_types: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            space_rate: 100,
            limiter: LimiterKind::SlidingWindow,
            transit_jitter_ms: 0,
            profile_rate: 100,
            latency_ms: 0,
            latency_jitter: 0,
            fail_rate: 0.0,
            hang_rate: 0.0,
            hang_ms: 60_000,
            malformed_rate: 0.0,
            lost_ack_rate: 0.0,
            propagation_ms: 0,
            not_activated: false,
            random_seed: None,
            retry_after: None,
            ineffective_deletes: false,
            lowercase_lookups: false,
            unsupported_types: Vec::new(),
        }
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    check_fraction(value)
}

fn check_fraction(value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{value}` is not a fraction between 0 and 1"))
    }
}

impl Config {
    fn check(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on `{}`: the emulator only binds loopback addresses; use `127.0.0.1:PORT`",
                self.listen
            );
        }
        for (flag, value) in [
            ("--fail-rate", self.fail_rate),
            ("--hang-rate", self.hang_rate),
            ("--malformed-rate", self.malformed_rate),
            ("--lost-ack-rate", self.lost_ack_rate),
        ] {
            check_fraction(value).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
        if self.latency_jitter > 100 {
            anyhow::bail!("--latency-jitter: `{}` is above 100%", self.latency_jitter);
        }
        Ok(())
    }
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] also stops the server.
pub struct Emulator {
    addr: SocketAddr,
    random_seed: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Emulator {
    /// Binds `config.listen` (refusing non-loopback addresses) and serves `seed` in the
    /// background. The accepted token is the seed's `token`, else `IDPRUNE_EMULATOR_TOKEN`,
    /// else `demo-token`.
    pub async fn start(config: Config, seed: Seed) -> anyhow::Result<Emulator> {
        config.check()?;
        let token = seed
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()))
            .unwrap_or_else(|| DEFAULT_TOKEN.to_owned());
        let random_seed = config.random_seed.unwrap_or_else(clock_seed);
        let options = space::Options {
            propagation: Duration::from_millis(config.propagation_ms),
            not_activated: config.not_activated,
            space_rate: config.space_rate,
            limiter: config.limiter,
            profile_rate: config.profile_rate,
            retry_after: config.retry_after,
            ineffective_deletes: config.ineffective_deletes,
            lowercase_lookups: config.lowercase_lookups,
            unsupported_types: config.unsupported_types.clone(),
        };
        let space = space::Space::from_seed(seed, token, options, Instant::now())?;
        let faults = faults::Faults::new(
            faults::FaultSettings {
                latency: Duration::from_millis(config.latency_ms),
                jitter_pct: config.latency_jitter,
                transit_jitter: Duration::from_millis(config.transit_jitter_ms),
                fail_rate: config.fail_rate,
                hang_rate: config.hang_rate,
                hang: Duration::from_millis(config.hang_ms),
                malformed_rate: config.malformed_rate,
                lost_ack_rate: config.lost_ack_rate,
            },
            random_seed,
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the emulator to `{}`", config.listen))?;
        let addr = listener
            .local_addr()
            .context("reading the emulator's bound address")?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(server::Shared::new(space, faults, stopped.clone()));
        let app = server::router(shared);
        let mut signal = stopped;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Also resolves when the sender is dropped with the `Emulator`.
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Emulator {
            addr,
            random_seed,
            stop,
            task,
        })
    }

    /// The bound address (the real port when `--listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for `--api-url` / `IDPRUNE_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The seed of the fault-injection RNG (pass it as `--random-seed` to replay a run).
    pub fn random_seed(&self) -> u64 {
        self.random_seed
    }

    /// Stops accepting, wakes sleeping (latency, hang) requests, lets in-flight requests finish
    /// for up to a few seconds, then stops.
    pub async fn shutdown(self) {
        let Emulator { stop, mut task, .. } = self;
        let _ = stop.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `idprune emulator`: load `--seed` (or an empty space), start, print one line
/// `listening on http://127.0.0.1:PORT` to stdout, and serve until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let seed = match &config.seed {
        Some(path) => Seed::from_path(path)?,
        None => Seed::default(),
    };
    // The token line only for the well-known demo token: a token from the seed or the
    // environment is not printed.
    let demo_token = seed.token.as_deref().is_none_or(str::is_empty)
        && std::env::var(TOKEN_ENV).ok().is_none_or(|t| t.is_empty());
    let emulator = Emulator::start(config, seed).await?;
    // Written, not `eprintln!`ed: a closed stderr (`2>&1 | head`) must not panic the server.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "emulator: fault-injection random seed {0} (pass --random-seed {0} to replay)",
        emulator.random_seed()
    );
    let _ = writeln!(
        err,
        "emulator: point idprune here, in another shell:\n  export IDPRUNE_API_URL={}\n  export SEGMENT_ACCESS_TOKEN={}",
        emulator.base_url(),
        if demo_token {
            DEFAULT_TOKEN
        } else {
            "<the token of the seed or of IDPRUNE_EMULATOR_TOKEN>"
        }
    );
    drop(err);
    {
        let mut out = std::io::stdout().lock();
        let said = writeln!(out, "listening on {}", emulator.base_url()).and_then(|()| out.flush());
        match said {
            // Nobody reads stdout (`| head` closed it): the server goes on serving.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.context("writing to stdout")?,
        }
    }
    wait_for_stop_signal().await?;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests;
