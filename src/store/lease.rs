//! The lease lock beside a state object: who may write the remote state, across machines.
//!
//! A lease is a chain of small JSON objects, `KEY.lock/GENERATION` (20 zero-padded digits), each
//! written only if absent (`PutMode::Create`: `If-None-Match: *` on S3, a hard link on local
//! files). The newest generation says who holds the state, since when and until when. Taking a
//! free or expired lease, renewing one and releasing one all write the next generation, so two
//! writers racing for the same step meet on one conditional create and exactly one wins: the
//! loser of a renewal learns it has lost the lease (it was taken over after expiring, or broken
//! by `unlock`) and must stop writing. Needing only conditional create (never `If-Match`) keeps
//! the protocol the same on every backend `object_store` offers, local files included.
//!
//! Expiry is compared with the reader's clock, so machines sharing a store need clocks within
//! a small fraction of the lease (NTP gives milliseconds; leases are minutes). Generations older
//! than the previous one are deleted after each step, best effort: the newest is never deleted.
//!
//! Lock objects name no identifier: the lock id, host, pid, start, expiry, the CI run URL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::exit::Refused;
use crate::state::now_unix;

/// How long a lease lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Digits of a generation in its object name (lexical order is numeric order).
const GENERATION_DIGITS: usize = 20;

/// One generation of the lease chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRecord {
    /// Random id of one holding, kept across its renewals; `unlock` names it.
    pub lock_id: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// What the holder is doing (`apply`, `plan`).
    pub doing: String,
    /// When the holding began (Unix seconds).
    pub started_at: i64,
    /// When the lease ends unless renewed (Unix seconds).
    pub expires_at: i64,
    /// The CI run holding it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    /// `false` once released or broken: the next taker need not wait for expiry.
    pub held: bool,
}

