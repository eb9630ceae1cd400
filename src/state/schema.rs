//! The state file's schema. `PRAGMA user_version` holds the schema version; [`migrate`] brings an
//! older file up to date and refuses a newer one.

use rusqlite::Connection;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 2;

/// Schema version 1.
const V1: &str = r#"
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
) STRICT;

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
    updated_at  INTEGER
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
    started_at INTEGER NOT NULL
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
    latency_p99_ms REAL
) STRICT;
-- The runs table is an audit trail: rows are never deleted, and a finished row never changes.
CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'the runs table is append-only'); END;
CREATE TRIGGER runs_finished_frozen BEFORE UPDATE ON runs WHEN OLD.finished_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a finished run cannot change'); END;
"#;

/// Schema version 2: the verification history of `verify` and the item history of
/// `apply --reapply` (seqs, states and times only, no values).
/// `verifications` is one row per `verify` run; `verify_items` holds, per item, what the
/// latest verification saw and when the item was last seen gone, which is how a later
/// verification tells "re-introduced" from "still present".
const V2: &str = r#"
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
"#;

/// The indexes of `items`: part of the schema, dropped while a new plan is bulk-loaded.
pub const CREATE_ITEM_INDEXES: &str = "
CREATE INDEX items_by_state ON items (state, seq);
CREATE INDEX items_by_profile ON items (profile, seq);
";

/// Drops the indexes of `items` (see [`CREATE_ITEM_INDEXES`]).
pub const DROP_ITEM_INDEXES: &str = "DROP INDEX items_by_state; DROP INDEX items_by_profile;";

/// Creates or upgrades the schema; refuses files written by a newer idprune.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "the state file has schema version {version}, newer than this idprune understands ({SCHEMA_VERSION}); upgrade idprune"
        );
    }
    if version < 1 {
        conn.execute_batch(V1)?;
        conn.execute_batch(CREATE_ITEM_INDEXES)?;
        conn.pragma_update(None, "user_version", 1)?;
    }
    if version < 2 {
        // One transaction: a file is either fully at version 2 or untouched.
        conn.execute_batch(&format!("BEGIN; {V2} PRAGMA user_version = 2; COMMIT;"))?;
    }
    Ok(())
}
