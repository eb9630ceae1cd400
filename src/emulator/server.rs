//! The HTTP side of the emulator: one axum fallback handler that reads the raw request target,
//! applies the space limit on arrival, latency and faults, authentication, then hands the
//! request to the emulated [`Space`]; plus the unauthenticated `/__emulator/*` test endpoints. Every response
//! carries a `Request-Id`. It never holds the space's lock across an `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::watch;

use super::faults::{Faults, server_error};
use super::reply::Reply;
use super::route::{Endpoint, Route, RouteError};
use super::space::{Attempt, DeleteTarget, Space};

/// The largest request body read; Segment's delete bodies are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The name of the header that identifies each answer (S4: "Every response has a `Request-Id`").
const REQUEST_ID: &str = "request-id";

/// What every request handler shares.
pub struct Shared {
    space: Mutex<Space>,
    faults: Faults,
    requests: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Bundles the space, the fault injector and the shutdown signal.
    pub fn new(space: Space, faults: Faults, shutdown: watch::Receiver<bool>) -> Shared {
        Shared {
            space: Mutex::new(space),
            faults,
            requests: AtomicU64::new(0),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Space> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.space
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count_fault(&self) {
        self.lock().stats.faults += 1;
    }

    /// Sleeps, but wakes early when the emulator shuts down so hangs never delay shutdown.
    async fn pause(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

/// The emulator's router: everything goes to one fallback handler so the raw path is ours.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("req_{n:012}");
    let path = request.uri().path();
    let reply = if path.starts_with("/__emulator/") {
        admin(&shared, request).await
    } else if path == "/v1" || path.starts_with("/v1/") {
        api(&shared, request, &request_id).await
    } else {
        Reply::error(404, "not_found", "Route not found.")
    };
    into_response(reply, &request_id)
}

fn into_response(reply: Reply, request_id: &str) -> Response {
    let mut builder = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, "application/json")
        .header(REQUEST_ID, request_id);
    if let Some(seconds) = reply.retry_after {
        builder = builder.header(RETRY_AFTER, seconds);
    }
    builder
        .body(Body::from(reply.body))
        .expect("status codes and headers built here are valid")
}

/// The token of an `Authorization: Basic base64(token:)` header; `None` unless the password is
/// empty, as Segment documents.
fn basic_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    password.is_empty().then(|| user.to_owned())
}

async fn api(shared: &Shared, request: Request, request_id: &str) -> Reply {
    // The network between client and server: arrival order and spacing differ from sending.
    shared.pause(shared.faults.transit()).await;
    let arrival = Instant::now();
    let route = Route::parse(request.uri().path());
    let endpoint = route.as_ref().ok().map(|r| r.endpoint);
    {
        let mut space = shared.lock();
        space.stats.requests += 1;
        match endpoint {
            Some(Endpoint::ExternalIds) => space.stats.reads += 1,
            Some(Endpoint::Delete) => space.stats.deletes += 1,
            None => {}
        }
        // Which identifier types reached a request path (an email there lands in server
        // logs): the lookup's type, `segment_id` for a bare profile id.
        if let Ok(r) = &route {
            let kind = match r.lookup.split_once(':') {
                Some((kind, _)) => kind.to_owned(),
                None => "segment_id".to_owned(),
            };
            *space.stats.path_types.entry(kind).or_default() += 1;
        }
        if let Err(too_many) = space.admit(arrival) {
            return too_many;
        }
    }
    shared.pause(shared.faults.latency()).await;
    if shared.faults.roll(shared.faults.hang_rate) {
        shared.count_fault();
        shared.pause(shared.faults.hang).await;
    }
    let authorised =
        basic_token(request.headers()).is_some_and(|token| shared.lock().token_matches(&token));
    if !authorised {
        return match endpoint {
            Some(Endpoint::Delete) => {
                Reply::error(401, "unauthorized", "The specified token is invalid.")
            }
            _ => Reply::error(
                401,
                "authentication_error",
                "The specified token is invalid.",
            ),
        };
    }
    let route = match route {
        Ok(route) => route,
        Err(RouteError::NotFound) => return Reply::error(404, "not_found", "Route not found."),
        Err(bad @ RouteError::BadSegment { .. }) => {
            return Reply::error(400, "validation_error", format!("{bad}."));
        }
    };
    match (route.endpoint, request.method()) {
        (Endpoint::ExternalIds, &Method::GET) => {
            let query = request.uri().query().map(str::to_owned);
            read(shared, &route, query.as_deref())
        }
        (Endpoint::Delete, &Method::POST) => delete(shared, &route, request, request_id).await,
        _ => Reply::error(405, "invalid_request_error", "Method not allowed."),
    }
}

fn read(shared: &Shared, route: &Route, query: Option<&str>) -> Reply {
    if shared.faults.roll(shared.faults.fail_rate) {
        shared.count_fault();
        return shared.faults.server_error();
    }
    let mut reply = shared
        .lock()
        .list_external_ids(Instant::now(), route, query);
    maybe_malform(shared, &mut reply);
    reply
}

async fn delete(shared: &Shared, route: &Route, request: Request, request_id: &str) -> Reply {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (target, mut reply) = match read_body(request).await {
        Err(too_large) => (DeleteTarget::read(route, b""), too_large),
        Ok(body) => {
            let target = DeleteTarget::read(route, &body);
            let reply = if shared.faults.roll(shared.faults.fail_rate) {
                shared.count_fault();
                shared.faults.server_error()
            } else {
                let reply =
                    shared
                        .lock()
                        .delete(Instant::now(), route, content_type.as_deref(), &body);
                if reply.status == 200 && shared.faults.roll(shared.faults.lost_ack_rate) {
                    shared.count_fault();
                    server_error(500)
                } else {
                    reply
                }
            };
            (target, reply)
        }
    };
    maybe_malform(shared, &mut reply);
    shared.lock().stats.delete_attempts.push(Attempt {
        request_id: request_id.to_owned(),
        target,
        status: reply.status,
    });
    reply
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; `Err` is the 413 to send.
async fn read_body(request: Request) -> Result<Bytes, Reply> {
    to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Reply::error(
                413,
                "invalid_request_error",
                "The request body is too large.",
            )
        })
}

