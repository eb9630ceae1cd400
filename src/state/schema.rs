//! The state file's schema, and the check that a file holds exactly that schema.
//!
//! `PRAGMA user_version` holds the schema version and `PRAGMA application_id` marks the file as
//! idprune's. [`migrate`] creates the schema in a new file and refuses any other version. On
//! every open, [`crate::state::check`] compares the file's `sqlite_schema` with what this build
//! creates ([`differences`]; built from the same constants in an in-memory database, so a table
//! added here is covered at once): an extra trigger, view, index or table, or an altered
//! statement, is refused, since SQL stored in the file runs inside idprune's own connection.

use std::collections::BTreeMap;

use rusqlite::Connection;

/// The schema version this build writes and reads. Version 2 added the lock holder's process
/// start time, the file seal, and the verification and re-run histories; version 3 the CI
/// context of each run (`runs.context`); version 4 the policy overrides of each run
/// (`policy_overrides`); version 5 each item's first request time (`items.first_attempt_at`).
/// Files of another version are refused (the check in
/// `check.rs` says which idprune to use, or to plan again).
pub const SCHEMA_VERSION: i64 = 5;

/// `PRAGMA application_id` of every idprune state file: `idPR` in ASCII.
pub const APPLICATION_ID: i32 = 0x6964_5052;

/// The schema.
const SCHEMA: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE sources (
    idx     INTEGER PRIMARY KEY,
    written TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    pinned  INTEGER NOT NULL,
    rows    INTEGER NOT NULL
) STRICT;

CREATE TABLE profiles (
    key    TEXT PRIMARY KEY,
    lookup TEXT NOT NULL,
    before TEXT NOT NULL            -- JSON array of [type, id], in the API's order
) STRICT, WITHOUT ROWID;

CREATE TABLE items (
    seq         INTEGER PRIMARY KEY,
    lookup      TEXT NOT NULL,
    profile     TEXT,
    user_id     TEXT,
    id_type     TEXT NOT NULL,
    id_value    TEXT NOT NULL,
    action      TEXT NOT NULL,
    note        TEXT,
    origin      TEXT NOT NULL,
    state       TEXT NOT NULL,      -- pending | in_flight | done | already_absent | failed | skipped
    attempts    INTEGER NOT NULL DEFAULT 0,
    failure     TEXT,               -- transient | permanent, for failed items
    last_error  TEXT,
    last_status INTEGER,
    request_id  TEXT,
    updated_at  INTEGER,
    first_attempt_at INTEGER        -- when its first request of the journal was committed to send
) STRICT;

CREATE TABLE warnings (
    idx     INTEGER PRIMARY KEY,
    message TEXT NOT NULL
) STRICT;

CREATE TABLE lock (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    lock_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    user       TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    proc_start INTEGER NOT NULL     -- /proc/PID/stat start time (clock ticks), 0 when unknown
) STRICT;

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    user           TEXT NOT NULL,
    host           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    outcome        TEXT,
    requests       INTEGER,
    done           INTEGER,
    already_absent INTEGER,
    failed         INTEGER,
    pending        INTEGER,
    rate           REAL,
    throttled      INTEGER,
    latency_p50_ms REAL,
    latency_p99_ms REAL,
    started_rate   INTEGER,         -- the --rate it was started with (0: unlimited)
    context        TEXT NOT NULL DEFAULT ''  -- where it ran (CI job, PR), JSON; see ci.rs
) STRICT;
-- The runs table is an audit trail: rows are never deleted, and a finished row never changes.
CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'the runs table is append-only'); END;
CREATE TRIGGER runs_finished_frozen BEFORE UPDATE ON runs WHEN OLD.finished_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a finished run cannot change'); END;
"#;

/// The tables written after the plan (part of [`SCHEMA`]'s version, created with it): the
/// verification history of `verify`, the item history of `apply --reapply` (seqs, states
/// and times only, no values) and the policy overrides of `apply --override`. `verifications` is one row per `verify` run; `verify_items`
/// holds, per item, what the latest verification saw and when the item was last seen gone,
/// which is how a later verification tells "re-introduced" from "still present".
const HISTORY: &str = r#"
CREATE TABLE verifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    polls         INTEGER NOT NULL,
    checked       INTEGER NOT NULL,
    gone          INTEGER NOT NULL,
    still_present INTEGER NOT NULL,
    reintroduced  INTEGER NOT NULL,
    not_found     INTEGER NOT NULL,
    outcome       TEXT NOT NULL     -- gone | present
) STRICT;

CREATE TABLE verify_items (
    seq             INTEGER PRIMARY KEY,
    verification    INTEGER NOT NULL,   -- the latest verification that checked it
    status          TEXT NOT NULL,      -- gone | still_present | reintroduced | not_found
    checked_at      INTEGER NOT NULL,
    last_gone_at    INTEGER,            -- the latest time a verification saw it gone
    last_gone_in    INTEGER             -- and which verification that was
) STRICT;

-- `apply --reapply`: what each item had reached before a re-run reset it (append-only).
CREATE TABLE item_history (
    run         INTEGER NOT NULL,       -- the run that reset it
    seq         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    last_status INTEGER,
    request_id  TEXT,
    updated_at  INTEGER,
    PRIMARY KEY (run, seq)
) STRICT;
CREATE TRIGGER item_history_no_delete BEFORE DELETE ON item_history
BEGIN SELECT RAISE(ABORT, 'the item history is append-only'); END;

