//! What git says about a state file's path: whether git tracks it (a committed state file is
//! refused: it holds personal data, and anyone who can open a pull request can write it), and
//! whether git would ignore it (a state file git would add is warned about).
//!
//! It asks the `git` program, from the file's folder, with no input and no output kept. Outside
//! a work tree, or without git, a path is neither tracked nor ignorable: there is nothing to
//! commit it to.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `git -C <dir> ARGS -- <name>`'s exit code for `path`, or `None` when git cannot be run.
fn git_code(path: &Path, args: &[&str]) -> Option<i32> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(args)
        .arg("--")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?
        .code()
}

/// True when git tracks `path` (it is in the index of the work tree around it).
pub fn tracked(path: &Path) -> bool {
    // 0: tracked; 1: not tracked; 128: not a work tree (or another git error).
    git_code(path, &["ls-files", "--error-unmatch"]) == Some(0)
}

/// True when `path` sits in a git work tree and git would not ignore it, so `git add -A` would
/// commit it.
pub fn would_commit(path: &Path) -> bool {
    // 0: ignored; 1: not ignored; 128: not a work tree (or another git error).
    git_code(path, &["check-ignore", "-q"]) == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn tracked_ignored_and_neither() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("x.state.db");
        std::fs::write(&file, b"x").expect("write");
        assert!(!tracked(&file), "outside a work tree");
        assert!(!would_commit(&file), "outside a work tree");
        if !git(dir.path(), &["init", "-q"]) {
            eprintln!("test-skipped: git::tracked_ignored_and_neither: no git");
            return;
        }
        assert!(!tracked(&file));
        assert!(would_commit(&file));
        assert!(git(dir.path(), &["add", "x.state.db"]));
        assert!(tracked(&file));
        std::fs::write(dir.path().join(".gitignore"), "*.state.db*\n").expect("write");
        let other = dir.path().join("y.state.db");
        std::fs::write(&other, b"y").expect("write");
        assert!(!would_commit(&other));
        assert!(!tracked(&other));
        assert!(!tracked(&dir.path().join("absent.state.db")));
    }
}
