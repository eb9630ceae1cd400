//! CSV sources kept in a store (`csv: s3://bucket/key.csv` with a required `sha256:`), against a
//! `file://` URL and against moto's S3 server started on 127.0.0.1 (`pip install
//! 'moto[server]'`; a missing server fails the test): a plan from a URL source is the plan from
//! the same CSV on disk, item for item; apply (of the state file, or of the manifest, which plans
//! afresh) runs it; a missing pin, a wrong pin, an oversized object and bad rows are refused,
//! located, naming the URL; no temporary copy is left behind; `validate` stays offline and says
//! so; `init --from-csv` stays local.

use std::process::Command;

use sha2::Digest as _;

use crate::harness::{Run, Test, seed};

use crate::moto::Moto;

const CSV: &str = "user_id,email\r\nu_1,bad1@import.invalid\r\nu_2,bad2@import.invalid\r\nu_3,gone@import.invalid\r\n";

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn cleanup_test() -> Test {
    Test::new(&seed(&[
        (
            "use_1",
            &[
                "user_id:u_1",
                "email:bad1@import.invalid",
                "email:ok1@x.com",
            ],
        ),
        ("use_2", &["user_id:u_2", "email:bad2@import.invalid"]),
        ("use_3", &["user_id:u_3", "email:kept@x.com"]),
    ]))
}

/// A manifest with one CSV source at `csv` (a path or a URL), pinned by `pin` when given.
fn manifest(csv: &str, pin: Option<&str>) -> String {
    let pin = pin
        .map(|p| format!("    sha256: {p}\n"))
        .unwrap_or_default();
    format!(
        "version: 1\nspace: spa_test\nreason: \"placeholder emails (OPS-431)\"\nsources:\n  - csv: {csv}\n{pin}    profile_column: user_id\n    remove_columns: [email]\n"
    )
}

/// Every item of a plan, in seq order: `(seq, user_id, type, value, action)` (`user_id` is
/// null where no profile was found).
fn items(test: &Test, state: &str) -> Vec<(i64, Option<String>, String, String, String)> {
    let db = test.db(state);
    let mut stmt = db
        .prepare("SELECT seq, user_id, id_type, id_value, action FROM items ORDER BY seq")
        .expect("preparing the select");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("selecting items")
    .collect::<Result<_, _>>()
    .expect("reading items")
}

/// The test's own temporary folder for idprune's temporary files (`TMPDIR`), to show that a
/// fetched source leaves nothing there.
fn private_tmp(test: &Test) -> String {
    let dir = test.path("tmp");
    std::fs::create_dir_all(&dir).expect("mkdir tmp");
    dir.display().to_string()
}

