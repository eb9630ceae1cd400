//! Table-driven tests of [`super::load`] on small manifests written to a temporary directory.

use std::path::PathBuf;

use tempfile::TempDir;

use super::*;
use crate::model::{Identifier, Lookup};

/// A temporary directory holding a manifest (`m.yaml`) and its sources.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: TempDir::new().expect("temp dir"),
        }
    }

    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn load(&self, yaml: &str) -> Result<Manifest, ManifestError> {
        let path = self.file("m.yaml", yaml);
        load(&path)
    }
}

const HEAD: &str = "version: 1\nspace: spa_1\nreason: test\n";

fn ok(yaml: &str) -> Manifest {
    match Fixture::new().load(yaml) {
        Ok(m) => m,
        Err(e) => panic!("expected a manifest, got:\n{e}"),
    }
}

/// The problems of a manifest that must not load, each as `show` makes it.
fn diagnostics(
    result: Result<Manifest, ManifestError>,
    show: impl Fn(&crate::manifest::Diagnostic) -> String,
) -> Vec<String> {
    match result {
        Ok(m) => panic!(
            "expected problems, got a manifest with {} entries",
            m.entries.len()
        ),
        Err(ManifestError::Invalid(d)) => d.iter().map(show).collect(),
        Err(e) => panic!("expected Invalid, got {e}"),
    }
}

/// The problems as `line:column: message` (file name dropped).
fn problems(result: Result<Manifest, ManifestError>) -> Vec<String> {
    diagnostics(result, |d| {
        format!("{}:{}: {}", d.location.line, d.location.column, d.message)
    })
}

/// The problems as `file:line:column: message`, the file by its name alone.
fn located_problems(result: Result<Manifest, ManifestError>) -> Vec<String> {
    diagnostics(result, |d| {
        let file = d
            .location
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(
            "{file}:{}:{}: {}",
            d.location.line, d.location.column, d.message
        )
    })
}

fn bad(yaml: &str) -> Vec<String> {
    problems(Fixture::new().load(yaml))
}

fn ext(kind: &str, id: &str) -> Option<Lookup> {
    Some(Lookup::External(Identifier::new(kind, id)))
}

fn bomb() -> String {
    let mut y = String::from(
        "version: 1\nspace: spa_1\nreason: ok\nremove:\n  - identifiers: &l0 [email:a@x.com, email:b@x.com]\n",
    );
    for level in 1..10 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        y.push_str(&format!("  - identifiers: &l{level} [{refs}]\n"));
    }
    y
}

