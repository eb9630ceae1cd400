//! The state file: one SQLite database holding the sealed plan and the apply journal.
//!
//! It owns the schema ([`schema`]), the seal (the digest stored at plan time and recomputed from
//! the stored items before every apply), the per-item journal (`pending → in_flight → done |
//! already_absent | failed`), the exclusive apply lock ([`lock`]) and the append-only `runs`
//! table. It never sees the access token. Files are created `0600` (SQLite gives its `-wal` and
//! `-shm` files the same mode) and a group- or world-readable state file is refused, since the
//! items are personal data. Writes use WAL with `synchronous=FULL` and `secure_delete=ON`.
//!
//! The whole file is sealed, not only its items ([`check`]): opening one checks the header's
//! application id before SQLite touches it, opens it read-only with SQLite's defensive settings
//! to compare its schema with this build's, and only then reopens it for writing; it then
//! checks the file seal over every row `plan` wrote and the journal's invariants. A file that
//! fails any of these is refused ([`Refusal`]) before anything is sent or shown.

pub mod check;
pub mod lock;
mod purge;
mod rerun;
pub mod schema;
mod seal;
pub mod verify;

pub use check::{MAX_UNIX, Refusal};
pub use purge::{FINGERPRINT_PREFIX, MIN_KEY_BYTES, fingerprint};
pub use seal::{Sealer, create_private, remove_leftovers, replace_file};

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::digest::{Header, ItemFields, PlanHasher};
use crate::model::Identifier;
use crate::plan::{Action, Item, Profile};

/// The version of the state format (and of the JSON views of it).
pub const FORMAT_VERSION: u32 = 1;

/// The meta key of the file's own fingerprint key: 32 random bytes (hex) written at seal time,
/// so keyed fingerprints in this file's views agree between commands. Covered by the file seal;
/// not part of the plan digest (it changes how values are shown, never what is applied).
pub const FINGERPRINT_KEY_META: &str = "fingerprint_key";

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where an item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemState {
    /// Not sent yet.
    Pending,
    /// Its request may have been sent; a resumed apply re-sends it.
    InFlight,
    /// Deleted.
    Done,
    /// The server said the identifier was not there.
    AlreadyAbsent,
    /// Gave up on it (see [`Failure`]).
    Failed,
    /// Not a `delete` item: nothing is ever sent for it.
    Skipped,
}

impl ItemState {
    /// All states, in display order.
    pub const ALL: [ItemState; 6] = [
        Self::Pending,
        Self::InFlight,
        Self::Done,
        Self::AlreadyAbsent,
        Self::Failed,
        Self::Skipped,
    ];

    /// The name in the state file and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Done => "done",
            Self::AlreadyAbsent => "already_absent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown state `{s}`"))
    }
}

/// Why a failed item failed: decides whether a plain `apply` retries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A fault that may pass (5xx, timeouts): the next plain `apply` retries it.
    Transient,
    /// A refusal (400, 404 `not_found`): retried only with `--retry-failed`.
    Permanent,
}

impl Failure {
    /// The name in the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// A selection of items for the views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemFilter {
    /// Every item.
    All,
    /// Items nothing is sent for (`absent`, `blocked`, `unresolved`).
    NotSent,
    /// `delete` items with a note for the reviewer.
    Noted,
    /// Either of the two above.
    NotSentOrNoted,
}

impl ItemFilter {
    fn sql(self) -> &'static str {
        match self {
            Self::All => "1",
            Self::NotSent => "action != 'delete'",
            Self::Noted => "action = 'delete' AND note IS NOT NULL",
            Self::NotSentOrNoted => "(action != 'delete' OR note IS NOT NULL)",
        }
    }
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

/// An item with its journal columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    /// The planned item.
    pub item: Item,
    /// Journal state.
    pub state: ItemState,
    /// Requests sent for it.
    pub attempts: u32,
    /// For failed items: transient or permanent.
    pub failure: Option<Failure>,
    /// The last error, for people.
    pub last_error: Option<String>,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// Segment's `Request-Id` of the last response.
    pub request_id: Option<String>,
}

