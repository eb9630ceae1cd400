//! The emulator's data and Segment's decisions over it: the profiles, an O(1) index from
//! `type:id` (and segment id) to profile, the rate limiters, the propagation window and the
//! statistics. Every function takes `now` instead of reading a clock, and returns a [`Reply`];
//! nothing here does I/O, sleeps or injects faults (that is `server.rs`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::ser::{SerializeStruct as _, Serializer};
use serde_json::{Value, json};

use super::bucket::ProfileBuckets;
use super::limiter::{LimiterKind, SpaceLimiter};
use super::reply::Reply;
use super::route::{ListQuery, Lookup, Route};
use super::seed::Seed;

/// The only collection the emulator serves.
pub const USERS: &str = "users";
/// The `source_id` every emulated identifier reports.
const SOURCE_ID: &str = "emu";
/// The `created_at` every emulated identifier reports (the emulator keeps no history).
const CREATED_AT: &str = "2026-01-01T00:00:00Z";
mod rebuild;

/// Prefix of the opaque pagination cursors, shaped like Segment's (`map_...`).
const CURSOR_PREFIX: &str = "map_";
/// Ghost (recently deleted) lookups kept before expired ones are dropped.
const GHOSTS_PRUNE_AT: usize = 4096;

/// The behaviour switches `State` needs from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How long a deleted identifier keeps showing in reads.
    pub propagation: Duration,
    /// Answer every delete with 403 `forbidden`.
    pub not_activated: bool,
    /// Requests per second for the space; 0 = unlimited.
    pub space_rate: u32,
    /// How the space limit counts.
    pub limiter: LimiterKind,
    /// Deletes per second per profile; 0 = unlimited.
    pub profile_rate: u32,
    /// Seconds for a `Retry-After` header on 429, if any.
    pub retry_after: Option<u64>,
    /// Deletes answer 200 but remove nothing (a service that does not do what it says).
    pub ineffective_deletes: bool,
    /// A lookup holding an upper-case character finds no profile.
    pub lowercase_lookups: bool,
    /// Identifier types whose deletes answer 400 `unsupported_eid_type`.
    pub unsupported_types: Vec<String>,
}

/// A successful delete, as `/__emulator/stats` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// The `user_id` the request addressed the profile by.
    pub user_id: String,
    /// The deleted identifier's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The deleted identifier's value.
    pub id: String,
}

/// Who and what a delete request named, read leniently so every attempt can be recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeleteTarget {
    /// The lookup's value when it is `user_id:V`, else the whole decoded lookup segment.
    pub user_id: String,
    /// The body's identifier type, when the body names one.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The body's identifier value, when the body names one.
    pub id: Option<String>,
}

impl DeleteTarget {
    /// Reads the target of a delete from its route and body, without judging them.
    pub fn read(route: &Route, body: &[u8]) -> DeleteTarget {
        let user_id = match Lookup::parse(&route.lookup) {
            Some(Lookup::External { kind, id }) if kind == "user_id" => id,
            _ => route.lookup.clone(),
        };
        let first = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/delete_external_ids/0").cloned());
        let field = |name: &str| {
            first
                .as_ref()
                .and_then(|f| f.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        DeleteTarget {
            user_id,
            kind: field("type"),
            id: field("id"),
        }
    }
}

/// A delete request that got past authentication, with the status its client saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The `Request-Id` of the answer.
    pub request_id: String,
    /// What the request named.
    #[serde(flatten)]
    pub target: DeleteTarget,
    /// The status sent (500 for a lost acknowledgement, although the delete was applied).
    pub status: u16,
}

/// Counters and logs served by `/__emulator/stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Every `/v1` request.
    pub requests: u64,
    /// `/v1` requests to the `external_ids` read route.
    pub reads: u64,
    /// `/v1` requests to the delete route.
    pub deletes: u64,
    /// Requests answered 429 (space or profile limit).
    pub rate_limited: u64,
    /// Injected faults: 5xx, hangs, malformed bodies, lost acknowledgements.
    pub faults: u64,
    /// Every applied delete, in order (lost-ack ones included).
    pub deleted: Vec<Deleted>,
    /// Every delete request past authentication, in order.
    pub delete_attempts: Vec<Attempt>,
    /// When the space limiter accepted and refused requests (only while a space limit is
    /// on), served apart by `/__emulator/arrivals`.
    #[serde(skip)]
    pub arrivals: Arrivals,
}

