//! The emulator's starting data: a JSON [`Seed`] of profiles and their identifiers, and its
//! validation. It owns no running state; `space/` turns a checked seed into the live index.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The space id used when the seed names none.
pub const DEFAULT_SPACE: &str = "spa_demo";
/// How many seed problems are listed before the rest are summarised.
const MAX_LISTED_PROBLEMS: usize = 20;

/// The profiles the emulator starts with, loaded from JSON:
/// `{"space": "spa_demo", "token": "optional", "profiles": [{"segment_id": "use_001", "identifiers": ["user_id:u_001", {"type": "email", "id": "a@x.com"}]}]}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The space id the emulator answers for (default `spa_demo`).
    #[serde(default = "default_space")]
    pub space: String,
    /// The accepted access token; when absent, `IDPRUNE_EMULATOR_TOKEN`, then `demo-token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The profiles, in order; each identifier's order is the order reads list it in.
    #[serde(default)]
    pub profiles: Vec<SeedProfile>,
}

/// One seeded profile.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProfile {
    /// Segment's profile id; `use_<n>` (n = 1-based position, skipping taken ids) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// The profile's identifiers.
    pub identifiers: Vec<SeedIdentifier>,
}

/// A seeded identifier: `"TYPE:VALUE"` (split at the first colon) or `{"type": .., "id": ..}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SeedIdentifier {
    /// The `TYPE:VALUE` notation.
    Text(String),
    /// The object notation, for values that read badly in the text form.
    Object {
        /// The identifier type.
        #[serde(rename = "type")]
        kind: String,
        /// The identifier value.
        id: String,
    },
}

impl SeedIdentifier {
    /// The `(type, value)` pair, or why there is none.
    pub fn parts(&self) -> Result<(&str, &str), String> {
        let (kind, id) = match self {
            SeedIdentifier::Text(text) => text
                .split_once(':')
                .ok_or_else(|| format!("identifier `{text}` is not `TYPE:VALUE`"))?,
            SeedIdentifier::Object { kind, id } => (kind.as_str(), id.as_str()),
        };
        if kind.is_empty() || kind.contains(':') {
            return Err(format!(
                "identifier type `{kind}` must be non-empty and hold no colon"
            ));
        }
        if id.is_empty() {
            return Err(format!("identifier of type `{kind}` has an empty value"));
        }
        Ok((kind, id))
    }
}

fn default_space() -> String {
    DEFAULT_SPACE.to_owned()
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            space: default_space(),
            token: None,
            profiles: Vec::new(),
        }
    }
}

impl Seed {
    /// Reads and checks a seed file.
    pub fn from_path(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading emulator seed `{}`", path.display()))?;
        Seed::from_json(&text).with_context(|| format!("in emulator seed `{}`", path.display()))
    }

    /// Parses and checks a seed from JSON text.
    pub fn from_json(text: &str) -> anyhow::Result<Seed> {
        let seed: Seed = serde_json::from_str(text).context("parsing the seed JSON")?;
        seed.check()?;
        Ok(seed)
    }

    /// The segment ids of the profiles, in order, generating `use_<n>` for the ones without.
    pub(crate) fn segment_ids(&self) -> Vec<String> {
        let taken: std::collections::HashSet<&str> = self
            .profiles
            .iter()
            .filter_map(|p| p.segment_id.as_deref())
            .collect();
        let mut next = 0usize;
        self.profiles
            .iter()
            .map(|p| match &p.segment_id {
                Some(id) => id.clone(),
                None => loop {
                    next += 1;
                    let candidate = format!("use_{next}");
                    if !taken.contains(candidate.as_str()) {
                        break candidate;
                    }
                },
            })
            .collect()
    }

    /// Checks every rule and reports all problems at once: identifier syntax, unique segment
    /// ids, and that an identifier belongs to at most one profile.
    pub fn check(&self) -> anyhow::Result<()> {
        let ids = self.segment_ids();
        let mut owner: HashMap<(&str, &str), usize> = HashMap::new();
        self.walk(&ids, |n, kind, id| owner.insert((kind, id), n))
    }

