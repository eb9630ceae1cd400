//! The wrong kind of file: a manifest given where a state file goes, or the reverse. The
//! first bytes tell them apart (a state file is SQLite, which starts with `SQLite format 3\0`;
//! a manifest is text), so the command can say what to run instead — before the state layer
//! gives permission advice about a YAML file, or the manifest parser calls SQLite "not UTF-8".

use std::io::Read as _;
use std::path::Path;

use anyhow::bail;

/// The header every SQLite 3 database starts with.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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

/// Reads at most 512 bytes of `path` and classifies them.
pub fn kind(path: &Path) -> Kind {
    let mut head = Vec::with_capacity(512);
    let Ok(file) = crate::bounded::open_regular(path, "file") else {
        return Kind::Other;
    };
    if file.take(512).read_to_end(&mut head).is_err() {
        return Kind::Other;
    }
    classify(&head)
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
    let mut head = String::new();
    if let Ok(file) = crate::bounded::open_regular(path, "file") {
        let _ = file.take(512).read_to_string(&mut head);
    }
    head.lines()
        .any(|l| l.starts_with("version:") || l.starts_with("space:"))
}

/// Refuses a manifest (or other text) given as STATE, naming the command to run instead.
pub fn expect_state(path: &Path, command: &str) -> anyhow::Result<()> {
    if kind(path) == Kind::Text {
        let p = path.display();
        let fix = if command == "apply" {
            format!(
                "run `idprune plan {p}` first and apply the state file it writes (`idprune apply {} --approve DIGEST`)",
                super::default_state_path(path).display()
            )
        } else {
            format!(
                "run `idprune plan {p}` first, then `idprune {command} {}`",
                super::default_state_path(path).display()
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
            Some(m) => format!("`idprune {command} {}`", m.display()),
            None => "pass the manifest it was planned from".to_owned(),
        };
        let fix = match command {
            "plan" => format!("to see its plan run `idprune show {p}`; to plan again, {again}"),
            _ => format!("its plan: `idprune show {p}`; its manifest: {again}"),
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
}
