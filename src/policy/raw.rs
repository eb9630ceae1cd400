//! The policy file as YAML spells it, parsed under a serde-saphyr budget with unknown keys and
//! duplicate keys refused, then checked into [`Rule`]s with every problem located.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy};
use serde_saphyr::{Budget, MessageFormatter, Spanned, UserMessageFormatter};

use super::{Check, Level, MAX_POLICY_BYTES, Rule};
use crate::manifest::diagnostic::{Diagnostic, Location};

/// Longest compiled pattern, in bytes of the regex engine's program (a guard against a
/// pattern that compiles to something huge).
const MAX_PATTERN_PROGRAM: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Option<Spanned<u64>>,
    rules: Option<Spanned<RawRules>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    max_deletes: Option<Spanned<Limit<u64>>>,
    max_profiles: Option<Spanned<Limit<u64>>>,
    allowed_types: Option<Spanned<Types>>,
    forbid_types: Option<Spanned<Types>>,
    value_patterns: Option<Spanned<Patterns>>,
    require_canary_above: Option<Spanned<Limit<u64>>>,
    reason_pattern: Option<Spanned<Pattern>>,
    max_ttl: Option<Spanned<Limit<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit<T> {
    limit: T,
    level: Level,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Types {
    types: Vec<Spanned<String>>,
    level: Level,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patterns {
    patterns: BTreeMap<String, Spanned<String>>,
    level: Level,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pattern {
    pattern: Spanned<String>,
    level: Level,
}

fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_depth = 8;
    budget.max_anchors = 0;
    budget.max_aliases = 0;
    budget.max_nodes = 10_000;
    budget.max_documents = 1;
    serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        with_snippet: false,
    }
}

/// Parses and checks the policy's bytes; every problem with its `file:line:col`.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let text = policy_text(path, bytes)?;
    let raw = deserialize(path, text)?;
    let mut checker = Checker {
        path,
        problems: Vec::new(),
    };
    checker.version(raw.version.as_ref());
    let Some(rules) = raw.rules else {
        checker.problems.push(Diagnostic::new(
            Location::new(path, 1, 1),
            "the policy has no `rules`; add at least one rule (for example `max_deletes: {limit: 50000, level: hard}`)",
        ));
        return Err(checker.problems);
    };
    let out = checker.rules(&rules.value);
    let mut problems = checker.problems;
    if out.is_empty() && problems.is_empty() {
        problems.push(Diagnostic::new(
            located(path, rules.referenced),
            "`rules` is empty; add at least one rule (for example `max_deletes: {limit: 50000, level: hard}`)",
        ));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        problems.sort_by_key(|d| (d.location.line, d.location.column));
        Err(problems)
    }
}

/// The policy's text: within its size, UTF-8 with any byte-order mark dropped, not blank.
fn policy_text<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, Vec<Diagnostic>> {
    let start = Location::new(path, 1, 1);
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(vec![Diagnostic::new(
            start,
            format!("the policy is over {MAX_POLICY_BYTES} bytes; a policy is a handful of rules"),
        )]);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(vec![Diagnostic::new(
            start,
            "the policy is not valid UTF-8; save it as UTF-8",
        )]);
    };
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![Diagnostic::new(
            start,
            "the policy is empty; it needs `version: 1` and `rules`",
        )]);
    }
    Ok(text)
}

/// The raw policy, under the budget of [`options`]; a YAML or shape error is the one problem.
fn deserialize(path: &Path, text: &str) -> Result<RawPolicy, Vec<Diagnostic>> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let inner = err.without_snippet();
        let location = inner
            .location()
            .filter(|l| l.line() > 0)
            .map_or_else(|| Location::new(path, 1, 1), |l| located(path, l));
        vec![Diagnostic::new(
            location,
            format!(
                "invalid policy: {}",
                UserMessageFormatter.format_message(inner)
            ),
        )]
    })
}

/// Where `l` is in the policy file at `path` (line and column at least 1).
fn located(path: &Path, l: serde_saphyr::Location) -> Location {
    Location::new(path, l.line().max(1), l.column().max(1))
}

/// A rule as the evaluator takes it.
fn rule(name: &'static str, level: Level, check: Check) -> Rule {
    Rule { name, level, check }
}

