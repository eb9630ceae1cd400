//! The resolver: reads every distinct lookup's profile through the paced client (plan's only
//! network work), following `external_ids` cursors, with the same in-flight window (slow
//! start, then latency-sized; see [`crate::window`]) and the same retry machine
//! ([`crate::retry::Attempts`]) as apply. A space-level fault or a spent retry budget ends it with an error: a plan
//! built on partial reads would be wrong.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;

use crate::model::Lookup;
use crate::plan::Resolution;
use crate::retry::{Attempts, Next, RetryBudget, Retryable};
use crate::segment::{Fault, MAX_IDS_PER_PROFILE, ProfileApi, ReadPage};
use crate::sync::lock;
use crate::window::Window;

/// The most pages idprune follows for one profile (25 ids a page): far beyond Segment's 1,000
/// identity mappings per profile, so only a looping cursor reaches it.
pub const MAX_PAGES: u32 = 200;

/// Reads all of `lookups`, as many at once as `window` allows (it starts closed: the first
/// read goes alone, and opens as reads succeed, up to the latency-sized window for the rate
/// of `api`'s pacer). `on_done` is called with the number resolved so far, for progress. `window` is the
/// caller's, so a plan read in chunks slow-starts once.
pub async fn resolve_all<A: ProfileApi>(
    api: Arc<A>,
    lookups: Vec<Lookup>,
    window: &mut Window,
    on_done: impl Fn(u64) + Send + Sync + 'static,
) -> anyhow::Result<BTreeMap<Lookup, Resolution>> {
    let budget = Arc::new(Mutex::new(RetryBudget::default()));
    let pacer = api.pacer().cloned();
    let paced = pacer.as_ref().is_some_and(|p| p.ceiling() > 0);
    let mut queue = lookups.into_iter();
    let mut reads = tokio::task::JoinSet::new();
    let mut out = BTreeMap::new();
    let mut done = 0u64;
    loop {
        let rate = pacer.as_ref().and_then(|p| p.current_rate());
        while reads.len() < window.allowed(rate) {
            let Some(lookup) = queue.next() else { break };
            let (api, budget) = (api.clone(), budget.clone());
            reads.spawn(async move {
                let read = resolve_one(&*api, &lookup, &budget, paced).await;
                (lookup, read)
            });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        let (lookup, read) = joined?;
        match read {
            Ok((resolution, latencies)) => {
                for l in latencies {
                    window.observe(l);
                }
                window.said_yes();
                out.insert(lookup, resolution);
                done += 1;
                on_done(done);
            }
            Err(e) => {
                reads.abort_all();
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Reads one profile's identifiers, all pages, at most [`MAX_PAGES`] pages and
/// [`MAX_IDS_PER_PROFILE`] identifiers.
/// Returns the resolution and the latency of each request sent.
async fn resolve_one<A: ProfileApi>(
    api: &A,
    lookup: &Lookup,
    budget: &Mutex<RetryBudget>,
    paced: bool,
) -> anyhow::Result<(Resolution, Vec<Duration>)> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut latencies = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = read_page(
            api,
            lookup,
            cursor.as_deref(),
            (budget, paced),
            &mut latencies,
        )
        .await?;
        match page {
            ReadPage::NotFound if ids.is_empty() => return Ok((Resolution::NotFound, latencies)),
            ReadPage::NotFound => {
                bail!("a profile disappeared between two pages of its identifiers; plan again")
            }
            ReadPage::Found {
                ids: page_ids,
                next,
            } => {
                // Checked before the page joins the rest, so a profile never holds more
                // than the cap (one page is already bounded by its body cap).
                if ids.len() + page_ids.len() > MAX_IDS_PER_PROFILE {
                    bail!(
                        "Segment answered with more than {MAX_IDS_PER_PROFILE} identifiers for one profile (it keeps at most 1,000); nothing was written, check `IDPRUNE_API_URL` points at Segment"
                    );
                }
                ids.extend(page_ids);
                match next {
                    Some(n) => cursor = Some(n),
                    None => return Ok((Resolution::Found(ids), latencies)),
                }
            }
        }
    }
    bail!("a profile has more than {MAX_PAGES} pages of identifiers; the cursor may loop")
}

/// Reads one page of a profile's identifiers at `cursor`, retrying what the retry machine
/// retries (drawing on `budget`; `paced` when a retry goes back through an adaptive pacer).
/// Each request's latency is added to `latencies`.
async fn read_page<A: ProfileApi>(
    api: &A,
    lookup: &Lookup,
    cursor: Option<&str>,
    (budget, paced): (&Mutex<RetryBudget>, bool),
    latencies: &mut Vec<Duration>,
) -> anyhow::Result<ReadPage> {
    let mut attempts = Attempts::default();
    loop {
        let reply = api.external_ids_page(lookup, cursor).await;
        latencies.push(reply.elapsed);
        let fault = match reply.result {
            Ok(page) => {
                lock(budget).refund();
                return Ok(page);
            }
            Err(fault) => fault,
        };
        let request_id = reply
            .request_id
            .map(|r| format!(" (Request-Id {r})"))
            .unwrap_or_default();
        match fault {
            Fault::Stopped { .. } => bail!("stopped by a signal; nothing was written"),
            Fault::Space { .. } => bail!(
                "Segment refused the read: {fault}{request_id}; check the token and the space id"
            ),
            Fault::Permanent { .. } => {
                bail!("Segment refused the read of a profile: {fault}{request_id}")
            }
            Fault::Retryable {
                throttled,
                retry_after,
                ref reason,
            } => {
                let fault = Retryable {
                    throttled,
                    retry_after,
                    paced,
                };
                let next = attempts.on_fault(fault, &mut lock(budget), rand::random());
                match next {
                    Next::Retry(delay) => {
                        crate::ui::say_waiting(delay);
                        tokio::time::sleep(delay).await
                    }
                    Next::BudgetSpent => bail!(
                        "transient faults are sustained (last: {reason}); nothing was written, try again later"
                    ),
                    Next::GiveUp => bail!(
                        "a profile read kept failing ({reason}){request_id}; nothing was written, try again later"
                    ),
                }
            }
        }
    }
}
