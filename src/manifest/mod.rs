//! STUB until the manifest branch lands: only the types plan.rs consumes.
use std::path::PathBuf;

use crate::model::{Identifier, Lookup};

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// File.
    pub file: PathBuf,
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// An entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Lookup.
    pub lookup: Option<Lookup>,
    /// Identifier.
    pub identifier: Identifier,
    /// Origin.
    pub origin: Location,
}
