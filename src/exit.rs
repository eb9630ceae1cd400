//! The one table of process exit codes, and the one mapping from an error to its code
//! ([`for_error`]). `main` is the only place that exits, with one documented exception: the
//! second SIGINT or SIGTERM during `apply` (`ops/apply/mod.rs`) ends the process at once with
//! the first signal's code ([`Exit::Interrupted`] or [`Exit::Terminated`]), because by then
//! the person (or the CI) has asked not to wait for the requests in flight, and the journal is
//! consistent at every commit (those items are re-sent on resume).

/// A signal that stops a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C, or the first step of a cancelled GitHub Actions job.
    Interrupt,
    /// SIGTERM: what GitHub Actions sends a few seconds after a cancel's SIGINT, and what
    /// `timeout`, Kubernetes and systemd send.
    Terminate,
}

impl Signal {
    /// How a command that this signal stopped exits: 130 or 143.
    pub fn exit(self) -> Exit {
        match self {
            Self::Interrupt => Exit::Interrupted,
            Self::Terminate => Exit::Terminated,
        }
    }

    /// How people name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "Interrupted (SIGINT)",
            Self::Terminate => "Terminated (SIGTERM)",
        }
    }
}

/// Every way a command can end, with its documented exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `0`: success, or nothing to change.
    Success,
    /// `1`: an error: bad input, I/O, auth, or the network gave up.
    Error,
    /// `2`: the plan has changes (only with `--detailed-exitcode`); `verify`/`guard` found something.
    Changes,
    /// `3`: apply finished but some items failed.
    ItemsFailed,
    /// `4`: refused: plan stale, tampered, digest not approved, or state locked.
    Refused,
    /// `130`: interrupted by SIGINT (Ctrl-C); the state is resumable.
    Interrupted,
    /// `143`: stopped by SIGTERM (a cancelled CI job, `timeout`, Kubernetes, systemd); the
    /// state is resumable.
    Terminated,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Error => 1,
            Self::Changes => 2,
            Self::ItemsFailed => 3,
            Self::Refused => 4,
            Self::Interrupted => 130,
            Self::Terminated => 143,
        }
    }
}

/// A refusal: the plan is stale, tampered with or past its TTL, the digest is not approved,
/// the state is locked (a file, or a store's lease), or a stored object was edited. The one
/// error type every layer refuses with (`state/` and `store/` too); maps to exit code 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How an error ends the process: its exit code, and whether to print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// The exit code.
    pub exit: Exit,
    /// False for a closed standard output: the reader stopped reading, which is not an error
    /// to report (`idprune show S | head -1`).
    pub report: bool,
}

/// Maps an error to how the process ends: [`Refused`] → 4; a closed standard output
/// ([`StdoutClosed`]) anywhere in the chain → a quiet 0; everything else → 1.
pub fn for_error(error: &anyhow::Error) -> Ending {
    if is_broken_pipe(error) {
        return Ending {
            exit: Exit::Success,
            report: false,
        };
    }
    let exit = if error.downcast_ref::<Refused>().is_some() {
        Exit::Refused
    } else {
        Exit::Error
    };
    Ending { exit, report: true }
}

/// The mark a write to standard output carries when its reader has gone (`EPIPE`): the
/// command layer's stdout writer wraps such errors in it, so a broken *network* pipe, which is
/// a real failure, is never mistaken for `| head` having read enough.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// True when the error (or any cause) is a write to a closed standard output.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn mapping() {
        let closed = std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed);
        let pipe = anyhow::Error::from(closed).context("printing the plan");
        assert_eq!(
            for_error(&pipe),
            Ending {
                exit: Exit::Success,
                report: false
            }
        );
        // A broken pipe that is not stdout (a connection, say) is an error.
        let network: anyhow::Error = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert_eq!(for_error(&network).exit, Exit::Error);
        let refused: anyhow::Error = Refused("no".into()).into();
        assert_eq!(for_error(&refused).exit, Exit::Refused);
        let other = Err::<(), _>(std::io::Error::other("disk"))
            .context("x")
            .expect_err("an error");
        assert_eq!(for_error(&other).exit, Exit::Error);
    }
}
