//! A wrong or revoked token stops the command with exit 1, marks no item failed, and the same
//! apply with a good token resumes to completion.

use crate::crash::{ITEMS, big_test};
use crate::harness::wait_bounded;
use crate::plan_apply::mixed_test;

#[test]
fn plan_with_a_wrong_token_exits_1_and_writes_nothing() {
    let test = mixed_test();
    let out = test
        .idprune(["plan", "m.yaml"])
        .token("not-the-token")
        .run()
        .code(1);
    assert!(
        out.stderr.contains("401") || out.stderr.to_lowercase().contains("token"),
        "{}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists(), "no state file");
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn apply_with_a_wrong_token_stops_at_once_and_resumes_with_the_right_one() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .token("not-the-token")
        .run()
        .code(1);
    assert!(!out.stderr.contains("not-the-token"), "{}", out.stderr);
    let stats = test.emu().stats();
    assert!(stats.deleted.is_empty());
    assert!(
        stats.deletes <= 32,
        "the run stops at the first 401, with at most one window in flight: {} deletes",
        stats.deletes
    );
    let states = test.item_states("m.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(!states.contains_key("done"), "{states:?}");

    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("m.state.db")
    );
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("done"), Some(&10), "{states:?}");
}

#[test]
fn token_revoked_mid_run_stops_and_the_new_token_resumes() {
    let test = big_test(&[]);
    let planned = test.planned_deletes("big.state.db");
    let mut apply = crate::crash::apply_under_way(&test);
    test.emu().set_token("rotated-token");
    let status = wait_bounded(&mut apply);
    assert_eq!(
        status.code(),
        Some(1),
        "a revoked token ends the run with 1"
    );

    let states = test.item_states("big.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    let done = states.get("done").copied().unwrap_or(0);
    assert!((done as usize) < ITEMS, "the run ended early: {states:?}");

    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .token("rotated-token")
        .run()
        .ok();
    let states = test.item_states("big.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(ITEMS as u64),
        "{states:?}"
    );
    assert_eq!(test.emu().stats().deleted_set(), planned);
}

#[test]
fn deletes_forbidden_for_the_space_stop_the_run_without_failing_items() {
    let seed = crate::plan_apply::mixed_seed();
    let test = crate::harness::Test::with_emulator(&seed, &["--not-activated"]);
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let digest = test.plan("m.yaml", "m.state.db");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(1)
        .stderr_has("403");
    let stats = test.emu().stats();
    assert!(stats.deleted.is_empty());
    assert!(stats.deletes <= 32, "{} deletes", stats.deletes);
    let states = test.item_states("m.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(!states.contains_key("done"), "{states:?}");
}
