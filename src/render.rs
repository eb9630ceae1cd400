//! Rendering for people and programs: the plan (per-profile identifier diffs and the summary
//! line), its progress, and the status view, as text or JSON, into any `impl Write`; the
//! markdown view for pull requests is [`crate::markdown`], built on these helpers. Two rules
//! hold everywhere:
//! - every value from outside (identifiers, lookups, Segment's messages) passes through
//!   [`clean`], so control characters and ANSI escapes never reach a terminal raw;
//! - with redaction on, identifier values (lookups and `user_id`s included) are replaced by
//!   [`REDACTED`] (markdown: a masked preview and a keyed fingerprint, [`crate::mask`]);
//!   types, counts, actions, notes and the digest stay visible.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use crate::model::Identifier;
use crate::plan::{Action, Profile};
use crate::state::{
    Counts, FORMAT_VERSION, ItemFilter, ItemState, Meta, Run, RunFigures, State, StoredItem,
    lock::Holder,
};
pub use crate::text::{REDACTED, Redaction, clean, thousands, timestamp};

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
            state,
        })
    }
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

/// The reminder of what Segment's deletion does not reach (Segment's support answer and its docs).
pub const SCOPE_REMINDER: &[&str] = &[
    "Segment removes identifiers from Identity Resolution, Profile Storage and Profiles Sync only.",
    "Downstream destinations (Braze, Amplitude, Engage Audiences, Journeys, ...) and the Event Archive keep them: `idprune report STATE --downstream` lists what to clean there.",
    "Profiles Sync: add the `__operation` column to `external_id_mapping_updates` before applying; removed identifiers arrive as `REMOVED` rows.",
    "Replaying Event Archive data that references a removed identifier adds it back.",
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
    if started(&view.counts) {
        writeln!(out, "{}", progress_line(&view.counts))?;
    }
    Ok(())
}

fn by_name<K: Copy>(
    keys: impl IntoIterator<Item = K>,
    name: impl Fn(K) -> &'static str,
    count: impl Fn(K) -> u64,
) -> Value {
    let map: serde_json::Map<String, Value> = keys
        .into_iter()
        .map(|k| (name(k).to_owned(), json!(count(k))))
        .collect();
    Value::Object(map)
}

/// The JSON `summary` object.
fn summary_json(counts: &Counts) -> Value {
    json!({
        "by_action": by_name(Action::ALL, Action::as_str, |a| counts.action(a)),
        "by_state": by_name(ItemState::ALL, ItemState::as_str, |s| counts.state(s)),
        "delete_profiles": counts.delete_profiles,
    })
}

fn item_json(s: &StoredItem, r: Redaction, masker: &crate::mask::Masker) -> Value {
    let value = |v: &str| {
        if r.0 {
            REDACTED.to_owned()
        } else {
            v.to_owned()
        }
    };
    let lookup = if r.0 {
        r.lookup(&s.item.lookup)
    } else {
        s.item.lookup.clone()
    };
    // Redacted items carry the keyed fingerprint of their identifier, the same as the
    // markdown view's (`~1a2b3c4d`), so views made with one key can be matched up.
    let fingerprint =
        r.0.then(|| masker.fingerprint(&s.item.identifier.kind, &s.item.identifier.id));
    json!({
        "seq": s.item.seq,
        "profile": lookup,
        "fingerprint": fingerprint,
        "user_id": s.item.user_id.as_deref().map(value),
        "identifier": {"type": s.item.identifier.kind, "id": value(&s.item.identifier.id)},
        "action": s.item.action.as_str(),
        "state": s.journal.state.as_str(),
        "attempts": s.attempts,
        "last_error": s.journal.last_error,
        "last_status": s.journal.last_status,
        "request_id": s.journal.request_id,
        "note": s.item.note,
        "origin": s.item.origin,
    })
}

