//! CSV sources kept in a store rather than in git (`csv: s3://bucket/2026-11/bad.csv`): which
//! `csv:` values are URLs, the schemes accepted, and the hook they are fetched through.
//!
//! The manifest layer never talks to a store and stays synchronous: [`super::load_into`] is
//! handed a [`UrlSources`] by its caller. `ops::plan` passes [`UrlSources::Fetch`], a hook that
//! fetches through `store::source` (the `object_store` crate, credentials from the cloud's
//! environment variables), capped at [`MAX_URL_SOURCE_BYTES`], into an unnamed private file;
//! [`super::load`] (`validate`, offline by contract) passes [`UrlSources::Offline`], which
//! checks everything but the rows. A URL source must pin its `sha256`: the rows stay out of the
//! repository, so the pin is what a reviewer approves, and the fetched bytes are checked
//! against it before a single row is read.

use std::fs::File;

use url::Url;

/// The schemes a URL source may use: the state store's (`store::Location`).
pub const URL_SCHEMES: [&str; 4] = ["s3", "gs", "az", "file"];

/// The largest object a URL source may be, in bytes (2 GiB: some 20 million rows of an email
/// and a user id). A local CSV is streamed and has no such cap; a URL source is first copied
/// to a temporary file, so it gets one, checked against the store's size before the download
/// and again while it streams. A bigger export is split across several sources.
pub const MAX_URL_SOURCE_BYTES: u64 = 2 << 30;

/// A URL source fetched to a private local file, ready to be read from its start.
#[derive(Debug)]
pub struct FetchedCsv {
    /// The bytes, in a file no other process can open by name (unnamed, mode 0600), rewound.
    pub file: File,
    /// Lowercase hex sha256 of the bytes fetched.
    pub sha256: String,
}

/// How [`super::load_into`] treats URL sources.
#[derive(Clone, Copy)]
pub enum UrlSources<'a> {
    /// Not fetched (`validate`, which works offline): the URL and its pin are checked; its
    /// rows, columns and hash are left to `plan`.
    Offline,
    /// Fetched through this hook, which must cap the size and return the bytes' sha256.
    Fetch(&'a dyn Fn(&Url) -> anyhow::Result<FetchedCsv>),
}

/// What a `csv:` value is: `None` for a path; for a URL (`scheme://...`), the URL when its
/// scheme is one idprune reads, else why not.
pub fn source_url(written: &str) -> Option<Result<Url, String>> {
    let (scheme, _) = written.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let url = match Url::parse(written) {
        Ok(url) => url,
        Err(e) => return Some(Err(format!("is not a valid URL ({e})"))),
    };
    if !URL_SCHEMES.contains(&url.scheme()) {
        return Some(Err(format!(
            "has scheme `{}`, which idprune does not read sources from; use `s3://`, `gs://`, `az://`, `file://`, or a path relative to the manifest",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(Err(
            "carries credentials; remove them from the URL and set them in the cloud's environment variables (`AWS_ACCESS_KEY_ID`, ...)".to_owned(),
        ));
    }
    if url.path().trim_matches('/').is_empty() || url.path().ends_with('/') {
        return Some(Err(
            "names no object; give the CSV object's full key".to_owned()
        ));
    }
    Some(Ok(url))
}

/// True when a `csv:` value as written (a source's `written`) is a URL source.
pub fn is_url_source(written: &str) -> bool {
    matches!(source_url(written), Some(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(source_url("data/bad.csv").is_none());
        assert!(source_url("a b/c.csv").is_none());
        assert!(source_url("dir://x/../y").is_some());
        for ok in [
            "s3://bucket/2026-11/bad.csv",
            "gs://bucket/bad.csv",
            "az://account/container/bad.csv",
            "file:///srv/exports/bad.csv",
        ] {
            assert!(matches!(source_url(ok), Some(Ok(_))), "{ok}");
            assert!(is_url_source(ok), "{ok}");
        }
        for (bad, why) in [
            ("https://example.com/bad.csv", "scheme `https`"),
            ("s3://bucket/", "names no object"),
            ("s3://bucket", "names no object"),
            ("s3://key:secret@bucket/x.csv", "carries credentials"),
            ("s3://bu cket/x.csv", "not a valid URL"),
        ] {
            match source_url(bad) {
                Some(Err(message)) => assert!(message.contains(why), "{bad}: {message}"),
                other => panic!("{bad}: {other:?}"),
            }
            assert!(!is_url_source(bad), "{bad}");
        }
    }
}
