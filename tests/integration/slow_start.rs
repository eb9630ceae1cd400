//! Slow start: no fan-out before the service said yes. A wrong token or a space without the
//! feature costs at most two requests however big the plan, and with the rate
//! unlimited (the widest fan-out idprune would otherwise open at once).

use crate::harness::Test;

/// Items in the plan: far more than any window, so a fan-out before the first answer shows.
const ITEMS: usize = 2_000;

fn requests(test: &Test) -> u64 {
    test.emu().stats().requests
}

#[test]
fn a_wrong_token_costs_one_request_for_plan_and_apply() {
    let test = crate::kills::fleet(ITEMS, &["--latency-ms", "20"]);
    let before = requests(&test);
    let out = test
        .idprune(["plan", "big.yaml", "-o", "other.state.db", "--rate", "0"])
        .token("not-the-token")
        .run()
        .code(1);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    let sent = requests(&test) - before;
    assert!(sent <= 2, "plan sent {sent} requests with a wrong token");

    let before = requests(&test);
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .token("not-the-token")
        .run()
        .code(1);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    let sent = requests(&test) - before;
    assert!(sent <= 2, "apply sent {sent} requests with a wrong token");
    let states = test.item_states("big.state.db");
    assert_eq!(states.get("pending"), Some(&(ITEMS as u64)), "{states:?}");
}

#[test]
fn a_space_without_the_feature_costs_one_delete() {
    let test = crate::kills::fleet(ITEMS, &["--latency-ms", "20", "--not-activated"]);
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(1);
    assert!(out.stderr.contains("403"), "{}", out.stderr);
    let deletes = test.emu().stats().deletes;
    assert!(
        deletes <= 2,
        "apply sent {deletes} deletes to a space without the feature"
    );
    let states = test.item_states("big.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
}
