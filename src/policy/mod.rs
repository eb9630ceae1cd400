//! The team's own rules for a plan: `idprune.policy.yaml`, found by walking up from the
//! manifest's folder ([`find`]) or named with `--policy FILE`, read like a manifest (bounded
//! YAML, unknown keys refused with `file:line:col`, every problem reported together), and
//! [`evaluate`]d as a pure function of the plan's summary and its delete items.
//!
//! ```yaml
//! version: 1
//! rules:
//!   max_deletes:          {limit: 50000, level: hard}
//!   max_profiles:         {limit: 20000, level: soft}
//!   allowed_types:        {types: [email, anonymous_id], level: hard}
//!   forbid_types:         {types: [user_id], level: hard}
//!   value_patterns:       {patterns: {email: '@import\.invalid$'}, level: hard}
//!   require_canary_above: {limit: 1000, level: soft}
//!   reason_pattern:       {pattern: '[A-Z]+-[0-9]+', level: hard}
//!   max_ttl:              {limit: 7d, level: soft}
//! ```
//!
//! A `hard` rule that fails cannot be overridden; a `soft` one can, with a recorded reason.
//! Patterns are Rust `regex` syntax, searched anywhere in the value unless anchored.

mod raw;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::manifest::diagnostic::Diagnostic;

/// The file name [`find`] looks for.
pub const POLICY_FILE: &str = "idprune.policy.yaml";
/// Largest policy file accepted: a policy is a handful of rules.
pub const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// How binding a rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A failure refuses the apply, always.
    Hard,
    /// A failure refuses the apply unless overridden with a recorded reason.
    Soft,
}

impl Level {
    /// `hard` or `soft`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }
}

/// What a rule checks.
#[derive(Clone, Debug)]
pub enum Check {
    /// At most this many deletions.
    MaxDeletes(u64),
    /// At most this many profiles touched.
    MaxProfiles(u64),
    /// Deletions only of these types.
    AllowedTypes(Vec<String>),
    /// No deletion of these types.
    ForbidTypes(Vec<String>),
    /// Each deleted value of a type matches that type's pattern.
    ValuePatterns(Vec<(String, regex::Regex)>),
    /// More deletions than this need `apply --canary N`.
    RequireCanaryAbove(u64),
    /// The manifest's reason matches this pattern.
    ReasonPattern(regex::Regex),
    /// The plan's time-to-live is at most this.
    MaxTtl(Duration),
}

/// One rule of a policy.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Its key in the policy file (`max_deletes`, ...), the name `--override` takes.
    pub name: &'static str,
    /// How binding it is.
    pub level: Level,
    /// What it checks.
    pub check: Check,
}

/// A loaded, valid policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Where it was read from.
    pub path: PathBuf,
    /// The sha256 of its bytes (hex), sealed into the plan.
    pub sha256: String,
    /// Its text, sealed into the plan.
    pub text: String,
    /// Its rules, in the file's order.
    pub rules: Vec<Rule>,
}

/// The plan facts a policy judges.
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    /// Deletions the plan will send.
    pub deletes: u64,
    /// Profiles with at least one deletion.
    pub profiles: u64,
    /// The manifest's reason.
    pub reason: &'a str,
    /// The plan's time-to-live.
    pub ttl: Duration,
    /// The canary size `apply` runs with; `None` when judging a plan (not yet known).
    pub canary: Option<u64>,
}

/// A delete item as a policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct Deletion<'a> {
    /// The item's number in the plan.
    pub seq: u64,
    /// Identifier type.
    pub kind: &'a str,
    /// Identifier value.
    pub value: &'a str,
}

/// One rule's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Verdict {
    /// The rule's name.
    pub rule: String,
    /// Its level.
    pub level: Level,
    /// True when it holds.
    pub passed: bool,
    /// What was found, for people (no identifier values: items are named by seq).
    pub detail: String,
    /// For a failure: what to do next.
    pub next: Option<String>,
}

/// The `meta` key under which a plan seals its policy ([`Sealed`]).
pub const META_KEY: &str = "policy";

/// A policy as a plan seals it (inside the file seal; its sha256 is also in the digest): where
/// it was, its text, and the verdicts when the plan was made. `apply` re-judges the sealed
/// text, so a policy file moved away after the plan still binds the apply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Sealed {
    /// The policy file's path, relative to the state file's folder.
    pub path: String,
    /// The hex sha256 of its bytes.
    pub sha256: String,
    /// Its text.
    pub text: String,
    /// The verdicts at plan time, in the policy's order.
    pub verdicts: Vec<Verdict>,
}

