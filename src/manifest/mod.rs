//! The manifest: what a person asked to remove, loaded from YAML (DESIGN.md §4) and validated
//! into a [`Manifest`] — every entry with its origin (file:line:column), duplicates collapsed,
//! CSV sources streamed and hashed. [`load`] reads files and nothing else: no network, no clock.
//!
//! Pipeline: bounded read (size, UTF-8, NUL) → [`raw`] serde types with spans → validation that
//! collects *every* problem → CSV sources ([`csv_source`]) → [`Manifest`]. A YAML syntax or type
//! error stops at that one error (serde cannot go on after it); everything after a successful
//! parse is reported together, in file order.
//!
//! Values keep their exact bytes: nothing is trimmed, lowercased or normalised. Upper-case lookup
//! values get a warning because Segment lookups are lowercase. Control characters are refused and
//! every value quoted in a message is escaped ([`diagnostic::shown`]).

mod csv_source;
pub mod diagnostic;
mod raw;

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

pub use self::diagnostic::{Diagnostic, Location, ManifestError};
use self::diagnostic::{is_forbidden_control, shown};
use crate::model::{GROUP_ID, Identifier, Lookup, ParseError};

/// Largest manifest file accepted, checked before parsing. Bulk lists belong in CSV sources.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// What an empty manifest is told.
const EMPTY_MANIFEST: &str =
    "the manifest is empty; it needs at least `version: 1`, `space`, `reason` and entries";
/// Longest identifier or lookup value accepted, in bytes. Real identifiers (emails, ids, push
/// tokens) are far shorter; a longer value is a broken export, and would only be refused later
/// by the HTTP layers it travels through (it goes into a URL path).
pub const MAX_VALUE_BYTES: usize = 1024;
/// How much of an over-long value a message quotes.
const QUOTED_PREFIX_CHARS: usize = 40;

/// The problem with a value over [`MAX_VALUE_BYTES`], quoting only its start; `None` when it
/// is short enough.
pub(crate) fn too_long(value: &str) -> Option<String> {
    (value.len() > MAX_VALUE_BYTES).then(|| {
        let start: String = value.chars().take(QUOTED_PREFIX_CHARS).collect();
        format!(
            "`{}...` is {} bytes long, over the {MAX_VALUE_BYTES}-byte limit for a value; no identifier is that long (fix the export)",
            shown(&start),
            value.len()
        )
    })
}

/// The marker `idprune init` writes where only the author can fill in a value (`reason`, and
/// `space` when not given); validation refuses a value that starts with it.
pub const PLACEHOLDER: &str = "TODO(idprune)";

/// The only manifest version this build reads.
pub const MANIFEST_VERSION: u64 = 1;
/// Problems (and, separately, warnings) kept per file; the rest are counted in one
/// "and N more" line, so a broken million-row CSV gives a readable report.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// A validated manifest: what to remove, where it came from, and the bytes it was read from.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest path, as given to [`load`].
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
    /// The file, resolved against the manifest's directory.
    pub path: PathBuf,
    /// The path as written in the manifest.
    pub written: String,
    /// Lowercase hex sha256 of the file's bytes as read.
    pub sha256: String,
    /// True when the manifest pins the hash (`sha256:`); the pin matched, or loading failed.
    pub pinned: bool,
    /// Data rows (the header excluded).
    pub rows: u64,
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

/// The Segment region that hosts a space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Region {
    /// United States (the default).
    #[default]
    Us,
    /// Europe (Dublin).
    Eu,
}

impl Region {
    /// The Profile API base URL of the region.
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Us => "https://profiles.segment.com",
            Self::Eu => "https://profiles.euw1.segment.com",
        }
    }

    /// The manifest spelling: `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads, parses and validates the manifest at `path`, then streams its CSV sources.
///
/// Returns [`ManifestError::Io`] when the manifest itself cannot be read, and
/// [`ManifestError::Invalid`] with every problem found otherwise (a missing or unreadable CSV
/// source is a problem located at its `csv:` key).
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let mut sink = VecSink::default();
    let mut manifest = load_into(path, &mut sink)?;
    manifest.entries = sink.entries;
    Ok(manifest)
}

