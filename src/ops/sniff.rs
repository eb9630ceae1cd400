//! The wrong kind of file: a manifest given where a state file goes, or the reverse. The
//! first bytes tell them apart (a state file is SQLite, which starts with `SQLite format 3\0`;
//! a manifest is text), so the command can say what to run instead — before the state layer
//! gives permission advice about a YAML file, or the manifest parser calls SQLite "not UTF-8".

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};

pub use crate::state::check::SQLITE_HEADER;

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite database: a state file (or another database).
    Sqlite,
    /// Text that looks like YAML (a manifest, probably).
    Text,
    /// Empty, unreadable, missing, or binary that is not SQLite: left to the real loader, whose
    /// message is the precise one.
    Other,
}

/// The first `n` bytes of the regular file `path` (fewer when it is shorter): the one read
/// every sniff goes through.
fn head(path: &Path, n: u64) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n as usize);
    crate::bounded::open_regular(path, "file")?
        .take(n)
        .read_to_end(&mut head)
        .with_context(|| format!("reading file `{}`", path.display()))?;
    Ok(head)
}

/// Reads at most 512 bytes of `path` and classifies them.
pub fn kind(path: &Path) -> Kind {
    match head(path, 512) {
        Ok(head) => classify(&head),
        Err(_) => Kind::Other,
    }
}

/// True when `path` starts with the SQLite header (a state file), false for anything else
/// (a manifest); an error names a file that cannot be read, or is not a regular file.
pub fn is_sqlite(path: &Path) -> anyhow::Result<bool> {
    Ok(classify(&head(path, SQLITE_HEADER.len() as u64)?) == Kind::Sqlite)
}

/// Classifies a file's first bytes.
pub fn classify(head: &[u8]) -> Kind {
    if head.starts_with(SQLITE_HEADER) {
        return Kind::Sqlite;
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // A cut may fall inside a multi-byte character: only the valid prefix counts.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let text_like = !text.is_empty()
        && text.len() + 4 >= head.len()
        && !text.contains('\0')
        && text.trim_start().chars().next().is_some();
    if text_like { Kind::Text } else { Kind::Other }
}

/// True for a `.yaml`/`.yml` file or text that starts like a manifest (`version:` or `space:`
/// on a line of its own).
fn looks_like_manifest(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
    {
        return true;
    }
    let head = head(path, 512).unwrap_or_default();
    String::from_utf8_lossy(&head)
        .lines()
        .any(|l| l.starts_with("version:") || l.starts_with("space:"))
}

/// Refuses a manifest (or other text) given as STATE, naming the command to run instead.
pub fn expect_state(path: &Path, command: &str) -> anyhow::Result<()> {
    if kind(path) == Kind::Text {
        let p = path.display();
        let sh = crate::text::shell_path(path);
        let fix = if command == "apply" {
            format!(
                "run `idprune plan {sh}` first and apply the state file it writes (`idprune apply {} --approve DIGEST`)",
                crate::text::shell_path(&super::default_state_path(path))
            )
        } else {
            format!(
                "run `idprune plan {sh}` first, then `idprune {command} {}`",
                crate::text::shell_path(&super::default_state_path(path))
            )
        };
        if !looks_like_manifest(path) {
            bail!(
                "`{p}` is a text file, not an idprune state file; pass the state file `idprune plan` wrote (`NAME.state.db`)"
            );
        }
        bail!("`{p}` is a manifest (text), not an idprune state file; {fix}");
    }
    Ok(())
}

/// Refuses a `plan -o` target that is an existing text file (a manifest, most likely): the
/// plan would have to replace it.
pub fn expect_state_target(path: &Path) -> anyhow::Result<()> {
    if kind(path) == Kind::Text {
        bail!(
            "`-o {}` names a text file (a manifest?), not a state file; plan writes a SQLite state file there, so choose a path ending in `.state.db`",
            path.display()
        );
    }
    Ok(())
}

/// Refuses a state file (SQLite) given as MANIFEST, naming the command to run instead; and a
/// CSV file, which a manifest lists as a source.
pub fn expect_manifest(path: &Path, command: &str) -> anyhow::Result<()> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("tsv"));
    if csv && kind(path) == Kind::Text {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bail!(
            "`{}` is a CSV file, not a manifest; write a manifest that lists it as a source (`sources: [{{csv: {}, remove_columns: [email]}}]`) and run `idprune {command}` on that",
            path.display(),
            crate::render::clean(&name)
        );
    }
    if kind(path) == Kind::Sqlite {
        let p = path.display();
        // The manifest the state file was planned from, when it can be read.
        let source = crate::state::State::open(path)
            .and_then(|s| s.meta())
            .ok()
            .map(|m| match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.join(m.manifest_path),
                _ => m.manifest_path.into(),
            });
        let again = match &source {
            Some(m) => format!("`idprune {command} {}`", crate::text::shell_path(m)),
            None => "pass the manifest it was planned from".to_owned(),
        };
        let sh = crate::text::shell_path(path);
        let fix = match command {
            "plan" => format!("to see its plan run `idprune show {sh}`; to plan again, {again}"),
            _ => format!("its plan: `idprune show {sh}`; its manifest: {again}"),
        };
        bail!("`{p}` is a state file (SQLite), not a manifest; {fix}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(b"SQLite format 3\0\x10\x00"), Kind::Sqlite);
        assert_eq!(classify(b"version: 1\nspace: x\n"), Kind::Text);
        assert_eq!(classify(b"\xEF\xBB\xBFversion: 1\n"), Kind::Text);
        assert_eq!(classify(b""), Kind::Other);
        assert_eq!(classify(b"\x00\x01\x02\x03binary"), Kind::Other);
        assert_eq!(classify(b"   \n"), Kind::Other);
    }

    #[test]
    fn sniffs_sqlite_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = dir.path().join("m.yaml");
        std::fs::write(&yaml, "version: 1\n").expect("write");
        assert!(!is_sqlite(&yaml).expect("sniff"));
        let db = dir.path().join("x.db");
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("db");
        assert!(is_sqlite(&db).expect("sniff"));
        let short = dir.path().join("short");
        std::fs::write(&short, "SQLite").expect("write");
        assert!(!is_sqlite(&short).expect("sniff"));
        assert!(is_sqlite(&dir.path().join("missing")).is_err());
    }
}