/// The arrival times the space limiter judged, in microseconds since the emulator started,
/// so a benchmark measures the rate as the server saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Arrivals {
    /// Accepted arrivals, in the order they were judged.
    pub accepted_us: Vec<u64>,
    /// Refused (429) arrivals.
    pub refused_us: Vec<u64>,
}

struct Profile {
    segment_id: Arc<str>,
    /// Seed order; deleted entries stay (marked) so cursors keep their positions.
    entries: Vec<IdEntry>,
}

struct IdEntry {
    /// `type:id`; the type never holds a colon (checked by the seed).
    key: Arc<str>,
    deleted_at: Option<Instant>,
}

impl IdEntry {
    fn kind(&self) -> &str {
        split_key(&self.key).0
    }

    fn live(&self) -> bool {
        self.deleted_at.is_none()
    }

    fn visible(&self, now: Instant, propagation: Duration) -> bool {
        match self.deleted_at {
            None => true,
            Some(at) => now < at + propagation,
        }
    }
}

/// A deleted identifier that still resolves reads during the propagation window.
struct Ghost {
    profile: u32,
    until: Instant,
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once(':')
        .expect("index keys are built as `type:id`")
}

fn key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

/// The emulated space: profiles, index, limiters and statistics.
pub struct State {
    space: String,
    token: String,
    profiles: Vec<Profile>,
    by_identifier: HashMap<Arc<str>, u32>,
    by_segment_id: HashMap<Arc<str>, u32>,
    ghosts: HashMap<Arc<str>, Ghost>,
    ghosts_prune_at: usize,
    options: Options,
    space_limiter: Option<SpaceLimiter>,
    profile_buckets: ProfileBuckets,
    started: Instant,
    /// The counters and logs of `/__emulator/stats`.
    pub stats: Stats,
}

impl State {
    /// Builds the state from a seed, validating it in the same pass (a `Seed` may have been
    /// built without [`Seed::from_json`]).
    pub fn from_seed(
        seed: Seed,
        token: String,
        options: Options,
        now: Instant,
    ) -> anyhow::Result<State> {
        if u32::try_from(seed.profiles.len()).is_err() {
            anyhow::bail!("the emulator holds at most 2^32 profiles");
        }
        let segment_ids = seed.segment_ids();
        let total: usize = seed.profiles.iter().map(|p| p.identifiers.len()).sum();
        let mut by_identifier: HashMap<Arc<str>, u32> = HashMap::with_capacity(total);
        let mut profiles: Vec<Profile> = seed
            .profiles
            .iter()
            .zip(&segment_ids)
            .map(|(p, id)| Profile {
                segment_id: id.as_str().into(),
                entries: Vec::with_capacity(p.identifiers.len()),
            })
            .collect();
        seed.walk(&segment_ids, |n, kind, id| {
            let key: Arc<str> = key(kind, id).into();
            let n = n as u32; // checked above: fewer than 2^32 profiles
            match by_identifier.entry(Arc::clone(&key)) {
                Entry::Occupied(held) => return Some(*held.get() as usize),
                Entry::Vacant(slot) => {
                    slot.insert(n);
                }
            }
            profiles[n as usize].entries.push(IdEntry {
                key,
                deleted_at: None,
            });
            None
        })?;
        let by_segment_id = profiles
            .iter()
            .enumerate()
            .map(|(n, p)| (Arc::clone(&p.segment_id), n as u32))
            .collect();
        Ok(State {
            space: seed.space,
            token,
            profiles,
            by_identifier,
            by_segment_id,
            ghosts: HashMap::new(),
            ghosts_prune_at: GHOSTS_PRUNE_AT,
            space_limiter: SpaceLimiter::new(
                options.limiter,
                options.space_rate,
                now,
                second_start(now),
            ),
            profile_buckets: ProfileBuckets::new(options.profile_rate),
            started: now,
            options,
            stats: Stats::default(),
        })
    }

