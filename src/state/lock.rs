//! Who may write a state file. Two locks, taken in this order:
//! - [`FileLock`]: an OS `flock` on the sidecar `<state>.lock`, held by `apply` for its whole
//!   run and by `plan` from its first look at the old file to the rename of the new one. The
//!   kernel drops it when its process dies, `kill -9` included, so it can never go stale; it is
//!   what keeps a `plan` from replacing a file an `apply` is writing, and the reverse. The
//!   sidecar holds the holder's details for the refusal message. The holder removes it when it
//!   lets go (still locked), and a taker checks that the file it locked is still the one at the
//!   path, so two processes never hold locks on two different inodes.
//! - the `lock` row, taken in an immediate transaction: the record `status` shows and
//!   `idprune unlock` breaks, and the guard across hosts sharing a file system. It names the
//!   holder's pid, host and process start time; a row whose pid no longer runs on this host,
//!   or now belongs to another process (a different start time), is stale and is taken over
//!   with a warning.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::check;
use super::{State, now_unix};
use crate::exit::Refused;

/// Who holds the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Random id, for `idprune unlock`.
    pub lock_id: String,
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host name.
    pub host: String,
    /// The holder's user name.
    pub user: String,
    /// Unix seconds.
    pub started_at: i64,
    /// The holder's start time in clock ticks after boot (`/proc/PID/stat` field 22), which
    /// tells it apart from a later process given the same pid; 0 when unknown.
    pub proc_start: u64,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on {} (user {}) since {} (lock id {})",
            self.pid,
            crate::text::clean(&self.host),
            crate::text::clean(&self.user),
            crate::text::timestamp(self.started_at),
            crate::text::clean(&self.lock_id)
        )
    }
}

/// The one message for a state file someone else holds: "state file `PATH` is locked by WHO"
/// (`who`: a [`Holder`], or the sidecar's description of one). Every refusal and error about
/// a held state file starts with it and adds what to do. The store's lease has its own
/// message (`store::lease`): it names the store URL, what the holder is doing and when its
/// lease ends.
pub fn locked_by(state: &Path, who: &dyn fmt::Display) -> String {
    format!("state file `{}` is locked by {who}", state.display())
}

impl Holder {
    /// A holder describing this process.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        Self {
            lock_id: format!("{:08x}", rand::random::<u32>()),
            pid,
            host: this_host(),
            user: this_user(),
            started_at: now_unix(),
            proc_start: proc_start(pid).unwrap_or(0),
        }
    }

    /// True when the holder is gone: its pid no longer runs on this host, or it now names
    /// another process (its start time differs from the recorded one).
    pub fn is_stale(&self) -> bool {
        self.host == this_host()
            && (!pid_alive(self.pid)
                || (self.proc_start != 0
                    && proc_start(self.pid).is_some_and(|now| now != self.proc_start)))
    }

    /// One line for the lock sidecar: the fields tab-separated (values cleaned of tabs).
    fn to_line(&self) -> String {
        let f = |s: &str| s.replace(['\t', '\n'], " ");
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            f(&self.lock_id),
            self.pid,
            f(&self.host),
            f(&self.user),
            self.started_at,
            self.proc_start
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut parts = line.trim_end_matches('\n').split('\t');
        let holder = Self {
            lock_id: parts.next()?.to_owned(),
            pid: parts.next()?.parse().ok()?,
            host: parts.next()?.to_owned(),
            user: parts.next()?.to_owned(),
            started_at: parts.next()?.parse().ok()?,
            proc_start: parts.next()?.parse().ok()?,
        };
        Some(holder)
    }
}

/// The start time of process `pid` in clock ticks after boot (`/proc/PID/stat` field 22), or
/// `None` where there is no `/proc` or no such process.
pub fn proc_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces or parentheses itself.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3; field 22 is the 20th after it.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `<state>.lock`.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// The state file's one true name: symbolic links in it (the file's or its folders') resolved,
/// so every name that reaches one file locks one sidecar. With [`refuse_hard_links`] the lock
/// is then keyed by the file (device and inode), not by the name it was reached through. For
/// a file not created yet, its folder is resolved.
pub fn true_path(state: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::canonicalize(state) {
        Ok(path) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = state
                .file_name()
                .with_context(|| format!("state file `{}` has no file name", state.display()))?;
            let folder = match state.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let folder = std::fs::canonicalize(folder)
                .with_context(|| format!("opening the folder `{}`", folder.display()))?;
            Ok(folder.join(name))
        }
        Err(e) => Err(e).with_context(|| format!("opening state file `{}`", state.display())),
    }
}