-- `apply --override RULE --why TEXT`: the soft policy rules a run went past, who and why
-- (append-only: an override is part of the audit trail, like the run itself).
CREATE TABLE policy_overrides (
    run     INTEGER NOT NULL,           -- the run that used it
    rule    TEXT NOT NULL,
    detail  TEXT NOT NULL,              -- what the rule found
    why     TEXT NOT NULL,
    user    TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (run, rule)
) STRICT;
CREATE TRIGGER policy_overrides_no_delete BEFORE DELETE ON policy_overrides
BEGIN SELECT RAISE(ABORT, 'the policy overrides are append-only'); END;
CREATE TRIGGER policy_overrides_frozen BEFORE UPDATE ON policy_overrides
BEGIN SELECT RAISE(ABORT, 'a recorded policy override cannot change'); END;
"#;

/// The indexes of `items`: part of the schema, dropped while a new plan is bulk-loaded.
pub const CREATE_ITEM_INDEXES: &str = "
CREATE INDEX items_by_state ON items (state, seq);
CREATE INDEX items_by_profile ON items (profile, seq);
";

/// Drops the indexes of `items` (see [`CREATE_ITEM_INDEXES`]).
pub const DROP_ITEM_INDEXES: &str = "DROP INDEX items_by_state; DROP INDEX items_by_profile;";

/// Creates the schema in a new, empty file; refuses a file of any other version.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "the state file has schema version {version}, newer than this idprune understands ({SCHEMA_VERSION}); upgrade idprune"
        );
    }
    if version == 1 {
        anyhow::bail!(
            "the state file has schema version 1, written by an older idprune that did not seal the whole file; run `idprune plan` again"
        );
    }
    if (2..SCHEMA_VERSION).contains(&version) {
        anyhow::bail!(
            "the state file has schema version {version}, written by an older idprune; finish its apply with that version, or run `idprune plan` again"
        );
    }
    if version == 0 {
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(HISTORY)?;
        conn.execute_batch(CREATE_ITEM_INDEXES)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    Ok(())
}

/// One schema object: `(type, name)` → `(tbl_name, sql)`.
type Objects = BTreeMap<(String, String), (String, Option<String>)>;

fn objects(conn: &Connection) -> rusqlite::Result<Objects> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema")?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))))?;
    rows.collect()
}

/// The objects this build creates, read back from an in-memory database.
fn expected() -> rusqlite::Result<Objects> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(HISTORY)?;
    conn.execute_batch(CREATE_ITEM_INDEXES)?;
    // `runs` uses AUTOINCREMENT: its `sqlite_sequence` table appears with the first run.
    conn.execute_batch(
        "INSERT INTO runs (started_at, user, host, digest, reason) VALUES (0, '', '', '', '');",
    )?;
    objects(&conn)
}

/// Compares the file's schema with `expected`; returns what differs, for people (a trigger
/// `evil`, an altered table `items`), empty when the schema is exactly ours.
pub fn differences(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let expected = expected()?;
    let found = objects(conn)?;
    let mut out = Vec::new();
    for ((kind, name), def) in &found {
        match expected.get(&(kind.clone(), name.clone())) {
            None => out.push(format!("{kind} `{}`", crate::text::clean(name))),
            Some(want) if want != def => {
                out.push(format!("{kind} `{}` (altered)", crate::text::clean(name)))
            }
            Some(_) => {}
        }
    }
    for (kind, name) in expected.keys() {
        // `sqlite_sequence` exists only once a run was recorded.
        if !found.contains_key(&(kind.clone(), name.clone())) && name != "sqlite_sequence" {
            out.push(format!("{kind} `{name}` (missing)"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Connection {
        let conn = Connection::open_in_memory().expect("memory");
        migrate(&conn).expect("migrate");
        conn
    }

    #[test]
    fn a_fresh_schema_has_no_differences() {
        let conn = fresh();
        assert_eq!(differences(&conn).expect("diff"), Vec::<String>::new());
        conn.execute_batch(
            "INSERT INTO runs (started_at, user, host, digest, reason) VALUES (1, 'u', 'h', 'd', 'r');",
        )
        .expect("run");
        assert_eq!(differences(&conn).expect("diff"), Vec::<String>::new());
    }

    #[test]
    fn every_foreign_object_is_named() {
        let conn = fresh();
        conn.execute_batch(
            "CREATE TRIGGER evil AFTER INSERT ON runs BEGIN UPDATE items SET id_value = 'x'; END;
             CREATE VIEW v AS SELECT 1;
             CREATE INDEX extra ON items (note);
             CREATE TABLE more (x);
             DROP INDEX items_by_state;",
        )
        .expect("tamper");
        let diff = differences(&conn).expect("diff");
        for want in [
            "trigger `evil`",
            "view `v`",
            "index `extra`",
            "table `more`",
            "index `items_by_state` (missing)",
        ] {
            assert!(diff.contains(&want.to_owned()), "{want} in {diff:?}");
        }
    }

    #[test]
    fn an_altered_trigger_is_named() {
        let conn = fresh();
        conn.execute_batch(
            "DROP TRIGGER runs_no_delete;
             CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs BEGIN SELECT 1; END;",
        )
        .expect("alter");
        assert_eq!(
            differences(&conn).expect("diff"),
            ["trigger `runs_no_delete` (altered)"]
        );
    }

    #[test]
    fn older_and_newer_versions_are_refused() {
        for version in [1, SCHEMA_VERSION + 1] {
            let conn = Connection::open_in_memory().expect("memory");
            conn.pragma_update(None, "user_version", version)
                .expect("version");
            assert!(migrate(&conn).is_err(), "version {version}");
        }
    }
}
