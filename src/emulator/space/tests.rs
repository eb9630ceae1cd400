//! Unit tests of the emulated space: the delete checks in Segment's order, the per-profile
//! limit, reads that paginate, filter and lag behind deletes, read validation, the lenient
//! delete target and cursors.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::read::{decode_cursor, encode_cursor};
use super::{DeleteTarget, Deleted, Options, Space};
use crate::emulator::reply::Reply;
use crate::emulator::route::{Endpoint, Route};
use crate::emulator::seed::Seed;

const SEED: &str = r#"{"space": "spa_t", "profiles": [
    {"segment_id": "use_a", "identifiers": ["user_id:u1", "user_id:u2", "email:a@x.com", "anonymous_id:an", "group_id:g1"]},
    {"segment_id": "use_b", "identifiers": ["user_id:solo", "email:b@x.com"]},
    {"segment_id": "use_c", "identifiers": ["anonymous_id:only"]}
]}"#;

fn space(options: Options) -> (Space, Instant) {
    let now = Instant::now();
    let seed = Seed::from_json(SEED).expect("test seed");
    let space = Space::from_seed(seed, "tok".into(), options, now).expect("space");
    (space, now)
}

fn route(endpoint: Endpoint, space: &str, collection: &str, lookup: &str) -> Route {
    Route {
        endpoint,
        space: space.into(),
        collection: collection.into(),
        lookup: lookup.into(),
    }
}

fn del(lookup: &str) -> Route {
    route(Endpoint::Delete, "spa_t", "users", lookup)
}

fn body(kind: &str, id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"delete_external_ids": [{"type": kind, "id": id}]})).expect("json")
}

const JSON: Option<&str> = Some("application/json");

/// Route, content type, body, then the expected status, code and message.
type GuardCase = (
    Route,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
    &'static str,
);