/// Refuses a state file reached through more than one hard link: its lock sidecar is named
/// after one name, so two names could let two applies run on one file at once (each reading
/// the journal through its own connection), sending every deletion twice.
pub fn refuse_hard_links(state: &Path, metadata: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if metadata.nlink() > 1 {
        return Err(Refused(format!(
            "state file `{}` has {} hard links; idprune locks a state file by its one name, so another name could run a second apply on it at once; remove the other links (`find / -xdev -samefile {}`) or copy the file",
            state.display(),
            metadata.nlink(),
            crate::text::shell_path(state)
        ))
        .into());
    }
    Ok(())
}

/// An exclusive `flock` on `<state>.lock`, released when dropped or when the process dies.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    /// The state file, by the name the caller gave.
    state: PathBuf,
    /// The sidecar, beside the state file's true name ([`true_path`]).
    sidecar: PathBuf,
}

impl FileLock {
    /// Takes the lock for `holder`, or returns who holds it (as written in the sidecar, or as
    /// far as known). Never waits.
    pub fn take(state: &Path, holder: &Holder) -> anyhow::Result<Result<FileLock, String>> {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(metadata) = std::fs::metadata(state) {
            if !metadata.is_file() {
                bail!(
                    "`{}` is not a regular file, so not an idprune state file; check the path",
                    state.display()
                );
            }
            refuse_hard_links(state, &metadata)?;
        }
        let path = lock_path(&true_path(state)?);
        // The holder removes the file when it lets go, so a process that opened it just before
        // may lock a file no longer at the path: it then looks again. At most a few rounds.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        anyhow::anyhow!(
                            "the lock file `{}` is a symbolic link, which idprune does not follow; remove it",
                            path.display()
                        )
                    } else {
                        anyhow::Error::new(e)
                            .context(format!("opening the lock file `{}`", path.display()))
                    }
                })?;
            // SAFETY: the descriptor is open for the life of `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                    return Err(err).with_context(|| format!("locking `{}`", path.display()));
                }
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Ok(Err(Holder::from_line(&text).map_or_else(
                    || "another idprune process".to_owned(),
                    |h| h.to_string(),
                )));
            }
            let mine = file.metadata()?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == mine.dev() && now.ino() == mine.ino() => {}
                _ => continue,
            }
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(holder.to_line().as_bytes()))
                .and_then(|()| file.flush())
                .with_context(|| format!("writing the lock file `{}`", path.display()))?;
            return Ok(Ok(FileLock {
                file,
                state: state.to_owned(),
                sidecar: path,
            }));
        }
        bail!(
            "the lock file `{}` keeps being replaced; is another program removing it?",
            path.display()
        )
    }

    /// Takes the lock for this process, or refuses naming the holder.
    pub fn take_or_refuse(state: &Path, holder: &Holder, doing: &str) -> anyhow::Result<Self> {
        match Self::take(state, holder)? {
            Ok(lock) => Ok(lock),
            Err(who) => Err(Refused(format!(
                "{}; wait for it to end before {doing}",
                locked_by(state, &who)
            ))
            .into()),
        }
    }

    /// The state file this lock guards.
    pub fn state(&self) -> &Path {
        &self.state
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked: a process that opened it meanwhile notices the file is
        // no longer at the path and looks again. A killed holder leaves the file behind,
        // unlocked, and the next taker reuses it.
        let _ = std::fs::remove_file(&self.sidecar);
        let _ = self.file.set_len(0);
    }
}

/// The host name.
pub fn this_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The user name, from the environment.
pub fn this_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: getuid has no preconditions.
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
}

/// True when a process with this pid exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The result of trying to take the lock.
#[derive(Debug)]
pub enum Acquired {
    /// Taken; `took_over` names a stale holder it replaced.
    Yes {
        /// This process's lock.
        mine: Holder,
        /// The stale lock that was replaced, if any.
        took_over: Option<Holder>,
    },
    /// Held by someone else.
    HeldBy(Holder),
}

fn read_holder(conn: &Connection, path: &Path) -> anyhow::Result<Option<Holder>> {
    let row = conn
        .query_row(
            "SELECT lock_id, pid, host, user, started_at, proc_start FROM lock WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((lock_id, pid, host, user, started_at, proc_start)) = row else {
        return Ok(None);
    };
    Ok(Some(Holder {
        lock_id,
        pid: check::number(path, "lock.pid", pid)?,
        host,
        user,
        started_at: check::time(path, "lock.started_at", started_at)?,
        proc_start: check::number(path, "lock.proc_start", proc_start)?,
    }))
}

impl State {
    /// The current holder, if any.
    pub fn lock_holder(&self) -> anyhow::Result<Option<Holder>> {
        read_holder(self.conn(), &self.path)
    }

