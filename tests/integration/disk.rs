//! The state file's disk says no: a read-only directory, a full disk. Each command fails with a
//! clear error naming the file, sends no delete it could not journal, and leaves the state file
//! intact; once the disk is writable again the same `apply` resumes to exactly the plan.
//!
//! A full disk is a tiny `tmpfs`, which needs root (and the right to mount) to set up. CI runs as
//! root and mounts; where the mount is refused, those tests report `test-skipped: ...`
//! ([`crate::harness::skipped`]) and `.ci/run` counts them as skipped, never as passed.
//! A read-only directory is a read-only `tmpfs` as root (root ignores permission bits) and a
//! `chmod 555` directory otherwise.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Test, skipped};
use crate::kills::{fleet, journal_done};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A `tmpfs` mounted on a directory of the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` on `dir` (created), or `None` when this user cannot.
    fn mount(dir: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        if !is_root() {
            return None;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs {
            dir: dir.to_owned(),
        })
    }

    /// `mount -o remount,OPTIONS`.
    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .status()
            .expect("running mount");
        assert!(status.success(), "remount {options} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Makes `dir` unwritable for this process: a read-only tmpfs remount as root, `chmod 555`
/// otherwise. The returned guard (if any) must outlive the test's use of `dir`.
fn make_read_only(dir: &Path, mount: Option<&Tmpfs>) {
    match mount {
        Some(m) => m.remount("ro"),
        None => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
            .expect("chmod 555"),
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing a directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Copies the plan's state file, manifest and CSV into `dir` (the seal check finds them there).
fn copy_plan(test: &Test, dir: &Path) {
    for name in ["big.state.db", "big.yaml", "bad.csv"] {
        std::fs::copy(test.path(name), dir.join(name)).expect("copying the plan");
    }
}

/// `PRAGMA integrity_check` of a state file anywhere.
#[track_caller]
fn integrity_ok_at(path: &Path) {
    let db = rusqlite::Connection::open(path).expect("opening the state file");
    let result: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("running the integrity check");
    assert_eq!(result, "ok");
}

#[test]
fn plan_into_a_read_only_directory_fails_clearly_and_writes_nothing() {
    let test = crate::plan_apply::mixed_test();
    let dir = test.path("ro");
    let mount = Tmpfs::mount(&dir, "size=1m");
    make_read_only(&dir, mount.as_ref());
    let out = test
        .idprune(["plan", "m.yaml", "-o", "ro/m.state.db"])
        .run()
        .code(1)
        .stderr_has("ro/m.state.db");
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert_eq!(listing(&dir), Vec::<String>::new());
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn apply_in_a_read_only_directory_fails_before_any_delete() {
    let test = fleet(50, &[]);
    let dir = test.path("ro");
    let mount = Tmpfs::mount(&dir, "size=4m");
    copy_plan(&test, &dir);
    let before = std::fs::read(dir.join("big.state.db")).expect("reading the state");
    make_read_only(&dir, mount.as_ref());
    let out = test
        .idprune(["apply", "ro/big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(1)
        .stderr_has("ro/big.state.db");
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert_eq!(
        test.emu().stats().deletes,
        0,
        "a delete that cannot be journalled must not be sent"
    );
    assert_eq!(
        std::fs::read(dir.join("big.state.db")).expect("reading the state"),
        before,
        "the state file is untouched"
    );
}

#[test]
fn plan_onto_a_full_disk_fails_clearly_and_leaves_nothing() {
    let test = fleet(2_000, &[]);
    let dir = test.path("full");
    let Some(_mount) = Tmpfs::mount(&dir, "size=64k") else {
        skipped(
            "disk::plan_onto_a_full_disk_fails_clearly_and_leaves_nothing",
            "mounting a tiny tmpfs needs root and the right to mount",
        );
        return;
    };
    let out = test
        .idprune([
            "plan",
            "big.yaml",
            "-o",
            "full/big.state.db",
            "--rate",
            "0",
            "--concurrency",
            "16",
        ])
        .run()
        .code(1);
    assert!(out.stderr.contains("error: "), "{}", out.stderr);
    assert!(
        says_disk_full(&out.stderr) && out.stderr.contains("full/big.state.db"),
        "the error names the state file and says the disk is full\n{}",
        out.stderr
    );
    assert_eq!(
        listing(&dir),
        Vec::<String>::new(),
        "a failed plan leaves no half-written or scratch file (they hold identifiers)"
    );
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn an_apply_that_fills_the_disk_stops_cleanly_and_resumes_to_exactly_the_plan() {
    const ITEMS: usize = 2_000;
    let test = fleet(ITEMS, &["--latency-ms", "1"]);
    let planned = test.planned_deletes("big.state.db");
    let pages = |name: &str| {
        let len = std::fs::metadata(test.path(name)).expect("stat").len();
        len.div_ceil(4096) * 4096
    };
    // Room for the plan and a little journal: the WAL fills it within the first batches.
    // (One more page for apply's lock sidecar, `big.state.db.lock`.)
    let room = pages("big.state.db") + pages("big.yaml") + pages("bad.csv") + 48 * 1024 + 4096;
    let dir = test.path("full");
    let Some(mount) = Tmpfs::mount(&dir, &format!("size={room}")) else {
        skipped(
            "disk::an_apply_that_fills_the_disk_stops_cleanly_and_resumes_to_exactly_the_plan",
            "mounting a tiny tmpfs needs root and the right to mount",
        );
        return;
    };
    copy_plan(&test, &dir);
    let state = dir.join("big.state.db");
    let out = test
        .idprune(["apply", "full/big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(1);
    assert!(out.stderr.contains("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("resume"),
        "the error says how to go on\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("full/big.state.db") && says_disk_full(&out.stderr),
        "the error names the state file and the full disk\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked"),
        "a full disk is an error, not a crash\n{}",
        out.stderr
    );
    let sent = test.emu().stats();
    assert!(
        sent.deleted.len() < ITEMS,
        "the disk filled too late to prove anything"
    );

    // Room again: the journal is intact and honest, and the same command finishes the job.
    mount.remount("size=64m");
    integrity_ok_at(&state);
    let db = rusqlite::Connection::open(&state).expect("opening the state");
    let claimed = {
        let mut stmt = db
            .prepare("SELECT user_id, id_type, id_value FROM items WHERE state = 'done'")
            .expect("preparing");
        stmt.query_map([], |r| {
            Ok(crate::harness::Deleted {
                user_id: r.get(0)?,
                kind: r.get(1)?,
                id: r.get(2)?,
            })
        })
        .expect("selecting")
        .collect::<Result<std::collections::BTreeSet<_>, _>>()
        .expect("reading")
    };
    assert!(claimed.is_subset(&sent.deleted_set()));
    drop(db);
    test.idprune(["apply", "full/big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    let db = rusqlite::Connection::open(&state).expect("opening the state");
    let states: BTreeMap<String, u64> = db
        .prepare("SELECT state, count(*) FROM items GROUP BY state")
        .expect("preparing")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("counting")
        .collect::<Result<_, _>>()
        .expect("reading");
    assert_eq!(states, BTreeMap::from([("done".to_owned(), ITEMS as u64)]));
    integrity_ok_at(&state);
    assert_eq!(test.emu().stats().deleted_set(), planned);
    let _ = journal_done;
}

/// True when `stderr` says the disk is full in words of its own, not through a path that
/// happens to hold "full" (the tests' folder is `full/`).
fn says_disk_full(stderr: &str) -> bool {
    let text = stderr.to_lowercase().replace("full/", "");
    text.contains("disk is full") || text.contains("no space left")
}
