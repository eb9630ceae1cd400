//! Pacing, counted where Segment counts it: in the emulator, from the arrival time of every
//! request (`/__emulator/arrivals`; the emulator's space limit is set far above the traffic
//! so it records arrivals without refusing any). `--rate N` means no one-second window holds
//! more than `N` requests, for plan's reads and apply's deletes alike.

use crate::harness::busiest_window;
use crate::kills::fleet;

const RATE: usize = 50;
const ITEMS: usize = 100;
const SECOND_US: u64 = 1_000_000;
/// A space limit no test traffic reaches: the limiter only records arrivals.
const RECORD_ONLY: &str = "1000000";
/// How far over `--rate` a one-second window may go today: the pacer's burst
/// (`idprune::pace::BURST`). The target is 0 (`--rate` is a ceiling); the pacer rework of the
/// limiter branch is meant to reach it, and then this goes.
const SLACK_TODAY: usize = idprune::pace::BURST as usize;

#[test]
fn rate_holds_its_ceiling_in_every_one_second_window_for_reads_and_deletes() {
    // Only idprune's own pacing shapes the traffic.
    let test = fleet(ITEMS, &["--space-rate", RECORD_ONLY]);
    let rate = RATE.to_string();
    let start = test.emu().arrivals().accepted_us.len();
    test.idprune(["plan", "big.yaml", "-o", "paced.state.db", "--rate", &rate])
        .run()
        .ok();
    let mid = test.emu().arrivals().accepted_us.len();
    test.idprune(["apply", "big.state.db", "--yes", "--rate", &rate])
        .run()
        .ok();
    let arrivals = test.emu().arrivals();
    assert!(arrivals.refused_us.is_empty(), "the emulator only records");
    let reads = &arrivals.accepted_us[start..mid];
    let deletes = &arrivals.accepted_us[mid..];
    assert_eq!(reads.len(), ITEMS, "one read per lookup");
    assert_eq!(deletes.len(), ITEMS, "one delete per planned item");
    for (what, log) in [("plan's reads", reads), ("apply's deletes", deletes)] {
        let busiest = busiest_window(log, SECOND_US);
        eprintln!("figures: --rate {RATE} {what}: busiest 1 s window {busiest}");
        assert!(
            busiest <= RATE + SLACK_TODAY,
            "{what}: {busiest} requests in one second at --rate {RATE}"
        );
    }
}
