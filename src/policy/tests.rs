use std::time::Duration;

use super::*;

fn policy(yaml: &str) -> Policy {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(POLICY_FILE);
    std::fs::write(&path, yaml).expect("write");
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(POLICY_FILE);
    std::fs::write(&path, yaml).expect("write");
    let err = load(&path).expect_err("an invalid policy");
    err.to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

const ALL: &str = r#"version: 1
rules:
  max_deletes: {limit: 2, level: hard}
  max_profiles: {limit: 1, level: soft}
  allowed_types: {types: [email, anonymous_id], level: hard}
  forbid_types: {types: [user_id], level: hard}
  value_patterns: {patterns: {email: '@import\.invalid$'}, level: hard}
  require_canary_above: {limit: 1, level: soft}
  reason_pattern: {pattern: 'JIRA-[0-9]+', level: hard}
  max_ttl: {limit: 7d, level: soft}
"#;

fn summary(deletes: u64, profiles: u64, reason: &str, canary: Option<u64>) -> Summary<'_> {
    Summary {
        deletes,
        profiles,
        reason,
        ttl: Duration::from_secs(3 * 86_400),
        canary,
    }
}

fn failed(verdicts: &[Verdict]) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|v| !v.passed)
        .map(|v| v.rule.as_str())
        .collect()
}

#[test]
fn a_plan_inside_every_rule_passes_them_all() {
    let p = policy(ALL);
    assert_eq!(p.rules.len(), 8);
    assert_eq!(p.sha256.len(), 64);
    let items = [Deletion {
        seq: 1,
        kind: "email",
        value: "a@import.invalid",
    }];
    let v = evaluate(&p, &summary(1, 1, "JIRA-12 typo", Some(0)), items);
    assert_eq!(failed(&v), Vec::<&str>::new(), "{v:#?}");
    assert!(v.iter().all(|v| v.next.is_none()));
}

#[test]
fn each_rule_fails_on_its_own_breach() {
    let p = policy(ALL);
    let items = [
        Deletion {
            seq: 1,
            kind: "email",
            value: "a@gmail.com",
        },
        Deletion {
            seq: 2,
            kind: "user_id",
            value: "u1",
        },
        Deletion {
            seq: 3,
            kind: "email",
            value: "b@import.invalid",
        },
    ];
    let mut s = summary(3, 2, "cleanup", Some(0));
    s.ttl = Duration::from_secs(30 * 86_400);
    let v = evaluate(&p, &s, items);
    assert_eq!(
        failed(&v),
        [
            "max_deletes",
            "max_profiles",
            "allowed_types",
            "forbid_types",
            "value_patterns",
            "require_canary_above",
            "reason_pattern",
            "max_ttl"
        ]
    );
    let by = |rule: &str| v.iter().find(|v| v.rule == rule).expect("verdict");
    assert_eq!(
        by("allowed_types").detail,
        "1 deletion (#2) of a type not in email, anonymous_id"
    );
    assert_eq!(
        by("value_patterns").detail,
        "1 deletion (#1) whose value does not match its type's pattern"
    );
    assert!(
        !by("value_patterns").detail.contains("gmail"),
        "no values in verdicts"
    );
    assert!(
        v.iter().all(|v| v.next.is_some()),
        "every failure names a next step"
    );
}

#[test]
fn the_canary_rule_is_a_promise_at_plan_time_and_checked_at_apply() {
    let p = policy("version: 1\nrules:\n  require_canary_above: {limit: 10, level: hard}\n");
    let plan = evaluate(&p, &summary(11, 11, "r", None), []);
    assert!(plan[0].passed);
    assert!(
        plan[0].detail.contains("must run with --canary"),
        "{}",
        plan[0].detail
    );
    assert!(!evaluate(&p, &summary(11, 11, "r", Some(0)), [])[0].passed);
    assert!(evaluate(&p, &summary(11, 11, "r", Some(5)), [])[0].passed);
    assert!(evaluate(&p, &summary(10, 10, "r", Some(0)), [])[0].passed);
}

