//! The files of an Event Archive export: finding them under the given paths, reading each as
//! a stream of lines (gzip or plain, told by the gzip magic bytes, not by the name), and
//! writing a filtered copy with the same relative layout and the same compression.
//!
//! Segment's S3/GCS/Azure destinations write `segment-logs/<source-id>/<received-day>/<file>.gz`,
//! each file gzipped, newline-separated JSON; several gzip members in one file are read in
//! turn. A directory is walked recursively in name order; its files ending `.gz`, `.jsonl`,
//! `.ndjson` or `.json` are scanned, others are counted as skipped. Symbolic links inside a
//! tree are not followed (counted as skipped) unless asked ([`Links::Follow`], `guard
//! --follow-symlinks`): then a link to a file is scanned under the link's own relative path,
//! and a link to a folder is walked, except one that leads back to a folder being walked (a
//! loop), which is skipped. A path named on the command line is always scanned. Copies are
//! created with `O_NOFOLLOW | O_EXCL`, into a folder that was empty.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// The read buffer of one archive file.
const READ_BUFFER: usize = 256 * 1024;
/// The names a directory walk scans.
const ARCHIVE_SUFFIXES: [&str; 4] = [".gz", ".jsonl", ".ndjson", ".json"];

/// One file to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the argument it was found under (its file name when the argument
    /// was the file itself): where its filtered copy goes under the output directory.
    pub relative: PathBuf,
}

/// The files found under the given paths.
#[derive(Debug, Default)]
pub struct Found {
    /// The files to scan, in argument order, each directory's in name order.
    pub files: Vec<ArchiveFile>,
    /// Files under a directory that do not look like archive files.
    pub skipped: u64,
}

/// What a directory walk does with a symbolic link inside the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Links {
    /// Skip it (counted as skipped): a planted link could point anywhere.
    #[default]
    Skip,
    /// Read the file or walk the folder it points to (`guard --follow-symlinks`).
    Follow,
}

/// A directory's identity, to tell a followed link that loops back.
type DirId = (u64, u64);

fn dir_id(meta: &std::fs::Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

/// Finds the archive files under `roots` (files or directories).
pub fn find(roots: &[PathBuf], links: Links) -> anyhow::Result<Found> {
    let mut found = Found::default();
    for root in roots {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("reading archive path `{}`", crate::text::shown_path(root)))?;
        if meta.is_dir() {
            let mut walking = vec![dir_id(&meta)];
            walk(root, root, links, &mut walking, &mut found)?;
        } else {
            let name = root.file_name().with_context(|| {
                format!(
                    "archive path `{}` has no file name",
                    crate::text::shown_path(root)
                )
            })?;
            found.files.push(ArchiveFile {
                path: root.clone(),
                relative: PathBuf::from(name),
            });
        }
    }
    Ok(found)
}

/// Walks `dir` under `root`; `walking` holds the folders from the root down to `dir`.
fn walk(
    root: &Path,
    dir: &Path,
    links: Links,
    walking: &mut Vec<DirId>,
    found: &mut Found,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "listing archive directory `{}`",
                crate::text::shown_path(dir)
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "listing archive directory `{}`",
                crate::text::shown_path(dir)
            )
        })?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("reading `{}`", crate::text::shown_path(&path)))?;
        // Symbolic links inside a tree are not followed unless asked (a planted link could
        // point anywhere); they are counted as skipped. A path named on the command line is
        // always scanned.
        let (is_dir, is_file) = if kind.is_symlink() {
            match (links, std::fs::metadata(&path)) {
                (Links::Follow, Ok(target)) => (target.is_dir(), target.is_file()),
                // Not asked to follow, or a link to nothing.
                _ => (false, false),
            }
        } else {
            (kind.is_dir(), kind.is_file())
        };
        if is_dir {
            let id = dir_id(
                &std::fs::metadata(&path)
                    .with_context(|| format!("reading `{}`", crate::text::shown_path(&path)))?,
            );
            if walking.contains(&id) {
                // A followed link back to a folder being walked: a loop.
                found.skipped += 1;
                continue;
            }
            walking.push(id);
            walk(root, &path, links, walking, found)?;
            walking.pop();
        } else if is_file {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                let relative = path
                    .strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| PathBuf::from(entry.file_name()));
                found.files.push(ArchiveFile { path, relative });
            } else {
                found.skipped += 1;
            }
        } else if kind.is_symlink() {
            found.skipped += 1;
        }
    }
    Ok(())
}

