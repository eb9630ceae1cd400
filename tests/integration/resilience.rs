//! Interruptions, a second apply racing the first, and an unreliable API: the journal stays
//! consistent and the deletions end up exactly the planned ones.

use std::os::unix::process::ExitStatusExt as _;

use crate::crash::{ITEMS, big_test};
use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{Deleted, Test, wait_bounded, wait_for_text};

/// `PRAGMA integrity_check` of the test's `big.state.db` is `ok`.
fn integrity_ok(test: &Test) {
    crate::kills::integrity_ok(test);
}

fn slow_apply(test: &crate::harness::Test) -> std::process::Child {
    test.idprune([
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "0",
        "--concurrency",
        "4",
    ])
    .spawn()
}

#[test]
fn ctrl_c_finishes_in_flight_requests_exits_130_and_resumes() {
    let test = big_test(&[]);
    let planned = test.planned_deletes("big.state.db");
    let mut apply = slow_apply(&test);
    test.wait_for_items("big.state.db", "some done items", |c| {
        c.get("done").copied().unwrap_or(0) >= 20
    });
    let pid = libc::pid_t::try_from(apply.id()).expect("pid fits pid_t");
    // SAFETY: sending SIGINT to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_bounded(&mut apply);
    assert_eq!(status.code(), Some(130), "{status:?}");

    let states = test.item_states("big.state.db");
    assert!(
        !states.contains_key("in_flight"),
        "the requests in flight were let finish and committed: {states:?}"
    );
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(
        states.get("pending").copied().unwrap_or(0) > 0,
        "the run stopped early: {states:?}"
    );
    // The journal matches the server: every request the emulator answered was a delete it
    // applied and the journal records `done`, so no in-flight request was abandoned (reset to
    // `pending`, it would be sent again and end `already_absent`).
    let stats = test.emu().stats();
    let answered: BTreeSet<Deleted> = stats.delete_attempts.iter().map(|a| a.target()).collect();
    assert_eq!(
        answered.len(),
        stats.delete_attempts.len(),
        "sent once each"
    );
    assert_eq!(stats.deleted_set(), answered);
    assert_eq!(test.items_where("big.state.db", "state = 'done'"), answered);
    // The lock was released: the next apply takes it without a stale-lock warning.
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert!(!out.stderr.contains("stale"), "{}", out.stderr);
    let stats = test.emu().stats();
    assert_eq!(stats.deleted_set(), planned);
    assert_eq!(stats.delete_attempts.len(), ITEMS, "nothing was sent twice");
    assert_eq!(
        test.item_states("big.state.db"),
        BTreeMap::from([("done".to_owned(), ITEMS as u64)]),
        "nothing ended `already_absent`"
    );
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_leaves_a_consistent_journal() {
    const FEW: usize = 16;
    // Every request takes 900 ms, so the first Ctrl-C's wait for those in flight is long.
    let test = crate::kills::fleet(FEW, &["--latency-ms", "900"]);
    let log = test.path("apply.log");
    let mut apply = test
        .idprune([
            "apply",
            "big.state.db",
            "--yes",
            "--rate",
            "0",
            "--concurrency",
            "4",
        ])
        .spawn_logged(&log);
    test.wait_for_items("big.state.db", "requests in flight", |c| {
        c.get("in_flight").copied().unwrap_or(0) >= 1
    });
    let pid = libc::pid_t::try_from(apply.id()).expect("pid fits pid_t");
    // SAFETY: sending SIGINT to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    // It says it is letting the requests in flight finish (so the first signal was handled
    // and the second cannot merge with it); the second Ctrl-C ends that wait.
    wait_for_text(&log, "Interrupted");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_bounded(&mut apply);
    assert_eq!(status.code(), Some(130), "{status:?}");
    integrity_ok(&test);
    let states = test.item_states("big.state.db");
    // At once: the requests it was waiting for (900 ms each) are still unanswered in the
    // journal. Waiting for them would have settled them.
    assert!(
        states.get("in_flight").copied().unwrap_or(0) >= 1,
        "the second Ctrl-C waited for the requests in flight: {states:?}"
    );
    // Consistent: nothing the server has not applied is `done`; the rest is `in_flight` or
    // `pending` for the next run.
    let done = test.items_where("big.state.db", "state = 'done'");
    assert!(done.is_subset(&test.emu().stats().deleted_set()));
    assert_eq!(states.values().sum::<u64>(), FEW as u64, "{states:?}");
    assert!(!states.contains_key("failed"), "{states:?}");
    test.idprune([
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "0",
        "--concurrency",
        "16",
    ])
    .run()
    .ok();
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("big.state.db")
    );
}

