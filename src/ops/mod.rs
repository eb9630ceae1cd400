//! The operations behind the commands, as library functions: planning (resolve, draft,
//! seal: [`plan`]), apply's pre-flight and run lifecycle ([`apply`]), `apply MANIFEST`
//! ([`apply::manifest`]), the canary ([`canary`]), `verify` ([`verify`]) and `init`
//! ([`init`]). Each takes plain option structs (an [`Api`] with its [`Pace`], a resolved
//! [`Approval`]) and returns an outcome value; `commands/` parses the flags into those
//! options, calls one operation and hands the outcome to `render/`. No clap type reaches this
//! layer, so the library plans and applies without the command line.
//!
//! What every operation shares lives here: where a state file sits beside its manifest, the
//! token and API URL variables, the request timeout, and Ctrl-C.

pub mod api;
pub mod apply;
pub mod canary;
pub mod checks;
pub mod init;
pub mod plan;
pub mod poll;
pub mod sniff;
pub mod stored;
pub mod validate;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::manifest::Region;

pub use crate::exit::{Refused, Signal};
pub use api::{Api, Pace, TokenSource};
pub use apply::{ApplyOptions, Approval};
pub use init::InitOptions;
pub use plan::PlanOptions;
pub use verify::VerifyOptions;

/// The environment variable holding the access token.
pub const TOKEN_ENV: &str = "SEGMENT_ACCESS_TOKEN";
/// The environment variable holding the key of `purge`'s fingerprints.
pub const FINGERPRINT_KEY_ENV: &str = "IDPRUNE_FINGERPRINT_KEY";
/// Largest `--key-file` read: a key is one line of a few dozen bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;
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

/// The region a state file recorded, as a typed value.
pub fn state_region(meta: &crate::state::Meta) -> anyhow::Result<Region> {
    meta.region.parse::<Region>().map_err(|e| {
        anyhow::anyhow!(
            "the state file records region `{}`: {e}; plan again",
            crate::text::clean(&meta.region)
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
