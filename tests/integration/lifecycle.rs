//! After the apply: `report --downstream` (CSV, JSON) and `report --sql` at the command line,
//! `purge` end to end (and `apply`, `verify` refusing the purged file), and the lock rules a
//! person meets: a lock from another host is never taken over, `unlock` breaks a stale one.

use std::collections::BTreeSet;

use crate::harness::{Deleted, Test};
use crate::plan_apply::mixed_test;

/// The mixed plan, applied in full; returns the test, its digest and the deleted set.
fn applied() -> (Test, String, BTreeSet<Deleted>) {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    let deleted = test.emu().stats().deleted_set();
    assert_eq!(deleted, test.planned_deletes("m.state.db"));
    (test, digest, deleted)
}

#[test]
fn report_downstream_lists_the_removed_identifiers_as_csv_and_json() {
    let (test, _, deleted) = applied();
    let out = test
        .idprune(["report", "m.state.db", "--downstream", "--format", "csv"])
        .run()
        .ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("seq,user_id,type,id,state"));
    let rows: BTreeSet<Deleted> = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "{line}");
            assert_eq!(f[4], "done", "{line}");
            Deleted::new(f[1], f[2], f[3])
        })
        .collect();
    assert_eq!(rows, deleted, "the CSV lists exactly what was removed");

    let out = test
        .idprune(["report", "m.state.db", "--downstream", "--format", "json"])
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let rows: BTreeSet<Deleted> = json["removed"]
        .as_array()
        .expect("a `removed` array")
        .iter()
        .map(|r| {
            Deleted::new(
                r["user_id"].as_str().expect("user_id"),
                r["type"].as_str().expect("type"),
                r["id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(rows, deleted, "the JSON lists exactly what was removed");
}

#[test]
fn report_sql_checks_every_removed_identifier_in_the_named_schema() {
    let (test, _, deleted) = applied();
    let out = test
        .idprune(["report", "m.state.db", "--sql", "--schema", "warehouse.ps"])
        .run()
        .ok();
    assert!(
        out.stdout
            .contains("warehouse.ps.external_id_mapping_updates"),
        "{}",
        out.stdout
    );
    for d in &deleted {
        assert!(
            out.stdout.contains(&format!("'{}'", d.id)),
            "the query lacks {d:?}\n{}",
            out.stdout
        );
    }
    // A schema that could smuggle SQL is refused.
    test.idprune([
        "report",
        "m.state.db",
        "--sql",
        "--schema",
        "x; DROP TABLE y",
    ])
    .run()
    .code(1)
    .stderr_has("--schema");
    // One of the two kinds is required.
    test.idprune(["report", "m.state.db"]).run().code(1);
}

#[test]
fn purge_replaces_values_and_then_apply_and_verify_refuse_the_file() {
    let (test, digest, deleted) = applied();
    test.idprune(["purge", "m.state.db"])
        .run()
        .code(1)
        .stderr_has("IDPRUNE_FINGERPRINT_KEY");
    let out = test
        .idprune(["purge", "m.state.db"])
        .env("IDPRUNE_FINGERPRINT_KEY", "a-test-fingerprint-key")
        .run()
        .ok();
    assert!(out.stdout.contains("Purged"), "{}", out.stdout);
    // No removed identifier value is left in the state file or its side files.
    for suffix in ["", "-wal", "-shm"] {
        let Ok(bytes) = std::fs::read(test.path(&format!("m.state.db{suffix}"))) else {
            continue;
        };
        for d in &deleted {
            assert!(
                !bytes.windows(d.id.len()).any(|w| w == d.id.as_bytes()),
                "`{}` is still in m.state.db{suffix}",
                d.id
            );
        }
    }
    let requests = test.emu().stats().requests;
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(4)
        .stderr_has("purged");
    test.idprune(["verify", "m.state.db"])
        .run()
        .code(1)
        .stderr_has("purged");
    assert_eq!(test.emu().stats().requests, requests, "nothing was sent");
    // `report` says the values it lists are fingerprints now, not identifiers.
    let out = test
        .idprune(["report", "m.state.db", "--downstream"])
        .run()
        .ok()
        .stderr_has("keyed fingerprints");
    assert!(out.stdout.contains(",hmac:"), "{}", out.stdout);
    // The audit trail stays: the items and their outcomes.
    assert_eq!(
        test.item_states("m.state.db").get("done").copied(),
        Some(deleted.len() as u64)
    );
}

/// Writes a lock row as another run would have left it.
fn lock(test: &Test, lock_id: &str, pid: u32, host: &str) {
    test.edit_db("m.state.db")
        .execute(
            "INSERT INTO lock (id, lock_id, pid, host, user, started_at, proc_start) VALUES (1, ?1, ?2, ?3, 'someone', strftime('%s','now'), 0)",
            rusqlite::params![lock_id, pid, host],
        )
        .expect("inserting a lock row");
}

/// A pid that runs nothing: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawning `true`");
    let pid = child.id();
    child.wait().expect("reaping `true`");
    pid
}

#[test]
fn a_lock_from_another_host_is_never_taken_over_and_unlock_breaks_it() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let requests = test.emu().stats().requests;
    // Its pid means nothing here: whether it runs can only be known on its own host.
    lock(&test, "0ther0ne", dead_pid(), "build-7.elsewhere.example");
    for _ in 0..2 {
        test.idprune(["apply", "m.state.db", "--approve", &digest])
            .run()
            .code(4)
            .stderr_has("build-7.elsewhere.example")
            .stderr_has("0ther0ne");
    }
    assert_eq!(test.emu().stats().requests, requests, "nothing was sent");
    let holder: String = test
        .db("m.state.db")
        .query_row("SELECT host FROM lock", [], |r| r.get(0))
        .expect("the lock is still there");
    assert_eq!(holder, "build-7.elsewhere.example");
    // A person who knows that run is dead breaks the lock by its id; then apply proceeds.
    test.idprune(["unlock", "m.state.db", "wrong-id"])
        .run()
        .code(4);
    test.idprune(["unlock", "m.state.db", "0ther0ne"])
        .run()
        .ok();
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    assert!(!out.stderr.contains("stale"), "{}", out.stderr);
}

#[test]
fn unlock_breaks_a_stale_lock_on_this_host() {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let host = crate::harness::output_bounded(
        std::process::Command::new("hostname").stdout(std::process::Stdio::piped()),
        None,
    );
    let host = String::from_utf8(host.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    lock(&test, "5ta1e000", dead_pid(), &host);
    let out = test
        .idprune(["unlock", "m.state.db", "5ta1e000"])
        .run()
        .ok();
    assert!(out.stdout.contains("Broke the lock"), "{}", out.stdout);
    let locks: i64 = test
        .db("m.state.db")
        .query_row("SELECT count(*) FROM lock", [], |r| r.get(0))
        .expect("counting locks");
    assert_eq!(locks, 0);
    // Nothing stale is left to take over.
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
    assert!(!out.stderr.contains("stale"), "{}", out.stderr);
}

#[test]
fn report_downstream_neutralises_cells_a_spreadsheet_would_run() {
    let test = Test::new(&crate::harness::seed(&[(
        "use_1",
        &["user_id:=u1", "email:+1@x.com", "email:good@x.com"],
    )]));
    test.write(
        "f.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: formulas\nremove:\n  - profile: \"user_id:=u1\"\n    identifier: \"email:+1@x.com\"\n",
    );
    let digest = test.plan("f.yaml", "f.state.db");
    test.idprune(["apply", "f.state.db", "--approve", &digest])
        .run()
        .ok();
    let out = test
        .idprune(["report", "f.state.db", "--downstream", "--format", "csv"])
        .run()
        .ok();
    // OWASP's CSV injection advice: a cell starting `=`, `+`, `-` or `@` gets a leading `'`.
    assert_eq!(
        out.stdout,
        "seq,user_id,type,id,state\n1,'=u1,email,'+1@x.com,done\n"
    );
}
