//! The pull-request flow end to end on the emulator: plan with a receipt, check it, let the
//! profiles drift, see the check and the apply refuse with what changed, re-plan, apply from
//! the merged manifest exactly the plan. And what a pull request shows: no identifier value or
//! user_id from the fixtures in markdown, JSON, the receipt or a refusal without `--reveal`;
//! hostile reasons, file names and values that a real GFM renderer (comrak) turns into no
//! element, attribute or link; the suspicious plan's exit 1.

use std::collections::BTreeSet;

use crate::harness::{Deleted, Test, seed};

/// A value no view may show: hostile in markdown and in HTML.
const EVIL_DOMAIN: &str = "</details><img src=x onerror=alert(1)>";
const HOSTILE_REASON: &str = "</details><img src=x onerror=alert(1)> @octocat see https://evil.example, www.evil.example, [click](https://evil.example) ![i](https://evil.example/i.png) <script>alert(1)</script> #1 <!-- OPS-9";
/// The CSV's directory and file name: `<` / `details><a href=https://evil.example>@octocat`.
const HOSTILE_DIR: &str = "</details><a href=https:";
const HOSTILE_CSV: &str =
    "</details><a href=https:/evil.example>@octocat [x](www.evil.example).csv";

fn review_test() -> Test {
    let mut profiles: Vec<(String, Vec<String>)> = Vec::new();
    for i in 1..=6 {
        profiles.push((
            format!("use_r{i}"),
            vec![
                format!("user_id:uid-secret-{i}"),
                format!("email:jane{i}@import.invalid"),
                format!("email:keep{i}@real.example"),
                format!("phone:+1555000{i:04}"),
            ],
        ));
    }
    profiles.push((
        "use_evil".into(),
        vec![
            "user_id:uid-secret-evil".into(),
            format!("email:evil@{EVIL_DOMAIN}"),
        ],
    ));
    let refs: Vec<(&str, Vec<&str>)> = profiles
        .iter()
        .map(|(s, ids)| (s.as_str(), ids.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, &[&str])> = refs.iter().map(|(s, ids)| (*s, ids.as_slice())).collect();
    let test = Test::new(&seed(&refs));
    let csv_dir = test.path(HOSTILE_DIR);
    std::fs::create_dir_all(&csv_dir).expect("creating the CSV's directory");
    let mut csv = String::from("user_id,email,phone\n");
    for i in 4..=6 {
        csv.push_str(&format!(
            "uid-secret-{i},jane{i}@import.invalid,+1555000{i:04}\n"
        ));
    }
    std::fs::write(test.path(HOSTILE_CSV), csv).expect("writing the CSV");
    let manifest = format!(
        r#"version: 1
space: spa_test
region: us
reason: {reason}
remove:
  - profile: user_id:uid-secret-1
    identifier: email:jane1@import.invalid
  - profile: user_id:uid-secret-2
    identifiers: [email:jane2@import.invalid, "phone:+15550000002"]
  - identifier: email:jane3@import.invalid
  - profile: user_id:uid-secret-evil
    identifier: {evil}
sources:
  - csv: {csv}
    profile_column: user_id
    remove_columns: [email, phone]
"#,
        reason = serde_json::to_string(HOSTILE_REASON).expect("json"),
        evil = serde_json::to_string(&format!("email:evil@{EVIL_DOMAIN}")).expect("json"),
        csv = serde_json::to_string(HOSTILE_CSV).expect("json"),
    );
    test.write("m.yaml", &manifest);
    test
}

/// Every raw value of the fixture that no redacted view may show.
fn secrets() -> Vec<String> {
    let mut s = vec!["evil@".to_owned(), "uid-secret".to_owned()];
    for i in 1..=6 {
        s.push(format!("jane{i}@"));
        s.push(format!("keep{i}@"));
        s.push(format!("+1555000{i:04}"));
        s.push(format!("1555000{i:04}"));
    }
    s
}

#[track_caller]
fn hides_all(text: &str, what: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} shows the raw value {secret:?}:\n{text}"
        );
    }
}

