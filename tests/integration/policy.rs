//! The team's rules (`idprune.policy.yaml`, or `plan --policy FILE`) on the emulator: every rule
//! fails a plan (hard: exit 1, the state file still written) and refuses its apply with zero
//! requests (exit 4); a soft rule passes only with `--override RULE --why TEXT`, recorded with
//! the run and shown by `show` (text, JSON, markdown) and `status`; a hard rule cannot be
//! overridden; a policy changed, or added, after the plan is refused; the policy's sha256 is in
//! the digest.

use crate::harness::{Output, Test, seed};

/// Three profiles, four deletions: two emails at @import.invalid, one elsewhere, one phone.
pub fn policy_test() -> Test {
    let test = Test::new(&seed(&[
        (
            "use_p1",
            &[
                "user_id:u1",
                "email:a@import.invalid",
                "email:keep1@real.example",
            ],
        ),
        (
            "use_p2",
            &["user_id:u2", "email:b@import.invalid", "phone:+15550001"],
        ),
        ("use_p3", &["user_id:u3", "email:c@other.example"]),
    ]));
    test.write(
        "m.yaml",
        r#"version: 1
space: spa_test
region: us
reason: "placeholder emails from the import (OPS-12)"
remove:
  - profile: user_id:u1
    identifier: email:a@import.invalid
  - profile: user_id:u2
    identifiers: [email:b@import.invalid, "phone:+15550001"]
  - profile: user_id:u3
    identifier: email:c@other.example
"#,
    );
    test
}

fn policy(rule: &str, level: &str) -> String {
    let body = match rule {
        "max_deletes" => "{limit: 3, level: LEVEL}",
        "max_profiles" => "{limit: 2, level: LEVEL}",
        "allowed_types" => "{types: [email], level: LEVEL}",
        "forbid_types" => "{types: [phone], level: LEVEL}",
        "value_patterns" => r#"{patterns: {email: '@import\.invalid$'}, level: LEVEL}"#,
        "require_canary_above" => "{limit: 2, level: LEVEL}",
        "reason_pattern" => "{pattern: 'JIRA-[0-9]+', level: LEVEL}",
        "max_ttl" => "{limit: 1d, level: LEVEL}",
        other => panic!("no such rule {other}"),
    };
    // A rule that holds beside it, so the view shows both marks.
    let holds = if rule == "max_deletes" {
        ""
    } else {
        "  max_deletes: {limit: 1000, level: hard}\n"
    };
    format!(
        "version: 1\nrules:\n{holds}  {rule}: {}\n",
        body.replace("LEVEL", level)
    )
}

