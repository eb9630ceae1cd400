//! The rows of the per-item results file (`report --results`): each item with its journal
//! columns, the time of its first request and the time its journal row last changed.

use super::journal::{ITEM_COLUMNS, read_item};
use super::{State, StoredItem};

/// An item as the results file lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultItem {
    /// The item and its journal columns.
    pub stored: StoredItem,
    /// When its journal row last changed (unix seconds): the last request's intent or
    /// outcome; `None` for an item never sent.
    pub updated_at: Option<i64>,
    /// When its first request was committed to send (unix seconds; since the last
    /// `apply --reapply`); `None` for an item never sent.
    pub first_attempt_at: Option<i64>,
}

impl State {
    /// Calls `f` with every item in `seq` order, or only the `failed` ones when `only_failed`.
    pub fn for_each_result(
        &self,
        only_failed: bool,
        mut f: impl FnMut(ResultItem) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let filter = if only_failed { "state = 'failed'" } else { "1" };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ITEM_COLUMNS}, updated_at, first_attempt_at FROM items WHERE {filter} ORDER BY seq"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let stored = read_item(row)?;
            let updated_at = row.get::<_, Option<i64>>(15)?;
            let first_attempt_at = row.get::<_, Option<i64>>(16)?;
            f(ResultItem {
                stored,
                updated_at,
                first_attempt_at,
            })?;
        }
        Ok(())
    }
}
