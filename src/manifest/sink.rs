//! Where validated entries go ([`EntrySink`]), what a sink did with one ([`Added`]), and the
//! in-memory sink [`load`](super::load) uses ([`VecSink`]). The sink owns duplicate detection,
//! so a sink on disk can collapse duplicates among millions of CSV rows.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::diagnostic::Location;
use super::types::Entry;

/// Where validated entries go, in manifest order. The sink owns duplicate detection: an entry
/// equal (same lookup, same identifier) to one it already holds is refused.
pub trait EntrySink {
    /// Stores `entry`, or hands it back with the origin of the equal entry already stored. An
    /// `Err` is a storage failure and ends loading.
    fn add(&mut self, entry: Entry) -> Result<Added, String>;
    /// Entries stored so far.
    fn count(&self) -> u64;
}

/// What a sink did with an entry.
#[derive(Debug)]
pub enum Added {
    /// Stored.
    New,
    /// Not stored: an equal entry was stored first, at `first`.
    Duplicate {
        /// The refused entry.
        entry: Entry,
        /// Where the equal entry came from.
        first: Location,
    },
}

/// The in-memory sink of [`load`](super::load), with an index for collapsing duplicates without a second
/// copy of every key.
#[derive(Default)]
pub struct VecSink {
    /// The entries, in manifest order.
    pub entries: Vec<Entry>,
    by_hash: HashMap<u64, Vec<usize>>,
}

impl EntrySink for VecSink {
    fn add(&mut self, entry: Entry) -> Result<Added, String> {
        let mut hasher = std::hash::DefaultHasher::new();
        (&entry.lookup, &entry.identifier).hash(&mut hasher);
        let slot = self.by_hash.entry(hasher.finish()).or_default();
        if let Some(first) = slot
            .iter()
            .map(|&i| &self.entries[i])
            .find(|e| e.lookup == entry.lookup && e.identifier == entry.identifier)
        {
            let first = first.origin.clone();
            return Ok(Added::Duplicate { entry, first });
        }
        slot.push(self.entries.len());
        self.entries.push(entry);
        Ok(Added::New)
    }

    fn count(&self) -> u64 {
        self.entries.len() as u64
    }
}
