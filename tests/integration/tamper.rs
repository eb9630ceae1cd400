//! The whole state file is sealed: every attack here edits a sealed file with rusqlite (a
//! trigger, a view, a field outside the plan digest, a journal state, a view field, an
//! out-of-range value), then runs the real binary against the emulator. Each is refused (exit 4,
//! or a clear exit 1) before a single request, and none panics. Also: a `plan` racing an
//! `apply`, foreign and empty files, locks held by a reused pid, bidi characters, and a property
//! test over every single-row edit of a sealed file.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rusqlite::types::Value;

use crate::crash::{apply_under_way, big_test};
use crate::harness::{Deleted, Output, PATIENCE, Test, seed, wait_bounded};
use crate::kills::integrity_ok;
use crate::plan_apply::mixed_test;
use crate::refusals::{Live, hostname, proc_start};

/// Plans the mixed manifest into `m.state.db`; returns the test, its digest and the number of
/// requests the plan made.
fn planned() -> (Test, String, u64) {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let requests = test.emu().stats().requests;
    (test, digest, requests)
}

/// Asserts exit `code` and that the emulator saw no request since `requests`.
#[track_caller]
fn refused_with(test: &Test, requests: u64, code: i32, out: Output) -> Output {
    let out = out.code(code);
    let stats = test.emu().stats();
    assert_eq!(stats.deletes, 0, "a refused command sent a delete");
    assert_eq!(stats.requests, requests, "a refused command sent a request");
    out
}

/// `apply --approve DIGEST` is refused with exit 4 and nothing sent; returns its output.
#[track_caller]
fn apply_refused(test: &Test, digest: &str, requests: u64) -> Output {
    let out = test
        .idprune(["apply", "m.state.db", "--approve", digest])
        .run();
    refused_with(test, requests, 4, out)
}