/// What [`Reader::next_line_bounded`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// The whole line is in the buffer.
    Whole,
    /// The line was longer than the limit: this many bytes, passed to the overflow sink.
    Oversize(u64),
}

/// An archive file opened for reading: its lines and whether it was gzipped.
pub struct Reader {
    inner: Box<dyn BufRead>,
    /// True when the file is gzip.
    pub gzip: bool,
    compressed: CountingHandle,
}

/// Counts bytes read from the file itself (before decompression).
#[derive(Clone, Default)]
struct CountingHandle(std::rc::Rc<std::cell::Cell<u64>>);

struct Counting<R> {
    inner: R,
    count: CountingHandle,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.0.set(self.count.0.get() + n as u64);
        Ok(n)
    }
}

impl Reader {
    /// Opens `path`, telling gzip from plain JSON lines by the first two bytes.
    pub fn open(path: &Path) -> anyhow::Result<Reader> {
        let mut file = BufReader::with_capacity(
            READ_BUFFER,
            File::open(path)
                .with_context(|| format!("opening `{}`", crate::text::shown_path(path)))?,
        );
        let head = file
            .fill_buf()
            .with_context(|| format!("reading `{}`", crate::text::shown_path(path)))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let compressed = CountingHandle::default();
        let counted = Counting {
            inner: file,
            count: compressed.clone(),
        };
        let inner: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                READ_BUFFER,
                MultiGzDecoder::new(counted),
            ))
        } else {
            Box::new(BufReader::with_capacity(READ_BUFFER, counted))
        };
        Ok(Reader {
            inner,
            gzip,
            compressed,
        })
    }

    /// Reads the next line into `buf` (cleared first), line end included; `false` at the end.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        Ok(self.inner.read_until(b'\n', buf)? > 0)
    }

    /// Like [`Reader::next_line`], but holds at most `max` bytes of a line: the bytes of a
    /// longer one go to `overflow` as they are read (what was buffered first), so memory stays
    /// bounded whatever the file holds. `None` at the end of the file.
    pub fn next_line_bounded(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        overflow: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<Line>> {
        buf.clear();
        let mut total = 0u64;
        let mut oversize = false;
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (chunk, complete) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            total += chunk.len() as u64;
            if !oversize && buf.len() + chunk.len() > max {
                oversize = true;
                overflow(buf)?;
                buf.clear();
            }
            if oversize {
                overflow(chunk)?;
            } else {
                buf.extend_from_slice(chunk);
            }
            let n = chunk.len();
            self.inner.consume(n);
            if complete {
                break;
            }
        }
        Ok(match (total, oversize) {
            (0, _) => None,
            (_, false) => Some(Line::Whole),
            (bytes, true) => Some(Line::Oversize(bytes)),
        })
    }

    /// Bytes read from the file so far (compressed, for gzip).
    pub fn file_bytes(&self) -> u64 {
        self.compressed.0.get()
    }
}

/// A filtered copy being written: to a temporary name beside its final one, renamed into
/// place only when complete, so an interrupted run leaves no half file that looks whole.
pub struct Copy {
    out: Option<Box<dyn FinishWrite>>,
    temp: PathBuf,
    path: PathBuf,
}

