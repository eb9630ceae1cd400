//! Streams one CSV source: header lookup, one pass over the rows, the file's sha256 computed
//! from the same bytes the parser reads (so a file is read exactly once and the hash is of what
//! was parsed). Rows become [`Entry`] values handed to a sink; problems carry the CSV's
//! file:line:column (column = 1-based field index). This module does not decide what the source
//! means — the validated [`SourceSpec`] built by [`super`] says which columns to read and how.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::check::lookup_case_warning;
use super::diagnostic::{Capped, Diagnostic, Location, is_forbidden_control, shown};
use super::types::Entry;
use crate::model::{Identifier, Lookup};

/// Longest CSV record (the header, or one row with any quoted line breaks in it) accepted, in
/// bytes. A real row is a few identifiers; a longer record is a file that is not a CSV export,
/// or a quote left open that runs a record on to the end of the file. The parser holds at most
/// this much (plus its `CSV_READ_AHEAD`) of one record, so a file of one endless line costs
/// no more memory than a good one.
pub const MAX_CSV_RECORD_BYTES: u64 = 1 << 20;
/// The CSV parser's read buffer: how far it may read past the record it is in.
const CSV_READ_AHEAD: usize = 8 * 1024;

/// What to read from a CSV, already validated against the manifest.
#[derive(Debug)]
pub(super) struct SourceSpec {
    /// The file, resolved against the manifest's directory; for a URL source, the URL, which
    /// problems in its rows name (its bytes are read from the fetched copy).
    pub path: PathBuf,
    /// Where `csv:` is in the manifest (for open errors).
    pub csv_at: Location,
    /// The column holding each row's profile lookup, if any.
    pub profile: Option<ProfileColumn>,
    /// The columns whose cells are identifiers to remove; the name the manifest gives (the
    /// header may differ in case) is the identifier type.
    pub remove_columns: Vec<NamedColumn>,
}

/// A column named in the manifest, with where it was named.
#[derive(Debug)]
pub(super) struct NamedColumn {
    /// The header text to find.
    pub name: String,
    /// Where the manifest names it.
    pub named_at: Location,
}

/// The profile column and the identifier type of its cells.
#[derive(Debug)]
pub(super) struct ProfileColumn {
    /// The column.
    pub column: NamedColumn,
    /// The identifier type of the cells; `segment_id` means Segment profile ids.
    pub kind: String,
}

/// What one pass over a source produced.
#[derive(Debug, Default)]
pub(super) struct SourceRead {
    /// Lowercase hex sha256 of every byte of the file; `None` when it could not be read to the end.
    pub sha256: Option<String>,
    /// Data rows read (the header excluded).
    pub rows: u64,
}

