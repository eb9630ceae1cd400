//! Rendering for people and programs: the plan (per-profile identifier diffs and the summary
//! line), its progress, and the status view, as text or JSON, into any `impl Write`; the
//! markdown view for pull requests is [`crate::markdown`], built on these helpers. Two rules
//! hold everywhere:
//! - every value from outside (identifiers, lookups, Segment's messages) passes through
//!   [`clean`], so control characters and ANSI escapes never reach a terminal raw;
//! - with redaction on, identifier values (lookups and `user_id`s included) are replaced by
//!   [`REDACTED`] (markdown: a masked preview and a keyed fingerprint, [`crate::mask`]);
//!   types, counts, actions, notes and the digest stay visible.
//!
//! This file holds what the views share (the summary and progress lines, a profile's diff);
//! `plan.rs` draws the plan, `status.rs` the status, `guard.rs` the guard's findings, and the
//! JSON forms share one writer (`json.rs`). `docs/ARCHITECTURE.md` places the layer.

use std::collections::BTreeMap;

use similar::{Algorithm, DiffOp, capture_diff_slices};

use crate::model::Identifier;
use crate::plan::{Action, Profile};
use crate::state::{Counts, ItemState, Meta, State};
pub use crate::text::{REDACTED, Redaction, clean, thousands, timestamp};

mod apply;
mod guard;
mod init;
mod json;
mod plan;
mod policy;
mod status;
mod validate;
mod verify;
mod warning;

pub use apply::{APPLY_JSON_VERSION, apply_json, apply_progress_text, run_summary_text};
pub use guard::{guard_json, guard_text};
pub use init::init_text;
pub use plan::{SHORT_DIFF_LINES, SUMMARY_EXCEPTION_ROWS, TextOptions, plan_json, plan_text};
pub use policy::{override_line, policy_head, policy_refusal, policy_text, verdict_line};
pub use status::{StatusView, latency_text, status_json, status_text, verification_history_text};
pub use validate::{VALIDATE_JSON_VERSION, policy_valid_text, validate_json, validate_text};
pub use verify::{VERIFY_ROWS, verify_hints, verify_json, verify_text};
pub use warning::{redact_quoted, warning_text};

/// Output formats of `show` and `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a person at a terminal: shows values unless `--redact`.
    Text,
    /// For a pull-request comment or job summary: redacted unless `--reveal`.
    Markdown,
    /// For programs: redacted unless `--reveal`.
    Json,
}

/// A plan view: the sealed facts and counts in memory, the items streamed from the state file
/// as they are written out, so a plan of millions of items renders in bounded memory.
pub struct PlanView<'a> {
    /// Sealed facts.
    pub meta: Meta,
    /// Counts by action and state.
    pub counts: Counts,
    /// Plan warnings.
    pub warnings: Vec<String>,
    /// The sealed sampled check (`plan --refresh=false --sample N`), if any.
    pub sample: Option<crate::sample::Sample>,
    /// The sealed policy and its verdicts at plan time, if the plan was judged by one.
    pub policy: Option<crate::policy::Sealed>,
    /// The soft rules apply runs went past (`apply --override`), by run.
    pub overrides: Vec<crate::policy::Override>,
    /// The sealed "data as of" of the warehouse export the plan was made from, if any.
    pub data_as_of: Option<i64>,
    /// Where the items are read from.
    pub state: &'a State,
}

impl<'a> PlanView<'a> {
    /// Reads the view's facts from a state file.
    pub fn new(state: &'a State) -> anyhow::Result<Self> {
        Ok(Self {
            meta: state.meta()?,
            counts: state.counts()?,
            warnings: state.warnings()?,
            sample: state.sample()?,
            policy: state.sealed_policy()?,
            overrides: state.overrides()?,
            data_as_of: state.data_as_of()?,
            state,
        })
    }
}