/// The outcome of one request (or of a decision not to send), to be journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The item.
    pub seq: u64,
    /// Its new state.
    pub state: ItemState,
    /// Requests sent for it in this run (added to the stored count).
    pub attempts: u32,
    /// For failed items.
    pub failure: Option<Failure>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// The last `Request-Id`.
    pub request_id: Option<String>,
}

/// A delete the executor has to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// The item.
    pub seq: u64,
    /// The address.
    pub user_id: String,
    /// What to delete.
    pub identifier: Identifier,
    /// The profile key (for the per-profile limit).
    pub profile: String,
    /// True when an earlier request for it may have reached the server and been applied
    /// unacknowledged: it was in flight, or it has been sent before (a failed item whose
    /// attempts included a timeout or a lost acknowledgement). A `404 eid_not_found` then means
    /// `done`, not `already_absent`.
    pub may_have_landed: bool,
}

/// Counts by action and by state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items per action.
    pub by_action: BTreeMap<Action, u64>,
    /// Items per state.
    pub by_state: BTreeMap<ItemState, u64>,
    /// Distinct profiles with a `delete` item.
    pub delete_profiles: u64,
}

impl Counts {
    /// Items in one state.
    pub fn state(&self, state: ItemState) -> u64 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }

    /// Items with one action.
    pub fn action(&self, action: Action) -> u64 {
        self.by_action.get(&action).copied().unwrap_or(0)
    }
}

/// One recorded apply run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// Start, Unix seconds.
    pub started_at: i64,
    /// End, when finished.
    pub finished_at: Option<i64>,
    /// Who ran it.
    pub user: String,
    /// Where.
    pub host: String,
    /// How it ended (`completed`, `failed_items`, `stopped`, `interrupted`).
    pub outcome: Option<String>,
    /// What it measured.
    pub figures: RunFigures,
    /// Items `done`, `already_absent` and `failed` in the whole plan when it ended (`None`
    /// while it runs).
    pub totals_after: Option<[u64; 3]>,
}

/// A run whose process died without closing its record, as [`State::close_dead_runs`] closed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadRun {
    /// Run id.
    pub id: i64,
    /// Items the journal settled (done, already absent or failed) while it ran.
    pub settled: u64,
}

/// The measured figures of a finished run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFigures {
    /// Requests sent.
    pub requests: u64,
    /// Requests answered 429.
    pub throttled: u64,
    /// Requests per second achieved.
    pub rate: f64,
    /// Median request latency, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th-percentile request latency, milliseconds.
    pub latency_p99_ms: Option<f64>,
}

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

/// The items an apply sends (`?2` is `--retry-failed`): pending and in-flight deletes, and
/// failed ones that were transient (or all failed ones with `--retry-failed`).
const WORK: &str = "action = 'delete' AND (state IN ('pending', 'in_flight')
    OR (state = 'failed' AND (failure = 'transient' OR ?2)))";

