//! Where a manifest problem is ([`Location`]), what it is ([`Diagnostic`]) and the error
//! [`load`](super::load) returns ([`ManifestError`]). Also the one helper that makes user-supplied
//! text safe to print ([`shown`]): every value quoted in a message goes through it, so a control
//! character in a manifest or CSV can never reach a terminal raw. And the per-file cap on how
//! many diagnostics are listed (`Capped`).

use std::fmt;
use std::path::PathBuf;

/// A position in a manifest or CSV file: 1-based line and column.
///
/// For YAML the column counts characters; for CSV it is the 1-based field index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as the manifest path was given to [`load`](super::load) or as its source
    /// resolved against the manifest's directory.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// 1-based column (YAML: character; CSV: field index).
    pub column: u64,
}

impl Location {
    /// Builds a location.
    pub fn new(file: impl Into<PathBuf>, line: u64, column: u64) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem (or warning) with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong, lowercase, values escaped with [`shown`].
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest or one of its sources is invalid: every problem found, in file order
    /// (the manifest's first, then each source's in manifest order).
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Diagnostic>),
    /// The manifest file itself could not be read.
    #[error("cannot read manifest `{}`: {source}", path.display())]
    Io {
        /// The manifest path, as given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The entries could not be stored (the plan's scratch database failed).
    #[error("storing the manifest's entries: {0}")]
    Store(String),
}

impl ManifestError {
    /// The problems, when the manifest was read but is invalid.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid(d) => d,
            Self::Io { .. } | Self::Store(_) => &[],
        }
    }
}

/// One problem per line, then `N problem(s) in `file``. The variant holds no separate path, so
/// the summary names the file of the first problem (the manifest whenever it has problems of its
/// own, as those sort first) and says "and its sources" when others are involved.
fn render_problems(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let plural = if diags.len() == 1 { "" } else { "s" };
    match diags.first() {
        None => out.push_str("the manifest is invalid"),
        Some(first) => {
            let file = &first.location.file;
            let others = diags.iter().any(|d| &d.location.file != file);
            out.push_str(&format!(
                "{} problem{plural} in `{}`{}",
                diags.len(),
                file.display(),
                if others { " and its sources" } else { "" }
            ));
        }
    }
    out
}

/// True for the characters no identifier holds and no terminal should receive raw:
/// C0 controls (U+0000–U+001F), DEL (U+007F) and the C1 controls (U+0080–U+009F).
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control()
}

/// True for invisible or reordering characters that make printed text lie about its content
/// (zero-width spaces, bidi overrides, BOM). They are legal in values but shown escaped.
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` made safe to print inside backticks: control and deceptive characters become
/// `\u{..}` escapes and a backslash becomes `\\`, so the output is unambiguous. Everything else
/// is kept as is.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_forbidden_control(c) || is_deceptive(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Problems (and, separately, warnings) kept per file; the rest are counted in one
/// "and N more" line, so a broken million-row CSV gives a readable report.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// A list of diagnostics for one file that keeps the first [`MAX_DIAGNOSTICS_PER_FILE`] and
/// counts the rest.
#[derive(Debug)]
pub(crate) struct Capped {
    kept: Vec<Diagnostic>,
    omitted: u64,
    first_omitted: Option<Location>,
    /// "problems" or "warnings", for the summary line.
    noun: &'static str,
}

impl Capped {
    pub(crate) fn new(noun: &'static str) -> Self {
        Self {
            kept: Vec::new(),
            omitted: 0,
            first_omitted: None,
            noun,
        }
    }

    /// Adds a diagnostic, or counts it when the cap is reached.
    pub(crate) fn push(&mut self, d: Diagnostic) {
        if self.kept.len() < MAX_DIAGNOSTICS_PER_FILE {
            self.kept.push(d);
        } else {
            self.omitted += 1;
            self.first_omitted.get_or_insert(d.location);
        }
    }

    /// The kept diagnostics, then "and N more" when some were left out.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        if let Some(at) = self.first_omitted {
            self.kept.push(Diagnostic::new(
                at,
                format!(
                    "and {} more {} in this file (only the first {MAX_DIAGNOSTICS_PER_FILE} are listed)",
                    self.omitted, self.noun
                ),
            ));
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_controls() {
        assert_eq!(shown("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(shown("x\ny"), "x\\u{a}y");
        assert_eq!(shown("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(shown("a\\b é"), "a\\\\b é");
    }

    #[test]
    fn invalid_display_lists_and_counts() {
        let err = ManifestError::Invalid(vec![
            Diagnostic::new(Location::new("m.yaml", 2, 3), "first"),
            Diagnostic::new(Location::new("m.yaml", 4, 1), "second"),
        ]);
        assert_eq!(
            err.to_string(),
            "m.yaml:2:3: first\nm.yaml:4:1: second\n2 problems in `m.yaml`"
        );
    }
}
