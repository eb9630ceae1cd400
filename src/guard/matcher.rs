//! Which archived events reference a removed identifier: the targets (type + lower-cased
//! value), the fields of a Segment call Unify promotes to identifiers, and a byte-level
//! pre-filter that lets the scanner skip parsing lines that cannot match.
//!
//! The fields (Segment's `externalids` page): `userId` → `user_id`, `anonymousId` →
//! `anonymous_id`, `traits.email` / `context.traits.email` → `email`, `traits.<type>` /
//! `context.traits.<type>` for any other type the plan removes, `properties.<type>` for custom
//! types (neither `user_id`, `anonymous_id` nor `email`), and each `context.externalIds[]`
//! `{id, type}`. Values and types are compared lower-cased (Unicode), because Unify stores
//! external ids lower-cased: an event carrying `Wrong@X.com` re-adds `wrong@x.com`.
//!
//! The pre-filter is a necessary condition, never a sufficient one: a line is parsed when it
//! holds, ASCII case-insensitively, the longest ASCII run of some target's lower-cased value,
//! or a backslash (a JSON escape could spell any character), or one of the few non-ASCII
//! characters whose lower-case form holds an ASCII letter (KELVIN SIGN `K` → `k`, `İ` → `i̇`).
//! A target without any ASCII character disables the pre-filter: every line is parsed.
//! Whatever the pre-filter says, every line is still checked to be a JSON object, so malformed
//! lines are always counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aho_corasick::AhoCorasick;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The field named for a reference found in a line too deep to parse.
pub const TOO_DEEP_FIELD: &str = "(an event nested too deep to parse)";

/// True when serde_json gave up because of its nesting limit (128 levels), not a syntax error.
fn is_too_deep(error: &serde_json::Error) -> bool {
    error.to_string().starts_with("recursion limit exceeded")
}

/// The identifier types whose event fields are fixed top-level fields, not trait keys.
const TOP_LEVEL_TYPES: [&str; 2] = ["user_id", "anonymous_id"];

/// The removed identifiers an archive scan looks for.
#[derive(Debug)]
pub struct Targets {
    /// Lower-cased type → lower-cased values.
    values: HashMap<String, HashSet<String>>,
    /// Types looked up as keys of `traits` and `context.traits` (everything but the
    /// top-level types).
    trait_types: Vec<String>,
    /// Types looked up as keys of `properties` (custom types only).
    property_types: Vec<String>,
    /// `None`: every line must be parsed.
    prefilter: Option<AhoCorasick>,
    /// How many distinct targets.
    len: usize,
}

/// One reference an event makes to a target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The lower-cased identifier type.
    pub kind: String,
    /// The lower-cased value.
    pub value: String,
    /// Where in the event (`userId`, `context.traits.email`, `context.externalIds[2]`, ...).
    pub field: String,
}

/// What one line of an archive is.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// An empty (or whitespace-only) line: not an event, kept as it is.
    Blank,
    /// A JSON object that references no target.
    Clean,
    /// A JSON object that references targets: the event would re-add them.
    Hit {
        /// The event's `messageId`, when it has a string one.
        message_id: Option<String>,
        /// The references, sorted, one per (type, value, field).
        references: Vec<Reference>,
    },
    /// Not a JSON object: the parser's message.
    Malformed(String),
}