/// Renders markdown as GitHub would (GFM extensions, raw HTML passed through) and checks
/// that nothing from outside became an element, an attribute or a link.
#[track_caller]
fn safe_on_github(markdown: &str, what: &str) {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.autolink = true;
    options.extension.strikethrough = true;
    options.extension.tasklist = true;
    options.render.r#unsafe = true;
    let html = comrak::markdown_to_html(markdown, &options);
    // Every element in the HTML is one the view writes, with no attribute but these.
    const ELEMENTS: &[&str] = &[
        "h3",
        "p",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "details",
        "summary",
        "pre",
        "code",
        "blockquote",
        "br",
    ];
    const ATTRIBUTES: &[&str] = &["align=\"right\"", "class=\"language-diff\""];
    for (at, _) in html.match_indices('<') {
        let tag: String = html[at + 1..].chars().take_while(|c| *c != '>').collect();
        let tag = tag.trim_start_matches('/').trim_end_matches('/');
        let mut parts = tag.split_whitespace();
        let name = parts.next().unwrap_or_default();
        assert!(
            ELEMENTS.contains(&name),
            "{what}: the rendered HTML holds a <{name}> element:\n{html}"
        );
        for attribute in parts {
            assert!(
                ATTRIBUTES.contains(&attribute),
                "{what}: the rendered HTML holds the attribute {attribute} on <{name}>:\n{html}"
            );
        }
    }
    let opened = markdown.matches("<details>").count();
    assert_eq!(
        html.matches("<details>").count(),
        opened,
        "{what}: <details> blocks"
    );
    assert_eq!(
        html.matches("</details>").count(),
        opened,
        "{what}: a value closed or opened a <details> block:\n{html}"
    );
    // GitHub makes mentions in text only, never inside code.
    let mut text = String::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<code") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .split_once("</code>")
            .map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    assert!(
        !text.contains("@octocat"),
        "{what}: a mention survived:\n{html}"
    );
    assert!(markdown.len() <= 65_536, "{what}: {} bytes", markdown.len());
}

