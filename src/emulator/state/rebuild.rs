//! Fidelity switches for the work after a deletion: a space rebuild (`POST
//! /__emulator/rebuild`), which restores deleted identifiers the way rebuilding a space from
//! its sources does (Segment: "deletions don't replay automatically"), and the check of
//! lowercase-only lookups (Segment's Profile API: a lookup "in other casing won't return any
//! profiles").

use serde_json::json;

use super::{Lookup, Reply, State};

impl State {
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
                    self.by_identifier
                        .insert(std::sync::Arc::clone(&entry.key), n as u32);
                    restored += 1;
                }
            }
        }
        Reply::json(200, &json!({ "restored": restored }))
    }

    /// True when lowercase-only lookups are on and `lookup` holds an upper-case character:
    /// such a lookup finds no profile, whatever is stored.
    pub(super) fn refuses_casing(&self, lookup: &Lookup) -> bool {
        self.options.lowercase_lookups
            && match lookup {
                Lookup::External { id, .. } => id.chars().any(char::is_uppercase),
                Lookup::SegmentId(_) => false,
            }
    }
}
