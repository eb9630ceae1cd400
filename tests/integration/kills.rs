//! The crash proof, the way SQLite proves atomic commit: a 2,000-item apply is killed with
//! `SIGKILL` at ten points spread over the run (each time the journal shows another ~9 % done)
//! and resumed each time. After every kill the journal must be intact and honest (every `done`
//! item really deleted, at most one dispatch batch plus the window `in_flight`); at the end every
//! planned deletion is done, nothing unplanned is touched, and each kill cost at most the
//! in-flight window in repeated requests.
//!
//! The figures of the last run (kills, duplicate sends, items) are printed to stderr for
//! RELIABILITY.md (`cargo test kills -- --nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt as _;

use crate::harness::{Deleted, Test, seed, seed_profiles, wait_bounded, without};

/// Items in the kill test's plan.
pub const FLEET: usize = 2_000;
/// Requests in flight at most during the kill test (`--concurrency`): the bound on requests
/// a kill can leave unanswered, hence on the duplicate sends it can cause.
const CONCURRENCY: usize = 6;
/// Kill points, spread evenly over the run.
const KILLS: usize = 10;
/// Items one dispatch batch commits `in_flight` (`idprune::apply::DISPATCH_BATCH`).
const DISPATCH_BATCH: u64 = idprune::apply::DISPATCH_BATCH as u64;

