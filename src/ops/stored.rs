//! Where the state lives, for every command that takes a state file: a local file (the
//! default), or an object in a store (`--state URL`, `IDPRUNE_STATE`, or a URL where the state
//! path goes) whose local file is only a working copy. The store object is the truth:
//! - readers ([`StoreAt::read_into`]) fetch the latest copy before they read;
//! - writers take the lease beside the object ([`StoreAt::hold`]), fetch the latest copy, work
//!   on it, and push it back, sealed, on every way out ([`Held::finish`]); `apply` also pushes
//!   a checkpoint every `--checkpoint-every` ([`keep_checkpointing`]).
//!
//! A pull replaces the working copy, so a local file never outranks the store: the merge job
//! resumes only what the store holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use url::Url;

use crate::state::State;
use crate::store::{DEFAULT_LEASE, Lease, Location, Pulled, Remote, StateKey};

/// How often `apply` pushes its journal to the store unless `--checkpoint-every` says otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Hidden override of the lease's length in seconds ([`DEFAULT_LEASE`]), for tests that show
/// an expired lease taken over without waiting two minutes. Not a documented flag: a person
/// never needs it.
pub const LEASE_ENV: &str = "IDPRUNE_LEASE_SECS";

/// The lease's length: [`DEFAULT_LEASE`], or the positive number of seconds in [`LEASE_ENV`].
fn lease_length() -> Duration {
    std::env::var(LEASE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_LEASE, Duration::from_secs)
}

/// A state that lives in a store, with the key its copy there is sealed under.
pub struct StoreAt {
    url: Url,
    key: StateKey,
}

/// Where a command's state is: the local file it names, and the store behind it, if any.
pub struct Resolved {
    /// The local file named (a path where the state path goes, or `--state PATH`): the state
    /// itself without a store, the working copy with one. `None`: none named.
    pub local: Option<PathBuf>,
    /// The store, when the state lives in one.
    pub store: Option<StoreAt>,
}

/// Reads where the state is from the state path a command was given (`positional`, itself a
/// path or a store URL), `--state`/`IDPRUNE_STATE` (`flag`) and `--state-key-file`. A store
/// needs a key: its absence is an error that says how to make one.
pub fn resolve(
    positional: Option<&Path>,
    flag: Option<&str>,
    key_file: Option<&Path>,
) -> anyhow::Result<Resolved> {
    let named = match positional.and_then(Path::to_str) {
        Some(text) if text.contains("://") => Some(Location::parse(text)?),
        _ => positional.map(|p| Location::Local(p.to_owned())),
    };
    let flagged = flag
        .filter(|f| !f.trim().is_empty())
        .map(Location::parse)
        .transpose()?;
    let (local, remote) = match (named, flagged) {
        (None, None) => (None, None),
        (Some(Location::Local(p)), None) | (None, Some(Location::Local(p))) => (Some(p), None),
        (Some(Location::Remote(u)), None) | (None, Some(Location::Remote(u))) => (None, Some(u)),
        (Some(Location::Local(p)), Some(Location::Remote(u))) => (Some(p), Some(u)),
        (Some(Location::Local(p)), Some(Location::Local(q))) => {
            if std::path::absolute(&p)? != std::path::absolute(&q)? {
                bail!(
                    "the state is named twice: `{}` and `--state {}` (or `{}`); name it once",
                    p.display(),
                    q.display(),
                    crate::store::STATE_ENV
                );
            }
            (Some(p), None)
        }
        (Some(Location::Remote(a)), Some(Location::Remote(b))) if a == b => (None, Some(a)),
        (Some(Location::Remote(a)), Some(other)) => bail!(
            "the state is named twice: `{a}` and `--state {}` (or `{}`); name it once",
            other.display(),
            crate::store::STATE_ENV
        ),
    };
    let store = match remote {
        None => None,
        Some(url) => {
            let key = crate::store::require_key(key_file, url.as_str())?;
            Some(StoreAt { url, key })
        }
    };
    Ok(Resolved { local, store })
}

