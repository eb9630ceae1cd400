//! The bounded read of a manifest file: at most [`MAX_MANIFEST_BYTES`], read once, then
//! checked to be non-empty UTF-8 text without a NUL byte (a leading BOM dropped). Nothing here
//! knows YAML; [`super::load_into`] parses the text this returns.

use std::io::Read;
use std::path::Path;

use super::diagnostic::{Diagnostic, Location, ManifestError};

/// Largest manifest file accepted, checked before parsing. Bulk lists belong in CSV sources.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// What an empty manifest is told.
pub(super) const EMPTY_MANIFEST: &str =
    "the manifest is empty; it needs at least `version: 1`, `space`, `reason` and entries";

/// The hex sha256 of a regular file's bytes, streamed (the CSV pins of `init`, and apply's
/// check that the manifest and pinned sources did not change). `what` names the file in
/// messages.
pub fn sha256_file(path: &Path, what: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use sha2::{Digest as _, Sha256};
    let mut file = crate::bounded::open_regular(path, what)?;
    let mut sha = Sha256::new();
    std::io::copy(&mut file, &mut sha)
        .with_context(|| format!("reading {what} `{}`", path.display()))?;
    Ok(hex::encode(sha.finalize()))
}

/// Reads the whole manifest, refusing files over [`MAX_MANIFEST_BYTES`] without reading them.
pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, ManifestError> {
    let io_err = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    let too_big = |size: u64| {
        ManifestError::Invalid(vec![Diagnostic::new(
            Location::new(path, 1, 1),
            format!(
                "the manifest is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte (4 MiB) limit; \
                 move long lists of identifiers into a CSV source (`sources: [{{csv: ...}}]`)"
            ),
        )])
    };
    // Opened without blocking, so a FIFO is refused instead of waited on.
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(io_err)?
    };
    let metadata = file.metadata().map_err(io_err)?;
    if !metadata.is_file() {
        return Err(ManifestError::Invalid(vec![Diagnostic::new(
            Location::new(path, 1, 1),
            "the manifest is not a regular file (a folder, a pipe or a device); give the path of a YAML file",
        )]));
    }
    let size = metadata.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(too_big(size));
    }
    // The metadata may lie (a growing file, a pipe): cap the read itself too.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The manifest's text: not empty, UTF-8, no NUL byte; a leading BOM is dropped.
pub(super) fn check_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    if bytes.is_empty() {
        return Err(Diagnostic::new(Location::new(path, 1, 1), EMPTY_MANIFEST));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = line_column(&bytes[..e.valid_up_to()]);
            return Err(Diagnostic::new(
                Location::new(path, line, column),
                "the manifest is not valid UTF-8; save it as UTF-8",
            ));
        }
    };
    if let Some(at) = text.find('\0') {
        let (line, column) = line_column(&bytes[..at]);
        return Err(Diagnostic::new(
            Location::new(path, line, column),
            "the manifest holds a NUL byte; it is not a text file",
        ));
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Diagnostic::new(Location::new(path, 1, 1), EMPTY_MANIFEST));
    }
    Ok(text)
}

/// 1-based line and character column of the position right after `prefix` (valid UTF-8).
fn line_column(prefix: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() as u64 + 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    let last = last.strip_prefix('\u{FEFF}').unwrap_or(last);
    (line, last.chars().count() as u64 + 1)
}
