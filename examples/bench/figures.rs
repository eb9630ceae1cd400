//! What a run measured, how it is printed, and the verdicts against the targets.

use super::*;

/// The emulator's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub requests: u64,
    pub reads: u64,
    pub deletes: u64,
    pub rate_limited: u64,
}

impl Counters {
    pub fn since(self, before: Counters) -> Counters {
        Counters {
            requests: self.requests - before.requests,
            reads: self.reads - before.reads,
            deletes: self.deletes - before.deletes,
            rate_limited: self.rate_limited - before.rate_limited,
        }
    }
}

/// One phase (plan or apply) as measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phase {
    pub wall_secs: f64,
    pub cpu_secs: f64,
    /// CPU time of this process (the emulator, mostly) during the phase.
    pub emulator_cpu_secs: f64,
    /// Plan only: when the manifest was staged (the `Resolving` line), since the start.
    pub staged_secs: Option<f64>,
    /// Plan only: when the sealed state file was renamed into place (it appeared at its path).
    pub sealed_secs: Option<f64>,
    /// Plan only: when the plan's first byte was printed (after reopening and checking the
    /// file it sealed).
    pub printing_secs: Option<f64>,
    pub peak_rss_kib: u64,
    pub seen: Counters,
    /// The phase as the server's limiter saw it.
    pub server: ServerSide,
}

/// The arrival times the emulator's limiter judged (see `/__emulator/arrivals`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Arrivals {
    /// Accepted, µs since the emulator started.
    pub accepted_us: Vec<u64>,
    /// Refused (429), likewise.
    pub refused_us: Vec<u64>,
}

/// The length of the windows in which the rate must hold for [`ServerSide::settled_secs`].
pub const SETTLE_WINDOW_SECS: f64 = 3.0;
/// The share of the limit a window must reach to count as held.
pub const SETTLE_SHARE: f64 = 0.95;

/// A phase as the server saw it: accepted and refused requests, the span from the first to
/// the last accepted one, and when the rate started to hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSide {
    pub accepted: u64,
    pub refused: u64,
    pub span_secs: f64,
    /// Seconds from the first accepted request to the second: the first request's round trip
    /// while it went alone (slow start), when the phase had a limit.
    pub alone_secs: f64,
    /// Seconds from the first accepted request after which every [`SETTLE_WINDOW_SECS`]
    /// window (stepped by 0.1 s, up to the last accepted request) held at least
    /// [`SETTLE_SHARE`] × the limit; `None` without a limit or a long enough phase.
    pub settled_secs: Option<f64>,
}

impl ServerSide {
    /// The arrivals between two snapshots, judged against `limit` (0: none).
    pub fn between(before: &Arrivals, after: &Arrivals, limit: u32) -> ServerSide {
        let accepted = &after.accepted_us[before.accepted_us.len().min(after.accepted_us.len())..];
        let refused = after
            .refused_us
            .len()
            .saturating_sub(before.refused_us.len()) as u64;
        let (Some(&first), Some(&last)) = (accepted.first(), accepted.last()) else {
            return ServerSide {
                refused,
                ..ServerSide::default()
            };
        };
        let span_secs = (last - first) as f64 / 1e6;
        let alone_secs = accepted
            .get(1)
            .map_or(0.0, |&second| (second - first) as f64 / 1e6);
        let settled_secs = (limit > 0 && span_secs > SETTLE_WINDOW_SECS).then(|| {
            let need = SETTLE_SHARE * f64::from(limit) * SETTLE_WINDOW_SECS;
            let window_us = (SETTLE_WINDOW_SECS * 1e6) as u64;
            let mut settled = 0.0;
            let mut start = first;
            let (mut lo, mut hi) = (0usize, 0usize);
            while start + window_us <= last {
                while lo < accepted.len() && accepted[lo] < start {
                    lo += 1;
                }
                while hi < accepted.len() && accepted[hi] < start + window_us {
                    hi += 1;
                }
                if ((hi - lo) as f64) < need {
                    settled = (start - first) as f64 / 1e6 + 0.1;
                }
                start += 100_000;
            }
            settled
        });
        if std::env::var_os("BENCH_TIMELINE").is_some() {
            let refused_us =
                &after.refused_us[before.refused_us.len().min(after.refused_us.len())..];
            let secs = ((last - first) / 1_000_000 + 1) as usize;
            let mut per = vec![(0u32, 0u32); secs];
            for &a in accepted {
                per[((a - first) / 1_000_000) as usize].0 += 1;
            }
            for &r in refused_us {
                if r >= first && r <= last {
                    per[((r - first) / 1_000_000) as usize].1 += 1;
                }
            }
            let line: Vec<String> = per.iter().map(|(a, r)| format!("{a}/{r}")).collect();
            eprintln!("timeline (accepted/refused per second): {}", line.join(" "));
        }
        ServerSide {
            accepted: accepted.len() as u64,
            refused,
            span_secs,
            alone_secs,
            settled_secs,
        }
    }

