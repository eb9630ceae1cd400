//! The state file: one SQLite database holding the sealed plan and the apply journal.
//!
//! This module owns [`State`] itself: opening a file, its sealed plan-level facts ([`Meta`],
//! [`SourceRecord`], the warnings) and recomputing its digest. Beside it live the schema
//! ([`schema`]), the seal (the digest stored at plan time and recomputed from the stored items
//! before every apply), the per-item journal (`journal.rs`: `pending → in_flight → done |
//! already_absent | failed`), the read-only item views (`views.rs`), the exclusive apply lock
//! ([`lock`]) and the append-only `runs` table (`runs.rs`). It never sees the access token.
//! Files are created `0600` (SQLite gives its `-wal` and `-shm` files the same mode) and a
//! group- or world-readable state file is refused, since the items are personal data. Writes
//! use WAL with `synchronous=FULL` and `secure_delete=ON`.
//!
//! The whole file is sealed, not only its items ([`check`]): opening one checks the header's
//! application id before SQLite touches it, opens it read-only with SQLite's defensive settings
//! to compare its schema with this build's, and only then reopens it for writing; it then
//! checks the file seal over every row `plan` wrote and the journal's invariants. A file that
//! fails any of these is refused ([`Refused`]) before anything is sent or shown.

pub mod check;
mod journal;
pub mod lock;
mod purge;
mod rerun;
mod results;
mod runs;
pub mod schema;
mod seal;
pub mod verify;
mod views;

pub use check::MAX_UNIX;
pub use journal::{Failure, ItemState, Journal, Outcome, StoredItem, Work};
pub use purge::{FINGERPRINT_PREFIX, MIN_KEY_BYTES, fingerprint};
pub use results::ResultItem;
pub use runs::{DeadRun, Run, RunFigures};
pub use seal::{Sealer, create_private, remove_leftovers, replace_file};
pub use views::{Counts, ItemFilter};

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _};

use crate::digest::{Header, ItemFields, PlanHasher};
use crate::exit::Refused;
use crate::plan::Item;

/// The version of the state format (and of the JSON views of it).
pub const FORMAT_VERSION: u32 = 1;

/// The meta key of the file's own fingerprint key: 32 random bytes (hex) written at seal time,
/// so keyed fingerprints in this file's views agree between commands. Covered by the file seal;
/// not part of the plan digest (it changes how values are shown, never what is applied).
pub const FINGERPRINT_KEY_META: &str = "fingerprint_key";

/// Below this many bytes free, the filesystem of a state file counts as full: SQLite then
/// fails with errors that do not say so (`disk I/O error … xShmMap`).
pub const LOW_SPACE_BYTES: u64 = 1 << 20;

/// `the disk is full (`DIR` has N bytes free)` when the filesystem of `path`'s folder has
/// less than [`LOW_SPACE_BYTES`] free, for an error message; `None` otherwise or when it cannot
/// be told.
pub fn full_disk_note(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs` writes only into the zeroed struct we own; `c_dir` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // `fsblkcnt_t` and `f_frsize` are narrower than u64 on some targets (macOS).
    #[allow(clippy::useless_conversion)]
    let free = u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize));
    (free < LOW_SPACE_BYTES).then(|| {
        format!(
            "the disk is full (`{}` has {} bytes free)",
            dir.display(),
            free
        )
    })
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The plan-level facts sealed with the items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// State format version.
    pub format_version: u32,
    /// `sha256:<hex>` of the canonical encoding (see [`crate::digest`]).
    pub digest: String,
    /// Unify space id.
    pub space: String,
    /// Manifest region (`us`/`eu`).
    pub region: String,
    /// `scheme://host:port` the plan was resolved against.
    pub api_origin: String,
    /// The manifest's path relative to the state file's directory.
    pub manifest_path: String,
    /// Hex sha256 of the manifest's bytes.
    pub manifest_sha256: String,
    /// The manifest's `reason`.
    pub reason: String,
    /// When the plan was written (Unix seconds; not part of the digest).
    pub created_at: i64,
    /// How long the plan may be applied, in seconds.
    pub ttl_secs: u64,
    /// Hex sha256 of the policy the plan was judged by, when there was one (in the digest).
    pub policy_sha256: Option<String>,
}

/// A CSV source as planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRecord {
    /// The path as written in the manifest.
    pub written: String,
    /// The path relative to the state file's directory.
    pub path: String,
    /// Hex sha256 of its bytes at plan time.
    pub sha256: String,
    /// Whether the manifest pinned that hash.
    pub pinned: bool,
    /// Data rows read.
    pub rows: u64,
}

