//! The published JSON Schema of `show --format json` (`docs/schema/show.schema.json`) holds
//! for real output: a mixed plan (deletes, absent, blocked, unresolved) before and after its
//! apply, redacted and revealed, and a plan judged by a policy with an override recorded,
//! validated by Python's `jsonschema` (CI installs it; a missing
//! module fails the test). A schema that no longer matches the output fails here.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::plan_apply::mixed_test;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema/show.schema.json");

/// Validates `doc` against the schema with Draft 2020-12; the errors, if any.
pub fn errors(doc: &str) -> String {
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        errs = [f\"{list(e.absolute_path)}: {e.message}\" for e in v.iter_errors(json.load(sys.stdin))]\n\
        print('\\n'.join(errs))\n";
    let mut child = Command::new("python3")
        .args(["-c", script, SCHEMA])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (CI installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(doc.as_bytes())
        .expect("writing the document");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "the jsonschema check failed to run (pip install jsonschema): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn show_json_matches_the_published_schema_before_and_after_apply() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let show = |extra: &[&str]| {
        let mut args = vec!["show", "m.state.db", "--format", "json"];
        args.extend_from_slice(extra);
        test.idprune(args).run().ok().stdout
    };
    let planned = show(&[]);
    let v: serde_json::Value = serde_json::from_str(&planned).expect("one JSON object");
    for action in ["delete", "absent", "blocked", "unresolved"] {
        assert!(
            v["summary"]["by_action"][action].as_u64() > Some(0),
            "the mixed plan has {action} items, so the schema is checked on each: {planned}"
        );
    }
    assert_eq!(errors(&planned), "", "redacted plan");
    assert_eq!(errors(&show(&["--reveal"])), "", "revealed plan");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    assert_eq!(errors(&show(&[])), "", "applied plan");
    // The check can fail: a field the schema does not know is refused.
    let extra = planned.replacen('{', "{\"surprise\": 1,", 1);
    assert!(
        errors(&extra).contains("surprise"),
        "an unknown field is refused"
    );
}

#[test]
fn show_json_with_a_policy_and_an_override_matches_the_published_schema() {
    let test = crate::policy::policy_test();
    test.write(
        "idprune.policy.yaml",
        "version: 1\nrules:\n  max_deletes: {limit: 100, level: hard}\n  reason_pattern: {pattern: 'JIRA-[0-9]+', level: soft}\n",
    );
    test.idprune(["plan", "m.yaml"]).run().ok();
    let show = || {
        test.idprune(["show", "m.state.db", "--format", "json"])
            .run()
            .ok()
            .stdout
    };
    let planned = show();
    assert_eq!(errors(&planned), "", "plan judged by a policy");
    test.idprune([
        "apply",
        "m.state.db",
        "--yes",
        "--override",
        "reason_pattern",
        "--why",
        "the ticket is OPS-12",
    ])
    .run()
    .ok();
    let applied = show();
    let v: serde_json::Value = serde_json::from_str(&applied).expect("one JSON object");
    assert_eq!(
        v["policy"]["overrides"][0]["rule"], "reason_pattern",
        "{applied}"
    );
    assert_eq!(errors(&applied), "", "applied with an override");
    // The check can fail: a verdict of a rule the schema does not know is refused.
    let odd = applied.replacen("\"rule\":\"max_deletes\"", "\"rule\":\"max_everything\"", 1);
    assert_ne!(odd, applied);
    assert!(
        errors(&odd).contains("max_everything"),
        "an unknown rule is refused"
    );
}