#[test]
fn the_pull_request_flow_end_to_end() {
    let test = review_test();
    // The pull request: plan with a receipt, and the check passes.
    let planned = test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    hides_all(&test.read("m.receipt.json"), "the receipt");
    let receipt: serde_json::Value =
        serde_json::from_str(&test.read("m.receipt.json")).expect("the receipt is JSON");
    let digest = receipt["digest"].as_str().expect("digest").to_owned();
    assert_eq!(digest, test.digest("m.state.db"));
    assert_eq!(receipt["format_version"], "1.0");
    assert_eq!(receipt["space"], "spa_test");
    assert_eq!(receipt["manifest"]["path"], "m.yaml");
    assert_eq!(receipt["counts"]["by_action"]["delete"], 11, "{receipt}");
    assert_eq!(
        receipt["counts"]["by_type"]["phone"]["delete"], 4,
        "{receipt}"
    );
    assert!(
        receipt["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        planned.stderr.contains("Wrote receipt"),
        "{}",
        planned.stderr
    );
    test.idprune(["plan", "m.yaml", "--check-receipt", "-o", "check.state.db"])
        .run()
        .ok()
        .stderr_has("matches the fresh plan");

    // Someone else removes one of the identifiers meanwhile: the profiles drift.
    test.write(
        "drift.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: another clean-up (OPS-2)\nremove:\n  - profile: user_id:uid-secret-2\n    identifier: email:jane2@import.invalid\n",
    );
    test.idprune(["plan", "drift.yaml"]).run().ok();
    test.idprune([
        "apply",
        "drift.yaml",
        "--approve",
        &test.digest("drift.state.db"),
    ])
    .run()
    .ok();
    let drifted = test.emu().stats().deleted_set();
    assert_eq!(drifted.len(), 1);

    // The check fails with exit 4 and the counts side by side.
    let check = test
        .idprune(["plan", "m.yaml", "--check-receipt", "-o", "check.state.db"])
        .run()
        .code(4);
    assert!(
        check.stderr.contains("no longer matches"),
        "{}",
        check.stderr
    );
    let delete_row = check
        .stderr
        .lines()
        .find(|l| l.get(2..).is_some_and(|r| r.starts_with("delete ")))
        .unwrap_or_else(|| panic!("no delete row:\n{}", check.stderr));
    assert!(
        delete_row.starts_with('*') && delete_row.contains("11") && delete_row.contains("10"),
        "{delete_row}"
    );
    hides_all(&check.stderr, "check-receipt's refusal");

    // Merged anyway: apply from the manifest and the committed receipt refuses, sends nothing,
    // and names the counts and the item that changed (the approved state file is at hand).
    let refused = test
        .idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
        .run()
        .code(4);
    assert_eq!(
        test.emu().stats().deleted_set(),
        drifted,
        "a refused apply sent deletes"
    );
    assert!(
        refused.stderr.contains("not the approved"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Items that changed (1 of them"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("delete email:j•••@import.invalid"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("absent email:j•••@import.invalid"),
        "{}",
        refused.stderr
    );
    hides_all(&refused.all(), "apply's refusal");
    assert_eq!(
        test.digest("m.state.db"),
        digest,
        "the approved state file is kept"
    );
    let by_approve = test
        .idprune(["apply", "m.yaml", "--approve", &digest])
        .run()
        .code(4);
    assert!(
        by_approve.stderr.contains("Counts, approved"),
        "{}",
        by_approve.stderr
    );

    // Re-plan, a new receipt, and the merge job applies exactly that plan.
    test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    std::fs::remove_file(test.path("m.state.db")).expect("the merge job has no state file");
    let fresh_digest = serde_json::from_str::<serde_json::Value>(&test.read("m.receipt.json"))
        .expect("receipt")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_ne!(fresh_digest, digest);
    let applied = test
        .idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
        .run()
        .ok();
    hides_all(&applied.stdout, "apply's output");
    assert_eq!(test.digest("m.state.db"), fresh_digest);
    let planned: BTreeSet<Deleted> = test.planned_deletes("m.state.db");
    assert_eq!(planned.len(), 10);
    let mut expected = drifted.clone();
    expected.extend(planned);
    assert_eq!(
        test.emu().stats().deleted_set(),
        expected,
        "exactly the plan"
    );

    // After apply the view says what was applied.
    let md = test
        .idprune(["show", "m.state.db", "--format", "markdown"])
        .run()
        .ok();
    assert!(md.stdout.contains("**Applied.**"), "{}", md.stdout);
    assert!(!md.stdout.contains("| Approve |"), "{}", md.stdout);
    // Applying again resumes the finished journal: nothing more is sent.
    test.idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deleted_set(), expected);
}

#[test]
fn nothing_personal_or_hostile_reaches_a_pull_request() {
    let test = review_test();
    let plan = test
        .idprune(["plan", "m.yaml", "--format", "markdown", "--receipt"])
        .run()
        .ok();
    hides_all(&plan.stdout, "plan --format markdown");
    safe_on_github(&plan.stdout, "plan --format markdown");
    assert!(
        plan.stdout.contains("j•••@import.invalid"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("profiles lose one email at &#64;\u{200D}import\\.invalid and one phone"),
        "shapes are grouped:\n{}",
        plan.stdout
    );
    let json = test
        .idprune(["show", "m.state.db", "--format", "json"])
        .run()
        .ok();
    hides_all(&json.stdout, "show --format json");
    hides_all(&test.read("m.receipt.json"), "the receipt");
    let full = test
        .idprune([
            "show",
            "m.state.db",
            "--format",
            "markdown",
            "--redact=full",
        ])
        .run()
        .ok();
    hides_all(&full.stdout, "--redact=full");
    assert!(
        !full.stdout.contains("•••@import.invalid"),
        "{}",
        full.stdout
    );
    safe_on_github(&full.stdout, "--redact=full");
    let plain = test.idprune(["show", "m.state.db", "--redact"]).run().ok();
    hides_all(&plain.stdout, "show --redact");

    // Revealed values are shown, and still cannot escape.
    let revealed = test
        .idprune(["show", "m.state.db", "--format", "markdown", "--reveal"])
        .run()
        .ok();
    assert!(
        revealed.stdout.contains("jane1@import.invalid"),
        "--reveal reveals"
    );
    safe_on_github(&revealed.stdout, "--reveal");

    // The same key gives the same fingerprints in every job.
    let with_key = |state: &str| {
        test.idprune(["show", state, "--format", "markdown"])
            .env(
                "IDPRUNE_FINGERPRINT_KEY",
                "a shared key for this repository",
            )
            .run()
            .ok()
            .stdout
    };
    test.idprune(["plan", "m.yaml", "-o", "other.state.db"])
        .run()
        .ok();
    let fingerprints = |md: &str| -> BTreeSet<String> {
        md.split('~')
            .skip(1)
            .map(|s| s.chars().take(8).collect())
            .collect()
    };
    assert_eq!(
        fingerprints(&with_key("m.state.db")),
        fingerprints(&with_key("other.state.db"))
    );
    let json: serde_json::Value = serde_json::from_str(
        &test
            .idprune(["show", "m.state.db", "--format", "json"])
            .env(
                "IDPRUNE_FINGERPRINT_KEY",
                "a shared key for this repository",
            )
            .run()
            .ok()
            .stdout,
    )
    .expect("json");
    let first = json["items"][0]["fingerprint"]
        .as_str()
        .expect("a fingerprint");
    assert!(
        with_key("m.state.db").contains(&format!("~{first}")),
        "JSON and markdown fingerprints agree"
    );
    assert_ne!(
        fingerprints(&with_key("m.state.db")),
        fingerprints(
            &test
                .idprune(["show", "m.state.db", "--format", "markdown"])
                .run()
                .ok()
                .stdout
        ),
        "without the shared key each state file uses its own"
    );
}

#[test]
fn expiry_and_host_in_show_and_status() {
    let test = review_test();
    test.idprune(["plan", "m.yaml"]).run().ok();
    let text = test.idprune(["show", "m.state.db"]).run().ok().stdout;
    let status = test.idprune(["status", "m.state.db"]).run().ok().stdout;
    let url = test.emu().url();
    for (what, out) in [("show", &text), ("status", &status)] {
        assert!(out.contains("Expires: "), "{what}: {out}");
        assert!(out.contains(&url), "{what}: {out}");
    }
    for args in [["show", "m.state.db"], ["status", "m.state.db"]] {
        let json: serde_json::Value = serde_json::from_str(
            &test
                .idprune([args[0], args[1], "--format", "json"])
                .run()
                .ok()
                .stdout,
        )
        .expect("json");
        assert!(
            json["expires_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{json}"
        );
        assert_eq!(json["api"], url.as_str(), "{json}");
    }
}

#[test]
fn a_plan_whose_lookups_mostly_miss_exits_1() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: wrong space (OPS-3)\nremove:\n  - profile: user_id:u_404\n    identifier: email:a@x.com\n  - profile: user_id:u_405\n    identifier: email:b@x.com\n  - profile: user_id:u_1\n    identifier: email:a@x.com\n",
    );
    let out = test.idprune(["plan", "m.yaml", "--receipt"]).run().code(1);
    assert!(
        out.stderr
            .contains("2 of 3 profile lookups found no profile"),
        "{}",
        out.stderr
    );
    assert!(
        !test.path("m.receipt.json").exists(),
        "no receipt for a suspicious plan"
    );
    let md = test
        .idprune(["show", "m.state.db", "--format", "markdown"])
        .run()
        .ok();
    assert!(md.stdout.contains("[!WARNING]"), "{}", md.stdout);
    test.idprune(["plan", "m.yaml", "--allow-unresolved", "--receipt"])
        .run()
        .ok();
    assert!(test.path("m.receipt.json").exists());
}

#[test]
fn apply_of_a_manifest_needs_an_approval_and_plan_warns_about_committable_state() {
    let test = review_test();
    let out = test.idprune(["apply", "m.yaml"]).run().code(4);
    assert!(out.stderr.contains("--receipt FILE"), "{}", out.stderr);
    assert_eq!(test.emu().stats().requests, 0, "nothing was read or sent");
    // A git work tree that does not ignore state files gets a warning; one that does, none.
    let init = crate::harness::output_bounded(
        std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(test.path(""))
            .stderr(std::process::Stdio::piped()),
        None,
    );
    assert!(
        init.status.success(),
        "git init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let warned = test.idprune(["plan", "m.yaml"]).run().ok();
    assert!(
        warned.stderr.contains("git would not ignore it"),
        "{}",
        warned.stderr
    );
    test.write(".gitignore", "*.state.db*\n");
    let quiet = test.idprune(["plan", "m.yaml"]).run().ok();
    assert!(
        !quiet.stderr.contains("git would not ignore"),
        "{}",
        quiet.stderr
    );
}

#[test]
#[should_panic(expected = "<img> element")]
fn the_gfm_check_catches_raw_html() {
    safe_on_github("hello <img src=x> world\n", "a raw image");
}

#[test]
#[should_panic(expected = "a mention survived")]
fn the_gfm_check_catches_a_mention() {
    safe_on_github("hello @octocat\n", "a mention");
}

#[test]
fn an_expired_receipt_is_refused() {
    let test = review_test();
    test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    let mut receipt: serde_json::Value =
        serde_json::from_str(&test.read("m.receipt.json")).expect("receipt");
    receipt["expires_at"] = "2020-01-01T00:00:00Z".into();
    test.write("m.receipt.json", &receipt.to_string());
    test.idprune(["plan", "m.yaml", "--check-receipt"])
        .run()
        .code(4)
        .stderr_has("expired at 2020-01-01T00:00:00Z");
    std::fs::remove_file(test.path("m.state.db")).expect("removing the state file");
    let before = test.emu().stats().requests;
    test.idprune(["apply", "m.yaml", "--receipt", "m.receipt.json"])
        .run()
        .code(4)
        .stderr_has("expired");
    assert_eq!(
        test.emu().stats().requests,
        before,
        "nothing was read or sent"
    );
}

#[test]
fn a_receipt_also_approves_a_state_file_and_a_foreign_journal_is_kept() {
    let test = review_test();
    test.idprune(["plan", "m.yaml", "--receipt"]).run().ok();
    // `apply STATE --receipt FILE`: the receipt's digest is the approval.
    test.idprune(["apply", "m.state.db", "--receipt", "m.receipt.json"])
        .run()
        .ok();
    let applied = test.emu().stats().deleted_set();
    assert_eq!(applied, test.planned_deletes("m.state.db"));
    // The state file now holds a journal; a manifest approved by another digest must not
    // replace it.
    let other = "sha256:".to_owned() + &"ab".repeat(32);
    test.idprune(["apply", "m.yaml", "--approve", &other])
        .run()
        .code(4)
        .stderr_has("holds the journal of another plan");
    assert_eq!(test.emu().stats().deleted_set(), applied);
    let runs: i64 = test
        .db("m.state.db")
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("counting runs");
    assert_eq!(runs, 1, "the journal of the first run is kept as it was");
}
