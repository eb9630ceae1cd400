//! Stop means stop: after SIGINT or SIGTERM no request *starts*. An apply at the space's limit
//! (100/s, the emulator's strict sliding window) is signalled mid-run; the emulator's count of
//! delete requests at the signal and at the exit differ by at most the requests that were on
//! the wire, where they used to differ by about two seconds' worth (~200: queued tasks kept
//! passing the pacer). Then the exit code (130 or 143), a consistent journal, and a resume that
//! ends in exactly the plan. SIGTERM stops `plan` and `verify` too.

use crate::harness::{Test, wait_bounded, wait_for_text};

/// Profiles of the apply under a signal: several seconds' worth at 100/s.
const ITEMS: usize = 600;
/// The most delete requests that may reach the emulator after the signal: those on the wire
/// (about rate × latency, 100/s × 20 ms = 2) and those whose slot the pacer granted in the
/// instant the signal took to arrive, with room for a loaded machine's scheduling.
const ON_THE_WIRE: usize = 10;

/// A fleet at the emulator's default space and profile limits, each request taking ~20 ms.
fn limited_fleet() -> Test {
    crate::kills::fleet(
        ITEMS,
        &[
            "--space-rate",
            "100",
            "--profile-rate",
            "100",
            "--latency-ms",
            "20",
        ],
    )
}

