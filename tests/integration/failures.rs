//! Failures that are not faults of the run: a delete that fails for good (`404 not_found`: no
//! profile answers to the addressing `user_id` any more; a 400 such as `unsupported_eid_type`) ends `failed`, the run exits 3, a
//! plain re-run leaves it alone and `--retry-failed` sends it again; and a server that keeps
//! failing spends the retry budget, which stops the run with exit 1 and the rest `pending`
//! instead of marking thousands of items failed.

use crate::harness::{Deleted, Test, seed};
use crate::kills::fleet;

#[test]
fn a_permanent_failure_ends_failed_exits_3_and_is_retried_only_with_retry_failed() {
    let seed = seed(&[
        (
            "use_1",
            &["user_id:u_1a", "user_id:u_1b", "email:bad1@x.com"],
        ),
        ("use_2", &["user_id:u_2", "email:bad2@x.com"]),
    ]);
    let test = Test::with_emulator(&seed, &["--space-rate", "0", "--profile-rate", "0"]);
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: permanent\nremove:\n  - profile: user_id:u_1a\n    identifier: email:bad1@x.com\n  - profile: user_id:u_2\n    identifier: email:bad2@x.com\n",
    );
    let digest = test.plan("m.yaml", "m.state.db");
    let first = Deleted::new("u_1a", "email", "bad1@x.com");
    assert!(test.planned_deletes("m.state.db").contains(&first));
    // After the plan, `u_1a` leaves its profile: the delete addressed by it finds no profile.
    assert_eq!(test.emu().delete_identifier("u_1b", "user_id", "u_1a"), 200);
    let before = test.emu().stats().delete_attempts.len();

    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(3);
    assert!(out.all().contains("failed"), "{}", out.all());
    let failed = test.items_where("m.state.db", "state = 'failed' AND failure = 'permanent'");
    assert_eq!(
        failed,
        [first.clone()].into(),
        "the 404 `not_found` item failed for good"
    );
    assert_eq!(
        test.items_where("m.state.db", "state = 'done'"),
        [Deleted::new("u_2", "email", "bad2@x.com")].into()
    );
    let attempts = |t: &Test| {
        t.emu().stats().delete_attempts[before..]
            .iter()
            .filter(|a| a.target() == first)
            .map(|a| a.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attempts(&test),
        vec![404],
        "a permanent failure is not retried in the run"
    );

    // A plain re-run sends nothing for it and still reports it; `--retry-failed` sends it
    // again (and it fails again: the profile is still gone).
    retried_only_with_retry_failed(&test, &digest, 404, attempts);
    assert_eq!(
        test.item_states("m.state.db").get("failed").copied(),
        Some(1)
    );
}

#[test]
fn a_server_that_keeps_failing_spends_the_retry_budget_exit_1_rest_pending() {
    const ITEMS: usize = 300;
    let mut test = fleet(ITEMS, &[]);
    // Planned against a healthy server; now every request answers 500.
    test.restart_emulator(&[
        "--space-rate",
        "0",
        "--profile-rate",
        "0",
        "--fail-rate",
        "1",
    ]);
    let out = test
        .idprune([
            "apply",
            "big.state.db",
            "--yes",
            "--rate",
            "0",
            "--concurrency",
            "8",
        ])
        // Backoff steps are real sleeps; the budget, not the per-item attempt cap, must end it.
        .run()
        .code(1);
    assert!(
        out.stderr.contains("resume") || out.stderr.contains("again"),
        "the error says how to go on\n{}",
        out.stderr
    );
    let states = test.item_states("big.state.db");
    let pending = states.get("pending").copied().unwrap_or(0);
    let failed = states.get("failed").copied().unwrap_or(0);
    assert!(
        pending > ITEMS as u64 / 2,
        "the rest stays pending, not failed: {states:?}"
    );
    assert!(
        failed < ITEMS as u64 / 10,
        "the budget stopped the run before items were marked failed: {states:?}"
    );
    assert!(!states.contains_key("done"), "{states:?}");
    // The requests last answered 500 stay `in_flight` (a 500 may hide an applied delete, so a
    // resume that then meets `404 eid_not_found` counts them done): at most the window.
    assert!(
        states.get("in_flight").copied().unwrap_or(0) <= 8,
        "{states:?}"
    );
    let stats = test.emu().stats();
    assert!(stats.deleted.is_empty());
    assert!(
        (stats.deletes as usize) < ITEMS,
        "{} requests: the budget stops dispatch",
        stats.deletes
    );
}

