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

        let mut url = None;
        let written = match &source.csv {
            None => {
                self.problem(
                    at,
                    "this source needs `csv: PATH` (relative to the manifest) or `csv: URL` (in a store, with `sha256:`)",
                );
                None
            }
            Some(c) => match self.text(c, "csv") {
                None => None,
                Some(w) => match source_url(&w) {
                    None => self.inside(c.referenced, w, manifest_dir),
                    Some(Ok(u)) => {
                        url = Some(u);
                        Some(w)
                    }
                    Some(Err(why)) => {
                        self.problem(c.referenced, format!("`csv` URL `{}` {why}", shown(&w)));
                        None
                    }
                },
            },
        };

        let mut remove_columns = Vec::new();
        match &source.remove_columns {
            None => {
                self.problem(
                    at,
                    "this source needs `remove_columns: [COLUMN, ...]` (each header is the identifier type)",
                );
                usable = false;
            }
            Some(cols) if cols.value.is_empty() => {
                self.problem(cols.referenced, "`remove_columns` is empty");
                usable = false;
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
                        usable = false;
                        continue;
                    }
                    match self.column(col, "remove_columns", true) {
                        Some(c) => remove_columns.push(c),
                        None => usable = false,
                    }
                }
            }
        }

        let profile = match (&source.profile_column, &source.profile_type) {
            (None, None) => None,
            (None, Some(t)) => {
                self.problem(t.referenced, "`profile_type` needs a `profile_column`");
                usable = false;
                None
            }
            (Some(col), ty) => {
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
                        usable = false;
                        None
                    }
                }
            }
        };

        let pin = match &source.sha256 {
            None => None,
            Some(h) => {
                let v = &h.value;
                if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some((v.to_ascii_lowercase(), h.referenced))
                } else {
                    self.problem(
                        h.referenced,
                        format!(
                            "`sha256` must be 64 hex digits (the output of `sha256sum FILE`), found `{}`",
                            shown(v)
                        ),
                    );
                    None
                }
            }
        };

        let data_as_of = match &source.data_as_of {
            None => None,
            Some(t) => match crate::text::parse_time(&t.value) {
                Some(unix) => Some(unix),
                None => {
                    self.problem(
                        t.referenced,
                        format!(
                            "`data_as_of` `{}` is not a time; write it like \"2026-12-01T10:00:00Z\" (the newest received_at of the warehouse export)",
                            shown(&t.value)
                        ),
                    );
                    usable = false;
                    None
                }
            },
        };

        if let (Some(u), None) = (&url, &source.sha256) {
            self.problem(
                source.csv.as_ref().map_or(at, |c| c.referenced),
                format!(
                    "CSV source `{}` is in a store, so it needs a `sha256:` pin: its rows stay out of the repository, and the pin is what the reviewer approves; add `sha256: HASH` to this source, HASH being the output of `sha256sum FILE` on the file you uploaded{}",
                    shown(u.as_str()),
                    hash_hint(u)
                ),
            );
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
                let fetch = match self.urls {
                    UrlSources::Offline => {
                        self.unfetched += 1;
                        return Some((
                            SourceFile {
                                path: shown_as,
                                written,
                                url: Some(u),
                                fetched: false,
                                sha256: pinned.clone(),
                                pinned: true,
                                rows: 0,
                                data_as_of,
                            },
                            Vec::new(),
                        ));
                    }
                    UrlSources::Fetch(fetch) => fetch,
                };
                let fetched = match fetch(&u) {
                    Ok(f) => f,
                    Err(e) => {
                        self.problems.push(Diagnostic::new(
                            csv_at,
                            format!(
                                "cannot fetch CSV source `{}`: {}",
                                shown(u.as_str()),
                                shown(&format!("{e:#}"))
                            ),
                        ));
                        return None;
                    }
                };
                // Checked before a single row is read: the pin is what the reviewer approved.
                if fetched.sha256 != *pinned {
                    self.problem(
                        *pin_at,
                        format!(
                            "CSV source `{}` has sha256 {} but the manifest pins {pinned}; the object changed since it was pinned, or the pin is wrong; none of its rows were read (update the pin only if the change is intended)",
                            shown(u.as_str()),
                            fetched.sha256
                        ),
                    );
                    return None;
                }
                (shown_as, Some(fetched.file))
            }
        };
        let spec = csv_source::SourceSpec {
            path: path.clone(),
            csv_at,
            profile,
            remove_columns,
        };
        let mut csv_problems = Capped::new("problems");
        let before = collector.count();
        let mut source_warnings = Capped::new("warnings");
        let read = csv_source::read(
            &spec,
            opened,
            &mut |entry, warnings| collector.add(entry, warnings),
            &mut csv_problems,
            &mut source_warnings,
        );
        // `csv:` open/read failures are located in the manifest; the rest in the CSV.
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
        // A file not read to its end (a record over the cap, a read error) has no hash; its
        // problems are still said.
        let Some(sha256) = read.sha256 else {
            self.problems.extend(in_csv);
            return None;
        };
        if let Some((pinned, pin_at)) = &pin
            && *pinned != sha256
        {
            self.problem(
                *pin_at,
                format!(
                    "`{}` has sha256 {sha256} but the manifest pins {pinned}; the file changed since it was pinned (update the pin only if the change is intended)",
                    shown(&written)
                ),
            );
        }
        if no_entries && in_csv.is_empty() {
            let at = self.at(at);
            self.warnings.push(Diagnostic::new(
                at,
                format!("CSV source `{}` adds no entries", shown(&written)),
            ));
        }
        Some((
            SourceFile {
                path,
                written,
                url,
                fetched: true,
                sha256,
                pinned: pin.is_some(),
                rows: read.rows,
                data_as_of,
            },
            in_csv,
        ))
    }
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
