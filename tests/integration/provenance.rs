//! What the merge job may trust, and the record of who ran it: a state file git tracks is
//! refused (exit 4) before any request by `plan`, `apply STATE` and `apply MANIFEST`; a receipt
//! whose shown fields were edited (counts, region, expiry) is refused by `--check-receipt` and
//! by `apply`; a run records its CI context, and `status` and the markdown show it.

use std::process::{Command, Stdio};

use crate::harness::Test;
use crate::plan_apply::mixed_test;

/// `git ARGS` in the test's folder; panics when git fails (CI has git: it cloned the repo).
fn git(test: &Test, args: &[&str]) {
    let ok = crate::harness::output_bounded(
        Command::new("git")
            .arg("-C")
            .arg(test.path("."))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        None,
    )
    .status
    .success();
    assert!(ok, "git {args:?} failed");
}

#[test]
fn a_state_file_git_tracks_is_refused_before_any_request() {
    let test = mixed_test();
    git(&test, &["init", "-q"]);
    test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    let digest = test.digest("m.state.db");
    // A pull request commits a state file (forged or not): git now tracks it.
    git(&test, &["add", "-f", "m.state.db"]);
    let before = test.emu().stats();

    for args in [
        vec!["apply", "m.state.db", "--approve", digest.as_str()],
        vec!["apply", "m.yaml", "--receipt", "m.receipt.json"],
        vec!["apply", "m.yaml", "--approve", digest.as_str()],
        vec!["apply", "m.state.db", "--receipt", "m.receipt.json"],
        vec!["plan", "m.yaml", "--check-receipt"],
        vec!["plan", "m.yaml"],
    ] {
        let out = test.idprune(&args).run().code(4);
        assert!(
            out.stderr
                .contains("state file `m.state.db` is tracked by git")
                && out.stderr.contains("git rm --cached m.state.db"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("--force"),
            "the refusal names the real reason, not -o/--force: {}",
            out.stderr
        );
    }
    let after = test.emu().stats();
    assert_eq!(after.requests, before.requests, "nothing was read or sent");
    assert_eq!(after.deletes, 0);

    // Untracked again (and ignored), the same apply runs.
    git(&test, &["rm", "-q", "--cached", "m.state.db"]);
    test.write(".gitignore", "*.state.db*\n");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deletes, 10);
}

/// Writes `m.receipt.json` with `edit` applied to the genuine receipt.
fn edit_receipt(test: &Test, edit: impl Fn(&mut serde_json::Value)) {
    let mut receipt: serde_json::Value =
        serde_json::from_str(&test.read("m.receipt.json")).expect("receipt");
    edit(&mut receipt);
    test.write(
        "m.receipt.json",
        &serde_json::to_string_pretty(&receipt).expect("json"),
    );
}

#[test]
fn a_receipt_edited_in_any_shown_field_is_refused_by_the_check_and_by_apply() {
    let test = mixed_test();
    test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    let genuine = test.read("m.receipt.json");
    test.idprune(["plan", "m.yaml", "--check-receipt"])
        .run()
        .ok()
        .stderr_has("matches the fresh plan");

    type Edit = (&'static str, fn(&mut serde_json::Value), &'static str);
    let edits: [Edit; 5] = [
        (
            "deletes 10 → 1",
            |r| r["counts"]["by_action"]["delete"] = 1.into(),
            "counts:",
        ),
        (
            "email deletes",
            |r| r["counts"]["by_type"]["email"]["delete"] = 1.into(),
            "counts:",
        ),
        ("region", |r| r["region"] = "eu".into(), "region:"),
        (
            "expiry",
            |r| r["expires_at"] = "2999-01-01T00:00:00Z".into(),
            "expiry comes from the sealed plan",
        ),
        (
            "created in the future",
            |r| {
                r["created_at"] = "2999-01-01T00:00:00Z".into();
                r["expires_at"] = "2999-01-02T00:00:00Z".into();
            },
            "in the future",
        ),
    ];
    for (what, edit, reason) in edits {
        test.write("m.receipt.json", &genuine);
        edit_receipt(&test, edit);
        test.idprune(["plan", "m.yaml", "--check-receipt"])
            .run()
            .code(4)
            .stderr_has(reason);
        let before = test.emu().stats();
        let out = test
            .idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
            .run()
            .code(4);
        assert!(out.stderr.contains(reason), "{what}: {}", out.stderr);
        let out = test
            .idprune(["apply", "m.state.db", "--receipt", "m.receipt.json"])
            .run()
            .code(4);
        assert!(out.stderr.contains(reason), "{what}: {}", out.stderr);
        assert_eq!(
            test.emu().stats().deletes,
            before.deletes,
            "{what}: no delete"
        );
    }

    // The genuine receipt still applies.
    test.write("m.receipt.json", &genuine);
    test.idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deletes, 10, "the plan's deletes");
}

