//! The stored profiles and how a lookup finds one: each profile's identifiers in seed order
//! (deleted ones stay, marked, so cursors keep their positions), the `type:id` and segment-id
//! indexes, the ghosts that keep a deleted identifier resolving during the propagation window,
//! and the lowercase-only lookup switch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Space;
use crate::emulator::route::Lookup;

/// Ghost (recently deleted) lookups kept before expired ones are dropped.
pub(super) const GHOSTS_PRUNE_AT: usize = 4096;

/// One profile: its Segment id and its identifiers.
pub(super) struct Profile {
    pub(super) segment_id: Arc<str>,
    /// Seed order; deleted entries stay (marked) so cursors keep their positions.
    pub(super) entries: Vec<IdEntry>,
}

/// One identifier of a profile.
pub(super) struct IdEntry {
    /// `type:id`; the type never holds a colon (checked by the seed).
    pub(super) key: Arc<str>,
    pub(super) deleted_at: Option<Instant>,
}

impl IdEntry {
    pub(super) fn kind(&self) -> &str {
        split_key(&self.key).0
    }

    pub(super) fn live(&self) -> bool {
        self.deleted_at.is_none()
    }

    pub(super) fn visible(&self, now: Instant, propagation: Duration) -> bool {
        match self.deleted_at {
            None => true,
            Some(at) => now < at + propagation,
        }
    }
}

/// A deleted identifier that still resolves reads during the propagation window.
pub(super) struct Ghost {
    pub(super) profile: u32,
    pub(super) until: Instant,
}

/// An index key split back into its type and value.
pub(super) fn split_key(key: &str) -> (&str, &str) {
    key.split_once(':')
        .expect("index keys are built as `type:id`")
}

/// The index key of an identifier: `type:id`.
pub(super) fn key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

impl Space {
    /// The profile `lookup` names; with `stale_reads`, a lookup deleted less than the
    /// propagation window ago still finds its old profile.
    pub(super) fn resolve(&self, lookup: &Lookup, now: Instant, stale_reads: bool) -> Option<u32> {
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

    /// True when lowercase-only lookups are on and `lookup` holds an upper-case character:
    /// such a lookup finds no profile, whatever is stored (Segment's Profile API: a lookup "in
    /// other casing won't return any profiles").
    pub(super) fn refuses_casing(&self, lookup: &Lookup) -> bool {
        self.options.lowercase_lookups
            && match lookup {
                Lookup::External { id, .. } => id.chars().any(char::is_uppercase),
                Lookup::SegmentId(_) => false,
            }
    }

    /// Keeps a just-deleted identifier resolving to `profile` until the propagation window
    /// ends, dropping expired ghosts when there are many.
    pub(super) fn remember_ghost(&mut self, key: Arc<str>, profile: u32, now: Instant) {
        if self.ghosts.len() >= self.ghosts_prune_at {
            self.ghosts.retain(|_, g| now < g.until);
            self.ghosts_prune_at = (self.ghosts.len() * 2).max(GHOSTS_PRUNE_AT);
        }
        let until = now + self.options.propagation;
        self.ghosts.insert(key, Ghost { profile, until });
    }
}
