//! What people and pull requests see: snapshots of the human views of a small fixed plan, and
//! redaction of every identifier value in markdown and JSON unless `--reveal`.

use crate::harness::{Output, Test, seed};
use crate::plan_apply::{MIXED_CSV, MIXED_MANIFEST, mixed_seed, mixed_test};

const SMALL_MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "snapshot: a small fixed plan (OPS-1)"
remove:
  - profile: user_id:u_1
    identifier: email:wrong@example.com
  - profile: use_2
    identifiers: [email:old@example.com, anonymous_id:7c1f]
  - identifier: email:placeholder@acme.com
  - profile: user_id:u_1
    identifier: email:never@example.com
  - profile: user_id:u_4
    identifier: user_id:u_4
  - profile: user_id:u_404
    identifier: email:ghost@example.com
"#;

fn small_test() -> Test {
    let test = Test::new(&seed(&[
        (
            "use_1",
            &[
                "user_id:u_1",
                "email:wrong@example.com",
                "email:right@example.com",
            ],
        ),
        (
            "use_2",
            &[
                "user_id:u_2",
                "email:old@example.com",
                "anonymous_id:7c1f",
                "anonymous_id:a-2",
            ],
        ),
        ("use_3", &["user_id:u_3", "email:placeholder@acme.com"]),
        ("use_4", &["user_id:u_4", "email:four@example.com"]),
    ]));
    test.write("small.yaml", SMALL_MANIFEST);
    test
}