/// Wraps a reader, feeds every byte it yields to sha256 and notes where its line breaks are.
///
/// The line numbers come from here, not from `csv::Position::line`, because the csv crate
/// counts the `\n` of a CRLF terminator into the *next* record's read, so every record of a
/// CRLF file after the first would be reported one line early. A record's true line is
/// 1 + the number of `\n` bytes at or before its start offset. Only the breaks the parser has
/// not reached yet are kept, so memory stays bounded by the parser's read-ahead.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read so far.
    offset: u64,
    /// Offsets of `\n` bytes read but not yet passed by [`Self::line_at`].
    newlines: VecDeque<u64>,
    /// `\n` bytes already passed.
    lines_passed: u64,
    /// Where the record the parser is in started (where the previous one ended).
    record_start: u64,
    /// Set, to the record's first line, when that record ran past [`MAX_CSV_RECORD_BYTES`]
    /// before the parser finished it; reads then fail.
    over_limit: Option<u64>,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            offset: 0,
            newlines: VecDeque::new(),
            lines_passed: 0,
            record_start: 0,
            over_limit: None,
        }
    }

    /// The 1-based line of a record starting at byte `start`; starts must not decrease.
    fn line_at(&mut self, start: u64) -> u64 {
        while self.newlines.front().is_some_and(|&nl| nl <= start) {
            self.newlines.pop_front();
            self.lines_passed += 1;
        }
        self.lines_passed + 1
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Everything read since the record started, less the parser's read-ahead, is in that
        // record: past the cap, stop feeding it.
        if self.offset - self.record_start > MAX_CSV_RECORD_BYTES + CSV_READ_AHEAD as u64 {
            let line = self.line_at(self.record_start);
            self.over_limit = Some(line);
            return Err(io::Error::other(format!(
                "the CSV record at line {line} is over the {MAX_CSV_RECORD_BYTES}-byte limit"
            )));
        }
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        self.hasher.update(chunk);
        let base = self.offset;
        self.newlines.extend(
            chunk
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| base + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

/// A CSV parser over a [`HashingReader`], with the record cap's read-ahead.
fn csv_reader<R: Read>(
    inner: R,
    builder: &mut csv::ReaderBuilder,
) -> csv::Reader<HashingReader<R>> {
    builder
        .buffer_capacity(CSV_READ_AHEAD)
        .from_reader(HashingReader::new(inner))
}

/// Why [`next_record`] stopped.
enum RecordError {
    /// The record starting at this line is over [`MAX_CSV_RECORD_BYTES`].
    TooLong { line: u64 },
    /// The parser's error (a read error, or a row of the wrong length).
    Csv(csv::Error),
}

/// Reads the next record into `record` (`false` at the end), refusing one over
/// [`MAX_CSV_RECORD_BYTES`]: while it is read (see [`HashingReader`]), or once read, when it
/// is over by less than the parser's read-ahead.
fn next_record<R: Read>(
    rdr: &mut csv::Reader<HashingReader<R>>,
    record: &mut csv::ByteRecord,
) -> Result<bool, RecordError> {
    let result = rdr.read_byte_record(record);
    let end = rdr.position().byte();
    let inner = rdr.get_mut();
    if let Some(line) = inner.over_limit {
        return Err(RecordError::TooLong { line });
    }
    let start = inner.record_start;
    inner.record_start = end;
    if end - start > MAX_CSV_RECORD_BYTES {
        return Err(RecordError::TooLong {
            line: inner.line_at(start),
        });
    }
    result.map_err(RecordError::Csv)
}

/// What a record over [`MAX_CSV_RECORD_BYTES`] is told; `header` when it is the first.
fn too_long_message(header: bool) -> String {
    let what = if header {
        "the header line"
    } else {
        "this row"
    };
    format!(
        "{what} is over the {MAX_CSV_RECORD_BYTES}-byte (1 MiB) limit for one CSV record; \
         check that the file is a CSV export (a quote left open runs a row on to the end of the file)"
    )
}

/// Finishes hashing: reads whatever the CSV parser left unread.
fn finish_hash<R: Read>(mut reader: HashingReader<R>) -> io::Result<String> {
    io::copy(&mut reader, &mut io::sink())?;
    Ok(hex::encode(reader.hasher.finalize()))
}

/// Reads `spec`'s file (or `opened`, a file already open and rewound, such as a URL source's
/// fetched copy, which `spec.path` then only names), passing each entry to `sink`. Problems go
/// to `problems` (CSV-located, capped by the caller's [`Capped`]), warnings to `warnings`.
pub(super) fn read(
    spec: &SourceSpec,
    opened: Option<std::fs::File>,
    sink: &mut dyn FnMut(Entry, &mut Capped),
    problems: &mut Capped,
    warnings: &mut Capped,
) -> SourceRead {
    let mut out = SourceRead::default();
    let Some(file) = open_source(spec, opened, problems) else {
        return out;
    };
    let mut rdr = csv_reader(
        file,
        csv::ReaderBuilder::new().has_headers(false).flexible(false),
    );
    let at = |line: u64, column: u64| Location::new(spec.path.clone(), line, column);
    let io_problem = |e: &dyn std::fmt::Display| io_problem(spec, e);

    let mut header = csv::ByteRecord::new();
    match next_record(&mut rdr, &mut header) {
        Ok(true) => {}
        Err(RecordError::TooLong { line }) => {
            problems.push(Diagnostic::new(at(line, 1), too_long_message(true)));
            return out;
        }
        Ok(false) => {
            problems.push(Diagnostic::new(
                at(1, 1),
                "the CSV file is empty; expected a header line naming its columns",
            ));
            out.sha256 = finish_hash(rdr.into_inner()).ok();
            return out;
        }
        Err(RecordError::Csv(e)) => {
            problems.push(io_problem(&e));
            return out;
        }
    }
    let header_line = rdr
        .get_mut()
        .line_at(header.position().map_or(0, csv::Position::byte));
    let Some(columns) = find_columns(spec, &header, header_line, problems) else {
        out.sha256 = hash_rest(rdr, spec, problems);
        return out;
    };

    let mut record = csv::ByteRecord::new();
    loop {
        match next_record(&mut rdr, &mut record) {
            Ok(false) => break,
            Err(RecordError::TooLong { line }) => {
                problems.push(Diagnostic::new(at(line, 1), too_long_message(false)));
                return out;
            }
            Ok(true) => {
                out.rows += 1;
                let line = rdr
                    .get_mut()
                    .line_at(record.position().map_or(0, csv::Position::byte));
                read_row(spec, &columns, &record, line, sink, problems, warnings);
            }
            Err(RecordError::Csv(e)) => match unequal_lengths(&e, &mut rdr, spec, header_line) {
                Some(problem) => {
                    out.rows += 1;
                    problems.push(problem);
                }
                None => {
                    problems.push(io_problem(&e));
                    return out;
                }
            },
        }
    }
    out.sha256 = hash_rest(rdr, spec, problems);
    out
}

/// The CSV source's file: `opened`, or `spec.path` opened as a regular file. `None` once
/// the problem is said.
fn open_source(
    spec: &SourceSpec,
    opened: Option<std::fs::File>,
    problems: &mut Capped,
) -> Option<std::fs::File> {
    let opened = match opened {
        Some(file) => Ok(file),
        None => crate::bounded::open_regular(&spec.path, "CSV source"),
    };
    match opened {
        Ok(f) => Some(f),
        Err(e) => {
            let why = e
                .chain()
                .last()
                .map(ToString::to_string)
                .unwrap_or_default();
            problems.push(Diagnostic::new(
                spec.csv_at.clone(),
                format!("cannot open CSV source `{}`: {why}", shown_path(&spec.path)),
            ));
            None
        }
    }
}

/// The sha256 of the whole file, once the rest the parser left unread is hashed; `None`
/// once a read error is said.
fn hash_rest<R: Read>(
    rdr: csv::Reader<HashingReader<R>>,
    spec: &SourceSpec,
    problems: &mut Capped,
) -> Option<String> {
    match finish_hash(rdr.into_inner()) {
        Ok(h) => Some(h),
        Err(e) => {
            problems.push(io_problem(spec, &e));
            None
        }
    }
}

/// A read error of the CSV source, located at its `csv:` key in the manifest.
fn io_problem(spec: &SourceSpec, e: &dyn std::fmt::Display) -> Diagnostic {
    Diagnostic::new(
        spec.csv_at.clone(),
        format!("cannot read CSV source `{}`: {e}", shown_path(&spec.path)),
    )
}

/// The problem of a row whose length is not the header's, at its line; `None` for any other
/// CSV error.
fn unequal_lengths<R: Read>(
    e: &csv::Error,
    rdr: &mut csv::Reader<HashingReader<R>>,
    spec: &SourceSpec,
    header_line: u64,
) -> Option<Diagnostic> {
    let csv::ErrorKind::UnequalLengths {
        pos,
        expected_len,
        len,
    } = e.kind()
    else {
        return None;
    };
    let line = rdr
        .get_mut()
        .line_at(pos.as_ref().map_or(0, csv::Position::byte));
    Some(Diagnostic::new(
        Location::new(spec.path.clone(), line, 1),
        format!(
            "this row has {len} field{} but the header (line {header_line}) has {expected_len}",
            if *len == 1 { "" } else { "s" }
        ),
    ))
}

/// The header (a leading byte-order mark dropped) and the number of data rows of the CSV at
/// `path`, for `init`, which checks the columns it is given before it writes a manifest. Read
/// as `read` reads a source: a regular file only, no record over [`MAX_CSV_RECORD_BYTES`];
/// rows may differ in length here.
///
/// With `time_column`, the oldest time (Unix seconds, [`crate::text::parse_time`]) among the
/// non-empty cells of the column of that name (matched in any case) is returned too: the
/// `data_as_of` of a warehouse export. A cell that is not a time is an error naming its line.
pub fn header_and_rows(
    path: &Path,
    time_column: Option<&str>,
) -> anyhow::Result<(Vec<String>, u64, Option<i64>)> {
    use anyhow::Context as _;
    let file = crate::bounded::open_regular(path, "CSV")?;
    let mut rdr = csv_reader(
        file,
        csv::ReaderBuilder::new().has_headers(false).flexible(true),
    );
    let failed = |rdr: &mut csv::Reader<HashingReader<std::fs::File>>,
                  e: RecordError,
                  header: bool| match e {
        RecordError::TooLong { line } => anyhow::anyhow!(
            "`{}` line {line}: {}",
            path.display(),
            too_long_message(header)
        ),
        RecordError::Csv(e) => {
            let at = rdr.position().byte();
            let line = rdr.get_mut().line_at(at);
            anyhow::Error::new(e)
                .context(format!("reading CSV `{}` near line {line}", path.display()))
        }
    };
    let mut record = csv::ByteRecord::new();
    if !next_record(&mut rdr, &mut record).map_err(|e| failed(&mut rdr, e, true))? {
        anyhow::bail!(
            "`{}` is empty; expected a header line naming its columns",
            path.display()
        );
    }
    let header = csv::StringRecord::from_byte_record(record.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading the header of `{}`", path.display()))?;
    let header = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                h.trim_start_matches('\u{feff}').to_owned()
            } else {
                h.to_owned()
            }
        })
        .collect();
    let header: Vec<String> = header;
    let time_at = time_column.and_then(|name| {
        header
            .iter()
            .position(|h| h == name)
            .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
    });
    let mut oldest: Option<i64> = None;
    let mut rows = 0u64;
    while next_record(&mut rdr, &mut record).map_err(|e| failed(&mut rdr, e, false))? {
        let line = |rdr: &mut csv::Reader<HashingReader<std::fs::File>>| {
            rdr.get_mut()
                .line_at(record.position().map_or(0, csv::Position::byte))
        };
        let text = match csv::StringRecord::from_byte_record(record.clone()) {
            Ok(text) => text,
            Err(e) => anyhow::bail!("`{}` line {}: {e}", path.display(), line(&mut rdr)),
        };
        rows += 1;
        if let Some(cell) = time_at.and_then(|i| text.get(i)).filter(|c| !c.is_empty()) {
            let Some(at) = crate::text::parse_time(cell) else {
                anyhow::bail!(
                    "`{}` line {}: `{}` in the `{}` column is not a time (like 2026-12-01 10:00:00 or 2026-12-01T10:00:00Z); export the column as the warehouse's timestamp text, or drop the column",
                    path.display(),
                    line(&mut rdr),
                    crate::text::clean(cell),
                    crate::text::clean(&header[time_at.unwrap_or_default()])
                );
            };
            oldest = Some(oldest.map_or(at, |old| old.min(at)));
        }
    }
    Ok((header, rows, oldest))
}