impl Resolved {
    /// The local state file: the one named, else (for a store) a fresh private working copy
    /// that is removed with the returned guard, else an error naming what is missing.
    pub fn local_or_scratch(&self) -> anyhow::Result<(PathBuf, Option<PrivateCopy>)> {
        if let Some(local) = &self.local {
            return Ok((local.clone(), None));
        }
        match &self.store {
            Some(store) => {
                let scratch = PrivateCopy::for_store(store)?;
                Ok((scratch.file.clone(), Some(scratch)))
            }
            None => bail!(
                "no state file named: pass its path, or `--state URL` (or `{}`) for a state in a store",
                crate::store::STATE_ENV
            ),
        }
    }
}

/// A private folder (mode 0700) holding a working copy no one asked to keep, removed on drop.
pub struct PrivateCopy {
    dir: PathBuf,
    file: PathBuf,
}

impl PrivateCopy {
    /// A fresh private working copy for `store`'s state.
    pub fn for_store(store: &StoreAt) -> anyhow::Result<Self> {
        Self::new(&store.url)
    }

    /// The working copy's path (the file does not exist until a pull writes it).
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn new(url: &Url) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = std::env::temp_dir().join(format!(
            "idprune-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating `{}` for the working copy", dir.display()))?;
        let name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("state");
        let file = dir.join(format!("{}.db", name.trim_end_matches(".db")));
        Ok(Self { dir, file })
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl StoreAt {
    /// The store URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn remote(&self) -> anyhow::Result<Remote> {
        Remote::open(&self.url, self.key.clone())
    }

    /// Fetches the latest copy into `local` for reading. A store holding no state yet is an
    /// error saying how one gets there.
    pub async fn read_into(&self, local: &Path) -> anyhow::Result<()> {
        match self.remote()?.pull(local).await? {
            Pulled::Fetched { .. } => Ok(()),
            Pulled::Absent => Err(self.absent()),
        }
    }

    /// The error for a store that holds no state yet.
    pub fn absent(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "state `{}` does not exist in the store yet; `idprune plan MANIFEST --state {}` writes it (or `apply MANIFEST --receipt FILE --state {}` plans and applies it)",
            self.url,
            self.url,
            self.url
        )
    }

    /// Takes the lease beside the object for `doing` (a [`crate::exit::Refused`] naming the
    /// holder when another process anywhere holds it), with `local` as the working copy.
    pub async fn hold(
        &self,
        local: &Path,
        scratch: Option<PrivateCopy>,
        doing: &str,
    ) -> anyhow::Result<Held> {
        let remote = self.remote()?;
        let lease = remote.lock_chain().acquire(doing, lease_length()).await?;
        Ok(Held {
            remote,
            lease: tokio::sync::Mutex::new(Some(lease)),
            local: local.to_owned(),
            _scratch: scratch,
        })
    }
}

/// What a store holds: its plan's digest, and whether an apply journal is in it.
pub struct StoredPlan {
    /// The sealed plan's digest.
    pub digest: String,
    /// True once an apply has run on it.
    pub has_journal: bool,
}

impl StoreAt {
    /// Breaks the lease whose lock id is `lock_id` (`unlock`), returning whom it named.
    pub async fn unlock(&self, lock_id: &str) -> anyhow::Result<crate::store::LeaseRecord> {
        self.remote()?.lock_chain().unlock(lock_id).await
    }

    /// The lease's newest record: who holds (or last held) the state, `None` if never locked.
    pub async fn lease(&self) -> anyhow::Result<Option<crate::store::LeaseRecord>> {
        Ok(self.remote()?.lock_chain().current().await?.map(|(_, r)| r))
    }

    /// What the store holds now (fetched into a private copy, removed after), `None` when it
    /// holds no state yet.
    pub async fn holds(&self) -> anyhow::Result<Option<StoredPlan>> {
        let scratch = PrivateCopy::new(&self.url)?;
        match self.remote()?.pull(&scratch.file).await? {
            Pulled::Absent => Ok(None),
            Pulled::Fetched { .. } => {
                let state = State::open(&scratch.file)?;
                Ok(Some(StoredPlan {
                    digest: state.meta()?.digest,
                    has_journal: state.has_journal()?,
                }))
            }
        }
    }

