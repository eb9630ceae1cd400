//! The plan view as text (summary first, the exceptions grouped by reason, the per-profile
//! diffs when asked for) and as JSON.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::json::{head_json, json_with_items};
use super::{
    Estimate, PlanView, clean, expires_at, profile_diff, progress_line, started, summary_line,
    thousands, timestamp,
};
use crate::model::Identifier;
use crate::plan::Action;
use crate::state::{ItemFilter, StoredItem};
use crate::text::Redaction;

/// Per-profile diffs for the items to delete, in the order the manifest first names them,
/// at most `limit` profiles. With `origins` (the text view), each removal also names where the
/// manifest or CSV asked for it (`file:line`), and the columns line up within a profile.
fn diffs(
    view: &PlanView<'_>,
    r: Redaction,
    marker: &str,
    limit: u64,
    origins: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    view.state.for_each_profile_diff(limit, |profile, items| {
        let deleting: BTreeMap<&Identifier, u64> = items
            .iter()
            .map(|s| (&s.item.identifier, s.item.seq))
            .collect();
        let origin_of: BTreeMap<u64, &str> = items
            .iter()
            .map(|s| (s.item.seq, s.item.origin.as_str()))
            .collect();
        writeln!(out, "{marker}profile {}", r.lookup(&profile.lookup))?;
        let lines = profile_diff(profile, &deleting);
        let shown: Vec<String> = lines.iter().map(|l| r.ident(l.ident)).collect();
        let width = if origins {
            shown.iter().map(|s| s.chars().count()).max().unwrap_or(0)
        } else {
            0
        };
        for (line, ident) in lines.iter().zip(&shown) {
            match line.seq {
                Some(seq) if origins => {
                    let origin = origin_of
                        .get(&seq)
                        .map(|o| file_line(o))
                        .unwrap_or_default();
                    writeln!(out, "{}   {ident:<width$}   #{seq}  {origin}", line.sign)?;
                }
                Some(seq) => writeln!(out, "{}   {ident}   #{seq}", line.sign)?,
                None => writeln!(out, "{}   {ident}", line.sign)?,
            }
        }
        Ok(())
    })
}

/// `file:line` of an item's `file:line:column` origin, escaped for the terminal.
fn file_line(origin: &str) -> String {
    let cut = origin
        .rsplit_once(':')
        .filter(|(_, col)| col.bytes().all(|b| b.is_ascii_digit()))
        .map_or(origin, |(head, _)| head);
    clean(cut)
}

fn item_line(s: &StoredItem, r: Redaction) -> String {
    format!(
        "#{} {} via {}",
        s.item.seq,
        r.ident(&s.item.identifier),
        r.lookup(&s.item.lookup)
    )
}

/// What the text view prints besides the summary.
#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// Print every profile's diff (`show`, `plan --diff`, or a plan short enough).
    pub diffs: bool,
    /// Item lines printed at most per group of exceptions (`u64::MAX`: all).
    pub exception_rows: u64,
}

impl TextOptions {
    /// `show`: everything.
    pub const FULL: Self = Self {
        diffs: true,
        exception_rows: u64::MAX,
    };

    /// `plan`: the summary first; the diffs only when asked (`--diff`) or when they are
    /// short ([`SHORT_DIFF_LINES`]), and at most [`SUMMARY_EXCEPTION_ROWS`] items a group.
    pub fn summary(counts: &crate::state::Counts, diff: bool) -> Self {
        let lines = counts.action(crate::plan::Action::Delete) + 2 * counts.delete_profiles;
        Self {
            diffs: diff || lines <= SHORT_DIFF_LINES,
            exception_rows: if diff {
                u64::MAX
            } else {
                SUMMARY_EXCEPTION_ROWS
            },
        }
    }
}

/// About how many lines of diffs `plan` prints without `--diff`.
pub const SHORT_DIFF_LINES: u64 = 200;
/// Items `plan` lists per group of exceptions without `--diff`.
pub const SUMMARY_EXCEPTION_ROWS: u64 = 20;

/// Writes the plan view as text, summary first: the sealed facts, the summary, estimate,
/// sampled check, policy and progress, then the exceptions grouped by reason (each with its
/// next step), the warnings, and the per-profile diffs when `o` asks for them.
pub fn plan_text(
    view: &PlanView<'_>,
    r: Redaction,
    o: TextOptions,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    head_text(view, out)?;
    let cut = exceptions_text(view, r, o, out)?;
    notes_text(view, out)?;
    diffs_text(view, r, o, cut, out)
}

/// The sealed facts, the summary, the estimate, the warehouse lines (sampled check, data as
/// of), the policy and, once applied, the progress.
fn head_text(view: &PlanView<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    let m = &view.meta;
    writeln!(
        out,
        "idprune plan for space {} ({}), API {}",
        clean(&m.space),
        m.region,
        m.api_origin
    )?;
    writeln!(out, "Reason: {}", clean(&m.reason))?;
    writeln!(out, "Digest: {}", m.digest)?;
    writeln!(
        out,
        "Expires: {} (planned {})",
        timestamp(expires_at(m)),
        timestamp(m.created_at)
    )?;
    writeln!(out, "\n{}", summary_line(&view.counts))?;
    writeln!(out, "{}", Estimate::of(&view.counts).line())?;
    for line in super::warehouse_lines(view.sample.as_ref(), view.data_as_of, m.created_at) {
        writeln!(out, "{line}")?;
    }
    if let Some(policy) = &view.policy {
        write!(out, "{}", super::policy_text(policy, &view.overrides))?;
    }
    if started(&view.counts) {
        writeln!(out, "{}", progress_line(&view.counts))?;
    }
    Ok(())
}