/// The verdict of `rule` in `show --format json`.
fn verdict(test: &Test, state: &str, rule: &str) -> serde_json::Value {
    let json = test.show_json(state);
    json["policy"]["verdicts"]
        .as_array()
        .expect("a policy with verdicts")
        .iter()
        .find(|v| v["rule"] == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no verdict for {rule}: {json}"))
}

/// Asserts exit 4 and that the emulator received no delete request.
#[track_caller]
fn refused(test: &Test, out: Output) -> Output {
    let out = out.code(4);
    assert_eq!(
        test.emu().stats().deletes,
        0,
        "a refused apply sent a delete"
    );
    out
}

#[test]
fn every_rule_fails_its_plan_and_a_hard_failure_refuses_apply_with_zero_requests() {
    let test = policy_test();
    for rule in [
        "max_deletes",
        "max_profiles",
        "allowed_types",
        "forbid_types",
        "value_patterns",
        "require_canary_above",
        "reason_pattern",
        "max_ttl",
    ] {
        test.write("idprune.policy.yaml", &policy(rule, "hard"));
        let state = format!("{rule}.state.db");
        let planned = test.idprune(["plan", "m.yaml", "-o", &state]).run();
        // The canary is not known until apply: the plan says apply must run with one.
        let planned = if rule == "require_canary_above" {
            planned.ok()
        } else {
            planned.code(1).stderr_has(rule)
        };
        assert!(test.path(&state).exists(), "{rule}: state file written");
        let v = verdict(&test, &state, rule);
        assert_eq!(v["level"], "hard", "{rule}: {v}");
        assert_eq!(v["passed"], rule == "require_canary_above", "{rule}: {v}");
        let line = planned
            .stdout
            .lines()
            .find(|l| l.contains(&format!(" {rule} (hard)")))
            .unwrap_or_else(|| panic!("{rule}: no verdict line in\n{}", planned.stdout));
        assert!(
            line.contains(if rule == "require_canary_above" {
                "✅"
            } else {
                "❌"
            }),
            "{line}"
        );
        let markdown = test
            .idprune(["show", &state, "--format", "markdown"])
            .run()
            .ok()
            .stdout;
        assert!(
            markdown.contains(&format!("| {} | hard |", rule.replace('_', "\\_"))),
            "{rule}: {markdown}"
        );
        let out = test.idprune(["apply", &state, "--yes"]).run();
        refused(&test, out)
            .stderr_has(&format!("❌ {rule} (hard)"))
            .stderr_has("nothing was sent");
    }
    // The canary rule holds once apply runs a canary.
    test.write(
        "idprune.policy.yaml",
        &policy("require_canary_above", "hard"),
    );
    test.idprune([
        "apply",
        "require_canary_above.state.db",
        "--yes",
        "--canary",
        "1",
        "--canary-wait",
        "10s",
    ])
    .run()
    .ok();
    assert_eq!(test.emu().stats().deletes, 4);
}

#[test]
fn a_soft_failure_needs_an_override_which_is_recorded_and_shown() {
    let test = policy_test();
    test.write("idprune.policy.yaml", &policy("reason_pattern", "soft"));
    test.idprune(["plan", "m.yaml"])
        .run()
        .ok()
        .stderr_has("--override reason_pattern");
    assert_eq!(
        verdict(&test, "m.state.db", "reason_pattern")["passed"],
        false
    );
    let out = test.idprune(["apply", "m.state.db", "--yes"]).run();
    refused(&test, out).stderr_has("--override reason_pattern --why");
    // A rule the policy does not have is a typo: exit 1, nothing sent.
    test.idprune([
        "apply",
        "m.state.db",
        "--yes",
        "--override",
        "reason_patern",
        "--why",
        "x",
    ])
    .run()
    .code(1)
    .stderr_has("names no rule");
    // --override without --why is a usage error.
    test.idprune([
        "apply",
        "m.state.db",
        "--yes",
        "--override",
        "reason_pattern",
    ])
    .run()
    .code(1);
    assert_eq!(test.emu().stats().deletes, 0);
    let why = "OPS-12 is the ticket; the JIRA rule is for product data (lead approved)";
    test.idprune([
        "apply",
        "m.state.db",
        "--yes",
        "--override",
        "reason_pattern",
        "--why",
        why,
    ])
    .run()
    .ok()
    .stderr_has("overridden");
    assert_eq!(test.emu().stats().deletes, 4);

    let json = test.show_json("m.state.db");
    let overrides = json["policy"]["overrides"].as_array().expect("overrides");
    assert_eq!(overrides.len(), 1, "{json}");
    assert_eq!(overrides[0]["rule"], "reason_pattern");
    assert_eq!(overrides[0]["why"], why);
    assert_eq!(overrides[0]["run"], 1);
    assert!(overrides[0]["user"].as_str().is_some_and(|u| !u.is_empty()));
    let text = test.idprune(["show", "m.state.db"]).run().ok().stdout;
    assert!(
        text.contains("overridden: reason_pattern in run 1") && text.contains(why),
        "{text}"
    );
    let status = test.idprune(["status", "m.state.db"]).run().ok().stdout;
    assert!(status.contains("overridden: reason_pattern"), "{status}");
    let markdown = test
        .idprune(["show", "m.state.db", "--format", "markdown"])
        .run()
        .ok()
        .stdout;
    assert!(
        markdown.contains("Overridden: `reason_pattern` in run 1"),
        "{markdown}"
    );
    // The record is append-only.
    let edited = test.edit_db("m.state.db").execute(
        "UPDATE policy_overrides SET why = 'nothing to see' WHERE rule = 'reason_pattern'",
        [],
    );
    assert!(edited.is_err(), "an override was edited");
}

#[test]
fn a_hard_rule_cannot_be_overridden() {
    let test = policy_test();
    test.write("idprune.policy.yaml", &policy("forbid_types", "hard"));
    test.idprune(["plan", "m.yaml"]).run().code(1);
    let out = test
        .idprune([
            "apply",
            "m.state.db",
            "--yes",
            "--override",
            "forbid_types",
            "--why",
            "please",
        ])
        .run();
    refused(&test, out).stderr_has("a hard rule cannot be overridden");
}

#[test]
fn a_policy_changed_added_or_removed_after_the_plan() {
    let test = policy_test();
    let passing = "version: 1\nrules:\n  max_deletes: {limit: 100, level: hard}\n";
    test.write("idprune.policy.yaml", passing);
    let with_policy = test.plan("m.yaml", "m.state.db");
    // Changed, even by a comment: refused, nothing sent.
    test.write(
        "idprune.policy.yaml",
        &format!("{passing}# tightened later\n"),
    );
    let out = test.idprune(["apply", "m.state.db", "--yes"]).run();
    refused(&test, out).stderr_has("changed since the plan was made");

    // A plan made without a policy, then a policy appears: refused.
    std::fs::remove_file(test.path("idprune.policy.yaml")).expect("removing the policy");
    let without = test.plan("m.yaml", "bare.state.db");
    assert_ne!(
        with_policy, without,
        "the policy's sha256 is part of the digest"
    );
    test.write("idprune.policy.yaml", passing);
    let out = test.idprune(["apply", "bare.state.db", "--yes"]).run();
    refused(&test, out).stderr_has("the plan was made without a policy");

    // The policy file gone: judged by the sealed copy, which holds.
    std::fs::remove_file(test.path("idprune.policy.yaml")).expect("removing the policy");
    test.idprune(["apply", "m.state.db", "--yes"])
        .run()
        .ok()
        .stderr_has("judging the plan by the copy sealed in it");
    assert_eq!(test.emu().stats().deletes, 4);
}

#[test]
fn policy_flag_names_a_file_sealed_by_path_and_hash() {
    let test = policy_test();
    std::fs::create_dir_all(test.path("rules")).expect("mkdir");
    test.write(
        "rules/team.yaml",
        "version: 1\nrules:\n  forbid_types: {types: [user_id], level: hard}\n",
    );
    // A policy found by walking up is not used when --policy names another.
    test.write("idprune.policy.yaml", &policy("max_deletes", "hard"));
    test.idprune(["plan", "m.yaml", "--policy", "rules/team.yaml"])
        .run()
        .ok();
    let json = test.show_json("m.state.db");
    assert_eq!(json["policy"]["path"], "rules/team.yaml", "{json}");
    assert_eq!(
        json["policy"]["sha256"].as_str().map(str::len),
        Some(64),
        "{json}"
    );
    // apply checks the sealed file, wherever the walk would land.
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    assert_eq!(test.emu().stats().deletes, 4);
}

#[test]
fn an_invalid_policy_stops_the_plan_before_any_request() {
    let test = policy_test();
    test.write(
        "idprune.policy.yaml",
        "version: 1\nrules:\n  max_deletes: {limit: 10, level: medium}\n",
    );
    test.idprune(["plan", "m.yaml"])
        .run()
        .code(1)
        .stderr_has("idprune.policy.yaml:3:");
    assert_eq!(test.emu().stats().requests, 0);
    assert!(!test.path("m.state.db").exists());
}

#[test]
fn validate_checks_the_policy_plan_would_use() {
    let test = policy_test();
    test.write("idprune.policy.yaml", &policy("reason_pattern", "soft"));
    let text = test.idprune(["validate", "m.yaml"]).run().ok().stdout;
    assert!(
        text.contains("is valid: 2 rules: max_deletes (hard), reason_pattern (soft)."),
        "validate names the policy's rules: {text}"
    );
    let json = test
        .idprune(["validate", "m.yaml", "--format", "json"])
        .run()
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["policy"]["rules"][1]["rule"], "reason_pattern", "{v}");
    test.write(
        "idprune.policy.yaml",
        "version: 1\nrules:\n  max_deletes: {limit: 10, level: medium}\n",
    );
    test.idprune(["validate", "m.yaml"])
        .run()
        .code(1)
        .stderr_has("idprune.policy.yaml:3:");
    let out = test
        .idprune(["validate", "m.yaml", "--format", "json"])
        .run()
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["problems"][0]["line"], 3, "{v}");
    // --policy names another file, which is valid.
    test.write(
        "team.yaml",
        "version: 1\nrules:\n  forbid_types: {types: [user_id], level: hard}\n",
    );
    test.idprune(["validate", "m.yaml", "--policy", "team.yaml"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().requests, 0, "validate is offline");
}