#[test]
fn entry_shapes() {
    let m = ok(&format!(
        "{HEAD}region: eu\nremove:\n  - profile: user_id:u_001\n    identifier: email:wrong@example.com\n  - profile: use_2XaBcD\n    identifiers: [email:a@x.com, anonymous_id:7c1f]\n  - identifier: email:placeholder@acme.com\n  - profile: segment_id:use_9\n    identifiers:\n      - phone:+1 555\n      - email:a:b@x.com\n"
    ));
    assert_eq!(m.space, "spa_1");
    assert_eq!(m.region, Region::Eu);
    assert_eq!(m.region.base_url(), "https://profiles.euw1.segment.com");
    assert_eq!(m.reason, "test");
    let got: Vec<_> = m
        .entries
        .iter()
        .map(|e| {
            (
                e.lookup.clone(),
                e.identifier.to_string(),
                e.origin.line,
                e.origin.column,
            )
        })
        .collect();
    let seg = |v: &str| Some(Lookup::SegmentId(v.into()));
    assert_eq!(
        got,
        vec![
            (
                ext("user_id", "u_001"),
                "email:wrong@example.com".into(),
                7,
                17
            ),
            (seg("use_2XaBcD"), "email:a@x.com".into(), 9, 19),
            (seg("use_2XaBcD"), "anonymous_id:7c1f".into(), 9, 34),
            (None, "email:placeholder@acme.com".into(), 10, 17),
            (seg("use_9"), "phone:+1 555".into(), 13, 9),
            (seg("use_9"), "email:a:b@x.com".into(), 14, 9),
        ]
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(m.sources.is_empty());
    assert_eq!(m.sha256.len(), 64);
}

#[test]
fn region_defaults_to_us() {
    let m = ok(&format!("{HEAD}remove:\n  - identifier: email:a@x.com\n"));
    assert_eq!(m.region, Region::Us);
    assert_eq!(m.region.to_string(), "us");
    assert_eq!(m.region.base_url(), "https://profiles.segment.com");
}

#[test]
fn manifest_sha256_is_of_the_bytes() {
    let f = Fixture::new();
    let yaml = format!("{HEAD}remove:\n  - identifier: email:a@x.com\n");
    let m = f.load(&yaml).expect("valid");
    assert_eq!(m.sha256, hex::encode(Sha256::digest(yaml.as_bytes())));
    assert_eq!(m.path, f.dir.path().join("m.yaml"));
}

#[test]
fn problems_table() {
    let bomb = bomb();
    let deep = format!("{HEAD}remove: {}{}\n", "[".repeat(40), "]".repeat(40));
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key with its line and column",
            format!("{HEAD}remove:\n  - identifier: email:a@x.com\n    colour: red\n"),
            vec![
                "6:5: unknown key `colour` in a `remove` entry; expected `profile`, `identifier` or `identifiers`",
            ],
        ),
        (
            "a control character in a YAML error is escaped",
            format!("{HEAD}\"k\\e\": 1\n"),
            vec!["4:1: unknown key `k\\u{1b}` at the top level"],
        ),
        (
            "unknown top-level key",
            format!("{HEAD}sourcez: []\n"),
            vec!["4:1: unknown key `sourcez` at the top level; did you mean `sources`?"],
        ),
        (
            "wrong type",
            "version: one\n".into(),
            vec![
                "1:1: missing `space`",
                "1:1: missing `reason`",
                "1:10: `version` must be the number 1, found `one`",
            ],
        ),
        (
            "two problems reported together",
            "version: 2\nspace: spa 1\nreason: test\nremove:\n  - identifier: nocolon\n".into(),
            vec![
                "1:10: unsupported manifest version 2",
                "2:8: space `spa 1` may only hold",
                "5:17: `nocolon` is not an identifier: expected `TYPE:VALUE`",
            ],
        ),
        (
            "missing required keys",
            "remove:\n  - identifier: email:a@x.com\n".into(),
            vec![
                "1:1: missing `version: 1`",
                "1:1: missing `space`",
                "1:1: missing `reason`",
            ],
        ),
        (
            "empty values and bad region",
            "version: 1\nspace: ''\nreason: ' '\nregion: US\nremove:\n  - identifiers: []\n".into(),
            vec![
                "2:8: `space` is empty",
                "3:9: `reason` is empty",
                "4:9: unknown region `US`; expected `us` or `eu`",
                "6:18: `identifiers` is empty",
            ],
        ),
        (
            "entry shapes",
            format!(
                "{HEAD}remove:\n  - profile: user_id:u\n  - identifier: email:a\n    identifiers: [email:b]\n  - profile: nocolon\n    identifier: email:c\n"
            ),
            vec![
                "5:5: this entry removes nothing",
                "7:18: an entry takes `identifier` or `identifiers`, not both",
                "8:14: `nocolon` is not a profile lookup",
            ],
        ),
        (
            "control character refused and escaped",
            format!(
                "{HEAD}remove:\n  - identifier: \"email:a\\e[31m@x.com\"\n  - profile: \"user_id:u\\x07\"\n    identifier: email:b\n"
            ),
            vec![
                "5:17: identifier `email:a\\u{1b}[31m@x.com` holds a control character",
                "6:14: profile lookup `user_id:u\\u{7}` holds a control character",
            ],
        ),
        (
            "no entries",
            HEAD.into(),
            vec!["1:1: the manifest yields no entries"],
        ),
        (
            "empty file",
            String::new(),
            vec!["1:1: the manifest is empty"],
        ),
        (
            "only a comment",
            "# nothing\n".into(),
            vec!["1:1: the manifest is empty"],
        ),
        (
            "NUL byte",
            "version: 1\nspa\0ce: x\n".into(),
            vec!["2:4: the manifest holds a NUL byte"],
        ),
        (
            "two documents",
            format!("---\n{HEAD}---\n{HEAD}"),
            vec!["5:1: invalid manifest: YAML document too large or too complex"],
        ),
        (
            "duplicate key",
            format!("{HEAD}space: spa_2\n"),
            vec!["4:1: `space` is given twice (first on line 2); keep one"],
        ),
        ("billion laughs", bomb, vec!["refusing it (an alias bomb?)"]),
        (
            "deep nesting",
            deep,
            vec!["4:24: the manifest nests deeper than 16 levels"],
        ),
        (
            "source shapes",
            format!(
                "{HEAD}sources:\n  - profile_column: user_id\n  - csv: x.csv\n    remove_columns: []\n  - csv: y.csv\n    profile_type: email\n    remove_columns: [email, 'bad col', email]\n    sha256: abc\n"
            ),
            vec![
                "5:5: this source needs `csv: PATH`",
                "5:5: this source needs `remove_columns",
                "7:21: `remove_columns` is empty",
                "9:19: `profile_type` needs a `profile_column`",
                "10:29: column `bad col` is used as an identifier type but is not one",
                "10:40: column `email` is listed twice",
                "11:13: `sha256` must be 64 hex digits",
            ],
        ),
    ];
    for (name, yaml, expected) in cases {
        let got = bad(&yaml);
        assert_eq!(got.len(), expected.len(), "{name}: got {got:#?}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                g.contains(e),
                "{name}: `{g}` should contain `{e}`; all: {got:#?}"
            );
        }
    }
}

