//! The append-only `runs` table: one row per apply run, opened when a run starts and closed
//! with how it ended, what it measured and the plan's counts at that moment; runs left open by
//! a process that died are closed as `died` by the next apply.

use rusqlite::{OptionalExtension as _, params};

use super::journal::ItemState;
use super::{State, check, now_unix};
use crate::ci::RunContext;

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
    /// The CI job (or `IDPRUNE_RUN_CONTEXT`) it ran in, when there was one.
    pub context: Option<RunContext>,
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

impl State {
    /// True once any apply has run against this plan.
    pub fn has_journal(&self) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT count(*) > 0 FROM runs", [], |r| r.get(0))?)
    }

    /// Records the start of an apply run, with the CI context it runs in; returns its id.
    pub fn start_run(
        &self,
        user: &str,
        host: &str,
        digest: &str,
        reason: &str,
        context: Option<&RunContext>,
    ) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, user, host, digest, reason, context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                now_unix(),
                user,
                host,
                digest,
                reason,
                context.map(RunContext::to_stored).unwrap_or_default()
            ],
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

    /// Records a soft policy rule that `run` went past (`apply --override RULE --why TEXT`).
    pub fn record_override(
        &self,
        run: i64,
        rule: &str,
        detail: &str,
        why: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO policy_overrides (run, rule, detail, why, user, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, rule, detail, why, user, now_unix()],
        )?;
        Ok(())
    }

    /// Every recorded policy override, by run, then rule.
    pub fn overrides(&self) -> anyhow::Result<Vec<crate::policy::Override>> {
        let mut stmt = self.conn.prepare(
            "SELECT run, rule, detail, why, user, at FROM policy_overrides ORDER BY run, rule",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(crate::policy::Override {
                run: r.get(0)?,
                rule: r.get(1)?,
                detail: r.get(2)?,
                why: r.get(3)?,
                user: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
                    done, already_absent, failed, context
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
                context: RunContext::from_stored(&r.get::<_, String>(14)?),
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
}