/// Every view of the file is refused with exit `code` as well.
#[track_caller]
fn views_refused(test: &Test, code: i32) {
    for args in [
        &["show", "m.state.db"][..],
        &["show", "m.state.db", "--format", "markdown"],
        &["show", "m.state.db", "--format", "json"],
        &["status", "m.state.db"],
        &["status", "m.state.db", "--format", "json"],
    ] {
        let out = test.idprune(args).run();
        assert_eq!(out.code, Some(code), "{args:?}\n{}", out.all());
        assert!(
            !out.stderr.contains("panicked"),
            "{args:?} panicked\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_trigger_on_runs_that_rewrites_an_item_is_refused_before_any_request() {
    // The first attack: apply's own INSERT INTO runs fires a trigger that points the
    // first delete at an identifier nobody approved, and a second one hides it afterwards.
    let (test, digest, requests) = planned();
    test.edit_db("m.state.db")
        .execute_batch(
            "CREATE TRIGGER evil AFTER INSERT ON runs BEGIN
                 UPDATE items SET id_value = 'keep1@x.com' WHERE seq = 1;
             END;
             CREATE TRIGGER tidy AFTER UPDATE OF state ON items WHEN NEW.state = 'done' BEGIN
                 UPDATE items SET id_value = 'wrong1@x.com' WHERE seq = 1;
             END;",
        )
        .expect("adding triggers");
    let out = apply_refused(&test, &digest, requests);
    assert!(
        out.stderr
            .contains("holds schema objects idprune did not create")
            && out.stderr.contains("trigger `evil`")
            && out.stderr.contains("trigger `tidy`"),
        "{}",
        out.stderr
    );
    let out = test.idprune(["apply", "m.state.db", "--yes"]).run();
    refused_with(&test, requests, 4, out);
    views_refused(&test, 4);
    // The lock and plan's replacement are refused too: nothing of idprune runs that SQL.
    test.idprune(["unlock", "m.state.db", "00000000"])
        .run()
        .code(4);
    test.idprune(["plan", "m.yaml", "--force"]).run().code(4);
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn every_foreign_schema_object_is_refused() {
    let attacks = [
        "CREATE TRIGGER on_lock AFTER INSERT ON lock BEGIN UPDATE items SET id_value = 'keep1@x.com' WHERE seq = 1; END;",
        "CREATE VIEW v AS SELECT * FROM items;",
        "CREATE INDEX extra ON items (note);",
        "CREATE TABLE notes (x TEXT);",
        "DROP INDEX items_by_state;",
        "DROP TRIGGER runs_no_delete;",
        "DROP TRIGGER runs_finished_frozen; CREATE TRIGGER runs_finished_frozen BEFORE UPDATE ON runs BEGIN SELECT 1; END;",
    ];
    let (test, digest, requests) = planned();
    let pristine = std::fs::read(test.path("m.state.db")).expect("reading the plan");
    for sql in attacks {
        std::fs::write(test.path("m.state.db"), &pristine).expect("restoring the plan");
        test.edit_db("m.state.db")
            .execute_batch(sql)
            .expect("editing the schema");
        let out = apply_refused(&test, &digest, requests);
        assert!(
            out.stderr.contains("it may have been tampered with"),
            "{sql}\n{}",
            out.stderr
        );
    }
    views_refused(&test, 4);
}

/// One edit of a sealed field outside the plan digest, with what it would have done.
const SEALED_FIELD_EDITS: [&str; 11] = [
    // Revive an expired plan, or make it last for ever (`-1` used to become u64::MAX).
    "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 3600 AS TEXT) WHERE key = 'created_at'",
    "UPDATE meta SET value = '-1' WHERE key = 'ttl_secs'",
    // Point the manifest check at a file that is not there: it only warned.
    "UPDATE meta SET value = 'nowhere.yaml' WHERE key = 'manifest_path'",
    // Write something else into the audit trail.
    "UPDATE meta SET value = 'approved by the CFO' WHERE key = 'reason'",
    // Hide a sealed delete from the diff views.
    "UPDATE profiles SET before = '[[\"user_id\",\"u_1\"],[\"email\",\"keep1@x.com\"]]' WHERE key = (SELECT profile FROM items WHERE seq = 1)",
    "UPDATE items SET profile = NULL WHERE seq = 1",
    "UPDATE items SET note = 'harmless' WHERE seq = 1",
    "INSERT INTO warnings (idx, message) VALUES (99, 'reviewed: all good')",
    // Point a source's check elsewhere.
    "UPDATE meta SET value = 'other.csv' WHERE key = 'source_path.0'",
    "UPDATE sources SET sha256 = '00' WHERE idx = 0",
    "INSERT INTO meta (key, value) VALUES ('purged_at', '1')",
];

#[test]
fn fields_outside_the_digest_are_sealed_too() {
    let (test, digest, requests) = planned();
    let pristine = std::fs::read(test.path("m.state.db")).expect("reading the plan");
    for sql in SEALED_FIELD_EDITS {
        std::fs::write(test.path("m.state.db"), &pristine).expect("restoring the plan");
        let changed = test.edit_db("m.state.db").execute(sql, []).expect(sql);
        assert_eq!(changed, 1, "{sql}");
        let out = apply_refused(&test, &digest, requests);
        assert!(
            out.stderr.contains("was changed after it was sealed")
                || out.stderr.contains("tampered"),
            "{sql}\n{}",
            out.stderr
        );
        views_refused(&test, 4);
    }
}

#[test]
fn journal_states_no_apply_writes_are_refused() {
    let (test, digest, requests) = planned();
    let pristine = std::fs::read(test.path("m.state.db")).expect("reading the plan");
    for (sql, says) in [
        // `skipped` on a delete used to make the run "complete" without sending it.
        (
            "UPDATE items SET state = 'skipped' WHERE seq = 1",
            "`delete` item in state `skipped`",
        ),
        (
            "UPDATE items SET state = 'later' WHERE seq = 1",
            "unknown state `later`",
        ),
        (
            "UPDATE items SET state = 'pending' WHERE action = 'blocked'",
            "`blocked` item in state `pending`",
        ),
        // Progress before any apply ran: the delete would never be sent.
        (
            "UPDATE items SET state = 'done' WHERE seq = 1",
            "no apply ever ran",
        ),
        (
            "UPDATE items SET attempts = -5 WHERE seq = 1",
            "out of range",
        ),
        (
            "UPDATE items SET last_status = 70000 WHERE seq = 1",
            "out of range",
        ),
    ] {
        std::fs::write(test.path("m.state.db"), &pristine).expect("restoring the plan");
        test.edit_db("m.state.db").execute_batch(sql).expect(sql);
        apply_refused(&test, &digest, requests).stderr_has(says);
    }
}

#[test]
fn out_of_range_values_give_errors_naming_the_field_not_panics() {
    let (test, digest, requests) = planned();
    // The journal tables are not sealed (apply writes them), so their values are checked.
    test.edit_db("m.state.db")
        .execute(
            "INSERT INTO lock (id, lock_id, pid, host, user, started_at, proc_start) VALUES (1, 'feedc0de', 4194000, 'elsewhere', 'x', 99999999999999, 0)",
            [],
        )
        .expect("a lock row from year 3170843");
    for args in [
        &["status", "m.state.db"][..],
        &["status", "m.state.db", "--format", "json"],
        &["apply", "m.state.db", "--approve", &digest],
        &["plan", "m.yaml", "--force"],
    ] {
        let out = test.idprune(args).run();
        let out = refused_with(&test, requests, 1, out);
        assert!(
            out.stderr.contains("`lock.started_at` is 99999999999999")
                && !out.stderr.contains("panicked"),
            "{args:?}\n{}",
            out.stderr
        );
    }
    test.edit_db("m.state.db")
        .execute_batch(
            "DELETE FROM lock;
             INSERT INTO runs (started_at, user, host, digest, reason) VALUES (99999999999999, 'u', 'h', 'd', 'r');",
        )
        .expect("a run from year 3170843");
    let out = test.idprune(["status", "m.state.db"]).run().code(1);
    assert!(
        out.stderr
            .contains("`runs.started_at of run 1` is 99999999999999"),
        "{}",
        out.stderr
    );
    // A TTL nothing could read back is refused before anything is read or written.
    let out = test
        .idprune([
            "plan",
            "m.yaml",
            "-o",
            "far.state.db",
            "--ttl",
            "400000000000y",
        ])
        .run()
        .code(1)
        .stderr_has("--ttl");
    assert!(out.stderr.contains("year 9999"), "{}", out.stderr);
    assert!(!test.path("far.state.db").exists());
    assert_eq!(test.emu().stats().requests, requests);
}

#[test]
fn odd_sealed_values_resealed_by_a_knowing_writer_give_errors_not_panics() {
    // A writer who recomputes the file seal gets past it; the values themselves are still
    // range-checked on every read.
    let (test, digest, requests) = planned();
    let pristine = std::fs::read(test.path("m.state.db")).expect("reading the plan");
    for (key, value) in [
        ("created_at", "99999999999999"),
        ("created_at", "-1"),
        ("ttl_secs", "-1"),
        ("ttl_secs", "18446744073709551615"),
        ("format_version", "4294967296"),
    ] {
        std::fs::write(test.path("m.state.db"), &pristine).expect("restoring the plan");
        {
            let db = test.edit_db("m.state.db");
            db.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, value])
                .expect("editing");
            let seal = idprune::state::check::file_seal(&db).expect("resealing");
            db.execute("UPDATE meta SET value = ?1 WHERE key = 'file_seal'", [seal])
                .expect("storing the seal");
        }
        for args in [
            &["show", "m.state.db"][..],
            &["status", "m.state.db"],
            &["apply", "m.state.db", "--approve", &digest],
            &["plan", "m.yaml", "--force"],
        ] {
            let out = test.idprune(args).run();
            let out = refused_with(&test, requests, 1, out);
            assert!(
                out.stderr.contains(&format!("`{key}`")) && !out.stderr.contains("panicked"),
                "{key}={value} {args:?}\n{}",
                out.stderr
            );
        }
    }
}

#[test]
fn empty_and_foreign_files_are_never_written() {
    let (test, digest, requests) = planned();
    let foreign = test.path("foreign.db");
    {
        let db = rusqlite::Connection::open(&foreign).expect("a foreign database");
        db.execute_batch("PRAGMA journal_mode = DELETE; CREATE TABLE meta (key, value);")
            .expect("creating it");
    }
    std::fs::write(test.path("empty.db"), b"").expect("an empty file");
    std::fs::write(test.path("text.db"), b"digest: sha256:00\n").expect("a text file");
    for name in ["foreign.db", "empty.db", "text.db"] {
        let path = test.path(name);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod 600");
        let before = std::fs::read(&path).expect("reading");
        for args in [
            &["show", name][..],
            &["status", name],
            &["apply", name, "--approve", &digest],
            &["unlock", name, "00000000"],
        ] {
            let out = test.idprune(args).run();
            let out = refused_with(&test, requests, 1, out);
            // `apply` takes a manifest too: a file that is not SQLite is read as one.
            let as_manifest = args[0] == "apply" && name != "foreign.db";
            assert!(
                out.stderr.contains("not an idprune state file")
                    || (as_manifest && out.stderr.contains("manifest")),
                "{args:?}\n{}",
                out.stderr
            );
        }
        assert_eq!(
            std::fs::read(&path).expect("reading"),
            before,
            "{name} was written"
        );
        for side in ["-wal", "-shm", "-journal"] {
            assert!(
                !test.path(&format!("{name}{side}")).exists(),
                "{name}{side} was created"
            );
        }
    }
}

#[test]
fn a_lock_whose_pid_now_names_another_process_is_stale() {
    let (test, digest, _) = planned();
    let holder = Live(
        Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning a process whose pid the lock names"),
    );
    let pid = holder.0.id();
    // The pid is alive, but the lock recorded another start time: the idprune that took it
    // died and the pid was reused.
    test.edit_db("m.state.db")
        .execute(
            "INSERT INTO lock (id, lock_id, pid, host, user, started_at, proc_start) VALUES (1, 'feedc0de', ?1, ?2, 'someone', strftime('%s','now'), ?3)",
            rusqlite::params![pid, hostname(), proc_start(pid) + 1],
        )
        .expect("inserting a lock row");
    let status = test.idprune(["status", "m.state.db"]).run().ok();
    assert!(status.stdout.contains("feedc0de"), "{}", status.stdout);
    // `unlock` breaks it although the pid runs.
    let out = test
        .idprune(["unlock", "m.state.db", "feedc0de"])
        .run()
        .ok();
    assert!(out.stdout.contains("Broke the lock"), "{}", out.stdout);
    assert!(
        test.idprune(["status", "m.state.db"])
            .run()
            .ok()
            .stdout
            .contains("Not locked")
    );
    // And apply takes such a lock over as stale.
    test.edit_db("m.state.db")
        .execute(
            "INSERT INTO lock (id, lock_id, pid, host, user, started_at, proc_start) VALUES (1, 'feedc0de', ?1, ?2, 'someone', strftime('%s','now'), ?3)",
            rusqlite::params![pid, hostname(), proc_start(pid) + 1],
        )
        .expect("inserting a lock row");
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok()
        .stderr_has("stale lock");
    assert_eq!(test.emu().stats().deletes, 10);
    drop(holder);
}

/// The pid in the sidecar lock file of `state`, once a process holds it.
fn lock_holder_pid(test: &Test, state: &str) -> Option<u32> {
    let text = std::fs::read_to_string(test.path(&format!("{state}.lock"))).ok()?;
    text.split('\t').nth(1)?.parse().ok()
}

#[test]
fn an_apply_started_while_a_plan_runs_is_refused_and_the_new_plan_applies_exactly() {
    // The second attack, the other way round: a plan under way (resolving 300 profiles
    // two at a time, 20 ms each), and an apply of the old file started meanwhile.
    let test = big_test(&[]);
    let old_deletes = test.planned_deletes("big.state.db");
    let mut plan = test
        .idprune(["plan", "big.yaml", "--rate", "0", "--concurrency", "2"])
        .spawn();
    let plan_pid = plan.id();
    let start = std::time::Instant::now();
    while lock_holder_pid(&test, "big.state.db") != Some(plan_pid) {
        assert!(start.elapsed() < PATIENCE, "the plan never took the lock");
        assert!(
            plan.try_wait().expect("polling").is_none(),
            "plan ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(4);
    assert!(
        out.stderr.contains(&format!("pid {plan_pid}")),
        "the refusal names the plan\n{}",
        out.stderr
    );
    assert!(
        plan.try_wait().expect("polling").is_none(),
        "the plan finished before the apply was tried; the test proves nothing"
    );
    assert_eq!(test.emu().stats().deletes, 0);
    assert_eq!(wait_bounded(&mut plan).code(), Some(0));
    integrity_ok(&test);
    assert_eq!(test.planned_deletes("big.state.db"), old_deletes);
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deleted_set(), old_deletes);
    integrity_ok(&test);
}

#[test]
fn a_plan_after_a_killed_apply_never_adopts_its_log() {
    // An apply killed mid-run leaves a log (`-wal`) beside the file. A plan replacing it must
    // not let the new file pick that log up: the new file passes SQLite's integrity check, and
    // applying it deletes exactly the rest, each identifier once, none misclassified.
    let test = big_test(&[]);
    let all = test.planned_deletes("big.state.db");
    let mut apply = apply_under_way(&test);
    apply.kill().expect("SIGKILL the apply");
    wait_bounded(&mut apply);
    // Read-only, so that this look does not itself fold the log into the file.
    let done: u64 = rusqlite::Connection::open_with_flags(
        test.path("big.state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|db| {
        db.query_row("SELECT count(*) FROM items WHERE state = 'done'", [], |r| {
            r.get(0)
        })
    })
    .expect("counting done items");
    assert!((done as usize) < all.len(), "the apply finished first");
    let wal = std::fs::metadata(test.path("big.state.db-wal")).map_or(0, |m| m.len());
    assert!(
        wal > 0,
        "the killed apply left no log; the test proves nothing"
    );
    test.idprune(["plan", "big.yaml", "--force", "--rate", "0"])
        .run()
        .ok();
    integrity_ok(&test);
    let rest = test.planned_deletes("big.state.db");
    let states = test.item_states("big.state.db");
    assert_eq!(states.get("pending").copied(), Some(rest.len() as u64));
    assert!(!states.contains_key("done"), "{states:?}");
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    integrity_ok(&test);
    let states = test.item_states("big.state.db");
    assert_eq!(states.get("done").copied(), Some(rest.len() as u64));
    assert!(!states.contains_key("already_absent"), "{states:?}");
    // Every planned identifier deleted once: the emulator's list has no repeat.
    assert_eq!(test.emu().stats().deleted_set(), all);
}

#[test]
fn bidi_and_invisible_characters_are_escaped_in_human_views() {
    let test = Test::new(&seed(&[(
        "use_b",
        &[
            "user_id:u_b",
            "email:evil\u{202e}moc.x@a",
            "email:zero\u{200b}width@x.com",
            "email:keep@x.com",
        ],
    )]));
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: \"bidi \u{2067}test\u{2069}\"\nremove:\n  - profile: user_id:u_b\n    identifiers: [\"email:evil\u{202e}moc.x@a\", \"email:zero\u{200b}width@x.com\"]\n",
    );
    let out = test.idprune(["plan", "m.yaml"]).run().ok();
    let markdown = test
        .idprune(["show", "m.state.db", "--format", "markdown", "--reveal"])
        .run()
        .ok();
    let status = test.idprune(["status", "m.state.db"]).run().ok();
    for (what, text) in [
        ("plan", out.all()),
        ("markdown", markdown.all()),
        ("status", status.all()),
    ] {
        for c in ['\u{202e}', '\u{200b}', '\u{2067}', '\u{2069}'] {
            assert!(!text.contains(c), "{what} shows {c:?} raw\n{text}");
        }
    }
    assert!(
        out.stdout.contains("evil\\u{202e}moc.x@a"),
        "{}",
        out.stdout
    );
    // The JSON view keeps the exact value (it is for programs, and JSON escapes nothing away).
    let json = test
        .idprune(["show", "m.state.db", "--format", "json", "--reveal"])
        .run()
        .ok();
    assert!(
        json.stdout.contains("evil\u{202e}moc.x@a"),
        "{}",
        json.stdout
    );
}

/// A single-row edit of a sealed file: table, row (by rowid order), and what to do with it.
#[derive(Clone, Debug)]
enum Edit {
    /// Set one column of one row to a value.
    Set {
        table: usize,
        row: usize,
        column: usize,
        value: Value,
    },
    /// Delete one row.
    Delete { table: usize, row: usize },
    /// Insert a copy of one row with one column changed (and a fresh key where it has one).
    Insert {
        table: usize,
        row: usize,
        column: usize,
        value: Value,
    },
}

const TABLES: [&str; 7] = [
    "meta", "sources", "profiles", "items", "warnings", "lock", "runs",
];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        (-3i64..400).prop_map(Value::Integer),
        "[a-z_@.:0-9\\-]{0,12}".prop_map(Value::Text),
        prop::sample::select(vec![
            "done",
            "skipped",
            "pending",
            "in_flight",
            "failed",
            "delete",
            "absent",
            "blocked",
            "email",
            "user_id",
            "u_1",
            "keep1@x.com",
            "99999999999999",
            "-1",
        ])
        .prop_map(|s| Value::Text(s.to_owned())),
        any::<f64>().prop_map(Value::Real),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = (0..TABLES.len(), 0usize..40, 0usize..20);
    prop_oneof![
        (at.clone(), value()).prop_map(|((table, row, column), value)| Edit::Set {
            table,
            row,
            column,
            value
        }),
        at.clone()
            .prop_map(|(table, row, _)| Edit::Delete { table, row }),
        (at, value()).prop_map(|((table, row, column), value)| Edit::Insert {
            table,
            row,
            column,
            value
        }),
    ]
}

