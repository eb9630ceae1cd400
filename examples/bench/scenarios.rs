//! The runs the bench can make: one run from the flags, or a preset scenario.

use super::*;

pub fn single(bench: &Bench, args: &Args, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let run = Run {
        items: args.items,
        rate: args.rate,
        latency_ms: args.latency_ms,
        jitter: args.jitter,
        concurrency: args.concurrency,
        shape: if args.identifier_only {
            Shape::IdentifierOnly
        } else {
            Shape::ByProfile
        },
        apply: !args.plan_only,
        limiter: args.limiter,
        transit_jitter_ms: args.transit_jitter_ms,
        available: args.available_rate,
        refresh: !args.no_refresh,
    };
    heading("single run", &run, bench.repeat);
    let figures = bench.measure(&run)?;
    print_figures(&run, &figures);
    if !run.lifted() {
        judge_limited(&run, &figures, verdicts);
        judge_server_side(&run, &figures, &SERVER_TARGETS_LOW, verdicts);
        if !run.refresh {
            judge_refresh(&run, &figures, verdicts);
        }
    } else if run.apply {
        judge_lifted(&figures, verdicts);
    } else {
        judge_big(&run, &figures, verdicts);
    }
    if args.naive {
        let naive_items = args.naive_items.min(args.items);
        let naive = bench.naive(naive_items, args.latency_ms, args.jitter)?;
        judge_naive(&figures, naive, args.latency_ms, verdicts);
    }
    Ok(())
}

pub fn targets(bench: &Bench, args: &Args, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let limited = |latency_ms, jitter| Run::limited(5_000, latency_ms, jitter, args.concurrency);
    let a = limited(50, 0);
    heading("(a) at the limit, low latency", &a, bench.repeat);
    let figures = bench.measure(&a)?;
    print_figures(&a, &figures);
    judge_limited(&a, &figures, verdicts);

    let b = limited(1_000, 30);
    heading("(b) at the limit, high jittery latency", &b, bench.repeat);
    let figures = bench.measure(&b)?;
    print_figures(&b, &figures);
    judge_limited(&b, &figures, verdicts);

    let c = Run {
        items: 20_000,
        rate: 0,
        latency_ms: 0,
        jitter: 0,
        concurrency: args.concurrency,
        ..Run::limited(20_000, 0, 0, args.concurrency)
    };
    heading("(c) limit lifted", &c, bench.repeat);
    let figures = bench.measure(&c)?;
    print_figures(&c, &figures);
    judge_lifted(&figures, verdicts);

    if args.big {
        let d = Run {
            items: 1_000_000,
            rate: 0,
            latency_ms: 0,
            jitter: 0,
            concurrency: args.concurrency,
            shape: Shape::IdentifierOnly,
            apply: false,
            ..Run::limited(1_000_000, 0, 0, args.concurrency)
        };
        heading("(d) 1M plan items", &d, bench.repeat);
        let figures = bench.measure(&d)?;
        print_figures(&d, &figures);
        judge_big(&d, &figures, verdicts);
    } else {
        println!();
        println!("== (d) 1M plan items: skipped (pass --big) ==");
    }

    let e = Run {
        items: 2_000,
        ..limited(TARGET_SPEEDUP_LATENCY_MS, 0)
    };
    heading("(e) idprune vs the naive loop", &e, bench.repeat);
    let figures = bench.measure(&e)?;
    print_figures(&e, &figures);
    let naive = bench.naive(args.naive_items, TARGET_SPEEDUP_LATENCY_MS, 0)?;
    judge_naive(&figures, naive, TARGET_SPEEDUP_LATENCY_MS, verdicts);
    Ok(())
}

/// Issue 8's targets for one kind of case.
pub struct ServerTargets {
    /// The least accepted rate ÷ available limit, as the server saw it.
    pub rate_share: f64,
    /// The largest share of requests answered 429, per phase.
    pub max_429: f64,
    /// Seconds until the rate held within 5 % of the limit, when that is a target.
    pub settle_secs: Option<f64>,
}

/// At L = 50 ± 20 ms.
pub const SERVER_TARGETS_LOW: ServerTargets = ServerTargets {
    rate_share: 0.98,
    max_429: 0.005,
    settle_secs: None,
};
/// At L = 1 s ± 30 %.
pub const SERVER_TARGETS_HIGH: ServerTargets = ServerTargets {
    rate_share: 0.97,
    max_429: 0.005,
    settle_secs: None,
};
/// A shared space: 60/s available, client `--rate 100`.
pub const SERVER_TARGETS_SHARED: ServerTargets = ServerTargets {
    rate_share: 0.95,
    max_429: 0.02,
    settle_secs: Some(5.0),
};
/// The transit jitter of every limits case, ms.
pub const LIMITS_TRANSIT_JITTER_MS: u64 = 20;
/// Requests a wrong token or a space without the feature may cost.
pub const TARGET_STOP_REQUESTS: u64 = 2;
/// `--refresh=false`: (plan + apply wall) ÷ (deletes ÷ limit) at most.
pub const TARGET_REFRESH_FACTOR: f64 = 1.05;

