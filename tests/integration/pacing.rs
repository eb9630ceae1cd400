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
/// How far over `--rate` a one-second window may go: the pacer sends no burst (requests leave
/// evenly spaced at 0.99 × `--rate`), so only arrival jitter (requests released on schedule
/// reach the server unevenly on a loaded machine) can put one or two more in a window. A
/// client that ignored `--rate` would put all 100 requests in one window.
const SLACK: usize = 2;

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
            busiest <= RATE + SLACK,
            "{what}: {busiest} requests in one second at --rate {RATE}"
        );
    }
}

/// Identifiers to delete from one profile: more than two seconds' worth at the per-profile
/// limit, and ten pages of 25 identifiers to read.
const ON_ONE_PROFILE: usize = 250;
/// Segment's documented limit of deletes per second for a single profile, which idprune
/// applies itself (`idprune::apply::PROFILE_RATE`).
const PROFILE_RATE: usize = idprune::apply::PROFILE_RATE as usize;
/// How far over [`PROFILE_RATE`] a one-second window may go: the per-profile limiter spaces a
/// profile's deletes evenly (no burst), so only scheduling jitter adds a few. A client without
/// the limit sends all 250 at once.
const PROFILE_SLACK: usize = 3;

#[test]
fn one_big_profile_is_read_page_by_page_and_deleted_within_the_per_profile_limit() {
    let mut ids = vec!["user_id:u_big".to_owned()];
    ids.extend((0..ON_ONE_PROFILE).map(|k| format!("email:bad-{k}@x.com")));
    ids.push("email:keep@x.com".to_owned());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // No server-side profile limit and no --rate: only the client's own per-profile limit paces.
    let test = crate::harness::Test::with_emulator(
        &crate::harness::seed(&[("use_big", &refs)]),
        &["--space-rate", RECORD_ONLY, "--profile-rate", "0"],
    );
    let mut csv = String::from("user_id,email\n");
    for k in 0..ON_ONE_PROFILE {
        csv.push_str(&format!("u_big,bad-{k}@x.com\n"));
    }
    test.write("bad.csv", &csv);
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: one big profile\nsources:\n  - csv: bad.csv\n    profile_column: user_id\n    remove_columns: [email]\n",
    );
    let digest = test.plan("m.yaml", "m.state.db");
    // Every identifier is found although the profile's list spans seven pages: the cursor was
    // followed (an identifier on a later page would otherwise plan as `absent`).
    assert_eq!(test.planned_deletes("m.state.db").len(), ON_ONE_PROFILE);
    assert_eq!(
        test.items_where("m.state.db", "action <> 'delete'").len(),
        0
    );
    let reads = test.emu().arrivals().accepted_us.len();
    assert!(
        reads >= (ON_ONE_PROFILE + 2).div_ceil(25),
        "{reads} reads for {} identifiers: one per page",
        ON_ONE_PROFILE + 2
    );

    test.idprune(["apply", "m.state.db", "--approve", &digest, "--rate", "0"])
        .run()
        .ok();
    let arrivals = test.emu().arrivals();
    let deletes = &arrivals.accepted_us[reads..];
    assert_eq!(deletes.len(), ON_ONE_PROFILE);
    let busiest = busiest_window(deletes, SECOND_US);
    let span_ms = (deletes[deletes.len() - 1] - deletes[0]) / 1000;
    eprintln!(
        "figures: one profile, --rate 0: busiest 1 s window {busiest} deletes, {} deletes over {span_ms} ms",
        deletes.len()
    );
    assert!(
        busiest <= PROFILE_RATE + PROFILE_SLACK,
        "{busiest} deletes to one profile in one second; the limit is {PROFILE_RATE}/s"
    );
    assert_eq!(
        test.emu().profiles()["use_big"],
        ["email:keep@x.com", "user_id:u_big"]
            .map(String::from)
            .into()
    );
}
