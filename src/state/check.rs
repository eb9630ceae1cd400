//! The checks that stand between a file on disk and anything idprune reads from or writes to
//! it: the header (is this an idprune state file at all, before SQLite touches it), the
//! connection's defensive settings, the schema, the file seal (a sha256 over every row `plan`
//! wrote, stored in `meta`) and the journal's invariants. Every failure is a [`Refused`] or an
//! error naming the file and the field; none is a panic. See `docs/ARCHITECTURE.md` for how the
//! file seal relates to the plan digest.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use sha2::{Digest as _, Sha256};

use crate::exit::Refused;

use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};

/// The last second of year 9999 (`9999-12-31T23:59:59Z`): the latest time a state file may
/// hold, and the latest a plan's TTL may reach.
pub const MAX_UNIX: i64 = 253_402_300_799;

/// The meta key of the file seal.
pub const FILE_SEAL_KEY: &str = "file_seal";

/// The tag that opens the file seal's encoding; bumped when the encoding changes.
const FILE_SEAL_TAG: &[u8] = b"idprune-file-seal/1\n";

/// The rows the file seal covers: everything `plan` wrote, in a fixed order, and how many
/// leading columns of each query are hashed. The journal columns of `items` (read after the
/// hashed ones, to be checked in the same pass), the `lock` and `runs` tables and the seal
/// itself are left out: apply changes them.
const SEALED: [(&str, &str, usize); 5] = [
    (
        "meta",
        "SELECT key, value FROM meta WHERE key != 'file_seal' ORDER BY key",
        2,
    ),
    (
        "sources",
        "SELECT idx, written, sha256, pinned, rows FROM sources ORDER BY idx",
        5,
    ),
    (
        "profiles",
        "SELECT key, lookup, before FROM profiles ORDER BY key",
        3,
    ),
    (
        "warnings",
        "SELECT idx, message FROM warnings ORDER BY idx",
        2,
    ),
    (
        "items",
        "SELECT seq, lookup, profile, user_id, id_type, id_value, action, note, origin,
                state, attempts, failure, last_error, last_status, request_id, updated_at
         FROM items ORDER BY seq",
        9,
    ),
];

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Reads the file's first 100 bytes (the SQLite header) and refuses anything that is not an
/// idprune state file of this version, before SQLite opens it: an empty file, another
/// program's database or plain text is never written to, not even to switch on WAL.
pub fn header(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut head))
        .with_context(|| format!("opening state file `{shown}`"))?;
    if head.len() < 100 || !head.starts_with(SQLITE_HEADER) {
        anyhow::bail!(
            "`{shown}` is not an idprune state file (not an SQLite database); check the path, or run `idprune plan` to write one"
        );
    }
    let word = |at: usize| i32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let (version, app) = (word(60), word(68));
    if app != APPLICATION_ID {
        if app == 0 && version == 1 {
            anyhow::bail!(
                "state file `{shown}` has schema version 1, written by an older idprune that did not seal the whole file; run `idprune plan` again"
            );
        }
        anyhow::bail!(
            "`{shown}` is an SQLite database but not an idprune state file (application id {app:#x}); check the path"
        );
    }
    if i64::from(version) != SCHEMA_VERSION {
        anyhow::bail!(
            "state file `{shown}` has schema version {version}; this idprune reads version {SCHEMA_VERSION}: use the idprune that wrote it, or plan again"
        );
    }
    Ok(())
}

/// SQLite's defensive settings: no writes to the schema through pragmas, and no function with
/// side effects callable from SQL stored in the file (views, triggers, defaults).
pub fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    Ok(())
}