fn maybe_malform(shared: &Shared, reply: &mut Reply) {
    if matches!(reply.status, 200 | 404) && shared.faults.roll(shared.faults.malformed_rate) {
        shared.count_fault();
        shared.faults.malform(&mut reply.body);
    }
}

async fn admin(shared: &Shared, request: Request) -> Reply {
    let raw = |body: Vec<u8>| Reply {
        status: 200,
        body,
        retry_after: None,
    };
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/__emulator/profiles") => raw(shared.lock().profiles_json()),
        (&Method::GET, "/__emulator/stats") => raw(shared.lock().stats_json()),
        (&Method::POST, "/__emulator/rebuild") => match read_body(request).await {
            Ok(body) => shared.lock().rebuild(&body),
            Err(too_large) => too_large,
        },
        (&Method::GET, "/__emulator/arrivals") => raw(shared.lock().arrivals_json()),
        (&Method::POST, "/__emulator/token") => {
            let body = match read_body(request).await {
                Ok(body) => body,
                Err(too_large) => return too_large,
            };
            #[derive(serde::Deserialize)]
            struct NewToken {
                token: String,
            }
            match serde_json::from_slice::<NewToken>(&body) {
                Ok(NewToken { token }) if !token.is_empty() => {
                    shared.lock().set_token(token);
                    Reply::json(200, &serde_json::json!({"ok": true}))
                }
                _ => Reply::error(
                    400,
                    "bad_request",
                    "Expected a JSON body `{\"token\": \"NEW\"}` with a non-empty token.",
                ),
            }
        }
        _ => Reply::error(404, "not_found", "Route not found."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, auth.parse().expect("header"));
        h
    }

    #[test]
    fn basic_auth_takes_the_token_as_user_with_an_empty_password() {
        let enc = |s: &str| STANDARD.encode(s);
        assert_eq!(
            basic_token(&headers(&format!("Basic {}", enc("tok:")))),
            Some("tok".into())
        );
        assert_eq!(
            basic_token(&headers(&format!("basic {}", enc("tok:")))),
            Some("tok".into())
        );
        assert_eq!(
            basic_token(&headers(&format!("Basic {}", enc("tok")))),
            None
        );
        assert_eq!(
            basic_token(&headers(&format!("Basic {}", enc("tok:pw")))),
            None
        );
        assert_eq!(
            basic_token(&headers(&format!("Bearer {}", enc("tok:")))),
            None
        );
        assert_eq!(basic_token(&headers("Basic !!!")), None);
        assert_eq!(basic_token(&HeaderMap::new()), None);
    }
}
