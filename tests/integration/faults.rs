//! An unreliable API, injected by the emulator: 5xx answers, requests that hang past the
//! client's timeout, malformed bodies and lost acknowledgements (applied, then answered 500)
//! all at once; storms of 429s; a token revoked in the middle of a run. In every case the
//! deletions end up exactly the planned ones, and no item is lost or marked failed for a fault
//! that passes.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{Deleted, Test, seed_profiles, wait_bounded, without};
use crate::kills::{fleet, integrity_ok, journal_done, seed_of};

/// The client's request timeout in the fault tests (`IDPRUNE_REQUEST_TIMEOUT_MS`); hangs last
/// [`HANG_MS`], well past it.
const TIMEOUT_MS: &str = "300";
/// How long an injected hang lasts.
const HANG_MS: &str = "3000";

/// Runs plain `apply` until it exits 0, at most `max_runs` times, as a person or a CI retry
/// would (a run may stop on a spent retry budget, exit 1, or leave transient failures, exit 3).
/// Returns the exit codes.
fn apply_until_done(test: &Test, extra: &[&str], max_runs: usize) -> Vec<Option<i32>> {
    let mut codes = Vec::new();
    let mut log = String::new();
    for _ in 0..max_runs {
        let out = test
            .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
            .env("IDPRUNE_REQUEST_TIMEOUT_MS", TIMEOUT_MS)
            .arg("--concurrency")
            .arg("16")
            .run_with(extra);
        codes.push(out.code);
        log.push_str(&format!("--- exit {:?}\n{}\n", out.code, out.stderr));
        if out.code == Some(0) {
            return codes;
        }
        assert!(matches!(out.code, Some(1 | 3)), "unexpected exit\n{log}");
        integrity_ok(test);
    }
    panic!("{max_runs} runs did not finish the plan:\n{log}");
}

/// Extends [`crate::harness::Run`] with a slice of extra arguments.
trait RunWith {
    fn run_with(self, extra: &[&str]) -> crate::harness::Output;
}

impl RunWith for crate::harness::Run {
    fn run_with(self, extra: &[&str]) -> crate::harness::Output {
        extra.iter().fold(self, |run, a| run.arg(a)).run()
    }
}

#[test]
fn every_fault_at_once_still_ends_in_exactly_the_plan() {
    const ITEMS: usize = 400;
    let test = fleet(
        ITEMS,
        &[
            "--latency-ms",
            "2",
            "--fail-rate",
            "0.10",
            "--hang-rate",
            "0.05",
            "--hang-ms",
            HANG_MS,
            "--malformed-rate",
            "0.02",
            "--lost-ack-rate",
            "0.05",
            "--random-seed",
            "4242",
        ],
    );
    let planned = test.planned_deletes("big.state.db");
    let seeded = seed_profiles(&seed_of(&test));
    let faults_before = test.emu().stats().faults;

    let codes = apply_until_done(&test, &[], 8);

    let states = test.item_states("big.state.db");
    assert_eq!(
        states,
        BTreeMap::from([("done".to_owned(), ITEMS as u64)]),
        "100 % done, none failed, none `already_absent` (lost acknowledgements end done)"
    );
    integrity_ok(&test);
    let stats = test.emu().stats();
    assert_eq!(stats.deleted_set(), planned, "exactly the plan");
    assert_eq!(test.emu().profiles(), without(seeded, &planned));

    // The faults really happened: some deletes were applied while every answer the client got
    // for them was an error (lost acknowledgements), and the journal still says `done`.
    let answered_ok: BTreeSet<Deleted> = stats
        .delete_attempts
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.target())
        .collect();
    let never_acknowledged: Vec<&Deleted> = planned.difference(&answered_ok).collect();
    assert!(
        !never_acknowledged.is_empty(),
        "no delete lost its acknowledgement; the test proves nothing"
    );
    let done = journal_done(&test);
    assert!(never_acknowledged.iter().all(|d| done.contains(*d)));
    let faults = stats.faults - faults_before;
    let failed_answers = stats
        .delete_attempts
        .iter()
        .filter(|a| a.status >= 500)
        .count();
    assert!(faults >= 40, "only {faults} faults injected");
    assert!(failed_answers > 0);
    eprintln!(
        "figures: fault-mix items={ITEMS} faults-injected={faults} 5xx-answers={failed_answers} never-acknowledged={} runs={} exits={codes:?} lost=0 unplanned=0",
        never_acknowledged.len(),
        codes.len()
    );
}

