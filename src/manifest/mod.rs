//! The manifest: what a person asked to remove, loaded from YAML (the format: the README's
//! "Manifest v1") and validated into a [`Manifest`] — every entry with its origin
//! (file:line:column), duplicates collapsed, CSV sources streamed and hashed. [`load`] reads
//! files and nothing else: no network, no clock. A source in a store (`csv: s3://...`) is
//! read through the hook [`load_into`]'s caller hands in ([`UrlSources`]); this module never
//! talks to a store itself.
//!
//! Pipeline: bounded read (size, UTF-8, NUL) → `shape` check of the YAML event stream (every
//! unknown key, wrong type, duplicate, null, tag, in one pass) → `raw` serde types with spans →
//! validation that collects *every* problem → CSV sources (`csv_source`) → [`Manifest`]. Only a
//! YAML *syntax* error stops at that one error (nothing after it is reliable); everything else
//! is reported together, in file order.
//!
//! One job per file: `read` (the bounded read), `shape` and `raw` (the YAML), `validate`
//! (raw → [`Manifest`]; its `sources` items in `validate/source.rs`), `check` (one value's
//! checks and warnings), `csv_source`, `remote` (URL sources: schemes, the fetch hook), `sink`
//! ([`EntrySink`], [`VecSink`]), `types`,
//! `region` and [`diagnostic`]. This file holds [`load`] and [`load_into`] and re-exports the
//! public types, so callers write `crate::manifest::X`.
//!
//! Values keep their exact bytes: nothing is trimmed, lowercased or normalised. Upper-case lookup
//! values, upper-case identifier types and emails, and whitespace at a value's ends get a
//! warning, because Segment would not match them. Control characters are refused and
//! every value quoted in a message is escaped ([`diagnostic::shown`]).

mod check;
mod csv_source;
pub mod diagnostic;
mod raw;
mod read;
mod region;
mod remote;
mod shape;
mod sink;
mod types;
mod validate;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use self::check::MAX_VALUE_BYTES;
pub use self::csv_source::{MAX_CSV_RECORD_BYTES, header_and_rows as csv_header_and_rows};
use self::diagnostic::shown;
pub use self::diagnostic::{Diagnostic, Location, MAX_DIAGNOSTICS_PER_FILE, ManifestError};
pub use self::read::{MAX_MANIFEST_BYTES, sha256_file};
pub use self::region::{Region, UnknownRegion};
pub use self::remote::{
    FetchedCsv, MAX_URL_SOURCE_BYTES, URL_SCHEMES, UrlSources, is_url_source, source_url,
};
pub use self::sink::{Added, EntrySink, VecSink};
pub use self::types::{Entry, MANIFEST_VERSION, Manifest, PLACEHOLDER, SourceFile};

/// Reads, parses and validates the manifest at `path`, then streams its CSV sources. URL
/// sources are not fetched ([`UrlSources::Offline`]): this reads local files and nothing else.
///
/// Returns [`ManifestError::Io`] when the manifest itself cannot be read, and
/// [`ManifestError::Invalid`] with every problem found otherwise (a missing or unreadable CSV
/// source is a problem located at its `csv:` key).
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let mut sink = VecSink::default();
    let mut manifest = load_into(path, &mut sink, UrlSources::Offline)?;
    manifest.entries = sink.entries;
    Ok(manifest)
}

/// Like [`load`], but hands every entry to `sink` instead of keeping them (the returned
/// manifest's `entries` is empty), and reads URL sources as `urls` says. `plan` uses it to
/// stream millions of CSV rows to disk, fetching URL sources through its hook.
pub fn load_into(
    path: &Path,
    sink: &mut dyn EntrySink,
    urls: UrlSources<'_>,
) -> Result<Manifest, ManifestError> {
    let bytes = read::read_bounded(path)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let text = read::check_text(path, &bytes).map_err(|d| ManifestError::Invalid(vec![d]))?;
    // One walk of the event stream: the budget checks, and the shape of every key and value.
    let mut shape = shape::Shape::new();
    raw::prescan(text, &mut |event, at| shape.event(event, at))
        .map_err(|e| yaml_problem(path, e))?;
    let shape = shape.finish();
    if !shape.is_empty() {
        return Err(ManifestError::Invalid(
            shape
                .into_iter()
                .map(|p| Diagnostic::new(Location::new(path, p.line, p.column.max(1)), p.message))
                .collect(),
        ));
    }
    let raw = raw::parse(text).map_err(|e| yaml_problem(path, e))?;
    validate::Validator::new(path, urls).run(raw, sha256, sink)
}

/// A YAML error as the one problem of a manifest.
fn yaml_problem(path: &Path, e: raw::YamlError) -> ManifestError {
    let (line, column) = e.line_column.unwrap_or((1, 1));
    ManifestError::Invalid(vec![Diagnostic::new(
        Location::new(path, line, column),
        shown(&e.message),
    )])
}

#[cfg(test)]
mod tests;
