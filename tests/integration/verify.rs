//! `verify --wait` and the verification history: a propagation delay is waited out, a
//! deadline that passes first says so, and an identifier that comes back behind the tool's
//! back (the emulator's rebuild endpoint) is `re-introduced`, not `still present`.

use crate::harness::{Test, seed};

const MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "integration test: verify"
remove:
  - profile: user_id:u_1
    identifier: email:wrong1@x.com
  - profile: user_id:u_2
    identifier: anonymous_id:anon-2
"#;

fn applied(emulator_flags: &[&str]) -> Test {
    let test = Test::with_emulator(
        &seed(&[
            (
                "use_1",
                &["user_id:u_1", "email:wrong1@x.com", "email:keep@x.com"],
            ),
            ("use_2", &["user_id:u_2", "anonymous_id:anon-2"]),
        ]),
        emulator_flags,
    );
    test.write("m.yaml", MANIFEST);
    test.idprune(["plan", "m.yaml"]).run().ok();
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    test
}

fn verify_json(test: &Test, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["verify", "m.state.db", "--format", "json", "--reveal"];
    args.extend_from_slice(extra);
    let out = test.idprune(args).run().code(code);
    serde_json::from_str(&out.stdout).expect("verify JSON")
}

fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["identifier"]["id"].as_str().expect("id").to_owned(),
                i["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[test]
fn wait_outlasts_the_propagation_delay_and_the_history_is_recorded() {
    let test = applied(&["--propagation-ms", "1500"]);
    // At once: still present (the emulator still shows them), exit 2.
    let now = verify_json(&test, &[], 2);
    assert_eq!(now["still_present"], 2, "{now:#}");
    assert_eq!(now["polls"], 1);
    // Waiting polls until they are gone.
    let waited = verify_json(&test, &["--wait", "30s"], 0);
    assert_eq!(waited["gone"], 2, "{waited:#}");
    assert_eq!(waited["still_present"], 0);
    assert!(waited["polls"].as_u64().expect("polls") >= 2, "{waited:#}");
    assert_eq!(waited["verification"], 2);
    // Both verifications are in the state file; status lists them.
    let db = test.db("m.state.db");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM verifications", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 2);
    let json = test
        .idprune(["status", "m.state.db", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("status JSON");
    let history = json["verifications"].as_array().expect("verifications");
    assert_eq!(history.len(), 2, "{json:#}");
    assert_eq!(history[0]["outcome"], "present");
    assert_eq!(history[1]["outcome"], "gone");
    let status = test.idprune(["status", "m.state.db"]).run().ok();
    assert!(
        status.stdout.contains("Verifications (2):"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("2 checked, 0 gone, 2 still present, 0 re-introduced"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("2 checked, 2 gone, 0 still present, 0 re-introduced"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_deadline_that_passes_first_reports_still_present() {
    let test = applied(&["--propagation-ms", "600000"]);
    let out = test
        .idprune(["verify", "m.state.db", "--wait", "1500ms"])
        .run()
        .code(2);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains("2 still present, 0 re-introduced"),
        "the summary first:\n{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with("The deadline passed"),
        "then the hint:\n{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Still present (2):\n  #1 email:wrong1@x.com on profile user_id:u_1"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_identifier_back_after_it_was_gone_is_reintroduced() {
    let test = applied(&[]);
    let first = verify_json(&test, &[], 0);
    assert_eq!(first["gone"], 2, "{first:#}");
    // A replay re-adds one of them behind the tool's back.
    assert_eq!(test.emu().rebuild(Some(&["email:wrong1@x.com"])), 1);
    let out = test.idprune(["verify", "m.state.db"]).run().code(2);
    assert!(
        out.stdout.contains(
            "Re-introduced (1):\n  #1 email:wrong1@x.com on profile user_id:u_1 (last seen gone "
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("verification #1)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("1 gone, 0 still present, 1 re-introduced"),
        "{}",
        out.stdout
    );
    // Still re-introduced the next time (not "still present"), with the same last-gone time.
    let again = verify_json(&test, &[], 2);
    let mut seen = statuses(&again);
    seen.sort();
    assert_eq!(
        seen,
        [
            ("anon-2".to_owned(), "gone".to_owned()),
            ("wrong1@x.com".to_owned(), "reintroduced".to_owned())
        ]
    );
    let item = again["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["status"] == "reintroduced")
        .expect("the re-introduced item");
    assert!(item["last_seen_gone_at"].is_string(), "{item}");
    // JSON redacts values by default.
    let redacted = test
        .idprune(["verify", "m.state.db", "--format", "json"])
        .run()
        .code(2);
    assert!(
        !redacted.stdout.contains("wrong1@x.com"),
        "{}",
        redacted.stdout
    );
}

#[test]
fn right_after_apply_verify_summarises_hints_first_and_lists_by_item_number() {
    const N: usize = 25;
    let profiles: Vec<(String, Vec<String>)> = (1..=N)
        .map(|i| {
            (
                format!("use_{i}"),
                vec![format!("user_id:u_{i}"), format!("email:bad{i}@x.com")],
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<&str>)> = profiles
        .iter()
        .map(|(s, ids)| (s.as_str(), ids.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, &[&str])> = refs.iter().map(|(s, ids)| (*s, ids.as_slice())).collect();
    // Deletes take ten minutes to show: right after apply every one is still there.
    let test = Test::with_emulator(&seed(&refs), &["--propagation-ms", "600000"]);
    let mut manifest =
        String::from("version: 1\nspace: spa_test\nregion: us\nreason: verify order\nremove:\n");
    for i in 1..=N {
        manifest.push_str(&format!(
            "  - profile: user_id:u_{i}\n    identifier: email:bad{i}@x.com\n"
        ));
    }
    test.write("m.yaml", &manifest);
    test.idprune(["plan", "m.yaml"]).run().ok();
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    let out = test.idprune(["verify", "m.state.db"]).run().code(2);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Verified 25 removed identifiers"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains("--wait 6m"),
        "the hint second:\n{}",
        out.stdout
    );
    assert_eq!(lines[3], "Still present (25):", "{}", out.stdout);
    let seqs: Vec<u64> = lines[4..]
        .iter()
        .filter_map(|l| l.strip_prefix("  #"))
        .map(|l| l.split(' ').next().expect("seq").parse().expect("a number"))
        .collect();
    let expected: Vec<u64> = (1..=20).collect();
    assert_eq!(seqs, expected, "numeric order, at most 20:\n{}", out.stdout);
    assert!(
        out.stdout
            .contains("  … and 5 more (`--format json` lists every one)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains("--wait 6m"),
        "the hint once: {}",
        out.stderr
    );
}
