//! The re-introduction guard: scans Event Archive exports for events that reference an
//! identifier a plan removes (replaying such an event re-adds it to a profile), and optionally
//! writes copies of the archive without those events, so a replay cannot re-add them.
//!
//! [`matcher`] decides which events reference which target; [`archive`] finds, reads and
//! writes the files; [`scan`] streams every file line by line (memory stays bounded by the
//! longest line, a few samples per file and at most [`MAX_NAMED_MALFORMED`] named malformed
//! lines, whatever the archive's size) and returns a [`Scan`]; `crate::render`'s
//! `guard_text` and `guard_json` draw it. Malformed lines (not a JSON object) are never fatal: they are
//! counted, named as `file:line`, and kept unchanged in the filtered copy, which the report
//! says. A file that cannot be read to its end (a truncated gzip) is reported, and its
//! filtered copy is not written. Nothing here touches the network or the state file.

pub mod archive;
pub mod matcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use archive::{ArchiveFile, Copy, Found, Reader};
use matcher::{Line, Targets};

/// How many malformed lines a scan names (all are counted).
pub const MAX_NAMED_MALFORMED: usize = 1000;
/// How many matching events a file's scan keeps as samples.
pub const SAMPLES_PER_FILE: usize = 5;
/// The version of the JSON view's output (`crate::render::guard_json`) (minor: additive, major: breaking).
pub const FORMAT_VERSION: &str = "1.0";
/// The longest line parsed, in bytes; a longer one is malformed, streamed to the copy
/// unparsed, and never held in memory whole. Segment accepts calls of at most 32 KB.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// How often the progress callback is called at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One matching event, as a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Its line number in the file (from 1).
    pub line: u64,
    /// Its `messageId`, when it has one.
    pub message_id: Option<String>,
}

/// One malformed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The file.
    pub file: PathBuf,
    /// The line number (from 1).
    pub line: u64,
    /// What is wrong with it.
    pub error: String,
}

/// What the scan found in one file.
#[derive(Clone, Debug, Default)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// True when it is gzip.
    pub gzip: bool,
    /// Lines read.
    pub lines: u64,
    /// JSON-object lines (events).
    pub events: u64,
    /// Events that reference a target.
    pub matched: u64,
    /// Malformed lines.
    pub malformed: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Matching events by lower-cased identifier type (an event may count under several).
    pub by_type: BTreeMap<String, u64>,
    /// The first [`SAMPLES_PER_FILE`] matching events.
    pub samples: Vec<Sample>,
    /// Why the file could not be read to its end, when it could not.
    pub error: Option<String>,
    /// Where its filtered copy was written.
    pub copy: Option<PathBuf>,
}

/// What a whole scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Per file, in scan order.
    pub files: Vec<FileScan>,
    /// Files under a directory that were skipped (not archive files).
    pub skipped_files: u64,
    /// The first [`MAX_NAMED_MALFORMED`] malformed lines.
    pub malformed: Vec<Malformed>,
    /// Distinct targets referenced at least once, by lower-cased type.
    pub identifiers_by_type: BTreeMap<String, u64>,
    /// How many targets were looked for.
    pub targets: usize,
    /// The filtered copies' directory.
    pub filtered_dir: Option<PathBuf>,
    /// Wall-clock time of the scan.
    pub elapsed: Duration,
}

impl Scan {
    /// Matching events in all files.
    pub fn matched(&self) -> u64 {
        self.files.iter().map(|f| f.matched).sum()
    }
    /// Events in all files.
    pub fn events(&self) -> u64 {
        self.files.iter().map(|f| f.events).sum()
    }
    /// Malformed lines in all files.
    pub fn malformed_total(&self) -> u64 {
        self.files.iter().map(|f| f.malformed).sum()
    }
    /// Decompressed bytes read in all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
    /// Files that could not be read to their end.
    pub fn unreadable(&self) -> impl Iterator<Item = &FileScan> {
        self.files.iter().filter(|f| f.error.is_some())
    }
    /// Matching events by type over all files.
    pub fn by_type(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for f in &self.files {
            for (k, n) in &f.by_type {
                *all.entry(k.clone()).or_insert(0) += n;
            }
        }
        all
    }
    /// Decompressed MB (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            self.bytes() as f64 / 1e6 / secs
        }
    }
}

/// Progress of a running scan, for periodic lines.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Files finished.
    pub files_done: usize,
    /// Files in total.
    pub files: usize,
    /// Decompressed bytes read so far.
    pub bytes: u64,
    /// Since the scan started.
    pub elapsed: Duration,
}

