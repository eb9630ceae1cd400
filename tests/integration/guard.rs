//! `guard`: an Event Archive export generated in Segment's S3 layout (gzipped, several gzip
//! members, plain `.jsonl`, every reference kind, malformed lines) is scanned against an
//! applied plan; the report names exactly the referencing events and the filtered copy holds
//! exactly the rest, with the same layout and compression.

use std::io::{Read as _, Write as _};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::harness::{Test, seed};

const MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "integration test: guard"
remove:
  - profile: user_id:u_1
    identifier: email:wrong1@x.com
  - profile: user_id:u_2
    identifier: anonymous_id:anon-2
  - profile: user_id:u_7
    identifier: user_id:u_7b
  - profile: user_id:u_3
    identifier: phone:+15550100
"#;

/// Lines that reference a removed identifier, each with its messageId.
const HITS: &[&str] = &[
    r#"{"type":"identify","messageId":"hit-user","userId":"u_7b","traits":{"name":"x"}}"#,
    r#"{"type":"track","messageId":"hit-anon","anonymousId":"ANON-2","event":"e"}"#,
    r#"{"type":"identify","messageId":"hit-traits","userId":"u_1","traits":{"email":"Wrong1@X.com"}}"#,
    r#"{"type":"track","messageId":"hit-ctx","userId":"u_1","context":{"traits":{"email":"wrong1@x.com"}}}"#,
    r#"{"type":"identify","messageId":"hit-phone","userId":"u_3","traits":{"phone":"+15550100"}}"#,
    r#"{"type":"track","messageId":"hit-ext","context":{"externalIds":[{"id":"+15550100","type":"phone","collection":"users","encoding":"none"}]}}"#,
    r#"{"type":"identify","messageId":"hit-escaped","traits":{"email":"wrong1\u0040x.com"}}"#,
];

/// Lines that reference nothing removed (near misses included).
const CLEAN: &[&str] = &[
    r#"{"type":"identify","messageId":"ok-1","userId":"u_1","traits":{"email":"keep1@x.com"}}"#,
    r#"{"type":"track","messageId":"ok-2","userId":"u_7","properties":{"email":"wrong1@x.com"}}"#,
    r#"{"type":"track","messageId":"ok-3","anonymousId":"anon-22"}"#,
    r#"{"type":"page","messageId":"ok-4","context":{"externalIds":[{"id":"wrong1@x.com","type":"phone"}]}}"#,
];

/// Lines that are not JSON objects.
const MALFORMED: &[&str] = &[
    r#"{"type":"track","messageId":"cut","userId":"u_7b""#,
    "garbage",
];

fn gzip_members(members: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for m in members {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(m.as_bytes()).expect("gzip");
        bytes.extend(enc.finish().expect("gzip"));
    }
    bytes
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(path).expect("opening a copy"))
        .read_to_string(&mut text)
        .expect("the copy is gzip");
    text
}

