//! The command layer: turns parsed arguments into calls of the core modules, with context on
//! every file, database and network error. It owns the edges the core must not touch: reading
//! the token, choosing the API base URL, the terminal prompt, signals and progress lines.

mod apply;
mod canary;
mod demo;
mod guard;
mod init;
mod plan;
mod progress;
mod review;
mod show;
mod verify;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Url;
use secrecy::SecretString;

use crate::cli::{ApiArgs, Cli, Command, PaceArgs};
use crate::exit::Exit;
use crate::pace::Pacer;
use crate::segment::{Client, ClientOptions};

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

/// A refusal: the plan is stale or tampered, the digest is not approved, or the state is locked.
/// Maps to exit code 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Runs one command and returns how it ended. Errors map to exit 1, [`Refused`] to exit 4.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Validate(args) => plan::validate(&args),
        Command::Plan(args) => plan::plan(&args).await,
        Command::Show(args) => show::show(&args),
        Command::Apply(args) => apply::apply(&args).await,
        Command::Status(args) => show::status(&args),
        Command::Verify(args) => verify::verify(&args).await,
        Command::Report(args) => show::report(&args),
        Command::Purge(args) => show::purge(&args),
        Command::Unlock(args) => show::unlock(&args),
        Command::Emulator(config) => crate::emulator::run(config).await.map(|()| Exit::Success),
        Command::Demo(args) => demo::demo(&args).await,
        Command::Guard(args) => guard::guard(&args),
        Command::Init(args) => init::init(&args),
    }
}

/// Maps an error to its exit code.
pub fn exit_for(error: &anyhow::Error) -> Exit {
    if error.downcast_ref::<Refused>().is_some()
        || error.downcast_ref::<crate::state::Refusal>().is_some()
    {
        Exit::Refused
    } else {
        Exit::Error
    }
}

/// An endpoint and token fixed in code (the demo's in-process emulator).
#[derive(Clone, Debug)]
pub struct Fixed {
    /// Base URL.
    pub base: String,
    /// Token.
    pub token: SecretString,
}

/// Reads the access token: `--token-file`, `--token-stdin`, or `SEGMENT_ACCESS_TOKEN`.
pub fn load_token(api: &ApiArgs) -> anyhow::Result<SecretString> {
    if let Some(fixed) = &api.fixed {
        return Ok(fixed.token.clone());
    }
    let raw = if let Some(path) = &api.token_file {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading token file `{}`", path.display()))?
    } else if api.token_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the token from standard input")?;
        s
    } else {
        std::env::var(TOKEN_ENV).unwrap_or_default()
    };
    let token = raw.trim();
    if token.is_empty() {
        bail!("no access token: set {TOKEN_ENV}, or pass --token-file PATH or --token-stdin");
    }
    Ok(SecretString::from(token.to_owned()))
}

/// The API base URL: `--api-url`, then `IDPRUNE_API_URL`, then the region's host.
pub fn base_url(api: &ApiArgs, region_default: &str) -> anyhow::Result<Url> {
    let env = std::env::var(API_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (text, from) = match (&api.api_url, env) {
        _ if api.fixed.is_some() => (
            api.fixed
                .as_ref()
                .map(|f| f.base.clone())
                .unwrap_or_default(),
            "the demo",
        ),
        (Some(flag), _) => (flag.clone(), "--api-url"),
        (None, Some(env)) => (env, API_URL_ENV),
        (None, None) => (region_default.to_owned(), "the manifest's region"),
    };
    let url = Url::parse(text.trim()).with_context(|| format!("{from}: `{text}` is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) || api.insecure => {}
        "http" => bail!(
            "{from}: `{text}` is plain http to a host that is not loopback; the token would travel in clear. Use https, or pass --insecure"
        ),
        other => bail!("{from}: unsupported scheme `{other}`; use https"),
    }
    if url.host_str().is_none() {
        bail!("{from}: `{text}` has no host");
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// The default API base URL of a region name (`us`, `eu`) as stored in a state file.
pub fn region_url(region: &str) -> &'static str {
    let region = if region == crate::manifest::Region::Eu.as_str() {
        crate::manifest::Region::Eu
    } else {
        crate::manifest::Region::Us
    };
    region.base_url()
}

/// Builds the paced client for a space.
pub fn client(
    base: &Url,
    space: &str,
    token: SecretString,
    pace: &PaceArgs,
) -> anyhow::Result<Client> {
    Client::new(ClientOptions {
        base_url: base.clone(),
        space: space.to_owned(),
        token,
        pacer: Arc::new(Pacer::new(pace.rate)),
        timeout: request_timeout(),
        max_idle: pace.concurrency as usize,
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

/// Listens for Ctrl-C (SIGINT) from now on: unlike `tokio::signal::ctrl_c`, which registers
/// only when first polled, a signal that arrives before the first `recv` is not lost and does
/// not kill the process.
pub fn interrupts() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listening for Ctrl-C")
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

    #[test]
    fn base_url_rules() {
        let api = ApiArgs {
            api_url: Some("http://127.0.0.1:9".into()),
            ..ApiArgs::default()
        };
        assert!(base_url(&api, "https://profiles.segment.com").is_ok());
        let api = ApiArgs {
            api_url: Some("http://example.com".into()),
            ..ApiArgs::default()
        };
        assert!(base_url(&api, "https://profiles.segment.com").is_err());
        let api = ApiArgs {
            api_url: Some("http://example.com".into()),
            insecure: true,
            ..ApiArgs::default()
        };
        assert!(base_url(&api, "https://profiles.segment.com").is_ok());
    }
}