    /// True when `token` is the accepted access token.
    pub fn token_matches(&self, token: &str) -> bool {
        !self.token.is_empty() && self.token == token
    }

    /// Replaces the accepted token (to simulate a revoked one).
    pub fn set_token(&mut self, token: String) {
        self.token = token;
    }

    /// Admits one `/v1` request against the space limit; `Err` is the 429 to send.
    pub fn admit(&mut self, now: Instant) -> Result<(), Reply> {
        let Some(limiter) = self.space_limiter.as_mut() else {
            return Ok(());
        };
        let admitted = limiter.try_admit(now);
        let at = now.saturating_duration_since(self.started).as_micros() as u64;
        if admitted {
            self.stats.arrivals.accepted_us.push(at);
            return Ok(());
        }
        self.stats.arrivals.refused_us.push(at);
        self.stats.rate_limited += 1;
        let mut reply = Reply::error(
            429,
            "rate_limit_error",
            format!(
                "Too many requests: the space allows {} requests per second.",
                self.options.space_rate
            ),
        );
        reply.retry_after = self.options.retry_after;
        Err(reply)
    }

    fn resolve(&mut self, lookup: &Lookup, now: Instant, stale_reads: bool) -> Option<u32> {
        match lookup {
            Lookup::SegmentId(id) => self.by_segment_id.get(id.as_str()).copied(),
            Lookup::External { kind, id } => {
                let key = key(kind, id);
                if let Some(&n) = self.by_identifier.get(key.as_str()) {
                    return Some(n);
                }
                if !stale_reads {
                    return None;
                }
                self.ghosts
                    .get(key.as_str())
                    .filter(|g| now < g.until)
                    .map(|g| g.profile)
            }
        }
    }

    /// `GET /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids`.
    pub fn list_external_ids(&mut self, now: Instant, route: &Route, query: Option<&str>) -> Reply {
        if route.space != self.space {
            return Reply::error(404, "not_found", "The resource was not found.");
        }
        if route.collection != USERS {
            return Reply::error(
                400,
                "validation_error",
                format!(
                    "The parameter `collection` is not valid: `{}` (only `users` is supported).",
                    route.collection
                ),
            );
        }
        let Some(lookup) = Lookup::parse(&route.lookup) else {
            return Reply::error(
                400,
                "validation_error",
                "The parameter `id` must be `TYPE:VALUE` or a segment id.",
            );
        };
        let query = match ListQuery::parse(query) {
            Ok(q) => q,
            Err(message) => return Reply::error(400, "validation_error", message),
        };
        if self.refuses_casing(&lookup) {
            return Reply::error(404, "not_found", "Profile was not found.");
        }
        let Some(n) = self.resolve(&lookup, now, true) else {
            return Reply::error(404, "not_found", "Profile was not found.");
        };
        let start = match &query.next {
            None => 0,
            Some(cursor) => match decode_cursor(cursor) {
                Some((p, pos)) if p == n && pos <= self.profiles[n as usize].entries.len() => pos,
                _ => {
                    return Reply::error(
                        400,
                        "validation_error",
                        "The parameter `next` is not a valid cursor.",
                    );
                }
            },
        };
        let propagation = self.options.propagation;
        let profile = &self.profiles[n as usize];
        let wanted = |e: &IdEntry| {
            e.visible(now, propagation)
                && query
                    .include
                    .as_ref()
                    .is_none_or(|kinds| kinds.iter().any(|k| k == e.kind()))
        };
        let mut data = Vec::with_capacity(query.limit);
        let mut next_pos = None;
        for (pos, entry) in profile.entries.iter().enumerate().skip(start) {
            if !wanted(entry) {
                continue;
            }
            if data.len() == query.limit {
                next_pos = Some(pos);
                break;
            }
            let (kind, id) = split_key(&entry.key);
            data.push(json!({
                "source_id": SOURCE_ID,
                "collection": USERS,
                "id": id,
                "type": kind,
                "created_at": CREATED_AT,
                "encoding": "none",
            }));
        }
        let url = format!(
            "/v1/spaces/{}/collections/{USERS}/profiles/{}/external_ids",
            self.space, profile.segment_id
        );
        Reply::json(
            200,
            &json!({
                "data": data,
                "cursor": {
                    "url": url,
                    "has_more": next_pos.is_some(),
                    "next": next_pos.map(|pos| encode_cursor(n, pos)).unwrap_or_default(),
                },
            }),
        )
    }

