//! Writing a new sealed state file, streaming: items go in one by one (in `seq` order) while the
//! digest is computed over them, so a plan of millions of items never sits in memory. The file
//! is built beside its target, created `0600`, and renamed into place only when complete: a
//! failed or interrupted plan never leaves a half-written state file.
//!
//! Sealing holds the state file's sidecar lock ([`super::lock::FileLock`]) from `begin` to the
//! rename, marks the file with [`schema::APPLICATION_ID`], stores the file seal over every row
//! it wrote, writes the new file without a journal and syncs it once, whole, before the rename
//! (nobody opens it before then; see `bulk_load`), closes it in WAL mode with no `-wal` or
//! `-shm` of it left, and clears the target's own side files before the rename, so the new file
//! never adopts the old file's write-ahead log. A `kill -9` at any point leaves the old file intact or the new one
//! complete.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::seq::SliceRandom as _;
use rusqlite::{Connection, params};

use super::check::{self, FILE_SEAL_KEY};
use super::lock::{FileLock, Holder};
use super::{
    FINGERPRINT_KEY_META, ItemState, Meta, SourceRecord, configure, fields, header, pinned, schema,
};
use crate::digest::PlanHasher;
use crate::model::Identifier;
use crate::plan::{Action, Item, Profile};

/// A state file being written.
pub struct Sealer {
    conn: Option<Connection>,
    tmp: PathBuf,
    path: PathBuf,
    hasher: Option<PlanHasher>,
    meta: Meta,
    next_warning: i64,
    last_seq: u64,
    /// True once the finished file was renamed into place.
    sealed: bool,
    /// The target's sidecar lock, held until the rename.
    lock: Option<FileLock>,
}

/// `x.state.db` → `x.state.db.tmp-<pid>`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(side(path, suffix));
    }
}

/// Clears the side files of the file about to be replaced at `path` (its lock is held, and its
/// old file was checkpointed by whoever checked it). An empty log goes; a log that still holds
/// frames of an existing file is refused rather than lost. Without a main file, side files are
/// leftovers and go.
fn clear_sides(path: &Path) -> anyhow::Result<()> {
    let main_exists = path.exists();
    for suffix in ["-wal", "-journal"] {
        let file = side(path, suffix);
        match std::fs::metadata(&file) {
            Ok(m) if main_exists && m.len() > 0 => anyhow::bail!(
                "`{}` still holds changes of the state file it belongs to; open that file once (`idprune status {}`) so SQLite saves them, then plan again",
                file.display(),
                crate::text::shell_path(path)
            ),
            Ok(_) => std::fs::remove_file(&file)
                .with_context(|| format!("removing `{}`", file.display()))?,
            Err(_) => {}
        }
    }
    let shm = side(path, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).with_context(|| format!("removing `{}`", shm.display()))?;
    }
    Ok(())
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory `{}`", dir.display()))
}

/// Creates an empty SQLite file with mode `0600` (SQLite gives its side files the same mode).
pub fn create_private(path: &Path) -> anyhow::Result<Connection> {
    remove_db(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating `{}`", path.display()))?;
    Ok(Connection::open(path)?)
}

/// The new file's page cache while it is written, KiB (counted in `plan`'s peak memory).
const SEAL_CACHE_KIB: i64 = 32 * 1024;

/// Settings for writing a new file that nobody else opens until it is renamed into place: no
/// rollback journal and no syncs (a failed or killed plan deletes or never renames the file,
/// so there is nothing to recover), one sync of the whole file before the rename, and a page
/// cache large enough that the bulk load and the index builds stay off the disk.
fn bulk_load(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -SEAL_CACHE_KIB)?;
    Ok(())
}

impl Sealer {
    /// Starts writing the state file that will live at `path`, taking its sidecar lock
    /// (refused while an `apply` or another `plan` holds it).
    pub fn begin(path: &Path, meta: Meta, sources: &[SourceRecord]) -> anyhow::Result<Self> {
        let lock = FileLock::take_or_refuse(path, &Holder::this_process(), "sealing a new plan")?;
        Self::begin_locked(lock, meta, sources)
    }

