//! `POST /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids/delete`,
//! after authentication: Segment's checks and guard rails in Segment's order (space, activation,
//! collection, `user_id` lookup, content type, one identifier per body, unsupported types, the
//! per-profile limit, at least one `user_id` left), then the deletion itself.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::profiles::key;
use super::{Deleted, Space, USERS};
use crate::emulator::reply::Reply;
use crate::emulator::route::{Lookup, Route};

impl Space {
    /// `POST /v1/spaces/{space}/collections/{collection}/profiles/{lookup}/external_ids/delete`,
    /// after authentication: Segment's checks in Segment's order, then the deletion.
    pub fn delete(
        &mut self,
        now: Instant,
        route: &Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let (user_id, kind, id) = match self.check_request(route, content_type, body) {
            Ok(request) => request,
            Err(reply) => return reply,
        };
        let bad = |message: &str| Reply::error(400, "bad_request", message);
        let Some(&n) = self.by_identifier.get(key("user_id", &user_id).as_str()) else {
            return Reply::error(404, "not_found", "The resource was not found.");
        };
        if !self.profile_buckets.try_take(n, now) {
            let message = format!(
                "Attempted to delete more than {} IDs per second for a single profile.",
                self.options.profile_rate
            );
            return self.too_many_requests(message);
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
            return deleted();
        }
        entry.deleted_at = Some(now);
        let key = Arc::clone(&entry.key);
        self.by_identifier.remove(target.as_str());
        if !self.options.propagation.is_zero() {
            self.remember_ghost(key, n, now);
        }
        self.stats.deleted.push(Deleted { user_id, kind, id });
        deleted()
    }

    /// The request's own checks, in Segment's order (the space, its activation, the
    /// collection, the lookup, the content type, the body, the identifier's type), before any
    /// profile is looked at: the `user_id` looked up and the identifier to delete, or the reply
    /// that refuses the request.
    fn check_request(
        &self,
        route: &Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(String, String, String), Reply> {
        let bad = |message: &str| Reply::error(400, "bad_request", message);
        let missing = || bad("Missing required parameters in URL.");
        if route.space != self.space_id {
            return Err(Reply::error(
                404,
                "source_id_not_found",
                format!("No source attached to space_id `{}`.", route.space),
            ));
        }
        if self.options.not_activated {
            return Err(Reply::error(
                403,
                "forbidden",
                format!(
                    "Deleted identifier not activated for space_id `{}`.",
                    route.space
                ),
            ));
        }
        if route.collection != USERS {
            return Err(bad(&format!("Invalid collection: `{}`.", route.collection)));
        }
        let user_id = match Lookup::parse(&route.lookup) {
            None => return Err(missing()),
            Some(Lookup::External { kind, id }) if kind == "user_id" => id,
            Some(other) => {
                return Err(bad(&format!(
                    "Invalid URL: valid `user_id` is required. Unsupported `{}`.",
                    other.kind()
                )));
            }
        };
        let is_json = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return Err(bad(
                "Invalid request body: `Content-Type` must be `application/json`.",
            ));
        }
        let (kind, id) = match parse_delete_body(body) {
            Ok(pair) => pair,
            Err(BodyError::Missing) => return Err(missing()),
            Err(BodyError::NotOne) => {
                return Err(bad("Only one external_id can be deleted at a time."));
            }
        };
        if kind == "group_id" || self.options.unsupported_types.contains(&kind) {
            return Err(Reply::error(
                400,
                "unsupported_eid_type",
                "Unsupported external id type.",
            ));
        }
        if kind == "user_id" && id == user_id {
            return Err(bad("External id specification must differ from lookup id."));
        }
        Ok((user_id, kind, id))
    }
}

/// Segment's answer to a successful delete.
fn deleted() -> Reply {
    Reply::json(
        200,
        &json!({"code": "success", "message": "External identifier has been deleted."}),
    )
}

/// Why a delete body names no single identifier.
enum BodyError {
    /// Not JSON, no `delete_external_ids` array, or an item without a non-empty `type`/`id`.
    Missing,
    /// The array holds zero or several items.
    NotOne,
}

/// The `(type, id)` of a delete body `{"delete_external_ids": [{"type": T, "id": I}]}`.
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
