//! `plan`'s scratch file: a SQLite file beside the state file that holds the
//! manifest's entries and the resolved profiles, so a manifest of millions of rows is planned
//! with bounded memory. The steps, each streaming:
//! 1. the manifest loader hands every entry to [`Scratch`] (an [`EntrySink`]); a unique index
//!    collapses duplicates;
//! 2. the distinct lookups are read back in chunks for the resolver, and each chunk's answers
//!    are recorded;
//! 3. entries are read back grouped by resolved profile, each group is planned by the pure
//!    [`plan::plan_profile`], and the drafts are appended with their manifest position (a
//!    heap, not a tree keyed by position: profile order would make every insert a random one);
//! 4. drafts are read back sorted into manifest order, numbered, and handed to the [`Sealer`].
//!
//! The scratch file holds personal data: it is created `0600` and deleted when the [`Scratch`]
//! is dropped, whether planning succeeded or not.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::{Connection, params};

use crate::manifest::{Added, Entry, EntrySink, Location};
use crate::model::{Identifier, Lookup};
use crate::plan::{self, Action, Item, Resolution};
use crate::state::Sealer;

/// The scratch file's page cache, KiB (counted in `plan`'s peak memory).
const SCRATCH_CACHE_KIB: i64 = 32 * 1024;

const SCHEMA: &str = "
CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE entries (
    idx INTEGER PRIMARY KEY, ltype TEXT NOT NULL, lvalue TEXT NOT NULL, explicit INTEGER NOT NULL,
    kind TEXT NOT NULL, id TEXT NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL, col INTEGER NOT NULL);
CREATE UNIQUE INDEX entries_unique ON entries (ltype, lvalue, explicit, kind, id);
CREATE TABLE resolved (
    ltype TEXT NOT NULL, lvalue TEXT NOT NULL, key TEXT, ids TEXT,
    PRIMARY KEY (ltype, lvalue)) WITHOUT ROWID;
CREATE TABLE drafts (
    idx INTEGER NOT NULL, lookup TEXT NOT NULL, profile TEXT, user_id TEXT, kind TEXT NOT NULL,
    id TEXT NOT NULL, action TEXT NOT NULL, note TEXT, origin TEXT NOT NULL);
CREATE TABLE warnings (idx INTEGER NOT NULL, message TEXT NOT NULL);
";

/// A lookup as two columns: a segment id is `("segment_id", id)`, which no external lookup can
/// be (`segment_id:X` parses as a segment id), so the mapping is one to one.
fn columns(lookup: &Lookup) -> (&str, &str) {
    match lookup {
        Lookup::SegmentId(v) => ("segment_id", v),
        Lookup::External(i) => (&i.kind, &i.id),
    }
}

fn from_columns(ltype: String, lvalue: String) -> Lookup {
    if ltype == "segment_id" {
        Lookup::SegmentId(lvalue)
    } else {
        Lookup::External(Identifier::new(ltype, lvalue))
    }
}

/// Counts of the planned items.
#[derive(Clone, Copy, Debug, Default)]
pub struct Planned {
    /// Items in all.
    pub items: u64,
    /// Items to delete.
    pub deletes: u64,
}

/// The entries that need their profile read, as SQL over `entries` (the negation of
/// [`plan::needs_no_read`]: only an explicit `user_id` lookup removing a type other than
/// `user_id` and `group_id` can do without).
const NEEDS_READ: &str =
    "NOT (explicit = 1 AND ltype = 'user_id' AND kind NOT IN ('user_id', 'group_id'))";

/// The scratch database of one `plan` run.
pub struct Scratch {
    conn: Connection,
    path: PathBuf,
    files: Vec<PathBuf>,
    file_ids: HashMap<PathBuf, i64>,
    entries: u64,
    /// Read every lookup (the default); false: only those an entry needs (`--refresh=false`).
    refresh: bool,
}

impl Scratch {
    /// Creates the scratch file beside `state` (`<state>.stage-<pid>`; the
    /// on-disk suffix predates the module's name and is kept so old leftovers are still swept).
    pub fn create(state: &Path) -> anyhow::Result<Self> {
        let mut name = state
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(format!(".stage-{}", std::process::id()));
        let path = state.with_file_name(name);
        let conn = crate::state::create_private(&path)?;
        // Disposable: no journal, no fsync.
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        // Grouping a million entries by profile sorts and joins far more than SQLite's default
        // 2 MB page cache holds; this bounded cache keeps those passes off the disk.
        conn.pragma_update(None, "cache_size", -SCRATCH_CACHE_KIB)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch("BEGIN")?;
        Ok(Self {
            conn,
            path,
            files: Vec::new(),
            file_ids: HashMap::new(),
            entries: 0,
            refresh: true,
        })
    }