/// Like [`load`], but hands every entry to `sink` instead of keeping them: the returned
/// manifest's `entries` is empty. `plan` uses it to stream millions of CSV rows to disk.
pub fn load_into(path: &Path, sink: &mut dyn EntrySink) -> Result<Manifest, ManifestError> {
    let bytes = read_bounded(path)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let text = check_text(path, &bytes).map_err(|d| ManifestError::Invalid(vec![d]))?;
    let raw = raw::parse(text).map_err(|e| {
        let (line, column) = e.line_column.unwrap_or((1, 1));
        ManifestError::Invalid(vec![Diagnostic::new(
            Location::new(path, line, column),
            shown(&e.message),
        )])
    })?;
    Validator::new(path).run(raw, sha256, sink)
}

/// Reads the whole manifest, refusing files over [`MAX_MANIFEST_BYTES`] without reading them.
fn read_bounded(path: &Path) -> Result<Vec<u8>, ManifestError> {
    let io_err = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    let too_big = |size: u64| {
        ManifestError::Invalid(vec![Diagnostic::new(
            Location::new(path, 1, 1),
            format!(
                "the manifest is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte (4 MiB) limit; \
                 move long lists of identifiers into a CSV source (`sources: [{{csv: ...}}]`)"
            ),
        )])
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(too_big(size));
    }
    // The metadata may lie (a growing file, a pipe): cap the read itself too.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The manifest's text: not empty, UTF-8, no NUL byte; a leading BOM is dropped.
fn check_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    if bytes.is_empty() {
        return Err(Diagnostic::new(Location::new(path, 1, 1), EMPTY_MANIFEST));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = line_column(&bytes[..e.valid_up_to()]);
            return Err(Diagnostic::new(
                Location::new(path, line, column),
                "the manifest is not valid UTF-8; save it as UTF-8",
            ));
        }
    };
    if let Some(at) = text.find('\0') {
        let (line, column) = line_column(&bytes[..at]);
        return Err(Diagnostic::new(
            Location::new(path, line, column),
            "the manifest holds a NUL byte; it is not a text file",
        ));
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Diagnostic::new(Location::new(path, 1, 1), EMPTY_MANIFEST));
    }
    Ok(text)
}

/// 1-based line and character column of the position right after `prefix` (valid UTF-8).
fn line_column(prefix: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() as u64 + 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    let last = last.strip_prefix('\u{FEFF}').unwrap_or(last);
    (line, last.chars().count() as u64 + 1)
}

/// A list of diagnostics for one file that keeps the first [`MAX_DIAGNOSTICS_PER_FILE`] and
/// counts the rest.
#[derive(Debug)]
pub(crate) struct Capped {
    kept: Vec<Diagnostic>,
    omitted: u64,
    first_omitted: Option<Location>,
    /// "problems" or "warnings", for the summary line.
    noun: &'static str,
}

impl Capped {
    fn new(noun: &'static str) -> Self {
        Self {
            kept: Vec::new(),
            omitted: 0,
            first_omitted: None,
            noun,
        }
    }

    /// Adds a diagnostic, or counts it when the cap is reached.
    pub(crate) fn push(&mut self, d: Diagnostic) {
        if self.kept.len() < MAX_DIAGNOSTICS_PER_FILE {
            self.kept.push(d);
        } else {
            self.omitted += 1;
            self.first_omitted.get_or_insert(d.location);
        }
    }

    /// The kept diagnostics, then "and N more" when some were left out.
    fn finish(mut self) -> Vec<Diagnostic> {
        if let Some(at) = self.first_omitted {
            self.kept.push(Diagnostic::new(
                at,
                format!(
                    "and {} more {} in this file (only the first {MAX_DIAGNOSTICS_PER_FILE} are listed)",
                    self.omitted, self.noun
                ),
            ));
        }
        self.kept
    }
}

/// Warns when a lookup value has upper-case letters: Segment lookups are lowercase, so such a
/// lookup probably finds nothing. Segment ids (`use_...`) are mixed-case by design and exempt.
pub(crate) fn lookup_case_warning(lookup: &Lookup, at: &Location, warnings: &mut Capped) {
    if let Some(d) = lookup_case_remark(lookup, at) {
        warnings.push(d);
    }
}

/// The upper-case lookup warning, when it applies.
fn lookup_case_remark(lookup: &Lookup, at: &Location) -> Option<Diagnostic> {
    match lookup {
        Lookup::External(id) if id.id.chars().any(char::is_uppercase) => Some(Diagnostic::new(
            at.clone(),
            format!(
                "Segment lookups are lowercase; `{}` may resolve to no profile",
                shown(&lookup.to_string())
            ),
        )),
        _ => None,
    }
}

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