impl Sealed {
    /// The sealed policy, parsed again; refuses text whose hash is not the sealed one.
    pub fn policy(&self, shown: &Path) -> anyhow::Result<Policy> {
        anyhow::ensure!(
            sha256_hex(self.text.as_bytes()) == self.sha256,
            "the policy sealed in the plan does not hash to its sha256 {}; the state file is damaged: plan again",
            self.sha256
        );
        Ok(parse(shown, self.text.as_bytes())?)
    }
}

/// A soft rule's override as `apply --override RULE --why TEXT` records it with its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The run that used it.
    pub run: i64,
    /// The rule.
    pub rule: String,
    /// What the rule found when it was overridden.
    pub detail: String,
    /// Why, in the words of whoever overrode it.
    pub why: String,
    /// Who (the local user name).
    pub user: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// Items a failing item rule names, at most.
const NAMED_ITEMS: usize = 5;

/// Walks up from the manifest's folder to the root for [`POLICY_FILE`].
pub fn find(manifest: &Path) -> Option<PathBuf> {
    let start = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_owned());
    start
        .ancestors()
        .map(|dir| dir.join(POLICY_FILE))
        .find(|p| p.is_file())
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy `{}`: {source}; check the path given to --policy", path.display())]
    Io {
        /// The policy path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The policy is invalid: every problem found, in file order.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let mut out: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let file = diags
        .first()
        .map(|d| d.location.file.display().to_string())
        .unwrap_or_default();
    out.push(format!(
        "{} problem{} in policy `{file}`; fix {} and plan again",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" },
        if diags.len() == 1 { "it" } else { "them" }
    ));
    out.join("\n")
}

/// Reads and validates the policy at `path`.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    use std::io::Read as _;
    let io = |source| PolicyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse(path, &bytes)
}

/// Validates a policy's bytes (read from `path`, or sealed in a plan and named by it).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Policy, PolicyError> {
    let rules = raw::parse(path, bytes).map_err(PolicyError::Invalid)?;
    Ok(Policy {
        path: path.to_owned(),
        sha256: sha256_hex(bytes),
        // Valid UTF-8 once parsed.
        text: String::from_utf8_lossy(bytes).into_owned(),
        rules,
    })
}

/// The hex sha256 of a policy's bytes: what a plan seals.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Judges a plan: one verdict per rule, in the policy's order. Pure: the same plan and
/// policy always give the same verdicts.
pub fn evaluate<'a>(
    policy: &Policy,
    summary: &Summary<'_>,
    deletions: impl IntoIterator<Item = Deletion<'a>>,
) -> Vec<Verdict> {
    let mut judge = Evaluator::new(policy);
    for d in deletions {
        judge.visit(&d);
    }
    judge.finish(summary)
}

/// [`evaluate`] one deletion at a time, for plans streamed from a state file: the item rules
/// see each deletion once, the plan-level rules judge the summary at the end.
pub struct Evaluator<'p> {
    policy: &'p Policy,
    offenders: Vec<Vec<u64>>,
    counts: Vec<u64>,
}

impl<'p> Evaluator<'p> {
    /// Starts judging a plan against `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Self {
            policy,
            offenders: vec![Vec::new(); policy.rules.len()],
            counts: vec![0; policy.rules.len()],
        }
    }

    /// Looks at one delete item.
    pub fn visit(&mut self, d: &Deletion<'_>) {
        for (i, rule) in self.policy.rules.iter().enumerate() {
            let offends = match &rule.check {
                Check::AllowedTypes(types) => !types.iter().any(|t| t == d.kind),
                Check::ForbidTypes(types) => types.iter().any(|t| t == d.kind),
                Check::ValuePatterns(patterns) => patterns
                    .iter()
                    .any(|(kind, re)| kind == d.kind && !re.is_match(d.value)),
                _ => false,
            };
            if offends {
                self.counts[i] += 1;
                if self.offenders[i].len() < NAMED_ITEMS {
                    self.offenders[i].push(d.seq);
                }
            }
        }
    }

    /// One verdict per rule, in the policy's order.
    pub fn finish(self, summary: &Summary<'_>) -> Vec<Verdict> {
        self.policy
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| judge(rule, summary, self.counts[i], &self.offenders[i]))
            .collect()
    }
}