fn lines(ls: &[&str]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

/// Plans and applies the manifest, then writes the archive under `export/`.
fn guarded_test() -> Test {
    let test = Test::new(&seed(&[
        (
            "use_1",
            &["user_id:u_1", "email:wrong1@x.com", "email:keep1@x.com"],
        ),
        ("use_2", &["user_id:u_2", "anonymous_id:anon-2"]),
        ("use_3", &["user_id:u_3", "phone:+15550100"]),
        ("use_7", &["user_id:u_7", "user_id:u_7b"]),
    ]));
    test.write("m.yaml", MANIFEST);
    test.idprune(["plan", "m.yaml"]).run().ok();
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();

    let day1 = test.path("export/segment-logs/src_web/1764547200000");
    let day2 = test.path("export/segment-logs/src_api/1764633600000");
    std::fs::create_dir_all(&day1).expect("mkdir");
    std::fs::create_dir_all(&day2).expect("mkdir");
    // File 1: two gzip members, hits and clean lines interleaved, a malformed line.
    let member1 = format!(
        "{}{}{}",
        lines(&HITS[..3]),
        lines(&CLEAN[..2]),
        lines(&MALFORMED[..1])
    );
    let member2 = format!("{}{}", lines(&HITS[3..5]), lines(&CLEAN[2..3]));
    std::fs::write(
        day1.join("1764550000.a1b2.gz"),
        gzip_members(&[member1, member2]),
    )
    .expect("write");
    // File 2: plain JSON lines, CRLF, a blank line, no final newline.
    let plain = format!(
        "{}\r\n\r\n{}\r\n{}\r\n{}",
        HITS[5], CLEAN[3], MALFORMED[1], HITS[6]
    );
    std::fs::write(day2.join("events.jsonl"), plain).expect("write");
    std::fs::write(day2.join("manifest.txt"), "not an archive file").expect("write");
    test
}

#[test]
fn guard_finds_exactly_the_referencing_events_and_the_copy_holds_the_rest() {
    let test = guarded_test();
    let out = test
        .idprune([
            "guard",
            "m.state.db",
            "--archive",
            "export",
            "--write-filtered",
            "filtered",
            "--format",
            "json",
        ])
        .run()
        .code(2);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("guard JSON");
    assert_eq!(report["matched"], HITS.len(), "{report:#}");
    assert_eq!(report["events"], HITS.len() + CLEAN.len(), "{report:#}");
    assert_eq!(report["malformed_total"], 2);
    assert_eq!(report["files_scanned"], 2);
    assert_eq!(report["files_skipped"], 1);
    assert_eq!(
        report["by_type"],
        serde_json::json!({"anonymous_id": 1, "email": 3, "phone": 2, "user_id": 1})
    );
    assert_eq!(
        report["identifiers_by_type"],
        serde_json::json!({"anonymous_id": 1, "email": 1, "phone": 1, "user_id": 1})
    );
    let samples: Vec<String> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| f["samples"].as_array().expect("samples").clone())
        .map(|s| s["message_id"].as_str().expect("message id").to_owned())
        .collect();
    assert_eq!(
        samples,
        // `src_api` sorts before `src_web`: directories are walked in name order.
        [
            "hit-ext",
            "hit-escaped",
            "hit-user",
            "hit-anon",
            "hit-traits",
            "hit-ctx",
            "hit-phone",
        ]
    );
    let malformed: Vec<(String, u64)> = report["malformed"]
        .as_array()
        .expect("malformed")
        .iter()
        .map(|m| {
            let file = m["file"].as_str().expect("file");
            let name = Path::new(file).file_name().expect("name").to_string_lossy();
            (name.into_owned(), m["line"].as_u64().expect("line"))
        })
        .collect();
    assert_eq!(
        malformed,
        [
            ("events.jsonl".to_owned(), 4),
            ("1764550000.a1b2.gz".to_owned(), 6),
        ]
    );
    assert!(!out.stdout.contains("wrong1@x.com"), "no identifier values");

    // The copies: same layout, same compression, exactly the non-referencing lines.
    let copy1 = test.path("filtered/segment-logs/src_web/1764547200000/1764550000.a1b2.gz");
    assert_eq!(
        gunzip(&copy1),
        format!(
            "{}{}{}",
            lines(&CLEAN[..2]),
            lines(&MALFORMED[..1]),
            lines(&CLEAN[2..3])
        )
    );
    let copy2 = test.path("filtered/segment-logs/src_api/1764633600000/events.jsonl");
    assert_eq!(
        std::fs::read_to_string(&copy2).expect("plain copy"),
        format!("\r\n{}\r\n{}\r\n", CLEAN[3], MALFORMED[1])
    );
    assert!(
        !test
            .path("filtered/segment-logs/src_api/1764633600000/manifest.txt")
            .exists()
    );

    // The copy is clean: exit 0, malformed lines still counted and named.
    let again = test
        .idprune(["guard", "m.state.db", "--archive", "filtered"])
        .run()
        .ok();
    assert!(
        again.stdout.contains("No event references"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("Malformed lines: 2"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("events.jsonl:3:"), "{}", again.stdout);

    // Writing into a folder that already holds copies is refused; nothing is half-written.
    test.idprune([
        "guard",
        "m.state.db",
        "--archive",
        "export",
        "--write-filtered",
        "filtered",
    ])
    .run()
    .code(1)
    .stderr_has("is not empty");
    // A copy inside the scanned directory is refused.
    test.idprune([
        "guard",
        "m.state.db",
        "--archive",
        "export",
        "--write-filtered",
        "export/clean",
    ])
    .run()
    .code(1)
    .stderr_has("overlaps the archive directory");
}

#[test]
fn guard_text_report_and_a_truncated_gzip() {
    let test = guarded_test();
    let out = test
        .idprune(["guard", "m.state.db", "--archive", "export"])
        .run()
        .code(2);
    assert!(
        out.stdout
            .contains("Found 7 events referencing 4 removed identifiers"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("messageId hit-user"), "{}", out.stdout);
    assert!(
        out.stdout.contains("email: 3 events, 1 identifiers"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1764550000.a1b2.gz:6:"),
        "{}",
        out.stdout
    );

    // A single file argument is scanned whatever its name; a truncated gzip is an error (exit
    // 1) that names the file, after the report of what could be read.
    let whole =
        std::fs::read(test.path("export/segment-logs/src_web/1764547200000/1764550000.a1b2.gz"))
            .expect("read");
    std::fs::write(test.path("cut.gz"), &whole[..whole.len() / 2]).expect("write");
    let out = test
        .idprune(["guard", "m.state.db", "--archive", "cut.gz"])
        .run()
        .code(1)
        .stderr_has("could not be read to their end");
    assert!(out.stdout.contains("Unreadable: cut.gz"), "{}", out.stdout);

    // An archive that references nothing: exit 0.
    test.write("quiet.jsonl", &lines(CLEAN));
    test.idprune(["guard", "m.state.db", "--archive", "quiet.jsonl"])
        .run()
        .ok();
}

/// `guard --write-filtered DIR` with `args` appended, JSON out.
fn guard_into(test: &Test, dir: &str) -> crate::harness::Output {
    test.idprune([
        "guard",
        "m.state.db",
        "--archive",
        "export",
        "--write-filtered",
        dir,
        "--format",
        "json",
    ])
    .run()
}

#[test]
fn guard_writes_only_into_a_real_empty_folder() {
    let test = guarded_test();
    std::fs::create_dir(test.path("outside")).expect("mkdir");
    // A symlinked output folder would write elsewhere.
    std::os::unix::fs::symlink("outside", test.path("linked")).expect("symlink");
    guard_into(&test, "linked")
        .code(1)
        .stderr_has("--write-filtered `linked` is a symbolic link");
    // A folder with a planted link in it would be written through.
    std::fs::create_dir(test.path("planted")).expect("mkdir");
    std::os::unix::fs::symlink("../outside", test.path("planted/segment-logs")).expect("symlink");
    guard_into(&test, "planted")
        .code(1)
        .stderr_has("--write-filtered `planted` is not empty");
    assert_eq!(
        std::fs::read_dir(test.path("outside")).expect("ls").count(),
        0,
        "nothing was written outside the folder"
    );
    // A new folder works as before.
    guard_into(&test, "fresh").code(2);
}

#[test]
fn guard_does_not_follow_symlinks_inside_the_archive_unless_asked() {
    let test = guarded_test();
    test.write("elsewhere.jsonl", &lines(&HITS[..1]));
    std::os::unix::fs::symlink(
        "../../../../elsewhere.jsonl",
        test.path("export/segment-logs/src_web/1764547200000/z.jsonl"),
    )
    .expect("symlink");
    // A link back up the tree: followed, it would walk for ever.
    std::os::unix::fs::symlink("..", test.path("export/segment-logs/src_web/loop"))
        .expect("symlink");
    let out = guard_into(&test, "filtered").code(2);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("guard JSON");
    assert_eq!(report["files_scanned"], 2, "{report:#}");
    assert_eq!(report["files_skipped"], 3, "{report:#}");
    assert_eq!(report["matched"], HITS.len(), "{report:#}");
    // Asked to: the linked file is scanned, under the link's name; the loop is skipped.
    let out = test
        .idprune([
            "guard",
            "m.state.db",
            "--archive",
            "export",
            "--write-filtered",
            "followed",
            "--format",
            "json",
            "--follow-symlinks",
        ])
        .run()
        .code(2);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("guard JSON");
    assert_eq!(report["files_scanned"], 3, "{report:#}");
    assert_eq!(report["files_skipped"], 2, "{report:#}");
    assert_eq!(report["matched"], HITS.len() + 1, "{report:#}");
    let copy = test.path("followed/segment-logs/src_web/1764547200000/z.jsonl");
    assert!(
        std::fs::symlink_metadata(&copy)
            .expect("the copy")
            .is_file(),
        "the copy is a file of its own, not a link"
    );
    assert_eq!(
        test.read("elsewhere.jsonl"),
        lines(&HITS[..1]),
        "the target is untouched"
    );
}

#[test]
fn an_event_too_deep_to_parse_that_holds_a_removed_identifier_is_a_reference() {
    let test = guarded_test();
    // Valid JSON, 129 levels deep in one property: serde_json's parser stops at 128.
    let deep = format!(
        r#"{{"type":"identify","messageId":"deep","traits":{{"email":"wrong1@x.com"}},"properties":{{"p":{}1{}}}}}"#,
        "[".repeat(129),
        "]".repeat(129)
    );
    let shallow_clean = format!(
        r#"{{"type":"track","messageId":"deep-clean","properties":{{"p":{}1{}}}}}"#,
        "[".repeat(129),
        "]".repeat(129)
    );
    std::fs::write(
        test.path("export/segment-logs/src_web/1764547200000/deep.jsonl"),
        format!("{deep}\n{shallow_clean}\n"),
    )
    .expect("write");
    let out = guard_into(&test, "filtered").code(2);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("guard JSON");
    assert_eq!(report["matched"], HITS.len() + 1, "{report:#}");
    // Neither deep line is counted malformed: the one with a removed identifier is a match,
    // and the other is checked by the parser that skips values (no nesting limit) and kept.
    assert_eq!(report["malformed_total"], 2, "{report:#}");
    let copy = std::fs::read_to_string(
        test.path("filtered/segment-logs/src_web/1764547200000/deep.jsonl"),
    )
    .expect("the copy");
    assert!(
        !copy.contains("wrong1@x.com"),
        "the deep event is not replayed"
    );
    assert!(copy.contains("deep-clean"));
}