#[test]
fn a_storm_of_429s_completes_in_one_run_with_no_item_failed() {
    const ITEMS: usize = 150;
    // The space allows 50 requests/s; the apply asks for ten times that, 64 at a time.
    let test = fleet(ITEMS, &["--space-rate", "50", "--latency-ms", "1"]);
    let planned = test.planned_deletes("big.state.db");
    let before = test.emu().stats().rate_limited;
    test.idprune([
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "500",
        "--concurrency",
        "64",
    ])
    .run()
    .ok();
    let stats = test.emu().stats();
    let throttled = stats.rate_limited - before;
    assert!(throttled >= 20, "only {throttled} 429s: no storm");
    let states = test.item_states("big.state.db");
    assert_eq!(
        states,
        BTreeMap::from([("done".to_owned(), ITEMS as u64)]),
        "{throttled} 429s failed no item"
    );
    assert_eq!(stats.deleted_set(), planned);
    eprintln!("figures: 429-storm items={ITEMS} throttled={throttled}");
}

#[test]
fn a_storm_of_429s_with_retry_after_is_honoured_and_completes() {
    const ITEMS: usize = 30;
    const RETRY_AFTER_US: u64 = 1_000_000;
    // Planned against a server without limits; applied against one allowing 10/s, which even
    // one request at a time on a loaded machine outruns, so 429s are certain.
    let mut test = fleet(ITEMS, &[]);
    let planned = test.planned_deletes("big.state.db");
    test.restart_emulator(&[
        "--space-rate",
        "10",
        "--profile-rate",
        "0",
        "--retry-after",
        "1",
        "--latency-ms",
        "1",
    ]);
    let before = test.emu().arrivals().all().len();
    // One request at a time, asking for far more than the space allows: after each 429 the
    // next request to the space is the retry, which must wait the `Retry-After` second.
    test.idprune([
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "1000",
        "--concurrency",
        "1",
    ])
    .run()
    .ok();
    let arrivals = test.emu().arrivals().all().split_off(before);
    let throttled: Vec<usize> = (0..arrivals.len()).filter(|&k| arrivals[k].1).collect();
    assert!(!throttled.is_empty(), "no 429 at all: no storm");
    for k in throttled {
        let Some(next) = arrivals.get(k + 1) else {
            panic!("the run ended with a 429 unanswered by a retry");
        };
        let gap = next.0 - arrivals[k].0;
        assert!(
            gap >= RETRY_AFTER_US,
            "a request {gap} µs after a 429 with `Retry-After: 1`"
        );
    }
    let stats = test.emu().stats();
    assert_eq!(
        test.item_states("big.state.db"),
        BTreeMap::from([("done".to_owned(), ITEMS as u64)])
    );
    assert_eq!(stats.deleted_set(), planned);
}

#[test]
fn a_token_revoked_mid_run_stops_within_the_window_and_fails_nothing() {
    const ITEMS: usize = 600;
    const CONCURRENCY: u64 = 12;
    let test = fleet(ITEMS, &["--latency-ms", "10"]);
    let planned = test.planned_deletes("big.state.db");
    let mut apply = test
        .idprune([
            "apply",
            "big.state.db",
            "--yes",
            "--rate",
            "0",
            "--concurrency",
            &CONCURRENCY.to_string(),
        ])
        .spawn();
    test.wait_for_items("big.state.db", "a third done", |c| {
        c.get("done").copied().unwrap_or(0) >= ITEMS as u64 / 3
    });
    test.emu().set_token("rotated-token");
    let status = wait_bounded(&mut apply);
    assert_eq!(
        status.code(),
        Some(1),
        "a revoked token ends the run with 1"
    );

    integrity_ok(&test);
    let states = test.item_states("big.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(
        states.get("pending").copied().unwrap_or(0) > 0,
        "stopped early: {states:?}"
    );
    let stats = test.emu().stats();
    // Requests refused at authentication are the deletes not in `delete_attempts` (every
    // request had its answer: the run waits for those in flight before it exits). None was
    // refused before the rotation.
    let refused = stats.deletes - stats.delete_attempts.len() as u64;
    assert!(
        (1..=CONCURRENCY).contains(&refused),
        "{refused} requests met the 401; at most the window of {CONCURRENCY} may"
    );
    assert!(journal_done(&test).is_subset(&stats.deleted_set()));
    // `status` tells what happened.
    let status = test.idprune(["status", "big.state.db"]).run().ok();
    assert!(status.stdout.contains("stopped"), "{}", status.stdout);

    // The old token keeps failing the same way, failing nothing.
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(1)
        .stderr_has("no item was marked failed");
    assert!(!test.item_states("big.state.db").contains_key("failed"));
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .token("rotated-token")
        .run()
        .ok();
    assert_eq!(
        test.item_states("big.state.db"),
        BTreeMap::from([("done".to_owned(), ITEMS as u64)])
    );
    assert_eq!(test.emu().stats().deleted_set(), planned);
}