    /// Refuses to replace a stored plan whose journal records an apply, unless `force`: the
    /// journal is the record of that run (the same rule as for a local state file).
    pub async fn refuse_replacing_a_journal(&self, force: bool) -> anyhow::Result<()> {
        if force {
            return Ok(());
        }
        if let Some(held) = self.holds().await?.filter(|h| h.has_journal) {
            bail!(
                "state `{}` holds plan {} and its apply journal; keep it as the record of that run and plan into another `--state` URL, or pass --force to replace it",
                self.url,
                held.digest
            );
        }
        Ok(())
    }

    /// `plan`'s final write: under the lease, checks again that no journal would be replaced
    /// (unless `force`), then pushes the sealed plan at `local`. Returns the bytes pushed.
    pub async fn publish_plan(&self, local: &Path, force: bool) -> anyhow::Result<usize> {
        let held = self.hold(local, None, "plan").await?;
        let pushed = match self.refuse_replacing_a_journal(force).await {
            Ok(()) => held.finish().await,
            Err(e) => Err(e),
        };
        // After a refusal the lease is still held: give it back without pushing.
        held.release().await?;
        pushed
    }
}

/// A state in a store whose lease this process holds, with its working copy.
pub struct Held {
    remote: Remote,
    lease: tokio::sync::Mutex<Option<Lease>>,
    local: PathBuf,
    _scratch: Option<PrivateCopy>,
}

impl Held {
    /// The working copy.
    pub fn local(&self) -> &Path {
        &self.local
    }

    /// The store URL.
    pub fn url(&self) -> &str {
        self.remote.url()
    }

    /// Replaces the working copy with the store's state (nothing happens when the store holds
    /// none yet).
    pub async fn pull(&self) -> anyhow::Result<Pulled> {
        self.remote.pull(&self.local).await
    }

    /// Renews the lease and pushes the working copy, `horizon` deletions marked as possibly
    /// sent in the pushed copy ([`crate::state::snapshot_for_push`]). Returns the bytes pushed.
    pub async fn checkpoint(&self, horizon: u64) -> anyhow::Result<usize> {
        let mut guard = self.lease.lock().await;
        let lease = guard.as_mut().context("the lease was already released")?;
        lease.renew().await?;
        self.remote.push(lease, &self.local, horizon).await
    }

    /// Renews the lease without pushing.
    pub async fn renew(&self) -> anyhow::Result<()> {
        let mut guard = self.lease.lock().await;
        guard
            .as_mut()
            .context("the lease was already released")?
            .renew()
            .await
    }

    /// Pushes the working copy as it now is and releases the lease: every writer's way out.
    pub async fn finish(&self) -> anyhow::Result<usize> {
        let mut guard = self.lease.lock().await;
        let lease = guard.take().context("the lease was already released")?;
        let pushed = self.remote.push(&lease, &self.local, 0).await;
        let released = lease.release().await;
        let pushed = pushed.with_context(|| {
            format!(
                "pushing the working copy `{}` to `{}`; the store keeps its last checkpoint, and a resume from it re-sends what came after (those end `done`)",
                self.local.display(),
                self.remote.url()
            )
        })?;
        released?;
        Ok(pushed)
    }

    /// Releases the lease without pushing (nothing was written).
    pub async fn release(&self) -> anyhow::Result<()> {
        let mut guard = self.lease.lock().await;
        match guard.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }
}

/// Runs beside an apply until `stop` turns true (`None`) or a step fails (the error): renews
/// the lease at least every quarter of its length and pushes a checkpoint every `every`, each
/// marking `horizon` deletions as possibly sent. A step may take at most [`push_patience`];
/// so no more than `every` plus that passes between two checkpoints' snapshots, and
/// `horizon` must cover what a run can start in that time ([`checkpoint_horizon`]). After a
/// failure (a lost lease, an unreachable store, a step past its patience) the run must stop,
/// since what it sent next would go unrecorded.
pub async fn keep_checkpointing(
    held: Arc<Held>,
    every: Duration,
    horizon: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<anyhow::Error> {
    // Checkpoints start `every` apart, start to start (a slow push delays the next one, never
    // the cadence after it); renewals in between when the lease is shorter than four intervals.
    let tick = every
        .min(renewal_interval())
        .max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_push = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return None,
        }
        if *stop.borrow() {
            return None;
        }
        let step = async {
            if last_push.elapsed() + tick / 2 >= every {
                last_push = Instant::now();
                held.checkpoint(horizon).await.map(|_| ())
            } else {
                held.renew().await
            }
        };
        match tokio::time::timeout(push_patience(every), step).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Some(e.context(format!("checkpointing to `{}`", held.url()))),
            Err(_) => {
                return Some(anyhow::anyhow!(
                    "checkpointing to `{}` took longer than {}; the store is too slow or unreachable",
                    held.url(),
                    humantime::format_duration(push_patience(every))
                ));
            }
        }
    }
}