    /// `POST /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids/delete`,
    /// after authentication: Segment's checks in Segment's order, then the deletion.
    pub fn delete(
        &mut self,
        now: Instant,
        route: &Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let bad = |message: &str| Reply::error(400, "bad_request", message);
        let missing = || bad("Missing required parameters in URL.");
        if route.space != self.space {
            return Reply::error(
                404,
                "source_id_not_found",
                format!("No source attached to space_id `{}`.", route.space),
            );
        }
        if self.options.not_activated {
            return Reply::error(
                403,
                "forbidden",
                format!(
                    "Deleted identifier not activated for space_id `{}`.",
                    route.space
                ),
            );
        }
        if route.collection != USERS {
            return bad(&format!("Invalid collection: `{}`.", route.collection));
        }
        let user_id = match Lookup::parse(&route.lookup) {
            None => return missing(),
            Some(Lookup::External { kind, id }) if kind == "user_id" => id,
            Some(other) => {
                return bad(&format!(
                    "Invalid URL: valid `user_id` is required. Unsupported `{}`.",
                    other.kind()
                ));
            }
        };
        let is_json = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return bad("Invalid request body: `Content-Type` must be `application/json`.");
        }
        let (kind, id) = match parse_delete_body(body) {
            Ok(pair) => pair,
            Err(BodyError::Missing) => return missing(),
            Err(BodyError::NotOne) => return bad("Only one external_id can be deleted at a time."),
        };
        if kind == "group_id" || self.options.unsupported_types.contains(&kind) {
            return Reply::error(400, "unsupported_eid_type", "Unsupported external id type.");
        }
        if kind == "user_id" && id == user_id {
            return bad("External id specification must differ from lookup id.");
        }
        let Some(&n) = self.by_identifier.get(key("user_id", &user_id).as_str()) else {
            return Reply::error(404, "not_found", "The resource was not found.");
        };
        if !self.profile_buckets.try_take(n, now) {
            self.stats.rate_limited += 1;
            let mut reply = Reply::error(
                429,
                "rate_limit_error",
                format!(
                    "Attempted to delete more than {} IDs per second for a single profile.",
                    self.options.profile_rate
                ),
            );
            reply.retry_after = self.options.retry_after;
            return reply;
        }
        let target = key(&kind, &id);
        if self.by_identifier.get(target.as_str()) != Some(&n) {
            return Reply::error(404, "eid_not_found", "External identifier not found.");
        }
        let profile = &mut self.profiles[n as usize];
        if kind == "user_id" {
            let user_ids = profile
                .entries
                .iter()
                .filter(|e| e.live() && e.kind() == "user_id")
                .count();
            if user_ids <= 1 {
                return bad("Profiles must have at least one user_id.");
            }
        }
        let Some(entry) = profile
            .entries
            .iter_mut()
            .find(|e| e.live() && *e.key == *target)
        else {
            return Reply::error(404, "eid_not_found", "External identifier not found.");
        };
        if self.options.ineffective_deletes {
            return Reply::json(
                200,
                &json!({"code": "success", "message": "External identifier has been deleted."}),
            );
        }
        entry.deleted_at = Some(now);
        let key = Arc::clone(&entry.key);
        self.by_identifier.remove(target.as_str());
        if !self.options.propagation.is_zero() {
            self.remember_ghost(key, n, now);
        }
        self.stats.deleted.push(Deleted { user_id, kind, id });
        Reply::json(
            200,
            &json!({"code": "success", "message": "External identifier has been deleted."}),
        )
    }

    fn remember_ghost(&mut self, key: Arc<str>, profile: u32, now: Instant) {
        if self.ghosts.len() >= self.ghosts_prune_at {
            self.ghosts.retain(|_, g| now < g.until);
            self.ghosts_prune_at = (self.ghosts.len() * 2).max(GHOSTS_PRUNE_AT);
        }
        let until = now + self.options.propagation;
        self.ghosts.insert(key, Ghost { profile, until });
    }

    /// The body of `GET /__emulator/profiles`: the current identifiers of every profile,
    /// ignoring the propagation window.
    pub fn profiles_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Snapshot(self)).expect("the snapshot holds only strings")
    }

    /// The body of `GET /__emulator/arrivals`.
    pub fn arrivals_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stats.arrivals).expect("arrivals hold only numbers")
    }

    /// The body of `GET /__emulator/stats`.
    pub fn stats_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stats).expect("stats hold only strings and numbers")
    }
}