fn judge(rule: &Rule, s: &Summary<'_>, count: u64, seqs: &[u64]) -> Verdict {
    let n = crate::text::thousands;
    let items = || offending_items(count, seqs);
    let (passed, detail, next) = match &rule.check {
        Check::MaxDeletes(limit) => (
            s.deletes <= *limit,
            format!("{} deletions, limit {}", n(s.deletes), n(*limit)),
            "split the manifest into plans of at most the limit",
        ),
        Check::MaxProfiles(limit) => (
            s.profiles <= *limit,
            format!("{} profiles, limit {}", n(s.profiles), n(*limit)),
            "split the manifest into plans touching at most the limit",
        ),
        Check::AllowedTypes(types) => (
            count == 0,
            if count == 0 {
                format!(
                    "every deletion is of an allowed type ({})",
                    types.join(", ")
                )
            } else {
                format!("{} of a type not in {}", items(), types.join(", "))
            },
            "remove those entries from the manifest, or change the policy in review",
        ),
        Check::ForbidTypes(types) => (
            count == 0,
            if count == 0 {
                format!("no deletion of {}", types.join(", "))
            } else {
                format!("{} of a forbidden type ({})", items(), types.join(", "))
            },
            "remove those entries from the manifest",
        ),
        Check::ValuePatterns(patterns) => {
            let kinds: Vec<&str> = patterns.iter().map(|(k, _)| k.as_str()).collect();
            (
                count == 0,
                if count == 0 {
                    format!("every {} value matches its pattern", kinds.join(", "))
                } else {
                    format!("{} whose value does not match its type's pattern", items())
                },
                "remove those entries from the manifest, or fix the pattern in review",
            )
        }
        Check::RequireCanaryAbove(limit) => canary_verdict(s, *limit),
        Check::ReasonPattern(re) => (
            re.is_match(s.reason),
            if re.is_match(s.reason) {
                format!("the reason matches `{}`", re.as_str())
            } else {
                format!("the reason does not match `{}`", re.as_str())
            },
            "put the ticket in the manifest's `reason` and plan again",
        ),
        Check::MaxTtl(limit) => (
            s.ttl <= *limit,
            format!(
                "ttl {}, limit {}",
                humantime::format_duration(s.ttl),
                humantime::format_duration(*limit)
            ),
            "plan again with a shorter --ttl",
        ),
    };
    Verdict {
        rule: rule.name.to_owned(),
        level: rule.level,
        passed,
        detail,
        next: (!passed).then(|| next.to_owned()),
    }
}

/// The offending deletions, `count` of them, named by the first `seqs`.
fn offending_items(count: u64, seqs: &[u64]) -> String {
    let named: Vec<String> = seqs.iter().map(|q| format!("#{q}")).collect();
    format!(
        "{} deletion{} ({}{})",
        crate::text::thousands(count),
        if count == 1 { "" } else { "s" },
        named.join(", "),
        if count > seqs.len() as u64 {
            ", ..."
        } else {
            ""
        }
    )
}

/// `require_canary_above`: passed, detail and next step. Above the limit, a plan judged
/// before apply (the canary not yet known) passes with the note that apply must run one;
/// apply's check fails when it runs none.
fn canary_verdict(s: &Summary<'_>, limit: u64) -> (bool, String, &'static str) {
    let n = crate::text::thousands;
    let needed = s.deletes > limit;
    match s.canary {
        _ if !needed => (
            true,
            format!(
                "{} deletions, a canary is needed above {}",
                n(s.deletes),
                n(limit)
            ),
            "",
        ),
        None => (
            true,
            format!(
                "{} deletions, above {}: apply must run with --canary N",
                n(s.deletes),
                n(limit)
            ),
            "",
        ),
        Some(c) => (
            c > 0,
            format!(
                "{} deletions, above {}: {}",
                n(s.deletes),
                n(limit),
                if c > 0 {
                    "apply runs a canary"
                } else {
                    "apply runs no canary"
                }
            ),
            "run apply with --canary N (for example --canary 10)",
        ),
    }
}

/// True when a verdict refuses the apply: a failed hard rule, or a failed soft one not in
/// `overridden`.
pub fn refuses(v: &Verdict, overridden: &[String]) -> bool {
    !v.passed && (v.level == Level::Hard || !overridden.contains(&v.rule))
}