/// Replaces what varies between runs: the emulator's port (which is part of the digest), the
/// digest itself and the temporary directory.
macro_rules! snapshot {
    ($test:expr, $name:expr, $value:expr) => {{
        let dir = $test.path("").display().to_string();
        insta::with_settings!({
            filters => vec![
                (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
                (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
                (dir.as_str(), "[DIR]/"),
                (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
                (r"~[0-9a-f]{8}", "~[FP]"),
                (r"127\\\.0\\\.0\\\.1\\:\d+", "127.0.0.1:[PORT]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $value);
        });
    }};
}

#[test]
fn show_text_and_markdown_snapshots() {
    let test = small_test();
    let plan = test
        .idprune(["plan", "small.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    let text = test.idprune(["show", "small.state.db"]).run().ok();
    assert_eq!(plan.stdout, text.stdout, "plan prints what show prints");
    snapshot!(test, "show_text", text.stdout);
    let redacted = test
        .idprune(["show", "small.state.db", "--redact"])
        .run()
        .ok();
    snapshot!(test, "show_text_redacted", redacted.stdout);
    let markdown = test
        .idprune(["show", "small.state.db", "--format", "markdown"])
        .run()
        .ok();
    snapshot!(test, "show_markdown", markdown.stdout);

    let digest = test.digest("small.state.db");
    test.idprune(["apply", "small.state.db", "--approve", &digest])
        .run()
        .ok();
    let after = test.idprune(["show", "small.state.db"]).run().ok();
    snapshot!(test, "show_text_after_apply", after.stdout);
}

/// Every value of the mixed test's seed, manifest and CSV: identifier values, lookups,
/// `user_id`s and segment ids.
fn secret_values() -> Vec<String> {
    let mut values: Vec<String> = mixed_seed()["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .flat_map(|p| {
            let sid = p["segment_id"].as_str().expect("segment id").to_owned();
            let ids = p["identifiers"]
                .as_array()
                .expect("identifiers")
                .iter()
                .map(|i| {
                    let text = i.as_str().expect("text identifiers");
                    text.split_once(':').expect("TYPE:VALUE").1.to_owned()
                })
                .collect::<Vec<_>>();
            std::iter::once(sid).chain(ids)
        })
        .collect();
    for extra in [
        "never@x.com",
        "nobody@x.com",
        "u_404",
        "ghost@x.com",
        "not-there@import.invalid",
        "use_missing",
        "bad-missing@import.invalid",
    ] {
        values.push(extra.to_owned());
    }
    for v in &values {
        assert!(
            MIXED_MANIFEST.contains(v.as_str())
                || MIXED_CSV.contains(v.as_str())
                || mixed_seed().to_string().contains(v.as_str()),
            "{v} is not a value of the test"
        );
    }
    values
}

#[track_caller]
fn hides_all(out: &Output, what: &str) {
    for value in secret_values() {
        assert!(
            !out.stdout.contains(&value),
            "{what} shows {value:?}\n{}",
            out.stdout
        );
    }
}

/// The values the manifest and CSV name (what `--reveal` must show).
fn manifest_values() -> Vec<&'static str> {
    vec![
        "wrong1@x.com",
        "old2@x.com",
        "anon-2",
        "placeholder@acme.com",
        "u_7b",
        "never@x.com",
        "nobody@x.com",
        "anon6@x.com",
        "anon-only-6",
        "u_404",
        "ghost@x.com",
        "use_a2",
        "bad-c1@import.invalid",
        "use_missing",
    ]
}

#[test]
fn markdown_and_json_hide_every_value_unless_revealed() {
    let test = mixed_test();
    let plan_md = test
        .idprune(["plan", "m.yaml", "--format", "markdown"])
        .run()
        .ok();
    hides_all(&plan_md, "plan --format markdown");
    let digest = test.digest("m.state.db");
    for format in ["markdown", "json"] {
        let out = test
            .idprune(["show", "m.state.db", "--format", format])
            .run()
            .ok();
        hides_all(&out, &format!("show --format {format}"));
        let revealed = test
            .idprune(["show", "m.state.db", "--format", format, "--reveal"])
            .run()
            .ok();
        for value in manifest_values() {
            assert!(
                revealed.stdout.contains(value),
                "show --format {format} --reveal lacks {value:?}"
            );
        }
    }
    let text = test.idprune(["show", "m.state.db", "--redact"]).run().ok();
    hides_all(&text, "show --redact");

    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    let status = test
        .idprune(["status", "m.state.db", "--format", "json"])
        .run()
        .ok();
    hides_all(&status, "status --format json");
    let status = test
        .idprune(["status", "m.state.db", "--format", "json", "--reveal"])
        .run()
        .ok();
    assert!(status.stdout.contains("wrong1@x.com"), "{}", status.stdout);
}

#[test]
fn control_characters_in_values_are_refused_or_escaped() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: x\nremove:\n  - profile: \"user_id:u_1\\e[31m\"\n    identifier: email:a@x.com\n",
    );
    let out = test.idprune(["plan", "m.yaml"]).run().code(1);
    assert!(
        !out.all().contains('\u{1b}'),
        "a raw ESC reached the terminal"
    );
    assert_eq!(test.emu().stats().requests, 0);
}

#[test]
fn plan_json_hides_every_value_and_so_do_its_stderr_warnings() {
    let test = mixed_test();
    // Entries that warn: an exact duplicate, a blocked `group_id`.
    let manifest = MIXED_MANIFEST.replace(
        "  - identifier: email:nobody@x.com\n",
        "  - identifier: email:nobody@x.com\n  - identifier: email:nobody@x.com\n",
    );
    test.write("w.yaml", &manifest);
    let json = test
        .idprune(["plan", "w.yaml", "-o", "w.state.db", "--format", "json"])
        .run()
        .ok();
    serde_json::from_str::<serde_json::Value>(&json.stdout).expect("plan --format json is JSON");
    hides_all(&json, "plan --format json");
    assert!(json.stderr.contains("warning:"), "{}", json.stderr);
    for value in secret_values() {
        assert!(
            !json.stderr.contains(&value),
            "plan --format json: stderr shows {value:?}\n{}",
            json.stderr
        );
    }
}

/// A lookup value that draws the upper-case warning, which quotes the lookup.
const UPPER: &str = "Upper-Lookup@x.com";

#[test]
fn stderr_warnings_hide_values_when_redacted() {
    let test = mixed_test();
    let manifest = MIXED_MANIFEST.replace(
        "  - identifier: email:nobody@x.com\n",
        &format!("  - identifier: email:nobody@x.com\n  - profile: email:{UPPER}\n    identifier: email:upper-target@x.com\n"),
    );
    test.write("w.yaml", &manifest);
    for args in [
        &["--redact"][..],
        &["--format", "json"][..],
        &["--format", "markdown"][..],
    ] {
        let out = test
            .idprune(["plan", "w.yaml", "-o", "w.state.db", "--force"])
            .args(args)
            .run()
            .ok();
        assert!(
            out.stderr.contains("lowercase"),
            "the lookup warns\n{}",
            out.stderr
        );
        for value in [UPPER, "upper-target@x.com"] {
            assert!(
                !out.all().contains(value),
                "plan {args:?} shows {value:?}\n{}",
                out.all()
            );
        }
    }
    // Text without --redact shows values, warnings included.
    let out = test
        .idprune(["plan", "w.yaml", "-o", "w.state.db", "--force"])
        .run()
        .ok();
    assert!(out.stderr.contains(UPPER), "{}", out.stderr);
}

#[test]
fn markdown_stays_under_its_budget_and_says_what_it_left_out() {
    const PROFILES: usize = 1_000;
    const ABSENT: usize = 215;
    let test = crate::kills::fleet(PROFILES, &[]);
    let mut csv = String::from("email\n");
    for k in 0..ABSENT {
        csv.push_str(&format!("nowhere-{k}@x.com\n"));
    }
    test.write("none.csv", &csv);
    test.write(
        "cap.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: cap\nsources:\n  - csv: bad.csv\n    profile_column: user_id\n    remove_columns: [email]\n  - csv: none.csv\n    remove_columns: [email]\n",
    );
    let out = test
        .idprune(["plan", "cap.yaml", "--rate", "0", "--format", "markdown"])
        .run()
        .ok();
    let md = &out.stdout;
    assert!(
        md.len() <= idprune::markdown::BUDGET,
        "{} bytes, over the budget of {}",
        md.len(),
        idprune::markdown::BUDGET
    );
    // The lines of the fenced block after `start` (empty when the block is not there).
    let block = |start: &str| -> Vec<&str> {
        let Some(from) = md.find(start) else {
            return Vec::new();
        };
        md[from..]
            .lines()
            .skip_while(|l| !l.starts_with("```"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .collect()
    };
    let number = |text: &str| -> usize { text.replace(',', "").parse().expect("a count") };
    // "the diffs of N of 1,000 profiles": what is shown and what is left out add up.
    let shown = block("Per-profile changes")
        .iter()
        .filter(|l| l.starts_with("# profile "))
        .count();
    assert!(
        shown > 0 && shown < PROFILES,
        "{shown} profiles shown\n{md}"
    );
    let left_out = md
        .split("the diffs of ")
        .nth(1)
        .and_then(|rest| rest.split(" of ").next())
        .map(number)
        .unwrap_or_else(|| panic!("the view does not say which diffs it left out\n{md}"));
    assert_eq!(shown + left_out, PROFILES, "{md}");
    assert!(md.contains("Left out to stay under GitHub's"), "{md}");
    assert!(
        md.contains("idprune show"),
        "it says where the full plan is\n{md}"
    );
    // The items nothing is sent for come before the diffs, each a row of the exceptions
    // table, or counted as left out ("… and N more not listed here").
    let diffs = md.find("Per-profile changes").expect("the diffs block");
    let listed = md[..diffs]
        .lines()
        .filter(|l| {
            l.strip_prefix("| ")
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    let unlisted: usize = md
        .lines()
        .filter_map(|l| l.strip_prefix("… and "))
        .filter_map(|rest| {
            rest.strip_suffix(" more not listed here, to stay under the size limit.")
        })
        .map(number)
        .sum();
    assert_eq!(listed + unlisted, ABSENT, "{md}");
    // 215 exception rows fit beside 1,000 diffs: the cap took its room from the diffs.
    assert_eq!(unlisted, 0, "every exception is listed:\n{md}");
    assert!(md.contains(&format!("**{ABSENT} absent**")), "{md}");
    // The summary still counts everything.
    assert!(md.contains("1,000 to delete"), "{md}");
}
