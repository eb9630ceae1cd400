//! The read-only views of a state file's items: streaming them in `seq` order (all, or a
//! selection by [`ItemFilter`]), counts by action and state, and the per-profile diffs drawn
//! from each profile's sealed before-state.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rusqlite::OptionalExtension as _;

use super::journal::{ITEM_COLUMNS, ItemState, StoredItem, read_item};
use super::{Refusal, State};
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
