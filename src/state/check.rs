//! The checks that stand between a file on disk and anything idprune reads from or writes to
//! it: the header (is this an idprune state file at all, before SQLite touches it), the
//! connection's defensive settings, the schema, the file seal (a sha256 over every row `plan`
//! wrote, stored in `meta`) and the journal's invariants. Every failure is a [`Refusal`] or an
//! error naming the file and the field; none is a panic. See `docs/ARCHITECTURE.md` for how the
//! file seal relates to the plan digest.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use sha2::{Digest as _, Sha256};

use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};

/// A state file idprune must not act on: tampered with, locked, or replaced while in use.
/// The command layer maps it to exit code 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The last second of year 9999 (`9999-12-31T23:59:59Z`): the latest time a state file may
/// hold, and the latest a plan's TTL may reach.
pub const MAX_UNIX: i64 = 253_402_300_799;

/// The meta key of the file seal.
pub const FILE_SEAL_KEY: &str = "file_seal";

/// The tag that opens the file seal's encoding; bumped when the encoding changes.
const FILE_SEAL_TAG: &[u8] = b"idprune-file-seal/1\n";

/// The rows the file seal covers: everything `plan` writes, in a fixed order. The journal
/// columns of `items`, the `lock` and `runs` tables and the seal itself are left out: apply
/// changes them.
const SEALED: [(&str, &str); 5] = [
    (
        "meta",
        "SELECT key, value FROM meta WHERE key != 'file_seal' ORDER BY key",
    ),
    (
        "sources",
        "SELECT idx, written, sha256, pinned, rows FROM sources ORDER BY idx",
    ),
    (
        "profiles",
        "SELECT key, lookup, before FROM profiles ORDER BY key",
    ),
    ("warnings", "SELECT idx, message FROM warnings ORDER BY idx"),
    (
        "items",
        "SELECT seq, lookup, profile, user_id, id_type, id_value, action, note, origin FROM items ORDER BY seq",
    ),
];

/// Reads the file's first 100 bytes (the SQLite header) and refuses anything that is not an
/// idprune state file of this version, before SQLite opens it: an empty file, another
/// program's database or plain text is never written to, not even to switch on WAL.
pub fn header(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut head))
        .with_context(|| format!("opening state file `{shown}`"))?;
    if head.len() < 100 || !head.starts_with(b"SQLite format 3\0") {
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
        return Err(Refusal(format!(
            "state file `{shown}` changed its application id or schema version while being opened; it may have been tampered with: plan again from the manifest"
        ))
        .into());
    }
    let diff = schema::differences(conn)?;
    if !diff.is_empty() {
        return Err(Refusal(format!(
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

/// The file seal: `sha256:<hex>` over every row in [`SEALED`], each value tagged with its
/// type (`n`, `i`, `r`, `t`, `b`) and written as a netstring, each row opened by `R` and each
/// table by `T` and its name. The encoding is prefix-free, so no edit of one value can pass for
/// another.
pub fn file_seal(conn: &Connection) -> rusqlite::Result<String> {
    let mut sha = Sha256::new();
    sha.update(FILE_SEAL_TAG);
    for (table, sql) in SEALED {
        sha.update(b"T");
        field(&mut sha, table.as_bytes());
        let mut stmt = conn.prepare(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            sha.update(b"R");
            for i in 0..columns {
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
        }
    }
    Ok(format!(
        "{}{}",
        crate::digest::PREFIX,
        hex::encode(sha.finalize())
    ))
}

/// Refuses a file whose rows no longer match the seal `plan` (or `purge`) stored.
pub fn seal(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let stored: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [FILE_SEAL_KEY],
        |r| r.get(0),
    ))?;
    let Some(stored) = stored else {
        return Err(Refusal(format!(
            "state file `{}` has no file seal; it was not written by `idprune plan` or was tampered with: plan again from the manifest",
            path.display()
        ))
        .into());
    };
    let computed = file_seal(conn)?;
    if computed != stored {
        return Err(Refusal(format!(
            "state file `{}` was changed after it was sealed: its rows hash to {computed}, its seal says {}; it may have been tampered with: plan again from the manifest",
            path.display(),
            crate::text::clean(&stored)
        ))
        .into());
    }
    Ok(())
}

/// The journal's invariants, each a query for the first row that breaks it and what to say.
const JOURNAL: [(&str, &str); 4] = [
    (
        "SELECT seq, state FROM items WHERE state NOT IN
            ('pending', 'in_flight', 'done', 'already_absent', 'failed', 'skipped') LIMIT 1",
        "has the unknown state",
    ),
    (
        "SELECT seq, action || ' item in state ' || state FROM items
         WHERE (action = 'delete') = (state = 'skipped') LIMIT 1",
        "is a",
    ),
    (
        "SELECT seq, 'attempts ' || attempts || ', status ' || ifnull(last_status, '-') || ', failure ' || ifnull(failure, '-') || ', updated_at ' || ifnull(updated_at, '-')
         FROM items WHERE attempts NOT BETWEEN 0 AND 4294967295
            OR last_status NOT BETWEEN 0 AND 65535
            OR (failure IS NOT NULL AND failure NOT IN ('transient', 'permanent'))
            OR updated_at NOT BETWEEN 0 AND 253402300799 LIMIT 1",
        "holds journal values out of range:",
    ),
    (
        "SELECT seq, ifnull(profile, 'no profile') FROM items WHERE action = 'delete' AND
            (profile IS NULL OR NOT EXISTS (SELECT 1 FROM profiles p WHERE p.key = items.profile))
         LIMIT 1",
        "is a delete without the profile row its diff is drawn from:",
    ),
];

/// Before any apply ran, every delete is pending and has never been sent.
const FRESH: &str =
    "SELECT seq, state FROM items WHERE action = 'delete' AND NOT EXISTS (SELECT 1 FROM runs)
    AND (state != 'pending' OR attempts != 0 OR failure IS NOT NULL OR last_error IS NOT NULL
         OR last_status IS NOT NULL OR request_id IS NOT NULL OR updated_at IS NOT NULL)
    LIMIT 1";

/// Refuses a journal no apply could have written: an unknown state (which would silently skip
/// the item), a delete marked `skipped`, values out of range, or progress before any run.
pub fn journal(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let first = |sql: &str| -> rusqlite::Result<Option<(i64, String)>> {
        rusqlite::OptionalExtension::optional(
            conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?))),
        )
    };
    let tampered = |seq: i64, what: String| -> anyhow::Error {
        Refusal(format!(
            "state file `{}`: item #{seq} {what}; no apply writes that, so the file may have been tampered with: plan again from the manifest",
            path.display()
        ))
        .into()
    };
    for (sql, what) in JOURNAL {
        if let Some((seq, value)) = first(sql)? {
            return Err(tampered(
                seq,
                format!("{what} `{}`", crate::text::clean(&value)),
            ));
        }
    }
    if let Some((seq, state)) = first(FRESH)? {
        return Err(tampered(
            seq,
            format!(
                "is `{}` with a journal entry although no apply ever ran",
                crate::text::clean(&state)
            ),
        ));
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
        assert!(err.downcast_ref::<Refusal>().is_some());
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
        assert!(err.downcast_ref::<Refusal>().is_some(), "{err:#}");
    }
}