/// The instant at or before `now` at which the current wall-clock second began, so fixed
/// windows align to clock seconds as a server's would.
fn second_start(now: Instant) -> Instant {
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Duration::from_nanos(u64::from(d.subsec_nanos())))
        .unwrap_or_default();
    now.checked_sub(into_second).unwrap_or(now)
}

/// Serialises the state for `/__emulator/profiles` without building a copy of it.
struct Snapshot<'a>(&'a State);

struct SnapshotProfile<'a>(&'a Profile);

impl Serialize for Snapshot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Snapshot", 2)?;
        st.serialize_field("space", &self.0.space)?;
        st.serialize_field("profiles", &ProfileList(&self.0.profiles))?;
        st.end()
    }
}

struct ProfileList<'a>(&'a [Profile]);

impl Serialize for ProfileList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(SnapshotProfile))
    }
}

impl Serialize for SnapshotProfile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Profile", 2)?;
        st.serialize_field("segment_id", &*self.0.segment_id)?;
        let live: Vec<&str> = self
            .0
            .entries
            .iter()
            .filter(|e| e.live())
            .map(|e| &*e.key)
            .collect();
        st.serialize_field("identifiers", &live)?;
        st.end()
    }
}

enum BodyError {
    Missing,
    NotOne,
}

fn parse_delete_body(body: &[u8]) -> Result<(String, String), BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| BodyError::Missing)?;
    let items = value
        .get("delete_external_ids")
        .and_then(Value::as_array)
        .ok_or(BodyError::Missing)?;
    let [item] = items.as_slice() else {
        return Err(BodyError::NotOne);
    };
    let field = |name: &str| {
        item.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or(BodyError::Missing)
    };
    Ok((field("type")?, field("id")?))
}

fn encode_cursor(profile: u32, pos: usize) -> String {
    format!(
        "{CURSOR_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(format!("{profile}.{pos}"))
    )
}

fn decode_cursor(cursor: &str) -> Option<(u32, usize)> {
    let raw = URL_SAFE_NO_PAD
        .decode(cursor.strip_prefix(CURSOR_PREFIX)?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (profile, pos) = text.split_once('.')?;
    Some((profile.parse().ok()?, pos.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::route::Endpoint;

    const SEED: &str = r#"{"space": "spa_t", "profiles": [
        {"segment_id": "use_a", "identifiers": ["user_id:u1", "user_id:u2", "email:a@x.com", "anonymous_id:an", "group_id:g1"]},
        {"segment_id": "use_b", "identifiers": ["user_id:solo", "email:b@x.com"]},
        {"segment_id": "use_c", "identifiers": ["anonymous_id:only"]}
    ]}"#;

    fn state(options: Options) -> (State, Instant) {
        let now = Instant::now();
        let seed = Seed::from_json(SEED).expect("test seed");
        let state = State::from_seed(seed, "tok".into(), options, now).expect("state");
        (state, now)
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
        serde_json::to_vec(&json!({"delete_external_ids": [{"type": kind, "id": id}]}))
            .expect("json")
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
        let (mut s, now) = state(not_activated);
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

        let (mut s, now) = state(Options::default());
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
        let (mut s, now) = state(Options {
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

    fn list(s: &mut State, now: Instant, lookup: &str, query: Option<&str>) -> Reply {
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
        let (mut s, now) = state(Options {
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
        let (mut s, now) = state(Options::default());
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
}