    /// Accepted requests per second, first to last.
    pub fn rate(&self) -> f64 {
        if self.span_secs > 0.0 {
            (self.accepted.saturating_sub(1)) as f64 / self.span_secs
        } else {
            0.0
        }
    }

    /// Accepted requests per second from the second accepted one (the first sent after the
    /// service's first answer) to the last: the rate without slow start's lone round trip.
    pub fn rate_after_first_answer(&self) -> f64 {
        let span = self.span_secs - self.alone_secs;
        if span > 0.0 {
            (self.accepted.saturating_sub(2)) as f64 / span
        } else {
            0.0
        }
    }

    /// The share of the phase's requests answered 429 by the space limiter.
    pub fn refused_share(&self) -> f64 {
        share(self.refused, self.accepted + self.refused)
    }
}

/// Prints the server-side figures of a limited run and judges them against `targets`.
pub fn judge_server_side(
    run: &Run,
    f: &Figures,
    targets: &ServerTargets,
    verdicts: &mut Vec<Verdict>,
) {
    let limit = f64::from(run.limit());
    let label = format!(
        "{:?} L={} ms{}{}",
        run.limiter,
        run.latency_ms,
        jitter_label(run.jitter),
        run.available
            .map(|a| format!(" available {a}/s of --rate {}", run.rate))
            .unwrap_or_default()
    );
    let phases = [("plan", Some(f.plan)), ("apply", f.apply)];
    for (name, phase) in phases {
        let Some(p) = phase else { continue };
        let s = p.server;
        let share_of_limit = s.rate() / limit;
        println!(
            "{name} (server side): {share_of_limit:.3} of the limit ({:.1}/s over {:.1} s), 429 {:.2} %, held within 5 % after {}; \
             {:.3} after the first answer (the first request alone took {:.2} s)",
            s.rate(),
            s.span_secs,
            s.refused_share() * 100.0,
            seconds(s.settled_secs),
            s.rate_after_first_answer() / limit,
            s.alone_secs,
        );
        verdicts.push(Verdict {
            target: format!(
                "{label}: {name} rate {share_of_limit:.3} × limit ≥ {}",
                targets.rate_share
            ),
            pass: share_of_limit >= targets.rate_share,
        });
        verdicts.push(Verdict {
            target: format!(
                "{label}: {name} 429s {:.2} % ≤ {:.1} %",
                s.refused_share() * 100.0,
                targets.max_429 * 100.0
            ),
            pass: s.refused_share() <= targets.max_429,
        });
        if let Some(limit_secs) = targets.settle_secs {
            let settled = s.settled_secs.unwrap_or(f64::INFINITY);
            verdicts.push(Verdict {
                target: format!(
                    "{label}: {name} held within 5 % after {settled:.1} s ≤ {limit_secs:.0} s"
                ),
                pass: settled <= limit_secs,
            });
        }
    }
}