/// Checks that the filtered copies can go to `dir`: no two files map to one copy, and `dir`
/// is not inside a scanned directory (the copy would be scanned, or overwrite its input).
pub fn check_output(found: &Found, roots: &[PathBuf], dir: &Path) -> anyhow::Result<()> {
    // The folder must be guard's alone: a symlinked one writes elsewhere, and a non-empty one
    // may hold planted links that a copy would follow.
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "--write-filtered `{}` is a symbolic link; give a real folder, so the copies go only where told",
            dir.display()
        ),
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(dir)
                .with_context(|| format!("listing --write-filtered `{}`", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "--write-filtered `{}` is not empty; give a new or empty folder",
                    dir.display()
                );
            }
        }
        Ok(_) => bail!(
            "--write-filtered `{}` is not a folder; give a new or empty folder",
            dir.display()
        ),
        Err(_) => {}
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating --write-filtered directory `{}`", dir.display()))?;
    let out = dir
        .canonicalize()
        .with_context(|| format!("resolving `{}`", dir.display()))?;
    for root in roots.iter().filter(|r| r.is_dir()) {
        let root_abs = root
            .canonicalize()
            .with_context(|| format!("resolving `{}`", root.display()))?;
        if out.starts_with(&root_abs) || root_abs.starts_with(&out) {
            bail!(
                "--write-filtered `{}` overlaps the archive directory `{}`; write the copies somewhere outside it",
                dir.display(),
                root.display()
            );
        }
    }
    let mut seen = std::collections::HashMap::new();
    for f in &found.files {
        if let Some(other) = seen.insert(&f.relative, &f.path) {
            bail!(
                "`{}` and `{}` would both be copied to `{}`; scan them in separate runs",
                crate::text::shown_path(other),
                crate::text::shown_path(&f.path),
                crate::text::shown_path(&dir.join(&f.relative))
            );
        }
    }
    Ok(())
}

/// Scans `found`'s files for events referencing `targets`, writing filtered copies under
/// `write_filtered` when given. Calls `progress` every couple of seconds.
pub fn scan(
    targets: &Targets,
    found: &Found,
    write_filtered: Option<&Path>,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Scan> {
    let start = Instant::now();
    let mut scan = Scan {
        skipped_files: found.skipped,
        targets: targets.len(),
        filtered_dir: write_filtered.map(Path::to_path_buf),
        ..Scan::default()
    };
    let mut hit: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut bytes_before = 0u64;
    let mut last_progress = Instant::now();
    for (i, file) in found.files.iter().enumerate() {
        let scanned = scan_file(
            targets,
            file,
            write_filtered,
            &mut scan.malformed,
            &mut hit,
            &mut |bytes| {
                if last_progress.elapsed() >= PROGRESS_EVERY {
                    last_progress = Instant::now();
                    progress(Progress {
                        files_done: i,
                        files: found.files.len(),
                        bytes: bytes_before + bytes,
                        elapsed: start.elapsed(),
                    });
                }
            },
        )?;
        bytes_before += scanned.bytes;
        scan.files.push(scanned);
    }
    for (kind, _) in hit {
        *scan.identifiers_by_type.entry(kind).or_insert(0) += 1;
    }
    scan.elapsed = start.elapsed();
    Ok(scan)
}

/// How often (in lines) a file scan checks the clock for progress.
const PROGRESS_LINES: u64 = 1 << 16;

fn scan_file(
    targets: &Targets,
    file: &ArchiveFile,
    write_filtered: Option<&Path>,
    malformed: &mut Vec<Malformed>,
    hit: &mut std::collections::HashSet<(String, String)>,
    tick: &mut dyn FnMut(u64),
) -> anyhow::Result<FileScan> {
    let mut scanned = FileScan {
        path: file.path.clone(),
        ..FileScan::default()
    };
    let mut reader = match Reader::open(&file.path) {
        Ok(r) => r,
        Err(e) => {
            scanned.error = Some(format!("{e:#}"));
            return Ok(scanned);
        }
    };
    scanned.gzip = reader.gzip;
    let mut copy = match write_filtered {
        Some(dir) => Some(Copy::create(dir, &file.relative, reader.gzip)?),
        None => None,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let mut spill = |bytes: &[u8]| -> anyhow::Result<()> {
            match copy.as_mut() {
                Some(c) => c.line(bytes),
                None => Ok(()),
            }
        };
        let read = match reader.next_line_bounded(&mut buf, MAX_LINE_BYTES, &mut spill) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(e) => {
                scanned.error = Some(format!("after line {}: {e:#}", scanned.lines));
                break;
            }
        };
        scanned.lines += 1;
        if scanned.lines.is_multiple_of(PROGRESS_LINES) {
            tick(scanned.bytes);
        }
        let line = match read {
            archive::Line::Whole => {
                scanned.bytes += buf.len() as u64;
                targets.classify(strip_line_end(&buf))
            }
            // Already written to the copy as it streamed by; never held in memory whole.
            archive::Line::Oversize(bytes) => {
                scanned.bytes += bytes;
                let error = format!(
                    "a line of {bytes} bytes, over the {MAX_LINE_BYTES}-byte limit (Segment accepts calls of at most 32 KB); not parsed"
                );
                scanned.malformed_line(error, &file.path, malformed);
                continue;
            }
        };
        let keep = scanned.count(line, &file.path, malformed, hit);
        if keep && let Some(copy) = copy.as_mut() {
            copy.line(&buf)?;
        }
    }
    if let Some(copy) = copy {
        if scanned.error.is_some() {
            copy.abandon();
        } else {
            scanned.copy = Some(copy.finish()?);
        }
    }
    Ok(scanned)
}

