//! The shape check: one tolerant pass over the YAML event stream that finds *every* schema
//! problem — unknown keys (with "did you mean"), a scalar where a list goes and the reverse,
//! keys given twice, null values, tags, merge keys — each located, in plain words. serde stops
//! at the first such problem and words it in parser terms ("expected sequence start"); this
//! pass runs first, so a manifest with three typos is fixed in one round.
//!
//! It builds no tree (a 4 MiB manifest stays cheap): a stack of frames says what the next node
//! must be. Syntax errors end the pass quietly; the deserializer reports them. Values are not
//! judged here (that is the validator's job, after a successful parse). The schema (which keys
//! go where, and the did-you-mean for an unknown one) is in `shape/schema.rs`.

use std::collections::HashMap;

#[cfg(test)]
use serde_saphyr::granit_parser::Parser;
use serde_saphyr::granit_parser::{Event, ScalarStyle};

mod schema;

use self::schema::{Expect, MapKind, key_problem, suggestion};
use super::diagnostic::shown;

/// A problem found by the shape check: 1-based line and column, and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ShapeProblem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

enum Frame {
    Map {
        kind: MapKind,
        /// The expectation of the value after the key just read; `None` while a key is due.
        pending: Option<Expect>,
        /// Keys seen, with the line of their first occurrence.
        seen: HashMap<String, u64>,
        /// Where the mapping starts.
        start: (u64, u64),
        /// Known keys that unknown keys here were taken for (`identifer` → `identifier`).
        suggested: Vec<&'static str>,
    },
    Seq {
        item: Expect,
    },
}

/// A node as the check sees it.
enum Node<'a> {
    Scalar {
        value: &'a str,
        plain: bool,
        tagged: bool,
    },
    Seq {
        tagged: bool,
    },
    Map {
        tagged: bool,
    },
    Alias,
}