/// Applies `edit` to the database; returns false when it does not apply (an empty table, or a
/// constraint the schema enforces refused it).
fn perform(db: &rusqlite::Connection, edit: &Edit) -> bool {
    let table = TABLES[match edit {
        Edit::Set { table, .. } | Edit::Delete { table, .. } | Edit::Insert { table, .. } => *table,
    }];
    let columns: Vec<String> = db
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("columns");
    // `profiles` is a WITHOUT ROWID table: its key stands in for the rowid.
    let pk = if table == "profiles" { "key" } else { "rowid" };
    let rowids: Vec<Value> = db
        .prepare(&format!("SELECT {pk} FROM {table} ORDER BY {pk}"))
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("rowids");
    let result = match edit {
        Edit::Set {
            row, column, value, ..
        } => {
            let (Some(rowid), Some(col)) = (
                rowids.get(row % rowids.len().max(1)),
                columns.get(column % columns.len()),
            ) else {
                return false;
            };
            db.execute(
                &format!("UPDATE {table} SET \"{col}\" = ?1 WHERE {pk} = ?2"),
                rusqlite::params![value, rowid],
            )
        }
        Edit::Delete { row, .. } => {
            let Some(rowid) = rowids.get(row % rowids.len().max(1)) else {
                return false;
            };
            db.execute(&format!("DELETE FROM {table} WHERE {pk} = ?1"), [rowid])
        }
        Edit::Insert {
            row, column, value, ..
        } if rowids.is_empty() => {
            // `lock` and `runs` are empty in a fresh plan: insert a plausible row (a lock of
            // this host, a run) with one column replaced.
            let mut row: Vec<Value> = match table {
                "lock" => vec![
                    Value::Integer(1),
                    Value::Text("feedc0de".into()),
                    Value::Integer(i64::from(*row as u32 + 1)),
                    Value::Text(hostname()),
                    Value::Text("someone".into()),
                    Value::Integer(1_700_000_000),
                    Value::Integer(0),
                ],
                "runs" => {
                    let mut r = vec![Value::Null; columns.len()];
                    r[1] = Value::Integer(1_700_000_000);
                    for i in [3, 4, 5, 6] {
                        r[i] = Value::Text("x".into());
                    }
                    r
                }
                _ => return false,
            };
            row[column % columns.len()] = value.clone();
            let list = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let marks = (1..=columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            db.execute(
                &format!("INSERT INTO {table} ({list}) VALUES ({marks})"),
                rusqlite::params_from_iter(row),
            )
        }
        Edit::Insert {
            row, column, value, ..
        } => {
            let Some(rowid) = rowids.get(row % rowids.len().max(1)) else {
                return false;
            };
            let col = &columns[column % columns.len()];
            let list = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let copy = db.execute(
                &format!("CREATE TEMP TABLE copy AS SELECT {list} FROM {table} WHERE {pk} = ?1"),
                [rowid],
            );
            copy.and_then(|_| {
                db.execute(&format!("UPDATE temp.copy SET \"{col}\" = ?1"), [value])?;
                // A fresh primary key where the first column is one (seq, idx, id, key).
                let first = &columns[0];
                db.execute(
                    &format!(
                        "UPDATE temp.copy SET \"{first}\" = CASE typeof(\"{first}\") WHEN 'integer' THEN \"{first}\" + 100000 ELSE \"{first}\" || '-copy' END WHERE ?1 != '{first}'"
                    ),
                    [col],
                )?;
                let n = db.execute(
                    &format!("INSERT INTO {table} ({list}) SELECT {list} FROM temp.copy"),
                    [],
                );
                db.execute("DROP TABLE temp.copy", [])?;
                n
            })
        }
    };
    matches!(result, Ok(n) if n > 0)
}

/// Every `(user_id, type, id)` the emulator was asked to delete after `skip` earlier attempts.
fn attempts_since(test: &Test, skip: usize) -> Vec<Deleted> {
    test.emu().stats().delete_attempts[skip..]
        .iter()
        .map(|a| a.target())
        .collect()
}

#[test]
fn any_single_row_edit_is_refused_or_changes_nothing_sent() {
    // Any single-row edit of any table of a sealed file either leaves apply's requests exactly
    // the approved plan's, or is refused before the first request. One emulator for all cases:
    // a repeated apply sends the same requests (answered 404), so the comparison holds.
    let (test, digest, _) = planned();
    let approved: BTreeSet<Deleted> = test.planned_deletes("m.state.db");
    let pristine = std::fs::read(test.path("m.state.db")).expect("reading the plan");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 160,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let (refused, unchanged) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner
        .run(&edit(), |edit| {
            for side in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(test.path(&format!("m.state.db{side}")));
            }
            std::fs::write(test.path("m.state.db"), &pristine).expect("restoring the plan");
            let applies = {
                let db = test.edit_db("m.state.db");
                perform(&db, &edit)
            };
            if !applies {
                return Ok(());
            }
            let before = test.emu().stats();
            let out = test
                .idprune(["apply", "m.state.db", "--approve", &digest])
                .run();
            prop_assert!(
                !out.stderr.contains("panicked"),
                "{:?}\n{}",
                edit,
                out.stderr
            );
            let sent = attempts_since(&test, before.delete_attempts.len());
            match out.code {
                Some(0) => {
                    unchanged.set(unchanged.get() + 1);
                    let sent_set: BTreeSet<Deleted> = sent.iter().cloned().collect();
                    prop_assert_eq!(sent.len(), sent_set.len(), "a repeated request: {:?}", edit);
                    prop_assert_eq!(&sent_set, &approved, "{:?}\n{}", edit, out.stderr);
                }
                Some(1) | Some(4) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(
                        sent.is_empty(),
                        "{:?} sent {:?}\n{}",
                        edit,
                        sent,
                        out.stderr
                    );
                    prop_assert_eq!(test.emu().stats().requests, before.requests);
                }
                other => prop_assert!(false, "{:?}: exit {:?}\n{}", edit, other, out.all()),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "figures: single-row edits refused={} applied-unchanged={}",
        refused.get(),
        unchanged.get()
    );
    assert!(
        refused.get() > 0,
        "no edit was refused: the test proves nothing"
    );
}

/// Names of the files in the test's directory that start with `prefix`.
fn files_starting_with(test: &Test, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(test.path(""))
        .expect("listing")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

#[test]
fn a_plan_killed_at_any_point_leaves_the_old_file_or_the_new_one_complete() {
    // Re-plan over an existing plan and `kill -9` it at several points: while it resolves,
    // as soon as its half-written file appears, and a little later each time. Whatever the
    // point, the state file at the path opens with every check passing and holds the plan.
    let test = big_test(&["--latency-ms", "2"]);
    let planned = test.planned_deletes("big.state.db");
    let mut killed_mid_seal = 0;
    for delay_ms in [0u64, 0, 2, 5, 10, 20] {
        let mut plan = test
            .idprune(["plan", "big.yaml", "--rate", "0", "--concurrency", "8"])
            .spawn();
        let tmp = format!("big.state.db.tmp-{}", plan.id());
        let start = std::time::Instant::now();
        // Wait for the half-written file (or the end of the plan), then a little more.
        while !test.path(&tmp).exists() && plan.try_wait().expect("polling").is_none() {
            assert!(start.elapsed() < PATIENCE, "the plan never started sealing");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if plan.try_wait().expect("polling").is_none() {
            killed_mid_seal += 1;
        }
        let _ = plan.kill();
        wait_bounded(&mut plan);
        let out = test
            .idprune(["show", "big.state.db", "--format", "json"])
            .run();
        assert_eq!(
            out.code,
            Some(0),
            "after a kill {delay_ms} ms into sealing\n{}",
            out.all()
        );
        integrity_ok(&test);
        assert_eq!(test.planned_deletes("big.state.db"), planned);
    }
    assert!(
        killed_mid_seal > 0,
        "no kill landed while a plan ran; the test proves nothing"
    );
    // The next plan removes what the killed ones left, and its file applies exactly.
    test.idprune(["plan", "big.yaml", "--rate", "0"]).run().ok();
    assert_eq!(
        files_starting_with(&test, "big.state.db.tmp-"),
        Vec::<String>::new()
    );
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deleted_set(), planned);
    eprintln!("figures: plan kills mid-seal={killed_mid_seal} of 6");
}
