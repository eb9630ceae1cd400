//! The whole flow on a mixed manifest: every kind of lookup, a CSV source, and every action.

use std::collections::BTreeSet;

use crate::harness::{Deleted, Test, seed, seed_profiles, without};

pub fn mixed_seed() -> serde_json::Value {
    seed(&[
        (
            "use_a1",
            &["user_id:u_1", "email:wrong1@x.com", "email:keep1@x.com"],
        ),
        (
            "use_a2",
            &[
                "user_id:u_2",
                "email:old2@x.com",
                "anonymous_id:anon-2",
                "email:keep2@x.com",
            ],
        ),
        ("use_a3", &["user_id:u_3", "email:placeholder@acme.com"]),
        ("use_a4", &["user_id:u_4", "email:four@x.com"]),
        ("use_a5", &["user_id:u_5", "group_id:g-5"]),
        ("use_a6", &["anonymous_id:anon-only-6", "email:anon6@x.com"]),
        (
            "use_a7",
            &["user_id:u_7", "user_id:u_7b", "email:seven@x.com"],
        ),
        (
            "use_c1",
            &[
                "user_id:u_c1",
                "email:bad-c1@import.invalid",
                "email:c1@x.com",
            ],
        ),
        ("use_c2", &["user_id:u_c2", "email:bad-c2@import.invalid"]),
        ("use_c3", &["user_id:u_c3", "email:bad-c3@import.invalid"]),
        ("use_c4", &["user_id:u_c4", "email:bad-c4@import.invalid"]),
        ("use_c5", &["user_id:u_c5", "email:bad-c5@import.invalid"]),
        ("use_c6", &["user_id:u_c6", "email:c6@x.com"]),
        (
            "use_z",
            &["user_id:u_z", "email:z@x.com", "anonymous_id:anon-z"],
        ),
    ])
}

pub const MIXED_MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "integration test: mixed manifest"
remove:
  - profile: user_id:u_1
    identifier: email:wrong1@x.com
  - profile: use_a2
    identifiers: [email:old2@x.com, anonymous_id:anon-2]
  - identifier: email:placeholder@acme.com
  - profile: user_id:u_7
    identifier: user_id:u_7b
  - profile: user_id:u_1
    identifier: email:never@x.com
  - identifier: email:nobody@x.com
  - profile: user_id:u_4
    identifier: user_id:u_4
  - profile: user_id:u_5
    identifier: group_id:g-5
  - profile: anonymous_id:anon-only-6
    identifier: email:anon6@x.com
  - profile: user_id:u_404
    identifier: email:ghost@x.com
sources:
  - csv: bad.csv
    profile_column: segment_id
    remove_columns: [email]
"#;

pub const MIXED_CSV: &str = "segment_id,email
use_c1,bad-c1@import.invalid
use_c2,bad-c2@import.invalid
use_c3,bad-c3@import.invalid
use_c4,bad-c4@import.invalid
use_c5,bad-c5@import.invalid
use_c6,not-there@import.invalid
use_missing,bad-missing@import.invalid
";

/// What the mixed manifest must delete, addressed by the right `user_id`.
fn expected_deletes() -> BTreeSet<Deleted> {
    let mut set: BTreeSet<Deleted> = [
        Deleted::new("u_1", "email", "wrong1@x.com"),
        Deleted::new("u_2", "email", "old2@x.com"),
        Deleted::new("u_2", "anonymous_id", "anon-2"),
        Deleted::new("u_3", "email", "placeholder@acme.com"),
        Deleted::new("u_7", "user_id", "u_7b"),
    ]
    .into();
    for n in 1..=5 {
        set.insert(Deleted::new(
            &format!("u_c{n}"),
            "email",
            &format!("bad-c{n}@import.invalid"),
        ));
    }
    set
}

pub fn mixed_test() -> Test {
    let test = Test::new(&mixed_seed());
    test.write("m.yaml", MIXED_MANIFEST);
    test.write("bad.csv", MIXED_CSV);
    test
}

