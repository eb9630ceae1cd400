//! Validation of the parsed manifest ([`raw`](super::raw) types with spans) into a
//! [`Manifest`]: the top-level keys and the inline `remove` entries here, the `sources` items in
//! [`source`]. Every problem is collected, not just the first, and reported in file order;
//! entries go to the caller's [`EntrySink`] through a [`Collector`] that adds the warnings.

mod source;

use std::path::Path;

use serde_saphyr::Spanned;

use super::check::{control_problem, parse_identifier, parse_lookup};
use super::check::{identifier_remarks, lookup_case_remark, lookup_case_warning};
use super::diagnostic::{Capped, Diagnostic, Location, ManifestError, is_forbidden_control, shown};
use super::raw;
use super::read::EMPTY_MANIFEST;
use super::region::Region;
use super::sink::{Added, EntrySink};
use super::types::{Entry, MANIFEST_VERSION, Manifest, PLACEHOLDER};
use crate::model::{GROUP_ID, Identifier, Lookup, ParseError};

/// Hands entries to the sink and says what there is to say about them.
struct Collector<'s> {
    sink: &'s mut dyn EntrySink,
    failure: Option<String>,
    /// The upper-case identifier types already warned about (once each, not once a row).
    warned_kinds: std::collections::HashSet<String>,
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
        let first_of_kind = entry.identifier.kind.chars().any(char::is_uppercase)
            && self.warned_kinds.insert(entry.identifier.kind.clone());
        remarks.extend(identifier_remarks(
            &entry.identifier,
            entry.lookup.is_some(),
            first_of_kind,
            &entry.origin,
        ));
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
pub(super) struct Validator<'a> {
    path: &'a Path,
    /// How URL sources are read.
    urls: super::UrlSources<'a>,
    /// URL sources left unread ([`super::UrlSources::Offline`]): a manifest whose only
    /// entries are in them is not "empty".
    unfetched: usize,
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
    pub(super) fn new(path: &'a Path, urls: super::UrlSources<'a>) -> Self {
        Self {
            path,
            urls,
            unfetched: 0,
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

    /// A non-empty string value without control characters.
    fn text(&mut self, s: &Spanned<String>, key: &str) -> Option<String> {
        if s.value.trim().is_empty() {
            self.problem(s.referenced, format!("`{key}` is empty"));
            return None;
        }
        match control_problem(&s.value, &format!("`{key}`")) {
            Some(problem) => {
                self.problem(s.referenced, problem);
                None
            }
            None => Some(s.value.clone()),
        }
    }

    fn identifier(&mut self, s: &Spanned<String>) -> Option<Identifier> {
        parse_identifier(&s.value)
            .map_err(|problem| self.problem(s.referenced, problem))
            .ok()
    }

    fn lookup(&mut self, s: &Spanned<String>) -> Option<Lookup> {
        let lookup = parse_lookup(&s.value)
            .map_err(|problem| self.problem(s.referenced, problem))
            .ok()?;
        let at = self.at(s.referenced);
        lookup_case_warning(&lookup, &at, &mut self.warnings);
        Some(lookup)
    }

    pub(super) fn run(
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

        let (space, region, reason) = self.top_keys(&raw, top);

        let mut collector = Collector {
            sink,
            failure: None,
            warned_kinds: std::collections::HashSet::new(),
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
        if problems.is_empty() && collector.count() == 0 && self.unfetched == 0 {
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

    /// The top-level keys: `version` checked, then `space`, `region` (US by default) and
    /// `reason`, each `None` once its problem is said.
    fn top_keys(
        &mut self,
        raw: &raw::RawManifest,
        top: serde_saphyr::Location,
    ) -> (Option<String>, Option<Region>, Option<String>) {
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
            Some(r) => match r.value.parse::<Region>() {
                Ok(region) => Some(region),
                Err(e) => {
                    self.problem(r.referenced, e.to_string());
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
        (space, region, reason)
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
}
