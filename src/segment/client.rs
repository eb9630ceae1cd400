//! The HTTP client for Segment's Profile API: Basic auth with the access token as user name and
//! an empty password, strict path encoding, one shared [`Pacer`], no redirects (credentials are
//! never replayed to another host), and a per-request timeout. Each call is one request: the
//! callers own retries.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret as _, SecretString};

use super::{
    DeleteOutcome, EXTERNAL_IDS_PAGE_LIMIT, Fault, MAX_DELETE_BODY, MAX_PAGE_BODY, ProfileApi,
    ReadPage, Reply, classify, path,
};
use crate::model::{Identifier, Lookup};
use crate::pace::Pacer;

/// The header carrying Segment's request id (logged for support tickets).
pub const REQUEST_ID: &str = "request-id";

/// How the client is built.
#[derive(Debug)]
pub struct ClientOptions {
    /// Scheme, host and port of the API (`https://profiles.segment.com`).
    pub base_url: Url,
    /// The Unify space id.
    pub space: String,
    /// The space's access token.
    pub token: SecretString,
    /// The shared pacer.
    pub pacer: Arc<Pacer>,
    /// How long one request may take before it counts as a transient fault.
    pub timeout: Duration,
    /// Connections kept open for reuse (sized to the executor's concurrency).
    pub max_idle: usize,
}

/// A paced, authenticated Profile API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The API origin, parsed once: each request only sets its path and query, so the host
    /// is not parsed (and IDNA-processed) again per request.
    base: Url,
    space_segment: String,
    auth: HeaderValue,
    pacer: Arc<Pacer>,
}

impl Client {
    /// Builds the client. The token goes into a header value marked sensitive and nowhere else.
    pub fn new(options: ClientOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(options.max_idle)
            .user_agent(concat!("idprune/", env!("CARGO_PKG_VERSION")))
            // Segment is trusted through the bundled webpki roots, as before `object_store`
            // (which turns on reqwest's native roots for cloud stores) joined the build: reading
            // the system's certificate store cost every command tens of milliseconds at start.
            .tls_built_in_native_certs(false)
            .build()
            .context("building the HTTP client")?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", options.token.expose_secret()));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))
            .context("the access token holds characters that cannot go in an HTTP header")?;
        auth.set_sensitive(true);
        Ok(Self {
            http,
            base: Url::parse(&origin(&options.base_url)).context("the API base URL")?,
            space_segment: path::encode(&options.space),
            auth,
            pacer: options.pacer,
        })
    }

    /// The URL of a profile route: the path is already percent-encoded (see [`path`]), which
    /// `Url::set_path` keeps as it is.
    fn profile_url(&self, profile_segment: &str, tail: &str, query: Option<&str>) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "/v1/spaces/{}/collections/users/profiles/{}/{}",
            self.space_segment, profile_segment, tail
        ));
        url.set_query(query);
        url
    }

    /// Sends one paced request; returns the complete response, or a transient fault when none
    /// arrived, with the time the exchange took (pacing excluded). The body is streamed and
    /// read to at most `cap` bytes: a longer one is a permanent fault, whatever its status, so
    /// no server can make idprune hold more than `cap` bytes of one answer.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        cap: usize,
    ) -> (Result<Raw, Fault>, Duration) {
        let Some(ticket) = self.pacer.ready().await else {
            return (Err(Fault::Stopped { sent: false }), Duration::ZERO);
        };
        let started = Instant::now();
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let result = async {
            let response = request.send().await.map_err(network_fault)?;
            let status = response.status().as_u16();
            if status == 429 {
                self.pacer.throttled(&ticket);
            } else {
                self.pacer.accepted(&ticket);
            }
            let headers = response.headers();
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| classify::retry_after(v, SystemTime::now()));
            let request_id = headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_capped(response, status, cap).await?;
            Ok(Raw {
                status,
                retry_after,
                request_id,
                body,
            })
        };
        // Once halted, a request on the wire has the grace to answer; then it is given up.
        let result = tokio::select! {
            result = result => result,
            () = self.pacer.grace_over() => Err(Fault::Stopped { sent: true }),
        };
        (result, started.elapsed())
    }
}

/// A complete HTTP response, before classification.
struct Raw {
    status: u16,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    body: Vec<u8>,
}

/// Reads a response body chunk by chunk, refusing it (without reading further) as soon as it
/// is announced or found to be longer than `cap` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    status: u16,
    cap: usize,
) -> Result<Vec<u8>, Fault> {
    let too_large = || Fault::Permanent {
        status,
        code: "body_too_large".to_owned(),
        message: format!("the answer's body is longer than {cap} bytes, the most idprune reads"),
    };
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_fault)? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `scheme://host[:port]` of a URL, without a trailing slash.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn network_fault(error: reqwest::Error) -> Fault {
    // The origin (scheme, host, port) names where it failed; the path holds identifier values.
    let host = error
        .url()
        .map(origin)
        .unwrap_or_else(|| "the API".to_owned());
    let reason = if error.is_timeout() {
        format!("request to {host} timed out")
    } else if error.is_connect() {
        format!("could not connect to {host}")
    } else {
        // Without the URL: it holds identifier values, and logs of faults are read widely.
        format!("connection failed: {}", error.without_url())
    };
    Fault::Retryable {
        reason,
        retry_after: None,
        throttled: false,
    }
}

fn reply<T>(
    (sent, elapsed): (Result<Raw, Fault>, Duration),
    classify: impl FnOnce(u16, &[u8], Option<Duration>) -> Result<T, Fault>,
) -> Reply<T> {
    match sent {
        Ok(Raw {
            status,
            retry_after,
            request_id,
            body,
        }) => Reply {
            result: classify(status, &body, retry_after),
            status: Some(status),
            request_id,
            elapsed,
        },
        Err(fault) => Reply {
            result: Err(fault),
            status: None,
            request_id: None,
            elapsed,
        },
    }
}

impl ProfileApi for Client {
    fn pacer(&self) -> Option<&Arc<Pacer>> {
        Some(&self.pacer)
    }

    async fn external_ids_page(&self, lookup: &Lookup, cursor: Option<&str>) -> Reply<ReadPage> {
        let mut query = format!("limit={EXTERNAL_IDS_PAGE_LIMIT}");
        if let Some(cursor) = cursor {
            query.push_str("&next=");
            query.push_str(&path::encode(cursor));
        }
        let url = self.profile_url(&path::lookup_segment(lookup), "external_ids", Some(&query));
        reply(
            self.send(Method::GET, url, None, MAX_PAGE_BODY).await,
            classify::read,
        )
    }

    async fn delete(&self, user_id: &str, identifier: &Identifier) -> Reply<DeleteOutcome> {
        let url = self.profile_url(&path::user_id_segment(user_id), "external_ids/delete", None);
        let body = serde_json::json!({
            "delete_external_ids": [{ "id": identifier.id, "type": identifier.kind }]
        });
        let body = body.to_string().into_bytes();
        reply(
            self.send(Method::POST, url, Some(body), MAX_DELETE_BODY)
                .await,
            classify::delete,
        )
    }
}