/// The in-memory sink of [`load`], with an index for collapsing duplicates without a second
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

/// Hands entries to the sink and says what there is to say about them.
struct Collector<'s> {
    sink: &'s mut dyn EntrySink,
    failure: Option<String>,
}

impl Collector<'_> {
    /// Adds `entry` unless an equal (lookup, identifier) is already there; warns either way
    /// when there is something to say.
    fn add(&mut self, entry: Entry, warnings: &mut Capped) {
        if self.failure.is_some() {
            return;
        }
        let mut remarks = Vec::new();
        if entry.lookup.is_none() {
            remarks.extend(lookup_case_remark(
                &Lookup::External(entry.identifier.clone()),
                &entry.origin,
            ));
        }
        if entry.identifier.kind == GROUP_ID {
            remarks.push(Diagnostic::new(
                entry.origin.clone(),
                "Segment refuses to delete `group_id` identifiers; this entry will be planned as blocked",
            ));
        }
        match self.sink.add(entry) {
            Err(e) => self.failure = Some(e),
            Ok(Added::Duplicate { entry, first }) => warnings.push(Diagnostic::new(
                entry.origin,
                format!("duplicate of the entry at {first}; this one is ignored"),
            )),
            Ok(Added::New) => remarks.into_iter().for_each(|r| warnings.push(r)),
        }
    }

    fn count(&self) -> u64 {
        self.sink.count()
    }
}

/// Validation state: the manifest path and what has been found so far.
struct Validator<'a> {
    path: &'a Path,
    problems: Vec<Diagnostic>,
    /// Warnings located in the manifest.
    warnings: Capped,
    /// Warnings located in sources, each source capped on its own.
    source_warnings: Vec<Diagnostic>,
}

/// A type name check shared by `remove_columns`, `profile_column` and `profile_type`: the
/// rules of [`Identifier::parse`] for the part before the colon.
fn type_name_error(name: &str) -> Option<ParseError> {
    Identifier::parse(&format!("{name}:x")).err()
}

impl<'a> Validator<'a> {
    fn new(path: &'a Path) -> Self {
        Self {
            path,
            problems: Vec::new(),
            warnings: Capped::new("warnings"),
            source_warnings: Vec::new(),
        }
    }

    fn at(&self, l: serde_saphyr::Location) -> Location {
        Location::new(self.path, l.line().max(1), l.column().max(1))
    }

    fn problem(&mut self, l: serde_saphyr::Location, message: impl Into<String>) {
        let at = self.at(l);
        self.problems.push(Diagnostic::new(at, message));
    }

    /// Refuses control characters and over-long values in an identifier or lookup; true when
    /// the value is clean.
    fn clean_value(&mut self, s: &Spanned<String>, what: &str) -> bool {
        if let Some(problem) = too_long(&s.value) {
            self.problem(s.referenced, format!("{what} {problem}"));
            return false;
        }
        self.clean(s, what)
    }

    /// Refuses control characters in a value; true when the value is clean.
    fn clean(&mut self, s: &Spanned<String>, what: &str) -> bool {
        if s.value.chars().any(is_forbidden_control) {
            self.problem(
                s.referenced,
                format!(
                    "{what} `{}` holds a control character; no identifier does",
                    shown(&s.value)
                ),
            );
            return false;
        }
        true
    }

    /// A non-empty string value without control characters.
    fn text(&mut self, s: &Spanned<String>, key: &str) -> Option<String> {
        if s.value.trim().is_empty() {
            self.problem(s.referenced, format!("`{key}` is empty"));
            return None;
        }
        self.clean(s, &format!("`{key}`")).then(|| s.value.clone())
    }

    fn identifier(&mut self, s: &Spanned<String>) -> Option<Identifier> {
        if !self.clean_value(s, "identifier") {
            return None;
        }
        match Identifier::parse(&s.value) {
            Ok(id) => Some(id),
            Err(e) => {
                self.problem(
                    s.referenced,
                    format!("`{}` is not an identifier: {e}", shown(&s.value)),
                );
                None
            }
        }
    }

