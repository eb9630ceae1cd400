//! `kill -9` in the middle of an apply, then the same apply again: every planned deletion is
//! done exactly once, nothing unplanned is touched, and the state file is intact.

use crate::harness::{Test, wait_bounded};
use crate::kills::integrity_ok;

/// Items in the big plans: enough that an apply paced by the emulator's latency takes a while.
pub const ITEMS: usize = 300;

/// [`crate::kills::fleet`] of `ITEMS` profiles, with the emulator flags that make each request
/// take ~20 ms (unless `extra_flags` set `--latency-ms`).
pub fn big_test(extra_flags: &[&str]) -> Test {
    let mut flags = Vec::new();
    if !extra_flags.contains(&"--latency-ms") {
        flags.extend(["--latency-ms", "20"]);
    }
    flags.extend_from_slice(extra_flags);
    crate::kills::fleet(ITEMS, &flags)
}

/// Starts `apply` on [`big_test`]'s plan with four requests in flight and returns the running
/// child once the journal shows some items done.
pub fn apply_under_way(test: &Test) -> std::process::Child {
    let apply = test
        .idprune([
            "apply",
            "big.state.db",
            "--yes",
            "--rate",
            "0",
            "--concurrency",
            "4",
        ])
        .spawn();
    test.wait_for_items("big.state.db", "some done items", |c| {
        c.get("done").copied().unwrap_or(0) >= 20
    });
    apply
}

#[test]
fn apply_killed_mid_run_resumes_to_exactly_the_plan() {
    let test = big_test(&[]);
    let planned = test.planned_deletes("big.state.db");
    assert_eq!(planned.len(), ITEMS);

    let mut apply = apply_under_way(&test);
    apply.kill().expect("SIGKILL the apply");
    // Reap it, so its pid is really gone and its lock counts as stale.
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&wait_bounded(&mut apply)),
        Some(libc::SIGKILL)
    );

    // Looking at the state file leaves it as the crash left it: the resumed apply below meets
    // the killed process's `-wal`, not a file the test repaired.
    let left = crash_leftovers(&test);
    assert!(
        left.1.is_some(),
        "the kill left a -wal beside the state file"
    );
    let states = test.item_states("big.state.db");
    let done = states.get("done").copied().unwrap_or(0);
    assert!(
        (done as usize) < ITEMS,
        "the apply finished before it was killed; the test proves nothing: {states:?}"
    );
    integrity_ok(&test);
    assert_eq!(
        crash_leftovers(&test),
        left,
        "inspecting the state file changed what the crash left"
    );

    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok()
        .stderr_has("stale lock");
    let states = test.item_states("big.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(ITEMS as u64),
        "{states:?}"
    );
    assert_eq!(states.len(), 1, "every item is done: {states:?}");

    let stats = test.emu().stats();
    // ⊆ and ⊇ the plan; the only requests sent twice are those the kill left in flight
    // (at most the four of `--concurrency 4`), counted over every arrival.
    assert_eq!(stats.deleted_set(), planned);
    assert!(
        stats.resent() <= 4,
        "{} delete requests were sent again; the kill left at most 4 in flight",
        stats.resent()
    );
    integrity_ok(&test);
    test.idprune(["verify", "big.state.db"]).run().ok();
}

/// The bytes of `big.state.db` and of its `-wal` (when there is one).
fn crash_leftovers(test: &Test) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(test.path("big.state.db")).expect("reading the state file"),
        std::fs::read(test.path("big.state.db-wal")).ok(),
    )
}

#[test]
fn replan_with_force_after_a_kill_starts_clean() {
    let test = big_test(&[]);
    let mut apply = apply_under_way(&test);
    apply.kill().expect("SIGKILL the apply");
    wait_bounded(&mut apply);
    // Straight after the kill (its WAL still beside the file), plan the same manifest again.
    test.idprune(["plan", "big.yaml", "--rate", "0"])
        .run()
        .code(1)
        .stderr_has("--force");
    test.idprune(["plan", "big.yaml", "--rate", "0", "--force"])
        .run()
        .ok();
    integrity_ok(&test);
    let states = test.item_states("big.state.db");
    // The killed client's requests die with its connections (the server drops them), so
    // what the emulator has deleted by now is what the new plan found gone.
    let done_before = test.emu().stats().deleted.len();
    assert_eq!(
        states.get("pending").copied(),
        Some((ITEMS - done_before) as u64),
        "the new plan holds exactly what is left: {states:?}"
    );
    assert_eq!(
        test.db("big.state.db")
            .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .expect("counting runs"),
        0,
        "a new plan starts a new journal"
    );
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    let stats = test.emu().stats();
    assert_eq!(stats.deleted.len(), ITEMS);
    stats.deleted_set();
}