fn send(child: &std::process::Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: signalling our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Applies at 100/s, signals once ~100 items are done, and checks that no request started
/// after the signal; returns the exit code.
fn signalled_apply(signal: libc::c_int, expected_exit: i32) {
    let test = limited_fleet();
    let log = test.path("apply.log");
    let mut apply = test
        .idprune(["apply", "big.state.db", "--yes"])
        .spawn_logged(&log);
    test.wait_for_items("big.state.db", "a second of deletes", |c| {
        c.get("done").copied().unwrap_or(0) >= 100
    });
    send(&apply, signal);
    let at_signal = test.emu().stats().delete_attempts.len();
    let status = wait_bounded(&mut apply);
    let stats = test.emu().stats();
    let after = stats.delete_attempts.len() - at_signal;
    eprintln!("signal {signal}: {after} delete requests reached the server after it");
    assert_eq!(
        status.code(),
        Some(expected_exit),
        "{status:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        after <= ON_THE_WIRE,
        "{after} delete requests reached the server after the signal (at most {ON_THE_WIRE} were on the wire)"
    );
    wait_for_text(&log, "no new request starts");
    crate::kills::integrity_ok(&test);
    let states = test.item_states("big.state.db");
    assert!(
        states.get("pending").copied().unwrap_or(0) > 0,
        "the run stopped early: {states:?}"
    );
    assert!(!states.contains_key("failed"), "{states:?}");
    // Nothing the server did not apply is `done`.
    assert!(
        test.items_where("big.state.db", "state = 'done'")
            .is_subset(&stats.deleted_set())
    );
    // The same command resumes and ends in exactly the plan.
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert_eq!(
        test.emu().stats().deleted_set(),
        test.planned_deletes("big.state.db")
    );
}

#[test]
fn sigint_starts_no_request_after_the_signal_and_exits_130() {
    signalled_apply(libc::SIGINT, 130);
}

#[test]
fn sigterm_starts_no_request_after_the_signal_and_exits_143() {
    signalled_apply(libc::SIGTERM, 143);
}

#[test]
fn sigterm_stops_plan_and_verify_with_143() {
    // Reads take 300 ms, and deletes take ten minutes to show in reads.
    let test = Test::with_emulator(
        &crate::plan_apply::mixed_seed(),
        &[
            "--latency-ms",
            "300",
            "--space-rate",
            "0",
            "--propagation-ms",
            "600000",
        ],
    );
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let log = test.path("plan.log");
    let mut plan = test
        .idprune(["plan", "m.yaml", "--concurrency", "1", "--rate", "0"])
        .spawn_logged(&log);
    wait_for_text(&log, "Resolving");
    send(&plan, libc::SIGTERM);
    assert_eq!(wait_bounded(&mut plan).code(), Some(143));
    assert!(
        !test.path("m.state.db").exists(),
        "no state file was written"
    );

    // Planned and applied, then a verify that waits for the propagation, stopped by SIGTERM.
    test.idprune(["plan", "m.yaml", "--rate", "0"]).run().ok();
    let digest = test.digest("m.state.db");
    test.idprune(["apply", "m.state.db", "--approve", &digest, "--rate", "0"])
        .run()
        .ok();
    let log = test.path("verify.log");
    let mut verify = test
        .idprune(["verify", "m.state.db", "--wait", "10m", "--rate", "0"])
        .spawn_logged(&log);
    wait_for_text(&log, "reading again in");
    send(&verify, libc::SIGTERM);
    assert_eq!(wait_bounded(&mut verify).code(), Some(143));
    let status = test
        .idprune(["status", "m.state.db", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(
        json["verifications"].as_array().map(Vec::len),
        Some(0),
        "the stopped verification was not recorded"
    );
}

/// A fleet planned against a quick emulator, then served by one whose every answer takes
/// `latency_ms` (the plan's API origin stays the same).
fn slow_after_plan(items: usize, latency_ms: &str) -> Test {
    let mut test = crate::kills::fleet(items, &[]);
    test.restart_emulator(&[
        "--space-rate",
        "0",
        "--profile-rate",
        "0",
        "--latency-ms",
        latency_ms,
    ]);
    test
}

#[test]
fn requests_on_the_wire_get_the_grace_and_no_more() {
    // Answers take a minute: waiting for them would take a minute.
    let test = slow_after_plan(8, "60000");
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
    test.wait_for_items("big.state.db", "requests on the wire", |c| {
        c.get("in_flight").copied().unwrap_or(0) >= 1
    });
    let signalled = std::time::Instant::now();
    send(&apply, libc::SIGTERM);
    let status = wait_bounded(&mut apply);
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(143),
        "{status:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The requests on the wire got their grace (5 s), and then no more: not the minute their
    // answers would take (the bound leaves room for a loaded machine).
    assert!(
        took >= std::time::Duration::from_secs(4),
        "stopped after {took:?}, before the grace"
    );
    assert!(
        took < std::time::Duration::from_secs(30),
        "stopped after {took:?}: it waited for the answers"
    );
    crate::kills::integrity_ok(&test);
    let states = test.item_states("big.state.db");
    // Unanswered, so maybe landed: left `in_flight`, re-sent on resume; nothing `done`.
    assert!(
        states.get("in_flight").copied().unwrap_or(0) >= 1,
        "{states:?}"
    );
    assert!(!states.contains_key("done"), "{states:?}");
    assert_eq!(states.values().sum::<u64>(), 8, "{states:?}");
}

#[test]
fn a_signal_during_the_canary_stops_before_the_fan_out() {
    // Each answer takes 1.5 s, so the signal finds the canary's first delete on the wire.
    let test = slow_after_plan(8, "1500");
    let log = test.path("apply.log");
    let mut apply = test
        .idprune([
            "apply",
            "big.state.db",
            "--yes",
            "--rate",
            "0",
            "--canary",
            "3",
        ])
        .spawn_logged(&log);
    wait_for_text(&log, "Canary: sending the first 3");
    send(&apply, libc::SIGINT);
    let status = wait_bounded(&mut apply);
    assert_eq!(
        status.code(),
        Some(130),
        "{status:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    crate::kills::integrity_ok(&test);
    // No fan-out, and no second canary delete: at most the one on the wire reached the server.
    let stats = test.emu().stats();
    assert!(
        stats.delete_attempts.len() <= 1,
        "{} delete requests after a signal during the canary",
        stats.delete_attempts.len()
    );
    let states = test.item_states("big.state.db");
    assert!(
        states.get("pending").copied().unwrap_or(0) >= 7,
        "{states:?}"
    );
    assert!(!states.contains_key("failed"), "{states:?}");
}
