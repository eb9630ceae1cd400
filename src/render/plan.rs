//! The plan view as text (every profile's diff, the items not sent, the summary) and as JSON.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::json::{head_json, json_with_items};
use super::{
    Estimate, PlanView, clean, expires_at, profile_diff, progress_line, started, summary_line,
    timestamp,
};
use crate::model::Identifier;
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

/// Writes the items `filter` selects as text-view lines: `#seq` padded to `seq_width` so the actions line up, and
/// the item's `file:line` at the end.
fn item_lines_text(
    view: &PlanView<'_>,
    filter: ItemFilter,
    seq_width: usize,
    r: Redaction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    view.state.for_each_item_in(filter, u64::MAX, |s| {
        let seq = format!("#{}", s.item.seq);
        let rest = item_line(&s, r);
        let rest = rest.split_once(' ').map_or("", |(_, rest)| rest);
        Ok(writeln!(
            out,
            "  {seq:<seq_width$} {rest}  ({})",
            file_line(&s.item.origin)
        )?)
    })
}

fn item_line(s: &StoredItem, r: Redaction) -> String {
    let note = s
        .item
        .note
        .as_deref()
        .map(|n| format!(" — {n}"))
        .unwrap_or_default();
    format!(
        "#{} {:<10} {} via {}{note}",
        s.item.seq,
        s.item.action.as_str(),
        r.ident(&s.item.identifier),
        r.lookup(&s.item.lookup)
    )
}

/// Writes the plan view as text: every profile's diff and every item not sent.
pub fn plan_text(view: &PlanView<'_>, r: Redaction, out: &mut impl Write) -> anyhow::Result<()> {
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
    writeln!(out)?;
    diffs(view, r, "", u64::MAX, true, out)?;
    let seq_width = format!("#{}", view.state.count_items(ItemFilter::All)?).len();
    if view.state.count_items(ItemFilter::NotSent)? > 0 {
        writeln!(out, "\nNot sent:")?;
        item_lines_text(view, ItemFilter::NotSent, seq_width, r, out)?;
    }
    if view.state.count_items(ItemFilter::Noted)? > 0 {
        writeln!(out, "\nCheck these:")?;
        item_lines_text(view, ItemFilter::Noted, seq_width, r, out)?;
    }
    for w in &view.warnings {
        writeln!(out, "warning: {}", clean(w))?;
    }
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
