//! Streams one CSV source: header lookup, one pass over the rows, the file's sha256 computed
//! from the same bytes the parser reads (so a file is read exactly once and the hash is of what
//! was parsed). Rows become [`Entry`] values handed to a sink; problems carry the CSV's
//! file:line:column (column = 1-based field index). This module does not decide what the source
//! means — the validated [`SourceSpec`] built by [`super`] says which columns to read and how.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::check::lookup_case_warning;
use super::diagnostic::{Capped, Diagnostic, Location, is_forbidden_control, shown};
use super::types::Entry;
use crate::model::{Identifier, Lookup};

/// What to read from a CSV, already validated against the manifest.
#[derive(Debug)]
pub(super) struct SourceSpec {
    /// The file, resolved against the manifest's directory.
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
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            offset: 0,
            newlines: VecDeque::new(),
            lines_passed: 0,
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

/// Finishes hashing: reads whatever the CSV parser left unread.
fn finish_hash<R: Read>(mut reader: HashingReader<R>) -> io::Result<String> {
    io::copy(&mut reader, &mut io::sink())?;
    Ok(hex::encode(reader.hasher.finalize()))
}

/// Reads `spec`'s file, passing each entry to `sink`. Problems go to `problems` (CSV-located,
/// capped by the caller's [`Capped`]), warnings to `warnings`.
pub(super) fn read(
    spec: &SourceSpec,
    sink: &mut dyn FnMut(Entry, &mut Capped),
    problems: &mut Capped,
    warnings: &mut Capped,
) -> SourceRead {
    let mut out = SourceRead::default();
    let file = match crate::bounded::open_regular(&spec.path, "CSV source") {
        Ok(f) => f,
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
            return out;
        }
    };
    let hashing = HashingReader::new(file);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(hashing);
    let at = |line: u64, column: u64| Location::new(spec.path.clone(), line, column);
    let io_problem = |e: &dyn std::fmt::Display| {
        Diagnostic::new(
            spec.csv_at.clone(),
            format!("cannot read CSV source `{}`: {e}", shown_path(&spec.path)),
        )
    };

    let mut header = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => {
            problems.push(Diagnostic::new(
                at(1, 1),
                "the CSV file is empty; expected a header line naming its columns",
            ));
            out.sha256 = finish_hash(rdr.into_inner()).ok();
            return out;
        }
        Err(e) => {
            problems.push(io_problem(&e));
            return out;
        }
    }
    let header_line = rdr
        .get_mut()
        .line_at(header.position().map_or(0, csv::Position::byte));
    let Some(columns) = find_columns(spec, &header, header_line, problems) else {
        match finish_hash(rdr.into_inner()) {
            Ok(h) => out.sha256 = Some(h),
            Err(e) => problems.push(io_problem(&e)),
        }
        return out;
    };

    let mut record = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                out.rows += 1;
                let line = rdr
                    .get_mut()
                    .line_at(record.position().map_or(0, csv::Position::byte));
                read_row(spec, &columns, &record, line, sink, problems, warnings);
            }
            Err(e) => {
                if let csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } = e.kind()
                {
                    out.rows += 1;
                    let line = rdr
                        .get_mut()
                        .line_at(pos.as_ref().map_or(0, csv::Position::byte));
                    problems.push(Diagnostic::new(
                        at(line, 1),
                        format!(
                            "this row has {len} field{} but the header (line {header_line}) has {expected_len}",
                            if *len == 1 { "" } else { "s" }
                        ),
                    ));
                } else {
                    problems.push(io_problem(&e));
                    return out;
                }
            }
        }
    }
    match finish_hash(rdr.into_inner()) {
        Ok(h) => out.sha256 = Some(h),
        Err(e) => problems.push(io_problem(&e)),
    }
    out
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
    // A cell as text, or a problem: invalid UTF-8 and control characters are refused.
    let cell = |index: usize, problems: &mut Capped| -> Option<&str> {
        let bytes = record.get(index).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(bytes) else {
            problems.push(Diagnostic::new(
                at(index),
                format!(
                    "this cell is not valid UTF-8: `{}`",
                    shown(&String::from_utf8_lossy(bytes))
                ),
            ));
            return None;
        };
        if let Some(problem) = super::check::too_long(text) {
            problems.push(Diagnostic::new(at(index), problem));
            return None;
        }
        if text.chars().any(is_forbidden_control) {
            problems.push(Diagnostic::new(
                at(index),
                format!(
                    "`{}` holds a control character; no identifier does (fix the export)",
                    shown(text)
                ),
            ));
            return None;
        }
        Some(text)
    };

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
