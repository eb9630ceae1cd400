//! The views of an apply: its progress line, the run's one-line summary and the JSON report,
//! all over the same [`Applied`] outcome.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apply::{Progress, Stop};
use crate::outcome::{Applied, RunRecord};
use crate::state::ItemState;
use crate::text::{per_second_text, plural, thousands};

/// The version of `apply --format json`'s object (minor: additive; major: breaking).
pub const APPLY_JSON_VERSION: &str = "1.0";

/// What the progress display shows beside the count while the executor runs.
pub fn apply_progress_text(p: &Progress) -> String {
    let rate = p.requests as f64 / p.elapsed.as_secs_f64().max(0.001);
    format!(
        "({} already absent, {} failed, {} requests)",
        thousands(p.settled.already_absent),
        thousands(p.settled.failed),
        per_second_text(rate)
    )
}

/// `This run: 3 deleted, 0 already absent, 0 failed; 3 requests (0 throttled) in 0.1s (…).`
pub fn run_summary_text(run: &RunRecord) -> String {
    let r = &run.report;
    format!(
        "This run: {} deleted, {} already absent, {} failed; {} ({} throttled) in {:.1}s ({}{}).",
        thousands(r.settled.done),
        thousands(r.settled.already_absent),
        thousands(r.settled.failed),
        plural(r.requests, "request", "requests"),
        thousands(r.throttled),
        r.elapsed.as_secs_f64(),
        per_second_text(r.rate()),
        super::latency_text(&run.figures)
    )
}

/// The final report as JSON: this run's figures (when it ran) and the plan's counts by state.
pub fn apply_json(applied: &Applied) -> Value {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let this_run = applied.run.as_ref().map(|run| {
        let r = &run.report;
        json!({
            "id": run.id,
            "outcome": run.outcome.as_str(),
            "deleted": r.settled.done,
            "already_absent": r.settled.already_absent,
            "failed": r.settled.failed,
            "requests": r.requests,
            "throttled": r.throttled,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "rate": r.rate(),
            "latency_p50_ms": ms(r.latency_p50),
            "latency_p99_ms": ms(r.latency_p99),
        })
    });
    let stop = match &applied.run {
        None => json!("nothing_to_apply"),
        Some(run) => match &run.report.stop {
            None => json!(null),
            Some(Stop::Interrupted) => json!("interrupted"),
            Some(Stop::Space(fault)) => json!(format!("space: {fault}")),
            Some(Stop::BudgetSpent(why)) => json!(format!("retry budget: {why}")),
        },
    };
    let by_state: serde_json::Map<String, Value> = [
        ItemState::Pending,
        ItemState::InFlight,
        ItemState::Done,
        ItemState::AlreadyAbsent,
        ItemState::Failed,
    ]
    .iter()
    .map(|s| (s.as_str().to_owned(), json!(applied.counts.state(*s))))
    .collect();
    json!({
        "format_version": APPLY_JSON_VERSION,
        "digest": applied.meta.digest,
        "space": applied.meta.space,
        "run": this_run,
        "stop": stop,
        "summary": {"by_state": by_state},
    })
}