#[test]
fn a_second_apply_is_refused_while_the_first_runs() {
    let test = big_test(&[]);
    let mut first = slow_apply(&test);
    test.wait_for_items("big.state.db", "the first apply to start", |c| {
        c.get("done").copied().unwrap_or(0) >= 1
    });
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(4);
    assert!(
        out.stderr.contains(&format!("pid {}", first.id())),
        "the refusal names the holder\n{}",
        out.stderr
    );
    // Re-planning over a state file being applied is refused too.
    test.idprune(["plan", "big.yaml", "--force", "--rate", "0"])
        .run()
        .code(4);
    let status = wait_bounded(&mut first);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(status.signal(), None);
    let states = test.item_states("big.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(ITEMS as u64),
        "{states:?}"
    );
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("big.state.db")
    );
}

#[test]
fn faults_and_lost_acknowledgements_end_in_exactly_the_plan() {
    let test = big_test(&[
        "--fail-rate",
        "0.1",
        "--lost-ack-rate",
        "0.1",
        "--malformed-rate",
        "0.05",
        "--random-seed",
        "7",
        "--latency-ms",
        "1",
    ]);
    let planned = test.planned_deletes("big.state.db");
    // Transient failures may survive one run (exit 3) or stop it (exit 1); plain re-runs
    // retry them. A bounded number of runs must finish the job.
    let mut runs = Vec::new();
    for _ in 0..5 {
        let out = test
            .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
            .run();
        let code = out.code;
        runs.push(format!("exit {code:?}\n{}", out.stderr));
        if code == Some(0) {
            break;
        }
        assert!(
            matches!(code, Some(1 | 3)),
            "unexpected exit\n{}",
            runs.join("\n")
        );
    }
    assert!(
        runs.last().is_some_and(|r| r.starts_with("exit Some(0)")),
        "five runs did not finish the plan:\n{}",
        runs.join("\n")
    );
    let states = test.item_states("big.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(ITEMS as u64),
        "a lost acknowledgement re-sent counts as done: {states:?}"
    );
    assert_eq!(test.emu().stats().deleted_set(), planned);
}

#[test]
fn a_readable_state_file_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let test = crate::plan_apply::mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let mode = std::fs::metadata(test.path("m.state.db"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "state files are created 0600");
    std::fs::set_permissions(
        test.path("m.state.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let requests = test.emu().stats().requests;
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("is readable by others") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    assert_eq!(test.emu().stats().requests, requests);
}

#[test]
fn a_space_limit_below_the_requested_rate_is_absorbed() {
    let seed = crate::plan_apply::mixed_seed();
    // 35 requests at 100/s against a space that allows 10/s (burst 10): 429s, then slower
    // pacing.
    let test = crate::harness::Test::with_emulator(&seed, &["--space-rate", "10"]);
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let digest = test.plan("m.yaml", "m.state.db");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("done"), Some(&10), "{states:?}");
    assert!(
        test.emu().stats().rate_limited > 0,
        "the limit was never hit"
    );
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("m.state.db")
    );
}

/// The names in the test directory that start with `prefix`.
fn files_starting_with(test: &crate::harness::Test, prefix: &str) -> Vec<String> {
    std::fs::read_dir(test.path(""))
        .expect("listing the test directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]

fn ctrl_c_during_plan_leaves_no_scratch_file() {
    let test = crate::harness::Test::with_emulator(
        &crate::plan_apply::mixed_seed(),
        &["--latency-ms", "200", "--space-rate", "0"],
    );
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let mut plan = test
        .idprune(["plan", "m.yaml", "--concurrency", "1", "--rate", "0"])
        .spawn();
    // The scratch file (`<state>.stage-<pid>`) exists while the plan resolves.
    let start = std::time::Instant::now();
    while files_starting_with(&test, "m.state.db.stage-").is_empty() {
        assert!(
            start.elapsed() < crate::harness::PATIENCE,
            "no scratch file"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = libc::pid_t::try_from(plan.id()).expect("pid fits pid_t");
    // SAFETY: sending SIGINT to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_bounded(&mut plan);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(
        files_starting_with(&test, "m.state.db"),
        Vec::<String>::new(),
        "an interrupted plan leaves nothing behind"
    );
}

#[test]
fn every_acknowledgement_lost_still_ends_done_not_already_absent() {
    let seed = crate::plan_apply::mixed_seed();
    // Each delete is applied but answered 500; the retry finds it gone (404 eid_not_found),
    // which after an earlier in-flight attempt means `done`.
    let test = crate::harness::Test::with_emulator(&seed, &["--lost-ack-rate", "1"]);
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let digest = test.plan("m.yaml", "m.state.db");
    let mut codes = Vec::new();
    for _ in 0..3 {
        let out = test
            .idprune(["apply", "m.state.db", "--approve", &digest])
            .run();
        codes.push(out.code);
        if out.code == Some(0) {
            break;
        }
    }
    assert_eq!(codes.last(), Some(&Some(0)), "{codes:?}");
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("done"), Some(&10), "{states:?}");
    assert_eq!(states.get("already_absent"), None, "{states:?}");
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("m.state.db")
    );
}
