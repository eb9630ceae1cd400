//! The validated manifest's types: [`Manifest`], its CSV sources ([`SourceFile`]) and its
//! entries ([`Entry`], each with the [`Location`] it was written at), and the format's
//! constants ([`MANIFEST_VERSION`], [`PLACEHOLDER`]).

use std::path::PathBuf;

use super::diagnostic::{Diagnostic, Location};
use super::region::Region;
use crate::model::{Identifier, Lookup};

/// The marker `idprune init` writes where only the author can fill in a value (`reason`, and
/// `space` when not given); validation refuses a value that starts with it.
pub const PLACEHOLDER: &str = "TODO(idprune)";

/// The only manifest version this build reads.
pub const MANIFEST_VERSION: u64 = 1;

/// A validated manifest: what to remove, where it came from, and the bytes it was read from.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest path, as given to [`load`](super::load).
    pub path: PathBuf,
    /// Lowercase hex sha256 of the manifest file's bytes.
    pub sha256: String,
    /// The Unify space id.
    pub space: String,
    /// The Segment region of the space.
    pub region: Region,
    /// Why these identifiers are removed; recorded in the journal.
    pub reason: String,
    /// The CSV sources, in manifest order.
    pub sources: Vec<SourceFile>,
    /// Inline `remove` entries first (in order), then each source's rows in order;
    /// duplicates already collapsed to their first occurrence.
    pub entries: Vec<Entry>,
    /// Warnings: duplicates, upper-case lookups, identifiers Segment will refuse.
    pub warnings: Vec<Diagnostic>,
}

/// One CSV source of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The file, resolved against the manifest's directory; for a URL source, the URL (it is
    /// what every message names).
    pub path: PathBuf,
    /// The path (or URL) as written in the manifest.
    pub written: String,
    /// The store URL of a URL source (`csv: s3://...`), `None` for a file.
    pub url: Option<url::Url>,
    /// False only for a URL source that was not fetched ([`super::UrlSources::Offline`]):
    /// `sha256` is then the manifest's pin and `rows` is 0.
    pub fetched: bool,
    /// Lowercase hex sha256 of the file's bytes as read.
    pub sha256: String,
    /// True when the manifest pins the hash (`sha256:`); the pin matched, or loading failed.
    pub pinned: bool,
    /// Data rows (the header excluded).
    pub rows: u64,
    /// When the warehouse data this CSV was exported from was last synced (`data_as_of:`,
    /// Unix seconds), if the manifest says.
    pub data_as_of: Option<i64>,
}

/// One identifier to remove from one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// How to find the profile; `None` means the identifier itself is the lookup.
    pub lookup: Option<Lookup>,
    /// The identifier to remove, exact bytes.
    pub identifier: Identifier,
    /// Where the identifier was written (YAML scalar, or CSV line and field).
    pub origin: Location,
}

impl Entry {
    /// The lookup to resolve: the explicit one, or the identifier itself.
    pub fn effective_lookup(&self) -> Lookup {
        self.lookup
            .clone()
            .unwrap_or_else(|| Lookup::External(self.identifier.clone()))
    }
}