    /// The one validation pass, shared by [`Seed::check`] and the emulator's index build:
    /// calls `claim(profile, type, value)` for every well-formed identifier in order, which
    /// records it and returns the profile that already held it, if any. `ids` are
    /// [`Seed::segment_ids`].
    pub(crate) fn walk<'s>(
        &'s self,
        ids: &[String],
        mut claim: impl FnMut(usize, &'s str, &'s str) -> Option<usize>,
    ) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.space.is_empty() {
            problems.push("`space` is empty".to_owned());
        }
        let mut by_segment: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            if id.is_empty() {
                problems.push(format!("profile #{} has an empty `segment_id`", n + 1));
            } else if let Some(first) = by_segment.insert(id, n) {
                problems.push(format!(
                    "segment id `{id}` is used by profiles #{} and #{}",
                    first + 1,
                    n + 1
                ));
            }
        }
        drop(by_segment);
        for (n, profile) in self.profiles.iter().enumerate() {
            for ident in &profile.identifiers {
                let (kind, id) = match ident.parts() {
                    Ok(parts) => parts,
                    Err(problem) => {
                        problems.push(format!("profile `{}`: {problem}", ids[n]));
                        continue;
                    }
                };
                match claim(n, kind, id) {
                    Some(first) if first == n => problems.push(format!(
                        "identifier `{kind}:{id}` is listed twice on profile `{}`",
                        ids[n]
                    )),
                    Some(first) => problems.push(format!(
                        "identifier `{kind}:{id}` is on profile `{}` and on profile `{}`; an identifier belongs to at most one profile",
                        ids[first], ids[n]
                    )),
                    None => {}
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let total = problems.len();
        let mut message = problems
            .into_iter()
            .take(MAX_LISTED_PROBLEMS)
            .collect::<Vec<_>>()
            .join("\n");
        if total > MAX_LISTED_PROBLEMS {
            message.push_str(&format!("\n... and {} more", total - MAX_LISTED_PROBLEMS));
        }
        anyhow::bail!("invalid emulator seed ({total} problem(s)):\n{message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_identifier_forms_and_defaults() {
        let seed = Seed::from_json(
            r#"{"profiles": [
                {"segment_id": "use_001", "identifiers": ["user_id:u_001", "email:a:b@x.com"]},
                {"identifiers": [{"type": "email", "id": "weird:value"}]}
            ]}"#,
        )
        .expect("valid seed");
        assert_eq!(seed.space, DEFAULT_SPACE);
        assert_eq!(seed.token, None);
        assert_eq!(
            seed.profiles[0].identifiers[1].parts(),
            Ok(("email", "a:b@x.com"))
        );
        assert_eq!(
            seed.profiles[1].identifiers[0].parts(),
            Ok(("email", "weird:value"))
        );
        assert_eq!(seed.segment_ids(), ["use_001", "use_1"]);
    }

    #[test]
    fn generated_segment_ids_skip_taken_ones() {
        let seed = Seed::from_json(
            r#"{"profiles": [{"identifiers": []}, {"segment_id": "use_1", "identifiers": []}]}"#,
        )
        .expect("valid");
        assert_eq!(seed.segment_ids(), ["use_2", "use_1"]);
    }

    #[test]
    fn rejects_shared_identifiers_naming_both_profiles() {
        let err = Seed::from_json(
            r#"{"profiles": [
                {"segment_id": "use_a", "identifiers": ["email:x@y.com"]},
                {"segment_id": "use_b", "identifiers": [{"type": "email", "id": "x@y.com"}]}
            ]}"#,
        )
        .expect_err("shared identifier");
        let text = format!("{err:#}");
        assert!(text.contains("use_a") && text.contains("use_b"), "{text}");
    }

    #[test]
    fn rejects_bad_identifiers_and_unknown_keys() {
        for bad in [
            r#"{"profiles": [{"identifiers": ["nocolon"]}]}"#,
            r#"{"profiles": [{"identifiers": ["email:"]}]}"#,
            r#"{"profiles": [{"identifiers": [":v"]}]}"#,
            r#"{"profiles": [{"identifiers": [{"type": "a:b", "id": "v"}]}]}"#,
            r#"{"profiles": [{"identifiers": ["email:a", "email:a"]}]}"#,
            r#"{"profiles": [{"segment_id": "use_x", "identifiers": []}, {"segment_id": "use_x", "identifiers": []}]}"#,
            r#"{"profiles": [{"identifers": []}]}"#,
            r#"{"spaces": "x"}"#,
        ] {
            assert!(Seed::from_json(bad).is_err(), "must refuse {bad}");
        }
    }
}
