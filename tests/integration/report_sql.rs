//! `report --sql --dialect`: each dialect's query holds a removed value with `'`, `\` and
//! non-ASCII quoted its own way; `--csv` writes the identifiers for the warehouse to load;
//! `--discover` needs no state file.

use std::os::unix::fs::PermissionsExt as _;

use crate::harness::{Test, seed};

const VALUE: &str = "o'brien\\zoë@x.com";

fn applied() -> Test {
    let test = Test::new(&seed(&[(
        "use_1",
        &["user_id:u_1", &format!("email:{VALUE}"), "email:keep@x.com"],
    )]));
    test.write(
        "m.yaml",
        &format!(
            "version: 1\nspace: spa_test\nregion: us\nreason: \"report test\"\nremove:\n  - profile: user_id:u_1\n    identifier: {}\n",
            serde_json::Value::String(format!("email:{VALUE}"))
        ),
    );
    test.idprune(["plan", "m.yaml"]).run().ok();
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    test
}

#[test]
fn each_dialect_quotes_the_removed_value_its_own_way() {
    let test = applied();
    let expected = [
        ("snowflake", r"'o\'brien\\zoë@x.com'"),
        ("bigquery", r"'o\'brien\\zoë@x.com'"),
        ("databricks", r"'o\'brien\\zoë@x.com'"),
        ("redshift", r"'o''brien\\zoë@x.com'"),
        ("postgres", r"E'o''brien\\zoë@x.com'"),
    ];
    for (dialect, literal) in expected {
        let out = test
            .idprune(["report", "m.state.db", "--sql", "--dialect", dialect])
            .run()
            .ok();
        assert!(
            out.stdout.contains(literal),
            "{dialect}: expected {literal}\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("external_id_mapping_updates"),
            "{}",
            out.stdout
        );
    }
    // BigQuery project ids with a hyphen are quoted with backticks.
    let out = test
        .idprune([
            "report",
            "m.state.db",
            "--sql",
            "--dialect",
            "bigquery",
            "--schema",
            "my-proj.profiles_sync",
        ])
        .run()
        .ok();
    assert!(
        out.stdout
            .contains("`my-proj`.profiles_sync.external_id_mapping_updates"),
        "{}",
        out.stdout
    );
}

#[test]
fn csv_form_and_discover() {
    let test = applied();
    let out = test
        .idprune([
            "report",
            "m.state.db",
            "--sql",
            "--dialect",
            "snowflake",
            "--csv",
            "removed.csv",
        ])
        .run()
        .ok();
    assert!(
        out.stdout.contains("PUT 'file://removed.csv'"),
        "{}",
        out.stdout
    );
    let csv = std::fs::read_to_string(test.path("removed.csv")).expect("csv");
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<(String, String)> = rdr
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("CSV rows");
    assert_eq!(rows, [("email".to_owned(), VALUE.to_owned())]);
    let mode = std::fs::metadata(test.path("removed.csv"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the CSV holds identifiers: 0600");
    // It never replaces a file.
    test.idprune(["report", "m.state.db", "--sql", "--csv", "removed.csv"])
        .run()
        .code(1)
        .stderr_has("must not exist yet");

    // --discover needs no state file.
    let out = Test::offline()
        .idprune([
            "report",
            "--sql",
            "--discover",
            "email:%@import.invalid",
            "--dialect",
            "postgres",
        ])
        .run()
        .ok();
    assert!(
        out.stdout
            .contains("WHERE (l.type = 'email' AND l.value LIKE '%@import.invalid')"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "SELECT a.user_id AS user_id, h.canonical_segment_id AS canonical_segment_id"
        ),
        "{}",
        out.stdout
    );
    // --discover-csv reads the CSV's types; a wrong header is refused by name.
    let test = Test::offline();
    test.write(
        "w.csv",
        "ID_TYPE,id_value\nemail,a@x.com\nphone,+15550100\n",
    );
    let out = test
        .idprune([
            "report",
            "--sql",
            "--discover-csv",
            "w.csv",
            "--dialect",
            "duckdb",
        ])
        .run()
        .ok();
    assert!(out.stdout.contains("read_csv('w.csv'"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("--remove-column email --remove-column phone"),
        "{}",
        out.stdout
    );
    // A user_id to remove would make a second `user_id` column: refused, saying why and
    // with the way out.
    test.idprune(["report", "--sql", "--discover", "user_id:null%"])
        .run()
        .code(1)
        .stderr_has("a second `user_id` column")
        .stderr_has("reads every profile that loses a user_id")
        .stderr_has("manifest's `remove:` entries");
    test.write("bad.csv", "type,value\nemail,a@x.com\n");
    test.idprune(["report", "--sql", "--discover-csv", "bad.csv"])
        .run()
        .code(1)
        .stderr_has("the header `id_type,id_value`");
    Test::offline()
        .idprune(["report", "--sql", "--discover", "no-colon"])
        .run()
        .code(1)
        .stderr_has("TYPE:PATTERN");
    Test::offline().idprune(["report", "--sql"]).run().code(1);
}