#[test]
fn invalid_utf8_is_located() {
    let f = Fixture::new();
    let path = f.file("m.yaml", b"version: 1\nspace: \xff\n");
    let got = problems(load(&path));
    assert_eq!(
        got,
        vec!["2:8: the manifest is not valid UTF-8; save it as UTF-8"]
    );
}

#[test]
fn oversized_file_refused_before_parsing() {
    let f = Fixture::new();
    let mut yaml = format!("{HEAD}remove:\n");
    while yaml.len() as u64 <= MAX_MANIFEST_BYTES {
        yaml.push_str("  - identifier: email:someone@example.com\n");
    }
    let got = problems(f.load(&yaml));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("over the 4194304-byte (4 MiB) limit"),
        "{got:?}"
    );
    assert!(got[0].contains(&format!("the manifest is {} bytes", yaml.len())));
}

#[test]
fn missing_manifest_is_io() {
    let f = Fixture::new();
    let err = load(&f.dir.path().join("nope.yaml")).expect_err("missing");
    assert!(matches!(err, ManifestError::Io { .. }), "{err}");
}

#[test]
fn error_display_names_file_and_count() {
    let f = Fixture::new();
    let err = f
        .load("version: 2\nspace: spa_1\nreason: ' '\n")
        .expect_err("invalid");
    let path = f.dir.path().join("m.yaml");
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(&format!("{}:1:10: ", path.display())));
    assert_eq!(lines[2], format!("2 problems in `{}`", path.display()));
}

#[test]
fn duplicates_collapse_with_warning() {
    let m = ok(&format!(
        "{HEAD}remove:\n  - identifier: email:a@x.com\n  - identifiers: [email:b@x.com, email:a@x.com]\n  - profile: user_id:u\n    identifier: email:a@x.com\n"
    ));
    assert_eq!(m.entries.len(), 3);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    let w = m.warnings[0].to_string();
    assert!(w.contains(":6:34: duplicate of the entry at "), "{w}");
    assert!(w.contains("m.yaml:5:17; this one is ignored"), "{w}");
}

#[test]
fn upper_case_lookups_warned_not_rewritten() {
    let m = ok(&format!(
        "{HEAD}remove:\n  - profile: email:Ann@X.com\n    identifier: anonymous_id:A1\n  - identifier: email:Bob@x.com\n  - profile: use_2XaBcD\n    identifier: email:c@x.com\n"
    ));
    assert_eq!(m.entries[0].lookup, ext("email", "Ann@X.com"));
    assert_eq!(m.entries[1].identifier.id, "Bob@x.com");
    let w: Vec<String> = m.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(
        w,
        vec![
            "Segment lookups are lowercase; `email:Ann@X.com` may resolve to no profile",
            "Segment lookups are lowercase; `email:Bob@x.com` may resolve to no profile",
        ]
    );
}

