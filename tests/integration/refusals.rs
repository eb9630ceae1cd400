//! Every refusal exits 4 and sends nothing: not one request reaches the emulator.

use std::process::{Child, Command, Stdio};

use crate::harness::{Output, Test};
use crate::plan_apply::mixed_test;

/// Plans the mixed manifest into `m.state.db` and returns the test, its digest and the number
/// of requests the plan made.
fn planned() -> (Test, String, u64) {
    let test = mixed_test();
    let digest = test.plan("m.yaml", "m.state.db");
    let requests = test.emu().stats().requests;
    (test, digest, requests)
}

/// Asserts a refusal: exit 4, and the emulator saw no request since the plan.
#[track_caller]
fn refused(test: &Test, requests_after_plan: u64, out: Output) -> Output {
    let out = out.code(4);
    let stats = test.emu().stats();
    assert_eq!(stats.deletes, 0, "a refused apply sent a delete");
    assert_eq!(
        stats.requests, requests_after_plan,
        "a refused apply sent a request"
    );
    let states = test.item_states("m.state.db");
    for settled in ["in_flight", "done", "already_absent", "failed"] {
        assert!(!states.contains_key(settled), "{states:?}");
    }
    out
}

#[test]
fn manifest_edited_after_plan() {
    let (test, digest, requests) = planned();
    let mut manifest = std::fs::read_to_string(test.path("m.yaml")).expect("reading");
    manifest.push_str("# an innocent-looking comment\n");
    test.write("m.yaml", &manifest);
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run();
    refused(&test, requests, out).stderr_has("changed since the plan");
}

#[test]
fn state_row_edited_by_hand() {
    let (test, digest, requests) = planned();
    let changed = test
        .edit_db("m.state.db")
        .execute(
            "UPDATE items SET id_value = 'other@x.com' WHERE seq = 1",
            [],
        )
        .expect("editing the state file");
    assert_eq!(changed, 1);
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run();
    refused(&test, requests, out).stderr_has("changed after it was sealed");
    // `--yes` does not get around the seal either.
    let out = test.idprune(["apply", "m.state.db", "--yes"]).run();
    refused(&test, requests, out);
}

#[test]
fn action_flipped_by_hand() {
    let (test, _, requests) = planned();
    test.edit_db("m.state.db")
        .execute(
            "UPDATE items SET action = 'delete', state = 'pending' WHERE action = 'blocked'",
            [],
        )
        .expect("editing the state file");
    let out = test.idprune(["apply", "m.state.db", "--yes"]).run();
    refused(&test, requests, out).stderr_has("changed after it was sealed");
}

#[test]
fn wrong_approval() {
    let (test, digest, requests) = planned();
    let hex = digest.strip_prefix("sha256:").expect("sha256: prefix");
    let other = format!("sha256:{}", "0".repeat(64));
    let short = &hex[..8];
    let mut flipped = hex.to_owned().into_bytes();
    flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("hex");
    // Too short to name any plan: said as such.
    let out = test
        .idprune(["apply", "m.state.db", "--approve", short])
        .run();
    refused(&test, requests, out).stderr_has("use at least 12 hex digits");
    for wrong in [other.as_str(), flipped.as_str(), "", "yes"] {
        let out = test
            .idprune(["apply", "m.state.db", "--approve", wrong])
            .run();
        refused(&test, requests, out)
            .stderr_has("does not name this plan's digest")
            .stderr_has(&digest);
    }
    // The accepted spellings do apply: a 12-digit prefix, here.
    test.idprune(["apply", "m.state.db", "--approve", &hex[..12]])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deletes, 10);
}

#[test]
fn no_approval_and_no_terminal() {
    let (test, digest, requests) = planned();
    let out = test.idprune(["apply", "m.state.db"]).run();
    refused(&test, requests, out).stderr_has(&digest);
}

#[test]
fn another_api_url_than_the_plan() {
    let (test, digest, requests) = planned();
    // Same host, another port: port 1 is never listening, so a request would fail with exit 1.
    let out = test
        .idprune([
            "apply",
            "m.state.db",
            "--approve",
            &digest,
            "--api-url",
            "http://127.0.0.1:1",
        ])
        .run();
    refused(&test, requests, out)
        .stderr_has("the plan was resolved against")
        .stderr_has("http://127.0.0.1:1");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .env("IDPRUNE_API_URL", "http://localhost:1")
        .run();
    refused(&test, requests, out)
        .stderr_has("the plan was resolved against")
        .stderr_has("http://localhost:1");
}

/// A child process that lives until dropped: a live pid to hold a lock with.
pub struct Live(pub Child);

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The start time of `pid` in clock ticks (`/proc/PID/stat` field 22), as a lock row holds it.
pub fn proc_start(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc");
    let rest = &stat[stat.rfind(')').expect("a command name") + 1..];
    rest.split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .expect("field 22")
}

