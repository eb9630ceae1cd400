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
    let at = |l: serde_saphyr::Location| Location::new(path, l.line().max(1), l.column().max(1));
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
    let raw: RawPolicy = serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let inner = err.without_snippet();
        let location = inner
            .location()
            .filter(|l| l.line() > 0)
            .map_or_else(|| Location::new(path, 1, 1), at);
        vec![Diagnostic::new(
            location,
            format!(
                "invalid policy: {}",
                UserMessageFormatter.format_message(inner)
            ),
        )]
    })?;
    let mut problems = Vec::new();
    match &raw.version {
        None => problems.push(Diagnostic::new(
            Location::new(path, 1, 1),
            "the policy has no `version`; add `version: 1`",
        )),
        Some(v) if v.value != 1 => problems.push(Diagnostic::new(
            at(v.referenced),
            format!(
                "policy `version` {} is not supported; use `version: 1`",
                v.value
            ),
        )),
        Some(_) => {}
    }
    let Some(rules) = raw.rules else {
        problems.push(Diagnostic::new(
            Location::new(path, 1, 1),
            "the policy has no `rules`; add at least one rule (for example `max_deletes: {limit: 50000, level: hard}`)",
        ));
        return Err(problems);
    };
    let r = rules.value;
    let mut out = Vec::new();
    let pattern = |p: &Spanned<String>, problems: &mut Vec<Diagnostic>| {
        match regex::RegexBuilder::new(&p.value)
            .size_limit(MAX_PATTERN_PROGRAM)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or_default().trim();
                let first = first.strip_prefix("error: ").unwrap_or(first).to_owned();
                problems.push(Diagnostic::new(
                    at(p.referenced),
                    format!(
                        "pattern `{}` is not a valid regular expression ({first}); fix it (Rust regex syntax)",
                        p.value.escape_debug()
                    ),
                ));
                None
            }
        }
    };
    let types = |t: &Types, problems: &mut Vec<Diagnostic>, rule: &str| -> Vec<String> {
        if t.types.is_empty() {
            problems.push(Diagnostic::new(
                Location::new(path, 1, 1),
                format!(
                    "`{rule}` lists no types; name at least one (for example `types: [email]`)"
                ),
            ));
        }
        for ty in &t.types {
            if crate::model::Identifier::parse(&format!("{}:x", ty.value)).is_err() {
                problems.push(Diagnostic::new(
                    at(ty.referenced),
                    format!(
                        "`{}` is not an identifier type; use a type such as `email` or `anonymous_id`",
                        ty.value.escape_debug()
                    ),
                ));
            }
        }
        t.types.iter().map(|t| t.value.clone()).collect()
    };
    if let Some(l) = &r.max_deletes {
        out.push(Rule {
            name: "max_deletes",
            level: l.value.level,
            check: Check::MaxDeletes(l.value.limit),
        });
    }
    if let Some(l) = &r.max_profiles {
        out.push(Rule {
            name: "max_profiles",
            level: l.value.level,
            check: Check::MaxProfiles(l.value.limit),
        });
    }
    if let Some(t) = &r.allowed_types {
        let list = types(&t.value, &mut problems, "allowed_types");
        out.push(Rule {
            name: "allowed_types",
            level: t.value.level,
            check: Check::AllowedTypes(list),
        });
    }
    if let Some(t) = &r.forbid_types {
        let list = types(&t.value, &mut problems, "forbid_types");
        out.push(Rule {
            name: "forbid_types",
            level: t.value.level,
            check: Check::ForbidTypes(list),
        });
    }
    if let Some(p) = &r.value_patterns {
        if p.value.patterns.is_empty() {
            problems.push(Diagnostic::new(
                at(p.referenced),
                "`value_patterns` has no patterns; give one per type (for example `patterns: {email: '@import\\.invalid$'}`)",
            ));
        }
        let mut list = Vec::new();
        for (kind, source) in &p.value.patterns {
            if let Some(re) = pattern(source, &mut problems) {
                list.push((kind.clone(), re));
            }
        }
        out.push(Rule {
            name: "value_patterns",
            level: p.value.level,
            check: Check::ValuePatterns(list),
        });
    }
    if let Some(l) = &r.require_canary_above {
        out.push(Rule {
            name: "require_canary_above",
            level: l.value.level,
            check: Check::RequireCanaryAbove(l.value.limit),
        });
    }
    if let Some(p) = &r.reason_pattern
        && let Some(re) = pattern(&p.value.pattern, &mut problems)
    {
        out.push(Rule {
            name: "reason_pattern",
            level: p.value.level,
            check: Check::ReasonPattern(re),
        });
    }
    if let Some(l) = &r.max_ttl {
        let limit = &l.value.limit;
        match humantime::parse_duration(&limit.value) {
            Ok(d) => out.push(Rule {
                name: "max_ttl",
                level: l.value.level,
                check: Check::MaxTtl(d),
            }),
            Err(e) => problems.push(Diagnostic::new(
                at(limit.referenced),
                format!(
                    "`max_ttl` limit `{}` is not a duration ({e}); write it like `7d` or `36h`",
                    limit.value.escape_debug()
                ),
            )),
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push(Diagnostic::new(
            at(rules.referenced),
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