#[test]
fn hard_failures_refuse_and_soft_ones_only_without_an_override() {
    let p = policy(ALL);
    let v = evaluate(&p, &summary(1, 2, "JIRA-1", Some(0)), []);
    let soft = v
        .iter()
        .find(|v| v.rule == "max_profiles")
        .expect("verdict");
    assert!(refuses(soft, &[]));
    assert!(!refuses(soft, &["max_profiles".into()]));
    let v = evaluate(&p, &summary(3, 1, "JIRA-1", Some(0)), []);
    let hard = v.iter().find(|v| v.rule == "max_deletes").expect("verdict");
    assert!(
        refuses(hard, &["max_deletes".into()]),
        "a hard rule has no override"
    );
}

#[test]
fn named_offenders_are_capped() {
    let p = policy("version: 1\nrules:\n  forbid_types: {types: [user_id], level: hard}\n");
    let items: Vec<Deletion<'_>> = (1..=7)
        .map(|seq| Deletion {
            seq,
            kind: "user_id",
            value: "u",
        })
        .collect();
    let v = evaluate(&p, &summary(7, 7, "r", None), items);
    assert_eq!(
        v[0].detail,
        "7 deletions (#1, #2, #3, #4, #5, ...) of a forbidden type (user_id)"
    );
}

#[test]
fn unknown_keys_and_bad_values_are_located() {
    assert_eq!(
        problems(
            "version: 1\nrules:\n  max_deletes: {limit: 5, level: hard}\n  max_delets: {limit: 5, level: hard}\n"
        ),
        problems(
            "version: 1\nrules:\n  max_deletes: {limit: 5, level: hard}\n  max_delets: {limit: 5, level: hard}\n"
        ),
    );
    let unknown = problems(
        "version: 1\nrules:\n  max_deletes: {limit: 5, level: hard}\n  max_delets: {limit: 5, level: hard}\n",
    );
    assert!(
        unknown.starts_with("DIR/idprune.policy.yaml:4:3: invalid policy:"),
        "{unknown}"
    );
    assert!(unknown.contains("max_delets"), "{unknown}");
    let level = problems("version: 1\nrules:\n  max_deletes: {limit: 5, level: firm}\n");
    assert!(level.contains(":3:"), "{level}");
    assert!(level.contains("firm"), "{level}");
    let many = problems(
        "version: 2\nrules:\n  reason_pattern: {pattern: 'JIRA-(', level: hard}\n  max_ttl: {limit: soon, level: soft}\n  forbid_types: {types: ['no such'], level: hard}\n",
    );
    let lines: Vec<&str> = many.lines().collect();
    assert_eq!(lines.len(), 5, "{many}");
    assert!(
        lines[0].starts_with("DIR/idprune.policy.yaml:1:10: policy `version` 2"),
        "{many}"
    );
    assert!(
        lines[1].starts_with("DIR/idprune.policy.yaml:3:29: pattern `JIRA-(`"),
        "{many}"
    );
    assert!(
        lines[2].starts_with("DIR/idprune.policy.yaml:4:20: `max_ttl` limit `soon`"),
        "{many}"
    );
    assert!(
        lines[3].starts_with("DIR/idprune.policy.yaml:5:26: `no such` is not an identifier type"),
        "{many}"
    );
    assert_eq!(
        lines[4],
        "4 problems in policy `DIR/idprune.policy.yaml`; fix them and plan again"
    );
    assert!(problems("").contains("the policy is empty"));
    assert!(problems("version: 1\n").contains("no `rules`"));
    assert!(problems("version: 1\nrules: {}\n").contains("`rules` is empty"));
    let bomb = format!(
        "version: 1\nrules:\n  max_deletes: {{limit: 1, level: hard}}\n#{}\n",
        "x".repeat(70_000)
    );
    assert!(problems(&bomb).contains("over 65536 bytes"));
}

#[test]
fn the_policy_is_found_by_walking_up_from_the_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    let manifest = nested.join("m.yaml");
    assert_eq!(find(&manifest).filter(|p| p.starts_with(dir.path())), None);
    std::fs::write(dir.path().join("a").join(POLICY_FILE), ALL).expect("write");
    let found = find(&manifest).expect("found");
    assert_eq!(
        found,
        std::fs::canonicalize(dir.path().join("a"))
            .expect("canon")
            .join(POLICY_FILE)
    );
}
