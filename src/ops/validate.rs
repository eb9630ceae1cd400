//! `validate`: a manifest checked offline (syntax, schema, duplicates, the guard rails
//! knowable without the network) and the policy `plan` would judge it by, as outcomes both
//! of its views draw.

use std::path::Path;

use crate::manifest::{self, ManifestError};
use crate::outcome::{PolicyChecked, Valid, Validated};
use crate::policy::PolicyError;

/// Loads and checks the manifest at `path`. Its problems are part of the outcome; a failure
/// to read it at all (a missing or oversized file) is the error.
pub fn validate(path: &Path) -> Result<Validated, ManifestError> {
    let found = match manifest::load(path) {
        Ok(m) => {
            let inline = m.entries.iter().filter(|e| e.origin.file == m.path).count() as u64;
            Ok(Valid {
                space: m.space,
                region: m.region,
                entries: m.entries.len() as u64,
                inline_entries: inline,
                sources: m.sources.len() as u64,
                // A URL source is left to `plan`: validate works offline.
                sources_read: m.sources.iter().filter(|s| s.fetched).count() as u64,
                not_fetched: m
                    .sources
                    .iter()
                    .filter(|s| !s.fetched)
                    .map(|s| s.written.clone())
                    .collect(),
                source_rows: m.sources.iter().map(|s| s.rows).sum(),
                warnings: m.warnings,
            })
        }
        Err(ManifestError::Invalid(problems)) => Err(problems),
        Err(e) => return Err(e),
    };
    Ok(Validated {
        manifest: path.to_owned(),
        found,
    })
}

/// Loads and checks the policy `plan` would judge the manifest at `manifest` by (`explicit`,
/// else `idprune.policy.yaml` found walking up from its folder); `None` when there is none.
/// Its problems are part of the outcome; a failure to read it is the error.
pub fn policy(
    explicit: Option<&Path>,
    manifest: &Path,
) -> Result<Option<PolicyChecked>, PolicyError> {
    let Some(path) = super::plan::policy_path(explicit, manifest) else {
        return Ok(None);
    };
    let found = match crate::policy::load(&path) {
        Ok(policy) => Ok(policy),
        Err(PolicyError::Invalid(problems)) => Err(problems),
        Err(e) => return Err(e),
    };
    Ok(Some(PolicyChecked { path, found }))
}
