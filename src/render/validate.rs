//! The views of `idprune validate`: the one-line verdict for people and the JSON object, both
//! drawn from the same [`Validated`].

use std::path::Path;

use serde_json::{Value, json};

use super::{clean, thousands};
use crate::manifest::Diagnostic;
use crate::outcome::{PolicyChecked, Valid, Validated};
use crate::policy::Policy;
use crate::text::plural;

/// The version of `validate --format json`'s object (minor: additive; major: breaking). 1.1
/// added `sources_not_fetched`: the URL sources (in a store) an offline validate did not read.
pub const VALIDATE_JSON_VERSION: &str = "1.1";

/// The lines `validate` says of the valid manifest at `manifest`: the verdict (its entries,
/// where they come from, the space), then the URL sources it left to `plan`, if any.
pub fn validate_text(manifest: &Path, valid: &Valid) -> Vec<String> {
    let mut lines = vec![format!(
        "`{}` is valid: {} ({} from {} with {}) for space {}.",
        manifest.display(),
        plural(valid.entries, "entry", "entries"),
        thousands(valid.entries - valid.inline_entries),
        plural(valid.sources_read, "CSV source", "CSV sources"),
        plural(valid.source_rows, "row", "rows"),
        clean(&valid.space),
    )];
    let unfetched = &valid.not_fetched;
    if !unfetched.is_empty() {
        lines.push(format!(
            "Not fetched: {} in a store ({}). `validate` works offline; `plan` fetches {}, checks {} sha256 pin before reading a row, and validates {} rows.",
            plural(unfetched.len() as u64, "CSV source", "CSV sources"),
            unfetched
                .iter()
                .map(|u| format!("`{}`", clean(u)))
                .collect::<Vec<_>>()
                .join(", "),
            if unfetched.len() == 1 { "it" } else { "them" },
            if unfetched.len() == 1 { "its" } else { "each one's" },
            if unfetched.len() == 1 { "its" } else { "their" },
        ));
    }
    lines
}

/// The line `validate` says of a valid policy: its path and its rules with their levels.
pub fn policy_valid_text(path: &Path, policy: &Policy) -> String {
    let rules: Vec<String> = policy
        .rules
        .iter()
        .map(|r| format!("{} ({})", r.name, r.level.as_str()))
        .collect();
    format!(
        "Policy `{}` is valid: {}: {}.",
        path.display(),
        plural(rules.len() as u64, "rule", "rules"),
        rules.join(", ")
    )
}

/// `validate --format json`: one object with every problem and warning, located, and the
/// policy (`null` when there is none, or when it is invalid: its problems join the list and
/// the object is not `valid`).
pub fn validate_json(validated: &Validated, policy: Option<&PolicyChecked>) -> Value {
    let diag = |d: &Diagnostic| {
        json!({
            "file": d.location.file.display().to_string(),
            "line": d.location.line,
            "column": d.location.column,
            "message": d.message,
        })
    };
    let manifest = validated.manifest.display().to_string();
    let mut body = match &validated.found {
        Ok(valid) => json!({
            "format_version": VALIDATE_JSON_VERSION,
            "manifest": manifest,
            "valid": true,
            "space": valid.space,
            "region": valid.region.as_str(),
            "entries": valid.entries,
            "sources": valid.sources,
            "source_rows": valid.source_rows,
            "sources_not_fetched": valid.not_fetched,
            "problems": [],
            "warnings": valid.warnings.iter().map(diag).collect::<Vec<_>>(),
        }),
        Err(problems) => json!({
            "format_version": VALIDATE_JSON_VERSION,
            "manifest": manifest,
            "valid": false,
            "problems": problems.iter().map(diag).collect::<Vec<_>>(),
            "warnings": [],
        }),
    };
    match policy.map(|p| (&p.path, &p.found)) {
        None => body["policy"] = Value::Null,
        Some((path, Ok(p))) => {
            body["policy"] = json!({
                "path": path.display().to_string(),
                "sha256": p.sha256,
                "rules": p.rules.iter().map(|r| json!({"rule": r.name, "level": r.level.as_str()})).collect::<Vec<_>>(),
            });
        }
        Some((_, Err(problems))) => {
            body["valid"] = json!(false);
            body["policy"] = Value::Null;
            if let Some(list) = body["problems"].as_array_mut() {
                list.extend(problems.iter().map(diag));
            }
        }
    }
    body
}
