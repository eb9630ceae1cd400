//! The outcome values the operations return (`ops/`) and the views draw (`render/`): the
//! same values feed the text a person reads and the JSON a program parses. A leaf both
//! layers import, so neither imports the other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::apply::ApplyReport;
use crate::exit::Signal;
use crate::manifest::{Diagnostic, Region};
use crate::model::Identifier;
use crate::state::verify::{Prior, Seen};
use crate::state::{Counts, Meta, RunFigures};

/// How a run ended, as the `runs` table records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every item was dispatched.
    Completed,
    /// Ctrl-C.
    Interrupted,
    /// A space-level fault or a spent retry budget.
    Stopped,
}

impl RunOutcome {
    /// The name the `runs` table and the JSON report use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
            Self::Stopped => "stopped",
        }
    }
}

/// One recorded run.
#[derive(Debug)]
pub struct RunRecord {
    /// Its id in the `runs` table.
    pub id: i64,
    /// What it did (the canary's figures included).
    pub report: ApplyReport,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The figures recorded for it.
    pub figures: RunFigures,
    /// The signal that stopped it, if one did.
    pub signal: Option<Signal>,
    /// True when the signal came during the canary, before the fan-out.
    pub in_canary: bool,
}

/// What `apply` did.
#[derive(Debug)]
pub struct Applied {
    /// The state file applied.
    pub state: PathBuf,
    /// Its sealed facts.
    pub meta: Meta,
    /// The run, or `None` when every planned item was already settled (nothing sent, no run
    /// recorded).
    pub run: Option<RunRecord>,
    /// The plan's counts by state afterwards.
    pub counts: Counts,
    /// True when this run is the first to complete the plan: the scope notes are said once a
    /// plan, after it.
    pub first_completion: bool,
}

/// One removed identifier under verification.
#[derive(Debug)]
pub struct Check {
    /// Its item's seq.
    pub seq: u64,
    /// The identifier removed.
    pub identifier: Identifier,
    /// What this verification saw (`None`: its profile was never read).
    pub seen: Option<Seen>,
}

/// What `verify` saw.
#[derive(Debug)]
pub struct Verified {
    /// The plan's digest.
    pub digest: String,
    /// The number of this verification in the state file's history.
    pub verification: i64,
    /// How many times the profiles were read.
    pub polls: u32,
    /// user_id → the identifiers removed from that profile.
    pub profiles: BTreeMap<String, Vec<Check>>,
    /// What earlier verifications saw, by seq.
    pub priors: BTreeMap<u64, Prior>,
    /// How long it took.
    pub elapsed: Duration,
    /// True with `--wait`: the deadline passed rather than a single read.
    pub waited: bool,
}

impl Verified {
    /// The checks that were seen, with what was seen.
    pub fn seen(&self) -> impl Iterator<Item = (&Check, Seen)> {
        self.profiles
            .values()
            .flatten()
            .filter_map(|c| c.seen.map(|s| (c, s)))
    }

    /// How many identifiers were seen as `s`.
    pub fn count(&self, s: Seen) -> u64 {
        self.seen().filter(|(_, x)| *x == s).count() as u64
    }
}

/// What `init` wrote: a manifest for a CSV export.
#[derive(Clone, Debug)]
pub struct Initialized {
    /// The manifest written.
    pub manifest: PathBuf,
    /// The CSV it reads, as given.
    pub csv: PathBuf,
    /// The CSV's data rows.
    pub rows: u64,
    /// The column of profile lookups.
    pub profile_column: String,
    /// The columns of identifiers to remove.
    pub remove_columns: Vec<String>,
    /// The CSV's sha256, pinned in the manifest.
    pub sha256: String,
    /// The oldest time of the export's `data_as_of` column (Unix seconds), if it has one.
    pub data_as_of: Option<i64>,
    /// That column's name, as the warehouse queries write it.
    pub data_as_of_column: &'static str,
    /// True when `--space` was given (false: a placeholder to fill in).
    pub space_given: bool,
}

/// What `validate` found in a manifest: one value behind its text and its JSON.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The manifest's path as given.
    pub manifest: PathBuf,
    /// A valid manifest's figures, or every problem of an invalid one, located.
    pub found: Result<Valid, Vec<Diagnostic>>,
}

/// The figures of a valid manifest.
#[derive(Clone, Debug)]
pub struct Valid {
    /// The Segment space.
    pub space: String,
    /// Its region.
    pub region: Region,
    /// Entries: those written in the manifest and the rows of its CSV sources.
    pub entries: u64,
    /// Entries written in the manifest itself (the rest come from CSV sources).
    pub inline_entries: u64,
    /// CSV sources.
    pub sources: u64,
    /// CSV sources read (a source in a store is left to `plan`).
    pub sources_read: u64,
    /// The sources in a store, as written, that `validate` did not fetch (it works offline).
    pub not_fetched: Vec<String>,
    /// Rows read from them.
    pub source_rows: u64,
    /// Warnings, located.
    pub warnings: Vec<Diagnostic>,
}

/// What `validate` found in the policy `plan` would judge the manifest by.
#[derive(Clone, Debug)]
pub struct PolicyChecked {
    /// The policy file.
    pub path: PathBuf,
    /// The policy, or every problem in it, located.
    pub found: Result<crate::policy::Policy, Vec<Diagnostic>>,
}