#[test]
fn plan_counts_apply_deletes_exactly_the_plan_and_reapply_sends_nothing() {
    let test = mixed_test();
    let reads_before = test.emu().stats().requests;
    assert_eq!(reads_before, 0);

    let out = test
        .idprune(["plan", "m.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    assert!(
        out.stdout.contains(
            "Plan: 10 to delete from 9 profiles, 3 already absent, 3 blocked, 2 unresolved."
        ),
        "summary line\n{}",
        out.stdout
    );
    assert!(test.path("m.state.db").exists(), "default state path");
    let after_plan = test.emu().stats();
    assert_eq!(after_plan.deletes, 0, "plan only reads");
    assert!(after_plan.requests > 0);

    let show = test.show_json("m.state.db");
    let summary = &show["summary"];
    assert_eq!(summary["by_action"]["delete"], 10, "{summary}");
    assert_eq!(summary["by_action"]["absent"], 3, "{summary}");
    assert_eq!(summary["by_action"]["blocked"], 3, "{summary}");
    assert_eq!(summary["by_action"]["unresolved"], 2, "{summary}");
    assert_eq!(summary["by_state"]["pending"], 10, "{summary}");
    assert_eq!(summary["delete_profiles"], 9, "{summary}");
    assert_eq!(show["space"], "spa_test");

    // Each guard rail is blocked for its own reason, on the right item.
    let items = show["items"].as_array().expect("items");
    let by_origin_line = |line: &str| {
        items
            .iter()
            .filter(|i| i["origin"].as_str().is_some_and(|o| o.contains(line)))
            .map(|i| i["action"].as_str().expect("action").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(by_origin_line("m.yaml:14:"), ["absent"]); // never@x.com on u_1
    assert_eq!(by_origin_line("m.yaml:15:"), ["absent"]); // nobody@x.com, identifier-only
    assert_eq!(by_origin_line("m.yaml:17:"), ["blocked"]); // last user_id
    assert_eq!(by_origin_line("m.yaml:19:"), ["blocked"]); // group_id
    assert_eq!(by_origin_line("m.yaml:21:"), ["blocked"]); // anonymous-only profile
    assert_eq!(by_origin_line("m.yaml:23:"), ["unresolved"]); // u_404
    assert_eq!(by_origin_line("bad.csv:7:"), ["absent"]);
    assert_eq!(by_origin_line("bad.csv:8:"), ["unresolved"]);

    assert_eq!(test.planned_deletes("m.state.db"), expected_deletes());
    let digest = test.digest("m.state.db");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 7 + 64,
        "{digest}"
    );

    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    let stats = test.emu().stats();
    assert_eq!(stats.deleted_set(), expected_deletes());
    assert_eq!(stats.deletes, 10, "one request per planned delete");
    assert_eq!(
        test.emu().profiles(),
        without(seed_profiles(&mixed_seed()), &expected_deletes())
    );
    let states = test.item_states("m.state.db");
    assert_eq!(states.get("done"), Some(&10), "{states:?}");
    assert_eq!(states.get("pending"), None, "{states:?}");
    assert_eq!(states.get("failed"), None, "{states:?}");

    // A second apply has nothing left to do and sends nothing at all.
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    let again = test.emu().stats();
    assert_eq!(again.requests, stats.requests, "second apply sent requests");

    // Re-planning the same manifest finds nothing left to delete: exit 0 under
    // --detailed-exitcode, and the journal of the first plan is not overwritten.
    test.idprune(["plan", "m.yaml", "--detailed-exitcode"])
        .run()
        .code(1)
        .stderr_has("journal");
    let out = test
        .idprune([
            "plan",
            "m.yaml",
            "-o",
            "replan.state.db",
            "--detailed-exitcode",
        ])
        .run()
        .ok();
    assert!(out.stdout.contains("Plan: 0 to delete"), "{}", out.stdout);
}

#[test]
fn the_same_manifest_against_the_same_profiles_gives_the_same_digest() {
    let test = mixed_test();
    let first = test.plan("m.yaml", "one.state.db");
    let second = test.plan("m.yaml", "two.state.db");
    assert_eq!(first, second);
    // Not a constant: the same manifest against changed profiles (one planned identifier
    // already gone) seals other items and another digest.
    assert_eq!(
        test.emu().delete_identifier("u_1", "email", "wrong1@x.com"),
        200
    );
    let third = test.plan("m.yaml", "three.state.db");
    assert_ne!(third, first, "changed profiles, same digest");
    assert_ne!(
        test.planned_deletes("three.state.db"),
        test.planned_deletes("one.state.db")
    );
}

#[test]
fn matching_rules_and_the_last_user_id_in_manifest_order() {
    let seed = seed(&[
        (
            "use_1",
            &["user_id:u_1", "email:a@x.com", "email:mixed@x.com"],
        ),
        ("use_2", &["user_id:a2", "user_id:b2", "email:two@x.com"]),
        ("use_3", &["user_id:u_3", "anonymous_id:AbC"]),
    ]);
    // Propagation keeps deleted identifiers visible to reads, so `verify` sees them.
    let test = Test::with_emulator(&seed, &["--propagation-ms", "600000"]);
    test.write(
        "m.yaml",
        r#"version: 1
space: spa_test
region: us
reason: matching rules
remove:
  - profile: user_id:u_1
    identifier: email:a@x.com
  - profile: use_1
    identifier: email:a@x.com
  - profile: user_id:u_1
    identifier: email:MIXED@x.com
  - profile: user_id:a2
    identifiers: [user_id:a2, user_id:b2]
  - profile: user_id:u_3
    identifier: anonymous_id:abc
"#,
    );
    let out = test
        .idprune(["plan", "m.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    // The same (profile, identifier) through two lookups collapses, with a warning.
    assert!(out.all().contains("m.yaml:9:"), "{}", out.all());
    assert!(
        out.stdout.contains("differs only in case"),
        "{}",
        out.stdout
    );
    let expected: BTreeSet<Deleted> = [
        Deleted::new("u_1", "email", "a@x.com"),
        // email matches case-insensitively and is sent exactly as stored
        Deleted::new("u_1", "email", "mixed@x.com"),
        // of two user_ids both listed, the last in manifest order stays, and addresses
        Deleted::new("b2", "user_id", "a2"),
    ]
    .into();
    assert_eq!(test.planned_deletes("m.state.db"), expected);
    let show = test.show_json("m.state.db");
    assert_eq!(show["summary"]["by_action"]["blocked"], 1, "{show}");
    assert_eq!(
        show["summary"]["by_action"]["absent"], 1,
        "other types match exactly"
    );

    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    assert_eq!(test.emu().stats().deleted_set(), expected);
    assert_eq!(
        test.emu().profiles(),
        without(seed_profiles(&seed), &expected)
    );
    // Within the propagation window the removed identifiers still show: verify says so.
    let out = test.idprune(["verify", "m.state.db"]).run().code(2);
    assert!(out.stdout.contains("still present"), "{}", out.stdout);
}
