//! A wrong or revoked token, or deletes forbidden for the space, stop the command with exit 1
//! after very few requests (counted by the emulator), mark no item failed, and the same apply
//! with a good token resumes to completion.

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

/// The most delete requests a run may send before it sees its first 401/403 and stops: the
/// window opens by slow start (one request alone until the service says yes), so a wrong token
/// costs one request; two allows for a resumed in-flight item sent beside it.
const STOP_BOUND: u64 = 2;

#[test]
fn apply_with_a_wrong_token_stops_at_once_and_resumes_with_the_right_one() {
    let test = big_test(&[]);
    let planned = test.planned_deletes("big.state.db");
    let before = test.emu().stats().deletes;
    // The default pace (100/s, up to 256 in flight), as a user runs it.
    let out = test
        .idprune(["apply", "big.state.db", "--yes"])
        .token("not-the-token")
        .run()
        .code(1)
        .stderr_has("401");
    assert!(!out.stderr.contains("not-the-token"), "{}", out.stderr);
    let stats = test.emu().stats();
    assert!(stats.deleted.is_empty());
    let sent = stats.deletes - before;
    eprintln!("figures: wrong token: {sent} deletes sent of {ITEMS}");
    assert!(
        sent <= STOP_BOUND,
        "the run stops at the first 401: {sent} deletes sent of {ITEMS}"
    );
    let states = test.item_states("big.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(!states.contains_key("done"), "{states:?}");

    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deleted_set(), planned);
    let states = test.item_states("big.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(ITEMS as u64),
        "{states:?}"
    );
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
    let test = big_test(&["--not-activated"]);
    let before = test.emu().stats().deletes;
    test.idprune(["apply", "big.state.db", "--yes"])
        .run()
        .code(1)
        .stderr_has("403");
    let stats = test.emu().stats();
    assert!(stats.deleted.is_empty());
    let sent = stats.deletes - before;
    eprintln!("figures: forbidden: {sent} deletes sent of {ITEMS}");
    assert!(
        sent <= STOP_BOUND,
        "the run stops at the first 403: {sent} deletes sent of {ITEMS}"
    );
    let states = test.item_states("big.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(!states.contains_key("done"), "{states:?}");
}
