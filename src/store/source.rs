//! A manifest's CSV source kept in a store (`csv: s3://bucket/2026-11/bad.csv`): fetched through
//! the same `object_store` builders as the state (credentials and endpoint from the cloud's
//! environment variables), with a byte cap, into an unnamed temporary file (mode 0600, unlinked
//! before a byte is written, so nothing is left behind even by `kill -9`), hashing as it
//! streams. The object is the customer's plain CSV: no envelope, no key.
//!
//! It decides nothing about the rows: the manifest checks the hash against the pin before
//! reading them (`manifest::UrlSources`).

use std::io::{Seek as _, Write as _};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::{build_store, object_key};

/// A source object copied to a private local file.
#[derive(Debug)]
pub struct FetchedSource {
    /// The bytes, in an unnamed file (mode 0600), rewound to the start.
    pub file: std::fs::File,
    /// Lowercase hex sha256 of the bytes.
    pub sha256: String,
    /// How many bytes.
    pub bytes: u64,
}

/// Fetches the CSV object at `url`, refusing one over `max` bytes (by its stored size before
/// the download, and while it streams, since an object can be replaced meanwhile).
/// `overrides` are `object_store` config keys set over the environment's (tests, which run in
/// parallel and cannot change the process environment).
pub async fn fetch(
    url: &Url,
    max: u64,
    overrides: &[(&str, &str)],
) -> anyhow::Result<FetchedSource> {
    let too_big = |size: u64| {
        anyhow::anyhow!(
            "`{url}` is {size} bytes, over the {max}-byte{} limit of a CSV source in a store; split the export into several sources",
            in_gib(max)
        )
    };
    if url.scheme() == "file" {
        refuse_special_file(url)?;
    }
    let store = build_store(url, overrides)?;
    let object = object_key(url)?;
    let reading = || format!("reading `{url}`");
    let got = match store.get(&object).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => bail!(
            "`{url}` does not exist in the store; check the URL, and that the CSV was uploaded there"
        ),
        Err(e) => return Err(e).with_context(reading),
    };
    if got.meta.size > max {
        return Err(too_big(got.meta.size));
    }
    let mut file = tempfile::tempfile()
        .context("creating a private temporary file for a CSV source (check TMPDIR)")?;
    // Unnamed already (no other process can open it by name); 0600 too, before a byte is in it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .context("making a CSV source's temporary file private")?;
    }
    let mut sha = Sha256::new();
    let mut bytes = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(reading)?;
        bytes += chunk.len() as u64;
        if bytes > max {
            return Err(too_big(bytes));
        }
        sha.update(&chunk);
        file.write_all(&chunk)
            .context("writing a CSV source to its temporary file (is the disk full?)")?;
    }
    file.rewind()
        .context("rewinding a CSV source's temporary file")?;
    Ok(FetchedSource {
        file,
        sha256: hex::encode(sha.finalize()),
        bytes,
    })
}

/// ` (2 GiB)` for a whole number of GiB, else nothing.
fn in_gib(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!(" ({} GiB)", bytes / GIB)
    } else {
        String::new()
    }
}

/// A `file://` source must be a regular file: a FIFO would block the read forever and a device
/// never ends (the cap would stop it, but only after `max` bytes).
fn refuse_special_file(url: &Url) -> anyhow::Result<()> {
    let Ok(path) = url.to_file_path() else {
        bail!("`{url}` is not a local file path; a `file://` URL names an absolute path");
    };
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => {
            bail!("`{url}` is not a regular file; give the URL of a CSV file")
        }
        _ => Ok(()),
    }
}