/// A seed of `n` profiles `u_N`, each with a bad and a good email, a manifest `big.yaml`
/// removing the bad ones through a CSV source, and an emulator started with `flags` (no
/// space or profile limit unless `flags` set one). The plan is made at once into
/// `big.state.db`; plans that hit an injected fault are retried, as a person would.
pub fn fleet(n: usize, flags: &[&str]) -> Test {
    let profiles: Vec<(String, Vec<String>)> = (0..n)
        .map(|k| {
            (
                format!("use_{k}"),
                vec![
                    format!("user_id:u_{k}"),
                    format!("email:bad-{k}@import.invalid"),
                    format!("email:good-{k}@x.com"),
                ],
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<&str>)> = profiles
        .iter()
        .map(|(s, ids)| (s.as_str(), ids.iter().map(String::as_str).collect()))
        .collect();
    let slices: Vec<(&str, &[&str])> = refs.iter().map(|(s, ids)| (*s, ids.as_slice())).collect();
    let mut all_flags = Vec::new();
    if !flags.contains(&"--space-rate") {
        all_flags.extend(["--space-rate", "0"]);
    }
    if !flags.contains(&"--profile-rate") {
        all_flags.extend(["--profile-rate", "0"]);
    }
    all_flags.extend_from_slice(flags);
    let test = Test::with_emulator(&seed(&slices), &all_flags);
    let mut csv = String::from("user_id,email\n");
    for k in 0..n {
        writeln!(csv, "u_{k},bad-{k}@import.invalid").expect("writing to a String");
    }
    test.write("bad.csv", &csv);
    test.write(
        "big.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: fleet\nsources:\n  - csv: bad.csv\n    profile_column: user_id\n    remove_columns: [email]\n",
    );
    for _ in 0..6 {
        let out = test
            .idprune(["plan", "big.yaml", "--rate", "0", "--concurrency", "16"])
            // Injected hangs time out after a second instead of thirty.
            .env("IDPRUNE_REQUEST_TIMEOUT_MS", "1000")
            .run();
        if out.code == Some(0) {
            assert_eq!(test.planned_deletes("big.state.db").len(), n);
            return test;
        }
        out.code(1).stderr_has("try again later");
        assert!(!test.path("big.state.db").exists());
    }
    panic!("plan failed six times");
}

/// `PRAGMA integrity_check` of the test's `big.state.db` is `ok`.
#[track_caller]
pub fn integrity_ok(test: &Test) {
    let result: String = test
        .db("big.state.db")
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("running the integrity check");
    assert_eq!(result, "ok");
}

/// The `(user_id, type, id)` of every item the journal says is `done`.
pub fn journal_done(test: &Test) -> BTreeSet<Deleted> {
    test.items_where("big.state.db", "state = 'done'")
}

#[test]
fn ten_kills_over_a_2000_item_apply_lose_nothing_and_add_nothing() {
    let test = fleet(FLEET, &["--latency-ms", "15", "--latency-jitter", "50"]);
    let planned = test.planned_deletes("big.state.db");
    let seeded = seed_profiles(&seed_of(&test));
    let apply_args = [
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "0",
        "--concurrency",
        &CONCURRENCY.to_string(),
    ]
    .map(str::to_owned);

    // The delete attempts the emulator had answered when each run ended.
    let mut boundaries = vec![0usize];
    let mut killed_at = Vec::new();
    for k in 1..=KILLS {
        let threshold = (FLEET * k / (KILLS + 1)) as u64;
        let mut apply = test.idprune(&apply_args).spawn();
        test.wait_for_items("big.state.db", "the next kill point", |c| {
            c.get("done").copied().unwrap_or(0) >= threshold
        });
        apply.kill().expect("SIGKILL the apply");
        // Reaped, so its pid is gone and its lock counts as stale.
        assert_eq!(wait_bounded(&mut apply).signal(), Some(libc::SIGKILL));

        integrity_ok(&test);
        let states = test.item_states("big.state.db");
        let done = states.get("done").copied().unwrap_or(0);
        assert!(
            (done as usize) < FLEET,
            "kill {k}: the apply finished first; the kill proves nothing: {states:?}"
        );
        for state in states.keys() {
            assert!(
                ["pending", "in_flight", "done"].contains(&state.as_str()),
                "kill {k}: unexpected state {state} without faults: {states:?}"
            );
        }
        assert_eq!(states.values().sum::<u64>(), FLEET as u64, "{states:?}");
        let in_flight = states.get("in_flight").copied().unwrap_or(0);
        assert!(
            in_flight <= DISPATCH_BATCH + CONCURRENCY as u64,
            "kill {k}: {in_flight} items in flight, over one batch plus the window"
        );
        // The journal never claims a deletion the server did not apply.
        let applied = test.emu().stats().deleted_set();
        let claimed = journal_done(&test);
        assert!(
            claimed.is_subset(&applied),
            "kill {k}: the journal says done for {:?}, which the server never deleted",
            claimed.difference(&applied).take(5).collect::<Vec<_>>()
        );
        assert!(applied.is_subset(&planned), "kill {k}: an unplanned delete");
        killed_at.push(done);
        boundaries.push(test.emu().stats().delete_attempts.len());
    }

    test.idprune(&apply_args)
        .run()
        .ok()
        .stderr_has("stale lock");
    let states = test.item_states("big.state.db");
    assert_eq!(
        states,
        BTreeMap::from([("done".to_owned(), FLEET as u64)]),
        "every item is done"
    );
    integrity_ok(&test);

    let stats = test.emu().stats();
    // Exactly the plan: nothing lost, nothing unplanned (repeats are counted below, over
    // every request the emulator answered).
    assert_eq!(stats.deleted_set(), planned);
    assert_eq!(test.emu().profiles(), without(seeded, &planned));
    boundaries.push(stats.delete_attempts.len());

    // Each kill can leave at most the window of requests unanswered; those, and only those,
    // are sent again by the next run.
    let mut seen: BTreeSet<Deleted> = BTreeSet::new();
    let mut duplicates = Vec::new();
    for (run, window) in boundaries.windows(2).enumerate() {
        let mut repeated = 0usize;
        for attempt in &stats.delete_attempts[window[0]..window[1]] {
            if seen.insert(attempt.target()) {
                assert_eq!(attempt.status, 200, "a first send succeeds: {attempt:?}");
            } else {
                // A repeat of a delete the killed run had sent: applied once, then 404.
                repeated += 1;
                assert!(matches!(attempt.status, 200 | 404), "{attempt:?}");
            }
        }
        if run > 0 {
            assert!(
                repeated <= CONCURRENCY,
                "the run after kill {run} repeated {repeated} requests, over the window of {CONCURRENCY}"
            );
        }
        duplicates.push(repeated);
    }
    assert_eq!(duplicates[0], 0, "the first run repeated nothing");
    let repeated: usize = duplicates.iter().sum();
    assert_eq!(
        stats.delete_attempts.len(),
        FLEET + repeated,
        "every request is either a first send or a counted repeat"
    );
    eprintln!(
        "figures: kills={KILLS} items={FLEET} done-at-kill={killed_at:?} repeated-per-kill={:?} repeated-total={repeated} lost=0 unplanned=0",
        &duplicates[1..]
    );
    test.idprune([
        "verify",
        "big.state.db",
        "--rate",
        "0",
        "--concurrency",
        "16",
    ])
    .run()
    .ok();
}

/// The seed the test's emulator started from (the test directory's `seed.json`).
pub fn seed_of(test: &Test) -> serde_json::Value {
    let text = std::fs::read_to_string(test.path("seed.json")).expect("reading the seed");
    serde_json::from_str(&text).expect("seed JSON")
}
