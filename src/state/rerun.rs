//! Running a journal's deletions again: `apply --reapply` resets the items a finished run
//! settled (`done`, `already_absent`) back to `pending`, recording what each had reached in
//! the append-only `item_history` table first; and `apply --canary` asks what a profile
//! should look like once its settled deletions are applied (the sealed before-state minus
//! them), to compare with a fresh read.

use std::collections::BTreeSet;

use anyhow::Context as _;
use rusqlite::{OptionalExtension as _, params};

use super::State;
use crate::model::Identifier;

/// The delete items a re-run resets.
const SETTLED: &str = "action = 'delete' AND state IN ('done', 'already_absent')";

impl State {
    /// `delete` items not yet settled for good: `pending`, `in_flight`, or transiently
    /// failed (the ones a plain `apply` still sends).
    pub fn unfinished(&self) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM items WHERE action = 'delete'
             AND (state IN ('pending', 'in_flight') OR (state = 'failed' AND failure = 'transient'))",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Resets every settled `delete` item to `pending` (attempts cleared, so a `404
    /// eid_not_found` reads as `already_absent`), after copying its state into
    /// `item_history` under `run`, in one transaction. Returns how many were reset.
    pub fn reset_for_reapply(&mut self, run: i64) -> anyhow::Result<u64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!(
                "INSERT INTO item_history (run, seq, state, attempts, last_status, request_id, updated_at)
                 SELECT ?1, seq, state, attempts, last_status, request_id, updated_at FROM items WHERE {SETTLED}"
            ),
            params![run],
        )?;
        let n = tx.execute(
            &format!(
                "UPDATE items SET state = 'pending', attempts = 0, failure = NULL, last_error = NULL,
                 last_status = NULL, request_id = NULL, updated_at = ?1, first_attempt_at = NULL
                 WHERE {SETTLED}"
            ),
            params![super::now_unix()],
        )?;
        tx.commit()
            .with_context(|| format!("resetting the journal of `{}`", self.path.display()))?;
        Ok(n as u64)
    }

    /// How many item states earlier re-runs recorded.
    pub fn history_len(&self) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM item_history", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// The identifiers the profile `key` should carry now: its sealed before-state minus the
    /// identifiers of its `delete` items that are `done` or `already_absent`. `None` when the
    /// plan holds no before-state for it.
    pub fn expected_after(&self, key: &str) -> anyhow::Result<Option<BTreeSet<Identifier>>> {
        let Some(before) = self
            .conn
            .query_row("SELECT before FROM profiles WHERE key = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
        else {
            return Ok(None);
        };
        let mut expected: BTreeSet<Identifier> = self.parse_before(&before)?.into_iter().collect();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id_type, id_value FROM items WHERE profile = ?1 AND {SETTLED}"
        ))?;
        let gone = stmt.query_map([key], |r| {
            Ok(Identifier::new(
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
            ))
        })?;
        for id in gone {
            expected.remove(&id?);
        }
        Ok(Some(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{delete_item, sealed};
    use crate::state::{ItemState, Journal, Outcome};

    #[test]
    fn reset_keeps_history_and_expected_after_follows_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = sealed(
            dir.path(),
            &[
                delete_item(1, "u1", "a@x.com"),
                delete_item(2, "u2", "b@x.com"),
            ],
        );
        let key = "email:a@x.com";
        let before = state.expected_after(key).expect("read").expect("a profile");
        assert!(before.contains(&Identifier::new("email", "a@x.com")));
        assert_eq!(state.unfinished().expect("count"), 2);
        state.mark_in_flight(&[1, 2]).expect("in flight");
        state
            .record(&[
                Outcome {
                    seq: 1,
                    journal: Journal {
                        last_status: Some(200),
                        request_id: Some("r1".into()),
                        ..Journal::new(ItemState::Done)
                    },
                    attempts: 1,
                },
                Outcome {
                    seq: 2,
                    journal: Journal {
                        last_status: Some(404),
                        ..Journal::new(ItemState::AlreadyAbsent)
                    },
                    attempts: 1,
                },
            ])
            .expect("record");
        assert_eq!(state.unfinished().expect("count"), 0);
        let after = state.expected_after(key).expect("read").expect("a profile");
        assert_eq!(
            after.into_iter().collect::<Vec<_>>(),
            [Identifier::new("user_id", "u1")]
        );
        assert_eq!(state.reset_for_reapply(7).expect("reset"), 2);
        assert_eq!(state.history_len().expect("history"), 2);
        assert_eq!(state.unfinished().expect("count"), 2);
        assert_eq!(state.count_work(false).expect("work"), 2);
    }
}
