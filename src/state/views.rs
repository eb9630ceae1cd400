//! The read-only views of a state file's items: streaming them in `seq` order (all, or a
//! selection by [`ItemFilter`]), counts by action and state, and the per-profile diffs drawn
//! from each profile's sealed before-state.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rusqlite::OptionalExtension as _;

use super::State;
use super::journal::{ITEM_COLUMNS, ItemState, StoredItem, read_item};
use crate::exit::Refused;
use crate::model::Identifier;
use crate::plan::{Action, Profile};

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
    /// `absent` items.
    Absent,
    /// `blocked` items.
    Blocked,
    /// `unresolved` items.
    Unresolved,
    /// What a reviewer must see: items not sent, and `delete` items with a note other than
    /// the unverified mark of `plan --refresh=false` (which every such delete carries).
    Exceptions,
}

impl ItemFilter {
    fn sql(self) -> &'static str {
        match self {
            Self::All => "1",
            Self::NotSent => "action != 'delete'",
            Self::Noted => "action = 'delete' AND note IS NOT NULL",
            Self::NotSentOrNoted => "(action != 'delete' OR note IS NOT NULL)",
            Self::Absent => "action = 'absent'",
            Self::Blocked => "action = 'blocked'",
            Self::Unresolved => "action = 'unresolved'",
            Self::Exceptions => {
                "(action != 'delete' OR (note IS NOT NULL AND note NOT LIKE 'unverified:%'))"
            }
        }
    }
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

impl State {
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

    /// The deletions planned without a read of their profile (`--refresh=false`): the items
    /// noted [`crate::plan::UNVERIFIED_NOTE`].
    pub fn count_unverified(&self) -> anyhow::Result<u64> {
        Ok(self
            .count_by_action_and_note(ItemFilter::Noted)?
            .iter()
            .filter(|(_, note, _)| note.as_deref() == Some(crate::plan::UNVERIFIED_NOTE))
            .map(|(_, _, n)| *n)
            .sum())
    }

    /// The items `filter` selects, grouped by action and note: `(action, note, count)`,
    /// by action, then the largest groups first.
    pub fn count_by_action_and_note(
        &self,
        filter: ItemFilter,
    ) -> anyhow::Result<Vec<(Action, Option<String>, u64)>> {
        let sql = format!(
            "SELECT action, note, count(*) AS n FROM items WHERE {} GROUP BY action, note",
            filter.sql()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let action: String = r.get(0)?;
            let action = action.parse::<Action>().map_err(anyhow::Error::msg)?;
            out.push((
                action,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)? as u64,
            ));
        }
        out.sort_by(|a, b| {
            let rank = |x: Action| Action::ALL.iter().position(|y| *y == x);
            rank(a.0)
                .cmp(&rank(b.0))
                .then(b.2.cmp(&a.2))
                .then(a.1.cmp(&b.1))
        });
        Ok(out)
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
        Refused(format!(
            "state file `{}`: the before-state of profile `{}` does not hold every identifier sealed for deletion from it, so its diff would hide one; the file may have been tampered with: plan again from the manifest",
            self.path.display(),
            crate::text::clean(profile)
        ))
        .into()
    }

    pub(super) fn parse_before(&self, json: &str) -> anyhow::Result<Vec<Identifier>> {
        let pairs: Vec<(String, String)> = serde_json::from_str(json).with_context(|| {
            format!("state file `{}`: damaged profile row", self.path.display())
        })?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| Identifier::new(k, v))
            .collect())
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
}

/// One side of an item that differs between two plans: its type, value and action (`None`:
/// the other plan has no item at that seq).
pub type ItemSide = Option<(String, String, String)>;