    /// `plan --refresh=false`: read only the lookups an entry needs ([`plan::needs_no_read`]);
    /// the other entries are planned as unverified deletes ([`plan::plan_unverified`]).
    pub fn set_refresh(&mut self, refresh: bool) {
        self.refresh = refresh;
    }

    /// The filter of lookups to read.
    fn read_filter(&self) -> &'static str {
        if self.refresh { "1" } else { NEEDS_READ }
    }

    fn file_id(&mut self, file: &Path) -> anyhow::Result<i64> {
        if let Some(id) = self.file_ids.get(file) {
            return Ok(*id);
        }
        let id = self.files.len() as i64;
        self.conn.execute(
            "INSERT INTO files (id, path) VALUES (?1, ?2)",
            params![id, file.to_string_lossy()],
        )?;
        self.files.push(file.to_owned());
        self.file_ids.insert(file.to_owned(), id);
        Ok(id)
    }

    fn insert(&mut self, entry: &Entry) -> anyhow::Result<Option<Location>> {
        let file = self.file_id(&entry.origin.file)?;
        let lookup = plan::lookup_of(entry);
        let (ltype, lvalue) = columns(&lookup);
        let explicit = entry.lookup.is_some();
        let key = params![
            ltype,
            lvalue,
            explicit,
            entry.identifier.kind,
            entry.identifier.id
        ];
        let added = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO entries (idx, ltype, lvalue, explicit, kind, id, file, line, col)
                 VALUES (?6, ?1, ?2, ?3, ?4, ?5, ?7, ?8, ?9)",
            )?
            .execute(params![
                ltype,
                lvalue,
                explicit,
                entry.identifier.kind,
                entry.identifier.id,
                self.entries as i64,
                file,
                entry.origin.line as i64,
                entry.origin.column as i64
            ])?;
        if added == 1 {
            self.entries += 1;
            return Ok(None);
        }
        let (file, line, col): (i64, i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT file, line, col FROM entries
                 WHERE ltype = ?1 AND lvalue = ?2 AND explicit = ?3 AND kind = ?4 AND id = ?5",
            )?
            .query_row(key, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(Some(self.location(file, line, col)))
    }

    fn location(&self, file: i64, line: i64, col: i64) -> Location {
        let file = self.files.get(file as usize).cloned().unwrap_or_default();
        Location {
            file,
            line: line as u64,
            column: col as u64,
        }
    }

    /// Distinct lookups still to resolve, in order, starting after `after`.
    pub fn lookups(&self, after: Option<&Lookup>, limit: usize) -> anyhow::Result<Vec<Lookup>> {
        let (at, av) = after.map(columns).unwrap_or(("", ""));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT DISTINCT ltype, lvalue FROM entries WHERE (ltype, lvalue) > (?1, ?2) AND {}
             ORDER BY ltype, lvalue LIMIT ?3",
            self.read_filter()
        ))?;
        let rows = stmt.query_map(params![at, av, limit as i64], |r| {
            Ok(from_columns(r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The number of distinct lookups.
    pub fn lookup_count(&self) -> anyhow::Result<u64> {
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM (SELECT DISTINCT ltype, lvalue FROM entries WHERE {})",
                self.read_filter()
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Records what a chunk of lookups found.
    pub fn record(&mut self, resolved: &BTreeMap<Lookup, Resolution>) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO resolved (ltype, lvalue, key, ids) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (lookup, resolution) in resolved {
            let (ltype, lvalue) = columns(lookup);
            let (key, ids) = match resolution {
                Resolution::NotFound => (None, None),
                Resolution::Found(ids) => {
                    let pairs: Vec<[&str; 2]> = ids
                        .iter()
                        .map(|i| [i.kind.as_str(), i.id.as_str()])
                        .collect();
                    let key = plan::profile_key(ids).unwrap_or_else(|| lookup.to_string());
                    (Some(key), Some(serde_json::to_string(&pairs)?))
                }
            };
            stmt.execute(params![ltype, lvalue, key, ids])?;
        }
        Ok(())
    }

    /// Plans every entry, profile by profile, and seals the items in manifest order.
    pub fn seal(&mut self, sealer: &mut Sealer) -> anyhow::Result<Planned> {
        self.draft(sealer)?;
        let mut planned = Planned::default();
        {
            let mut stmt = self.conn.prepare(
                "SELECT idx, lookup, profile, user_id, kind, id, action, note, origin FROM drafts ORDER BY idx",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let action: String = r.get(6)?;
                let item = Item {
                    seq: planned.items + 1,
                    lookup: r.get(1)?,
                    profile: r.get(2)?,
                    user_id: r.get(3)?,
                    identifier: Identifier::new(r.get::<_, String>(4)?, r.get::<_, String>(5)?),
                    action: action.parse().map_err(anyhow::Error::msg)?,
                    note: r.get(7)?,
                    origin: r.get(8)?,
                };
                planned.items += 1;
                planned.deletes += u64::from(item.action == Action::Delete);
                sealer.item(&item)?;
            }
            let mut stmt = self
                .conn
                .prepare("SELECT message FROM warnings ORDER BY idx, rowid")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                sealer.warning(&r.get::<_, String>(0)?)?;
            }
        }
        Ok(planned)
    }

    /// Steps 3: group entries by resolved profile, plan each group, store the drafts.
    fn draft(&mut self, sealer: &mut Sealer) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT e.idx, e.ltype, e.lvalue, e.explicit, e.kind, e.id, e.file, e.line, e.col, r.key, r.ids,
                    r.ltype IS NOT NULL
             FROM entries e LEFT JOIN resolved r ON r.ltype = e.ltype AND r.lvalue = e.lvalue
             ORDER BY r.key, e.idx",
        )?;
        let mut rows = stmt.query([])?;
        let mut group: Vec<(u64, Entry)> = Vec::new();
        let mut group_key: Option<String> = None;
        let mut group_ids: Vec<Identifier> = Vec::new();
        while let Some(r) = rows.next()? {
            let idx = r.get::<_, i64>(0)? as u64;
            let lookup = from_columns(r.get(1)?, r.get(2)?);
            let explicit: bool = r.get(3)?;
            let identifier = Identifier::new(r.get::<_, String>(4)?, r.get::<_, String>(5)?);
            let origin = self.location(r.get(6)?, r.get(7)?, r.get(8)?);
            let entry = Entry {
                lookup: explicit.then_some(lookup),
                identifier,
                origin,
            };
            let key: Option<String> = r.get(9)?;
            let Some(key) = key else {
                let read: bool = r.get(11)?;
                let item = if !read && !self.refresh && plan::needs_no_read(&entry) {
                    plan::plan_unverified(&entry)
                } else {
                    plan::plan_unresolved(&entry)
                };
                store(
                    &self.conn,
                    sealer,
                    &plan::ProfilePlan {
                        items: vec![(idx, item)],
                        ..plan::ProfilePlan::default()
                    },
                )?;
                continue;
            };
            if group_key.as_deref() != Some(key.as_str()) {
                store(&self.conn, sealer, &plan::plan_profile(&group, &group_ids))?;
                group.clear();
                let ids: String = r.get::<_, Option<String>>(10)?.unwrap_or_default();
                let pairs: Vec<(String, String)> =
                    serde_json::from_str(&ids).context("a staged profile is damaged")?;
                group_ids = pairs
                    .into_iter()
                    .map(|(k, v)| Identifier::new(k, v))
                    .collect();
                group_key = Some(key);
            }
            group.push((idx, entry));
        }
        store(&self.conn, sealer, &plan::plan_profile(&group, &group_ids))
    }
}

/// Stores one profile's drafts and warnings, and seals its before-state.
fn store(conn: &Connection, sealer: &mut Sealer, part: &plan::ProfilePlan) -> anyhow::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO drafts (idx, lookup, profile, user_id, kind, id, action, note, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (idx, i) in &part.items {
        stmt.execute(params![
            *idx as i64,
            i.lookup,
            i.profile,
            i.user_id,
            i.identifier.kind,
            i.identifier.id,
            i.action.as_str(),
            i.note,
            i.origin
        ])?;
    }
    let mut stmt = conn.prepare_cached("INSERT INTO warnings (idx, message) VALUES (?1, ?2)")?;
    for (idx, w) in &part.warnings {
        stmt.execute(params![*idx as i64, w])?;
    }
    if let Some(p) = &part.profile {
        sealer.profile(p)?;
    }
    Ok(())
}

impl EntrySink for Scratch {
    fn add(&mut self, entry: Entry) -> Result<Added, String> {
        match self.insert(&entry) {
            Ok(None) => Ok(Added::New),
            Ok(Some(first)) => Ok(Added::Duplicate { entry, first }),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    fn count(&self) -> u64 {
        self.entries
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