impl Node<'_> {
    fn what(&self) -> &'static str {
        match self {
            Self::Scalar { .. } => "a single value",
            Self::Seq { .. } => "a list",
            Self::Map { .. } => "a mapping",
            Self::Alias => "an alias",
        }
    }

    fn tagged(&self) -> bool {
        matches!(
            self,
            Self::Scalar { tagged: true, .. }
                | Self::Seq { tagged: true }
                | Self::Map { tagged: true }
        )
    }

    fn is_null(&self) -> bool {
        matches!(self, Self::Scalar { value, plain: true, .. } if matches!(*value, "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Checks the shape of the manifest text on its own; every problem found, in file order.
/// [`super::load`] feeds the same events through [`Shape::event`] during the prescan instead,
/// so the text is walked once.
#[cfg(test)]
pub(super) fn check(text: &str) -> Vec<ShapeProblem> {
    let mut shape = Shape::new();
    for item in Parser::new_from_str(text) {
        // A syntax error: the deserializer words it better, and nothing after it is reliable.
        let Ok((event, span)) = item else {
            break;
        };
        shape.event(
            &event,
            (span.start.line() as u64, span.start.col() as u64 + 1),
        );
    }
    shape.finish()
}

/// The shape check, fed one parser event at a time.
pub(super) struct Shape {
    check: Check,
    /// The first document ended: later events are the deserializer's to refuse.
    done: bool,
}

impl Shape {
    /// A check at the start of the text.
    pub(super) fn new() -> Self {
        Self {
            check: Check {
                stack: Vec::new(),
                problems: Vec::new(),
                missing: Vec::new(),
                values: Vec::new(),
                root_seen: false,
            },
            done: false,
        }
    }

    /// One event, at its 1-based line and column.
    pub(super) fn event(&mut self, event: &Event<'_>, at: (u64, u64)) {
        if self.done {
            return;
        }
        let check = &mut self.check;
        let node = match event {
            Event::Scalar(value, style, _, tag) => Node::Scalar {
                value,
                plain: matches!(style, ScalarStyle::Plain),
                tagged: tag.is_some(),
            },
            Event::SequenceStart(_, _, tag) => Node::Seq {
                tagged: tag.is_some(),
            },
            Event::MappingStart(_, _, tag) => Node::Map {
                tagged: tag.is_some(),
            },
            Event::Alias(_) => Node::Alias,
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Some(frame)) = check.stack.pop() {
                    check.closed(frame);
                }
                return;
            }
            Event::DocumentEnd => {
                self.done = true;
                return;
            }
            _ => return,
        };
        check.node(&node, at);
    }

    /// Every problem found, in file order.
    pub(super) fn finish(self) -> Vec<ShapeProblem> {
        let check = self.check;
        // Missing keys are the validator's to report on a well-shaped manifest; alongside other
        // shape problems they are reported now, so one round shows everything.
        let mut problems = check.problems;
        if !problems.is_empty() {
            problems.extend(check.missing);
            problems.extend(check.values);
        }
        problems.sort_by_key(|p| (p.line, p.column));
        problems
    }
}

struct Check {
    stack: Vec<Option<Frame>>,
    problems: Vec<ShapeProblem>,
    /// Required keys that are missing, in the validator's words.
    missing: Vec<ShapeProblem>,
    /// Problems with single values (a bad identifier, an unknown region), in the validator's
    /// words: like `missing`, reported here only beside shape problems.
    values: Vec<ShapeProblem>,
    root_seen: bool,
}

impl Check {
    /// A mapping ended: note the required keys it lacks (unless an unknown key in it was
    /// taken for that key: the typo is the problem, already reported).
    fn closed(&mut self, frame: Frame) {
        let Frame::Map {
            kind,
            seen,
            start,
            suggested,
            ..
        } = frame
        else {
            return;
        };
        let required: &[(&[&str], &str)] = match kind {
            MapKind::Top => &[
                (&["version"], "missing `version: 1`"),
                (
                    &["space"],
                    "missing `space` (the Unify space id, like `spa_abc123`)",
                ),
                (
                    &["reason"],
                    "missing `reason` (why these identifiers go; it is recorded in the journal)",
                ),
            ],
            MapKind::Entry => &[(
                &["identifier", "identifiers"],
                "this entry removes nothing; add `identifier: TYPE:VALUE` or `identifiers: [TYPE:VALUE, ...]`",
            )],
            MapKind::Source => &[
                (
                    &["csv"],
                    "this source needs `csv: PATH` (relative to the manifest)",
                ),
                (
                    &["remove_columns"],
                    "this source needs `remove_columns: [COLUMN, ...]` (each header is the identifier type)",
                ),
            ],
            MapKind::Other => &[],
        };
        for (any_of, message) in required {
            let present = any_of.iter().any(|k| seen.contains_key(*k));
            let mistyped = any_of.iter().any(|k| suggested.contains(k));
            if !present && !mistyped {
                self.missing.push(ShapeProblem {
                    line: start.0,
                    column: start.1,
                    message: (*message).to_owned(),
                });
            }
        }
    }

    /// Notes the validator's problem with a single value, if it has one.
    fn value(&mut self, at: (u64, u64), key: &str, value: &str) {
        if let Some(message) = super::check::scalar_problem(key, value) {
            self.values.push(ShapeProblem {
                line: at.0,
                column: at.1,
                message,
            });
        }
    }

    fn problem(&mut self, at: (u64, u64), message: String) {
        self.problems.push(ShapeProblem {
            line: at.0,
            column: at.1,
            message,
        });
    }

    /// Opens the frame of a collection node (`None`: not checked inside).
    fn open(&mut self, node: &Node<'_>, frame: Option<Frame>) {
        if matches!(node, Node::Seq { .. } | Node::Map { .. }) {
            self.stack.push(frame);
        }
    }

    fn node(&mut self, node: &Node<'_>, at: (u64, u64)) {
        // A key is due in the mapping on top.
        if let Some(Some(Frame::Map {
            kind,
            pending: pending @ None,
            seen,
            suggested,
            ..
        })) = self.stack.last_mut()
        {
            let kind = *kind;
            let (expect, problem) = match node {
                Node::Scalar { value, .. } => {
                    let key = (*value).to_owned();
                    let duplicate = seen.get(&key).copied();
                    seen.entry(key).or_insert(at.0);
                    let names: Vec<&'static str> = kind.keys().iter().map(|(k, _)| *k).collect();
                    if !names.contains(value) {
                        suggested.extend(suggestion(value, &names));
                    }
                    key_problem(kind, value, duplicate)
                }
                Node::Alias => (Expect::Any, None),
                _ => (
                    Expect::Any,
                    Some("a key must be a plain name such as `identifier`".to_owned()),
                ),
            };
            *pending = Some(expect);
            if let Some(message) = problem {
                self.problem(at, message);
            }
            self.open(node, None);
            return;
        }
        let expect = match self.stack.last_mut() {
            None if self.root_seen => Expect::Any,
            None => {
                self.root_seen = true;
                Expect::Top
            }
            Some(None) => Expect::Any,
            Some(Some(Frame::Seq { item })) => *item,
            Some(Some(Frame::Map { pending, .. })) => pending.take().unwrap_or(Expect::Any),
        };
        if expect != Expect::Any && node.tagged() {
            self.problem(
                at,
                "YAML tags (`!!type`, `!name`) are not allowed in a manifest; write the plain value"
                    .into(),
            );
            self.open(node, None);
            return;
        }
        if matches!(node, Node::Alias) {
            return;
        }
        let frame = self.judge(expect, node, at);
        self.open(node, frame);
    }

    /// Checks `node` against `expect`; the frame to open when it is a collection.
    fn judge(&mut self, expect: Expect, node: &Node<'_>, at: (u64, u64)) -> Option<Frame> {
        let map = |kind| {
            Some(Frame::Map {
                kind,
                pending: None,
                seen: HashMap::new(),
                start: at,
                suggested: Vec::new(),
            })
        };
        let found = node.what();
        match (expect, node) {
            (Expect::Any, Node::Map { .. }) => map(MapKind::Other),
            (Expect::Any, _) => None,
            (Expect::Top, Node::Map { .. }) => map(MapKind::Top),
            (Expect::Top, _) => {
                self.problem(
                    at,
                    format!(
                        "the manifest must be a mapping of keys such as `version: 1` and `space: spa_abc123`, not {found}"
                    ),
                );
                None
            }
            (Expect::Version, Node::Scalar { value, plain, .. }) => {
                if node.is_null() {
                    self.problem(at, null_message("version"));
                } else if !plain || value.parse::<u64>().is_err() {
                    self.problem(
                        at,
                        format!("`version` must be the number 1, found `{}`", shown(value)),
                    );
                } else {
                    self.value(at, "version", value);
                }
                None
            }
            (Expect::Text(key, _), Node::Scalar { value, .. })
            | (Expect::Item(key), Node::Scalar { value, .. }) => {
                if node.is_null() {
                    self.problem(at, null_message(key));
                } else {
                    self.value(at, key, value);
                }
                None
            }
            (Expect::Version, _) => {
                self.problem(at, format!("`version` must be the number 1, not {found}"));
                None
            }
            (Expect::Text(key, example), _) => {
                self.problem(
                    at,
                    format!("`{key}` must be a single value, not {found}; for example `{example}`"),
                );
                None
            }
            (Expect::Item(key), _) => {
                self.problem(
                    at,
                    format!("each item of `{key}` must be a single value, not {found}"),
                );
                None
            }
            (Expect::TextList(key, _), Node::Seq { .. }) => Some(Frame::Seq {
                item: Expect::Item(key),
            }),
            (Expect::TextList(key, example), _) => {
                if node.is_null() {
                    self.problem(at, null_message(key));
                } else {
                    self.problem(
                        at,
                        format!("`{key}` must be a list, for example `{example}`, not {found}"),
                    );
                }
                None
            }
            (Expect::Entries, Node::Seq { .. }) => Some(Frame::Seq {
                item: Expect::Entry,
            }),
            (Expect::Sources, Node::Seq { .. }) => Some(Frame::Seq {
                item: Expect::Source,
            }),
            // `remove:` or `sources:` left empty means none, as serde reads it.
            (Expect::Entries | Expect::Sources, _) if node.is_null() => None,
            (Expect::Entries, _) => {
                self.problem(
                    at,
                    format!(
                        "`remove` must be a list of entries, each like `- identifier: email:a@x.com`, not {found}"
                    ),
                );
                None
            }
            (Expect::Sources, _) => {
                self.problem(
                    at,
                    format!(
                        "`sources` must be a list, each item like `- csv: bad-emails.csv`, not {found}"
                    ),
                );
                None
            }
            (Expect::Entry, Node::Map { .. }) => map(MapKind::Entry),
            (Expect::Source, Node::Map { .. }) => map(MapKind::Source),
            (Expect::Entry, _) => {
                self.problem(
                    at,
                    format!(
                        "each `remove` entry must be a mapping like `identifier: email:a@x.com`, not {found}"
                    ),
                );
                None
            }
            (Expect::Source, _) => {
                self.problem(
                    at,
                    format!(
                        "each `sources` item must be a mapping like `csv: bad-emails.csv`, not {found}"
                    ),
                );
                None
            }
        }
    }
}

fn null_message(key: &str) -> String {
    format!("`{key}` has no value (null); give it one or remove the key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        check(text)
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect()
    }

    #[test]
    fn every_problem_in_one_pass() {
        let yaml = "version: 1\nspcae: spa_1\nreason: x\nremove:\n  - identifer: email:a@x.com\n  - profile: user_id:u\n    identifiers: email:x\n  - email:b@x.com\nsources: {csv: a.csv}\n";
        let got = messages(yaml);
        assert_eq!(
            got,
            vec![
                "2:1: unknown key `spcae` at the top level; did you mean `space`?",
                "5:5: unknown key `identifer` in a `remove` entry; did you mean `identifier`?",
                "7:18: `identifiers` must be a list, for example `[email:a@x.com]`, not a single value",
                "8:5: each `remove` entry must be a mapping like `identifier: email:a@x.com`, not a single value",
                "9:10: `sources` must be a list, each item like `- csv: bad-emails.csv`, not a mapping",
            ]
        );
    }

    #[test]
    fn missing_keys_join_other_problems_unless_mistyped() {
        // `spcae` stands for `space`: no "missing `space`" on top of it; `reason` is missing.
        let got = messages("version: 1\nspcae: x\nremove:\n  - profile: user_id:u\n");
        assert_eq!(
            got,
            vec![
                "1:1: missing `reason` (why these identifiers go; it is recorded in the journal)",
                "2:1: unknown key `spcae` at the top level; did you mean `space`?",
                "4:5: this entry removes nothing; add `identifier: TYPE:VALUE` or `identifiers: [TYPE:VALUE, ...]`",
            ]
        );
        // Bad values beside a shape problem are reported with it, in the validator's words.
        let got = messages(
            "version: 1\nspace: x\nreason: y\nregion: mars\ncolour: red\nremove:\n  - identifier: nocolon\n",
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("4:9: unknown region `mars`"), "{got:?}");
        assert!(got[1].starts_with("5:1: unknown key `colour`"), "{got:?}");
        assert!(
            got[2].starts_with("7:17: `nocolon` is not an identifier"),
            "{got:?}"
        );
        // Alone, a missing key is the validator's to report.
        assert_eq!(messages("version: 1\nspace: x\n"), Vec::<String>::new());
    }

    #[test]
    fn duplicates_nulls_and_tags() {
        let got = messages("version: 1\nspace: a\nspace: b\nreason: ~\nregion: !!str us\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("3:1: `space` is given twice (first on line 2)"));
        assert!(got[1].starts_with("4:9: `reason` has no value (null)"));
        assert!(got[2].starts_with("5:15: YAML tags"), "{got:?}");
    }

    #[test]
    fn a_good_manifest_has_no_shape_problems() {
        let yaml = "version: 1\nspace: spa_1\nregion: eu\nreason: x\nremove:\n  - identifier: email:a@x.com\n  - profile: user_id:u\n    identifiers: [email:b, phone:1]\nsources:\n  - csv: a.csv\n    remove_columns: [email]\n";
        assert_eq!(messages(yaml), Vec::<String>::new());
        assert_eq!(messages("remove:\n"), Vec::<String>::new());
    }
}