/// Field indexes (0-based) of the profile column and of each remove column.
struct Columns {
    profile: Option<usize>,
    remove: Vec<(usize, String)>,
}

/// Finds every named column in the header; reports each missing or ambiguous one.
fn find_columns(
    spec: &SourceSpec,
    header: &csv::ByteRecord,
    header_line: u64,
    problems: &mut Capped,
) -> Option<Columns> {
    let at = |column: u64| Location::new(spec.path.clone(), header_line, column);
    let names: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut ok = true;
    let mut find = |col: &NamedColumn, role: &str| -> Option<usize> {
        // The exact name, else the name in any case: warehouses such as Snowflake export
        // their column names upper-case (`USER_ID`), while the type is written lower-case.
        let mut hits: Vec<usize> = (0..names.len()).filter(|&i| names[i] == col.name).collect();
        if hits.is_empty() {
            hits = (0..names.len())
                .filter(|&i| names[i].eq_ignore_ascii_case(&col.name))
                .collect();
        }
        match hits.as_slice() {
            [i] => Some(*i),
            [] => {
                let found = names
                    .iter()
                    .map(|n| format!("`{}`", shown(n)))
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(Diagnostic::new(
                    at(1),
                    format!(
                        "column `{}` (the {role} named at {}) is not in the header line; the header has {found}",
                        shown(&col.name),
                        col.named_at
                    ),
                ));
                ok = false;
                None
            }
            many => {
                let fields = many
                    .iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(Diagnostic::new(
                    at(many[0] as u64 + 1),
                    format!(
                        "column `{}` (the {role} named at {}) appears more than once in the header line (fields {fields})",
                        shown(&col.name),
                        col.named_at
                    ),
                ));
                ok = false;
                None
            }
        }
    };
    let profile = spec
        .profile
        .as_ref()
        .map(|p| find(&p.column, "`profile_column`"));
    let remove: Vec<Option<(usize, String)>> = spec
        .remove_columns
        .iter()
        .map(|c| find(c, "`remove_columns` entry").map(|i| (i, c.name.clone())))
        .collect();
    if !ok {
        return None;
    }
    Some(Columns {
        profile: profile.flatten(),
        remove: remove.into_iter().flatten().collect(),
    })
}