/// Refuses a file whose version, application id or schema is not exactly this build's.
pub fn schema(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app != APPLICATION_ID || version != SCHEMA_VERSION {
        return Err(Refused(format!(
            "state file `{shown}` changed its application id or schema version while being opened; it may have been tampered with: plan again from the manifest"
        ))
        .into());
    }
    let diff = schema::differences(conn)?;
    if !diff.is_empty() {
        return Err(Refused(format!(
            "state file `{shown}` holds schema objects idprune did not create: {}; it may have been tampered with: plan again from the manifest",
            diff.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// Feeds `bytes` as a netstring.
fn field(sha: &mut Sha256, bytes: &[u8]) {
    sha.update(bytes.len().to_string().as_bytes());
    sha.update(b":");
    sha.update(bytes);
    sha.update(b",");
}

/// Hashes every row of [`SEALED`], calling `visit` with each `items` row (all its columns).
fn hash_rows(
    conn: &Connection,
    mut visit: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<String> {
    let mut sha = Sha256::new();
    sha.update(FILE_SEAL_TAG);
    for (table, sql, hashed) in SEALED {
        sha.update(b"T");
        field(&mut sha, table.as_bytes());
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            sha.update(b"R");
            for i in 0..hashed {
                match row.get_ref(i)? {
                    ValueRef::Null => sha.update(b"n"),
                    ValueRef::Integer(v) => {
                        sha.update(b"i");
                        field(&mut sha, v.to_string().as_bytes());
                    }
                    ValueRef::Real(v) => {
                        sha.update(b"r");
                        field(&mut sha, &v.to_bits().to_be_bytes());
                    }
                    ValueRef::Text(v) => {
                        sha.update(b"t");
                        field(&mut sha, v);
                    }
                    ValueRef::Blob(v) => {
                        sha.update(b"b");
                        field(&mut sha, v);
                    }
                }
            }
            if table == "items" {
                visit(row)?;
            }
        }
    }
    Ok(format!(
        "{}{}",
        crate::digest::PREFIX,
        hex::encode(sha.finalize())
    ))
}

/// The file seal: `sha256:<hex>` over every row in `SEALED`, each value tagged with its
/// type (`n`, `i`, `r`, `t`, `b`) and written as a netstring, each row opened by `R` and each
/// table by `T` and its name. The encoding is prefix-free, so no edit of one value can pass for
/// another.
pub fn file_seal(conn: &Connection) -> rusqlite::Result<String> {
    hash_rows(conn, |_| Ok(()))
}

/// What is wrong with one item's journal columns, if anything: an unknown state (which
/// would silently skip the item), a delete marked `skipped` or another action not, values out
/// of range, a delete without a profile (its diff would not show it), or, before any run,
/// anything but an untouched `pending` delete.
fn journal_fault(row: &rusqlite::Row<'_>, fresh: bool) -> rusqlite::Result<Option<String>> {
    let action: String = row.get(6)?;
    let state: String = row.get(9)?;
    let attempts: i64 = row.get(10)?;
    let failure: Option<String> = row.get(11)?;
    let last_error: Option<String> = row.get(12)?;
    let last_status: Option<i64> = row.get(13)?;
    let request_id: Option<String> = row.get(14)?;
    let updated_at: Option<i64> = row.get(15)?;
    let delete = action == "delete";
    let shown = |v: &str| crate::text::clean(v);
    Ok(if state.parse::<super::ItemState>().is_err() {
        Some(format!("has the unknown state `{}`", shown(&state)))
    } else if delete == (state == "skipped") {
        Some(format!(
            "is a `{}` item in state `{}`",
            shown(&action),
            shown(&state)
        ))
    } else if u32::try_from(attempts).is_err()
        || last_status.is_some_and(|s| u16::try_from(s).is_err())
        || failure
            .as_deref()
            .is_some_and(|f| f != "transient" && f != "permanent")
        || updated_at.is_some_and(|t| !(0..=MAX_UNIX).contains(&t))
    {
        Some(format!(
            "holds journal values out of range: attempts {attempts}, status {last_status:?}, failure {}, updated_at {updated_at:?}",
            shown(failure.as_deref().unwrap_or("-"))
        ))
    } else if delete
        && row.get_ref(2)? == ValueRef::Null
        // `plan --refresh=false` reads no profile for these; the note (in the digest) says so.
        && row.get::<_, Option<String>>(7)?.as_deref() != Some(crate::plan::UNVERIFIED_NOTE)
    {
        Some("is a delete without a profile, which its diff is drawn from".to_owned())
    } else if fresh
        && delete
        && (state != "pending"
            || attempts != 0
            || failure.is_some()
            || last_error.is_some()
            || last_status.is_some()
            || request_id.is_some()
            || updated_at.is_some())
    {
        Some(format!(
            "is `{}` with a journal entry although no apply ever ran",
            shown(&state)
        ))
    } else {
        None
    })
}

/// Refuses a file whose rows no longer match the seal `plan` (or `purge`) stored, or whose
/// journal no apply could have written (`journal_fault`). One pass over the items.
pub fn verify(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let stored: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [FILE_SEAL_KEY],
        |r| r.get(0),
    ))?;
    let Some(stored) = stored else {
        return Err(Refused(format!(
            "state file `{}` has no file seal; it was not written by `idprune plan` or was tampered with: plan again from the manifest",
            path.display()
        ))
        .into());
    };
    let fresh: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM runs)", [], |r| r.get(0))?;
    let mut fault: Option<(i64, String)> = None;
    let computed = hash_rows(conn, |row| {
        if fault.is_none()
            && let Some(what) = journal_fault(row, fresh)?
        {
            fault = Some((row.get(0)?, what));
        }
        Ok(())
    })?;
    if computed != stored {
        return Err(Refused(format!(
            "state file `{}` was changed after it was sealed: its rows hash to {computed}, its seal says {}; it may have been tampered with: plan again from the manifest",
            path.display(),
            crate::text::clean(&stored)
        ))
        .into());
    }
    if let Some((seq, what)) = fault {
        return Err(Refused(format!(
            "state file `{}`: item #{seq} {what}; no apply writes that, so the file may have been tampered with: plan again from the manifest",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// `value` as a time of `field`, or an error naming the file and the field.
pub fn time(path: &Path, field: &str, value: i64) -> anyhow::Result<i64> {
    if (0..=MAX_UNIX).contains(&value) {
        Ok(value)
    } else {
        anyhow::bail!(
            "state file `{}`: `{field}` is {value}, not a time between 1970 and 9999; the file is damaged or was edited: plan again",
            path.display()
        )
    }
}

/// `value` converted to `T`, or an error naming the file and the field.
pub fn number<T: TryFrom<i64>>(path: &Path, field: &str, value: i64) -> anyhow::Result<T> {
    T::try_from(value).map_err(|_| {
        anyhow::anyhow!(
            "state file `{}`: `{field}` is {value}, out of range; the file is damaged or was edited: plan again",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;
    use crate::state::testing::{delete_item, sealed};

    /// Re-seals the file after an edit, as a writer who knows the encoding would.
    fn reseal(path: &Path) {
        let conn = Connection::open(path).expect("open");
        let seal = file_seal(&conn).expect("seal");
        conn.execute("UPDATE meta SET value = ?1 WHERE key = 'file_seal'", [seal])
            .expect("store");
    }

    #[test]
    fn an_edit_breaks_the_seal_and_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")])
            .path()
            .to_owned();
        Connection::open(&path)
            .and_then(|c| c.execute("UPDATE meta SET value = 'x' WHERE key = 'reason'", []))
            .expect("edit");
        let err = State::open(&path).expect_err("tampered");
        assert!(err.downcast_ref::<Refused>().is_some());
        assert!(err.to_string().contains("was changed after it was sealed"));
        reseal(&path);
        State::open(&path).expect("a consistent file opens");
    }

    #[test]
    fn out_of_range_meta_values_are_errors_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")])
            .path()
            .to_owned();
        for (key, value, says) in [
            (
                "created_at",
                "99999999999999",
                "`created_at` is 99999999999999",
            ),
            ("created_at", "-5", "`created_at` is -5"),
            ("ttl_secs", "-1", "`ttl_secs` is -1"),
            (
                "ttl_secs",
                "253402300800",
                "`ttl_secs` 253402300800 runs past year 9999",
            ),
            ("format_version", "-1", "`format_version` is -1"),
            ("created_at", "soon", "`created_at` is not a number"),
        ] {
            Connection::open(&path)
                .and_then(|c| {
                    c.execute_batch(
                        "UPDATE meta SET value = '0' WHERE key = 'created_at';
                         UPDATE meta SET value = '60' WHERE key = 'ttl_secs';
                         UPDATE meta SET value = '1' WHERE key = 'format_version';",
                    )?;
                    c.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, value])
                })
                .expect("edit");
            reseal(&path);
            let err = State::open(&path).expect_err(key);
            assert!(format!("{err:#}").contains(says), "{says}: {err:#}");
            assert!(format!("{err:#}").contains("t.state.db"), "{err:#}");
        }
    }

    #[test]
    fn the_journal_of_a_fresh_file_is_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")])
            .path()
            .to_owned();
        Connection::open(&path)
            .and_then(|c| c.execute("UPDATE items SET state = 'done'", []))
            .expect("edit");
        let err = State::open(&path).expect_err("done before any run");
        assert!(err.to_string().contains("no apply ever ran"), "{err:#}");
        Connection::open(&path)
            .and_then(|c| {
                c.execute(
                    "INSERT INTO runs (started_at, user, host, digest, reason) VALUES (1, 'u', 'h', 'd', 'r')",
                    [],
                )
            })
            .expect("a run");
        State::open(&path).expect("with a run, done is a journal entry");
    }

    #[test]
    fn a_delete_missing_from_its_before_state_refuses_the_diff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")])
            .path()
            .to_owned();
        Connection::open(&path)
            .and_then(|c| c.execute("UPDATE profiles SET before = '[[\"user_id\",\"u1\"]]'", []))
            .expect("edit");
        reseal(&path);
        let state = State::open(&path).expect("the seal matches");
        let err = state
            .for_each_profile_diff(10, |_, _| Ok(()))
            .expect_err("a hidden delete");
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
    }
}