impl std::fmt::Display for LeaseRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` pid {} on {} since {}, lease until {} (lock id {})",
            crate::text::clean(&self.doing),
            self.pid,
            crate::text::clean(&self.host),
            crate::text::timestamp(self.started_at),
            crate::text::timestamp(self.expires_at),
            crate::text::clean(&self.lock_id)
        )?;
        if let Some(url) = &self.run_url {
            write!(f, ", run {}", crate::text::clean(url))?;
        }
        Ok(())
    }
}

impl LeaseRecord {
    /// True when the lease binds others at `now`.
    pub fn binds(&self, now: i64) -> bool {
        self.held && now < self.expires_at
    }
}

/// The lock chain of one state object.
#[derive(Clone)]
pub struct LockChain {
    store: Arc<dyn ObjectStore>,
    /// `KEY.lock`.
    dir: ObjectPath,
    /// The state's URL, for messages.
    url: String,
}

/// A lease this process holds. Dropping it without [`Lease::release`] leaves it to expire.
pub struct Lease {
    chain: LockChain,
    generation: u64,
    record: LeaseRecord,
    ttl: Duration,
}

/// The CI run URL from GitHub's environment, when running there.
pub fn ci_run_url() -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL").ok()?;
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    let run = std::env::var("GITHUB_RUN_ID").ok()?;
    Some(format!("{server}/{repo}/actions/runs/{run}"))
}

impl LockChain {
    /// The chain beside the state object `object`.
    pub fn new(store: Arc<dyn ObjectStore>, object: &ObjectPath, url: &str) -> Self {
        Self {
            store,
            dir: ObjectPath::from(format!("{object}.lock")),
            url: url.to_owned(),
        }
    }

    fn generation_path(&self, generation: u64) -> ObjectPath {
        self.dir
            .child(format!("{generation:0width$}", width = GENERATION_DIGITS))
    }

    /// The generations present, oldest first.
    pub(crate) async fn generations(&self) -> anyhow::Result<Vec<u64>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.dir))
            .await
            .with_context(|| format!("listing the lock of `{}`", self.url))?;
        let mut generations: Vec<u64> = listing
            .objects
            .iter()
            .filter_map(|o| o.location.filename()?.parse().ok())
            .collect();
        generations.sort_unstable();
        Ok(generations)
    }

    /// The newest generation and its record, if the state has ever been locked.
    pub async fn current(&self) -> anyhow::Result<Option<(u64, LeaseRecord)>> {
        // A generation deleted between the listing and the read is an older one; list again.
        for _ in 0..3 {
            let Some(&newest) = self.generations().await?.last() else {
                return Ok(None);
            };
            match self.store.get(&self.generation_path(newest)).await {
                Ok(got) => {
                    let bytes = got.bytes().await?;
                    let record: LeaseRecord = serde_json::from_slice(&bytes).with_context(|| {
                        format!(
                            "the lock object `{}` of `{}` is not an idprune lease; remove the `.lock/` objects by hand once no run is using the state",
                            self.generation_path(newest),
                            self.url
                        )
                    })?;
                    return Ok(Some((newest, record)));
                }
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading the lock of `{}`", self.url));
                }
            }
        }
        bail!(
            "the lock of `{}` changed three times while being read; try again",
            self.url
        )
    }

    /// Writes generation `generation` if absent: `Ok(false)` when another writer got there first.
    async fn create(&self, generation: u64, record: &LeaseRecord) -> anyhow::Result<bool> {
        let body = serde_json::to_vec_pretty(record)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(
                &self.generation_path(generation),
                PutPayload::from(body),
                opts,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("writing the lock of `{}`", self.url)),
        }
    }

    /// Deletes generations older than `keep_from`, best effort.
    async fn prune(&self, keep_from: u64) {
        let Ok(generations) = self.generations().await else {
            return;
        };
        for generation in generations.into_iter().filter(|&g| g < keep_from) {
            let _ = self.store.delete(&self.generation_path(generation)).await;
        }
    }

    /// Takes the lease for `doing`, lasting `ttl`: when it is free, released or expired.
    /// Held by another (unexpired), it is a [`Refused`] naming the holder.
    pub async fn acquire(&self, doing: &str, ttl: Duration) -> anyhow::Result<Lease> {
        let now = now_unix();
        let record = LeaseRecord {
            lock_id: format!("{:016x}", rand::random::<u64>()),
            host: crate::state::lock::this_host(),
            pid: std::process::id(),
            doing: doing.to_owned(),
            started_at: now,
            expires_at: now + ttl.as_secs() as i64,
            run_url: ci_run_url(),
            held: true,
        };
        let next = match self.current().await? {
            None => 0,
            Some((_, holder)) if holder.binds(now) => {
                return Err(self.held_by(&holder));
            }
            Some((generation, _)) => generation + 1,
        };
        if !self.create(next, &record).await? {
            // Another taker won the race for this generation.
            return match self.current().await? {
                Some((_, holder)) => Err(self.held_by(&holder)),
                None => bail!(
                    "the lock of `{}` vanished while being taken; try again",
                    self.url
                ),
            };
        }
        self.prune(next.saturating_sub(1)).await;
        Ok(Lease {
            chain: self.clone(),
            generation: next,
            record,
            ttl,
        })
    }

    fn held_by(&self, holder: &LeaseRecord) -> anyhow::Error {
        Refused(format!(
            "state `{}` is locked by {holder}; wait for it to finish, or once that run is surely gone run `idprune unlock {} {}`",
            self.url,
            self.url,
            crate::text::clean(&holder.lock_id)
        ))
        .into()
    }

    /// Breaks the lease whose lock id is `lock_id` (`unlock`): writes a released generation
    /// after it. Refuses when the current lease has another id (nothing to break by that name).
    pub async fn unlock(&self, lock_id: &str) -> anyhow::Result<LeaseRecord> {
        let Some((generation, holder)) = self.current().await? else {
            bail!("state `{}` has no lock; nothing to do", self.url);
        };
        if !holder.held {
            bail!(
                "state `{}` is not locked (last held by lock id {}); nothing to do",
                self.url,
                crate::text::clean(&holder.lock_id)
            );
        }
        if holder.lock_id != lock_id {
            bail!(
                "state `{}` is locked by lock id `{}`, not `{}`; check the id in the lock message",
                self.url,
                crate::text::clean(&holder.lock_id),
                crate::text::clean(lock_id)
            );
        }
        let released = LeaseRecord {
            held: false,
            ..holder.clone()
        };
        if !self.create(generation + 1, &released).await? {
            bail!(
                "the lock of `{}` changed while being broken (renewed or taken); look again with `idprune unlock`",
                self.url
            );
        }
        self.prune(generation).await;
        Ok(holder)
    }
}

impl Lease {
    /// The record as last written.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// The chain this lease belongs to.
    pub fn chain(&self) -> &LockChain {
        &self.chain
    }

    /// Extends the lease by its length from now. A [`Refused`] when it was lost meanwhile
    /// (taken over after expiring, or broken): the holder must stop writing the state.
    pub async fn renew(&mut self) -> anyhow::Result<()> {
        let mut next = self.record.clone();
        next.expires_at = now_unix() + self.ttl.as_secs() as i64;
        self.step(next).await
    }

    /// Checks that this process still holds the lease, without renewing it.
    pub async fn check(&self) -> anyhow::Result<()> {
        match self.chain.current().await? {
            Some((generation, _)) if generation == self.generation => Ok(()),
            Some((_, holder)) => Err(self.lost(&holder)),
            None => Err(self.lost_unknown()),
        }
    }

    /// Releases the lease so the next taker need not wait for expiry.
    pub async fn release(mut self) -> anyhow::Result<()> {
        let mut next = self.record.clone();
        next.held = false;
        self.step(next).await
    }

    async fn step(&mut self, next: LeaseRecord) -> anyhow::Result<()> {
        let generation = self.generation + 1;
        if !self.chain.create(generation, &next).await? {
            return Err(match self.chain.current().await? {
                Some((_, holder)) => self.lost(&holder),
                None => self.lost_unknown(),
            });
        }
        self.generation = generation;
        self.record = next;
        self.chain.prune(generation.saturating_sub(1)).await;
        Ok(())
    }

    fn lost(&self, now: &LeaseRecord) -> anyhow::Error {
        Refused(format!(
            "lost the lock of `{}` (lock id {}): it is now {}; stopped writing the state: check the other run, then resume",
            self.chain.url,
            crate::text::clean(&self.record.lock_id),
            if now.held {
                format!("held by {now}")
            } else {
                format!("broken (last {now})")
            }
        ))
        .into()
    }

    fn lost_unknown(&self) -> anyhow::Error {
        Refused(format!(
            "lost the lock of `{}` (lock id {}): its lock objects were removed; stopped writing the state: check the store, then resume",
            self.chain.url,
            crate::text::clean(&self.record.lock_id)
        ))
        .into()
    }
}
