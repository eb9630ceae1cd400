//! `apply --reapply` after a space rebuild deletes again, as a new recorded run under the same
//! seal and approval rules; `apply --canary N` stops before the fan-out when a delete did not
//! do what the API said, the profile changed beyond it, or Segment refused the space.

use crate::harness::{Test, seed, seed_profiles, without};

const MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "integration test: re-runs"
remove:
  - profile: user_id:u_1
    identifier: email:wrong1@x.com
  - profile: user_id:u_2
    identifier: anonymous_id:anon-2
  - profile: user_id:u_3
    identifier: email:wrong3@x.com
"#;

fn the_seed() -> serde_json::Value {
    seed(&[
        (
            "use_1",
            &["user_id:u_1", "email:wrong1@x.com", "email:keep1@x.com"],
        ),
        ("use_2", &["user_id:u_2", "anonymous_id:anon-2"]),
        ("use_3", &["user_id:u_3", "email:wrong3@x.com"]),
    ])
}

#[test]
fn reapply_after_a_rebuild_deletes_again_as_a_new_run() {
    let test = Test::new(&the_seed());
    test.write("m.yaml", MANIFEST);
    let digest = test.plan("m.yaml", "m.state.db");
    // Not finished yet: --reapply refuses and sends nothing.
    test.idprune(["apply", "m.state.db", "--yes", "--reapply"])
        .run()
        .code(1)
        .stderr_has("still unsent or in flight");
    assert_eq!(test.emu().stats().deletes, 0);
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    let planned = test.planned_deletes("m.state.db");
    assert_eq!(test.emu().stats().deleted.len(), 3);

    // The space is rebuilt from its sources: the identifiers are back.
    assert_eq!(test.emu().rebuild(None), 3);
    assert_eq!(test.emu().profiles(), seed_profiles(&the_seed()));
    // The approval rules hold: another digest is refused (exit 4), nothing sent.
    test.idprune([
        "apply",
        "m.state.db",
        "--reapply",
        "--approve",
        "sha256:0000000000000000",
    ])
    .run()
    .code(4);
    assert_eq!(test.emu().stats().deleted.len(), 3);
    test.idprune(["apply", "m.state.db", "--reapply", "--approve", &digest])
        .run()
        .ok()
        .stderr_has("Re-applying the finished journal");
    let stats = test.emu().stats();
    assert_eq!(stats.deleted.len(), 6, "each deleted again, once");
    assert_eq!(
        test.emu().profiles(),
        without(seed_profiles(&the_seed()), &planned)
    );
    assert_eq!(test.item_states("m.state.db").get("done"), Some(&3));
    let db = test.db("m.state.db");
    let runs: i64 = db
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("runs");
    assert_eq!(
        runs, 2,
        "the refused ones are not recorded; the two applies are"
    );
    let history: i64 = db
        .query_row("SELECT count(*) FROM item_history", [], |r| r.get(0))
        .expect("history");
    assert_eq!(history, 3);

    // Without a rebuild, a re-apply finds them absent.
    test.idprune(["apply", "m.state.db", "--reapply", "--yes"])
        .run()
        .ok();
    assert_eq!(
        test.item_states("m.state.db").get("already_absent"),
        Some(&3)
    );
    assert_eq!(test.emu().stats().deleted.len(), 6);
}

#[test]
fn canary_stops_before_the_fan_out_when_a_delete_removed_nothing() {
    let test = Test::with_emulator(&the_seed(), &["--ineffective-deletes"]);
    test.write("m.yaml", MANIFEST);
    test.plan("m.yaml", "m.state.db");
    let out = test
        .idprune([
            "apply",
            "m.state.db",
            "--yes",
            "--canary",
            "1",
            "--canary-wait",
            "1s",
        ])
        .run()
        .code(1)
        .stderr_has("the canary stopped the run before the fan-out");
    assert!(
        out.stderr.contains("still carries its email identifier"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("wrong1@x.com"),
        "no values: {}",
        out.stderr
    );
    assert_eq!(test.emu().stats().deletes, 1, "only the canary was sent");
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("done"), Some(&1), "{states:?}");
    assert_eq!(states.get("pending"), Some(&2), "{states:?}");
}

#[test]
fn canary_passes_on_a_faithful_service_and_notices_other_changes() {
    let test = Test::new(&the_seed());
    test.write("m.yaml", MANIFEST);
    test.plan("m.yaml", "m.state.db");
    // Behind this plan's back, another clean-up removes keep1@x.com from u_1's profile.
    test.write(
        "other.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: \"other\"\nremove:\n  - profile: user_id:u_1\n    identifier: email:keep1@x.com\n",
    );
    test.plan("other.yaml", "other.state.db");
    test.idprune(["apply", "other.state.db", "--yes"])
        .run()
        .ok();
    test.idprune([
        "apply",
        "m.state.db",
        "--yes",
        "--canary",
        "1",
        "--canary-wait",
        "1s",
    ])
    .run()
    .code(1)
    .stderr_has("1 other identifier(s) vanished (email)");

    // A fresh space: the canary passes and the fan-out does the rest.
    let test = Test::new(&the_seed());
    test.write("m.yaml", MANIFEST);
    test.plan("m.yaml", "m.state.db");
    test.idprune(["apply", "m.state.db", "--yes", "--canary", "2"])
        .run()
        .ok()
        .stderr_has("Canary passed: 2 deletions");
    assert_eq!(test.item_states("m.state.db").get("done"), Some(&3));
    assert_eq!(test.emu().stats().deleted.len(), 3);
}

#[test]
fn canary_stops_at_a_space_refusal_without_failing_the_item() {
    let test = Test::with_emulator(&the_seed(), &["--not-activated"]);
    test.write("m.yaml", MANIFEST);
    test.plan("m.yaml", "m.state.db");
    let out = test
        .idprune(["apply", "m.state.db", "--yes", "--canary", "2"])
        .run()
        .code(1)
        .stderr_has("the canary stopped the run before the fan-out: Segment refused the space");
    assert!(out.stderr.contains("403"), "{}", out.stderr);
    assert!(
        out.stderr.contains("0 deletions were verified"),
        "{}",
        out.stderr
    );
    assert_eq!(
        test.emu().stats().deletes,
        1,
        "one canary delete, then stop"
    );
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("pending"), Some(&3), "none failed: {states:?}");
}