impl Phase {
    /// Requests the server accepted (not answered 429) per second of the child's wall time.
    pub fn accepted_per_sec(&self) -> f64 {
        (self.seen.requests - self.seen.rate_limited) as f64 / self.wall_secs
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub plan: Phase,
    pub apply: Option<Phase>,
    /// Items the plan marked `delete`.
    pub planned_deletes: u64,
    /// The last run's `rate` from `status`.
    pub reported_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl Figures {
    pub fn apply_items_per_sec(&self) -> Option<f64> {
        self.apply
            .map(|a| self.planned_deletes as f64 / a.wall_secs)
    }

    pub fn requests(&self) -> u64 {
        self.plan.seen.requests + self.apply.map_or(0, |a| a.seen.requests)
    }

    pub fn rate_limited(&self) -> u64 {
        self.plan.seen.rate_limited + self.apply.map_or(0, |a| a.seen.rate_limited)
    }
}

pub fn print_figures(run: &Run, f: &Figures) {
    let plan = &f.plan;
    if run.lifted() {
        println!(
            "plan: {} reads/s ({} reads in {:.2} s)",
            thousands(plan.accepted_per_sec().round() as u64),
            thousands(plan.seen.reads),
            plan.wall_secs
        );
    } else {
        let r = f64::from(run.rate);
        println!(
            "plan rate / limit: {:.3} ({:.1}/s of {}/s)",
            plan.accepted_per_sec() / r,
            plan.accepted_per_sec(),
            run.rate
        );
    }
    if let Some(apply) = &f.apply {
        if run.lifted() {
            println!(
                "lifted: {} deletions/s end to end ({} in {:.2} s)",
                thousands((f.planned_deletes as f64 / apply.wall_secs).round() as u64),
                thousands(f.planned_deletes),
                apply.wall_secs
            );
        } else {
            let r = f64::from(run.rate);
            println!(
                "apply rate / limit: {:.3} ({:.1}/s of {}/s)",
                apply.accepted_per_sec() / r,
                apply.accepted_per_sec(),
                run.rate
            );
        }
        println!(
            "apply items/s: {:.1} ({} deletions in {:.2} s)",
            f.planned_deletes as f64 / apply.wall_secs,
            thousands(f.planned_deletes),
            apply.wall_secs
        );
        match f.reported_rate {
            Some(rate) => println!("idprune's reported apply rate: {rate:.1} requests/s"),
            None => println!("idprune's reported apply rate: n/a"),
        }
    }
    let requests = f.requests();
    let limited = f.rate_limited();
    println!(
        "429s: {} of {} requests ({:.2} %){}",
        thousands(limited),
        thousands(requests),
        share(limited, requests) * 100.0,
        match &f.apply {
            Some(a) => format!(
                "; plan {}, apply {}",
                thousands(plan.seen.rate_limited),
                thousands(a.seen.rate_limited)
            ),
            None => String::new(),
        }
    );
    if f.apply.is_some() {
        match (f.latency_p50_ms, f.latency_p99_ms) {
            (Some(p50), Some(p99)) => println!("latency p50/p99: {p50:.0}/{p99:.0} ms"),
            _ => println!("latency p50/p99: n/a (idprune's status reports none)"),
        }
    }
    match &f.apply {
        Some(a) => println!(
            "peak RSS plan/apply: {:.0}/{:.0} MB",
            mb(plan.peak_rss_kib),
            mb(a.peak_rss_kib)
        ),
        None => println!("peak RSS plan: {:.0} MB", mb(plan.peak_rss_kib)),
    }
    let per_item = |secs: f64| secs * 1e6 / run.items.max(1) as f64;
    match &f.apply {
        Some(a) => println!(
            "idprune CPU plan/apply: {:.2}/{:.2} s ({:.0}/{:.0} µs per item)",
            plan.cpu_secs,
            a.cpu_secs,
            per_item(plan.cpu_secs),
            per_item(a.cpu_secs)
        ),
        None => println!(
            "idprune CPU plan: {:.2} s ({:.0} µs per item)",
            plan.cpu_secs,
            per_item(plan.cpu_secs)
        ),
    }
    match &f.apply {
        Some(a) => println!(
            "emulator CPU plan/apply: {:.2}/{:.2} s",
            plan.emulator_cpu_secs, a.emulator_cpu_secs
        ),
        None => println!("emulator CPU plan: {:.2} s", plan.emulator_cpu_secs),
    }
    println!(
        "plan timeline: manifest staged {}, state file in place {}, printing from {}, plan printed {:.2} s",
        seconds(plan.staged_secs),
        seconds(plan.sealed_secs),
        seconds(plan.printing_secs),
        plan.wall_secs
    );
}

pub fn judge_limited(run: &Run, f: &Figures, verdicts: &mut Vec<Verdict>) {
    let r = f64::from(run.rate);
    let label = format!("L={} ms{}", run.latency_ms, jitter_label(run.jitter));
    let plan_share = f.plan.accepted_per_sec() / r;
    verdicts.push(Verdict {
        target: format!("{label}: plan rate {plan_share:.3} × R ≥ {TARGET_RATE_SHARE}"),
        pass: plan_share >= TARGET_RATE_SHARE,
    });
    if let Some(apply) = &f.apply {
        let apply_share = apply.accepted_per_sec() / r;
        verdicts.push(Verdict {
            target: format!("{label}: apply rate {apply_share:.3} × R ≥ {TARGET_RATE_SHARE}"),
            pass: apply_share >= TARGET_RATE_SHARE,
        });
    }
    let limited = share(f.rate_limited(), f.requests());
    verdicts.push(Verdict {
        target: format!(
            "{label}: 429s {:.2} % of requests ≤ {:.0} %",
            limited * 100.0,
            TARGET_429_SHARE * 100.0
        ),
        pass: limited <= TARGET_429_SHARE,
    });
}

pub fn judge_lifted(f: &Figures, verdicts: &mut Vec<Verdict>) {
    if let Some(per_sec) = f.apply_items_per_sec() {
        verdicts.push(Verdict {
            target: format!(
                "lifted: {} deletions/s ≥ {}",
                thousands(per_sec.round() as u64),
                thousands(TARGET_LIFTED_PER_SEC as u64)
            ),
            pass: per_sec >= TARGET_LIFTED_PER_SEC,
        });
    }
}

pub fn judge_big(run: &Run, f: &Figures, verdicts: &mut Vec<Verdict>) {
    let label = format!("{} plan items", thousands(run.items));
    // The state file is written when it is renamed into place.
    let written = f.plan.sealed_secs.unwrap_or(f.plan.wall_secs);
    verdicts.push(Verdict {
        target: format!(
            "{label}: state written in {written:.1} s ≤ {TARGET_BIG_PLAN_SECS:.0} s (printing from {}, printed at {:.1} s)",
            seconds(f.plan.printing_secs),
            f.plan.wall_secs
        ),
        pass: written <= TARGET_BIG_PLAN_SECS,
    });
    let rss = mb(f.plan.peak_rss_kib);
    verdicts.push(Verdict {
        target: format!("{label}: peak RSS {rss:.0} MB ≤ {TARGET_BIG_RSS_MB:.0} MB"),
        pass: rss <= TARGET_BIG_RSS_MB,
    });
}

pub fn judge_naive(f: &Figures, naive: f64, latency_ms: u64, verdicts: &mut Vec<Verdict>) {
    let Some(ours) = f.apply_items_per_sec() else {
        return;
    };
    let speedup = ours / naive;
    println!("naive: {naive:.1} items/s; idprune: {ours:.1} items/s; speed-up {speedup:.1}x");
    if latency_ms != TARGET_SPEEDUP_LATENCY_MS {
        println!("(the speed-up target of issue 3 is set at L={TARGET_SPEEDUP_LATENCY_MS} ms)");
        return;
    }
    verdicts.push(Verdict {
        target: format!(
            "L={latency_ms} ms: speed-up over the naive loop {speedup:.1}x ≥ {TARGET_SPEEDUP:.0}x"
        ),
        pass: speedup >= TARGET_SPEEDUP,
    });
}

pub fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} s"))
}

