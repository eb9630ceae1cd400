//! The one table of process exit codes (DESIGN.md §3). `main` is the only place that exits;
//! everything else returns an [`Exit`] or an error that maps to one.

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
    /// `130`: interrupted; the state is resumable.
    Interrupted,
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
        }
    }
}