/// The `meta` key of the warehouse data's "as of" time (Unix seconds; see
/// [`State::data_as_of`]).
pub const DATA_AS_OF_KEY: &str = "data_as_of";

/// An open state file.
#[derive(Debug)]
pub struct State {
    conn: Connection,
    path: PathBuf,
    /// `(device, inode)` of the file opened, to notice a rename over it.
    identity: (u64, u64),
    /// The sidecar lock, while this process holds the apply lock.
    file_lock: Option<lock::FileLock>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn pinned(sources: &[SourceRecord]) -> Vec<(String, String)> {
    sources
        .iter()
        .filter(|s| s.pinned)
        .map(|s| (s.written.clone(), s.sha256.clone()))
        .collect()
}

fn header<'a>(meta: &'a Meta, pins: &'a [(String, String)]) -> Header<'a> {
    Header {
        format_version: meta.format_version,
        space: &meta.space,
        api_origin: &meta.api_origin,
        manifest_sha256: &meta.manifest_sha256,
        pinned_sources: pins,
        policy_sha256: meta.policy_sha256.as_deref(),
    }
}

fn fields(item: &Item) -> ItemFields<'_> {
    ItemFields {
        seq: item.seq,
        user_id: item.user_id.as_deref(),
        kind: &item.identifier.kind,
        id: &item.identifier.id,
        action: item.action.as_str(),
        unverified: item.is_unverified(),
    }
}

/// `(device, inode)` of the file at `path`.
fn identity(path: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path)
        .with_context(|| format!("opening state file `{}`", path.display()))?;
    Ok((m.dev(), m.ino()))
}

/// Opens `path` with `flags` and SQLite's defensive settings, and refuses it unless its schema
/// is exactly this build's.
fn open_checked(path: &Path, flags: rusqlite::OpenFlags) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening state file `{}`", path.display()))?;
    check::harden(&conn).with_context(|| format!("opening state file `{}`", path.display()))?;
    match check::schema(&conn, path) {
        Err(e) if e.downcast_ref::<Refused>().is_none() => {
            Err(e.context(format!("opening state file `{}`", path.display())))
        }
        other => other.map(|()| conn),
    }
}

/// Copies the state file at `src` to a new file at `dest` (mode 0600) as one consistent
/// snapshot, made ready to be pushed to a store as the truth: SQLite's backup API, inside one
/// read transaction, so a journal being written meanwhile (WAL mode: writers never block this
/// reader) is copied as of its last commit. `dest` must not exist.
///
/// The copy differs from the working copy in two ways, both about what a *remote* resume may
/// trust:
/// - it holds no lock row: the local lock names a process on this host, and the lease beside
///   the store object is what binds other machines;
/// - the first `horizon` pending deletions (in `seq` order, the order apply sends them) are
///   `in_flight` in it. A run goes on after its checkpoint, so a resume from the copy may
///   meet deletions this run made after it: marked in flight, a `404 eid_not_found` for one
///   of them is journaled `done` (the deletion happened), not `already_absent`. The caller
///   passes the most a run can start before its next checkpoint (0 once the run has ended).
pub fn snapshot_for_push(src: &Path, dest: &Path, horizon: u64) -> anyhow::Result<()> {
    let from = Connection::open_with_flags(
        src,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening state file `{}` to snapshot it", src.display()))?;
    let mut to = create_private(dest)?;
    let copied = {
        let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
        // -1: every page in one step, so the copy is one read transaction.
        backup.step(-1)
    };
    match copied.with_context(|| format!("copying state file `{}`", src.display()))? {
        rusqlite::backup::StepResult::Done => {}
        other => bail!(
            "state file `{}` was busy while being copied ({other:?}); try again",
            src.display()
        ),
    }
    let context = || {
        format!(
            "preparing the snapshot of `{}` for the store",
            src.display()
        )
    };
    let tx = to.transaction().with_context(context)?;
    tx.execute("DELETE FROM lock", []).with_context(context)?;
    if horizon > 0 {
        tx.execute(
            "UPDATE items SET state = 'in_flight' WHERE seq IN (
                SELECT seq FROM items WHERE action = 'delete' AND state = 'pending'
                ORDER BY seq LIMIT ?1)",
            [i64::try_from(horizon).unwrap_or(i64::MAX)],
        )
        .with_context(context)?;
    }
    tx.commit().with_context(context)?;
    // The copy inherits the working copy's WAL mode: fold what was just written into the
    // file itself, which is what gets read and sealed.
    to.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .with_context(context)?;
    to.close().map_err(|(_, e)| e).with_context(context)?;
    Ok(())
}

