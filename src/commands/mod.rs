//! The command layer: turns parsed arguments into calls of the core modules, with context on
//! every file, database and network error. It owns the edges the core must not touch: reading
//! the token, choosing the API base URL, the terminal prompt, signals and progress lines.

mod api;
mod apply;
mod canary;
mod demo;
mod guard;
mod init;
mod plan;
mod progress;
mod review;
mod shell;
mod show;
mod sniff;
pub mod ui;
mod verify;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::manifest::Region;

/// The environment variable holding the access token.
pub const TOKEN_ENV: &str = "SEGMENT_ACCESS_TOKEN";
/// The environment variable holding the key of `purge`'s fingerprints.
pub const FINGERPRINT_KEY_ENV: &str = "IDPRUNE_FINGERPRINT_KEY";
/// The environment variable overriding the API base URL (empty counts as unset).
pub const API_URL_ENV: &str = "IDPRUNE_API_URL";
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Hidden override of [`REQUEST_TIMEOUT`] in milliseconds, for fault-injection tests that make
/// requests hang past the timeout without waiting 30 s for each. Not a documented flag: a
/// person never needs it.
pub const REQUEST_TIMEOUT_ENV: &str = "IDPRUNE_REQUEST_TIMEOUT_MS";

/// [`REQUEST_TIMEOUT`], or the positive number of milliseconds in [`REQUEST_TIMEOUT_ENV`].
pub fn request_timeout() -> Duration {
    std::env::var(REQUEST_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(REQUEST_TIMEOUT, Duration::from_millis)
}

pub use crate::exit::Refused;
pub use api::{Api, Pace, TokenSource};
pub use ui::Ui;

/// Runs one command and returns how it ended. Errors map to exit codes in [`crate::exit`].
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let ui = Ui::new(cli.quiet, cli.color);
    match cli.command {
        Command::Validate(args) => plan::validate(&args, &ui),
        Command::Plan { args, net } => plan::plan(&args, &Api::from_flags(&net), &ui).await,
        Command::Show(args) => show::show(&args, &ui),
        Command::Apply { args, net } => apply::apply(&args, &Api::from_flags(&net), &ui).await,
        Command::Status(args) => show::status(&args, &ui),
        Command::Verify { args, net } => verify::verify(&args, &Api::from_flags(&net), &ui).await,
        Command::Report(args) => show::report(&args, &ui),
        Command::Purge(args) => show::purge(&args, &ui),
        Command::Unlock(args) => show::unlock(&args, &ui),
        Command::Emulator(config) => crate::emulator::run(config).await.map(|()| Exit::Success),
        Command::Demo(args) => demo::demo(&args, &ui).await,
        Command::Completions { shell } => shell::completions(shell),
        Command::Man => shell::man(),
        Command::Guard(args) => guard::guard(&args),
        Command::Init(args) => init::init(&args),
    }
}

/// The region a state file recorded, as a typed value.
pub fn state_region(meta: &crate::state::Meta) -> anyhow::Result<Region> {
    meta.region.parse::<Region>().map_err(|e| {
        anyhow::anyhow!(
            "the state file records region `{}`: {e}; plan again",
            crate::render::clean(&meta.region)
        )
    })
}

/// The default state path of a manifest: `plans/x.yaml` → `plans/x.state.db`.
pub fn default_state_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("state.db")
}

/// `target` relative to the directory `base`, both made absolute first.
pub fn relative_to(target: &Path, base: &Path) -> anyhow::Result<String> {
    let target = std::path::absolute(target)?;
    let base = std::path::absolute(base)?;
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    rel.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path `{}` is not valid UTF-8", target.display()))
}

/// The directory a state file lives in.
pub fn state_dir(state: &Path) -> PathBuf {
    match state.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A signal that stops a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C, or the first step of a cancelled GitHub Actions job.
    Interrupt,
    /// SIGTERM: what GitHub Actions sends a few seconds after a cancel's SIGINT, and what
    /// `timeout`, Kubernetes and systemd send.
    Terminate,
}

impl Signal {
    /// How a command that this signal stopped exits: 130 or 143.
    pub fn exit(self) -> Exit {
        match self {
            Self::Interrupt => Exit::Interrupted,
            Self::Terminate => Exit::Terminated,
        }
    }

    /// How people name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "Interrupted (SIGINT)",
            Self::Terminate => "Terminated (SIGTERM)",
        }
    }
}

/// SIGINT and SIGTERM, listened for from creation on: unlike `tokio::signal::ctrl_c`, which
/// registers only when first polled, a signal that arrives before the first `next` is not
/// lost and does not kill the process.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening.
    pub fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Signal::Interrupt,
            Some(()) = self.terminate.recv() => Signal::Terminate,
            // Both streams end only with the runtime: nothing more will arrive.
            else => std::future::pending().await,
        }
    }
}

/// True when standard error is a terminal (progress bars) — plain lines otherwise.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/a/b/m.yaml"), Path::new("/a/b")).expect("rel"),
            "m.yaml"
        );
        assert_eq!(
            relative_to(Path::new("/a/m.yaml"), Path::new("/a/b")).expect("rel"),
            "../m.yaml"
        );
        assert_eq!(
            default_state_path(Path::new("plans/x.yaml")),
            PathBuf::from("plans/x.state.db")
        );
    }
}
