//! End-to-end tests of the emulator over loopback, with a hand-written HTTP/1.1 client so the
//! request target reaches the server byte for byte (no client-side normalisation).

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::*;

const TOKEN: &str = "t0k";
const SPACE: &str = "spa_t";

struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn code(&self) -> Option<String> {
        let v = self.json();
        v.pointer("/error/code")
            .or_else(|| v.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

fn basic(token: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{token}:")))
}

async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Http {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = auth {
        request.push_str(&format!("Authorization: {}\r\n", basic(token)));
    }
    let body = body.unwrap_or("");
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the emulator");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .expect("read the response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn seed() -> Seed {
    let many: Vec<String> = (0..30).map(|n| format!("anonymous_id:a{n:02}")).collect();
    let mut ids = vec!["user_id:big".to_owned()];
    ids.extend(many);
    Seed::from_json(
        &json!({
            "space": SPACE,
            "token": TOKEN,
            "profiles": [
                {"segment_id": "use_big", "identifiers": ids},
                {"segment_id": "use_p", "identifiers": [
                    "user_id:u 1/2", "user_id:second", "phone:+15550123", "email:a@x.com",
                    {"type": "email", "id": "100%"}, "email:café@x.com"
                ]},
            ]
        })
        .to_string(),
    )
    .expect("test seed")
}

async fn start(config: Config) -> Emulator {
    Emulator::start(config, seed())
        .await
        .expect("emulator starts")
}

fn base() -> String {
    format!("/v1/spaces/{SPACE}/collections/users/profiles")
}

fn delete_body(kind: &str, id: &str) -> String {
    json!({"delete_external_ids": [{"type": kind, "id": id}]}).to_string()
}

/// `GET target` with the accepted token.
async fn authed_get(addr: SocketAddr, target: &str) -> Http {
    send(addr, "GET", target, Some(TOKEN), None).await
}

/// `POST target` with the accepted token and a body deleting the identifier `kind:id`.
async fn authed_delete(addr: SocketAddr, target: &str, kind: &str, id: &str) -> Http {
    send(
        addr,
        "POST",
        target,
        Some(TOKEN),
        Some(&delete_body(kind, id)),
    )
    .await
}

/// The parsed body of `GET /__emulator/stats`.
async fn admin_stats(addr: SocketAddr) -> Value {
    send(addr, "GET", "/__emulator/stats", None, None)
        .await
        .json()
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[test]
fn default_config_matches_the_clap_defaults() {
    let parsed = Cli::try_parse_from(["emulator"]).expect("no flags").config;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    let parsed = Cli::try_parse_from([
        "emulator",
        "--listen",
        "127.0.0.1:8080",
        "--fail-rate",
        "0.25",
        "--latency-jitter",
        "10",
        "--not-activated",
        "--random-seed",
        "9",
    ])
    .expect("flags")
    .config;
    assert_eq!(parsed.listen.port(), 8080);
    assert_eq!(parsed.fail_rate, 0.25);
    assert!(parsed.not_activated);
    assert!(Cli::try_parse_from(["emulator", "--fail-rate", "1.5"]).is_err());
    assert!(Cli::try_parse_from(["emulator", "--latency-jitter", "101"]).is_err());
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let config = Config {
        listen: "0.0.0.0:0".parse().expect("addr"),
        ..Config::default()
    };
    let err = Emulator::start(config, Seed::default())
        .await
        .err()
        .expect("refused");
    assert!(format!("{err}").contains("loopback"), "{err}");
}

#[tokio::test]
async fn refuses_a_seed_sharing_an_identifier() {
    let seed: Seed = serde_json::from_value(json!({"profiles": [
        {"identifiers": ["email:x@y.com"]}, {"identifiers": ["email:x@y.com"]}
    ]}))
    .expect("parses without checks");
    assert!(Emulator::start(Config::default(), seed).await.is_err());
}

#[tokio::test]
async fn paginates_with_opaque_cursors_and_request_ids() {
    let emu = start(Config::default()).await;
    assert_eq!(
        emu.base_url(),
        format!("http://127.0.0.1:{}", emu.addr().port())
    );
    let addr = emu.addr();
    let first = authed_get(addr, &format!("{}/user_id:big/external_ids", base())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let v = first.json();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(25));
    assert_eq!(
        v["data"][0],
        json!({"source_id": "emu", "collection": "users", "id": "big", "type": "user_id",
               "created_at": "2026-01-01T00:00:00Z", "encoding": "none"})
    );
    assert_eq!(v["cursor"]["has_more"], json!(true));
    let url = v["cursor"]["url"].as_str().expect("url").to_owned();
    assert_eq!(url, format!("{}/use_big/external_ids", base()));
    let next = v["cursor"]["next"].as_str().expect("next").to_owned();
    let second = authed_get(addr, &format!("{url}?limit=25&next={next}")).await;
    let v = second.json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["a24", "a25", "a26", "a27", "a28", "a29"]);
    assert_eq!(v["cursor"]["has_more"], json!(false));

    let r1 = first.header("request-id").expect("Request-Id on 200");
    let r2 = second.header("request-id").expect("Request-Id on 200");
    assert!(r1.starts_with("req_") && r1 != r2);

    let bad = authed_get(addr, &format!("{url}?limit=26")).await;
    assert_eq!(
        (bad.status, bad.code().as_deref()),
        (400, Some("validation_error"))
    );
    assert!(
        bad.header("request-id").is_some(),
        "Request-Id on errors too"
    );
    let bad = authed_get(addr, &format!("{url}?next=map_bogus")).await;
    assert_eq!(
        (bad.status, bad.code().as_deref()),
        (400, Some("validation_error"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn decodes_the_raw_path_like_segment() {
    let emu = start(Config::default()).await;
    let addr = emu.addr();
    let get = |lookup: &str| format!("{}/{lookup}/external_ids", base());
    let cases: &[(&str, u16)] = &[
        ("phone:%2B15550123", 200),
        ("phone:+15550123", 404), // `+` is a space: the client forgot %2B
        ("phone%3A%2B15550123", 200),
        ("user_id:u%201%2F2", 200),
        ("user_id:u+1%2F2", 200),
        ("email:100%25", 200),
        ("email:caf%C3%A9@x.com", 200),
        ("email:A@x.com", 404), // lookups are case-sensitive
        ("use_p", 200),
        ("segment_id:use_p", 200),
        ("email:100%", 400),
        ("email:%C3", 400),
    ];
    for (lookup, status) in cases {
        let r = authed_get(addr, &get(lookup)).await;
        assert_eq!(r.status, *status, "{lookup}: {}", r.body);
        if *status == 404 {
            assert_eq!(
                r.json(),
                json!({"error": {"code": "not_found", "message": "Profile was not found."}})
            );
        }
        if *status == 400 {
            assert_eq!(r.code().as_deref(), Some("validation_error"));
        }
    }
    // A raw `/` in the value breaks the route.
    let r = authed_get(addr, &get("user_id:u 1/2").replace(' ', "%20")).await;
    assert_eq!(r.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn authenticates_and_checks_the_space() {
    let emu = start(Config::default()).await;
    let addr = emu.addr();
    let read = format!("{}/use_p/external_ids", base());
    let del = format!("{}/user_id:second/external_ids/delete", base());
    let r = send(addr, "GET", &read, None, None).await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (401, Some("authentication_error"))
    );
    let r = send(addr, "GET", &read, Some("wrong"), None).await;
    assert_eq!(r.status, 401);
    let r = send(
        addr,
        "POST",
        &del,
        Some("wrong"),
        Some(&delete_body("email", "a@x.com")),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"error": {"code": "unauthorized", "message": "The specified token is invalid."}})
    );
    let other = "/v1/spaces/spa_other/collections/users/profiles/user_id:second/external_ids";
    let r = authed_get(addr, other).await;
    assert_eq!((r.status, r.code().as_deref()), (404, Some("not_found")));
    let r = authed_delete(addr, &format!("{other}/delete"), "email", "a@x.com").await;
    assert_eq!(
        r.json(),
        json!({"error": {"code": "source_id_not_found", "message": "No source attached to space_id `spa_other`."}})
    );
    let r = authed_get(addr, &del).await;
    assert_eq!(r.status, 405);
    emu.shutdown().await;
}

#[tokio::test]
async fn deletes_and_reports_through_the_admin_endpoints() {
    let emu = start(Config::default()).await;
    let addr = emu.addr();
    let del = |lookup: &str| format!("{}/{lookup}/external_ids/delete", base());
    let r = authed_delete(addr, &del("user_id:u%201%2F2"), "phone", "+15550123").await;
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            json!({"code": "success", "message": "External identifier has been deleted."})
        )
    );
    assert!(r.header("request-id").is_some());
    let r = authed_delete(addr, &del("user_id:u%201%2F2"), "phone", "+15550123").await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (404, Some("eid_not_found"))
    );
    let r = authed_delete(addr, &del("user_id:u+1%2F2"), "email", "a@x.com").await;
    assert_eq!(r.status, 200, "`+` decodes to the space in `u 1/2`");
    let r = authed_delete(addr, &del("use_p"), "email", "100%").await;
    assert_eq!((r.status, r.code().as_deref()), (400, Some("bad_request")));

    let r = send(addr, "GET", "/__emulator/profiles", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["profiles"][1],
        json!({"segment_id": "use_p", "identifiers": ["user_id:u 1/2", "user_id:second", "email:100%", "email:café@x.com"]})
    );
    assert_eq!(r.json()["space"], json!(SPACE));

    let stats = admin_stats(addr).await;
    assert_eq!(stats["requests"], json!(4));
    assert_eq!(stats["deletes"], json!(4));
    assert_eq!(stats["reads"], json!(0));
    assert_eq!(
        stats["deleted"],
        json!([{"user_id": "u 1/2", "type": "phone", "id": "+15550123"},
               {"user_id": "u 1/2", "type": "email", "id": "a@x.com"}])
    );
    let statuses: Vec<u64> = stats["delete_attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["status"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 404, 200, 400]);
    assert_eq!(stats["delete_attempts"][3]["user_id"], json!("use_p"));

    // Revoking the token mid-run.
    let r = send(
        addr,
        "POST",
        "/__emulator/token",
        None,
        Some(r#"{"token":"fresh"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let read = format!("{}/use_p/external_ids", base());
    assert_eq!(authed_get(addr, &read).await.status, 401);
    assert_eq!(
        send(addr, "GET", &read, Some("fresh"), None).await.status,
        200
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn answers_429_over_the_space_rate() {
    let emu = start(Config {
        space_rate: 5,
        ..Config::default()
    })
    .await;
    let addr = emu.addr();
    let read = format!("{}/use_p/external_ids", base());
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..20 {
        let r = authed_get(addr, &read).await;
        statuses.push(r.status);
        if r.status == 429 {
            limited = Some(r);
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..20).contains(&ok), "{statuses:?}");
    let limited = limited.expect("some requests are limited");
    assert_eq!(limited.code().as_deref(), Some("rate_limit_error"));
    assert!(limited.header("request-id").is_some());
    assert_eq!(
        limited.header("retry-after"),
        None,
        "Segment documents no Retry-After"
    );
    let stats = admin_stats(addr).await;
    assert_eq!(stats["rate_limited"], json!(20 - ok));
    emu.shutdown().await;
}

#[tokio::test]
async fn injected_faults() {
    let del = format!("{}/user_id:second/external_ids/delete", base());
    let read = format!("{}/use_p/external_ids", base());

    let emu = start(Config {
        lost_ack_rate: 1.0,
        random_seed: Some(1),
        ..Config::default()
    })
    .await;
    let addr = emu.addr();
    let r = authed_delete(addr, &del, "email", "a@x.com").await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (500, Some("internal_error"))
    );
    let r = authed_delete(addr, &del, "email", "a@x.com").await;
    assert_eq!(
        r.code().as_deref(),
        Some("eid_not_found"),
        "the lost-ack delete was applied"
    );
    let stats = admin_stats(addr).await;
    assert_eq!(stats["deleted"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["faults"], json!(1));
    emu.shutdown().await;

    let emu = start(Config {
        fail_rate: 1.0,
        random_seed: Some(2),
        ..Config::default()
    })
    .await;
    let r = authed_get(emu.addr(), &read).await;
    assert!([500, 502, 503].contains(&r.status), "{}", r.status);
    assert_eq!(r.code().as_deref(), Some("internal_error"));
    let r = authed_delete(emu.addr(), &del, "email", "a@x.com").await;
    assert!(r.status >= 500);
    let stats = admin_stats(emu.addr()).await;
    assert!(
        stats["deleted"].as_array().is_some_and(Vec::is_empty),
        "a failed delete applies nothing"
    );
    assert_eq!(stats["delete_attempts"][0]["type"], json!("email"));
    emu.shutdown().await;

    let emu = start(Config {
        malformed_rate: 1.0,
        random_seed: Some(3),
        ..Config::default()
    })
    .await;
    let r = authed_get(emu.addr(), &read).await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "{}",
        r.body
    );
    let r = send(emu.addr(), "GET", &read, None, None).await;
    assert_eq!(r.status, 401);
    assert!(
        serde_json::from_str::<Value>(&r.body).is_ok(),
        "only 200/404 bodies are malformed"
    );
    emu.shutdown().await;

    let emu = start(Config {
        not_activated: true,
        ..Config::default()
    })
    .await;
    let r = authed_delete(emu.addr(), &del, "email", "a@x.com").await;
    assert_eq!(
        r.json(),
        json!({"error": {"code": "forbidden", "message": "Deleted identifier not activated for space_id `spa_t`."}})
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_wakes_hanging_requests() {
    let emu = start(Config {
        hang_rate: 1.0,
        hang_ms: 3_600_000,
        random_seed: Some(4),
        ..Config::default()
    })
    .await;
    let addr = emu.addr();
    let read = format!("{}/use_p/external_ids", base());
    let pending = tokio::spawn(async move { authed_get(addr, &read).await });
    // Wait until the request is inside the server (it is counted before it hangs), for at
    // most ten seconds: a server that never counts it fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stats = admin_stats(addr).await;
        if stats["faults"] == json!(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hanging request was never counted: {stats}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    emu.shutdown().await;
    let r = pending.await.expect("the hanging request completes");
    assert_eq!(r.status, 200, "answered once woken");
}