/// A writer that must be finished (a gzip trailer, a flush, an fsync).
trait FinishWrite: Write {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

impl FinishWrite for BufWriter<File> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

impl FinishWrite for GzEncoder<BufWriter<File>> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let buf = (*self).finish()?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

impl Copy {
    /// Starts the copy of `relative` under `dir`, gzipped when `gzip`. Refuses to replace an
    /// existing file.
    pub fn create(dir: &Path, relative: &Path, gzip: bool) -> anyhow::Result<Copy> {
        let path = dir.join(relative);
        if path.exists() {
            bail!(
                "`{}` already exists; choose an empty --write-filtered directory",
                crate::text::shown_path(&path)
            );
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating `{}`", crate::text::shown_path(parent)))?;
        }
        let mut name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".idprune-partial");
        let temp = path.with_file_name(name);
        // Never through a link planted at the name, never over an existing file.
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)
                .with_context(|| {
                    format!(
                        "creating `{}` (it must not exist already; give an empty --write-filtered folder)",
                        crate::text::shown_path(&temp)
                    )
                })?
        };
        let buf = BufWriter::with_capacity(READ_BUFFER, file);
        let out: Box<dyn FinishWrite> = if gzip {
            Box::new(GzEncoder::new(buf, Compression::default()))
        } else {
            Box::new(buf)
        };
        Ok(Copy {
            out: Some(out),
            temp,
            path,
        })
    }

    /// Writes one line, as read (line end included).
    pub fn line(&mut self, line: &[u8]) -> anyhow::Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.write_all(line)
                .with_context(|| format!("writing `{}`", crate::text::shown_path(&self.temp)))?;
        }
        Ok(())
    }

    /// Finishes the file and moves it into place.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        if let Some(out) = self.out.take() {
            out.finish()
                .with_context(|| format!("writing `{}`", crate::text::shown_path(&self.temp)))?;
        }
        std::fs::rename(&self.temp, &self.path)
            .with_context(|| format!("renaming into `{}`", crate::text::shown_path(&self.path)))?;
        Ok(std::mem::take(&mut self.path))
    }

    /// Drops the unfinished copy.
    pub fn abandon(mut self) {
        self.out.take();
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out.take();
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_archive_files_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("export");
        let day = root.join("segment-logs/src1/1700000000000");
        std::fs::create_dir_all(&day).expect("mkdir");
        for name in ["b.gz", "a.gz", "notes.txt", "c.jsonl"] {
            std::fs::write(day.join(name), b"").expect("write");
        }
        let found = find(std::slice::from_ref(&root), Links::Skip).expect("find");
        let rel: Vec<_> = found
            .files
            .iter()
            .map(|f| f.relative.display().to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "segment-logs/src1/1700000000000/a.gz",
                "segment-logs/src1/1700000000000/b.gz",
                "segment-logs/src1/1700000000000/c.jsonl"
            ]
        );
        assert_eq!(found.skipped, 1);
        let single = find(&[day.join("notes.txt")], Links::Skip).expect("find");
        assert_eq!(single.files[0].relative, PathBuf::from("notes.txt"));
    }

    #[test]
    fn a_copy_is_never_written_through_a_link_planted_at_its_temporary_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me\n").expect("write");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        std::os::unix::fs::symlink(&victim, out.join("a.json.idprune-partial")).expect("symlink");
        let err = Copy::create(&out, Path::new("a.json"), false)
            .err()
            .expect("a planted link is refused");
        assert!(
            format!("{err:#}").contains("a.json.idprune-partial"),
            "{err:#}"
        );
        assert_eq!(
            std::fs::read(&victim).expect("read"),
            b"keep me\n",
            "the link's target is neither truncated nor written"
        );
    }

    #[test]
    fn an_oversize_line_streams_to_the_overflow_sink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl");
        let long = "x".repeat(10_000);
        std::fs::write(&path, format!("{{}}\n{long}\n{{}}")).expect("write");
        let mut reader = Reader::open(&path).expect("open");
        let mut buf = Vec::new();
        let mut spilled = Vec::new();
        let mut sink = |b: &[u8]| -> anyhow::Result<()> {
            spilled.extend_from_slice(b);
            Ok(())
        };
        let mut got = Vec::new();
        while let Some(line) = reader
            .next_line_bounded(&mut buf, 100, &mut sink)
            .expect("read")
        {
            got.push((line, buf.clone()));
        }
        assert_eq!(got[0], (Line::Whole, b"{}\n".to_vec()));
        assert_eq!(got[1].0, Line::Oversize(10_001));
        assert_eq!(got[2], (Line::Whole, b"{}".to_vec()));
        assert_eq!(spilled, format!("{long}\n").into_bytes());
    }

    #[test]
    fn gzip_round_trip_with_several_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.gz");
        let mut bytes = Vec::new();
        for part in ["{\"a\":1}\n", "{\"b\":2}"] {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(part.as_bytes()).expect("gz");
            bytes.extend(enc.finish().expect("gz"));
        }
        std::fs::write(&path, &bytes).expect("write");
        let mut reader = Reader::open(&path).expect("open");
        assert!(reader.gzip);
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        while reader.next_line(&mut buf).expect("read") {
            lines.push(String::from_utf8(buf.clone()).expect("utf8"));
        }
        assert_eq!(lines, ["{\"a\":1}\n", "{\"b\":2}"]);
        assert_eq!(reader.file_bytes(), bytes.len() as u64);

        let out = dir.path().join("out");
        let mut copy = Copy::create(&out, Path::new("d/x.gz"), true).expect("create");
        copy.line(b"{\"a\":1}\n").expect("line");
        let written = copy.finish().expect("finish");
        let mut text = String::new();
        MultiGzDecoder::new(File::open(&written).expect("open"))
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, "{\"a\":1}\n");
        assert!(Copy::create(&out, Path::new("d/x.gz"), true).is_err());
    }
}
