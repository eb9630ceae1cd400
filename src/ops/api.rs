//! How an operation reaches Segment, resolved once from the flags (`commands::api_from_flags`)
//! or built directly (`demo`'s in-process emulator, [`Api::fixed`]): the endpoint rule, where
//! the token comes from, and the pacing. Operations receive an [`Api`] and never look at clap
//! types.
//!
//! The base URL depends on the region, which only the manifest or the state file knows, and
//! the token is only read once a command is about to send: so an [`Api`] holds the *rules*
//! and [`Api::base_url`] / [`Api::token`] apply them when the command gets there.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use reqwest::Url;
use secrecy::SecretString;

use super::{TOKEN_ENV, request_timeout};
use crate::manifest::Region;
use crate::pace::Pacer;
use crate::segment::{Client, ClientOptions};

/// The most bytes of a token file or of a token on standard input: Segment's tokens are
/// far shorter; a bigger file is a wrong path, never sent.
pub const MAX_TOKEN_BYTES: u64 = 4096;

/// Requests per second and in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Requests per second for the whole space (0: unlimited).
    pub rate: u32,
    /// Requests in flight at most.
    pub concurrency: u32,
}

/// Where the access token comes from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// `SEGMENT_ACCESS_TOKEN`.
    Env,
    /// `--token-file PATH`.
    File(PathBuf),
    /// `--token-stdin`.
    Stdin,
    /// A token fixed in code (the demo's emulator).
    Given(SecretString),
}

/// An explicit base URL and what set it, for messages.
#[derive(Clone, Debug)]
struct Endpoint {
    text: String,
    from: &'static str,
}

/// Everything a command needs to talk to Segment.
#[derive(Clone, Debug)]
pub struct Api {
    /// `--api-url`, `IDPRUNE_API_URL` or the demo's emulator; `None`: the region decides.
    endpoint: Option<Endpoint>,
    /// `--insecure`: plain http to a host that is not loopback.
    insecure: bool,
    /// Where the token comes from.
    pub token: TokenSource,
    /// Pacing.
    pub pace: Pace,
}

impl Api {
    /// An API reached at `endpoint` (its URL and what set it, for messages; `None`: the
    /// region decides), over plain http to a host that is not loopback when `insecure`.
    pub fn new(
        endpoint: Option<(String, &'static str)>,
        insecure: bool,
        token: TokenSource,
        pace: Pace,
    ) -> Self {
        Self {
            endpoint: endpoint.map(|(text, from)| Endpoint { text, from }),
            insecure,
            token,
            pace,
        }
    }

    /// A fixed endpoint and token (the demo's in-process emulator).
    pub fn fixed(base: String, token: SecretString, pace: Pace) -> Self {
        Self {
            endpoint: Some(Endpoint {
                text: base,
                from: "the demo",
            }),
            insecure: false,
            token: TokenSource::Given(token),
            pace,
        }
    }

    /// The API base URL: the explicit endpoint, else the region's host.
    pub fn base_url(&self, region: Region) -> anyhow::Result<Url> {
        let (text, from) = match &self.endpoint {
            Some(e) => (e.text.as_str(), e.from),
            None => (region.base_url(), "the manifest's region"),
        };
        let url =
            Url::parse(text.trim()).with_context(|| format!("{from}: `{text}` is not a URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) || self.insecure => {}
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

    /// Reads the access token from its source (a file: one line, at most 4 KiB).
    pub fn token(&self) -> anyhow::Result<SecretString> {
        let raw = match &self.token {
            TokenSource::Given(token) => return Ok(token.clone()),
            TokenSource::File(path) => {
                crate::bounded::read_secret_line(path, "token file", MAX_TOKEN_BYTES)?
            }
            TokenSource::Stdin => {
                let mut s = String::new();
                std::io::stdin()
                    .take(MAX_TOKEN_BYTES + 1)
                    .read_to_string(&mut s)
                    .context("reading the token from standard input")?;
                if s.len() as u64 > MAX_TOKEN_BYTES {
                    bail!(
                        "the token on standard input is over {MAX_TOKEN_BYTES} bytes; pipe the token alone"
                    );
                }
                s
            }
            TokenSource::Env => std::env::var(TOKEN_ENV).unwrap_or_default(),
        };
        let token = raw.trim();
        if token.is_empty() {
            bail!("no access token: set {TOKEN_ENV}, or pass --token-file PATH or --token-stdin");
        }
        Ok(SecretString::from(token.to_owned()))
    }

    /// The paced client for `space` at `base`, with the token read now.
    pub fn client(&self, base: &Url, space: &str) -> anyhow::Result<Client> {
        Client::new(ClientOptions {
            base_url: base.clone(),
            space: space.to_owned(),
            token: self.token()?,
            pacer: Arc::new(Pacer::new(self.pace.rate)),
            timeout: request_timeout(),
            max_idle: self.pace.concurrency as usize,
        })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str, insecure: bool) -> Api {
        Api::new(
            Some((url.into(), "--api-url")),
            insecure,
            TokenSource::Env,
            Pace {
                rate: 1,
                concurrency: 1,
            },
        )
    }

    #[test]
    fn base_url_rules() {
        assert!(
            with_url("http://127.0.0.1:9", false)
                .base_url(Region::Us)
                .is_ok()
        );
        assert!(
            with_url("http://example.com", false)
                .base_url(Region::Us)
                .is_err()
        );
        assert!(
            with_url("http://example.com", true)
                .base_url(Region::Us)
                .is_ok()
        );
        assert!(
            with_url("ftp://example.com", true)
                .base_url(Region::Us)
                .is_err()
        );
    }

    #[test]
    fn fixed_token_is_returned() {
        let api = Api::fixed(
            "http://127.0.0.1:9".into(),
            SecretString::from("t"),
            Pace {
                rate: 1,
                concurrency: 1,
            },
        );
        assert!(api.token().is_ok());
        assert_eq!(
            api.base_url(Region::Eu).expect("fixed url").as_str(),
            "http://127.0.0.1:9/"
        );
    }
}