#[test]
fn csv_with_bom_crlf_quotes() {
    let f = Fixture::new();
    let csv = "\u{feff}segment_id,email,phone\r\nuse_1,a@x.com,\r\n\"use_2\",\"b,c@x.com\",\"+1 \"\"555\"\"\"\r\nuse_3,,\r\n";
    f.file("data/bad.csv", csv);
    let m = f
        .load(&format!(
            "{HEAD}remove:\n  - identifier: email:z@x.com\nsources:\n  - csv: data/bad.csv\n    profile_column: segment_id\n    remove_columns: [email, phone]\n"
        ))
        .expect("valid");
    let got: Vec<_> = m
        .entries
        .iter()
        .map(|e| {
            (
                e.lookup.clone(),
                e.identifier.to_string(),
                e.origin.to_string(),
            )
        })
        .collect();
    let csv_path = f.dir.path().join("data/bad.csv");
    let at = |l: u64, c: u64| format!("{}:{l}:{c}", csv_path.display());
    let seg = |v: &str| Some(Lookup::SegmentId(v.into()));
    assert_eq!(got[0].1, "email:z@x.com");
    assert_eq!(
        got[1..],
        [
            (seg("use_1"), "email:a@x.com".into(), at(2, 2)),
            (seg("use_2"), "email:b,c@x.com".into(), at(3, 2)),
            (seg("use_2"), "phone:+1 \"555\"".into(), at(3, 3)),
        ]
    );
    assert_eq!(
        m.sources,
        vec![SourceFile {
            path: csv_path,
            written: "data/bad.csv".into(),
            url: None,
            fetched: true,
            sha256: hex::encode(Sha256::digest(csv.as_bytes())),
            pinned: false,
            rows: 3,
            data_as_of: None,
        }]
    );
}

/// (name, CSV text, extra source keys, expected (lookup, identifier) pairs).
type ProfileCase = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(Option<Lookup>, &'static str)>,
);