impl State {
    /// Opens an existing state file for reading and journaling, after every check of
    /// [`check`]: nothing is written to a file that is not a sealed idprune state file.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("opening state file `{}`", path.display()))?;
        if !metadata.is_file() {
            bail!(
                "`{}` is not a regular file, so not an idprune state file; check the path",
                path.display()
            );
        }
        lock::refuse_hard_links(path, &metadata)?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "state file `{}` is readable by others (mode {mode:03o}) and holds personal data; run `chmod 600 {}`",
                path.display(),
                crate::text::shell_path(path)
            );
        }
        check::header(path)?;
        // Read-only first: the schema is checked before this process can write a byte, since
        // a trigger stored in the file would run inside our own connection.
        let identity_before = identity(path)?;
        drop(open_checked(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?);
        let conn = open_checked(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        if identity(path)? != identity_before {
            return Err(Refused(format!(
                "state file `{}` was replaced while it was being opened (a `plan` finished?); run the command again",
                path.display()
            ))
            .into());
        }
        configure(&conn).with_context(|| format!("opening state file `{}`", path.display()))?;
        check::verify(&conn, path)?;
        let state = Self {
            conn,
            path: path.to_owned(),
            identity: identity_before,
            file_lock: None,
        };
        state.meta()?;
        Ok(state)
    }

    /// Refuses when the file at the path is no longer the one this `State` opened: a `plan`
    /// renamed a new file over it, and writing on would journal into a deleted file.
    pub fn still_at_path(&self) -> anyhow::Result<()> {
        if identity(&self.path)? != self.identity {
            return Err(Refused(format!(
                "state file `{}` was replaced by a new plan after this command opened it; nothing was sent: review the new plan, then apply it",
                self.path.display()
            ))
            .into());
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta_value(&self, key: &str) -> anyhow::Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?
            .with_context(|| {
                format!(
                    "state file `{}` has no `{key}`; it is damaged",
                    self.path.display()
                )
            })
    }

    /// The sealed plan-level facts.
    pub fn meta(&self) -> anyhow::Result<Meta> {
        let number = |key: &str| -> anyhow::Result<i64> {
            self.meta_value(key)?.parse().with_context(|| {
                format!(
                    "state file `{}`: `{key}` is not a number",
                    self.path.display()
                )
            })
        };
        let created_at = check::time(&self.path, "created_at", number("created_at")?)?;
        let ttl_secs: u64 = check::number(&self.path, "ttl_secs", number("ttl_secs")?)?;
        if ttl_secs > (MAX_UNIX - created_at) as u64 {
            bail!(
                "state file `{}`: `ttl_secs` {ttl_secs} runs past year 9999; the file is damaged or was edited: plan again",
                self.path.display()
            );
        }
        Ok(Meta {
            format_version: check::number(&self.path, "format_version", number("format_version")?)?,
            digest: self.meta_value("digest")?,
            space: self.meta_value("space")?,
            region: self.meta_value("region")?,
            api_origin: self.meta_value("api_origin")?,
            manifest_path: self.meta_value("manifest_path")?,
            manifest_sha256: self.meta_value("manifest_sha256")?,
            reason: self.meta_value("reason")?,
            created_at,
            ttl_secs,
            policy_sha256: self.optional_meta("policy_sha256")?,
        })
    }

    /// The planned sources.
    pub fn sources(&self) -> anyhow::Result<Vec<SourceRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.written, m.value, s.sha256, s.pinned, s.rows FROM sources s
             LEFT JOIN meta m ON m.key = 'source_path.' || s.idx ORDER BY s.idx",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(SourceRecord {
                written: r.get(0)?,
                path: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                sha256: r.get(2)?,
                pinned: r.get(3)?,
                rows: check::number(&self.path, "sources.rows", r.get(4)?)?,
            });
        }
        Ok(out)
    }

    /// Recomputes the digest from the stored meta, sources and items.
    pub fn recompute_digest(&self) -> anyhow::Result<String> {
        let meta = self.meta()?;
        let sources = self.sources()?;
        let pins = pinned(&sources);
        let mut hasher = PlanHasher::new(&header(&meta, &pins));
        self.for_each_item(|stored| {
            hasher.item(&fields(&stored.item));
            Ok(())
        })?;
        Ok(hasher.finish())
    }

    /// The sampled check sealed by `plan --refresh=false --sample N`, if there was one.
    pub fn sample(&self) -> anyhow::Result<Option<crate::sample::Sample>> {
        use rusqlite::OptionalExtension as _;
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [crate::sample::META_KEY],
                |r| r.get(0),
            )
            .optional()?;
        value
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| {
                    anyhow::anyhow!("the sealed sample in the state file is unreadable: {e}")
                })
            })
            .transpose()
    }

    /// When the warehouse data the plan was made from was last synced (Unix seconds): the
    /// oldest `data_as_of` of the manifest's sources, sealed by `plan` under
    /// [`DATA_AS_OF_KEY`]; `None` when no source says.
    pub fn data_as_of(&self) -> anyhow::Result<Option<i64>> {
        use rusqlite::OptionalExtension as _;
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [DATA_AS_OF_KEY],
                |r| r.get(0),
            )
            .optional()?;
        value
            .map(|v| {
                v.parse::<i64>().map_err(|e| {
                    anyhow::anyhow!(
                        "the sealed data-as-of time in the state file is unreadable: {e}"
                    )
                })
            })
            .transpose()
    }

    /// The plan's warnings, in order.
    pub fn warnings(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT message FROM warnings ORDER BY idx")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves everything in the write-ahead log into the file and empties the log; refuses
    /// while a reader keeps part of it in use.
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            bail!(
                "state file `{}` is being read by another process; try again in a moment",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Runs SQLite's own consistency check; `Ok` when it reports `ok`.
    pub fn integrity_check(&self) -> anyhow::Result<()> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result != "ok" {
            bail!(
                "state file `{}` failed SQLite's integrity check: {result}",
                self.path.display()
            );
        }
        Ok(())
    }

    /// The connection, for the state module's own files: no SQL runs on the state file
    /// outside `state/` (the views are methods here and in `views.rs`).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Fixtures for unit tests that need a real sealed state file.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::{ItemState, Journal, Meta, Sealer, State, StoredItem};
    use crate::model::Identifier;
    use crate::plan::{Action, Item, Profile};

    /// A `delete` item of `email:<email>` on the profile of `user_id:<uid>`.
    pub fn delete_item(seq: u64, uid: &str, email: &str) -> Item {
        Item {
            seq,
            lookup: format!("user_id:{uid}"),
            profile: Some(format!("email:{email}")),
            user_id: Some(uid.to_owned()),
            identifier: Identifier::new("email", email),
            action: Action::Delete,
            note: None,
            origin: format!("m.yaml:{seq}:1"),
        }
    }

    /// A stored item of `email:ID` on `user_id:u1`, in `state`, sent once and answered 200.
    pub fn stored_item(seq: u64, id: &str, state: ItemState) -> StoredItem {
        StoredItem {
            item: Item {
                seq,
                lookup: "user_id:u1".into(),
                profile: Some("user_id:u1".into()),
                user_id: Some("u1".into()),
                identifier: Identifier::new("email", id),
                action: Action::Delete,
                note: None,
                origin: "m.yaml:1:1".into(),
            },
            journal: Journal {
                last_status: Some(200),
                ..Journal::new(state)
            },
            attempts: 1,
        }
    }

    /// The sealed facts of a test plan: space `spa` in `us`, a loopback API, a 60 s TTL, and
    /// no digest yet (the sealer computes it).
    pub fn meta() -> Meta {
        Meta {
            format_version: super::FORMAT_VERSION,
            digest: String::new(),
            space: "spa".into(),
            region: "us".into(),
            api_origin: "http://127.0.0.1:1".into(),
            manifest_path: "m.yaml".into(),
            manifest_sha256: "00".into(),
            reason: "test".into(),
            created_at: 0,
            ttl_secs: 60,
            policy_sha256: None,
        }
    }

    /// Seals `items` (and their profiles) into `dir/t.state.db` and opens it.
    pub fn sealed(dir: &Path, items: &[Item]) -> State {
        let path = dir.join("t.state.db");
        let mut sealer = Sealer::begin(&path, meta(), &[]).expect("begin");
        for item in items {
            let before = vec![
                Identifier::new("user_id", item.user_id.clone().unwrap_or_default()),
                item.identifier.clone(),
            ];
            let key = item.profile.clone().unwrap_or_default();
            sealer
                .profile(&Profile {
                    key,
                    lookup: item.lookup.clone(),
                    before,
                })
                .expect("profile");
            sealer.item(item).expect("item");
        }
        sealer.finish().expect("seal");
        State::open(&path).expect("open")
    }
}