/// Cell `index` of `record` as text, or a problem at `at()` (made only then): invalid UTF-8,
/// a value over the length limit and control characters are refused.
fn cell_text<'r>(
    record: &'r csv::ByteRecord,
    index: usize,
    at: impl Fn() -> Location,
    problems: &mut Capped,
) -> Option<&'r str> {
    let bytes = record.get(index).unwrap_or_default();
    let Ok(text) = std::str::from_utf8(bytes) else {
        problems.push(Diagnostic::new(
            at(),
            format!(
                "this cell is not valid UTF-8: `{}`",
                shown(&String::from_utf8_lossy(bytes))
            ),
        ));
        return None;
    };
    if let Some(problem) = super::check::too_long(text) {
        problems.push(Diagnostic::new(at(), problem));
        return None;
    }
    if text.chars().any(is_forbidden_control) {
        problems.push(Diagnostic::new(
            at(),
            format!(
                "`{}` holds a control character; no identifier does (fix the export)",
                shown(text)
            ),
        ));
        return None;
    }
    Some(text)
}

/// Turns one row into entries.
fn read_row(
    spec: &SourceSpec,
    columns: &Columns,
    record: &csv::ByteRecord,
    line: u64,
    sink: &mut dyn FnMut(Entry, &mut Capped),
    problems: &mut Capped,
    warnings: &mut Capped,
) {
    let at = |index: usize| Location::new(spec.path.clone(), line, index as u64 + 1);
    let cell =
        |index: usize, problems: &mut Capped| cell_text(record, index, || at(index), problems);

    let mut removes: Vec<(usize, &str, &str)> = Vec::new();
    let mut bad = false;
    for (index, kind) in &columns.remove {
        match cell(*index, problems) {
            Some("") => {}
            Some(value) => removes.push((*index, kind, value)),
            None => bad = true,
        }
    }
    let lookup = match (&spec.profile, columns.profile) {
        (Some(profile), Some(index)) => match cell(index, problems) {
            None => return,
            Some("") if removes.is_empty() => return,
            Some("") => {
                problems.push(Diagnostic::new(
                    at(index),
                    format!(
                        "the profile cell (column `{}`) is empty, but this row removes identifiers; fill it in or leave the row out",
                        shown(&profile.column.name)
                    ),
                ));
                return;
            }
            Some(value) => {
                let lookup = if profile.kind == "segment_id" {
                    Lookup::SegmentId(value.to_owned())
                } else {
                    Lookup::External(Identifier::new(profile.kind.clone(), value))
                };
                if !removes.is_empty() {
                    lookup_case_warning(&lookup, &at(index), warnings);
                }
                Some(lookup)
            }
        },
        _ => None,
    };
    if bad {
        return;
    }
    for (index, kind, value) in removes {
        let identifier = Identifier::new(kind, value);
        let origin = at(index);
        sink(
            Entry {
                lookup: lookup.clone(),
                identifier,
                origin,
            },
            warnings,
        );
    }
}

/// A path made safe to print.
fn shown_path(path: &std::path::Path) -> String {
    shown(&path.display().to_string())
}
