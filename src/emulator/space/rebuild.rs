//! A space rebuild (`POST /__emulator/rebuild`): deleted identifiers come back the way
//! rebuilding a space from its sources brings them back (Segment: "deletions don't replay
//! automatically"), all of them or only the ones named.

use std::sync::Arc;

use serde_json::json;

use super::Space;
use crate::emulator::reply::Reply;

impl Space {
    /// `POST /__emulator/rebuild`: with an empty body, or `{}`, every deleted identifier
    /// returns to the profile it was deleted from; with `{"identifiers": ["type:id", ...]}` only
    /// those do (a replay that re-adds a few). Answers `{"restored": N}`.
    pub fn rebuild(&mut self, body: &[u8]) -> Reply {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Only {
            identifiers: Option<Vec<String>>,
        }
        let only = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Only>(body) {
                Ok(o) => o.identifiers,
                Err(e) => {
                    return Reply::error(
                        400,
                        "bad_request",
                        format!(
                            "Expected `{{\"identifiers\": [\"type:id\", ...]}}` or no body: {e}"
                        ),
                    );
                }
            }
        };
        let wanted = |k: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == k));
        let mut restored = 0u64;
        for (n, profile) in self.profiles.iter_mut().enumerate() {
            for entry in profile.entries.iter_mut() {
                if entry.deleted_at.is_some()
                    && wanted(&entry.key)
                    && !self.by_identifier.contains_key(&entry.key)
                {
                    entry.deleted_at = None;
                    self.ghosts.remove(&entry.key);
                    self.by_identifier.insert(Arc::clone(&entry.key), n as u32);
                    restored += 1;
                }
            }
        }
        Reply::json(200, &json!({ "restored": restored }))
    }
}