/// The exceptions grouped by reason, each with its next step and at most `o.exception_rows`
/// of its items. How many items were left out.
fn exceptions_text(
    view: &PlanView<'_>,
    r: Redaction,
    o: TextOptions,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let groups = view
        .state
        .count_by_action_and_note(ItemFilter::Exceptions)?;
    let mut cut = 0u64;
    for action in [
        Action::Blocked,
        Action::Unresolved,
        Action::Absent,
        Action::Delete,
    ] {
        for (_, note, n) in groups.iter().filter(|(a, _, _)| *a == action) {
            let (reason, next) = crate::plan::split_note(note.as_deref().unwrap_or_default());
            let title = if action == Action::Delete {
                "to delete, worth a look"
            } else {
                action.as_str()
            };
            writeln!(out, "\n{} {title}: {}", thousands(*n), clean(reason))?;
            if let Some(next) = next {
                writeln!(out, "  next: {}", clean(next))?;
            }
            let mut shown = 0u64;
            view.state
                .for_each_item_in(exception_filter(action), u64::MAX, |s| {
                    if s.item.note != *note || shown >= o.exception_rows {
                        return Ok(());
                    }
                    shown += 1;
                    Ok(writeln!(
                        out,
                        "  {}  ({})",
                        item_line(&s, r),
                        file_line(&s.item.origin)
                    )?)
                })?;
            if shown < *n {
                cut += n - shown;
                writeln!(out, "  … and {} more", thousands(n - shown))?;
            }
        }
    }
    Ok(cut)
}

/// The deletions planned without a read of their profile, and the plan's warnings.
fn notes_text(view: &PlanView<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    let unverified = view.state.count_unverified()?;
    if unverified > 0 {
        writeln!(
            out,
            "\n{} {}",
            crate::text::plural(unverified, "deletion is", "deletions are"),
            crate::plan::UNVERIFIED_NOTE
        )?;
    }
    if !view.warnings.is_empty() {
        writeln!(out)?;
    }
    for w in &view.warnings {
        writeln!(out, "warning: {}", clean(w))?;
    }
    Ok(())
}

/// The per-profile diffs when `o` asks for them, else what was left out (`cut` exception
/// items among it) and where to see it.
fn diffs_text(
    view: &PlanView<'_>,
    r: Redaction,
    o: TextOptions,
    cut: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if o.diffs && view.counts.delete_profiles > 0 {
        writeln!(
            out,
            "\nChanges by profile (- removed, #item, where the manifest asks):"
        )?;
        diffs(view, r, "", u64::MAX, true, out)?;
    } else if view.counts.delete_profiles > 0 {
        writeln!(
            out,
            "\nThe per-profile diffs of {} are not printed here{}: add --diff, or run `idprune show STATE`.",
            crate::text::plural(view.counts.delete_profiles, "profile", "profiles"),
            if cut > 0 {
                format!(", nor {} of the exception items", thousands(cut))
            } else {
                String::new()
            }
        )?;
    } else if cut > 0 {
        writeln!(
            out,
            "\n{} exception items are not listed here: add --diff, or run `idprune show STATE`.",
            thousands(cut)
        )?;
    }
    Ok(())
}

/// The items of one exception action (the caller matches notes).
fn exception_filter(action: Action) -> ItemFilter {
    match action {
        Action::Delete => ItemFilter::Noted,
        Action::Absent => ItemFilter::Absent,
        Action::Blocked => ItemFilter::Blocked,
        Action::Unresolved => ItemFilter::Unresolved,
    }
}

/// Writes the plan view as one JSON object.
pub fn plan_json(view: &PlanView<'_>, r: Redaction, out: &mut impl Write) -> anyhow::Result<()> {
    let head = head_json(&view.meta, &view.counts, r);
    let mut tail = serde_json::Map::new();
    tail.insert("warnings".into(), json!(view.warnings));
    for (key, value) in super::warehouse_json(view.sample.as_ref(), view.data_as_of) {
        if !value.is_null() {
            tail.insert(key, value);
        }
    }
    tail.insert("policy".into(), policy_json(view));
    json_with_items(head, view.state, r, tail, out)
}

/// The JSON `policy` object: where the policy was, its sha256 (sealed in the digest), each
/// rule's verdict at plan time and the overrides apply runs recorded; `null` without one.
fn policy_json(view: &PlanView<'_>) -> serde_json::Value {
    match &view.policy {
        None => serde_json::Value::Null,
        Some(p) => json!({
            "path": p.path,
            "sha256": p.sha256,
            "verdicts": p.verdicts,
            "overrides": view.overrides.iter().map(override_json).collect::<Vec<_>>(),
        }),
    }
}

/// One recorded override as JSON, its time as the views' timestamps.
pub(super) fn override_json(o: &crate::policy::Override) -> serde_json::Value {
    json!({
        "run": o.run, "rule": o.rule, "detail": o.detail, "why": o.why, "user": o.user,
        "at": timestamp(o.at),
    })
}