impl Targets {
    /// Builds the targets from `(type, value)` pairs, as the plan stores them.
    pub fn new<'a>(identifiers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Targets {
        let mut values: HashMap<String, HashSet<String>> = HashMap::new();
        for (kind, value) in identifiers {
            values
                .entry(kind.to_lowercase())
                .or_default()
                .insert(value.to_lowercase());
        }
        let types: BTreeSet<&String> = values.keys().collect();
        let trait_types = types
            .iter()
            .filter(|t| !TOP_LEVEL_TYPES.contains(&t.as_str()))
            .map(|t| (*t).clone())
            .collect();
        let property_types = types
            .iter()
            .filter(|t| !TOP_LEVEL_TYPES.contains(&t.as_str()) && t.as_str() != "email")
            .map(|t| (*t).clone())
            .collect();
        let len = values.values().map(HashSet::len).sum();
        let prefilter = build_prefilter(values.values().flatten().map(String::as_str));
        Targets {
            values,
            trait_types,
            property_types,
            prefilter,
            len,
        }
    }

    /// How many distinct (type, value) targets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the pre-filter is off (a target has no ASCII character): every line is parsed.
    pub fn parses_every_line(&self) -> bool {
        self.prefilter.is_none()
    }

    fn hit(&self, kind: &str, value: &str) -> Option<String> {
        let set = self.values.get(kind)?;
        let lower = value.to_lowercase();
        set.contains(&lower).then_some(lower)
    }

    /// Classifies one line (without its line end).
    pub fn classify(&self, line: &[u8]) -> Line {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Line::Blank;
        }
        let candidate = self.prefilter.as_ref().is_none_or(|ac| ac.is_match(line));
        if !candidate {
            return match serde_json::from_slice::<JsonObject>(line) {
                Ok(JsonObject) => Line::Clean,
                Err(e) => Line::Malformed(e.to_string()),
            };
        }
        let event: Value = match serde_json::from_slice(line) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Line::Malformed("not a JSON object".into()),
            Err(e) if is_too_deep(&e) => return self.too_deep(line, e),
            Err(e) => return Line::Malformed(e.to_string()),
        };
        let references = self.references(&event);
        if references.is_empty() {
            return Line::Clean;
        }
        Line::Hit {
            message_id: event
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            references,
        }
    }

    /// A line nested too deep to parse (serde_json stops at 128 levels): it may still be a
    /// valid event Segment accepts, so when it holds a target's bytes (ASCII case-insensitive)
    /// it counts as a reference, found in a field idprune could not name, and stays out of the
    /// filtered copy. Without any target's bytes it is malformed, as before.
    fn too_deep(&self, line: &[u8], error: serde_json::Error) -> Line {
        let lower = line.to_ascii_lowercase();
        let mut references: Vec<Reference> = self
            .values
            .iter()
            .flat_map(|(kind, values)| values.iter().map(move |v| (kind, v)))
            .filter(|(_, value)| memchr::memmem::find(&lower, value.as_bytes()).is_some())
            .map(|(kind, value)| Reference {
                kind: kind.clone(),
                value: value.clone(),
                field: TOO_DEEP_FIELD.to_owned(),
            })
            .collect();
        if references.is_empty() {
            return Line::Malformed(error.to_string());
        }
        references.sort();
        references.dedup();
        Line::Hit {
            message_id: None,
            references,
        }
    }

    /// Every reference `event` makes to a target, sorted and without duplicates.
    pub fn references(&self, event: &Value) -> Vec<Reference> {
        let mut found = BTreeSet::new();
        let mut check = |kind: &str, value: &Value, field: String| {
            if let Some(text) = scalar(value)
                && let Some(value) = self.hit(kind, &text)
            {
                found.insert(Reference {
                    kind: kind.to_owned(),
                    value,
                    field,
                });
            }
        };
        if let Some(v) = event.get("userId") {
            check("user_id", v, "userId".into());
        }
        if let Some(v) = event.get("anonymousId") {
            check("anonymous_id", v, "anonymousId".into());
        }
        let context = event.get("context");
        for (prefix, traits) in [
            ("traits", event.get("traits")),
            ("context.traits", context.and_then(|c| c.get("traits"))),
        ] {
            if let Some(traits) = traits.and_then(Value::as_object) {
                for kind in &self.trait_types {
                    if let Some(v) = traits.get(kind) {
                        check(kind, v, format!("{prefix}.{kind}"));
                    }
                }
            }
        }
        if let Some(props) = event.get("properties").and_then(Value::as_object) {
            for kind in &self.property_types {
                if let Some(v) = props.get(kind) {
                    check(kind, v, format!("properties.{kind}"));
                }
            }
        }
        if let Some(ids) = context
            .and_then(|c| c.get("externalIds"))
            .and_then(Value::as_array)
        {
            for (i, entry) in ids.iter().enumerate() {
                if let (Some(kind), Some(id)) =
                    (entry.get("type").and_then(scalar), entry.get("id"))
                {
                    check(
                        &kind.to_lowercase(),
                        id,
                        format!("context.externalIds[{i}]"),
                    );
                }
            }
        }
        found.into_iter().collect()
    }

    /// The targets by type, for reports: lower-cased type → how many values.
    pub fn counts_by_type(&self) -> BTreeMap<String, usize> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
}

/// A string, or a number as its JSON text (Segment accepts numeric ids and stores their
/// text); anything else is no identifier.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The non-ASCII characters whose lower-case form contains an ASCII character: an event can
/// spell an ASCII target with them, so a line holding one is always parsed.
fn folds_to_ascii() -> Vec<String> {
    (0x80u32..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
        .map(|c| c.to_string())
        .collect()
}

fn build_prefilter<'a>(values: impl Iterator<Item = &'a str>) -> Option<AhoCorasick> {
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    for value in values {
        let longest = value
            .split(|c: char| !c.is_ascii())
            .max_by_key(|run| run.len())
            .unwrap_or("");
        if longest.is_empty() {
            return None;
        }
        patterns.insert(longest.to_owned());
    }
    patterns.insert("\\".to_owned());
    patterns.extend(folds_to_ascii());
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .ok()
}