/// Checks the raw rules into [`Rule`]s, collecting every problem.
struct Checker<'a> {
    /// The policy file, for the problems' locations.
    path: &'a Path,
    /// The problems found so far.
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&self, l: serde_saphyr::Location) -> Location {
        located(self.path, l)
    }

    /// `version` is there and is 1.
    fn version(&mut self, version: Option<&Spanned<u64>>) {
        match version {
            None => self.problems.push(Diagnostic::new(
                Location::new(self.path, 1, 1),
                "the policy has no `version`; add `version: 1`",
            )),
            Some(v) if v.value != 1 => self.problems.push(Diagnostic::new(
                self.at(v.referenced),
                format!(
                    "policy `version` {} is not supported; use `version: 1`",
                    v.value
                ),
            )),
            Some(_) => {}
        }
    }

    /// Each rule given, in this fixed order whatever the file's.
    fn rules(&mut self, r: &RawRules) -> Vec<Rule> {
        let mut out = Vec::new();
        if let Some(l) = &r.max_deletes {
            let check = Check::MaxDeletes(l.value.limit);
            out.push(rule("max_deletes", l.value.level, check));
        }
        if let Some(l) = &r.max_profiles {
            let check = Check::MaxProfiles(l.value.limit);
            out.push(rule("max_profiles", l.value.level, check));
        }
        if let Some(t) = &r.allowed_types {
            let check = Check::AllowedTypes(self.types(&t.value, "allowed_types"));
            out.push(rule("allowed_types", t.value.level, check));
        }
        if let Some(t) = &r.forbid_types {
            let check = Check::ForbidTypes(self.types(&t.value, "forbid_types"));
            out.push(rule("forbid_types", t.value.level, check));
        }
        if let Some(p) = &r.value_patterns {
            let check = Check::ValuePatterns(self.value_patterns(p));
            out.push(rule("value_patterns", p.value.level, check));
        }
        if let Some(l) = &r.require_canary_above {
            let check = Check::RequireCanaryAbove(l.value.limit);
            out.push(rule("require_canary_above", l.value.level, check));
        }
        if let Some(p) = &r.reason_pattern
            && let Some(re) = self.pattern(&p.value.pattern)
        {
            out.push(rule(
                "reason_pattern",
                p.value.level,
                Check::ReasonPattern(re),
            ));
        }
        if let Some(l) = &r.max_ttl
            && let Some(d) = self.duration(&l.value.limit)
        {
            out.push(rule("max_ttl", l.value.level, Check::MaxTtl(d)));
        }
        out
    }

    /// A pattern compiled within [`MAX_PATTERN_PROGRAM`].
    fn pattern(&mut self, p: &Spanned<String>) -> Option<regex::Regex> {
        match regex::RegexBuilder::new(&p.value)
            .size_limit(MAX_PATTERN_PROGRAM)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or_default().trim();
                let first = first.strip_prefix("error: ").unwrap_or(first).to_owned();
                self.problems.push(Diagnostic::new(
                    self.at(p.referenced),
                    format!(
                        "pattern `{}` is not a valid regular expression ({first}); fix it (Rust regex syntax)",
                        p.value.escape_debug()
                    ),
                ));
                None
            }
        }
    }

    /// The types the rule `key` lists, each an identifier type, at least one.
    fn types(&mut self, t: &Types, key: &str) -> Vec<String> {
        if t.types.is_empty() {
            self.problems.push(Diagnostic::new(
                Location::new(self.path, 1, 1),
                format!("`{key}` lists no types; name at least one (for example `types: [email]`)"),
            ));
        }
        for ty in &t.types {
            if crate::model::Identifier::parse(&format!("{}:x", ty.value)).is_err() {
                self.problems.push(Diagnostic::new(
                    self.at(ty.referenced),
                    format!(
                        "`{}` is not an identifier type; use a type such as `email` or `anonymous_id`",
                        ty.value.escape_debug()
                    ),
                ));
            }
        }
        t.types.iter().map(|t| t.value.clone()).collect()
    }

    /// `value_patterns`' patterns by type, those that compile, at least one given.
    fn value_patterns(&mut self, p: &Spanned<Patterns>) -> Vec<(String, regex::Regex)> {
        if p.value.patterns.is_empty() {
            self.problems.push(Diagnostic::new(
                self.at(p.referenced),
                "`value_patterns` has no patterns; give one per type (for example `patterns: {email: '@import\\.invalid$'}`)",
            ));
        }
        let mut list = Vec::new();
        for (kind, source) in &p.value.patterns {
            if let Some(re) = self.pattern(source) {
                list.push((kind.clone(), re));
            }
        }
        list
    }

    /// `max_ttl`'s limit as a duration.
    fn duration(&mut self, limit: &Spanned<String>) -> Option<std::time::Duration> {
        match humantime::parse_duration(&limit.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problems.push(Diagnostic::new(
                    self.at(limit.referenced),
                    format!(
                        "`max_ttl` limit `{}` is not a duration ({e}); write it like `7d` or `36h`",
                        limit.value.escape_debug()
                    ),
                ));
                None
            }
        }
    }
}
