//! Each subcommand's own flags, in the order of the subcommands.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::OutputFormat;
use crate::manifest::Region;
use crate::render::Format;

/// `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest (YAML).
    pub manifest: PathBuf,
    /// Output format (`json`: the problems and warnings as one object, exit code unchanged).
    #[arg(long, value_parser = OutputFormat::values("One JSON object on stdout, with a `format_version`"), default_value = "text")]
    pub format: OutputFormat,
    /// Also validate this policy (default: `idprune.policy.yaml` found walking up from the
    /// manifest's folder, as `plan` finds it).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// `--redact` and `--reveal` of the views of `plan` and `show`.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ValueArgs {
    /// Hide identifier values in text output; in markdown, `--redact=full` hides even the
    /// masked preview (an email's domain), leaving the type and a keyed fingerprint.
    #[arg(long, conflicts_with = "reveal", value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "preview", value_name = "LEVEL")]
    pub redact: Option<crate::mask::RedactLevel>,
    /// Show identifier values in markdown and JSON output.
    #[arg(long)]
    pub reveal: bool,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest (YAML).
    pub manifest: PathBuf,
    /// The state file to write (default: the manifest's path with `.state.db`).
    #[arg(short = 'o', long = "out", value_name = "STATE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has deletions, 0 when it has none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Whether identifier values show.
    #[command(flatten)]
    pub values: ValueArgs,
    /// Overwrite a state file that already holds an apply journal.
    #[arg(long)]
    pub force: bool,
    /// How long the plan may be applied (`7d`, `36h`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub ttl: std::time::Duration,
    /// `--refresh=false`: skip the reads an entry does not need (it names its profile by
    /// `user_id` and removes another type); such items are planned `delete`, marked
    /// unverified, and an absent identifier then ends `already_absent` at apply.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// With `--refresh=false`: after sealing the unverified deletes, read N of their
    /// profiles, drawn at random, by `user_id` (never by the identifier), and seal the drift
    /// found (profiles gone or lacking an identifier the plan deletes) into the plan. A round
    /// that saw drift within `--max-drift`, its 95 % upper bound above it, is followed by
    /// another N, up to 4 rounds, judged together.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sample: u64,
    /// The sampled drift above which plan exits 1 (unless `--allow-drift`).
    #[arg(long, value_name = "PERCENT", default_value = "2%", value_parser = crate::sample::parse_percent)]
    pub max_drift: f64,
    /// Accept a sampled drift above `--max-drift` (sealed and shown as accepted).
    #[arg(long)]
    pub allow_drift: bool,
    /// Also write the PII-free receipt `NAME.receipt.json` beside the manifest, to commit
    /// in the pull request.
    #[arg(long, conflicts_with = "check_receipt")]
    pub receipt: bool,
    /// Plan afresh and exit 4 when the committed receipt (default: `NAME.receipt.json`
    /// beside the manifest) no longer matches; exit 0 when it does.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub check_receipt: Option<Option<PathBuf>>,
    /// Accept a plan whose lookups mostly found no profile (without it: exit 1, since that
    /// usually means an upper-case lookup type, a wrong space or region, or old data).
    #[arg(long)]
    pub allow_unresolved: bool,
    /// Print every profile's diff and every exception item (without it, a plan longer than
    /// a couple of hundred lines prints its summary and exceptions; `idprune show` prints all).
    #[arg(long)]
    pub diff: bool,
    /// The team's rules to judge the plan by (default: `idprune.policy.yaml` found walking up
    /// from the manifest's folder). Its sha256 is sealed into the plan; a failed hard rule
    /// exits 1 (the state file is still written, to inspect).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where the state lives, on every command that takes a state file.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`,
    /// `file://`), whose object is the truth and whose copy there is always encrypted; the
    /// state path given, if any, is then the local working copy. A plain path is the same as
    /// giving it as the state path. A state path may also be a store URL itself.
    #[arg(long = "state", value_name = "URL", env = "IDPRUNE_STATE")]
    pub url: Option<String>,
    /// Read the state key (32 random bytes, base64) from this file instead of
    /// `IDPRUNE_STATE_KEY`. Needed for a state in a store.
    #[arg(long, value_name = "FILE")]
    pub state_key_file: Option<PathBuf>,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The state file.
    pub state: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Whether identifier values show.
    #[command(flatten)]
    pub values: ValueArgs,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `apply`.
