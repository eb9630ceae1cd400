//! Where a state file lives: a local path (the default), or an object in a store — `file://`,
//! `s3://` (AWS or any S3-compatible endpoint), `gs://`, `az://` — through the `object_store`
//! crate, never a hand-written cloud client.
//!
//! With a store, the object is the truth and the local SQLite file is a working copy: commands
//! [`Remote::pull`] the latest copy before they read it, and writers push a consistent snapshot
//! of it (SQLite's backup API, owned by [`crate::state::snapshot_for_push`]) sealed in an encrypted
//! [`envelope`] under the team's state key. Only a holder of the [`lease`] pushes
//! ([`Remote::push`] takes the [`Lease`]), and a push never overwrites an object sealed under
//! another key. Credentials and endpoints come from each cloud's standard environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_ACCESS_KEY_ID`, ..., `GOOGLE_APPLICATION_CREDENTIALS`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...), read by `object_store`'s builders; idprune takes none in
//! flags.
//!
//! This module never opens the SQLite file for its own use and never sees the Segment token.

pub mod envelope;
pub mod lease;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreScheme, PutPayload};
use url::Url;

pub use envelope::{MAKE_A_KEY, StateKey};
pub use lease::{DEFAULT_LEASE, Lease, LeaseRecord, LockChain};

/// The environment variable naming the state location (`--state`).
pub const STATE_ENV: &str = "IDPRUNE_STATE";
/// The environment variable holding the state key, base64 (`--state-key-file` is the other way).
pub const KEY_ENV: &str = "IDPRUNE_STATE_KEY";

/// Where a state file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A plain local path: the file is the state, as it always was.
    Local(PathBuf),
    /// An object in a store, given by its URL.
    Remote(Url),
}

impl Location {
    /// Parses `--state`/`IDPRUNE_STATE`: a URL of a supported scheme, or else a plain path.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.is_empty() {
            bail!(
                "the state location is empty; pass a path or a store URL such as `s3://bucket/plans/x.state`"
            );
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(text)));
        };
        let url = Url::parse(text).with_context(|| {
            format!("state location `{text}` is not a valid URL; check its spelling")
        })?;
        match scheme {
            "file" | "s3" | "gs" | "az" => {}
            other => bail!(
                "state location `{text}` has scheme `{other}`, which idprune does not store state in; use a path, `file://`, `s3://`, `gs://` or `az://`"
            ),
        }
        let key = object_key(&url)?;
        if key.as_ref().is_empty() || url.path().ends_with('/') {
            bail!(
                "state location `{text}` names no object; add the object's name, e.g. `{}/plans/x.state`",
                text.trim_end_matches('/')
            );
        }
        Ok(Self::Remote(url))
    }

    /// The location for display (a URL has no secrets in it: credentials come from the
    /// environment, and a URL carrying a password is refused by [`Remote::open`]).
    pub fn display(&self) -> String {
        match self {
            Self::Local(p) => p.display().to_string(),
            Self::Remote(u) => u.to_string(),
        }
    }
}

fn object_key(url: &Url) -> anyhow::Result<ObjectPath> {
    let (_, path) = ObjectStoreScheme::parse(url)
        .with_context(|| format!("state location `{url}` is not a store URL idprune knows"))?;
    ObjectPath::parse(path)
        .with_context(|| format!("state location `{url}` has an invalid object path"))
}

/// Loads the state key: from `key_file` when given, else from `IDPRUNE_STATE_KEY`. `None` when
/// neither is set (the caller says what that means; writing needs a key, [`require_key`]).
pub fn load_key(key_file: Option<&Path>) -> anyhow::Result<Option<StateKey>> {
    if let Some(path) = key_file {
        let text = crate::bounded::read_secret_line(path, "state key file", 1024)?;
        return StateKey::from_base64(&text, &format!("`{}`", path.display())).map(Some);
    }
    match std::env::var(KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            StateKey::from_base64(&text, &format!("`{KEY_ENV}`")).map(Some)
        }
        _ => Ok(None),
    }
}

/// [`load_key`], where a key is required: its absence is an error saying how to make one.
pub fn require_key(key_file: Option<&Path>, url: &str) -> anyhow::Result<StateKey> {
    load_key(key_file)?.with_context(|| {
        format!("state `{url}` is in a store, and its copy there is always encrypted, but no state key is set; nothing was pushed: {MAKE_A_KEY}")
    })
}

/// A state object in a store, with the key its envelope is sealed under.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    object: ObjectPath,
    url: String,
    key: StateKey,
    /// Set once the stored object (if any) is known to be sealed under `key`.
    key_checked: AtomicBool,
}

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// The store holds no state object yet; nothing was written locally.
    Absent,
    /// The working copy now holds the store's state (this many bytes of envelope).
    Fetched {
        /// Bytes of the envelope read.
        bytes: usize,
    },
}

