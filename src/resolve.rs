//! The resolver: reads every distinct lookup's profile through the paced client (plan's only
//! network work), following `external_ids` cursors, retrying transient faults with the same
//! policy as apply. A space-level fault or a spent retry budget ends it with an error: a plan
//! built on partial reads would be wrong.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::bail;

use crate::model::Lookup;
use crate::plan::Resolution;
use crate::retry::{self, MAX_ATTEMPTS, MAX_THROTTLED_ATTEMPTS, RetryBudget};
use crate::segment::{Fault, ProfileApi, ReadPage};

/// The most pages idprune follows for one profile (25 ids a page): far beyond Segment's 1,000
/// identity mappings per profile, so only a looping cursor reaches it.
pub const MAX_PAGES: u32 = 200;

/// Reads all of `lookups` with `concurrency` requests in flight. `on_done` is called with the
/// number resolved so far, for progress.
pub async fn resolve_all<A: ProfileApi>(
    api: Arc<A>,
    lookups: Vec<Lookup>,
    concurrency: usize,
    on_done: impl Fn(u64) + Send + Sync + 'static,
) -> anyhow::Result<BTreeMap<Lookup, Resolution>> {
    let queue = Arc::new(Mutex::new(lookups.into_iter()));
    let budget = Arc::new(Mutex::new(RetryBudget::default()));
    let done = Arc::new(AtomicU64::new(0));
    let on_done = Arc::new(on_done);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (api, queue, budget, done, on_done) = (
            api.clone(),
            queue.clone(),
            budget.clone(),
            done.clone(),
            on_done.clone(),
        );
        workers.spawn(async move {
            let mut found = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .next();
                let Some(lookup) = next else { break };
                let resolution = resolve_one(&*api, &lookup, &budget).await?;
                found.push((lookup, resolution));
                on_done(done.fetch_add(1, Ordering::Relaxed) + 1);
            }
            anyhow::Ok(found)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = workers.join_next().await {
        match joined? {
            Ok(found) => out.extend(found),
            Err(e) => {
                workers.abort_all();
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Reads one profile's identifiers, all pages.
async fn resolve_one<A: ProfileApi>(
    api: &A,
    lookup: &Lookup,
    budget: &Mutex<RetryBudget>,
) -> anyhow::Result<Resolution> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (mut transient, mut throttled) = (0u32, 0u32);
        let page = loop {
            let reply = api.external_ids_page(lookup, cursor.as_deref()).await;
            let fault = match reply.result {
                Ok(page) => {
                    budget
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .refund();
                    break page;
                }
                Err(fault) => fault,
            };
            let request_id = reply
                .request_id
                .map(|r| format!(" (Request-Id {r})"))
                .unwrap_or_default();
            match fault {
                Fault::Space { .. } => bail!(
                    "Segment refused the read: {fault}{request_id}; check the token and the space id"
                ),
                Fault::Permanent { .. } => {
                    bail!("Segment refused the read of a profile: {fault}{request_id}")
                }
                Fault::Retryable {
                    throttled: t,
                    retry_after,
                    ref reason,
                } => {
                    let attempt = if t {
                        throttled += 1;
                        throttled
                    } else {
                        transient += 1;
                        let paid = budget
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .withdraw();
                        if !paid {
                            bail!(
                                "transient faults are sustained (last: {reason}); nothing was written, try again later"
                            );
                        }
                        transient
                    };
                    if transient >= MAX_ATTEMPTS || throttled >= MAX_THROTTLED_ATTEMPTS {
                        bail!(
                            "a profile read kept failing ({reason}){request_id}; nothing was written, try again later"
                        );
                    }
                    tokio::time::sleep(retry::backoff(attempt, retry_after, rand::random::<f64>()))
                        .await;
                }
            }
        };
        match page {
            ReadPage::NotFound if ids.is_empty() => return Ok(Resolution::NotFound),
            ReadPage::NotFound => {
                bail!("a profile disappeared between two pages of its identifiers; plan again")
            }
            ReadPage::Found {
                ids: page_ids,
                next,
            } => {
                ids.extend(page_ids);
                match next {
                    Some(n) => cursor = Some(n),
                    None => return Ok(Resolution::Found(ids)),
                }
            }
        }
    }
    bail!("a profile has more than {MAX_PAGES} pages of identifiers; the cursor may loop")
}