pub fn jitter_label(jitter: u32) -> String {
    if jitter == 0 {
        String::new()
    } else {
        format!(" ±{jitter} %")
    }
}

pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The median of each figure over the repetitions (counters included, each on its own).
pub fn median_figures(all: &[Figures]) -> Figures {
    if all.len() == 1 {
        return all[0].clone();
    }
    let med = |get: &dyn Fn(&Figures) -> f64| {
        let mut v: Vec<f64> = all.iter().map(get).collect();
        median(&mut v)
    };
    let med_opt = |get: &dyn Fn(&Figures) -> Option<f64>| {
        let mut v: Vec<f64> = all.iter().filter_map(get).collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    let med_phase = |get: &dyn Fn(&Figures) -> Option<Phase>| -> Option<Phase> {
        let phases: Vec<Phase> = all.iter().filter_map(get).collect();
        if phases.is_empty() {
            return None;
        }
        let m = |g: &dyn Fn(&Phase) -> f64| {
            let mut v: Vec<f64> = phases.iter().map(g).collect();
            median(&mut v)
        };
        Some(Phase {
            wall_secs: m(&|p| p.wall_secs),
            cpu_secs: m(&|p| p.cpu_secs),
            emulator_cpu_secs: m(&|p| p.emulator_cpu_secs),
            staged_secs: phases[0]
                .staged_secs
                .map(|_| m(&|p| p.staged_secs.unwrap_or(f64::NAN))),
            sealed_secs: phases[0]
                .sealed_secs
                .map(|_| m(&|p| p.sealed_secs.unwrap_or(f64::NAN))),
            printing_secs: phases[0]
                .printing_secs
                .map(|_| m(&|p| p.printing_secs.unwrap_or(f64::NAN))),
            peak_rss_kib: m(&|p| p.peak_rss_kib as f64) as u64,
            server: ServerSide {
                accepted: m(&|p| p.server.accepted as f64) as u64,
                refused: m(&|p| p.server.refused as f64) as u64,
                span_secs: m(&|p| p.server.span_secs),
                alone_secs: m(&|p| p.server.alone_secs),
                settled_secs: phases[0]
                    .server
                    .settled_secs
                    .map(|_| m(&|p| p.server.settled_secs.unwrap_or(f64::NAN))),
            },
            seen: Counters {
                requests: m(&|p| p.seen.requests as f64) as u64,
                reads: m(&|p| p.seen.reads as f64) as u64,
                deletes: m(&|p| p.seen.deletes as f64) as u64,
                rate_limited: m(&|p| p.seen.rate_limited as f64) as u64,
            },
        })
    };
    Figures {
        plan: med_phase(&|f| Some(f.plan)).unwrap_or_default(),
        apply: med_phase(&|f| f.apply),
        planned_deletes: med(&|f| f.planned_deletes as f64) as u64,
        reported_rate: med_opt(&|f| f.reported_rate),
        latency_p50_ms: med_opt(&|f| f.latency_p50_ms),
        latency_p99_ms: med_opt(&|f| f.latency_p99_ms),
    }
}