fn head_json(meta: &Meta, counts: &Counts, r: Redaction) -> serde_json::Map<String, Value> {
    let v = json!({
        "format_version": format!("{FORMAT_VERSION}.0"),
        "digest": meta.digest,
        "space": meta.space,
        "region": meta.region,
        "api": meta.api_origin,
        "reason": meta.reason,
        "created_at": timestamp(meta.created_at),
        "expires_at": timestamp(expires_at(meta)),
        "redacted": r.0,
        "summary": summary_json(counts),
    });
    match v {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Writes one JSON object: the fields of `head`, then `items` streamed from `state` (one
/// compact object a line), then the fields of `tail`.
fn json_with_items(
    head: serde_json::Map<String, Value>,
    state: &State,
    r: Redaction,
    tail: serde_json::Map<String, Value>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "{{")?;
    for (key, value) in &head {
        writeln!(out, "  {}: {},", Value::String(key.clone()), value)?;
    }
    write!(out, "  \"items\": [")?;
    let masker = crate::mask::Masker::for_state(state, None)?;
    let mut first = true;
    state.for_each_item_in(ItemFilter::All, u64::MAX, |s| {
        write!(
            out,
            "{}\n    {}",
            if first { "" } else { "," },
            item_json(&s, r, &masker)
        )?;
        first = false;
        Ok(())
    })?;
    write!(out, "{}]", if first { "" } else { "\n  " })?;
    for (key, value) in &tail {
        write!(out, ",\n  {}: {}", Value::String(key.clone()), value)?;
    }
    writeln!(out, "\n}}")?;
    Ok(())
}

/// Writes the plan view as one JSON object.
pub fn plan_json(view: &PlanView<'_>, r: Redaction, out: &mut impl Write) -> anyhow::Result<()> {
    let head = head_json(&view.meta, &view.counts, r);
    let mut tail = serde_json::Map::new();
    tail.insert("warnings".into(), json!(view.warnings));
    json_with_items(head, view.state, r, tail, out)
}

/// Everything `status` shows.
pub struct StatusView<'a> {
    /// Sealed facts.
    pub meta: Meta,
    /// Counts.
    pub counts: Counts,
    /// The lock holder, if any.
    pub lock: Option<Holder>,
    /// Recent errors: `(seq, error)`.
    pub last_errors: Vec<(u64, String)>,
    /// Apply runs, oldest first.
    pub runs: Vec<Run>,
    /// Where the JSON view reads its items from.
    pub state: &'a State,
}

/// Writes the status as text.
pub fn status_text(view: &StatusView<'_>, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "space {} · digest {}",
        clean(&view.meta.space),
        view.meta.digest
    )?;
    writeln!(
        out,
        "API {} · Expires: {}",
        view.meta.api_origin,
        timestamp(expires_at(&view.meta))
    )?;
    writeln!(out, "{}", summary_line(&view.counts))?;
    writeln!(out, "{}", progress_line(&view.counts))?;
    let holder_alive = view.lock.as_ref().is_some_and(|h| !h.is_stale());
    match &view.lock {
        Some(h) if h.is_stale() => writeln!(
            out,
            "Locked by {h}, which no longer runs: the next apply takes the lock over (or run `idprune unlock STATE {}`).",
            h.lock_id
        )?,
        Some(h) => writeln!(out, "Locked by {h}.")?,
        None => writeln!(out, "Not locked.")?,
    }
    for run in &view.runs {
        let open = match (&run.outcome, holder_alive) {
            (Some(_), _) => None,
            (None, true) => Some("running"),
            (None, false) => Some("died (its record is closed by the next apply)"),
        };
        let after = run
            .totals_after
            .map(|[d, a, f]| {
                format!(
                    "; after it: {} done, {} already absent, {} failed",
                    thousands(d),
                    thousands(a),
                    thousands(f)
                )
            })
            .unwrap_or_default();
        if run.outcome.as_deref() == Some("died") || open.is_some() {
            writeln!(
                out,
                "Run {} by {} on {} at {}: {}, requests not recorded{after}.",
                run.id,
                clean(&run.user),
                clean(&run.host),
                timestamp(run.started_at),
                open.or(run.outcome.as_deref()).unwrap_or("died"),
            )?;
            continue;
        }
        writeln!(
            out,
            "Run {} by {} on {} at {}: {}, {} request{} ({} throttled), {:.1} requests/s{}{after}.",
            run.id,
            clean(&run.user),
            clean(&run.host),
            timestamp(run.started_at),
            run.outcome.as_deref().unwrap_or("running or died"),
            thousands(run.figures.requests),
            if run.figures.requests == 1 { "" } else { "s" },
            thousands(run.figures.throttled),
            run.figures.rate,
            latency_text(&run.figures)
        )?;
    }
    if !view.last_errors.is_empty() {
        writeln!(out, "Last errors:")?;
        for (seq, e) in &view.last_errors {
            writeln!(out, "  #{seq}: {}", clean(e))?;
        }
    }
    Ok(())
}

/// `, latency p50 51 ms, p99 80 ms` when measured.
pub fn latency_text(f: &RunFigures) -> String {
    match (f.latency_p50_ms, f.latency_p99_ms) {
        (Some(p50), Some(p99)) => format!(", latency p50 {p50:.0} ms, p99 {p99:.0} ms"),
        _ => String::new(),
    }
}

/// Writes the status as one JSON object (items redacted unless `r` says otherwise).
pub fn status_json(
    view: &StatusView<'_>,
    r: Redaction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut map = head_json(&view.meta, &view.counts, r);
    map.insert(
        "lock".into(),
        view.lock.as_ref().map_or(Value::Null, |h| {
            json!({"lock_id": h.lock_id, "pid": h.pid, "host": h.host, "user": h.user, "started_at": timestamp(h.started_at), "holder_dead": h.is_stale()})
        }),
    );
    map.insert(
        "runs".into(),
        view.runs
            .iter()
            .map(|run| {
                json!({"id": run.id, "started_at": timestamp(run.started_at),
                       "finished_at": run.finished_at.map(timestamp), "user": run.user, "host": run.host,
                       "outcome": run.outcome, "requests": run.figures.requests,
                       "throttled": run.figures.throttled, "rate": run.figures.rate,
                       "latency_p50_ms": run.figures.latency_p50_ms,
                       "latency_p99_ms": run.figures.latency_p99_ms})
            })
            .collect(),
    );
    map.insert(
        "last_errors".into(),
        view.last_errors
            .iter()
            .map(|(seq, e)| json!({"seq": seq, "error": e}))
            .collect(),
    );
    // The verification history (`verify`): counts and times only, no values.
    map.insert(
        "verifications".into(),
        view.state
            .verifications()?
            .iter()
            .map(|v| {
                json!({"id": v.id, "started_at": timestamp(v.started_at),
                       "finished_at": timestamp(v.finished_at), "polls": v.polls,
                       "checked": v.checked, "gone": v.gone, "still_present": v.still_present,
                       "reintroduced": v.reintroduced, "not_found": v.not_found,
                       "outcome": v.outcome()})
            })
            .collect(),
    );
    json_with_items(map, view.state, r, serde_json::Map::new(), out)
}