#[test]
fn csv_profile_column_variants() {
    let cases: Vec<ProfileCase> = vec![
        (
            "no profile column: each identifier is its own lookup",
            "email\na@x.com\n",
            "",
            vec![(None, "email:a@x.com")],
        ),
        (
            "user_id column: header is the type",
            "user_id,email\nu1,a@x.com\n",
            "    profile_column: user_id\n",
            vec![(ext("user_id", "u1"), "email:a@x.com")],
        ),
        (
            "custom type column, a cell with TYPE: is not re-parsed",
            "crm_id,email\nemail:c1,a@x.com\n",
            "    profile_column: crm_id\n",
            vec![(ext("crm_id", "email:c1"), "email:a@x.com")],
        ),
        (
            "profile_type names the type of a free-form column",
            "Profile ID,email\nu9,a@x.com\n",
            "    profile_column: Profile ID\n    profile_type: user_id\n",
            vec![(ext("user_id", "u9"), "email:a@x.com")],
        ),
        (
            "profile_type segment_id",
            "who,email\nuse_7,a@x.com\n",
            "    profile_column: who\n    profile_type: segment_id\n",
            vec![(Some(Lookup::SegmentId("use_7".into())), "email:a@x.com")],
        ),
    ];
    for (name, csv, extra, expected) in cases {
        let f = Fixture::new();
        f.file("s.csv", csv);
        let m = f
            .load(&format!(
                "{HEAD}sources:\n  - csv: s.csv\n{extra}    remove_columns: [email]\n"
            ))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<(Option<Lookup>, String)> = m
            .entries
            .iter()
            .map(|e| (e.lookup.clone(), e.identifier.to_string()))
            .collect();
        let expected: Vec<(Option<Lookup>, String)> = expected
            .into_iter()
            .map(|(l, i)| (l, i.to_string()))
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn csv_problems_table() {
    let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
        (
            "missing column names the column and the header line",
            "user_id,mail\nu1,a@x.com\n",
            "    profile_column: user_id\n",
            vec!["s.csv:1:1: column `email` (the `remove_columns` entry named at "],
        ),
        (
            "ragged row",
            "email,phone\na@x.com,1\nb@x.com\nc@x.com,2\n",
            "",
            vec!["s.csv:3:1: this row has 1 field but the header (line 1) has 2"],
        ),
        (
            "control character in a cell",
            "email\n\"a\u{1b}b@x.com\"\n",
            "",
            vec!["s.csv:2:1: `a\\u{1b}b@x.com` holds a control character"],
        ),
        (
            "empty profile cell with identifiers",
            "user_id,email\n,a@x.com\n",
            "    profile_column: user_id\n",
            vec!["s.csv:2:1: the profile cell (column `user_id`) is empty"],
        ),
        (
            "empty csv",
            "",
            "",
            vec!["s.csv:1:1: the CSV file is empty"],
        ),
        (
            "header only yields no entries",
            "email\n",
            "",
            vec!["m.yaml:1:1: the manifest yields no entries"],
        ),
        (
            "sha256 mismatch names both hashes",
            "email\na@x.com\n",
            "    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
            vec!["m.yaml:6:13: `s.csv` has sha256 "],
        ),
    ];
    for (name, csv, extra, expected) in cases {
        let f = Fixture::new();
        f.file("s.csv", csv);
        let got = located_problems(f.load(&format!(
            "{HEAD}sources:\n  - csv: s.csv\n{extra}    remove_columns: [email]\n"
        )));
        assert_eq!(got.len(), expected.len(), "{name}: {got:#?}");
        for (g, e) in got.iter().zip(&expected) {
            // The file is compared too: a CSV problem is located in the CSV, a manifest
            // problem in the manifest.
            assert!(g.starts_with(e), "{name}: `{g}` should start with `{e}`");
        }
    }
}

#[test]
fn csv_problem_files_and_hash_message() {
    let f = Fixture::new();
    let csv = "email\na@x.com\n";
    f.file("s.csv", csv);
    let zeros = "0".repeat(64);
    let err = f
        .load(&format!("{HEAD}sources:\n  - csv: s.csv\n    sha256: {zeros}\n    remove_columns: [email]\n  - csv: missing.csv\n    remove_columns: [email]\n"))
        .expect_err("mismatch");
    let d = err.diagnostics();
    assert_eq!(d.len(), 2, "{err}");
    assert_eq!(d[0].location.file, f.dir.path().join("m.yaml"));
    let actual = hex::encode(Sha256::digest(csv.as_bytes()));
    assert!(
        d[0].message.contains(&actual) && d[0].message.contains(&zeros),
        "{}",
        d[0]
    );
    assert_eq!((d[1].location.line, d[1].location.column), (8, 10));
    assert!(
        d[1].message.starts_with("cannot open CSV source"),
        "{}",
        d[1]
    );
}

#[test]
fn sha256_pin_ok() {
    let f = Fixture::new();
    let csv = "email\na@x.com\n";
    f.file("s.csv", csv);
    let pin = hex::encode(Sha256::digest(csv.as_bytes())).to_ascii_uppercase();
    let m = f
        .load(&format!(
            "{HEAD}sources:\n  - csv: s.csv\n    sha256: {pin}\n    remove_columns: [email]\n"
        ))
        .expect("pin matches");
    assert!(m.sources[0].pinned);
    assert_eq!(m.sources[0].sha256, pin.to_ascii_lowercase());
}

#[test]
fn a_source_data_as_of_is_read_as_utc_or_refused_where_written() {
    let f = Fixture::new();
    f.file("s.csv", "email\na@x.com\n");
    let m = f
        .load(&format!(
            "{HEAD}sources:\n  - csv: s.csv\n    remove_columns: [email]\n    data_as_of: \"2025-12-01 02:00:00 -0800\"\n"
        ))
        .expect("a time with an offset");
    assert_eq!(m.sources[0].data_as_of, Some(1_764_583_200));
    let found = located_problems(f.load(&format!(
        "{HEAD}sources:\n  - csv: s.csv\n    remove_columns: [email]\n    data_as_of: yesterday\n"
    )));
    assert!(
        found
            .iter()
            .any(|p| p.contains(":7:17: `data_as_of` `yesterday` is not a time")),
        "{found:?}"
    );
}

#[test]
fn csv_errors_are_capped_and_lines_located_in_csv() {
    let f = Fixture::new();
    let mut csv = String::from("email,phone\n");
    for _ in 0..150 {
        csv.push_str("a@x.com\n");
    }
    f.file("s.csv", &csv);
    let err = f
        .load(&format!(
            "{HEAD}sources:\n  - csv: s.csv\n    remove_columns: [email]\n"
        ))
        .expect_err("ragged");
    let d = err.diagnostics();
    assert_eq!(d.len(), MAX_DIAGNOSTICS_PER_FILE + 1);
    assert_eq!(
        d[0].location,
        Location::new(f.dir.path().join("s.csv"), 2, 1)
    );
    assert_eq!(
        d[100].message,
        "and 50 more problems in this file (only the first 100 are listed)"
    );
    assert_eq!(d[100].location.line, 102);
}

#[test]
fn csv_duplicates_and_case_warnings() {
    let f = Fixture::new();
    f.file("s.csv", "user_id,email\nU1,a@x.com\nU1,a@x.com\n");
    let m = f
        .load(&format!("{HEAD}remove:\n  - profile: user_id:U1\n    identifier: email:a@x.com\nsources:\n  - csv: s.csv\n    profile_column: user_id\n    remove_columns: [email]\n"))
        .expect("valid");
    assert_eq!(m.entries.len(), 1);
    let w: Vec<String> = m.warnings.iter().map(|w| w.message.clone()).collect();
    // Manifest-located warnings first, then the CSV's: per row its profile cell, then the
    // duplicate.
    assert_eq!(w.len(), 6, "{w:#?}");
    assert!(w[0].starts_with("Segment lookups are lowercase; `user_id:U1`"));
    assert!(w[1].starts_with("CSV source `s.csv` adds no entries"));
    assert!(w[2].starts_with("Segment lookups are lowercase; `user_id:U1`"));
    assert!(w[3].starts_with("duplicate of the entry at "));
    assert!(w[3].ends_with("m.yaml:6:17; this one is ignored"));
    assert_eq!(m.warnings[3].location.line, 2);
    assert_eq!(m.warnings[5].location.line, 3);
}

#[test]
fn null_values_are_refused_not_defaulted() {
    let cases = [
        (
            format!("{HEAD}remove:\n  - profile:\n    identifier: email:a@x.com\n"),
            "5:12",
        ),
        (
            format!("{HEAD}sources:\n  - csv: s.csv\n    sha256: ~\n    remove_columns: [email]\n"),
            "6:13",
        ),
    ];
    for (yaml, at) in cases {
        let got = bad(&yaml);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("has no value (null)"), "{got:?}");
        assert!(got[0].starts_with(at), "{got:?} should be at {at}");
    }
}

