//! The manifest exactly as YAML spells it: serde types with `deny_unknown_fields`, every
//! scalar wrapped in [`Spanned`] so validation can point at it. Parsing is bounded by an explicit
//! serde-saphyr [`Budget`] (depth, nodes, anchors, aliases, documents) so hostile input — an
//! alias bomb, deep nesting — is refused before it costs memory or stack. Nothing outside
//! `manifest/` sees these types; [`super::load`] turns them into a validated `Manifest`.
//!
//! serde-saphyr rather than `serde_yaml`: the latter is deprecated and unmaintained, and
//! serde-saphyr gives spans for every value ([`Spanned`]), refuses duplicate keys, and bounds
//! parsing with a budget and alias-replay limits.
//!
//! Required keys are `Option` here on purpose: a missing key is reported by validation together
//! with every other problem, instead of stopping serde at the first one.

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy};
use serde_saphyr::{Budget, MessageFormatter, Spanned, UserMessageFormatter};

/// Deepest nesting a manifest needs is 4 (document → `remove` → entry → `identifiers`);
/// 16 leaves room for mistakes to be reported as type errors rather than budget breaches.
const MAX_DEPTH: usize = 16;
/// Manifests have no use for anchors; a few are tolerated for people who like them.
const MAX_ANCHORS: usize = 64;
/// Alias events allowed in the source text.
const MAX_ALIASES: usize = 256;
/// Events replayed through aliases in total; this is what stops a "billion laughs" file.
const MAX_REPLAYED_EVENTS: usize = 10_000;
/// YAML nodes (scalars, sequences, mappings). A 4 MiB manifest of short inline identifiers
/// stays well under this.
const MAX_NODES: usize = 1_000_000;

/// The top-level manifest mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    #[serde(default, deserialize_with = "not_null")]
    pub version: Option<Spanned<u64>>,
    #[serde(default, deserialize_with = "not_null")]
    pub space: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub region: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub reason: Option<Spanned<String>>,
    #[serde(default)]
    pub remove: Option<Vec<Spanned<RawEntry>>>,
    #[serde(default)]
    pub sources: Option<Vec<Spanned<RawSource>>>,
}

/// One item of `remove`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    #[serde(default, deserialize_with = "not_null")]
    pub profile: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub identifier: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub identifiers: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One item of `sources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    #[serde(default, deserialize_with = "not_null")]
    pub csv: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub profile_column: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub profile_type: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub remove_columns: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default, deserialize_with = "not_null")]
    pub sha256: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub data_as_of: Option<Spanned<String>>,
}

/// Deserializes a key that, when present, must have a value: `profile:` left empty (null)
/// must not silently mean "no profile" (the identifier would become its own lookup), nor
/// `sha256:` mean "not pinned". A missing key is still `None` through `#[serde(default)]`.
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<Spanned<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let value = Spanned::<Option<T>>::deserialize(deserializer)?;
    match value.value {
        Some(v) => Ok(Some(Spanned::new(v, value.referenced, value.defined))),
        None => Err(serde::de::Error::custom(
            "this key has no value (null); give it one or remove the key",
        )),
    }
}

/// A YAML error reduced to what a diagnostic needs: a message without location and the
/// 1-based line and column when serde-saphyr knows them.
#[derive(Debug)]
pub(super) struct YamlError {
    pub message: String,
    pub line_column: Option<(u64, u64)>,
}

/// The serde-saphyr options: explicit budget, duplicate keys and merge keys refused,
/// one document only.
fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_anchors = MAX_ANCHORS;
    budget.max_aliases = MAX_ALIASES;
    budget.max_nodes = MAX_NODES;
    budget.max_documents = 1;
    let mut options = serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        with_snippet: false,
    };
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    options.alias_limits.max_replay_stack_depth = MAX_DEPTH;
    options
}

/// Nodes a manifest may expand to once every alias is replaced by what it names. A "billion
/// laughs" file is tiny on disk and refused here, with the location of the alias that crossed
/// the line, before anything is materialised.
const MAX_EXPANDED_NODES: u64 = 1_000_000;

/// Walks the parser's event stream once (no values built) and refuses input that nests deeper
/// than [`MAX_DEPTH`] or expands through aliases to more than [`MAX_EXPANDED_NODES`] nodes.
/// This runs before deserialization so the refusal names the real cause even where a type error
/// would otherwise be reported first. Syntax errors are left to the deserializer, whose messages
/// are better. Every event is also handed to `each` (with its 1-based line and column), so other
/// checks of the event stream need no walk of their own.
pub(super) fn prescan(
    text: &str,
    each: &mut dyn FnMut(&serde_saphyr::granit_parser::Event<'_>, (u64, u64)),
) -> Result<(), YamlError> {
    use serde_saphyr::granit_parser::{Event, Parser};

    // Expanded size of each anchor, by anchor id.
    let mut anchor_sizes: HashMap<usize, u64> = HashMap::new();
    // Open collections: (anchor id, expanded size so far).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut total: u64 = 0;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            return Ok(());
        };
        let position = (span.start.line() as u64, span.start.col() as u64 + 1);
        each(&event, position);
        let at = Some(position);
        let size = match event {
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    anchor_sizes.insert(anchor, 1);
                }
                1
            }
            Event::Alias(anchor) => anchor_sizes.get(&anchor).copied().unwrap_or(1),
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                open.push((anchor, 1));
                if open.len() > MAX_DEPTH {
                    return Err(YamlError {
                        message: format!(
                            "the manifest nests deeper than {MAX_DEPTH} levels; refusing it (a manifest needs 4)"
                        ),
                        line_column: at,
                    });
                }
                total = total.saturating_add(1);
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, size)) = open.pop() else {
                    continue;
                };
                if anchor != 0 {
                    anchor_sizes.insert(anchor, size);
                }
                // Its nodes were counted in `total` as they came; only the parent grows now.
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(size);
                }
                continue;
            }
            _ => continue,
        };
        if let Some(parent) = open.last_mut() {
            parent.1 = parent.1.saturating_add(size);
        }
        total = total.saturating_add(size);
        if total > MAX_EXPANDED_NODES {
            return Err(YamlError {
                message: format!(
                    "the manifest expands to more than {MAX_EXPANDED_NODES} YAML nodes once its aliases (`*name`) are resolved; refusing it (an alias bomb?)"
                ),
                line_column: at,
            });
        }
    }
    Ok(())
}

/// Parses manifest text (already checked for size, UTF-8 and NUL bytes, and [`prescan`]ned).
pub(super) fn parse(text: &str) -> Result<Spanned<RawManifest>, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let inner = err.without_snippet();
        let message = format!(
            "invalid manifest: {}",
            UserMessageFormatter.format_message(inner)
        );
        let line_column = inner
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| (l.line(), l.column().max(1)));
        YamlError {
            message,
            line_column,
        }
    })
}
