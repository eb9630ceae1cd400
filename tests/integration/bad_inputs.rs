//! The bad-input corpus: every file in `tests/fixtures/bad/` (49 manifests, 11 with a CSV)
//! plus a 100 MB manifest made at test time. Each is run through `validate` and `plan`: exit
//! 1, one error report naming `file:line:column`, never a raw escape byte on the terminal, no
//! state or scratch file written, no request sent.
//!
//! Path injection (`csv: ../../../../etc/passwd`, `csv: /etc/passwd`, a symlink out) is refused
//! at the `csv:` value: a CSV must live inside the manifest's directory, so a manifest from a
//! pull request cannot make CI print another file's first line.

use std::path::Path;

use crate::harness::{Test, seed};

/// Every case: the fixture's name and the location its first problem must name.
const CASES: &[(&str, &str)] = &[
    ("ansi-escape-quoted", "ansi-escape-quoted.yaml:6:17"),
    ("ansi-escape-raw", "ansi-escape-raw.yaml:6:17"),
    ("ansi-in-lookup", "ansi-in-lookup.yaml:6:14"),
    ("billion-laughs", "billion-laughs.yaml:10:45"),
    ("blank-lines", "blank-lines.yaml:1:1"),
    ("bom-mid-file", "bom-mid-file.yaml:6:17"),
    ("bom-only", "bom-only.yaml:1:1"),
    ("c1-control", "c1-control.yaml:6:17"),
    (
        "carriage-return-in-value",
        "carriage-return-in-value.yaml:6:17",
    ),
    ("csv-absolute-path", "csv-absolute-path.yaml:6:10"),
    ("csv-ansi", "csv-ansi.csv:2:2"),
    ("csv-bom-mid-header", "csv-bom-mid-header.csv:1:1"),
    ("csv-empty-profile-cell", "csv-empty-profile-cell.csv:2:1"),
    ("csv-empty", "csv-empty.csv:1:1"),
    ("csv-header-only", "csv-header-only.yaml:1:1"),
    ("csv-invalid-utf8", "csv-invalid-utf8.csv:2:2"),
    ("csv-long-cell", "csv-long-cell.csv:2:2"),
    ("csv-missing-column", "csv-missing-column.csv:1:1"),
    ("csv-missing-file", "csv-missing-file.yaml:6:10"),
    ("csv-nul", "csv-nul.csv:2:2"),
    ("csv-path-traversal", "csv-path-traversal.yaml:6:10"),
    ("csv-ragged", "csv-ragged.csv:3:1"),
    ("csv-unterminated-quote", "csv-unterminated-quote.csv:2:2"),
    ("deep-nesting-block", "deep-nesting-block.yaml:20:33"),
    ("deep-nesting-flow", "deep-nesting-flow.yaml:5:24"),
    ("duplicate-key", "duplicate-key.yaml:5:1"),
    ("empty", "empty.yaml:1:1"),
    (
        "identifier-and-identifiers",
        "identifier-and-identifiers.yaml:8:18",
    ),
    ("identifier-empty-value", "identifier-empty-value.yaml:6:17"),
    ("identifier-no-colon", "identifier-no-colon.yaml:6:17"),
    ("identifiers-not-a-list", "identifiers-not-a-list.yaml:7:18"),
    ("invalid-utf8", "invalid-utf8.yaml:6:23"),
    ("long-value", "long-value.yaml:6:17"),
    ("merge-key", "merge-key.yaml:2:1"),
    ("missing-reason", "missing-reason.yaml:1:1"),
    ("nul-byte", "nul-byte.yaml:6:24"),
    ("null-space", "null-space.yaml:2:8"),
    ("python-tag", "python-tag.yaml:6:49"),
    ("region-mars", "region-mars.yaml:3:9"),
    ("remove-empty", "remove-empty.yaml:1:1"),
    ("remove-not-a-list", "remove-not-a-list.yaml:5:9"),
    ("tab-indent", "tab-indent.yaml:6:2"),
    ("two-documents", "two-documents.yaml:7:1"),
    ("undefined-alias", "undefined-alias.yaml:5:9"),
    ("unknown-entry-key", "unknown-entry-key.yaml:7:5"),
    ("unknown-top-key", "unknown-top-key.yaml:5:1"),
    ("version-2", "version-2.yaml:1:10"),
    ("version-huge", "version-huge.yaml:1:10"),
    ("version-wrong-type", "version-wrong-type.yaml:1:10"),
];

/// Copies the corpus into the test's directory, so nothing is ever written beside the
/// committed fixtures.
fn corpus(test: &Test) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    for entry in std::fs::read_dir(dir).expect("listing the corpus") {
        let entry = entry.expect("a corpus entry");
        std::fs::copy(
            entry.path(),
            test.path(&entry.file_name().to_string_lossy()),
        )
        .expect("copying a fixture");
    }
}

/// The names in the test's directory that a command may have written.
fn written(test: &Test) -> Vec<String> {
    std::fs::read_dir(test.path(""))
        .expect("listing the test directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.contains(".state.db"))
        .collect()
}

/// Runs `validate` and `plan` on `manifest`, expecting exit 1 and `location` on stderr.
#[track_caller]
fn rejected(test: &Test, manifest: &str, location: &str) {
    for command in ["validate", "plan"] {
        let out = test.idprune([command, manifest]).run();
        let what = format!("`idprune {command} {manifest}`");
        assert_eq!(out.code, Some(1), "{what}\n{}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{what}: one error report\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(location),
            "{what} does not name {location}\n{}",
            out.stderr
        );
        assert!(
            !out.all().contains('\u{1b}') && !out.all().contains('\u{9b}'),
            "{what} let an escape byte reach the terminal"
        );
        assert_eq!(written(test), Vec::<String>::new(), "{what} wrote a file");
    }
}

#[test]
fn every_bad_input_is_refused_with_its_location_and_sends_nothing() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    corpus(&test);
    let manifests = std::fs::read_dir(test.path(""))
        .expect("listing")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".yaml"))
        })
        .count();
    assert_eq!(manifests, CASES.len(), "every fixture has a row in CASES");
    for (name, location) in CASES {
        rejected(&test, &format!("{name}.yaml"), location);
    }
    assert_eq!(test.emu().stats().requests, 0, "a bad input sent a request");
    eprintln!("figures: bad-inputs={} (x2 commands)", CASES.len() + 1);
}

#[test]
fn a_100_mb_manifest_is_refused_before_it_is_read() {
    use std::io::Write as _;
    let test = Test::new(&seed(&[]));
    let path = test.path("huge.yaml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("creating"));
    file.write_all(b"version: 1\nspace: spa_test\nregion: us\nreason: huge\nremove:\n")
        .expect("writing");
    let line = b"  - identifier: email:someone-with-a-long-address@example.com\n";
    let mut size = 0usize;
    while size < 100 * 1024 * 1024 {
        file.write_all(line).expect("writing");
        size += line.len();
    }
    file.flush().expect("flushing");
    drop(file);
    rejected(&test, "huge.yaml", "huge.yaml:1:1");
    let out = test.idprune(["validate", "huge.yaml"]).run();
    assert!(out.stderr.contains("4 MiB"), "{}", out.stderr);
    assert_eq!(test.emu().stats().requests, 0);
}