impl FileScan {
    /// Counts one parsed line in (an event, a hit with its sample and the identifiers it
    /// references, a malformed line); whether it stays in the filtered copy (all but hits).
    fn count(
        &mut self,
        line: Line,
        file: &Path,
        malformed: &mut Vec<Malformed>,
        hit: &mut std::collections::HashSet<(String, String)>,
    ) -> bool {
        match line {
            Line::Blank => true,
            Line::Clean => {
                self.events += 1;
                true
            }
            Line::Malformed(error) => {
                self.malformed_line(error, file, malformed);
                true
            }
            Line::Hit {
                message_id,
                references,
            } => {
                self.events += 1;
                self.matched += 1;
                if self.samples.len() < SAMPLES_PER_FILE {
                    self.samples.push(Sample {
                        line: self.lines,
                        message_id,
                    });
                }
                let mut kinds: Vec<&str> = references.iter().map(|r| r.kind.as_str()).collect();
                kinds.dedup();
                for kind in kinds {
                    *self.by_type.entry(kind.to_owned()).or_insert(0) += 1;
                }
                for r in references {
                    hit.insert((r.kind, r.value));
                }
                false
            }
        }
    }

    /// Counts the current line as malformed, and names it while fewer than
    /// [`MAX_NAMED_MALFORMED`] are named.
    fn malformed_line(&mut self, error: String, file: &Path, malformed: &mut Vec<Malformed>) {
        self.malformed += 1;
        if malformed.len() < MAX_NAMED_MALFORMED {
            malformed.push(Malformed {
                file: file.to_path_buf(),
                line: self.lines,
                error,
            });
        }
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_counts_filters_and_keeps_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).expect("mkdir");
        std::fs::write(
            input.join("a.jsonl"),
            "{\"messageId\":\"m1\",\"userId\":\"u_bad\"}\n{\"messageId\":\"m2\",\"userId\":\"ok\"}\r\nnot json\n\n{\"messageId\":\"m3\",\"traits\":{\"email\":\"BAD@x.com\"}}",
        )
        .expect("write");
        let targets = Targets::new([("user_id", "u_bad"), ("email", "bad@x.com")]);
        let found =
            archive::find(std::slice::from_ref(&input), archive::Links::Skip).expect("find");
        let out = dir.path().join("out");
        check_output(&found, std::slice::from_ref(&input), &out).expect("check");
        let scan = scan(&targets, &found, Some(&out), |_| {}).expect("scan");
        let f = &scan.files[0];
        assert_eq!((f.lines, f.events, f.matched, f.malformed), (5, 3, 2, 1));
        assert_eq!(
            f.samples
                .iter()
                .map(|s| s.message_id.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            ["m1", "m3"]
        );
        assert_eq!(scan.malformed[0].line, 3);
        assert_eq!(
            std::fs::read_to_string(out.join("a.jsonl")).expect("copy"),
            "{\"messageId\":\"m2\",\"userId\":\"ok\"}\r\nnot json\n\n"
        );
        assert_eq!(scan.identifiers_by_type.values().sum::<u64>(), 2);
        // The output directory may not sit inside the input.
        assert!(check_output(&found, std::slice::from_ref(&input), &input.join("x")).is_err());
    }

    #[test]
    fn an_oversize_line_is_malformed_and_kept_whole_in_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.jsonl");
        let huge = format!(
            "{{\"userId\":\"u_bad\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_LINE_BYTES)
        );
        let text = format!("{huge}\n{{\"userId\":\"u_bad\"}}\n");
        std::fs::write(&input, &text).expect("write");
        let targets = Targets::new([("user_id", "u_bad")]);
        let found =
            archive::find(std::slice::from_ref(&input), archive::Links::Skip).expect("find");
        let out = dir.path().join("out");
        check_output(&found, std::slice::from_ref(&input), &out).expect("check");
        let scan = scan(&targets, &found, Some(&out), |_| {}).expect("scan");
        let f = &scan.files[0];
        assert_eq!((f.lines, f.malformed, f.matched), (2, 1, 1));
        assert!(
            scan.malformed[0].error.contains("over the"),
            "{:?}",
            scan.malformed
        );
        assert_eq!(f.bytes, text.len() as u64);
        let copy = std::fs::read_to_string(out.join("in.jsonl")).expect("copy");
        assert_eq!(copy, format!("{huge}\n"));
    }
}