    fn lookup(&mut self, s: &Spanned<String>) -> Option<Lookup> {
        if !self.clean_value(s, "profile lookup") {
            return None;
        }
        match Lookup::parse(&s.value) {
            Ok(l) => {
                let at = self.at(s.referenced);
                lookup_case_warning(&l, &at, &mut self.warnings);
                Some(l)
            }
            Err(e) => {
                self.problem(
                    s.referenced,
                    format!(
                        "`{}` is not a profile lookup (`user_id:V`, `use_...` or `TYPE:VALUE`): {e}",
                        shown(&s.value)
                    ),
                );
                None
            }
        }
    }

    fn run(
        mut self,
        raw: Spanned<raw::RawManifest>,
        sha256: String,
        sink: &mut dyn EntrySink,
    ) -> Result<Manifest, ManifestError> {
        let top = raw.referenced;
        let raw = raw.value;
        if raw.version.is_none()
            && raw.space.is_none()
            && raw.reason.is_none()
            && raw.remove.is_none()
            && raw.sources.is_none()
        {
            return Err(ManifestError::Invalid(vec![Diagnostic::new(
                Location::new(self.path, 1, 1),
                EMPTY_MANIFEST,
            )]));
        }

        match &raw.version {
            None => self.problem(top, "missing `version: 1`"),
            Some(v) if v.value != MANIFEST_VERSION => self.problem(
                v.referenced,
                format!(
                    "unsupported manifest version {}; this idprune reads version {MANIFEST_VERSION}",
                    v.value
                ),
            ),
            Some(_) => {}
        }
        let space = match &raw.space {
            None => {
                self.problem(
                    top,
                    "missing `space` (the Unify space id, like `spa_abc123`)",
                );
                None
            }
            Some(s) => self.space(s),
        };
        let region = match &raw.region {
            None => Some(Region::Us),
            Some(r) => match r.value.as_str() {
                "us" => Some(Region::Us),
                "eu" => Some(Region::Eu),
                other => {
                    self.problem(
                        r.referenced,
                        format!("unknown region `{}`; expected `us` or `eu`", shown(other)),
                    );
                    None
                }
            },
        };
        let reason = match &raw.reason {
            None => {
                self.problem(
                    top,
                    "missing `reason` (why these identifiers go; it is recorded in the journal)",
                );
                None
            }
            Some(r) => self.reason(r),
        };

        let mut collector = Collector {
            sink,
            failure: None,
        };
        for entry in raw.remove.iter().flatten() {
            self.entry(entry, &mut collector);
        }

        let manifest_dir = self.path.parent().unwrap_or(Path::new(""));
        let mut sources = Vec::new();
        let mut source_problems = Vec::new();
        for source in raw.sources.iter().flatten() {
            if let Some((file, problems)) = self.source(source, manifest_dir, &mut collector) {
                sources.push(file);
                source_problems.extend(problems);
            }
        }

        // Manifest problems in file order, then each source's in manifest order.
        self.problems
            .sort_by_key(|d| (d.location.line, d.location.column));
        let top_at = self.at(top);
        let mut problems = self.problems;
        problems.extend(source_problems);
        if let Some(failure) = collector.failure {
            return Err(ManifestError::Store(failure));
        }
        if problems.is_empty() && collector.count() == 0 {
            problems.push(Diagnostic::new(
                top_at,
                "the manifest yields no entries; add `remove` entries or `sources` rows",
            ));
        }
        match (space, region, reason) {
            (Some(space), Some(region), Some(reason)) if problems.is_empty() => Ok(Manifest {
                path: self.path.to_owned(),
                sha256,
                space,
                region,
                reason,
                sources,
                entries: Vec::new(),
                warnings: {
                    let mut all = self.warnings.finish();
                    all.extend(self.source_warnings);
                    all
                },
            }),
            _ => Err(ManifestError::Invalid(problems)),
        }
    }