#[test]
fn csv_paths_stay_inside_the_manifest_directory() {
    let source = |path: &str| {
        format!(
            "{HEAD}sources:\n  - csv: {path}\n    profile_column: user_id\n    remove_columns: [email]\n"
        )
    };
    let f = Fixture::new();
    f.file("data/ok.csv", "user_id,email\nu_1,a@x.com\n");
    f.file("ok.csv", "user_id,email\nu_1,a@x.com\n");
    for inside in ["data/ok.csv", "./ok.csv", "ok.csv"] {
        let m = f.load(&source(inside)).expect("a path inside is read");
        assert_eq!(m.entries.len(), 1, "{inside}");
    }
    // Outside: refused at the `csv:` value, before the file is opened (so its first line is
    // never quoted back as "the header").
    std::os::unix::fs::symlink("/etc/hostname", f.dir.path().join("link.csv")).expect("symlink");
    for outside in [
        "../ok.csv",
        "data/../../ok.csv",
        "/etc/passwd",
        "../../../../etc/passwd",
        "link.csv",
    ] {
        let got = problems(f.load(&source(outside)));
        assert_eq!(got.len(), 1, "{outside}: {got:?}");
        assert!(
            got[0].starts_with("5:10: `csv` path") && got[0].contains("outside"),
            "{outside}: {got:?}"
        );
    }
}