pub fn hostname() -> String {
    let out = crate::harness::output_bounded(
        Command::new("hostname").stdout(std::process::Stdio::piped()),
        None,
    );
    String::from_utf8(out.stdout)
        .expect("host name is UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn state_locked_by_a_live_process() {
    let (test, digest, requests) = planned();
    let mut holder = Live(
        Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning a process to hold the lock"),
    );
    let pid = holder.0.id();
    test.edit_db("m.state.db")
        .execute(
            "INSERT INTO lock (id, lock_id, pid, host, user, started_at, proc_start) VALUES (1, 'feedc0de', ?1, ?2, 'someone', strftime('%s','now'), ?3)",
            rusqlite::params![pid, hostname(), proc_start(pid)],
        )
        .expect("inserting a lock row");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run();
    let out = refused(&test, requests, out);
    assert!(
        out.stderr.contains(&format!("pid {pid}")) && out.stderr.contains("feedc0de"),
        "the refusal names the holder\n{}",
        out.stderr
    );
    // `unlock` refuses while the holder runs.
    test.idprune(["unlock", "m.state.db", "feedc0de"])
        .run()
        .code(4);
    // Once the holder is gone the lock is stale and apply takes it over.
    let _ = holder.0.kill();
    let _ = holder.0.wait();
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok()
        .stderr_has("stale lock");
    assert_eq!(test.emu().stats().deletes, 10);
}

#[test]
fn expired_plan() {
    let test = mixed_test();
    test.idprune(["plan", "m.yaml", "--ttl", "1s"]).run().ok();
    let digest = test.digest("m.state.db");
    let requests = test.emu().stats().requests;
    // The creation time is sealed (editing it is refused as tampering: `tamper::*`), so the
    // plan ages for real: wait, with a bound, until the clock is past its TTL.
    let created: i64 = test
        .db("m.state.db")
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'created_at'",
            [],
            |r| r.get(0),
        )
        .expect("meta has a created_at row");
    let start = std::time::Instant::now();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        <= created as u64 + 1
    {
        assert!(
            start.elapsed() < crate::harness::PATIENCE,
            "the clock stood still"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run();
    refused(&test, requests, out).stderr_has("TTL");
}

#[test]
fn pinned_source_changed_and_apply_from_another_directory() {
    let test = mixed_test();
    let csv = std::fs::read(test.path("bad.csv")).expect("reading the CSV");
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&csv))
    };
    let manifest = std::fs::read_to_string(test.path("m.yaml")).expect("reading");
    test.write(
        "m.yaml",
        &manifest.replace(
            "    remove_columns: [email]\n",
            &format!("    remove_columns: [email]\n    sha256: {sha}\n"),
        ),
    );
    std::fs::create_dir(test.path("plans")).expect("mkdir");
    std::fs::create_dir(test.path("elsewhere")).expect("mkdir");
    test.idprune(["plan", "m.yaml", "-o", "plans/x.state.db"])
        .run()
        .ok();
    let digest = test.digest("plans/x.state.db");
    let requests = test.emu().stats().requests;
    let mut changed = csv.clone();
    changed.extend_from_slice(b"use_c6,c6@x.com\n");
    std::fs::write(test.path("bad.csv"), &changed).expect("editing the CSV");
    // Run from another directory: the stored paths are relative to the state file.
    let out = test
        .idprune(["apply", "../plans/x.state.db", "--approve", &digest])
        .current_dir(test.path("elsewhere"))
        .run()
        .code(4)
        .stderr_has("pinned source");
    assert!(out.stderr.contains("bad.csv"), "{}", out.stderr);
    assert_eq!(test.emu().stats().requests, requests);
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn an_edit_of_the_sealed_header_is_refused() {
    let test = mixed_test();
    let csv = std::fs::read(test.path("bad.csv")).expect("reading the CSV");
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&csv))
    };
    let manifest = std::fs::read_to_string(test.path("m.yaml")).expect("reading");
    test.write(
        "m.yaml",
        &manifest.replace(
            "    remove_columns: [email]\n",
            &format!("    remove_columns: [email]\n    sha256: {sha}\n"),
        ),
    );
    let digest = test.plan("m.yaml", "m.state.db");
    let requests = test.emu().stats().requests;
    let zeros = "0".repeat(64);
    // Each edit of a sealed header field, and the refusals that may name it: the seal check
    // comes first, a check of that field itself may too. A lock or approval refusal would not do.
    let edits: [(&str, String, &[&str]); 4] = [
        (
            "space",
            "UPDATE meta SET value = 'spa_other' WHERE key = 'space'".into(),
            &["sealed"],
        ),
        (
            "api origin",
            "UPDATE meta SET value = 'http://127.0.0.1:1' WHERE key = 'api_origin'".into(),
            &["sealed", "resolved against"],
        ),
        (
            "manifest hash",
            format!("UPDATE meta SET value = '{zeros}' WHERE key = 'manifest_sha256'"),
            &["sealed", "changed since the plan"],
        ),
        (
            "pinned source",
            format!("UPDATE sources SET sha256 = '{zeros}' WHERE pinned = 1"),
            &["sealed", "pinned source"],
        ),
    ];
    for (n, (what, sql, reasons)) in edits.iter().enumerate() {
        let name = format!("edit-{n}.state.db");
        std::fs::copy(test.path("m.state.db"), test.path(&name)).expect("copying the plan");
        let changed = test
            .edit_db(&name)
            .execute(sql, [])
            .expect("editing the header");
        assert_eq!(changed, 1, "{what}: one row edited");
        let out = test
            .idprune(["apply", &name, "--approve", &digest])
            .run()
            .code(4);
        assert!(
            reasons.iter().any(|r| out.stderr.contains(r)),
            "{what}: the refusal does not name the edit\n{}",
            out.stderr
        );
        assert_eq!(test.emu().stats().requests, requests, "{what}: a request");
    }
    // The untouched plan still applies.
    test.idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .ok();
}
