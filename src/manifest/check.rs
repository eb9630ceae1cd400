//! Checks of one value, knowable without the rest of the manifest: identifiers and lookups
//! (length, control characters, syntax), the warnings about values Segment would not match
//! (upper case, whitespace), and [`scalar_problem`] for the shape pass. Shared by the shape
//! pass, the validator and the CSV reader, so a value is judged the same wherever it is written.

use super::diagnostic::{Capped, Diagnostic, Location, is_forbidden_control, shown};
use super::region::Region;
use super::types::MANIFEST_VERSION;
use crate::model::{Identifier, Lookup};

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

/// Warns when a lookup value has upper-case letters: Segment lookups are lowercase, so such a
/// lookup probably finds nothing. Segment ids (`use_...`) are mixed-case by design and exempt.
pub(crate) fn lookup_case_warning(lookup: &Lookup, at: &Location, warnings: &mut Capped) {
    if let Some(d) = lookup_case_remark(lookup, at) {
        warnings.push(d);
    }
}

/// The upper-case lookup warning, when it applies.
pub(super) fn lookup_case_remark(lookup: &Lookup, at: &Location) -> Option<Diagnostic> {
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

/// Warnings about an identifier that is valid but probably not what Segment holds: an
/// upper-case type (Segment's types are lowercase; said for the `first_of_kind` entry only,
/// so a CSV column does not repeat it on every row), an upper-case email (when a separate
/// lookup is given; otherwise the lookup warning says it), whitespace at either end of the
/// value. The value is kept exactly as written either way.
pub(super) fn identifier_remarks(
    id: &Identifier,
    has_lookup: bool,
    first_of_kind: bool,
    at: &Location,
) -> Vec<Diagnostic> {
    let mut remarks = Vec::new();
    let quoted = || shown(&format!("{}:{}", id.kind, id.id));
    if first_of_kind && id.kind.chars().any(char::is_uppercase) {
        remarks.push(Diagnostic::new(
            at.clone(),
            format!(
                "identifier type `{}` has upper-case letters; Segment's types are lowercase (`{}`), so `{}` (and every other `{}` entry; said once) probably matches nothing",
                shown(&id.kind),
                shown(&id.kind.to_lowercase()),
                quoted(),
                shown(&id.kind)
            ),
        ));
    }
    if has_lookup && id.kind.eq_ignore_ascii_case("email") && id.id.chars().any(char::is_uppercase)
    {
        remarks.push(Diagnostic::new(
            at.clone(),
            format!(
                "email `{}` has upper-case letters; Segment keeps emails as they were sent, usually lowercase: check the exact value",
                shown(&id.id)
            ),
        ));
    }
    if id.id.trim() != id.id || id.kind.trim() != id.kind {
        remarks.push(Diagnostic::new(
            at.clone(),
            format!(
                "`{}` has whitespace at its start or end; it is kept exactly, so it probably matches nothing (remove the spaces)",
                quoted()
            ),
        ));
    }
    remarks
}

/// The problem with a value holding a control character (`what` names it), if it does.
pub(super) fn control_problem(value: &str, what: &str) -> Option<String> {
    value.chars().any(is_forbidden_control).then(|| {
        format!(
            "{what} `{}` holds a control character; no identifier does",
            shown(value)
        )
    })
}

/// The problem with an over-long value or one holding a control character, if any.
pub(super) fn value_problem(value: &str, what: &str) -> Option<String> {
    too_long(value)
        .map(|problem| format!("{what} {problem}"))
        .or_else(|| control_problem(value, what))
}

/// An `identifier` (or `identifiers` item) as written, or the problem with it.
pub(super) fn parse_identifier(value: &str) -> Result<Identifier, String> {
    if let Some(problem) = value_problem(value, "identifier") {
        return Err(problem);
    }
    Identifier::parse(value).map_err(|e| format!("`{}` is not an identifier: {e}", shown(value)))
}

/// A `profile` lookup as written, or the problem with it.
pub(super) fn parse_lookup(value: &str) -> Result<Lookup, String> {
    if let Some(problem) = value_problem(value, "profile lookup") {
        return Err(problem);
    }
    Lookup::parse(value).map_err(|e| {
        format!(
            "`{}` is not a profile lookup (`user_id:V`, `use_...` or `TYPE:VALUE`): {e}",
            shown(value)
        )
    })
}

/// The problem with the value of scalar key `key` that is knowable without the rest of the
/// manifest, for the shape pass to report beside its own problems.
pub(super) fn scalar_problem(key: &str, value: &str) -> Option<String> {
    match key {
        "identifier" | "identifiers" => parse_identifier(value).err(),
        "profile" => parse_lookup(value).err(),
        "region" => value.parse::<Region>().err().map(|e| e.to_string()),
        "version" => (value.parse::<u64>().ok() != Some(MANIFEST_VERSION)).then(|| {
            format!(
                "unsupported manifest version {}; this idprune reads version {MANIFEST_VERSION}",
                shown(value)
            )
        }),
        _ => None,
    }
}