/// The lines every view prints about a plan made from a warehouse export: its sealed "data
/// as of" (with how much older than the plan it is) and the sampled check with its upper
/// bound's note. Empty for a plan that has neither.
pub fn warehouse_lines(
    sample: Option<&crate::sample::Sample>,
    data_as_of: Option<i64>,
    created_at: i64,
) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(at) = data_as_of {
        let age = u64::try_from(created_at.saturating_sub(at)).unwrap_or(0);
        let age = humantime::format_duration(std::time::Duration::from_secs(age - age % 60));
        lines.push(format!(
            "Data as of {} (the warehouse export's newest sync; {age} before this plan).",
            timestamp(at)
        ));
    }
    if let Some(sample) = sample {
        lines.push(sample.line());
        lines.extend(sample.bound_note());
    }
    lines
}

/// The sampled check and the data-as-of time as JSON fields (`null` when absent), for the
/// plan and status objects.
pub(crate) fn warehouse_json(
    sample: Option<&crate::sample::Sample>,
    data_as_of: Option<i64>,
) -> [(String, serde_json::Value); 2] {
    use serde_json::{Value, json};
    [
        (
            "data_as_of".into(),
            data_as_of.map_or(Value::Null, |t| json!(timestamp(t))),
        ),
        (
            "sample".into(),
            sample.map_or(Value::Null, |s| {
                json!({
                    "asked": s.asked, "read": s.read, "rounds": s.rounds, "drifted": s.drifted,
                    "gone": s.gone, "rate_percent": s.rate_percent(),
                    "upper95_percent": s.upper_percent(),
                    "max_drift_percent": s.max_drift_percent, "judged": "observed",
                    "above": s.over(), "allowed": s.allowed,
                })
            }),
        ),
    ]
}

/// When a plan stops being appliable: its creation time plus its TTL (Unix seconds).
pub fn expires_at(meta: &Meta) -> i64 {
    meta.created_at
        .saturating_add(i64::try_from(meta.ttl_secs).unwrap_or(i64::MAX))
}

/// The summary sentence: `Plan: 1,204 to delete from 1,180 profiles, 14 already absent, ...`.
pub fn summary_line(counts: &Counts) -> String {
    let profiles = counts.delete_profiles;
    format!(
        "Plan: {} to delete from {} profile{}, {} already absent, {} blocked, {} unresolved.",
        thousands(counts.action(Action::Delete)),
        thousands(profiles),
        if profiles == 1 { "" } else { "s" },
        thousands(counts.action(Action::Absent)),
        thousands(counts.action(Action::Blocked)),
        thousands(counts.action(Action::Unresolved)),
    )
}

/// Segment's documented deletion limit of a space, requests a second: what an apply's
/// duration is estimated at (the per-profile limit is the same 100/s, so never the tighter).
pub const SPACE_LIMIT_PER_SECOND: u64 = 100;

/// What an apply of the plan will cost: one request per `delete` item (retries aside) and the
/// time those take at [`SPACE_LIMIT_PER_SECOND`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Delete requests apply will send: one per `delete` item.
    pub requests: u64,
    /// Whole seconds they take at the space limit, rounded up.
    pub seconds: u64,
}

impl Estimate {
    /// The estimate of the plan with `counts`: one request per `delete` item.
    pub fn of(counts: &Counts) -> Self {
        let requests = counts.action(Action::Delete);
        Self {
            requests,
            seconds: requests.div_ceil(SPACE_LIMIT_PER_SECOND),
        }
    }

    /// `Estimate: 470 delete requests, about 5s at the space limit of 100 requests/s.`
    pub fn line(&self) -> String {
        format!(
            "Estimate: {} delete request{}, about {} at the space limit of {SPACE_LIMIT_PER_SECOND} requests/s.",
            thousands(self.requests),
            if self.requests == 1 { "" } else { "s" },
            humantime::format_duration(std::time::Duration::from_secs(self.seconds))
        )
    }
}

/// The reminder of what Segment's deletion does not reach (Segment's support answer and its
/// docs), before the deletions: `plan` prints it once, and the markdown view of a plan not yet
/// applied ends with it.
pub const SCOPE_REMINDER: &[&str] = &[
    "Segment removes identifiers from Identity Resolution, Profile Storage and Profiles Sync only.",
    "Downstream destinations (Braze, Amplitude, Engage Audiences, Journeys, ...) and the Event Archive keep them: `idprune report STATE --downstream` lists what to clean there.",
    "Profiles Sync: add the `__operation` column to `external_id_mapping_updates` before applying; removed identifiers arrive as `REMOVED` rows.",
    "Replaying Event Archive data that references a removed identifier adds it back.",
];