/// Plans the mixed manifest and applies it with `env` set; returns the test.
fn applied_with(env: &[(&str, &str)]) -> Test {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let mut run = test.idprune(["apply", "m.state.db", "--approve", &digest]);
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run().ok();
    test
}

#[test]
fn a_run_records_its_ci_context_and_status_and_markdown_show_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"pull_request":{"number":17,"head":{"sha":"feedfacefeedfacefeedfacefeedfacefeedface"}}}"#,
    )
    .expect("writing the event");
    let event = event.display().to_string();
    let github = applied_with(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_REPOSITORY", "acme/plans"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_EVENT_PATH", &event),
    ]);
    let status = github.idprune(["status", "m.state.db"]).run().ok();
    assert!(
        status.stdout.contains(
            "(github: octocat in acme/plans, PR #17 at feedfacefeed, https://github.com/acme/plans/actions/runs/42/attempts/1)"
        ),
        "{}",
        status.stdout
    );
    let json: serde_json::Value = serde_json::from_str(
        &github
            .idprune(["status", "m.state.db", "--format", "json"])
            .run()
            .ok()
            .stdout,
    )
    .expect("status JSON");
    let context = &json["runs"][0]["context"];
    assert_eq!(context["actor"], "octocat", "{json}");
    assert_eq!(context["pr_number"], 17);
    assert_eq!(
        context["head_sha"],
        "feedfacefeedfacefeedfacefeedfacefeedface"
    );

    // Elsewhere: the free-form context, escaped wherever it is shown.
    let jenkins = applied_with(&[("IDPRUNE_RUN_CONTEXT", "jenkins job 88\n<b>")]);
    let status = jenkins.idprune(["status", "m.state.db"]).run().ok();
    assert!(
        status.stdout.contains("(jenkins job 88\\n<b>)"),
        "{}",
        status.stdout
    );
    let json: serde_json::Value = serde_json::from_str(
        &jenkins
            .idprune(["status", "m.state.db", "--format", "json"])
            .run()
            .ok()
            .stdout,
    )
    .expect("status JSON");
    assert_eq!(json["runs"][0]["context"]["note"], "jenkins job 88\n<b>");
    let markdown = jenkins
        .idprune(["show", "m.state.db", "--format", "markdown"])
        .run()
        .ok()
        .stdout;
    let last = markdown
        .lines()
        .find(|l| l.starts_with("| Last run |"))
        .unwrap_or_else(|| panic!("no last-run line in\n{markdown}"));
    assert!(
        last.contains("`jenkins job 88\\n<b>`"),
        "the context in a code span, where no tag renders: {last}"
    );

    // No context at all outside CI.
    let plain = applied_with(&[]);
    let json: serde_json::Value = serde_json::from_str(
        &plain
            .idprune(["status", "m.state.db", "--format", "json"])
            .run()
            .ok()
            .stdout,
    )
    .expect("status JSON");
    assert!(json["runs"][0]["context"].is_null(), "{json}");
}