fn assert_empty(dir: &str) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("reading tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

/// Stores `body` at `key` in `bucket` (created if needed) on moto, by a plain HTTP `PUT`.
fn upload(moto: &Moto, bucket: &str, key: &str, body: &[u8]) {
    use std::io::{Read as _, Write as _};
    moto.create_bucket(bucket);
    let host = moto.endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(host).expect("connecting to moto");
    write!(
        conn,
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .and_then(|()| conn.write_all(body))
    .expect("uploading the object");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("moto's answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "uploading {bucket}/{key}: {}",
        answer.lines().next().unwrap_or_default()
    );
}

/// `run` with the AWS environment pointing at moto, as CI would set it.
fn with_moto(moto: &Moto, run: Run) -> Run {
    moto.env().iter().fold(run, |run, (k, v)| run.env(k, v))
}

#[test]
fn a_source_in_s3_or_at_a_file_url_plans_exactly_as_the_csv_on_disk_and_applies() {
    let test = cleanup_test();
    let moto = Moto::start();
    let tmp = private_tmp(&test);
    let pin = sha(CSV.as_bytes());

    // The reference: the same CSV beside the manifest.
    test.write("bad.csv", CSV);
    test.write("local.yaml", &manifest("bad.csv", Some(&pin)));
    test.plan("local.yaml", "local.state.db");
    let reference = items(&test, "local.state.db");
    assert_eq!(test.planned_deletes("local.state.db").len(), 2);

    // At a file:// URL, outside the repository's folder.
    let outside = tempfile::tempdir().expect("tempdir");
    let exported = outside.path().join("bad.csv");
    std::fs::write(&exported, CSV).expect("write");
    let file_url = format!("file://{}", exported.display());
    test.write("file.yaml", &manifest(&file_url, Some(&pin)));
    test.idprune(["plan", "file.yaml", "-o", "file.state.db"])
        .env("TMPDIR", &tmp)
        .run()
        .ok();
    assert_eq!(items(&test, "file.state.db"), reference);

    // In S3 (moto).
    upload(&moto, "exports", "2026-11/bad.csv", CSV.as_bytes());
    let s3_url = "s3://exports/2026-11/bad.csv";
    test.write("s3.yaml", &manifest(s3_url, Some(&pin)));
    let planned = with_moto(
        &moto,
        test.idprune(["plan", "s3.yaml", "-o", "s3.state.db", "--receipt"]),
    )
    .env("TMPDIR", &tmp)
    .run()
    .ok();
    assert!(planned.stderr.contains(s3_url), "{}", planned.stderr);
    assert_eq!(items(&test, "s3.state.db"), reference);
    assert_empty(&tmp);

    // What a reviewer sees names the source by its URL, with its pin: each item's origin is
    // `URL:line:field` (show), the receipt and the markdown list the source.
    let shown = test.show_json("s3.state.db").to_string();
    assert!(
        shown.contains(&format!("\"origin\":\"{s3_url}:2:2\"")),
        "{shown}"
    );
    let text = test.idprune(["show", "s3.state.db"]).run().ok();
    assert!(
        text.stdout.contains(&format!("{s3_url}:2")),
        "{}",
        text.stdout
    );
    let receipt = test.read("s3.receipt.json");
    assert!(
        receipt.contains(s3_url) && receipt.contains(&pin),
        "{receipt}"
    );
    let markdown = test
        .idprune(["show", "s3.state.db", "--format", "markdown"])
        .run()
        .ok();
    assert!(markdown.stdout.contains(s3_url), "{}", markdown.stdout);

    // apply STATE: the URL is not a local file, and that is no reason to refuse or warn (the
    // manifest's hash, checked, pins the source's). No network to the store is needed.
    let applied = test
        .idprune(["apply", "s3.state.db", "--yes"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run()
        .ok();
    assert!(!applied.stderr.contains("not there"), "{}", applied.stderr);
    assert_eq!(test.emu().stats().deletes, 2);

    // apply MANIFEST plans afresh, fetching the source again, and resumes/applies the approved
    // plan: here the file:// manifest, approved by its digest.
    let digest = test.digest("file.state.db");
    std::fs::remove_file(test.path("file.state.db")).expect("rm");
    test.emu().rebuild(None);
    // The space was rebuilt from the seed, so the fresh plan is the approved one again.
    let fresh = test
        .idprune(["apply", "file.yaml", "--approve", &digest])
        .env("TMPDIR", &tmp)
        .run()
        .ok();
    assert!(!fresh.stderr.contains("not there"), "{}", fresh.stderr);
    assert_eq!(test.emu().stats().deletes, 4);
    assert_empty(&tmp);
}

#[test]
fn a_url_source_without_a_pin_is_refused_at_its_csv_key_saying_why_and_how() {
    let test = Test::offline();
    let text = manifest("s3://exports/2026-11/bad.csv", None);
    test.write("m.yaml", &text);
    for command in ["validate", "plan"] {
        let out = test.idprune([command, "m.yaml"]).run().code(1);
        // `csv:` is on line 5, its value at column 10.
        assert!(out.stderr.contains("m.yaml:5:10:"), "{}", out.stderr);
        assert!(
            out.stderr.contains("needs a `sha256:` pin"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("what the reviewer approves"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("sha256sum"), "{}", out.stderr);
    }
    // A scheme idprune does not read is refused there too.
    test.write(
        "http.yaml",
        &manifest("https://example.com/bad.csv", Some(&sha(b"x"))),
    );
    test.idprune(["validate", "http.yaml"])
        .run()
        .code(1)
        .stderr_has("http.yaml:5:10:")
        .stderr_has("scheme `https`");
}

#[test]
fn a_wrong_pin_is_refused_before_any_row_is_read_naming_url_and_both_hashes() {
    let test = cleanup_test();
    let moto = Moto::start();
    upload(&moto, "exports", "bad.csv", CSV.as_bytes());
    let wrong = sha(b"another file");
    test.write("m.yaml", &manifest("s3://exports/bad.csv", Some(&wrong)));
    let out = with_moto(&moto, test.idprune(["plan", "m.yaml"]))
        .run()
        .code(1);
    assert!(out.stderr.contains("m.yaml:6:13:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`s3://exports/bad.csv`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&wrong), "{}", out.stderr);
    assert!(out.stderr.contains(&sha(CSV.as_bytes())), "{}", out.stderr);
    assert!(
        out.stderr.contains("none of its rows were read"),
        "{}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists());
    assert_eq!(test.emu().stats().requests, 0, "no profile read");

    // A missing object is said as such.
    test.write(
        "gone.yaml",
        &manifest("s3://exports/gone.csv", Some(&wrong)),
    );
    with_moto(&moto, test.idprune(["plan", "gone.yaml"]))
        .run()
        .code(1)
        .stderr_has("gone.yaml:5:10:")
        .stderr_has("does not exist in the store");
}

#[test]
fn problems_in_a_url_sources_rows_name_the_url_not_a_temporary_file() {
    let test = cleanup_test();
    let moto = Moto::start();
    let tmp = private_tmp(&test);
    let bad = "user_id,email\nu_1,bad1@import.invalid\nu_2\n";
    upload(&moto, "exports", "rows.csv", bad.as_bytes());
    test.write(
        "m.yaml",
        &manifest("s3://exports/rows.csv", Some(&sha(bad.as_bytes()))),
    );
    let out = with_moto(&moto, test.idprune(["plan", "m.yaml"]))
        .env("TMPDIR", &tmp)
        .run()
        .code(1);
    assert!(
        out.stderr
            .contains("s3://exports/rows.csv:3:1: this row has 1 field"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&tmp), "{}", out.stderr);
    assert_empty(&tmp);
}

#[test]
fn an_object_over_the_cap_is_refused_naming_the_url_and_the_cap() {
    let test = Test::offline();
    // A sparse file one byte over the cap: no disk is spent, and nothing of it is read.
    let outside = tempfile::tempdir().expect("tempdir");
    let big = outside.path().join("big.csv");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(idprune::manifest::MAX_URL_SOURCE_BYTES + 1)
        .expect("set_len");
    let url = format!("file://{}", big.display());
    test.write("m.yaml", &manifest(&url, Some(&sha(b"x"))));
    let tmp = private_tmp(&test);
    let out = test
        .idprune(["plan", "m.yaml"])
        .env("TMPDIR", &tmp)
        .run()
        .code(1);
    assert!(out.stderr.contains("m.yaml:5:10:"), "{}", out.stderr);
    assert!(out.stderr.contains(&url), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "over the {}-byte (2 GiB) limit",
            idprune::manifest::MAX_URL_SOURCE_BYTES
        )),
        "{}",
        out.stderr
    );
    assert_empty(&tmp);
    // A named pipe is refused, not waited on.
    let fifo = outside.path().join("fifo.csv");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    test.write(
        "fifo.yaml",
        &manifest(&format!("file://{}", fifo.display()), Some(&sha(b"x"))),
    );
    test.idprune(["plan", "fifo.yaml"])
        .run()
        .code(1)
        .stderr_has("is not a regular file");
}

#[test]
fn validate_stays_offline_and_says_the_url_source_is_left_to_plan() {
    let test = Test::offline();
    let pin = sha(CSV.as_bytes());
    test.write("m.yaml", &manifest("s3://exports/bad.csv", Some(&pin)));
    // An endpoint that answers nothing: validate must not try it.
    let out = test
        .idprune(["validate", "m.yaml"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run()
        .ok();
    assert!(out.stdout.contains("is valid"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Not fetched: 1 CSV source in a store (`s3://exports/bad.csv`)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("`plan` fetches it"), "{}", out.stdout);
    let json = test
        .idprune(["validate", "m.yaml", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(json["valid"], true);
    assert_eq!(
        json["sources_not_fetched"],
        serde_json::json!(["s3://exports/bad.csv"])
    );
    // init reads a local CSV only.
    test.idprune([
        "init",
        "--from-csv",
        "s3://exports/bad.csv",
        "--profile-column",
        "user_id",
        "--remove-column",
        "email",
    ])
    .run()
    .code(1)
    .stderr_has("reads a local file");
}
