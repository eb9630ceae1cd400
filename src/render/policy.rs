//! The team's policy in the views: one line per rule (✅ held, ❌ failed, with the next step),
//! the overrides recorded by `apply --override`, and the refusal `apply` prints. Rule details
//! quote the policy file (patterns), so they pass through [`clean`] like any outside text.

use std::fmt::Write as _;

use super::{clean, timestamp};
use crate::policy::{Level, Override, Sealed, Verdict};

/// `✅ max_deletes (hard): 470 deletions, limit 50,000` or, for a failure, the same with `❌`
/// and `; next: ...` (and for a soft rule, how to override it at apply).
pub fn verdict_line(v: &Verdict) -> String {
    let mut line = format!(
        "{} {} ({}): {}",
        if v.passed { "✅" } else { "❌" },
        v.rule,
        v.level.as_str(),
        clean(&v.detail)
    );
    if let Some(next) = &v.next {
        let _ = write!(line, "; next: {next}");
        if v.level == Level::Soft {
            let _ = write!(
                line,
                ", or override it at apply: --override {} --why \"...\"",
                v.rule
            );
        }
    }
    line
}

/// `overridden: reason_pattern in run 2 by alice at 2026-12-04 15:01:02 UTC: "why"`.
pub fn override_line(o: &Override) -> String {
    format!(
        "overridden: {} in run {} by {} at {}: \"{}\" (it found: {})",
        clean(&o.rule),
        o.run,
        clean(&o.user),
        timestamp(o.at),
        clean(&o.why),
        clean(&o.detail)
    )
}

/// `Policy idprune.policy.yaml (sha256 1a2b3c4d5e6f): 7 of 8 rules hold.`
pub fn policy_head(p: &Sealed) -> String {
    let failed = p.verdicts.iter().filter(|v| !v.passed).count();
    let rules = p.verdicts.len();
    format!(
        "Policy {} (sha256 {}): {}",
        clean(&p.path),
        &p.sha256[..p.sha256.len().min(12)],
        if failed == 0 {
            format!(
                "{} hold{}.",
                if rules == 1 {
                    "the rule".to_owned()
                } else {
                    format!("all {rules} rules")
                },
                if rules == 1 { "s" } else { "" }
            )
        } else {
            format!(
                "{failed} of {rules} rule{} failed.",
                if rules == 1 { "" } else { "s" }
            )
        }
    )
}

/// The policy section of the text views: the head line, a line per rule, then the overrides.
pub fn policy_text(p: &Sealed, overrides: &[Override]) -> String {
    let mut s = policy_head(p);
    s.push('\n');
    for v in &p.verdicts {
        let _ = writeln!(s, "  {}", verdict_line(v));
    }
    for o in overrides {
        let _ = writeln!(s, "  {}", override_line(o));
    }
    s
}

/// What `apply` says when the policy refuses it: every rule that refuses, with its next step.
pub fn policy_refusal(path: &str, refusing: &[&Verdict], overridden: &[String]) -> String {
    let mut s = format!(
        "policy `{}` refuses this apply (exit 4); nothing was sent:",
        clean(path)
    );
    for v in refusing {
        let _ = write!(s, "\n  {}", verdict_line(v));
        if v.level == Level::Hard && overridden.iter().any(|o| o == &v.rule) {
            let _ = write!(
                s,
                " (a hard rule cannot be overridden; change the plan, or the policy in review)"
            );
        }
    }
    s
}
