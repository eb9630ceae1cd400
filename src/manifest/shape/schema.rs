//! The manifest's schema as the shape pass sees it: which keys each kind of mapping holds and
//! what each key's value must be ([`Expect`], [`MapKind`]), and the problem with a key
//! ([`key_problem`]: unknown, with a "did you mean" for a likely typo, given twice, or a merge
//! key).

use super::super::diagnostic::shown;

/// What a node must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// The document: a mapping of the top-level keys.
    Top,
    /// `version`: a plain whole number.
    Version,
    /// One scalar value, with an example for the message.
    Text(&'static str, &'static str),
    /// A list of scalars, with an example.
    TextList(&'static str, &'static str),
    /// `remove`: a list of entries.
    Entries,
    /// `sources`: a list of sources.
    Sources,
    /// One `remove` entry.
    Entry,
    /// One `sources` item.
    Source,
    /// A scalar inside a list (`identifiers`, `remove_columns`).
    Item(&'static str),
    /// Anything (inside something already reported, or under an alias).
    Any,
}

/// The keys of one kind of mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MapKind {
    Top,
    Entry,
    Source,
    Other,
}

impl MapKind {
    pub(super) fn keys(self) -> &'static [(&'static str, Expect)] {
        match self {
            Self::Top => &[
                ("version", Expect::Version),
                ("space", Expect::Text("space", "space: spa_abc123")),
                ("region", Expect::Text("region", "region: us")),
                ("reason", Expect::Text("reason", "reason: \"why these go\"")),
                ("remove", Expect::Entries),
                ("sources", Expect::Sources),
            ],
            Self::Entry => &[
                ("profile", Expect::Text("profile", "profile: user_id:u_1")),
                (
                    "identifier",
                    Expect::Text("identifier", "identifier: email:a@x.com"),
                ),
                (
                    "identifiers",
                    Expect::TextList("identifiers", "[email:a@x.com]"),
                ),
            ],
            Self::Source => &[
                ("csv", Expect::Text("csv", "csv: bad-emails.csv")),
                (
                    "profile_column",
                    Expect::Text("profile_column", "profile_column: user_id"),
                ),
                (
                    "profile_type",
                    Expect::Text("profile_type", "profile_type: user_id"),
                ),
                (
                    "remove_columns",
                    Expect::TextList("remove_columns", "[email]"),
                ),
                ("sha256", Expect::Text("sha256", "sha256: <64 hex digits>")),
                (
                    "data_as_of",
                    Expect::Text("data_as_of", "data_as_of: \"2026-12-01T10:00:00Z\""),
                ),
            ],
            Self::Other => &[],
        }
    }

    pub(super) fn place(self) -> &'static str {
        match self {
            Self::Top => "at the top level",
            Self::Entry => "in a `remove` entry",
            Self::Source => "in a `sources` item",
            Self::Other => "here",
        }
    }
}

/// The expectation of a key's value in a `kind` mapping, and the problem with the key.
pub(super) fn key_problem(
    kind: MapKind,
    key: &str,
    duplicate: Option<u64>,
) -> (Expect, Option<String>) {
    let keys = kind.keys();
    if kind == MapKind::Other {
        return (Expect::Any, None);
    }
    if let Some((_, expect)) = keys.iter().find(|(k, _)| *k == key) {
        let problem = duplicate
            .map(|line| format!("`{key}` is given twice (first on line {line}); keep one"));
        return (*expect, problem);
    }
    if key == "<<" {
        return (
            Expect::Any,
            Some("merge keys (`<<`) are not allowed in a manifest; write the keys out".into()),
        );
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let message = match suggestion(key, &names) {
        Some(near) => format!(
            "unknown key `{}` {}; did you mean `{near}`?",
            shown(key),
            kind.place()
        ),
        None => format!(
            "unknown key `{}` {}; expected {}",
            shown(key),
            kind.place(),
            one_of(&names)
        ),
    };
    (Expect::Any, Some(message))
}

/// "`a`, `b` or `c`".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The known name closest to `key`, when it is close enough to be a typo: the same name in
/// another case, or at most two edits away (one for names of four letters or fewer).
pub(super) fn suggestion<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    if let Some(same) = names.iter().find(|n| n.eq_ignore_ascii_case(key)) {
        return Some(same);
    }
    let lower = key.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&lower, n), *n))
        .filter(|(d, n)| *d <= if n.len() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("identifer", "identifier"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            suggestion("identifer", &["identifier", "identifiers"]),
            Some("identifier")
        );
        assert_eq!(suggestion("Space", &["space"]), Some("space"));
        assert_eq!(suggestion("colour", &["profile", "identifier"]), None);
    }
}