    /// Takes the apply lock: first the sidecar's `flock` (refused while a `plan` or another
    /// `apply` holds it), then the lock row, replacing a stale one. Refuses when the file at
    /// the path is no longer the one this `State` opened (a `plan` replaced it meanwhile).
    pub fn acquire_lock(&mut self) -> anyhow::Result<Acquired> {
        // SQLite opens a file it may not write read-only without a word, and would later say
        // only "attempt to write a readonly database": say which file, and the fix, up front.
        if self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            bail!(
                "state file `{}` is read-only for this user, and idprune journals into it; run `chmod u+w {}`, or run as its owner",
                self.path.display(),
                crate::text::shell_path(&self.path)
            );
        }
        let mine = Holder::this_process();
        let file_lock = match FileLock::take(&self.path, &mine)? {
            Ok(lock) => lock,
            Err(who) => {
                return Err(Refused(format!(
                    "{}; wait for it to end",
                    locked_by(&self.path, &who)
                ))
                .into());
            }
        };
        self.still_at_path()?;
        let path = self.path.clone();
        let context = || format!("locking state file `{}`", path.display());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(context)?;
        let current = read_holder(&tx, &self.path)?;
        if let Some(holder) = current.as_ref().filter(|h| !h.is_stale()) {
            return Ok(Acquired::HeldBy(holder.clone()));
        }
        tx.execute(
            "INSERT OR REPLACE INTO lock (id, lock_id, pid, host, user, started_at, proc_start)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                mine.lock_id,
                i64::from(mine.pid),
                mine.host,
                mine.user,
                mine.started_at,
                i64::try_from(mine.proc_start).unwrap_or(0)
            ],
        )
        .with_context(context)?;
        tx.commit().with_context(context)?;
        self.file_lock = Some(file_lock);
        Ok(Acquired::Yes {
            mine,
            took_over: current,
        })
    }

    /// Releases this process's lock (the row is left alone when someone broke it meanwhile).
    pub fn release_lock(&mut self, lock_id: &str) -> anyhow::Result<()> {
        let deleted = self
            .conn()
            .execute("DELETE FROM lock WHERE id = 1 AND lock_id = ?1", [lock_id]);
        self.file_lock = None;
        deleted?;
        Ok(())
    }

    /// Breaks the lock `lock_id`; refuses while its holder runs on this host (a live pid with
    /// the recorded start time) or while any idprune holds the file's sidecar lock.
    pub fn unlock(&self, lock_id: &str) -> anyhow::Result<Holder> {
        let Some(holder) = self.lock_holder()? else {
            bail!("state file `{}` is not locked", self.path().display());
        };
        if holder.lock_id != lock_id {
            bail!(
                "{}, not by lock id `{lock_id}`",
                locked_by(self.path(), &holder)
            );
        }
        if holder.host == this_host() && !holder.is_stale() {
            bail!(
                "the holder of lock `{lock_id}` (pid {}) is still running on this host; stop it first",
                holder.pid
            );
        }
        // A running apply of this file holds the sidecar lock whatever its row says.
        let _running = match FileLock::take(&self.path, &Holder::this_process())? {
            Ok(lock) => lock,
            Err(who) => bail!(
                "state file `{}` is in use by {who}, which is still running; stop it first",
                self.path().display()
            ),
        };
        self.conn()
            .execute("DELETE FROM lock WHERE id = 1 AND lock_id = ?1", [lock_id])?;
        Ok(holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{delete_item, sealed};

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_stale() {
        let me = Holder::this_process();
        assert!(me.proc_start > 0, "/proc gives this process's start time");
        assert!(!me.is_stale());
        let reused = Holder {
            proc_start: me.proc_start + 1,
            ..me.clone()
        };
        assert!(reused.is_stale(), "a pid now naming another process");
        let unknown = Holder {
            proc_start: 0,
            ..me.clone()
        };
        assert!(
            !unknown.is_stale(),
            "without a start time only the pid counts"
        );
        assert_eq!(Holder::from_line(&me.to_line()), Some(me));
    }

    #[test]
    fn the_sidecar_lock_excludes_a_second_taker_and_goes_with_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("x.state.db");
        let me = Holder::this_process();
        let first = FileLock::take(&state, &me).expect("take").expect("free");
        let second = FileLock::take(&state, &me).expect("take");
        assert_eq!(second.expect_err("held"), me.to_string());
        assert!(lock_path(&state).exists());
        drop(first);
        assert!(!lock_path(&state).exists(), "released, the sidecar goes");
        let again = FileLock::take(&state, &me).expect("take");
        assert!(again.is_ok());
    }

    #[test]
    fn a_state_replaced_after_opening_refuses_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = sealed(dir.path(), &[delete_item(1, "u1", "a@x.com")]);
        let other = dir.path().join("other.db");
        std::fs::copy(state.path(), &other).expect("copy");
        std::fs::rename(&other, state.path()).expect("rename over");
        let err = state.acquire_lock().expect_err("replaced");
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
        assert!(
            err.to_string().contains("replaced by a new plan"),
            "{err:#}"
        );
    }
}