    fn space(&mut self, s: &Spanned<String>) -> Option<String> {
        if s.value.trim_start().starts_with(PLACEHOLDER) {
            self.problem(
                s.referenced,
                "`space` is still the placeholder `idprune init` wrote; write the Unify space id (Unify > Unify settings > API access)",
            );
            return None;
        }
        if s.value.is_empty() {
            self.problem(s.referenced, "`space` is empty");
            return None;
        }
        if !s
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            self.problem(
                s.referenced,
                format!(
                    "space `{}` may only hold letters, digits, `_` and `-`",
                    shown(&s.value)
                ),
            );
            return None;
        }
        Some(s.value.clone())
    }

    fn reason(&mut self, r: &Spanned<String>) -> Option<String> {
        if r.value.trim_start().starts_with(PLACEHOLDER) {
            self.problem(
                r.referenced,
                "`reason` is still the placeholder `idprune init` wrote; say why these identifiers go, with a ticket (it is recorded in the journal)",
            );
            return None;
        }
        if r.value.trim().is_empty() {
            self.problem(
                r.referenced,
                "`reason` is empty; say why these identifiers go (it is recorded in the journal)",
            );
            return None;
        }
        // Line breaks and tabs are fine in prose (`reason: |`); other controls are not.
        if r.value
            .chars()
            .any(|c| is_forbidden_control(c) && !matches!(c, '\n' | '\t'))
        {
            self.problem(
                r.referenced,
                format!("`reason` holds a control character: `{}`", shown(&r.value)),
            );
            return None;
        }
        Some(r.value.clone())
    }

    fn entry(&mut self, raw: &Spanned<raw::RawEntry>, collector: &mut Collector) {
        let at = raw.referenced;
        let entry = &raw.value;
        let lookup = entry.profile.as_ref().map(|p| self.lookup(p));
        let mut identifiers = Vec::new();
        match (&entry.identifier, &entry.identifiers) {
            (Some(_), Some(many)) => self.problem(
                many.referenced,
                "an entry takes `identifier` or `identifiers`, not both",
            ),
            (None, None) => self.problem(
                at,
                "this entry removes nothing; add `identifier: TYPE:VALUE` or `identifiers: [TYPE:VALUE, ...]`",
            ),
            (Some(one), None) => identifiers.extend(self.identifier(one).map(|i| (i, one))),
            (None, Some(many)) => {
                if many.value.is_empty() {
                    self.problem(many.referenced, "`identifiers` is empty");
                }
                for one in &many.value {
                    identifiers.extend(self.identifier(one).map(|i| (i, one)));
                }
            }
        }
        let lookup = match lookup {
            Some(None) => return,
            Some(Some(l)) => Some(l),
            None => None,
        };
        for (identifier, spanned) in identifiers {
            let origin = self.at(spanned.referenced);
            collector.add(
                Entry {
                    lookup: lookup.clone(),
                    identifier,
                    origin,
                },
                &mut self.warnings,
            );
        }
    }

    /// A column name from `remove_columns` or `profile_column`, which doubles as a type name.
    fn column(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        is_type: bool,
    ) -> Option<csv_source::NamedColumn> {
        let name = self.text(s, key)?;
        if is_type && let Some(e) = type_name_error(&name) {
            let hint = if key == "profile_column" {
                "; name the type of its values with `profile_type`"
            } else {
                ""
            };
            self.problem(
                s.referenced,
                format!(
                    "column `{}` is used as an identifier type but is not one: {e}{hint}",
                    shown(&name)
                ),
            );
            return None;
        }
        Some(csv_source::NamedColumn {
            name,
            named_at: self.at(s.referenced),
        })
    }

    /// Keeps a `csv:` path only when it stays inside the manifest's directory: no absolute
    /// path, no `..`, no symbolic link out. A manifest comes from a pull request and `plan`
    /// runs in CI, where a path like `../../.env` would otherwise print that file's first line
    /// (as "the header has ...") into the job log.
    fn inside(
        &mut self,
        at: serde_saphyr::Location,
        written: String,
        manifest_dir: &Path,
    ) -> Option<String> {
        let path = Path::new(&written);
        let lexical_escape = path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        let dir = if manifest_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            manifest_dir
        };
        let link_escape = || match (dir.canonicalize(), dir.join(path).canonicalize()) {
            (Ok(dir), Ok(file)) => !file.starts_with(dir),
            // A missing file is reported when it is opened.
            _ => false,
        };
        if lexical_escape || link_escape() {
            self.problem(
                at,
                format!(
                    "`csv` path `{}` leads outside the manifest's directory; put the CSV beside the manifest (or below it) and give its relative path",
                    shown(&written)
                ),
            );
            return None;
        }
        Some(written)
    }

    /// Validates one `sources` item and, when it is usable, streams its CSV. Returns the source
    /// and the problems located in the CSV file.
    fn source(
        &mut self,
        raw: &Spanned<raw::RawSource>,
        manifest_dir: &Path,
        collector: &mut Collector,
    ) -> Option<(SourceFile, Vec<Diagnostic>)> {
        let at = raw.referenced;
        let source = &raw.value;
        let mut usable = true;

        let written = match &source.csv {
            None => {
                self.problem(
                    at,
                    "this source needs `csv: PATH` (relative to the manifest)",
                );
                None
            }
            Some(c) => self
                .text(c, "csv")
                .and_then(|w| self.inside(c.referenced, w, manifest_dir)),
        };

        let mut remove_columns = Vec::new();
        match &source.remove_columns {
            None => {
                self.problem(
                    at,
                    "this source needs `remove_columns: [COLUMN, ...]` (each header is the identifier type)",
                );
                usable = false;
            }
            Some(cols) if cols.value.is_empty() => {
                self.problem(cols.referenced, "`remove_columns` is empty");
                usable = false;
            }
            Some(cols) => {
                for (i, col) in cols.value.iter().enumerate() {
                    if cols.value[..i].iter().any(|c| c.value == col.value) {
                        self.problem(
                            col.referenced,
                            format!(
                                "column `{}` is listed twice in `remove_columns`",
                                shown(&col.value)
                            ),
                        );
                        usable = false;
                        continue;
                    }
                    match self.column(col, "remove_columns", true) {
                        Some(c) => remove_columns.push(c),
                        None => usable = false,
                    }
                }
            }
        }

        let profile = match (&source.profile_column, &source.profile_type) {
            (None, None) => None,
            (None, Some(t)) => {
                self.problem(t.referenced, "`profile_type` needs a `profile_column`");
                usable = false;
                None
            }
            (Some(col), ty) => {
                let kind = match ty {
                    None => Some(col.value.clone()),
                    Some(t) => match self.text(t, "profile_type") {
                        Some(k) => match type_name_error(&k) {
                            None => Some(k),
                            Some(e) => {
                                self.problem(
                                    t.referenced,
                                    format!(
                                        "`profile_type` `{}` is not an identifier type: {e}",
                                        shown(&k)
                                    ),
                                );
                                None
                            }
                        },
                        None => None,
                    },
                };
                let column = self.column(col, "profile_column", ty.is_none());
                match (column, kind) {
                    (Some(column), Some(kind)) => Some(csv_source::ProfileColumn { column, kind }),
                    _ => {
                        usable = false;
                        None
                    }
                }
            }
        };

        let pin = match &source.sha256 {
            None => None,
            Some(h) => {
                let v = &h.value;
                if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some((v.to_ascii_lowercase(), h.referenced))
                } else {
                    self.problem(
                        h.referenced,
                        format!(
                            "`sha256` must be 64 hex digits (the output of `sha256sum FILE`), found `{}`",
                            shown(v)
                        ),
                    );
                    None
                }
            }
        };

        let written = written?;
        let path = manifest_dir.join(&written);
        let csv_at = self.at(source.csv.as_ref().map_or(at, |c| c.referenced));
        if !usable {
            return None;
        }
        let spec = csv_source::SourceSpec {
            path: path.clone(),
            csv_at,
            profile,
            remove_columns,
        };
        let mut csv_problems = Capped::new("problems");
        let before = collector.count();
        let mut source_warnings = Capped::new("warnings");
        let read = csv_source::read(
            &spec,
            &mut |entry, warnings| collector.add(entry, warnings),
            &mut csv_problems,
            &mut source_warnings,
        );
        // `csv:` open/read failures are located in the manifest; the rest in the CSV.
        let mut in_csv = Vec::new();
        for d in csv_problems.finish() {
            if d.location.file == self.path {
                self.problems.push(d);
            } else {
                in_csv.push(d);
            }
        }
        let no_entries = collector.count() == before;
        self.source_warnings.extend(source_warnings.finish());
        let sha256 = read.sha256?;
        if let Some((pinned, pin_at)) = &pin
            && *pinned != sha256
        {
            self.problem(
                *pin_at,
                format!(
                    "`{}` has sha256 {sha256} but the manifest pins {pinned}; the file changed since it was pinned (update the pin only if the change is intended)",
                    shown(&written)
                ),
            );
        }
        if no_entries && in_csv.is_empty() {
            let at = self.at(at);
            self.warnings.push(Diagnostic::new(
                at,
                format!("CSV source `{}` adds no entries", shown(&written)),
            ));
        }
        Some((
            SourceFile {
                path,
                written,
                sha256,
                pinned: pin.is_some(),
                rows: read.rows,
            },
            in_csv,
        ))
    }
}

#[cfg(test)]
mod tests;
