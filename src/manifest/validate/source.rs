//! Validation of one `sources` item (the `csv` path kept inside the manifest's directory, or a
//! store URL with its required pin; the `remove_columns`, `profile_column`/`profile_type`, the
//! `sha256` pin), then the CSV (a URL source fetched through the caller's hook and checked
//! against its pin first) streamed through [`csv_source`](super::super::csv_source) into the
//! validator's collector.

use std::path::{Component, Path};

use serde_saphyr::Spanned;

use super::{Collector, Validator, type_name_error};
use crate::manifest::csv_source;
use crate::manifest::diagnostic::{Capped, Diagnostic, shown};
use crate::manifest::raw;
use crate::manifest::remote::{UrlSources, source_url};
use crate::manifest::types::SourceFile;

impl Validator<'_> {
    /// A column name from `remove_columns` or `profile_column`, which doubles as a type name.
    fn column(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        is_type: bool,
    ) -> Option<csv_source::NamedColumn> {
        let name = self.text(s, key)?;
        if is_type && let Some(e) = type_name_error(&name) {
            let hint = if key == "profile_column" {
                "; name the type of its values with `profile_type`"
            } else {
                ""
            };
            self.problem(
                s.referenced,
                format!(
                    "column `{}` is used as an identifier type but is not one: {e}{hint}",
                    shown(&name)
                ),
            );
            return None;
        }
        Some(csv_source::NamedColumn {
            name,
            named_at: self.at(s.referenced),
        })
    }

    /// Keeps a `csv:` path only when it stays inside the manifest's directory: no absolute
    /// path, no `..`, no symbolic link out. A manifest comes from a pull request and `plan`
    /// runs in CI, where a path like `../../.env` would otherwise print that file's first line
    /// (as "the header has ...") into the job log.
    fn inside(
        &mut self,
        at: serde_saphyr::Location,
        written: String,
        manifest_dir: &Path,
    ) -> Option<String> {
        let path = Path::new(&written);
        let lexical_escape = path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        let dir = if manifest_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            manifest_dir
        };
        let link_escape = || match (dir.canonicalize(), dir.join(path).canonicalize()) {
            (Ok(dir), Ok(file)) => !file.starts_with(dir),
            // A missing file is reported when it is opened.
            _ => false,
        };
        if lexical_escape || link_escape() {
            self.problem(
                at,
                format!(
                    "`csv` path `{}` leads outside the manifest's directory; put the CSV beside the manifest (or below it) and give its relative path",
                    shown(&written)
                ),
            );
            return None;
        }
        Some(written)
    }

    /// Validates one `sources` item and, when it is usable, streams its CSV. Returns the source
    /// and the problems located in the CSV file.
    pub(super) fn source(
        &mut self,
        raw: &Spanned<raw::RawSource>,
        manifest_dir: &Path,
        collector: &mut Collector,
    ) -> Option<(SourceFile, Vec<Diagnostic>)> {
        let at = raw.referenced;
        let source = &raw.value;
        let mut usable = true;
        let (written, url) = self.csv_key(source, at, manifest_dir);
        let remove_columns = self.remove_columns(source, at, &mut usable);
        let profile = self.profile(source, &mut usable);
        let pin = self.pin(source);
        let data_as_of = self.data_as_of(source, &mut usable);
        if let (Some(u), None) = (&url, &source.sha256) {
            self.pin_required(u, source.csv.as_ref().map_or(at, |c| c.referenced));
            usable = false;
        }

        let written = written?;
        let csv_at = self.at(source.csv.as_ref().map_or(at, |c| c.referenced));
        if !usable {
            return None;
        }
        let (path, opened) = match (url.clone(), &pin) {
            (None, _) => (manifest_dir.join(&written), None),
            // A URL source without a valid pin was refused above.
            (Some(_), None) => return None,
            (Some(u), Some((pinned, pin_at))) => {
                let shown_as = std::path::PathBuf::from(u.as_str());
                let UrlSources::Fetch(fetch) = self.urls else {
                    self.unfetched += 1;
                    let offline = SourceFile {
                        path: shown_as,
                        written,
                        url: Some(u),
                        fetched: false,
                        sha256: pinned.clone(),
                        pinned: true,
                        rows: 0,
                        data_as_of,
                    };
                    return Some((offline, Vec::new()));
                };
                let file = self.fetch_pinned(fetch, &u, (pinned, *pin_at), &csv_at)?;
                (shown_as, Some(file))
            }
        };
        let spec = csv_source::SourceSpec {
            path: path.clone(),
            csv_at,
            profile,
            remove_columns,
        };
        let read = self.read_csv(&spec, opened, collector)?;
        self.check_read(&read, pin.as_ref(), &written, at);
        Some((
            SourceFile {
                path,
                written,
                url,
                fetched: true,
                sha256: read.sha256,
                pinned: pin.is_some(),
                rows: read.rows,
                data_as_of,
            },
            read.in_csv,
        ))
    }

    /// The `csv` key: the path as written (kept only inside the manifest's directory), and the
    /// URL when it names a store.
    fn csv_key(
        &mut self,
        source: &raw::RawSource,
        at: serde_saphyr::Location,
        manifest_dir: &Path,
    ) -> (Option<String>, Option<url::Url>) {
        let Some(c) = &source.csv else {
            self.problem(
                at,
                "this source needs `csv: PATH` (relative to the manifest) or `csv: URL` (in a store, with `sha256:`)",
            );
            return (None, None);
        };
        let Some(w) = self.text(c, "csv") else {
            return (None, None);
        };
        match source_url(&w) {
            None => (self.inside(c.referenced, w, manifest_dir), None),
            Some(Ok(u)) => (Some(w), Some(u)),
            Some(Err(why)) => {
                self.problem(c.referenced, format!("`csv` URL `{}` {why}", shown(&w)));
                (None, None)
            }
        }
    }

    /// The `remove_columns` key: each column once, each a valid identifier type. Clears
    /// `usable` on any problem.
    fn remove_columns(
        &mut self,
        source: &raw::RawSource,
        at: serde_saphyr::Location,
        usable: &mut bool,
    ) -> Vec<csv_source::NamedColumn> {
        let mut remove_columns = Vec::new();
        match &source.remove_columns {
            None => {
                self.problem(
                    at,
                    "this source needs `remove_columns: [COLUMN, ...]` (each header is the identifier type)",
                );
                *usable = false;
            }
            Some(cols) if cols.value.is_empty() => {
                self.problem(cols.referenced, "`remove_columns` is empty");
                *usable = false;
            }
            Some(cols) => {
                for (i, col) in cols.value.iter().enumerate() {
                    if cols.value[..i].iter().any(|c| c.value == col.value) {
                        self.problem(
                            col.referenced,
                            format!(
                                "column `{}` is listed twice in `remove_columns`",
                                shown(&col.value)
                            ),
                        );
                        *usable = false;
                        continue;
                    }
                    match self.column(col, "remove_columns", true) {
                        Some(c) => remove_columns.push(c),
                        None => *usable = false,
                    }
                }
            }
        }
        remove_columns
    }

    /// The `profile_column` and `profile_type` keys: the column naming each row's profile and
    /// the identifier type of its values (the column's name when no type is given). Clears
    /// `usable` on any problem.
    fn profile(
        &mut self,
        source: &raw::RawSource,
        usable: &mut bool,
    ) -> Option<csv_source::ProfileColumn> {
        let (col, ty) = match (&source.profile_column, &source.profile_type) {
            (None, None) => return None,
            (None, Some(t)) => {
                self.problem(t.referenced, "`profile_type` needs a `profile_column`");
                *usable = false;
                return None;
            }
            (Some(col), ty) => (col, ty),
        };
        let kind = match ty {
            None => Some(col.value.clone()),
            Some(t) => match self.text(t, "profile_type") {
                Some(k) => match type_name_error(&k) {
                    None => Some(k),
                    Some(e) => {
                        self.problem(
                            t.referenced,
                            format!(
                                "`profile_type` `{}` is not an identifier type: {e}",
                                shown(&k)
                            ),
                        );
                        None
                    }
                },
                None => None,
            },
        };
        let column = self.column(col, "profile_column", ty.is_none());
        match (column, kind) {
            (Some(column), Some(kind)) => Some(csv_source::ProfileColumn { column, kind }),
            _ => {
                *usable = false;
                None
            }
        }
    }

    /// The `sha256` pin, lowercased, and where it is written, when it is 64 hex digits.
    fn pin(&mut self, source: &raw::RawSource) -> Option<(String, serde_saphyr::Location)> {
        let h = source.sha256.as_ref()?;
        let v = &h.value;
        if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some((v.to_ascii_lowercase(), h.referenced));
        }
        self.problem(
            h.referenced,
            format!(
                "`sha256` must be 64 hex digits (the output of `sha256sum FILE`), found `{}`",
                shown(v)
            ),
        );
        None
    }

    /// The `data_as_of` key as a unix time. Clears `usable` when it is not a time.
    fn data_as_of(&mut self, source: &raw::RawSource, usable: &mut bool) -> Option<i64> {
        let t = source.data_as_of.as_ref()?;
        let unix = crate::text::parse_time(&t.value);
        if unix.is_none() {
            self.problem(
                t.referenced,
                format!(
                    "`data_as_of` `{}` is not a time; write it like \"2026-12-01T10:00:00Z\" (the newest received_at of the warehouse export)",
                    shown(&t.value)
                ),
            );
            *usable = false;
        }
        unix
    }

    /// The problem of a CSV source in a store without a `sha256:` pin, at `at`.
    fn pin_required(&mut self, url: &url::Url, at: serde_saphyr::Location) {
        self.problem(
            at,
            format!(
                "CSV source `{}` is in a store, so it needs a `sha256:` pin: its rows stay out of the repository, and the pin is what the reviewer approves; add `sha256: HASH` to this source, HASH being the output of `sha256sum FILE` on the file you uploaded{}",
                shown(url.as_str()),
                hash_hint(url)
            ),
        );
    }

    /// Fetches a URL source through `fetch` and checks it against its pin before a single row
    /// is read: the pin is what the reviewer approved. The fetched file, rewound.
    fn fetch_pinned(
        &mut self,
        fetch: &dyn Fn(&url::Url) -> anyhow::Result<crate::manifest::remote::FetchedCsv>,
        url: &url::Url,
        (pinned, pin_at): (&str, serde_saphyr::Location),
        csv_at: &crate::manifest::diagnostic::Location,
    ) -> Option<std::fs::File> {
        let fetched = match fetch(url) {
            Ok(f) => f,
            Err(e) => {
                self.problems.push(Diagnostic::new(
                    csv_at.clone(),
                    format!(
                        "cannot fetch CSV source `{}`: {}",
                        shown(url.as_str()),
                        shown(&format!("{e:#}"))
                    ),
                ));
                return None;
            }
        };
        if fetched.sha256 != pinned {
            self.problem(
                pin_at,
                format!(
                    "CSV source `{}` has sha256 {} but the manifest pins {pinned}; the object changed since it was pinned, or the pin is wrong; none of its rows were read (update the pin only if the change is intended)",
                    shown(url.as_str()),
                    fetched.sha256
                ),
            );
            return None;
        }
        Some(fetched.file)
    }

    /// Streams the CSV of `spec` (or `opened`) into `collector`. Problems located in the
    /// manifest (`csv:` open and read failures) join the validator's; the rest are returned
    /// apart. `None` when the file was not read to its end (a record over the cap, a read
    /// error): it has no hash, and its problems are all said.
    fn read_csv(
        &mut self,
        spec: &csv_source::SourceSpec,
        opened: Option<std::fs::File>,
        collector: &mut Collector,
    ) -> Option<CsvRead> {
        let mut csv_problems = Capped::new("problems");
        let before = collector.count();
        let mut source_warnings = Capped::new("warnings");
        let read = csv_source::read(
            spec,
            opened,
            &mut |entry, warnings| collector.add(entry, warnings),
            &mut csv_problems,
            &mut source_warnings,
        );
        let mut in_csv = Vec::new();
        for d in csv_problems.finish() {
            if d.location.file == self.path {
                self.problems.push(d);
            } else {
                in_csv.push(d);
            }
        }
        let no_entries = collector.count() == before;
        self.source_warnings.extend(source_warnings.finish());
        let Some(sha256) = read.sha256 else {
            self.problems.extend(in_csv);
            return None;
        };
        Some(CsvRead {
            sha256,
            rows: read.rows,
            in_csv,
            no_entries,
        })
    }

    /// What a CSV read to its end still owes: its hash against the pin, and a warning when it
    /// added no entries and has no problem of its own to explain why.
    fn check_read(
        &mut self,
        read: &CsvRead,
        pin: Option<&(String, serde_saphyr::Location)>,
        written: &str,
        at: serde_saphyr::Location,
    ) {
        if let Some((pinned, pin_at)) = pin
            && *pinned != read.sha256
        {
            self.problem(
                *pin_at,
                format!(
                    "`{}` has sha256 {} but the manifest pins {pinned}; the file changed since it was pinned (update the pin only if the change is intended)",
                    shown(written),
                    read.sha256
                ),
            );
        }
        if read.no_entries && read.in_csv.is_empty() {
            let at = self.at(at);
            self.warnings.push(Diagnostic::new(
                at,
                format!("CSV source `{}` adds no entries", shown(written)),
            ));
        }
    }
}

/// A CSV source read to its end.
struct CsvRead {
    /// Lowercase hex sha256 of every byte of the file.
    sha256: String,
    /// Data rows read (the header excluded).
    rows: u64,
    /// The problems located in the CSV file.
    in_csv: Vec<Diagnostic>,
    /// Whether it added no entries to the collector.
    no_entries: bool,
}

/// How to hash an object already in the store, for the message asking for a pin.
fn hash_hint(url: &url::Url) -> String {
    let shown_url = shown(url.as_str());
    match url.scheme() {
        "s3" => format!(" (or of `aws s3 cp {shown_url} - | sha256sum`)"),
        "gs" => format!(" (or of `gcloud storage cat {shown_url} | sha256sum`)"),
        "file" => format!(" (here: `sha256sum {}`)", shown(url.path())),
        _ => String::new(),
    }
}
