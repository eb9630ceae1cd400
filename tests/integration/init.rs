//! `init --from-csv`: the manifest it writes pins the CSV, is refused by `validate` until the
//! placeholders are filled in, then validates and plans against the emulator.

use crate::harness::{Test, seed};

const CSV: &str = "\u{feff}segment_id,email,note\r\nuse_1,bad1@import.invalid,x\r\nuse_2,\"bad2@import.invalid\",y\r\n";

#[test]
fn init_writes_a_pinned_manifest_that_validates_once_filled_in_and_plans() {
    let test = Test::new(&seed(&[
        (
            "use_1",
            &[
                "user_id:u_1",
                "email:bad1@import.invalid",
                "email:ok1@x.com",
            ],
        ),
        ("use_2", &["user_id:u_2", "email:bad2@import.invalid"]),
    ]));
    std::fs::create_dir_all(test.path("plans")).expect("mkdir");
    test.write("plans/bad.csv", CSV);
    let out = test
        .idprune([
            "init",
            "--from-csv",
            "plans/bad.csv",
            "--profile-column",
            "segment_id",
            "--remove-column",
            "email",
            "-o",
            "plans/cleanup.yaml",
        ])
        .run()
        .ok();
    assert!(out.stdout.contains("2 rows"), "{}", out.stdout);
    let text = std::fs::read_to_string(test.path("plans/cleanup.yaml")).expect("manifest");
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(CSV.as_bytes()))
    };
    assert!(text.contains(&format!("sha256: {sha}")), "{text}");
    assert!(text.contains("csv: \"bad.csv\""), "{text}");

    // The placeholders are refused, each by name.
    let refused = test
        .idprune(["validate", "plans/cleanup.yaml"])
        .run()
        .code(1);
    assert!(
        refused.stderr.contains("`reason` is still the placeholder"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("`space` is still the placeholder"),
        "{}",
        refused.stderr
    );

    // Again with --space (over the old one: --force); fill in the reason; it validates and plans.
    test.idprune([
        "init",
        "--from-csv",
        "plans/bad.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "email",
        "-o",
        "plans/cleanup.yaml",
        "--space",
        "spa_test",
    ])
    .run()
    .code(1)
    .stderr_has("already exists");
    test.idprune([
        "init",
        "--from-csv",
        "plans/bad.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "email",
        "-o",
        "plans/cleanup.yaml",
        "--space",
        "spa_test",
        "--force",
    ])
    .run()
    .ok();
    let text = std::fs::read_to_string(test.path("plans/cleanup.yaml")).expect("manifest");
    let reason_line = text
        .lines()
        .find(|l| l.starts_with("reason:"))
        .expect("a reason line");
    let filled = text.replace(
        reason_line,
        "reason: \"bad import of 2026-11-02 (OPS-431)\"",
    );
    test.write("plans/cleanup.yaml", &filled);
    test.idprune(["validate", "plans/cleanup.yaml"]).run().ok();
    test.idprune(["plan", "plans/cleanup.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    let show = test.show_json("plans/cleanup.state.db");
    assert_eq!(show["summary"]["by_action"]["delete"], 2, "{show}");

    // The pin holds: a changed CSV is refused.
    test.write(
        "plans/bad.csv",
        &format!("{CSV}use_3,bad3@import.invalid,z\r\n"),
    );
    let changed = test.idprune(["validate", "plans/cleanup.yaml"]).run();
    assert_eq!(changed.code, Some(1), "{}", changed.all());
    assert!(changed.all().contains("sha256"), "{}", changed.all());
}

#[test]
fn init_refuses_unknown_columns_csvs_outside_the_manifest_dir_and_empty_csvs() {
    let test = Test::offline();
    std::fs::create_dir_all(test.path("plans")).expect("mkdir");
    test.write("plans/bad.csv", CSV);
    test.idprune([
        "init",
        "--from-csv",
        "plans/bad.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "mail",
    ])
    .run()
    .code(1)
    .stderr_has("--remove-column `mail` is not a column");
    test.write("outside.csv", CSV);
    test.idprune([
        "init",
        "--from-csv",
        "outside.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "email",
        "-o",
        "plans/x.yaml",
    ])
    .run()
    .code(1)
    .stderr_has("outside");
    test.write("plans/empty.csv", "segment_id,email\n");
    test.idprune([
        "init",
        "--from-csv",
        "plans/empty.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "email",
    ])
    .run()
    .code(1)
    .stderr_has("no rows");
    assert!(!test.path("plans/empty.yaml").exists());
    // Default output: beside the CSV.
    test.idprune([
        "init",
        "--from-csv",
        "plans/bad.csv",
        "--profile-column",
        "segment_id",
        "--remove-column",
        "email",
    ])
    .run()
    .ok();
    assert!(test.path("plans/bad.yaml").exists());
}

/// A Snowflake export names its columns upper-case (`SEGMENT_ID`, `EMAIL`).
const UPPER: &str = "SEGMENT_ID,EMAIL\nuse_1,bad1@import.invalid\nuse_2,bad2@import.invalid\n";

/// Writes the manifest of `init` with the reason filled in.
fn init_filled(test: &Test, profile: &str, remove: &str, out: &str) {
    test.idprune([
        "init",
        "--from-csv",
        "plans/upper.csv",
        "--profile-column",
        profile,
        "--remove-column",
        remove,
        "-o",
        out,
        "--space",
        "spa_test",
    ])
    .run()
    .ok();
    let text = std::fs::read_to_string(test.path(out)).expect("manifest");
    let reason = text
        .lines()
        .find(|l| l.starts_with("reason:"))
        .expect("reason");
    test.write(
        out,
        &text.replace(reason, "reason: \"upper-case export (OPS-7)\""),
    );
}

#[test]
fn upper_case_headers_match_the_lower_case_names_and_upper_case_types_are_named_as_the_cause() {
    let test = Test::new(&seed(&[
        ("use_1", &["user_id:u_1", "email:bad1@import.invalid"]),
        ("use_2", &["user_id:u_2", "email:bad2@import.invalid"]),
    ]));
    std::fs::create_dir_all(test.path("plans")).expect("mkdir");
    test.write("plans/upper.csv", UPPER);

    // The lower-case names match the upper-case headers: no warning, both planned.
    init_filled(&test, "segment_id", "email", "plans/lower.yaml");
    let validated = test.idprune(["validate", "plans/lower.yaml"]).run().ok();
    assert!(
        !validated.all().to_lowercase().contains("warning"),
        "{}",
        validated.all()
    );
    test.idprune(["plan", "plans/lower.yaml"]).run().ok();
    let show = test.show_json("plans/lower.state.db");
    assert_eq!(show["summary"]["by_action"]["delete"], 2, "{show}");

    // The upper-case names as types: the type warning once (not once a row), and the plan
    // names the upper-case lookup type as the cause, not the space.
    init_filled(&test, "SEGMENT_ID", "EMAIL", "plans/upper.yaml");
    let validated = test.idprune(["validate", "plans/upper.yaml"]).run().ok();
    assert_eq!(
        validated.all().matches("identifier type `EMAIL`").count(),
        1,
        "{}",
        validated.all()
    );
    let planned = test.idprune(["plan", "plans/upper.yaml"]).run().code(1);
    assert!(
        planned.stderr.contains("upper-case lookup type"),
        "{}",
        planned.stderr
    );
    assert!(
        !planned.stderr.contains("wrong space"),
        "{}",
        planned.stderr
    );
    let md = test
        .idprune(["show", "plans/upper.state.db", "--format", "markdown"])
        .run()
        .ok();
    assert!(
        md.stdout.contains("upper-case lookup type"),
        "{}",
        md.stdout
    );
}

#[test]
fn init_force_does_not_write_through_a_symlink_and_refuses_a_fifo_csv() {
    let test = Test::offline();
    std::fs::create_dir_all(test.path("plans")).expect("mkdir");
    test.write("plans/bad.csv", CSV);
    test.write("victim.txt", "keep me\n");
    std::os::unix::fs::symlink("../victim.txt", test.path("plans/link.yaml")).expect("symlink");
    let init = |csv: &str, out: &str| {
        test.idprune([
            "init",
            "--from-csv",
            csv,
            "--profile-column",
            "segment_id",
            "--remove-column",
            "email",
            "-o",
            out,
            "--force",
        ])
        .run()
    };
    init("plans/bad.csv", "plans/link.yaml")
        .code(1)
        .stderr_has("`plans/link.yaml` is a symbolic link");
    assert_eq!(
        test.read("victim.txt"),
        "keep me\n",
        "the link's target is untouched"
    );
    // A FIFO as the CSV is named and refused, not waited on.
    let fifo = test.path("plans/pipe.csv");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    init("plans/pipe.csv", "plans/p.yaml")
        .code(1)
        .stderr_has("is not a regular file (a named pipe)");
}

/// A discovery export's `data_as_of` column becomes the source's `data_as_of`: the oldest
/// time, offsets read, written in RFC 3339; a cell that is not a time is refused with its line.
#[test]
fn a_data_as_of_column_becomes_the_sources_oldest_time_or_is_refused_with_its_line() {
    let test = Test::offline();
    test.write(
        "export.csv",
        "USER_ID,EMAIL,DATA_AS_OF\nu_1,a@import.invalid,2026-12-01 10:00:00\nu_2,b@import.invalid,2026-12-01 01:59:00 -0800\n",
    );
    let out = test
        .idprune([
            "init",
            "--from-csv",
            "export.csv",
            "--profile-column",
            "user_id",
            "--remove-column",
            "email",
            "-o",
            "m.yaml",
        ])
        .run()
        .ok();
    assert!(
        out.stdout
            .contains("The data is as of 2026-12-01T09:59:00Z"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(test.path("m.yaml")).expect("manifest");
    assert!(
        text.contains("    data_as_of: \"2026-12-01T09:59:00Z\"\n"),
        "{text}"
    );
    test.write(
        "bad.csv",
        "user_id,email,data_as_of\nu_1,a@import.invalid,2026-12-01 10:00:00\nu_2,b@import.invalid,last tuesday\n",
    );
    test.idprune([
        "init",
        "--from-csv",
        "bad.csv",
        "--profile-column",
        "user_id",
        "--remove-column",
        "email",
        "-o",
        "b.yaml",
    ])
    .run()
    .code(1)
    .stderr_has("`bad.csv` line 3: `last tuesday` in the `data_as_of` column is not a time");
    assert!(!test.path("b.yaml").exists(), "no manifest is written");
}
