//! `GET /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids`: Segment's
//! checks of a read, one page of a profile's identifiers (hiding deleted ones only once the
//! propagation window has passed) and the opaque `map_...` cursors that page on.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::profiles::{IdEntry, split_key};
use super::{Space, USERS};
use crate::emulator::reply::Reply;
use crate::emulator::route::{ListQuery, Lookup, Route};

/// The `source_id` every emulated identifier reports.
const SOURCE_ID: &str = "emu";
/// The `created_at` every emulated identifier reports (the emulator keeps no history).
const CREATED_AT: &str = "2026-01-01T00:00:00Z";
/// Prefix of the opaque pagination cursors, shaped like Segment's (`map_...`).
const CURSOR_PREFIX: &str = "map_";

impl Space {
    /// `GET /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids`.
    pub fn list_external_ids(&mut self, now: Instant, route: &Route, query: Option<&str>) -> Reply {
        if route.space != self.space_id {
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
        self.page(n, start, &query, now)
    }

    /// The page of profile `n`'s identifiers from entry `start`: at most `query.limit` of
    /// those visible at `now` (of the types asked for), and the cursor of the next page.
    fn page(&self, n: u32, start: usize, query: &ListQuery, now: Instant) -> Reply {
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
            self.space_id, profile.segment_id
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
}

/// The cursor of the page of profile `profile` that starts at entry `pos`.
pub(super) fn encode_cursor(profile: u32, pos: usize) -> String {
    format!(
        "{CURSOR_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(format!("{profile}.{pos}"))
    )
}

/// The profile and entry position of a cursor; `None` for anything [`encode_cursor`] did not make.
pub(super) fn decode_cursor(cursor: &str) -> Option<(u32, usize)> {
    let raw = URL_SAFE_NO_PAD
        .decode(cursor.strip_prefix(CURSOR_PREFIX)?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (profile, pos) = text.split_once('.')?;
    Some((profile.parse().ok()?, pos.parse().ok()?))
}