#[test]
fn a_400_ends_failed_permanent_with_segments_code_and_is_retried_only_with_retry_failed() {
    let seed = seed(&[
        (
            "use_1",
            &["user_id:u_1", "phone:+15550001", "email:bad1@x.com"],
        ),
        ("use_2", &["user_id:u_2", "email:bad2@x.com"]),
    ]);
    let mut test = Test::with_emulator(&seed, &["--space-rate", "0", "--profile-rate", "0"]);
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: a type Segment refuses\nremove:\n  - profile: user_id:u_1\n    identifiers: [\"phone:+15550001\", email:bad1@x.com]\n  - profile: user_id:u_2\n    identifier: email:bad2@x.com\n",
    );
    let digest = test.plan("m.yaml", "m.state.db");
    // Planned on a healthy server; now Segment answers 400 for every `phone` delete.
    test.restart_emulator(&[
        "--space-rate",
        "0",
        "--profile-rate",
        "0",
        "--unsupported-type",
        "phone",
    ]);
    let phone = Deleted::new("u_1", "phone", "+15550001");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(3);
    assert!(out.all().contains("failed"), "{}", out.all());
    assert_eq!(
        test.items_where("m.state.db", "state = 'failed' AND failure = 'permanent'"),
        [phone.clone()].into(),
        "the 400 item failed for good"
    );
    assert_eq!(
        test.items_where("m.state.db", "state = 'done'").len(),
        2,
        "the other deletions went through"
    );
    let error: String = rusqlite::Connection::open(test.path("m.state.db"))
        .expect("opening the state file")
        .query_row(
            "SELECT last_error FROM items WHERE id_type = 'phone'",
            [],
            |r| r.get(0),
        )
        .expect("the failed item's error");
    assert!(error.contains("unsupported_eid_type"), "{error}");
    failed_rows_name_the_type_code_and_request(&test);
    let sent = |t: &Test| {
        t.emu()
            .stats()
            .delete_attempts
            .iter()
            .filter(|a| a.target() == phone)
            .map(|a| a.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(&test), vec![400], "a 400 is not retried in the run");
    // The first attempt's time is kept across runs: date it back, and the retry leaves it.
    let dated = test
        .edit_db("m.state.db")
        .execute(
            "UPDATE items SET first_attempt_at = 1000 WHERE state = 'failed'",
            [],
        )
        .expect("dating the first attempt back");
    assert_eq!(dated, 1);
    retried_only_with_retry_failed(&test, &digest, 400, sent);
    let out = test
        .idprune([
            "report",
            "m.state.db",
            "--results",
            "--only",
            "failed",
            "--format",
            "json",
        ])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let row = &json["results"][0];
    assert_eq!(row["attempts"], 2, "{row}");
    assert_eq!(row["first_attempt_at"], "1970-01-01T00:16:40Z", "{row}");
    assert_ne!(row["last_attempt_at"], row["first_attempt_at"], "{row}");
}

/// `report --results --only failed` lists the refused `phone` item alone, with its type, a
/// masked value, Segment's status, code and request id; `--reveal` shows the value, and the
/// JSON rows agree.
fn failed_rows_name_the_type_code_and_request(test: &Test) {
    let out = test
        .idprune(["report", "m.state.db", "--results", "--only", "failed"])
        .run()
        .ok();
    assert!(
        out.stdout.starts_with(
            "seq,type,value,action,state,attempts,http_status,error_code,error_message,request_id,first_attempt_at,last_attempt_at,origin\n"
        ),
        "{}",
        out.stdout
    );
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(out.stdout.as_bytes())
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    let row = &rows[0];
    assert_eq!(row[1], "phone");
    assert!(
        !row[2].contains("15550001"),
        "masked by default: {}",
        row[2]
    );
    assert_eq!(&row[3..7], ["delete", "failed", "1", "400"]);
    assert_eq!(row[7], "unsupported_eid_type");
    assert!(!row[8].is_empty() && !row[9].is_empty(), "{row:?}");
    assert!(row[10].ends_with('Z'), "an RFC 3339 time: {}", row[10]);
    assert!(row[11].ends_with('Z'), "an RFC 3339 time: {}", row[11]);
    assert!(row[10] <= row[11], "first before last: {row:?}");

    let out = test
        .idprune([
            "report",
            "m.state.db",
            "--results",
            "--only",
            "failed",
            "--reveal",
        ])
        .run()
        .ok();
    assert!(
        out.stdout.contains(",phone,'+15550001,"),
        "revealed and formula-safe: {}",
        out.stdout
    );

    let out = test
        .idprune(["report", "m.state.db", "--results", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let all = json["results"].as_array().expect("a `results` array");
    assert_eq!(all.len(), 3, "every item without --only");
    let failed: Vec<_> = all.iter().filter(|r| r["state"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error_code"], "unsupported_eid_type");
    assert_eq!(failed[0]["http_status"], 400);
}

/// An item of `m.state.db` that failed for good, answered `status` once so far (`sent` lists
/// what it was answered): a plain apply leaves it alone and exits 3; `--retry-failed` sends it
/// once more, and it fails again.
fn retried_only_with_retry_failed(
    test: &Test,
    digest: &str,
    status: u16,
    sent: impl Fn(&Test) -> Vec<u16>,
) {
    test.idprune(["apply", "m.state.db", "--approve", digest])
        .run()
        .code(3);
    assert_eq!(
        sent(test),
        vec![status],
        "a plain apply leaves permanent failures alone"
    );
    test.idprune(["apply", "m.state.db", "--approve", digest, "--retry-failed"])
        .run()
        .code(3);
    assert_eq!(
        sent(test),
        vec![status, status],
        "--retry-failed sends it once more"
    );
}