    /// Starts writing the state file `lock` guards, holding the lock until the rename.
    pub fn begin_locked(
        lock: FileLock,
        meta: Meta,
        sources: &[SourceRecord],
    ) -> anyhow::Result<Self> {
        let path = lock.state().to_owned();
        let tmp = tmp_path(&path);
        let conn = create_private(&tmp)?;
        let mut sealer = Self {
            conn: None,
            tmp,
            path,
            hasher: None,
            meta,
            next_warning: 0,
            last_seq: 0,
            sealed: false,
            lock: Some(lock),
        };
        check::harden(&conn)?;
        configure(&conn)?;
        bulk_load(&conn)?;
        schema::migrate(&conn)?;
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
        // Bulk load: indexes are built once at the end, not row by row.
        conn.execute_batch(&format!("BEGIN; {}", schema::DROP_ITEM_INDEXES))?;
        for (idx, s) in sources.iter().enumerate() {
            conn.execute(
                "INSERT INTO sources (idx, written, sha256, pinned, rows) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![idx as i64, s.written, s.sha256, s.pinned, s.rows as i64],
            )?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![format!("source_path.{idx}"), s.path],
            )?;
        }
        let pins = pinned(sources);
        sealer.hasher = Some(PlanHasher::new(&header(&sealer.meta, &pins)));
        sealer.conn = Some(conn);
        Ok(sealer)
    }

    fn conn(&self) -> anyhow::Result<&Connection> {
        self.conn
            .as_ref()
            .context("the state file is already sealed")
    }

    /// Adds the next item; items must come in `seq` order, 1, 2, 3, ...
    pub fn item(&mut self, item: &Item) -> anyhow::Result<()> {
        anyhow::ensure!(
            item.seq == self.last_seq + 1,
            "plan items out of order at {}",
            item.seq
        );
        self.last_seq = item.seq;
        let state = if item.action == Action::Delete {
            ItemState::Pending
        } else {
            ItemState::Skipped
        };
        self.conn()?
            .prepare_cached(
                "INSERT INTO items (seq, lookup, profile, user_id, id_type, id_value, action, note, origin, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                item.seq as i64,
                item.lookup,
                item.profile,
                item.user_id,
                item.identifier.kind,
                item.identifier.id,
                item.action.as_str(),
                item.note,
                item.origin,
                state.as_str()
            ])?;
        if let Some(h) = &mut self.hasher {
            h.item(&fields(item));
        }
        Ok(())
    }

    /// Records a resolved profile's before-state (for the diff).
    pub fn profile(&mut self, p: &Profile) -> anyhow::Result<()> {
        let before: Vec<[&str; 2]> = p
            .before
            .iter()
            .map(|i| [i.kind.as_str(), i.id.as_str()])
            .collect();
        self.conn()?
            .prepare_cached(
                "INSERT OR IGNORE INTO profiles (key, lookup, before) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![p.key, p.lookup, serde_json::to_string(&before)?])?;
        Ok(())
    }

    /// Records a plan warning.
    pub fn warning(&mut self, message: &str) -> anyhow::Result<()> {
        let idx = self.next_warning;
        self.next_warning += 1;
        self.conn()?
            .prepare_cached("INSERT INTO warnings (idx, message) VALUES (?1, ?2)")?
            .execute(params![idx, message])?;
        Ok(())
    }

    /// Draws up to `n` distinct user_ids of the unverified deletes at random (SQLite's
    /// `random()`), each with the identifiers the plan deletes from it, in random order (so
    /// every prefix is itself a random sample): the rounds of `plan --refresh=false --sample N`.
    pub fn sample_targets(&self, n: u64) -> anyhow::Result<Vec<crate::sample::Target>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT i.user_id, i.id_type, i.id_value FROM items i
             JOIN (SELECT user_id FROM (SELECT DISTINCT user_id FROM items
                     WHERE action = 'delete' AND note = ?1 AND user_id IS NOT NULL)
                   ORDER BY random() LIMIT ?2) s ON s.user_id = i.user_id
             WHERE i.action = 'delete'",
        )?;
        let rows = stmt.query_map(
            params![
                crate::plan::UNVERIFIED_NOTE,
                i64::try_from(n).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut drawn: BTreeMap<String, BTreeSet<Identifier>> = BTreeMap::new();
        for row in rows {
            let (user_id, kind, id) = row?;
            drawn
                .entry(user_id)
                .or_default()
                .insert(Identifier::new(kind, id));
        }
        let mut drawn: Vec<_> = drawn.into_iter().collect();
        drawn.shuffle(&mut rand::rng());
        Ok(drawn)
    }

    /// Calls `visit` with every `delete` item written so far (seq, type, value), in seq order,
    /// and returns how many distinct profiles they touch: what a policy judges.
    pub fn for_each_delete(&self, mut visit: impl FnMut(u64, &str, &str)) -> anyhow::Result<u64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT seq, id_type, id_value FROM items WHERE action = 'delete' ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let kind: String = r.get(1)?;
            let value: String = r.get(2)?;
            visit(seq as u64, &kind, &value);
        }
        Ok(conn.query_row(
            "SELECT count(DISTINCT profile) FROM items WHERE action = 'delete'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Records one more sealed plan-level fact in `meta` (inside the file seal, outside the
    /// digest), such as the sampled check's result.
    pub fn meta_row(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        self.conn()?.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    /// Writes the meta with the digest, commits, and renames the file into place.
    pub fn finish(mut self) -> anyhow::Result<String> {
        let digest = self
            .hasher
            .take()
            .context("the state file is already sealed")?
            .finish();
        let m = &self.meta;
        let policy = m.policy_sha256.clone().map(|sha| ("policy_sha256", sha));
        let rows: [(&str, String); 11] = [
            ("format_version", m.format_version.to_string()),
            ("digest", digest.clone()),
            ("space", m.space.clone()),
            ("region", m.region.clone()),
            ("api_origin", m.api_origin.clone()),
            ("manifest_path", m.manifest_path.clone()),
            ("manifest_sha256", m.manifest_sha256.clone()),
            ("reason", m.reason.clone()),
            ("created_at", m.created_at.to_string()),
            ("ttl_secs", m.ttl_secs.to_string()),
            (
                FINGERPRINT_KEY_META,
                hex::encode(rand::random::<[u8; 32]>()),
            ),
        ];
        let conn = self
            .conn
            .take()
            .context("the state file is already sealed")?;
        for (key, value) in rows.into_iter().chain(policy) {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        conn.execute_batch(schema::CREATE_ITEM_INDEXES)?;
        let seal = check::file_seal(&conn)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![FILE_SEAL_KEY, seal],
        )?;
        conn.execute_batch("COMMIT")?;
        // The file's lasting mode (recorded in its header): every later open journals.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.close().map_err(|(_, e)| e)?;
        // Closing the last connection removed the new file's log; nothing of it may follow
        // the file to its new name.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(side(&self.tmp, suffix));
        }
        // Written without syncs (see `bulk_load`): on the disk as a whole before the rename.
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing `{}`", self.tmp.display()))?;
        replace_file(&self.tmp, &self.path)?;
        self.sealed = true;
        self.lock = None;
        Ok(digest)
    }
}

/// Moves the sealed, closed state file `from` over `to`, whose lock ([`FileLock`]) the caller
/// holds: `to`'s side files are cleared first (a log that still holds changes is refused, not
/// lost), and the rename is made durable. `plan` and `apply MANIFEST` replace files this way.
pub fn replace_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    clear_sides(to)?;
    std::fs::rename(from, to)
        .with_context(|| format!("moving the new state file into `{}`", to.display()))?;
    sync_dir(to)
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // Not finished (or `finish` failed, e.g. on a full disk): nothing half-written stays
        // behind.
        if !self.sealed {
            drop(self.conn.take());
            remove_db(&self.tmp);
        }
    }
}

/// Removes what a killed `plan` left beside `state`: `<state>.tmp-<pid>` and
/// `<state>.stage-<pid>` files (the latter `crate::scratch`'s) and their SQLite side files
/// whose process no longer runs. They hold identifiers, so they must not linger. Returns how
/// many were removed.
pub fn remove_leftovers(state: &Path) -> usize {
    let Some(name) = state.file_name().and_then(|n| n.to_str()) else {
        return 0;
    };
    let dir = match state.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in listing.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(rest) = file.strip_prefix(name) else {
            continue;
        };
        let Some(pid) = rest
            .strip_prefix(".tmp-")
            .or_else(|| rest.strip_prefix(".stage-"))
        else {
            continue;
        };
        // Side files (`-wal`, `-shm`, `-journal`) go with their database.
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !super::lock::pid_alive(pid) {
            remove_db(&entry.path());
            removed += 1;
        }
    }
    removed
}