const ITEM_COLUMNS: &str = "seq, lookup, profile, user_id, id_type, id_value, action, note, origin, \
     state, attempts, failure, last_error, last_status, request_id";

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredItem> {
    let bad = |col: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into())
    };
    let action: String = row.get(6)?;
    let state: String = row.get(9)?;
    let failure: Option<String> = row.get(11)?;
    Ok(StoredItem {
        item: Item {
            seq: row.get::<_, i64>(0)? as u64,
            lookup: row.get(1)?,
            profile: row.get(2)?,
            user_id: row.get(3)?,
            identifier: Identifier::new(row.get::<_, String>(4)?, row.get::<_, String>(5)?),
            action: action.parse().map_err(|e| bad(6, e))?,
            note: row.get(7)?,
            origin: row.get(8)?,
        },
        state: state.parse().map_err(|e| bad(9, e))?,
        attempts: row.get::<_, i64>(10)? as u32,
        failure: match failure.as_deref() {
            None => None,
            Some("transient") => Some(Failure::Transient),
            Some("permanent") => Some(Failure::Permanent),
            Some(other) => return Err(bad(11, format!("unknown failure kind `{other}`"))),
        },
        last_error: row.get(12)?,
        last_status: row.get::<_, Option<i64>>(13)?.map(|s| s as u16),
        request_id: row.get(14)?,
    })
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
        Err(e) if e.downcast_ref::<Refusal>().is_none() => {
            Err(e.context(format!("opening state file `{}`", path.display())))
        }
        other => other.map(|()| conn),
    }
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
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "state file `{}` is readable by others (mode {mode:03o}) and holds personal data; run `chmod 600 {}`",
                path.display(),
                path.display()
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
            return Err(Refusal(format!(
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
            return Err(Refusal(format!(
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

    /// Calls `f` with every item in `seq` order, streaming.
    pub fn for_each_item(
        &self,
        mut f: impl FnMut(StoredItem) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            f(read_item(row)?)?;
        }
        Ok(())
    }

    /// Calls `f` with the items `filter` selects, in `seq` order, at most `limit` of them.
    pub fn for_each_item_in(
        &self,
        filter: ItemFilter,
        limit: u64,
        mut f: impl FnMut(StoredItem) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE {} ORDER BY seq LIMIT ?1",
            filter.sql()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([limit.min(i64::MAX as u64) as i64])?;
        while let Some(row) = rows.next()? {
            f(read_item(row)?)?;
        }
        Ok(())
    }

    /// How many items `filter` selects.
    pub fn count_items(&self, filter: ItemFilter) -> anyhow::Result<u64> {
        let sql = format!("SELECT count(*) FROM items WHERE {}", filter.sql());
        Ok(self.conn.query_row(&sql, [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Calls `f` with each profile that has deletions and its `delete` items, in the order of
    /// the profiles' first deletion, at most `limit` profiles. Streams: one profile at a time.
    pub fn for_each_profile_diff(
        &self,
        limit: u64,
        mut f: impl FnMut(&Profile, &[StoredItem]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut groups = self.conn.prepare(
            "SELECT profile, MIN(seq) AS first FROM items WHERE action = 'delete' AND profile IS NOT NULL
             GROUP BY profile ORDER BY first LIMIT ?1",
        )?;
        let mut items = self.conn.prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE profile = ?1 AND action = 'delete' ORDER BY seq"
        ))?;
        let mut profile = self
            .conn
            .prepare("SELECT lookup, before FROM profiles WHERE key = ?1")?;
        let mut rows = groups.query([limit.min(i64::MAX as u64) as i64])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let Some((lookup, before)) = profile
                .query_row([&key], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?
            else {
                return Err(self.unbound_view(&key));
            };
            let before = self.parse_before(&before)?;
            let list = items
                .query_map([&key], read_item)?
                .collect::<Result<Vec<_>, _>>()?;
            // The diff is drawn from the before-state: a sealed delete missing from it would
            // not be shown, so the view is refused instead.
            if list.iter().any(|s| !before.contains(&s.item.identifier)) {
                return Err(self.unbound_view(&key));
            }
            f(
                &Profile {
                    key,
                    lookup,
                    before,
                },
                &list,
            )?;
        }
        Ok(())
    }

    fn unbound_view(&self, profile: &str) -> anyhow::Error {
        Refusal(format!(
            "state file `{}`: the before-state of profile `{}` does not hold every identifier sealed for deletion from it, so its diff would hide one; the file may have been tampered with: plan again from the manifest",
            self.path.display(),
            crate::text::clean(profile)
        ))
        .into()
    }

    fn parse_before(&self, json: &str) -> anyhow::Result<Vec<Identifier>> {
        let pairs: Vec<(String, String)> = serde_json::from_str(json).with_context(|| {
            format!("state file `{}`: damaged profile row", self.path.display())
        })?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| Identifier::new(k, v))
            .collect())
    }

    /// Plan warnings.
    pub fn warnings(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT message FROM warnings ORDER BY idx")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts by action and by state.
    pub fn counts(&self) -> anyhow::Result<Counts> {
        let mut counts = Counts::default();
        let mut stmt = self
            .conn
            .prepare("SELECT action, state, count(*) FROM items GROUP BY action, state")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let action: Action = row
                .get::<_, String>(0)?
                .parse()
                .map_err(anyhow::Error::msg)?;
            let state: ItemState = row
                .get::<_, String>(1)?
                .parse()
                .map_err(anyhow::Error::msg)?;
            let n = row.get::<_, i64>(2)? as u64;
            *counts.by_action.entry(action).or_default() += n;
            *counts.by_state.entry(state).or_default() += n;
        }
        counts.delete_profiles = self.conn.query_row(
            "SELECT count(DISTINCT profile) FROM items WHERE action = 'delete'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64;
        Ok(counts)
    }

    /// True once any apply has run against this plan.
    pub fn has_journal(&self) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT count(*) > 0 FROM runs", [], |r| r.get(0))?)
    }

    /// The next items to send after `after_seq`, at most `limit`: pending and in-flight deletes,
    /// transiently failed ones, and permanently failed ones too with `retry_failed`.
    pub fn work_batch(
        &self,
        after_seq: u64,
        limit: usize,
        retry_failed: bool,
    ) -> anyhow::Result<Vec<Work>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT seq, user_id, id_type, id_value, profile, state, attempts FROM items
             WHERE seq > ?1 AND {WORK} ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![after_seq as i64, retry_failed, limit as i64], |r| {
            Ok(Work {
                seq: r.get::<_, i64>(0)? as u64,
                user_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                identifier: Identifier::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                profile: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                may_have_landed: r.get::<_, String>(5)? == ItemState::InFlight.as_str()
                    || r.get::<_, i64>(6)? > 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many items [`State::work_batch`] would hand out in all.
    pub fn count_work(&self, retry_failed: bool) -> anyhow::Result<u64> {
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM items WHERE ?1 >= 0 AND {WORK}"),
            params![0, retry_failed],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Commits the intent to send: these items become `in_flight` before any request leaves.
    pub fn mark_in_flight(&mut self, seqs: &[u64]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE items SET state = 'in_flight', updated_at = ?2 WHERE seq = ?1 AND action = 'delete'",
            )?;
            let now = now_unix();
            for seq in seqs {
                stmt.execute(params![*seq as i64, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Commits a group of outcomes in one transaction.
    pub fn record(&mut self, outcomes: &[Outcome]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE items SET state = ?2, attempts = attempts + ?3, failure = ?4,
                    last_error = COALESCE(?5, last_error), last_status = COALESCE(?6, last_status),
                    request_id = COALESCE(?7, request_id), updated_at = ?8
                 WHERE seq = ?1 AND action = 'delete'",
            )?;
            let now = now_unix();
            for o in outcomes {
                stmt.execute(params![
                    o.seq as i64,
                    o.state.as_str(),
                    o.attempts as i64,
                    o.failure.map(Failure::as_str),
                    o.last_error,
                    o.last_status.map(i64::from),
                    o.request_id,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the start of an apply run; returns its id.
    pub fn start_run(
        &self,
        user: &str,
        host: &str,
        digest: &str,
        reason: &str,
    ) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, user, host, digest, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now_unix(), user, host, digest, reason],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended, with the counts at that moment.
    pub fn finish_run(&self, run: i64, outcome: &str, figures: &RunFigures) -> anyhow::Result<()> {
        let c = self.counts()?;
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, requests = ?4, done = ?5,
                already_absent = ?6, failed = ?7, pending = ?8, rate = ?9, throttled = ?10,
                latency_p50_ms = ?11, latency_p99_ms = ?12 WHERE id = ?1",
            params![
                run,
                now_unix(),
                outcome,
                figures.requests as i64,
                c.state(ItemState::Done) as i64,
                c.state(ItemState::AlreadyAbsent) as i64,
                c.state(ItemState::Failed) as i64,
                (c.state(ItemState::Pending) + c.state(ItemState::InFlight)) as i64,
                figures.rate,
                figures.throttled as i64,
                figures.latency_p50_ms,
                figures.latency_p99_ms,
            ],
        )?;
        Ok(())
    }

    /// Records the `--rate` a run was started with (0: unlimited), so a resumed run can say
    /// what the earlier one asked for.
    pub fn record_run_rate(&self, run: i64, rate: u32) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE runs SET started_rate = ?2 WHERE id = ?1",
            params![run, i64::from(rate)],
        )?;
        Ok(())
    }

    /// The `--rate` run `run` was started with, when it was recorded.
    pub fn run_rate(&self, run: i64) -> anyhow::Result<Option<u32>> {
        let rate: Option<i64> = self
            .conn
            .query_row("SELECT started_rate FROM runs WHERE id = ?1", [run], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        Ok(rate.and_then(|r| u32::try_from(r).ok()))
    }

    /// Closes every run left open by a process that died (call it holding the lock, before
    /// starting a run): outcome `died`, the plan's counts at this moment (its requests were
    /// never recorded: 0), and what the journal settled between its start and the next run's.
    pub fn close_dead_runs(&self) -> anyhow::Result<Vec<DeadRun>> {
        let open: Vec<(i64, i64)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, started_at FROM runs WHERE finished_at IS NULL ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut closed = Vec::new();
        for (id, started_at) in open {
            let until: Option<i64> = self.conn.query_row(
                "SELECT min(started_at) FROM runs WHERE id > ?1",
                [id],
                |r| r.get(0),
            )?;
            let settled: i64 = self.conn.query_row(
                "SELECT count(*) FROM items WHERE action = 'delete'
                   AND state IN ('done', 'already_absent', 'failed')
                   AND updated_at >= ?1 AND (?2 IS NULL OR updated_at < ?2)",
                params![started_at, until],
                |r| r.get(0),
            )?;
            self.finish_run(id, "died", &RunFigures::default())?;
            closed.push(DeadRun {
                id,
                settled: settled as u64,
            });
        }
        Ok(closed)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> anyhow::Result<Vec<Run>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, finished_at, user, host, outcome, COALESCE(requests, 0),
                    COALESCE(rate, 0), COALESCE(throttled, 0), latency_p50_ms, latency_p99_ms,
                    done, already_absent, failed
             FROM runs ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut runs = Vec::new();
        let path = &self.path;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let field = |name: &str| format!("runs.{name} of run {id}");
            runs.push(Run {
                id,
                started_at: check::time(path, &field("started_at"), r.get(1)?)?,
                finished_at: match r.get::<_, Option<i64>>(2)? {
                    Some(t) => Some(check::time(path, &field("finished_at"), t)?),
                    None => None,
                },
                user: r.get(3)?,
                host: r.get(4)?,
                outcome: r.get(5)?,
                figures: RunFigures {
                    requests: check::number(path, &field("requests"), r.get(6)?)?,
                    rate: r.get(7)?,
                    throttled: check::number(path, &field("throttled"), r.get(8)?)?,
                    latency_p50_ms: r.get(9)?,
                    latency_p99_ms: r.get(10)?,
                },
                totals_after: match (
                    r.get::<_, Option<i64>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                    r.get::<_, Option<i64>>(13)?,
                ) {
                    (Some(d), Some(a), Some(f)) => Some([d as u64, a as u64, f as u64]),
                    _ => None,
                },
            });
        }
        Ok(runs)
    }

    /// The most recent errors, newest first: `(seq, error)`.
    pub fn last_errors(&self, limit: usize) -> anyhow::Result<Vec<(u64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, last_error FROM items WHERE last_error IS NOT NULL AND state != 'done'
             ORDER BY updated_at DESC, seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?;
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

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Fixtures for unit tests that need a real sealed state file.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::{Meta, Sealer, State};
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

    /// Seals `items` (and their profiles) into `dir/t.state.db` and opens it.
    pub fn sealed(dir: &Path, items: &[Item]) -> State {
        let path = dir.join("t.state.db");
        let meta = Meta {
            format_version: 1,
            digest: String::new(),
            space: "spa".into(),
            region: "us".into(),
            api_origin: "http://127.0.0.1:1".into(),
            manifest_path: "m.yaml".into(),
            manifest_sha256: "00".into(),
            reason: "test".into(),
            created_at: 0,
            ttl_secs: 60,
        };
        let mut sealer = Sealer::begin(&path, meta, &[]).expect("begin");
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
