//! What the emulated space records for `/__emulator/stats` and `/__emulator/arrivals`: the
//! request counters, every applied delete, every delete request with the status its client saw,
//! and the arrival times the space limiter judged. Plain data; the space fills it in.

use serde::Serialize;
use serde_json::Value;

use crate::emulator::route::{Lookup, Route};

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
    /// `/v1` requests by the identifier type their path names the profile by (`user_id`,
    /// `email`, ...; `segment_id` for a profile id): how many values of a type went into a
    /// URL.
    pub path_types: std::collections::BTreeMap<String, u64>,
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
