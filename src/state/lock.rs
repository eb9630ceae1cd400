//! The exclusive apply lock: one row in the `lock` table, taken in an immediate transaction.
//! A lock left by a process that died on this host (a `kill -9`, a power cut) is stale and is
//! taken over with a warning; a lock from another host, or from a live process, refuses the
//! second apply with the holder's details. `idprune unlock` breaks a lock by id.

use std::fmt;

use anyhow::bail;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{State, now_unix};

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
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on {} (user {}) since {} (lock id {})",
            self.pid,
            self.host,
            self.user,
            crate::text::timestamp(self.started_at),
            self.lock_id
        )
    }
}

impl Holder {
    /// A holder describing this process.
    pub fn this_process() -> Self {
        Self {
            lock_id: format!("{:08x}", rand::random::<u32>()),
            pid: std::process::id(),
            host: this_host(),
            user: this_user(),
            started_at: now_unix(),
        }
    }

    /// True when the holder is a process on this host that no longer runs.
    pub fn is_stale(&self) -> bool {
        self.host == this_host() && !pid_alive(self.pid)
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

fn read_holder(conn: &Connection) -> anyhow::Result<Option<Holder>> {
    let row = conn
        .query_row(
            "SELECT lock_id, pid, host, user, started_at FROM lock WHERE id = 1",
            [],
            |r| {
                Ok(Holder {
                    lock_id: r.get(0)?,
                    pid: r.get::<_, i64>(1)? as u32,
                    host: r.get(2)?,
                    user: r.get(3)?,
                    started_at: r.get(4)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

impl State {
    /// The current holder, if any.
    pub fn lock_holder(&self) -> anyhow::Result<Option<Holder>> {
        read_holder(self.conn())
    }

    /// Takes the apply lock, replacing a stale one held by a dead process on this host.
    pub fn acquire_lock(&mut self) -> anyhow::Result<Acquired> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = read_holder(&tx)?;
        if let Some(holder) = current.as_ref().filter(|h| !h.is_stale()) {
            return Ok(Acquired::HeldBy(holder.clone()));
        }
        let mine = Holder::this_process();
        tx.execute(
            "INSERT OR REPLACE INTO lock (id, lock_id, pid, host, user, started_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![mine.lock_id, mine.pid as i64, mine.host, mine.user, mine.started_at],
        )?;
        tx.commit()?;
        Ok(Acquired::Yes {
            mine,
            took_over: current,
        })
    }

    /// Releases this process's lock (a no-op when someone broke it meanwhile).
    pub fn release_lock(&self, lock_id: &str) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM lock WHERE id = 1 AND lock_id = ?1", [lock_id])?;
        Ok(())
    }

    /// Breaks the lock `lock_id`; refuses while its holder runs on this host.
    pub fn unlock(&self, lock_id: &str) -> anyhow::Result<Holder> {
        let Some(holder) = self.lock_holder()? else {
            bail!("state file `{}` is not locked", self.path().display());
        };
        if holder.lock_id != lock_id {
            bail!(
                "state file `{}` is locked by {holder}, not by lock id `{lock_id}`",
                self.path().display()
            );
        }
        if holder.host == this_host() && pid_alive(holder.pid) {
            bail!(
                "the holder of lock `{lock_id}` (pid {}) is still running on this host; stop it first",
                holder.pid
            );
        }
        self.release_lock(lock_id)?;
        Ok(holder)
    }
}
