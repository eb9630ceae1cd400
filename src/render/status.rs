//! The status view of `idprune status`: sealed facts, progress, the lock, the apply runs and
//! recent errors, as text or JSON.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::json::{head_json, json_with_items};
use super::{clean, expires_at, progress_line, summary_line, thousands, timestamp};
use crate::state::verify::Verification;
use crate::state::{Counts, Meta, Run, RunFigures, State, lock::Holder};
use crate::text::Redaction;

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
    /// The sealed sampled check, if any.
    pub sample: Option<crate::sample::Sample>,
    /// The sealed "data as of" of the warehouse export, if any.
    pub data_as_of: Option<i64>,
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
    writeln!(out, "{}", super::Estimate::of(&view.counts).line())?;
    for line in super::warehouse_lines(view.sample.as_ref(), view.data_as_of, view.meta.created_at)
    {
        writeln!(out, "{line}")?;
    }
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
        writeln!(out, "{}", run_line(run, holder_alive))?;
    }
    // The soft policy rules runs went past (`apply --override RULE --why TEXT`).
    for o in view.state.overrides().map_err(io::Error::other)? {
        writeln!(out, "Policy {}", super::override_line(&o))?;
    }
    if !view.last_errors.is_empty() {
        writeln!(out, "Last errors:")?;
        for (seq, e) in &view.last_errors {
            writeln!(out, "  #{seq}: {}", clean(e))?;
        }
    }
    Ok(())
}

/// One apply run: who ran it, where and when, how it ended, its requests and rate (none for
/// a run still open or dead: its figures were never recorded), and the totals after it.
/// `holder_alive` tells a running run from a dead one.
fn run_line(run: &Run, holder_alive: bool) -> String {
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
    let who = format!(
        "Run {} by {} on {}{} at {}",
        run.id,
        clean(&run.user),
        clean(&run.host),
        run.context
            .as_ref()
            .map(|c| format!(" ({})", clean(&c.summary())))
            .unwrap_or_default(),
        timestamp(run.started_at)
    );
    if run.outcome.as_deref() == Some("died") || open.is_some() {
        return format!(
            "{who}: {}, requests not recorded{after}.",
            open.or(run.outcome.as_deref()).unwrap_or("died"),
        );
    }
    format!(
        "{who}: {}, {} request{} ({} throttled), {:.1} requests/s (estimated at {}/s){}{after}.",
        run.outcome.as_deref().unwrap_or("running or died"),
        thousands(run.figures.requests),
        if run.figures.requests == 1 { "" } else { "s" },
        thousands(run.figures.throttled),
        run.figures.rate,
        super::SPACE_LIMIT_PER_SECOND,
        latency_text(&run.figures)
    )
}

/// The last verifications `status` lists.
const VERIFICATIONS_SHOWN: usize = 10;

/// The verification history `status` appends to its text (the last ten of `all`, oldest
/// first); nothing when there is none.
pub fn verification_history_text(all: &[Verification], out: &mut impl Write) -> io::Result<()> {
    if all.is_empty() {
        return Ok(());
    }
    writeln!(out, "Verifications ({}):", all.len())?;
    for v in all
        .iter()
        .skip(all.len().saturating_sub(VERIFICATIONS_SHOWN))
    {
        writeln!(
            out,
            "  #{} {}: {} checked, {} gone, {} still present, {} re-introduced{} ({} reads, {})",
            v.id,
            timestamp(v.finished_at),
            thousands(v.checked),
            thousands(v.gone),
            thousands(v.still_present),
            thousands(v.reintroduced),
            if v.not_found > 0 {
                format!(", {} on profiles not found", thousands(v.not_found))
            } else {
                String::new()
            },
            v.polls,
            v.outcome()
        )?;
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
    for (key, value) in super::warehouse_json(view.sample.as_ref(), view.data_as_of) {
        if !value.is_null() {
            map.insert(key, value);
        }
    }
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
                       "context": run.context,
                       "outcome": run.outcome, "requests": run.figures.requests,
                       "throttled": run.figures.throttled, "rate": run.figures.rate,
                       "latency_p50_ms": run.figures.latency_p50_ms,
                       "latency_p99_ms": run.figures.latency_p99_ms})
            })
            .collect(),
    );
    map.insert(
        "policy_overrides".into(),
        view.state
            .overrides()?
            .iter()
            .map(super::plan::override_json)
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
