//! The one bounded read of a file named from outside (a receipt, a token file, a key file): it
//! must be a regular file (a FIFO, a device or a folder is refused, never waited on; the open
//! does not block) and at most a stated size (checked before reading, and the read itself
//! capped, since a file can grow). A leaf: it imports nothing from the crate.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};

/// Opens `path` for reading without blocking (a FIFO with no writer would otherwise hang the
/// open) and refuses anything but a regular file. `what` names the file in messages
/// (`token file`, `receipt`).
pub fn open_regular(path: &Path, what: &str) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("reading {what} `{}`", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("reading {what} `{}`", path.display()))?
        .file_type();
    if !kind.is_file() {
        bail!(
            "{what} `{}` is not a regular file ({}); give the path of a file",
            path.display(),
            describe(kind)
        );
    }
    Ok(file)
}

/// Reads all of the regular file `path`, at most `max` bytes; a larger file is refused
/// without being read.
pub fn read_regular(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    let file = open_regular(path, what)?;
    let too_big = |size: u64| {
        anyhow::anyhow!(
            "{what} `{}` is {size} bytes, over the {max}-byte limit; check the path",
            path.display()
        )
    };
    let size = file
        .metadata()
        .with_context(|| format!("reading {what} `{}`", path.display()))?
        .len();
    if size > max {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} `{}`", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path, what: &str, max: u64) -> anyhow::Result<String> {
    String::from_utf8(read_regular(path, what, max)?).map_err(|_| {
        anyhow::anyhow!(
            "{what} `{}` is not UTF-8 text; check the path",
            path.display()
        )
    })
}

/// A secret kept in a file (a token, a key): one line, trimmed. A file of several lines is
/// refused, so a wrong path (`/etc/shadow`) is never sent whole as a credential; the message
/// does not quote the file.
pub fn read_secret_line(path: &Path, what: &str, max: u64) -> anyhow::Result<String> {
    let text = read_regular_text(path, what, max)?;
    let line = text.trim();
    if line.contains(['\n', '\r']) {
        bail!(
            "{what} `{}` holds more than one line; it must hold the secret alone on one line",
            path.display()
        );
    }
    Ok(line.to_owned())
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_devices_folders_and_big_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular(&fifo, "token file", 10).expect_err("a FIFO");
        assert!(err.to_string().contains("a named pipe"), "{err:#}");
        let err = read_regular(Path::new("/dev/zero"), "receipt", 10).expect_err("a device");
        assert!(err.to_string().contains("a device"), "{err:#}");
        let err = read_regular(dir.path(), "key file", 10).expect_err("a folder");
        assert!(err.to_string().contains("a folder"), "{err:#}");
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).expect("write");
        let err = read_regular(&big, "receipt", 10).expect_err("too big");
        assert!(
            err.to_string().contains("11 bytes, over the 10-byte limit"),
            "{err:#}"
        );
        std::fs::write(&big, [b'x'; 10]).expect("write");
        assert_eq!(read_regular(&big, "receipt", 10).expect("fits").len(), 10);
        // A symlink to /dev/zero is a device too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert!(read_regular(&link, "receipt", 10).is_err());
    }

    #[test]
    fn a_secret_is_one_trimmed_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, "  tok-123 \n").expect("write");
        assert_eq!(
            read_secret_line(&path, "token file", 100).expect("one line"),
            "tok-123"
        );
        std::fs::write(&path, "root:x:0:0\nuser:y:1:1\n").expect("write");
        let err = read_secret_line(&path, "token file", 100).expect_err("two lines");
        assert!(err.to_string().contains("more than one line"), "{err:#}");
        assert!(!err.to_string().contains("root"), "{err:#}");
    }
}
