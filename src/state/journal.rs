//! The per-item apply journal: where each sealed item is in its life (`pending → in_flight →
//! done | already_absent | failed`, or `skipped`), why a failed one failed, and the writes that
//! move it on: the work an apply hands out, the intent committed before a request leaves
//! ([`State::mark_in_flight`]) and the outcomes committed after ([`State::record`]).

use std::fmt;
use std::str::FromStr;

use rusqlite::params;

use super::{State, now_unix};
use crate::model::Identifier;
use crate::plan::Item;

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

/// An item's journal columns beside its attempt count: where it is in its life and what its
/// last request was answered. [`StoredItem`] (as stored) and [`Outcome`] (as about to be
/// recorded) both carry one; each keeps its own `attempts`, since the two count differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journal {
    /// Journal state.
    pub state: ItemState,
    /// For failed items: transient or permanent.
    pub failure: Option<Failure>,
    /// The last error, for people.
    pub last_error: Option<String>,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// Segment's `Request-Id` of the last response.
    pub request_id: Option<String>,
}

impl Journal {
    /// An item in `state` with nothing recorded beside it: no failure, error, status or
    /// request id.
    pub fn new(state: ItemState) -> Self {
        Self {
            state,
            failure: None,
            last_error: None,
            last_status: None,
            request_id: None,
        }
    }
}

/// An item with its journal columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    /// The planned item.
    pub item: Item,
    /// Where it is and what its last request was answered.
    pub journal: Journal,
    /// Requests sent for it over all runs so far (the stored count; `apply --reapply` resets
    /// it to 0).
    pub attempts: u32,
}

/// The outcome of one request (or of a decision not to send), to be journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The item.
    pub seq: u64,
    /// Its new state and what its last request was answered. [`State::record`] keeps the
    /// stored error, status and request id where these are `None`.
    pub journal: Journal,
    /// Requests sent for it in this run only ([`State::record`] adds them to the stored count).
    pub attempts: u32,
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

/// The items an apply sends (`?2` is `--retry-failed`): pending and in-flight deletes, and
/// failed ones that were transient (or all failed ones with `--retry-failed`).
const WORK: &str = "action = 'delete' AND (state IN ('pending', 'in_flight')
    OR (state = 'failed' AND (failure = 'transient' OR ?2)))";

/// The query of [`State::work_batch`]. `NOT INDEXED` keeps it a walk along `seq` from the last
/// batch: left to itself, SQLite answers the `state IN (...)` terms from `items_by_state` and
/// sorts every remaining work item to hand out the first 256, a cost that grows with what is
/// left, so a run's batches together cost the square of its size (a 20,000-item apply spent a
/// third of its loop there). Walking the rowid reads each item once over the whole run.
fn work_batch_sql() -> String {
    format!(
        "SELECT seq, user_id, id_type, id_value, profile, state, attempts FROM items NOT INDEXED
         WHERE seq > ?1 AND {WORK} ORDER BY seq LIMIT ?3"
    )
}

/// The columns [`read_item`] reads, in its order.
pub(super) const ITEM_COLUMNS: &str = "seq, lookup, profile, user_id, id_type, id_value, action, note, origin, \
     state, attempts, failure, last_error, last_status, request_id";

/// Reads one `items` row selected with [`ITEM_COLUMNS`].
pub(super) fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredItem> {
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
        journal: Journal {
            state: state.parse().map_err(|e| bad(9, e))?,
            failure: match failure.as_deref() {
                None => None,
                Some("transient") => Some(Failure::Transient),
                Some("permanent") => Some(Failure::Permanent),
                Some(other) => return Err(bad(11, format!("unknown failure kind `{other}`"))),
            },
            last_error: row.get(12)?,
            last_status: row.get::<_, Option<i64>>(13)?.map(|s| s as u16),
            request_id: row.get(14)?,
        },
        attempts: row.get::<_, i64>(10)? as u32,
    })
}

impl State {
    /// The next items to send after `after_seq`, at most `limit`: pending and in-flight deletes,
    /// transiently failed ones, and permanently failed ones too with `retry_failed`.
    pub fn work_batch(
        &self,
        after_seq: u64,
        limit: usize,
        retry_failed: bool,
    ) -> anyhow::Result<Vec<Work>> {
        let mut stmt = self.conn.prepare_cached(&work_batch_sql())?;
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
                "UPDATE items SET state = 'in_flight', updated_at = ?2,
                    first_attempt_at = COALESCE(first_attempt_at, ?2)
                 WHERE seq = ?1 AND action = 'delete'",
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
                    request_id = COALESCE(?7, request_id), updated_at = ?8,
                    -- an item handed back unsent, never sent before, has no first attempt
                    first_attempt_at = CASE WHEN attempts + ?3 = 0 THEN NULL ELSE first_attempt_at END
                 WHERE seq = ?1 AND action = 'delete'",
            )?;
            let now = now_unix();
            for o in outcomes {
                let j = &o.journal;
                stmt.execute(params![
                    o.seq as i64,
                    j.state.as_str(),
                    o.attempts as i64,
                    j.failure.map(Failure::as_str),
                    j.last_error,
                    j.last_status.map(i64::from),
                    j.request_id,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{delete_item, sealed};

    /// The batch query walks `seq` (a rowid range), never an index plus a sort of every work
    /// item left.
    #[test]
    fn a_work_batch_walks_the_rowid_and_sorts_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let items: Vec<_> = (1..=50)
            .map(|i| delete_item(i, &format!("u{i}"), &format!("p{i}@import.invalid")))
            .collect();
        let state = sealed(dir.path(), &items);
        let mut stmt = state
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", work_batch_sql()))
            .expect("explain");
        let plan: Vec<String> = stmt
            .query_map(params![0, false, 256], |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            plan,
            ["SEARCH items USING INTEGER PRIMARY KEY (rowid>?)"],
            "{plan:?}"
        );
        let batch = state.work_batch(10, 5, false).expect("batch");
        let seqs: Vec<u64> = batch.iter().map(|w| w.seq).collect();
        assert_eq!(seqs, [11, 12, 13, 14, 15]);
    }
}