/// Issue 8's scenario: each limiter at both latencies, the shared space, the stops, and a
/// `--refresh=false` clean-up.
pub fn limits(bench: &Bench, args: &Args, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let case = |items, latency_ms, jitter, limiter| Run {
        limiter,
        transit_jitter_ms: LIMITS_TRANSIT_JITTER_MS,
        ..Run::limited(items, latency_ms, jitter, args.concurrency)
    };
    for limiter in [
        LimiterKind::SlidingWindow,
        LimiterKind::FixedWindow,
        LimiterKind::TokenBucket,
    ] {
        // ±20 ms of 50 ms.
        let low = case(5_000, 50, 40, limiter);
        heading(&format!("{limiter:?}, low latency"), &low, bench.repeat);
        let figures = bench.measure(&low)?;
        print_figures(&low, &figures);
        judge_server_side(&low, &figures, &SERVER_TARGETS_LOW, verdicts);

        let high = case(3_000, 1_000, 30, limiter);
        heading(&format!("{limiter:?}, high latency"), &high, bench.repeat);
        let figures = bench.measure(&high)?;
        print_figures(&high, &figures);
        judge_server_side(&high, &figures, &SERVER_TARGETS_HIGH, verdicts);
    }

    let shared = Run {
        available: Some(60),
        ..case(3_000, 50, 40, LimiterKind::SlidingWindow)
    };
    heading("shared space", &shared, bench.repeat);
    let figures = bench.measure(&shared)?;
    print_figures(&shared, &figures);
    judge_server_side(&shared, &figures, &SERVER_TARGETS_SHARED, verdicts);

    heading("stops", &case(5_000, 50, 40, LimiterKind::SlidingWindow), 1);
    let (plan_requests, apply_deletes) = bench.stops(5_000)?;
    println!("wrong token: plan sent {plan_requests} requests for 5,000 lookups");
    println!("feature not activated: apply sent {apply_deletes} deletes for 5,000 items");
    verdicts.push(Verdict {
        target: format!(
            "wrong token, 5,000-item plan: {plan_requests} requests ≤ {TARGET_STOP_REQUESTS}"
        ),
        pass: plan_requests <= TARGET_STOP_REQUESTS,
    });
    verdicts.push(Verdict {
        target: format!(
            "403 not activated, 5,000-item apply: {apply_deletes} deletes ≤ {TARGET_STOP_REQUESTS}"
        ),
        pass: apply_deletes <= TARGET_STOP_REQUESTS,
    });

    let refresh = Run {
        refresh: false,
        ..case(5_000, 50, 40, LimiterKind::SlidingWindow)
    };
    heading("--refresh=false", &refresh, bench.repeat);
    let figures = bench.measure(&refresh)?;
    print_figures(&refresh, &figures);
    judge_refresh(&refresh, &figures, verdicts);
    Ok(())
}

/// `(plan + apply wall) ÷ (deletes ÷ limit)` against its target.
pub fn judge_refresh(run: &Run, f: &Figures, verdicts: &mut Vec<Verdict>) {
    let Some(apply) = &f.apply else { return };
    let ideal = f.planned_deletes as f64 / f64::from(run.limit());
    let factor = (f.plan.wall_secs + apply.wall_secs) / ideal;
    println!(
        "--refresh=false: plan {:.2} s + apply {:.2} s for {} deletes at {}/s: {factor:.3} × the limit's time",
        f.plan.wall_secs,
        apply.wall_secs,
        thousands(f.planned_deletes),
        run.limit()
    );
    verdicts.push(Verdict {
        target: format!(
            "--refresh=false: (plan + apply) ÷ (deletes ÷ limit) {factor:.3} ≤ {TARGET_REFRESH_FACTOR}"
        ),
        pass: factor <= TARGET_REFRESH_FACTOR,
    });
}

pub fn heading(title: &str, run: &Run, repeat: u32) {
    println!();
    if repeat > 1 {
        println!(
            "== {title}: {} (medians of {repeat} runs) ==",
            run.describe()
        );
    } else {
        println!("== {title}: {} ==", run.describe());
    }
}
