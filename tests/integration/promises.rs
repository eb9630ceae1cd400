//! Promises the docs make that no other test held: a space-level 404 stops the run; `unlock`
//! is refused while an idprune holds the lock; a state file of another schema version is
//! refused; a killed plan's scratch file is removed by the next plan; `format_version` is in
//! the JSON of `show` and `status`; an empty `IDPRUNE_API_URL` counts as unset; `purge`
//! replaces every value; reads and deletes share one pacer.

use crate::harness::{Test, busiest_window, seed_profiles, wait_bounded};
use crate::plan_apply::mixed_test;

#[test]
fn a_404_source_id_not_found_stops_the_run_with_nothing_failed() {
    let mut test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    // The same emulator, now serving another space: every delete of `spa_test` is answered
    // 404 `source_id_not_found`.
    let mut seed: serde_json::Value = serde_json::from_str(&test.read("seed.json")).expect("seed");
    seed["space"] = "spa_other".into();
    test.write("seed.json", &seed.to_string());
    test.restart_emulator(&[]);
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(1);
    assert!(out.stderr.contains("source_id_not_found"), "{}", out.stderr);
    let stats = test.emu().stats();
    assert!(
        stats.delete_attempts.len() <= 2,
        "slow start: the refusal costs at most 2 requests, not {}",
        stats.delete_attempts.len()
    );
    let states = test.item_states("m.state.db");
    assert!(!states.contains_key("failed"), "{states:?}");
    assert!(!states.contains_key("done"), "{states:?}");
}

#[test]
fn unlock_is_refused_while_an_idprune_holds_the_lock() {
    // Planned, then every request takes 2 s: the apply holds its lock for a while.
    let mut test = crate::kills::fleet(8, &[]);
    test.restart_emulator(&[
        "--space-rate",
        "0",
        "--profile-rate",
        "0",
        "--latency-ms",
        "2000",
    ]);
    let mut apply = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .spawn();
    test.wait_for_items("big.state.db", "a request in flight", |c| {
        c.get("in_flight").copied().unwrap_or(0) >= 1
    });
    let status = test
        .idprune(["status", "big.state.db", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("status JSON");
    let lock_id = json["lock"]["lock_id"].as_str().expect("a lock holder");
    let out = test
        .idprune(["unlock", "big.state.db", lock_id])
        .run()
        .code(4);
    assert!(out.stderr.contains("lock"), "{}", out.stderr);
    assert_eq!(
        wait_bounded(&mut apply).code(),
        Some(0),
        "the apply was not disturbed"
    );
}

#[test]
fn a_state_file_of_another_schema_version_is_refused_before_any_request() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let before = test.emu().stats().requests;
    for (version, says) in [(1, "schema version 1"), (2, "schema version 2")] {
        test.edit_db("m.state.db")
            .pragma_update(None, "user_version", version)
            .expect("setting the version");
        let out = test
            .idprune(["apply", "m.state.db", "--approve", &digest])
            .run();
        assert!(
            matches!(out.code, Some(1 | 4)),
            "version {version}: {:?}",
            out.code
        );
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
    assert_eq!(test.emu().stats().requests, before, "nothing was sent");
}

#[test]
fn a_killed_plans_scratch_file_is_removed_by_the_next_plan() {
    let test = Test::with_emulator(
        &crate::plan_apply::mixed_seed(),
        &["--latency-ms", "300", "--space-rate", "0"],
    );
    test.write("m.yaml", crate::plan_apply::MIXED_MANIFEST);
    test.write("bad.csv", crate::plan_apply::MIXED_CSV);
    let mut plan = test
        .idprune(["plan", "m.yaml", "--concurrency", "1", "--rate", "0"])
        .spawn();
    let scratch = || {
        std::fs::read_dir(test.path("."))
            .expect("listing")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("m.state.db.stage-"))
            .collect::<Vec<_>>()
    };
    let start = std::time::Instant::now();
    while scratch().is_empty() {
        assert!(
            start.elapsed() < crate::harness::PATIENCE,
            "no scratch file"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    plan.kill().expect("SIGKILL the plan");
    wait_bounded(&mut plan);
    assert!(!scratch().is_empty(), "kill -9 leaves the scratch file");
    let out = test.idprune(["plan", "m.yaml", "--rate", "0"]).run().ok();
    assert!(out.stderr.contains("scratch file"), "{}", out.stderr);
    assert_eq!(scratch(), Vec::<String>::new());
}

#[test]
fn show_and_status_json_carry_the_format_version() {
    let test = mixed_test();
    test.plan("m.yaml", "m.state.db");
    for command in ["show", "status"] {
        let out = test
            .idprune([command, "m.state.db", "--format", "json"])
            .run()
            .ok();
        let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(json["format_version"], "1.0", "{command}: {json}");
    }
}

#[test]
fn an_empty_api_url_counts_as_unset() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    // Unset, the base URL is the manifest region's (Segment's US host), not the emulator the
    // plan was made against: apply refuses the other origin before any request. An empty
    // value that counted as set would be an invalid URL instead.
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .env("IDPRUNE_API_URL", "")
        .run()
        .code(4);
    assert!(
        out.stderr.contains("https://profiles.segment.com"),
        "{}",
        out.stderr
    );
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn purge_replaces_every_value() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    test.idprune(["purge", "m.state.db"])
        .env("IDPRUNE_FINGERPRINT_KEY", "a-key-of-sixteen-bytes-or-more")
        .run()
        .ok();
    // Every value the seed holds (lookups, user_ids and identifiers) is gone from the file
    // and its side files, whichever way SQLite stored it.
    let mut bytes = std::fs::read(test.path("m.state.db")).expect("reading the state file");
    for side in ["m.state.db-wal", "m.state.db-journal"] {
        bytes.extend(std::fs::read(test.path(side)).unwrap_or_default());
    }
    let seed: serde_json::Value = serde_json::from_str(&test.read("seed.json")).expect("seed");
    let mut checked = 0;
    for ids in seed_profiles(&seed).values() {
        for id in ids {
            let value = id.split_once(':').map_or(id.as_str(), |(_, v)| v);
            if value.len() < 6 {
                continue; // too short to find by chance-free search
            }
            checked += 1;
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "`{value}` is still in the purged state file"
            );
        }
    }
    assert!(checked > 10, "the check looked at {checked} values only");
}

#[test]
fn reads_and_deletes_share_one_pacer() {
    // The canary reads each profile after its delete, then the fan-out deletes: counted
    // together in the emulator, no one-second window holds more than `--rate` + 2.
    let test = crate::kills::fleet(30, &["--space-rate", "1000"]);
    // The plan's own reads (made at once, unpaced) are not this apply's.
    let planned_reads = test.emu().arrivals().all().len();
    test.idprune([
        "apply",
        "big.state.db",
        "--yes",
        "--rate",
        "10",
        "--canary",
        "5",
    ])
    .run()
    .ok();
    let arrivals: Vec<u64> = test
        .emu()
        .arrivals()
        .all()
        .iter()
        .skip(planned_reads)
        .map(|(t, _)| *t)
        .collect();
    let stats = test.emu().stats();
    assert!(
        arrivals.len() as u64 > stats.deletes,
        "the canary's reads were counted too: {} arrivals, {} deletes",
        arrivals.len(),
        stats.deletes
    );
    let busiest = busiest_window(&arrivals, 1_000_000);
    assert!(
        busiest <= 12,
        "{busiest} requests (reads and deletes) in one second at --rate 10"
    );
}