#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// The state file written by `plan` — or the manifest, which is then planned afresh into
    /// its default state file and applied only when the fresh digest is the approved one.
    #[arg(value_name = "STATE|MANIFEST")]
    pub state: PathBuf,
    /// The approved digest (`sha256:<hex>`, bare hex, or a unique prefix of 12+ hex digits).
    #[arg(long, value_name = "DIGEST")]
    pub approve: Option<String>,
    /// The committed receipt whose digest is approved (instead of `--approve`).
    #[arg(long, value_name = "FILE", conflicts_with = "approve")]
    pub receipt: Option<PathBuf>,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
    /// Also retry items that failed permanently (400, 404 not_found).
    #[arg(long)]
    pub retry_failed: bool,
    /// How to print the final report (`json`: one object on stdout with `format_version`).
    #[arg(long, value_parser = OutputFormat::values("One JSON object on stdout, with a `format_version`"), default_value = "text")]
    pub format: OutputFormat,
    /// Re-run a finished journal's deletions as a new recorded run (after a space rebuild,
    /// which does not replay deletions). Same seal and approval checks.
    #[arg(long)]
    pub reapply: bool,
    /// Send the first N deletions one at a time and re-read each profile before the
    /// fan-out; stop (exit 1) unless each target is gone and nothing else changed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: u64,
    /// How long the canary re-reads a profile for Segment to propagate a delete.
    #[arg(long, value_name = "DURATION", default_value = "6m", value_parser = humantime::parse_duration)]
    pub canary_wait: std::time::Duration,
    /// With a state in a store: push the journal there this often during the run (and
    /// always on the way out), so a resume elsewhere repeats at most this much.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub checkpoint_every: std::time::Duration,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The policy the plan was judged by, when it was given to `plan --policy` (apply
    /// refuses, exit 4, when it is not the sealed one).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Go past a failed soft policy rule (repeatable); needs `--why`. Recorded with the run.
    /// Hard rules cannot be overridden.
    #[arg(long = "override", value_name = "RULE", requires = "why")]
    pub overrides: Vec<String>,
    /// Why the overridden rules may be passed (recorded with the run, shown by `show` and
    /// `status`).
    #[arg(long, value_name = "TEXT", requires = "overrides", value_parser = non_blank)]
    pub why: Option<String>,
}

/// A `--why` worth recording: not empty or only spaces.
fn non_blank(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("say why the rule may be passed; the reason is recorded with the run".into())
    } else {
        Ok(text.to_owned())
    }
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The state file.
    pub state: PathBuf,
    /// Output format.
    #[arg(long, value_parser = OutputFormat::values("For programs (items redacted unless `--reveal`)"), default_value = "text")]
    pub format: OutputFormat,
    /// Show identifier values in JSON output.
    #[arg(long)]
    pub reveal: bool,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The state file.
    pub state: PathBuf,
    /// Hide identifier values.
    #[arg(long)]
    pub redact: bool,
    /// Poll with back-off until every removed identifier is gone or this much time has passed
    /// (`--wait` alone: 6m, beyond Segment's documented propagation of up to 5 minutes).
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "6m",
          value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// Output format.
    #[arg(long, value_parser = OutputFormat::values("One JSON object (values redacted unless `--reveal`)"), default_value = "text")]
    pub format: OutputFormat,
    /// Show identifier values in JSON output.
    #[arg(long)]
    pub reveal: bool,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Formats of `report --downstream` and `report --results`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Rows with a header (`--downstream`: `seq,user_id,type,id,state`).
    Csv,
    /// One JSON object.
    Json,
}

/// Which rows `report --results` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResultRows {
    /// Items whose deletion failed.
    Failed,
}

