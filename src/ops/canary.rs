//! `apply --canary N`: before the fan-out, the first N deletions are sent one at a time, each
//! journaled like the executor does (`in_flight` committed before the request, the outcome
//! right after), and each profile is re-read (polling with back-off while Segment
//! propagates, up to `--canary-wait`) until its target is gone and it carries exactly what
//! the plan expects: its sealed identifiers minus its settled deletions. Anything else — a
//! `200` that removed nothing, an identifier that vanished or appeared beside it, a failed
//! item — stops the run before the fan-out, saying what was seen (exit 1). It guards a first
//! run against a service that behaves differently from its documentation.
//!
//! Sequential by design: each item goes through the executor's one-item path
//! ([`crate::apply::send_one`]), so it is retried and journaled exactly as a fan-out would
//! (200 `done`; 404 `eid_not_found` `already_absent`, or `done` after an earlier ambiguous
//! attempt; 404 `not_found` and 400 `failed` permanently; space-level faults stop; 429, 5xx
//! and timeouts are retried with the shared back-off policy).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::poll::Poll;

use crate::apply::Stop;
use crate::model::{Identifier, Lookup, USER_ID};
use crate::plan::Resolution;
use crate::segment::Client;
use crate::state::{ItemState, State, Work};

/// The first pause between two re-reads of a canary profile; it doubles up to
/// [`MAX_REREAD_DELAY`].
const FIRST_REREAD_DELAY: Duration = Duration::from_millis(250);
/// The longest pause between two re-reads.
const MAX_REREAD_DELAY: Duration = Duration::from_secs(15);

/// What the canary did.
#[derive(Debug, Default)]
pub struct CanaryReport {
    /// Items sent and verified.
    pub verified: u64,
    /// Requests sent (deletes and reads).
    pub requests: u64,
    /// Of the items: deleted.
    pub done: u64,
    /// Of the items: already absent.
    pub already_absent: u64,
    /// Why it stopped the run, when it did.
    pub stop: Option<String>,
}

/// Sends the first `n` deletions one at a time and checks each profile afterwards.
pub async fn run(
    state: &mut State,
    api: &Client,
    n: u64,
    retry_failed: bool,
    wait: Duration,
) -> anyhow::Result<CanaryReport> {
    let mut report = CanaryReport::default();
    let mut after = 0u64;
    while report.verified < n {
        let Some(work) = state.work_batch(after, 1, retry_failed)?.into_iter().next() else {
            break;
        };
        after = work.seq;
        state.mark_in_flight(&[work.seq])?;
        let (outcome, stop) = crate::apply::send_one(api, &work).await;
        report.requests += u64::from(outcome.attempts);
        state.record(std::slice::from_ref(&outcome))?;
        if let Some(stop) = stop {
            report.stop = Some(match stop {
                Stop::Space(fault) => crate::text::space_refused(fault, ""),
                // `send_one` stops for the space only; named anyway rather than dropped.
                Stop::BudgetSpent(why) => format!("canary item #{}: {why}", work.seq),
                Stop::Interrupted => format!("canary item #{}: interrupted", work.seq),
            });
            return Ok(report);
        }
        match outcome.journal.state {
            ItemState::Done => report.done += 1,
            ItemState::AlreadyAbsent => report.already_absent += 1,
            _ => {
                report.stop = Some(format!(
                    "canary item #{} ended {}: {}",
                    work.seq,
                    outcome.journal.state,
                    outcome
                        .journal
                        .last_error
                        .as_deref()
                        .unwrap_or("no error recorded")
                ));
                return Ok(report);
            }
        }
        if let Some(problem) = check(state, api, &work, wait, &mut report.requests).await? {
            report.stop = Some(problem);
            return Ok(report);
        }
        report.verified += 1;
    }
    Ok(report)
}

/// Re-reads the item's profile until it looks as the plan expects or `wait` passes; the
/// problem seen last, if it never did.
async fn check(
    state: &State,
    api: &Client,
    work: &Work,
    wait: Duration,
    requests: &mut u64,
) -> anyhow::Result<Option<String>> {
    let Some(expected) = state.expected_after(&work.profile)? else {
        return Ok(Some(format!(
            "canary item #{}: the plan holds no before-state of its profile to compare with; plan again",
            work.seq
        )));
    };
    let lookup = Lookup::External(Identifier::new(USER_ID, work.user_id.clone()));
    let mut poll = Poll::new(wait, FIRST_REREAD_DELAY, MAX_REREAD_DELAY);
    loop {
        let resolved = crate::resolve::resolve_all(
            Arc::new(api.clone()),
            vec![lookup.clone()],
            &mut crate::window::Window::new(1),
            |_| {},
        )
        .await?;
        *requests += 1;
        let problem = match resolved.get(&lookup) {
            Some(Resolution::Found(ids)) => {
                let now: BTreeSet<Identifier> = ids.iter().cloned().collect();
                describe(work, &expected, &now)
            }
            _ => Some(format!(
                "canary item #{}: its profile (user_id) no longer answers a read after the delete",
                work.seq
            )),
        };
        let Some(problem) = problem else {
            return Ok(None);
        };
        let Some(pause) = poll.next_pause() else {
            return Ok(Some(problem));
        };
        tokio::time::sleep(pause).await;
    }
}

/// What differs between the profile as read and as expected, by type only (no values: the
/// message may land in a CI log).
fn describe(
    work: &Work,
    expected: &BTreeSet<Identifier>,
    now: &BTreeSet<Identifier>,
) -> Option<String> {
    if now == expected {
        return None;
    }
    if now.contains(&work.identifier) {
        return Some(format!(
            "canary item #{}: the API confirmed the delete, but the profile still carries its {} identifier",
            work.seq, work.identifier.kind
        ));
    }
    let kinds = |set: Vec<&Identifier>| {
        set.iter()
            .map(|i| i.kind.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added: Vec<&Identifier> = now.difference(expected).collect();
    let lost: Vec<&Identifier> = expected.difference(now).collect();
    Some(format!(
        "canary item #{}: the profile changed beyond the deletion: {} identifier(s) appeared ({}), {} other identifier(s) vanished ({})",
        work.seq,
        added.len(),
        kinds(added.clone()),
        lost.len(),
        kinds(lost.clone())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_tells_a_kept_target_from_other_changes() {
        let work = Work {
            seq: 3,
            user_id: "u1".into(),
            identifier: Identifier::new("email", "bad@x.com"),
            profile: "k".into(),
            may_have_landed: false,
        };
        let uid = Identifier::new("user_id", "u1");
        let expected: BTreeSet<_> = [uid.clone()].into();
        assert_eq!(describe(&work, &expected, &expected), None);
        let kept: BTreeSet<_> = [uid.clone(), work.identifier.clone()].into();
        assert!(
            describe(&work, &expected, &kept)
                .expect("a problem")
                .contains("still carries its email")
        );
        let other: BTreeSet<_> = [uid, Identifier::new("phone", "1")].into();
        let text = describe(&work, &expected, &other).expect("a problem");
        assert!(text.contains("1 identifier(s) appeared (phone)"), "{text}");
        assert!(!text.contains("bad@x.com"), "no values: {text}");
    }
}