#[test]
fn over_long_values_are_refused_quoting_only_their_start() {
    let long = "a".repeat(MAX_VALUE_BYTES);
    let f = Fixture::new();
    // At the limit: fine.
    let m = f
        .load(&format!(
            "{HEAD}remove:\n  - identifier: email:{}\n",
            &long[6..]
        ))
        .expect("a value of exactly the limit");
    assert_eq!(m.entries[0].identifier.to_string().len(), MAX_VALUE_BYTES);
    let over = "b".repeat(MAX_VALUE_BYTES * 100);
    let got = bad(&format!(
        "{HEAD}remove:\n  - profile: user_id:{over}\n    identifier: email:{over}\n"
    ));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("5:14: profile lookup `user_id:bbb")
            && got[0].contains("over the 1024-byte limit"),
        "{got:?}"
    );
    assert!(got[1].starts_with("6:17: identifier `email:bbb"));
    assert!(
        got.iter().all(|p| p.len() < 300),
        "the value is not quoted whole"
    );
    f.file("s.csv", format!("user_id,email\nu_1,{over}\n"));
    let got = problems(f.load(&format!(
        "{HEAD}sources:\n  - csv: s.csv\n    profile_column: user_id\n    remove_columns: [email]\n"
    )));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("2:2: `bbb") && got[0].len() < 300,
        "{got:?}"
    );
}

/// URL sources through a fetch hook (here: bytes in an unnamed file, no store): the pin is
/// checked before a row is read, rows are located at the URL, the hook is not called for an
/// unpinned source, and offline loading calls nothing and says the source was not fetched.
#[test]
fn url_sources_are_pinned_checked_first_and_located_at_their_url() {
    use std::cell::Cell;
    use std::io::{Seek as _, Write as _};

    let url = "s3://exports/2026-11/bad.csv";
    let csv = "user_id,email\nu_1,a@x.invalid\nu_2\n";
    let good = hex::encode(Sha256::digest(csv.as_bytes()));
    let calls = Cell::new(0);
    let fetch = |u: &url::Url| -> anyhow::Result<FetchedCsv> {
        calls.set(calls.get() + 1);
        assert_eq!(u.as_str(), url);
        let mut file = tempfile::tempfile()?;
        file.write_all(csv.as_bytes())?;
        file.rewind()?;
        Ok(FetchedCsv {
            file,
            sha256: hex::encode(Sha256::digest(csv.as_bytes())),
        })
    };
    let f = Fixture::new();
    let yaml = |pin: Option<&str>| {
        let pin = pin
            .map(|p| format!("    sha256: {p}\n"))
            .unwrap_or_default();
        format!(
            "{HEAD}sources:\n  - csv: {url}\n{pin}    profile_column: user_id\n    remove_columns: [email]\n"
        )
    };
    let load_with = |text: &str| {
        let path = f.file("m.yaml", text);
        let mut sink = VecSink::default();
        load_into(&path, &mut sink, UrlSources::Fetch(&fetch)).map(|_| sink.entries)
    };

    // Unpinned: refused at `csv:`, the hook never called.
    let problems: Vec<String> = match load_with(&yaml(None)) {
        Err(ManifestError::Invalid(d)) => d
            .iter()
            .map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message))
            .collect(),
        other => panic!("expected problems, got {other:?}"),
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "5:10 CSV source `s3://exports/2026-11/bad.csv` is in a store, so it needs a `sha256:` pin"
        ),
        "{problems:?}"
    );
    assert_eq!(calls.get(), 0);

    // A wrong pin: refused at the pin, no entry reaches the sink.
    let wrong = "0".repeat(64);
    let path = f.file("m.yaml", yaml(Some(&wrong)));
    let mut sink = VecSink::default();
    let err = load_into(&path, &mut sink, UrlSources::Fetch(&fetch)).expect_err("wrong pin");
    assert!(sink.entries.is_empty());
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "m.yaml:6:13: CSV source `{url}` has sha256 {good} but the manifest pins {wrong}"
        )),
        "{message}"
    );
    assert_eq!(calls.get(), 1);

    // The right pin: the rows are read, and their problems name the URL.
    let path = f.file("m.yaml", yaml(Some(&good)));
    let err = load_into(&path, &mut VecSink::default(), UrlSources::Fetch(&fetch))
        .expect_err("short row");
    assert!(
        err.to_string()
            .contains(&format!("{url}:3:1: this row has 1 field")),
        "{err}"
    );

    // Offline: nothing fetched, the source listed as not fetched, its pin as its hash.
    let m = load(&path).expect("valid offline");
    assert_eq!(calls.get(), 2);
    assert_eq!(m.sources.len(), 1);
    let source = &m.sources[0];
    assert!(!source.fetched && source.pinned);
    assert_eq!(source.sha256, good);
    assert_eq!(source.url.as_ref().map(url::Url::as_str), Some(url));
}