/// `report`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["downstream", "sql", "results"])))]
pub struct ReportArgs {
    /// The state file (not needed with `--sql --discover` or `--discover-csv`).
    #[arg(required_unless_present_any = ["discover", "discover_csv"])]
    pub state: Option<PathBuf>,
    /// The removed identifiers, for clean-up in downstream destinations.
    #[arg(long)]
    pub downstream: bool,
    /// A warehouse query checking that Profiles Sync received the REMOVED rows.
    #[arg(long)]
    pub sql: bool,
    /// One row per item: seq, type, value (masked unless --reveal), action, state, attempts,
    /// HTTP status, Segment's error code and message, request id, last attempt time, origin.
    #[arg(long)]
    pub results: bool,
    /// With `--results`: only these rows (`failed`).
    #[arg(long, value_enum, value_name = "ROWS", requires = "results")]
    pub only: Option<ResultRows>,
    /// With `--results`: show identifier values instead of masked previews.
    #[arg(long, requires = "results")]
    pub reveal: bool,
    /// Output format of `--downstream` and `--results`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
    pub format: ReportFormat,
    /// The warehouse schema of Profiles Sync's tables (with `--sql`); `project.dataset` or
    /// `database.schema` also work.
    #[arg(long, default_value = "profiles_sync")]
    pub schema: String,
    /// The warehouse's SQL dialect (string and identifier quoting differ).
    #[arg(long, value_enum, default_value_t = crate::warehouse::Dialect::Postgres, requires = "sql")]
    pub dialect: crate::warehouse::Dialect,
    /// Write the removed identifiers to this CSV and print a query that loads and joins it
    /// (for more than 1,000 identifiers; a million is fine).
    #[arg(
        long,
        value_name = "FILE",
        requires = "sql",
        conflicts_with = "discover"
    )]
    pub csv: Option<PathBuf>,
    /// Instead: queries listing the profiles that carry a TYPE identifier LIKE PATTERN
    /// (`email:%@import.invalid`; repeatable, any matches), each with a user_id it keeps, to
    /// export as CSV for `idprune init --from-csv`.
    #[arg(long, value_name = "TYPE:PATTERN", requires = "sql")]
    pub discover: Vec<String>,
    /// Instead: the same queries for the identifiers listed in this CSV (`id_type,id_value`
    /// with a header), which the warehouse loads and joins.
    #[arg(
        long,
        value_name = "FILE",
        requires = "sql",
        conflicts_with_all = ["discover", "csv"]
    )]
    pub discover_csv: Option<PathBuf>,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The state file of a finished run.
    pub state: PathBuf,
    /// Read the fingerprint key from this file instead of `IDPRUNE_FINGERPRINT_KEY`.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The state file.
    pub state: PathBuf,
    /// The lock id shown by `status` or by the refused `apply`.
    pub lock_id: String,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's working directory (its manifest and state file) here instead of a
    /// temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `guard`.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The state file whose `delete` items are the identifiers to look for.
    pub state: PathBuf,
    /// Event Archive exports: gzipped or plain JSON-lines files, or directories walked
    /// recursively (`segment-logs/<source-id>/<received-day>/...`).
    #[arg(long, value_name = "PATH", required = true, num_args = 1..)]
    pub archive: Vec<PathBuf>,
    /// Write copies without the matching events here (same layout, same compression;
    /// malformed lines are kept unchanged). Refuses to replace existing files.
    #[arg(long, value_name = "DIR")]
    pub write_filtered: Option<PathBuf>,
    /// Follow symbolic links inside an archive directory: scan the files they point to and
    /// walk the folders (a link looping back is skipped). By default such links are skipped,
    /// since a planted one could point anywhere; paths given to --archive are always read.
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Output format.
    #[arg(long, value_parser = OutputFormat::values("One JSON object (no identifier values)"), default_value = "text")]
    pub format: OutputFormat,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `init --region`'s values: the manifest's own [`Region`]s, in its spelling, each described
/// by its host in `--help`.
fn region_values() -> impl clap::builder::TypedValueParser<Value = Region> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new([
        PossibleValue::new(Region::Us.as_str()).help("`profiles.segment.com`"),
        PossibleValue::new(Region::Eu.as_str()).help("`profiles.euw1.segment.com`"),
    ])
    .try_map(|value| value.parse::<Region>())
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The CSV export (for example from `report --sql --discover`).
    #[arg(long, value_name = "FILE")]
    pub from_csv: PathBuf,
    /// The column holding each row's profile lookup (`user_id`, `segment_id`, or any type).
    #[arg(long, value_name = "COL")]
    pub profile_column: String,
    /// A column of identifiers to remove; its header is the identifier type. Repeatable.
    #[arg(long, value_name = "COL", required = true)]
    pub remove_column: Vec<String>,
    /// The manifest to write (default: the CSV's path with `.yaml`). Must be in a directory
    /// that holds the CSV.
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// The Unify space id (left as a placeholder for you to fill in when absent).
    #[arg(long, value_name = "SPACE")]
    pub space: Option<String>,
    /// The space's region.
    #[arg(long, value_parser = region_values(), default_value = "us")]
    pub region: Region,
    /// Replace an existing manifest.
    #[arg(long)]
    pub force: bool,
}