/// Runs `work`, a writer other than apply, while `held`'s lease (if any) is renewed every
/// quarter of its length: `verify --wait` polls for minutes and a lease lasts two, and no one
/// may take the lease over meanwhile. When a renewal fails, the lease is lost and `work` is
/// stopped (its push would be refused): that error is the result.
pub async fn while_renewed<T>(
    held: Option<&Held>,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let Some(held) = held else {
        return work.await;
    };
    let renewing = async {
        loop {
            tokio::time::sleep(renewal_interval()).await;
            if let Err(e) = held.renew().await {
                return e.context(format!("renewing the lease on `{}`", held.url()));
            }
        }
    };
    tokio::select! {
        result = work => result,
        lost = renewing => Err(lost),
    }
}

/// How often a holder renews its lease: a quarter of its length (at least 100 ms), so a late
/// renewal or two still lands before it lapses.
fn renewal_interval() -> Duration {
    (lease_length() / 4).max(Duration::from_millis(100))
}

/// How long one checkpoint (a lease renewal and a push) may take before the run stops:
/// three intervals, and at least 30 s, since a large state takes a while to upload.
pub fn push_patience(every: Duration) -> Duration {
    (every * 3).max(Duration::from_secs(30))
}

/// The most deletions a run at `rate` per second with `concurrency` in flight can start
/// between the snapshot of one checkpoint and that of the next that [`keep_checkpointing`]
/// pushes `every` apart, each push taking at most [`push_patience`].
pub fn checkpoint_horizon(rate: u32, concurrency: u32, every: Duration) -> u64 {
    let longest_gap = (every + push_patience(every)).as_secs_f64();
    (f64::from(rate) * longest_gap).ceil() as u64 + u64::from(concurrency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_where_the_state_path_goes_is_a_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").expect("key");
        let r = resolve(Some(Path::new("s3://b/x.state")), None, Some(&key)).expect("store");
        assert!(r.local.is_none());
        assert_eq!(r.store.expect("a store").url().as_str(), "s3://b/x.state");
        // A path with `--state URL`: the path is the working copy.
        let r = resolve(
            Some(Path::new("x.state.db")),
            Some("s3://b/x.state"),
            Some(&key),
        )
        .expect("store");
        assert_eq!(r.local.as_deref(), Some(Path::new("x.state.db")));
        assert!(r.store.is_some());
        let local = resolve(Some(Path::new("plans/x.state.db")), None, None).expect("local");
        assert_eq!(local.local.as_deref(), Some(Path::new("plans/x.state.db")));
        assert!(local.store.is_none());
    }

    #[test]
    fn a_state_named_twice_differently_is_refused() {
        let e = resolve(Some(Path::new("a.state.db")), Some("b.state.db"), None)
            .err()
            .expect("two paths");
        assert!(e.to_string().contains("named twice"), "{e:#}");
        let same = resolve(Some(Path::new("a.state.db")), Some("./a.state.db"), None);
        assert!(same.is_ok());
    }

    #[test]
    fn the_horizon_covers_the_longest_gap_between_snapshots_and_the_window() {
        // 10 s apart, a push allowed 30 s: 40 s at 100/s, plus 16 in flight.
        assert_eq!(checkpoint_horizon(100, 16, Duration::from_secs(10)), 4_016);
        // 60 s apart, a push allowed 180 s.
        assert_eq!(checkpoint_horizon(100, 0, Duration::from_secs(60)), 24_000);
    }
}