/// Builds the object store for a store URL, credentials and endpoint from the environment.
/// `overrides` are `object_store` config keys (`aws_endpoint`, ...) set over the environment's.
fn build_store(url: &Url, overrides: &[(&str, &str)]) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "state location `{}` carries credentials; remove them from the URL and set them in the cloud's environment variables (`AWS_ACCESS_KEY_ID`, ...)",
            redacted(url)
        );
    }
    let (scheme, _) = ObjectStoreScheme::parse(url)?;
    let context = || format!("configuring the store for `{url}` from the environment");
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::AmazonS3 => Arc::new(
            overrides
                .iter()
                .try_fold(
                    object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str()),
                    |b, (k, v)| Ok::<_, object_store::Error>(b.with_config(k.parse()?, *v)),
                )
                .and_then(|b| b.build())
                .with_context(context)?,
        ),
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            overrides
                .iter()
                .try_fold(
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str()),
                    |b, (k, v)| Ok::<_, object_store::Error>(b.with_config(k.parse()?, *v)),
                )
                .and_then(|b| b.build())
                .with_context(context)?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            overrides
                .iter()
                .try_fold(
                    object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str()),
                    |b, (k, v)| Ok::<_, object_store::Error>(b.with_config(k.parse()?, *v)),
                )
                .and_then(|b| b.build())
                .with_context(context)?,
        ),
        other => bail!(
            "state location `{url}` ({other:?}) is not a store idprune supports; use `file://`, `s3://`, `gs://` or `az://`"
        ),
    };
    Ok(store)
}

fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

impl Remote {
    /// The state object at `url`, sealed under `key`.
    pub fn open(url: &Url, key: StateKey) -> anyhow::Result<Self> {
        Self::open_with(url, key, &[])
    }

    /// [`Remote::open`] with `object_store` config keys set over the environment's
    /// (`("aws_endpoint", "http://127.0.0.1:9000")`, ...): for tests and benchmarks, which run
    /// in parallel and so cannot change the process environment.
    pub fn open_with(url: &Url, key: StateKey, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        Ok(Self {
            store: build_store(url, overrides)?,
            object: object_key(url)?,
            url: url.to_string(),
            key,
            key_checked: AtomicBool::new(false),
        })
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The lease chain beside the object.
    pub fn lock_chain(&self) -> LockChain {
        LockChain::new(Arc::clone(&self.store), &self.object, &self.url)
    }

    /// The envelope as stored, `None` when absent.
    pub async fn fetch_sealed(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match self.store.get(&self.object).await {
            Ok(got) => Ok(Some(
                got.bytes()
                    .await
                    .with_context(|| format!("reading state `{}`", self.url))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading state `{}`", self.url)),
        }
    }

    /// Fetches the latest state into the working copy at `local`, replacing it (with its
    /// `-wal`/`-shm` sides) only once the object has opened under the key: a wrong key or an
    /// edited object leaves the working copy as it was. The new file is mode 0600.
    pub async fn pull(&self, local: &Path) -> anyhow::Result<Pulled> {
        let Some(sealed) = self.fetch_sealed().await? else {
            return Ok(Pulled::Absent);
        };
        let plain = envelope::open(&self.key, self.object.as_ref(), &sealed)?;
        let staging = staging_path(local);
        let _ = std::fs::remove_file(&staging);
        write_private(&staging, &plain)?;
        crate::state::replace_file(&staging, local)?;
        Ok(Pulled::Fetched {
            bytes: sealed.len(),
        })
    }

    /// Pushes a consistent snapshot of the working copy at `local` as the new truth
    /// ([`crate::state::snapshot_for_push`], with its `horizon` of deletions a resume must treat
    /// as possibly sent). Takes the lease (only its holder pushes) and checks it is still held;
    /// refuses to overwrite an object sealed under another key. Returns the envelope's size in
    /// bytes.
    pub async fn push(&self, lease: &Lease, local: &Path, horizon: u64) -> anyhow::Result<usize> {
        lease.check().await?;
        self.check_existing_key().await?;
        let plain = {
            let local = local.to_owned();
            // SQLite's copy and the read are blocking: off the runtime's workers, so a
            // checkpoint never stalls the requests of the run it records.
            tokio::task::spawn_blocking(move || {
                let dir = private_temp_dir(&local)?;
                let copy = dir.join("snapshot.db");
                let result =
                    crate::state::snapshot_for_push(&local, &copy, horizon).and_then(|()| {
                        std::fs::read(&copy).with_context(|| {
                            format!("reading the snapshot of `{}`", local.display())
                        })
                    });
                let _ = std::fs::remove_dir_all(&dir);
                result
            })
            .await
            .context("the snapshot task panicked")??
        };
        let sealed = envelope::seal(&self.key, self.object.as_ref(), &plain)?;
        let size = sealed.len();
        self.store
            .put(&self.object, PutPayload::from(sealed))
            .await
            .with_context(|| format!("pushing state `{}`", self.url))?;
        Ok(size)
    }

    /// Refuses when the object exists and was sealed under another key (so a push with the
    /// wrong key overwrites nothing). Checked once per [`Remote`]: only lease holders push, and
    /// they all check.
    async fn check_existing_key(&self) -> anyhow::Result<()> {
        if self.key_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let reading = || format!("reading state `{}`", self.url);
        let size = match self.store.head(&self.object).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e).with_context(reading),
        };
        let header = if size < envelope::HEADER_LEN as u64 {
            Vec::new()
        } else {
            let range = 0..envelope::HEADER_LEN as u64;
            self.store
                .get_range(&self.object, range)
                .await
                .with_context(reading)?
                .to_vec()
        };
        envelope::check_key(&self.key, self.object.as_ref(), &header)?;
        self.key_checked.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// The staging file a pull writes before renaming it over the working copy.
fn staging_path(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_os_string();
    name.push(".pulling");
    local.with_file_name(name)
}

/// A fresh directory (mode 0700) beside `local` for a snapshot: same file system, not shared.
fn private_temp_dir(local: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let parent = match local.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut name = local.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".push-{:08x}", rand::random::<u32>()));
    let dir = parent.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating `{}` for the snapshot", dir.display()))?;
    Ok(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating `{}`", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing `{}`", path.display()))
}

#[cfg(test)]
mod tests;