impl State {
    /// Counts of items by identifier type, then by action.
    pub fn counts_by_type_and_action(
        &self,
    ) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u64>>> {
        let mut by_type: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id_type, action, count(*) FROM items GROUP BY id_type, action")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            by_type
                .entry(row.get(0)?)
                .or_default()
                .insert(row.get(1)?, row.get::<_, i64>(2)? as u64);
        }
        Ok(by_type)
    }

    /// Calls `visit` with every item's origin (`file:line:col`) and whether it is a `delete`.
    pub fn for_each_origin(&self, mut visit: impl FnMut(&str, bool)) -> anyhow::Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT origin, action = 'delete' FROM items")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let origin: String = row.get(0)?;
            visit(&origin, row.get(1)?);
        }
        Ok(())
    }

    /// Calls `visit` with every `delete` item's profile key and identifier, by profile, then
    /// seq.
    pub fn for_each_delete_by_profile(
        &self,
        mut visit: impl FnMut(String, Identifier),
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT profile, id_type, id_value FROM items
             WHERE action = 'delete' AND profile IS NOT NULL ORDER BY profile, seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            visit(
                row.get(0)?,
                Identifier::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
            );
        }
        Ok(())
    }

    /// Distinct lookups that found no profile, distinct lookups in all, and of the unresolved
    /// those whose lookup type has upper-case letters.
    pub fn lookup_counts(&self) -> anyhow::Result<(u64, u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT count(DISTINCT CASE WHEN action = 'unresolved' THEN lookup END),
                    count(DISTINCT lookup),
                    count(DISTINCT CASE WHEN action = 'unresolved'
                        AND instr(lookup, ':') > 0
                        AND substr(lookup, 1, instr(lookup, ':') - 1)
                            <> lower(substr(lookup, 1, instr(lookup, ':') - 1))
                        THEN lookup END)
             FROM items",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            },
        )?)
    }

    /// The value of `key` in the `meta` table, if there is one.
    pub fn optional_meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// The policy sealed in the plan (meta `policy`), if it was judged by one.
    pub fn sealed_policy(&self) -> anyhow::Result<Option<crate::policy::Sealed>> {
        self.optional_meta(crate::policy::META_KEY)?
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| {
                    anyhow::anyhow!(
                        "the policy sealed in state file `{}` is unreadable ({e}); plan again",
                        self.path.display()
                    )
                })
            })
            .transpose()
    }

    /// Calls `visit` with every seq whose item differs between this plan and the one in
    /// `other` (type, value, action or user_id), in seq order, with both sides; the count.
    pub fn for_each_changed_item(
        &self,
        other: &State,
        mut visit: impl FnMut(i64, ItemSide, ItemSide),
    ) -> anyhow::Result<u64> {
        let other_path = other
            .path()
            .to_str()
            .with_context(|| format!("path `{}` is not valid UTF-8", other.path().display()))?;
        self.conn
            .execute("ATTACH DATABASE ?1 AS other", [other_path])?;
        let result = (|| -> anyhow::Result<u64> {
            const CHANGED: &str = "
                SELECT a.seq, a.id_type, a.id_value, a.action, f.id_type, f.id_value, f.action
                  FROM main.items a LEFT JOIN other.items f ON f.seq = a.seq
                 WHERE f.seq IS NULL OR a.id_type != f.id_type OR a.id_value != f.id_value
                    OR a.action != f.action OR a.user_id IS NOT f.user_id
                UNION ALL
                SELECT f.seq, NULL, NULL, NULL, f.id_type, f.id_value, f.action
                  FROM other.items f WHERE f.seq NOT IN (SELECT seq FROM main.items)
                ORDER BY 1";
            let side = |r: &rusqlite::Row<'_>, at: usize| -> rusqlite::Result<ItemSide> {
                Ok(match (r.get(at)?, r.get(at + 1)?, r.get(at + 2)?) {
                    (Some(k), Some(v), Some(a)) => Some((k, v, a)),
                    _ => None,
                })
            };
            let mut stmt = self.conn.prepare(CHANGED)?;
            let mut rows = stmt.query([])?;
            let mut total = 0u64;
            while let Some(r) = rows.next()? {
                total += 1;
                visit(r.get(0)?, side(r, 1)?, side(r, 4)?);
            }
            Ok(total)
        })();
        self.conn.execute("DETACH DATABASE other", [])?;
        result
    }
}