/// The same reminder once the deletions are made: the first `apply` run that completes a plan
/// prints it (later runs do not repeat it), and the markdown view of an applied plan ends with it.
pub const SCOPE_AFTER_APPLY: &[&str] = &[
    "Segment removed these identifiers from Identity Resolution, Profile Storage and Profiles Sync only.",
    "Downstream destinations (Braze, Amplitude, Engage Audiences, Journeys, ...) and the Event Archive still hold them: `idprune report STATE --downstream` lists what to clean there.",
    "Profiles Sync: the removals arrive as `REMOVED` rows of `external_id_mapping_updates` (with its `__operation` column); `idprune report STATE --sql` checks that they did.",
    "Replaying Event Archive data that references a removed identifier adds it back: `idprune guard STATE --archive PATH` finds such events first.",
];

/// One line of a profile's diff.
pub(crate) struct DiffLine<'a> {
    /// `-` for a removal, ` ` for a kept identifier.
    pub sign: char,
    /// The identifier.
    pub ident: &'a Identifier,
    /// The item that removes it.
    pub seq: Option<u64>,
}

/// A profile's identifier set before → after, as diff lines (`-` for removals).
pub(crate) fn profile_diff<'a>(
    profile: &'a Profile,
    deleting: &BTreeMap<&'a Identifier, u64>,
) -> Vec<DiffLine<'a>> {
    let after: Vec<&Identifier> = profile
        .before
        .iter()
        .filter(|i| !deleting.contains_key(i))
        .collect();
    let before: Vec<&Identifier> = profile.before.iter().collect();
    let mut lines = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, &before, &after) {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                lines.extend(before[old_index..old_index + len].iter().map(|i| DiffLine {
                    sign: ' ',
                    ident: i,
                    seq: None,
                }))
            }
            DiffOp::Delete {
                old_index, old_len, ..
            }
            | DiffOp::Replace {
                old_index, old_len, ..
            } => lines.extend(
                before[old_index..old_index + old_len]
                    .iter()
                    .map(|i| DiffLine {
                        sign: '-',
                        ident: i,
                        seq: deleting.get(i).copied(),
                    }),
            ),
            DiffOp::Insert { .. } => {}
        }
    }
    lines
}

/// Progress counts: `done 3, already absent 1, failed 0, pending 6`.
pub fn progress_line(counts: &Counts) -> String {
    format!(
        "Progress: {} done, {} already absent, {} failed, {} pending, {} in flight.",
        thousands(counts.state(ItemState::Done)),
        thousands(counts.state(ItemState::AlreadyAbsent)),
        thousands(counts.state(ItemState::Failed)),
        thousands(counts.state(ItemState::Pending)),
        thousands(counts.state(ItemState::InFlight)),
    )
}

/// True once any item has left `pending`.
pub(crate) fn started(counts: &Counts) -> bool {
    [
        ItemState::Done,
        ItemState::AlreadyAbsent,
        ItemState::Failed,
        ItemState::InFlight,
    ]
    .iter()
    .any(|s| counts.state(*s) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(deletes: u64) -> Counts {
        Counts {
            by_action: [(Action::Delete, deletes), (Action::Blocked, 3)].into(),
            by_state: BTreeMap::new(),
            delete_profiles: deletes,
        }
    }

    #[test]
    fn the_estimate_is_one_request_per_delete_at_the_space_limit_rounded_up() {
        assert_eq!(
            Estimate::of(&counts(470)),
            Estimate {
                requests: 470,
                seconds: 5
            }
        );
        assert_eq!(
            Estimate::of(&counts(470)).line(),
            "Estimate: 470 delete requests, about 5s at the space limit of 100 requests/s."
        );
        assert_eq!(
            Estimate::of(&counts(1_000_000)).line(),
            "Estimate: 1,000,000 delete requests, about 2h 46m 40s at the space limit of 100 requests/s."
        );
        assert_eq!(
            Estimate::of(&counts(1)).line(),
            "Estimate: 1 delete request, about 1s at the space limit of 100 requests/s."
        );
        assert_eq!(Estimate::of(&counts(0)).seconds, 0);
    }
}