/// Accepts any JSON object and nothing else, without building it.
struct JsonObject;

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonObject)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets::new([
            ("email", "wrong@x.com"),
            ("user_id", "u_7b"),
            ("anonymous_id", "anon-2"),
            ("phone", "+15550100"),
            ("email", "zoë@x.com"),
        ])
    }

    fn kinds(line: &str) -> Vec<(String, String)> {
        match targets().classify(line.as_bytes()) {
            Line::Hit { references, .. } => {
                references.into_iter().map(|r| (r.kind, r.field)).collect()
            }
            other => panic!("expected a hit for {line}, got {other:?}"),
        }
    }

    #[test]
    fn every_reference_kind() {
        assert_eq!(
            kinds(r#"{"userId":"U_7B","messageId":"m"}"#),
            [("user_id".into(), "userId".into())]
        );
        assert_eq!(
            kinds(r#"{"anonymousId":"anon-2"}"#),
            [("anonymous_id".into(), "anonymousId".into())]
        );
        assert_eq!(
            kinds(r#"{"traits":{"email":"Wrong@X.com"}}"#),
            [("email".into(), "traits.email".into())]
        );
        assert_eq!(
            kinds(r#"{"context":{"traits":{"email":"wrong@x.com"}}}"#),
            [("email".into(), "context.traits.email".into())]
        );
        assert_eq!(
            kinds(r#"{"context":{"traits":{"phone":"+15550100"}}}"#),
            [("phone".into(), "context.traits.phone".into())]
        );
        assert_eq!(
            kinds(r#"{"properties":{"phone":"+15550100"}}"#),
            [("phone".into(), "properties.phone".into())]
        );
        assert_eq!(
            kinds(
                r#"{"context":{"externalIds":[{"id":"x","type":"email"},{"id":"WRONG@x.com","type":"Email","collection":"users"}]}}"#
            ),
            [("email".into(), "context.externalIds[1]".into())]
        );
    }

    #[test]
    fn clean_and_near_misses() {
        let t = targets();
        for line in [
            r#"{"userId":"u_7"}"#,
            r#"{"properties":{"email":"wrong@x.com"}}"#, // properties.email is not promoted
            r#"{"traits":{"user_id":"u_7b"}}"#,          // neither is traits.user_id
            r#"{"traits":{"email":"wrong@x.com.au"}}"#,
            r#"{"context":{"externalIds":[{"id":"wrong@x.com","type":"phone"}]}}"#,
            r#"{"traits":"wrong@x.com"}"#,
            r#"{"note":"wrong@x.com"}"#,
        ] {
            assert_eq!(t.classify(line.as_bytes()), Line::Clean, "{line}");
        }
    }

    #[test]
    fn escapes_and_unicode_folding_are_not_missed() {
        // `\u0040` is `@`, `\u212a` is KELVIN SIGN, which lower-cases to ASCII `k`.
        let t = Targets::new([("email", "wrong@x.com"), ("user_id", "kate")]);
        for line in [
            r#"{"traits":{"email":"wrong\u0040x.com"}}"#,
            r#"{"userId":"\u212aate"}"#,
            "{\"userId\":\"\u{212a}ATE\"}",
        ] {
            assert!(
                matches!(t.classify(line.as_bytes()), Line::Hit { .. }),
                "{line}"
            );
        }
        // Non-ASCII values match case-insensitively too.
        let t = targets();
        assert!(matches!(
            t.classify("{\"traits\":{\"email\":\"ZOË@X.COM\"}}".as_bytes()),
            Line::Hit { .. }
        ));
        // A target without any ASCII character turns the pre-filter off.
        assert!(Targets::new([("name_id", "ÄÖ")]).parses_every_line());
        assert!(!targets().parses_every_line());
    }

    #[test]
    fn numbers_message_ids_and_malformed() {
        let t = Targets::new([("user_id", "12345")]);
        assert_eq!(
            t.classify(br#"{"userId":12345,"messageId":"m-1"}"#),
            Line::Hit {
                message_id: Some("m-1".into()),
                references: vec![Reference {
                    kind: "user_id".into(),
                    value: "12345".into(),
                    field: "userId".into()
                }]
            }
        );
        assert!(matches!(t.classify(b"{\"a\":1"), Line::Malformed(_)));
        assert!(matches!(t.classify(b"[1,2]"), Line::Malformed(_)));
        assert!(matches!(t.classify(b"[12345]"), Line::Malformed(_)));
        assert!(matches!(t.classify(b"\xff\xfe"), Line::Malformed(_)));
        assert_eq!(t.classify(b"  \r"), Line::Blank);
        assert_eq!(t.classify(br#"{"a":{"b":[1,2,{}]}}"#), Line::Clean);
    }
}
