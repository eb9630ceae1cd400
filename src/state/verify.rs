//! The verification history in the state file: one `verifications` row per `verify` run and,
//! per item, what the latest verification saw and when it was last seen gone (tables created
//! by schema version 2). Only seqs, statuses and times are stored, never identifier values,
//! so `purge` has nothing to fingerprint here.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context as _;
use rusqlite::{OptionalExtension as _, params};

use super::{State, now_unix};

/// What one verification saw of one removed identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    /// The profile no longer carries it.
    Gone,
    /// The profile carries it and no verification has seen it gone (propagation, or the delete
    /// did not take).
    StillPresent,
    /// The profile carries it again after a verification saw it gone: something re-added it
    /// (live events, a replay, a rebuild).
    Reintroduced,
    /// The profile itself was not found (deleted or merged away).
    NotFound,
}

impl Seen {
    /// The name stored in the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::StillPresent => "still_present",
            Self::Reintroduced => "reintroduced",
            Self::NotFound => "not_found",
        }
    }

    fn parse(text: &str) -> Option<Seen> {
        [
            Self::Gone,
            Self::StillPresent,
            Self::Reintroduced,
            Self::NotFound,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// True for the two ways of being present.
    pub fn is_present(self) -> bool {
        matches!(self, Self::StillPresent | Self::Reintroduced)
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gone => "gone",
            Self::StillPresent => "still present",
            Self::Reintroduced => "re-introduced",
            Self::NotFound => "profile not found",
        })
    }
}

/// What earlier verifications recorded of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prior {
    /// The latest status.
    pub seen: Seen,
    /// When a verification last saw it gone (unix seconds), if one ever did.
    pub last_gone_at: Option<i64>,
    /// Which verification that was.
    pub last_gone_in: Option<i64>,
}

/// One recorded verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Its number (1, 2, ...).
    pub id: i64,
    /// Start and end (unix seconds).
    pub started_at: i64,
    /// When it ended.
    pub finished_at: i64,
    /// How many rounds of reads it took.
    pub polls: u32,
    /// Identifiers checked.
    pub checked: u64,
    /// Of those: gone.
    pub gone: u64,
    /// Of those: still present.
    pub still_present: u64,
    /// Of those: re-introduced.
    pub reintroduced: u64,
    /// Of those: on profiles not found.
    pub not_found: u64,
}

impl Verification {
    /// `gone` when nothing is present, else `present`.
    pub fn outcome(&self) -> &'static str {
        if self.still_present + self.reintroduced == 0 {
            "gone"
        } else {
            "present"
        }
    }
}

impl State {
    /// Every item's record from earlier verifications, by seq.
    pub fn verify_priors(&self) -> anyhow::Result<BTreeMap<u64, Prior>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, status, last_gone_at, last_gone_in FROM verify_items")?;
        let mut rows = stmt.query([])?;
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let status: String = row.get(1)?;
            let seen = Seen::parse(&status).with_context(|| {
                format!(
                    "state file `{}`: unknown verification status `{status}`; it is damaged",
                    self.path.display()
                )
            })?;
            out.insert(
                row.get::<_, i64>(0)? as u64,
                Prior {
                    seen,
                    last_gone_at: row.get(2)?,
                    last_gone_in: row.get(3)?,
                },
            );
        }
        Ok(out)
    }

    /// Records one finished verification and what it saw of each item, in one transaction.
    /// Returns the verification's number.
    pub fn record_verification(
        &mut self,
        started_at: i64,
        polls: u32,
        seen: &[(u64, Seen)],
    ) -> anyhow::Result<i64> {
        let count = |s: Seen| seen.iter().filter(|(_, x)| *x == s).count() as i64;
        let now = now_unix();
        let tx = self.conn.transaction()?;
        let outcome = if count(Seen::StillPresent) + count(Seen::Reintroduced) == 0 {
            "gone"
        } else {
            "present"
        };
        tx.execute(
            "INSERT INTO verifications (started_at, finished_at, polls, checked, gone, still_present, reintroduced, not_found, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                started_at,
                now,
                polls,
                seen.len() as i64,
                count(Seen::Gone),
                count(Seen::StillPresent),
                count(Seen::Reintroduced),
                count(Seen::NotFound),
                outcome
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT INTO verify_items (seq, verification, status, checked_at, last_gone_at, last_gone_in)
                 VALUES (?1, ?2, ?3, ?4, CASE WHEN ?3 = 'gone' THEN ?4 END, CASE WHEN ?3 = 'gone' THEN ?2 END)
                 ON CONFLICT (seq) DO UPDATE SET
                   verification = excluded.verification,
                   status = excluded.status,
                   checked_at = excluded.checked_at,
                   last_gone_at = coalesce(excluded.last_gone_at, verify_items.last_gone_at),
                   last_gone_in = coalesce(excluded.last_gone_in, verify_items.last_gone_in)",
            )?;
            for (seq, s) in seen {
                stmt.execute(params![*seq as i64, id, s.as_str(), now])?;
            }
        }
        tx.commit()
            .with_context(|| format!("recording a verification in `{}`", self.path.display()))?;
        Ok(id)
    }

    /// Every recorded verification, oldest first.
    pub fn verifications(&self) -> anyhow::Result<Vec<Verification>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, finished_at, polls, checked, gone, still_present, reintroduced, not_found
             FROM verifications ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Verification {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                polls: r.get::<_, i64>(3)? as u32,
                checked: r.get::<_, i64>(4)? as u64,
                gone: r.get::<_, i64>(5)? as u64,
                still_present: r.get::<_, i64>(6)? as u64,
                reintroduced: r.get::<_, i64>(7)? as u64,
                not_found: r.get::<_, i64>(8)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest verification, if any.
    pub fn last_verification(&self) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(id) FROM verifications", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{delete_item, sealed};

    #[test]
    fn history_keeps_the_last_time_seen_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = sealed(
            dir.path(),
            &[
                delete_item(1, "u1", "a@x.com"),
                delete_item(2, "u2", "b@x.com"),
            ],
        );
        assert!(state.verify_priors().expect("priors").is_empty());
        let v1 = state
            .record_verification(100, 1, &[(1, Seen::Gone), (2, Seen::StillPresent)])
            .expect("record");
        let priors = state.verify_priors().expect("priors");
        assert_eq!(priors[&1].seen, Seen::Gone);
        assert_eq!(priors[&1].last_gone_in, Some(v1));
        assert_eq!(priors[&2].last_gone_at, None);
        let v2 = state
            .record_verification(200, 3, &[(1, Seen::Reintroduced), (2, Seen::Gone)])
            .expect("record");
        let priors = state.verify_priors().expect("priors");
        assert_eq!(priors[&1].seen, Seen::Reintroduced);
        assert_eq!(
            priors[&1].last_gone_in,
            Some(v1),
            "kept from the earlier one"
        );
        assert_eq!(priors[&2].last_gone_in, Some(v2));
        let all = state.verifications().expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].gone, all[0].still_present), (1, 1));
        assert_eq!(all[1].reintroduced, 1);
        assert_eq!(all[1].outcome(), "present");
        assert_eq!(state.last_verification().expect("last"), Some(v2));
    }
}