/// Each row breaks exactly one rule more than the rows below it allow, so the expected
/// code proves the order of the checks.
#[test]
fn delete_checks_run_in_segments_order() {
    let not_activated = Options {
        not_activated: true,
        ..Options::default()
    };
    let (mut s, now) = space(not_activated);
    let r = s.delete(now, &del("user_id:u1"), JSON, &body("email", "a@x.com"));
    assert_eq!((r.status, r.code().as_deref()), (403, Some("forbidden")));
    let r = s.delete(
        now,
        &route(Endpoint::Delete, "spa_other", "accounts", "x"),
        None,
        b"",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (404, Some("source_id_not_found")),
        "space is checked before activation"
    );

    let (mut s, now) = space(Options::default());
    let cases: &[GuardCase] = &[
        (
            route(Endpoint::Delete, "spa_t", "accounts", "email:a@x.com"),
            None,
            b"{".to_vec(),
            400,
            "bad_request",
            "Invalid collection: `accounts`.",
        ),
        (
            del("email:a@x.com"),
            None,
            b"{".to_vec(),
            400,
            "bad_request",
            "Invalid URL: valid `user_id` is required. Unsupported `email`.",
        ),
        (
            del("use_a"),
            JSON,
            body("email", "a@x.com"),
            400,
            "bad_request",
            "Invalid URL: valid `user_id` is required. Unsupported `segment_id`.",
        ),
        (
            del("user_id:u1"),
            JSON,
            b"{\"delete_external_ids\": 1}".to_vec(),
            400,
            "bad_request",
            "Missing required parameters in URL.",
        ),
        (
            del("user_id:u1"),
            JSON,
            b"{\"delete_external_ids\": [{\"type\":\"group_id\",\"id\":\"g1\"}, {}]}".to_vec(),
            400,
            "bad_request",
            "Only one external_id can be deleted at a time.",
        ),
        (
            del("user_id:u1"),
            JSON,
            b"{\"delete_external_ids\": []}".to_vec(),
            400,
            "bad_request",
            "Only one external_id can be deleted at a time.",
        ),
        (
            del("user_id:u1"),
            JSON,
            b"{\"delete_external_ids\": [{\"type\":\"email\"}]}".to_vec(),
            400,
            "bad_request",
            "Missing required parameters in URL.",
        ),
        (
            del("user_id:nobody"),
            JSON,
            body("group_id", "g1"),
            400,
            "unsupported_eid_type",
            "Unsupported external id type.",
        ),
        (
            del("user_id:nobody"),
            JSON,
            body("user_id", "nobody"),
            400,
            "bad_request",
            "External id specification must differ from lookup id.",
        ),
        (
            del("user_id:nobody"),
            JSON,
            body("email", "a@x.com"),
            404,
            "not_found",
            "The resource was not found.",
        ),
        (
            del("user_id:U1"),
            JSON,
            body("email", "a@x.com"),
            404,
            "not_found",
            "The resource was not found.",
        ),
        (
            del("user_id:u1"),
            JSON,
            body("email", "b@x.com"),
            404,
            "eid_not_found",
            "External identifier not found.",
        ),
        (
            del("user_id:u1"),
            JSON,
            body("email", "A@x.com"),
            404,
            "eid_not_found",
            "External identifier not found.",
        ),
        (
            del("user_id:u1"),
            Some("text/plain"),
            body("email", "a@x.com"),
            400,
            "bad_request",
            "Invalid request body: `Content-Type` must be `application/json`.",
        ),
    ];
    for (route, ct, body, status, code, message) in cases {
        let r = s.delete(now, route, *ct, body);
        let v = r.value();
        assert_eq!(
            (
                r.status,
                v["error"]["code"].as_str(),
                v["error"]["message"].as_str()
            ),
            (*status, Some(*code), Some(*message)),
            "{route:?} {}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(s.stats.deleted.is_empty());

    let r = s.delete(
        now,
        &del("user_id:u1"),
        Some("application/json; charset=utf-8"),
        &body("email", "a@x.com"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.value(),
        json!({"code": "success", "message": "External identifier has been deleted."})
    );
    let again = s.delete(now, &del("user_id:u1"), JSON, &body("email", "a@x.com"));
    assert_eq!(again.code().as_deref(), Some("eid_not_found"));
    let r = s.delete(now, &del("user_id:u1"), JSON, &body("user_id", "u2"));
    assert_eq!(r.status, 200, "a second user_id may go");
    assert_eq!(
        s.stats.deleted,
        [
            Deleted {
                user_id: "u1".into(),
                kind: "email".into(),
                id: "a@x.com".into()
            },
            Deleted {
                user_id: "u1".into(),
                kind: "user_id".into(),
                id: "u2".into()
            },
        ]
    );
    let profiles: Value = serde_json::from_slice(&s.profiles_json()).expect("json");
    assert_eq!(
        profiles["profiles"][0]["identifiers"],
        json!(["user_id:u1", "anonymous_id:an", "group_id:g1"])
    );
}

#[test]
fn per_profile_rate_limit() {
    let (mut s, now) = space(Options {
        profile_rate: 2,
        ..Options::default()
    });
    let codes: Vec<u16> = ["a@x.com", "an", "zzz"]
        .iter()
        .zip(["email", "anonymous_id", "email"])
        .map(|(id, kind)| {
            s.delete(now, &del("user_id:u1"), JSON, &body(kind, id))
                .status
        })
        .collect();
    assert_eq!(codes, [200, 200, 429]);
    let other = s.delete(now, &del("user_id:solo"), JSON, &body("email", "b@x.com"));
    assert_eq!(other.status, 200, "another profile has its own budget");
    assert_eq!(s.stats.rate_limited, 1);
}

fn list(s: &mut Space, now: Instant, lookup: &str, query: Option<&str>) -> Reply {
    s.list_external_ids(
        now,
        &route(Endpoint::ExternalIds, "spa_t", "users", lookup),
        query,
    )
}

fn ids(r: &Reply) -> Vec<String> {
    r.value()["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["type"].as_str().unwrap_or(""),
                d["id"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn reads_paginate_filter_and_lag_behind_deletes() {
    let (mut s, now) = space(Options {
        propagation: Duration::from_secs(10),
        ..Options::default()
    });
    let first = list(&mut s, now, "email:a@x.com", Some("limit=2"));
    assert_eq!(ids(&first), ["user_id:u1", "user_id:u2"]);
    let v = first.value();
    assert_eq!(v["cursor"]["has_more"], json!(true));
    assert_eq!(
        v["cursor"]["url"],
        json!("/v1/spaces/spa_t/collections/users/profiles/use_a/external_ids")
    );
    let next = v["cursor"]["next"].as_str().expect("next").to_owned();
    let second = list(&mut s, now, "use_a", Some(&format!("limit=2&next={next}")));
    assert_eq!(ids(&second), ["email:a@x.com", "anonymous_id:an"]);
    let next = second.value()["cursor"]["next"]
        .as_str()
        .expect("next")
        .to_owned();
    let third = list(
        &mut s,
        now,
        "segment_id:use_a",
        Some(&format!("limit=2&next={next}")),
    );
    assert_eq!(ids(&third), ["group_id:g1"]);
    assert_eq!(third.value()["cursor"]["has_more"], json!(false));
    assert_eq!(third.value()["cursor"]["next"], json!(""));

    // A cursor of one profile is refused on another; garbage is refused.
    let r = list(&mut s, now, "user_id:solo", Some(&format!("next={next}")));
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("validation_error"))
    );
    let r = list(&mut s, now, "user_id:u1", Some("next=map_zzz"));
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("validation_error"))
    );

    let r = list(&mut s, now, "user_id:u1", Some("include=user_id,group_id"));
    assert_eq!(ids(&r), ["user_id:u1", "user_id:u2", "group_id:g1"]);

    let r = list(&mut s, now, "email:A@x.com", None);
    assert_eq!(
        (r.status, r.value()),
        (
            404,
            json!({"error": {"code": "not_found", "message": "Profile was not found."}})
        )
    );

    assert_eq!(
        s.delete(now, &del("user_id:u1"), JSON, &body("email", "a@x.com"))
            .status,
        200
    );
    let soon = now + Duration::from_secs(5);
    let r = list(&mut s, soon, "email:a@x.com", None);
    assert_eq!(r.status, 200, "still resolves during propagation");
    assert!(ids(&r).contains(&"email:a@x.com".to_owned()));
    let later = now + Duration::from_secs(11);
    let r = list(&mut s, later, "user_id:u1", None);
    assert!(!ids(&r).contains(&"email:a@x.com".to_owned()));
    let r = list(&mut s, later, "email:a@x.com", None);
    assert_eq!(r.status, 404);
    let profiles: Value = serde_json::from_slice(&s.profiles_json()).expect("json");
    assert_eq!(
        profiles["profiles"][0]["identifiers"][2],
        json!("anonymous_id:an")
    );
}

#[test]
fn read_validation() {
    let (mut s, now) = space(Options::default());
    let r = s.list_external_ids(
        now,
        &route(Endpoint::ExternalIds, "spa_x", "users", "user_id:u1"),
        None,
    );
    assert_eq!((r.status, r.code().as_deref()), (404, Some("not_found")));
    let r = s.list_external_ids(
        now,
        &route(Endpoint::ExternalIds, "spa_t", "accounts", "user_id:u1"),
        None,
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("validation_error"))
    );
    for q in ["limit=26", "limit=0", "limit=ten"] {
        let r = list(&mut s, now, "user_id:u1", Some(q));
        assert_eq!(
            (r.status, r.code().as_deref()),
            (400, Some("validation_error")),
            "{q}"
        );
    }
    let r = list(&mut s, now, "u1", None);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("validation_error"))
    );
}

#[test]
fn delete_target_reads_leniently() {
    let t = DeleteTarget::read(&del("user_id:u1"), &body("email", "a"));
    assert_eq!(
        t,
        DeleteTarget {
            user_id: "u1".into(),
            kind: Some("email".into()),
            id: Some("a".into())
        }
    );
    let t = DeleteTarget::read(&del("use_a"), b"nonsense");
    assert_eq!(t.user_id, "use_a");
    assert_eq!((t.kind, t.id), (None, None));
}

#[test]
fn cursors_round_trip() {
    assert_eq!(decode_cursor(&encode_cursor(7, 3)), Some((7, 3)));
    assert_eq!(decode_cursor("7.3"), None);
}
