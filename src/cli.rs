//! The command line, as clap derive types only (the contract is in `docs/ARCHITECTURE.md`).
//! No behaviour lives here and nothing here imports the command layer: `commands` turns these
//! values into the plain options of `ops` (an `ops::Api`, a `ui::Ui`) once, and runs on those.
//!
//! This file holds the top level (global flags, the subcommands); `cli/net.rs` the flags of
//! the commands that talk to Segment, `cli/args.rs` each subcommand's own flags.

use clap::{Parser, Subcommand, ValueEnum};

mod args;
mod net;

pub use args::{
    ApplyArgs, DemoArgs, GuardArgs, InitArgs, PlanArgs, PurgeArgs, ReportArgs, ReportFormat,
    ResultRows, ShowArgs, StatusArgs, StoreArgs, UnlockArgs, ValidateArgs, ValueArgs, VerifyArgs,
};
pub use net::{ApiArgs, NetArgs, PaceArgs};

const EXAMPLES: &str = "\
Examples:
  idprune validate plans/2026-11-bad-emails.yaml
  SEGMENT_ACCESS_TOKEN=... idprune plan plans/2026-11-bad-emails.yaml
  idprune show plans/2026-11-bad-emails.state.db --format markdown >> \"$GITHUB_STEP_SUMMARY\"
  idprune apply plans/2026-11-bad-emails.state.db --approve sha256:9f2c4e1a0b3d
  idprune status plans/2026-11-bad-emails.state.db
  cargo run --release -- demo

Exit codes: 0 success/no changes, 1 error, 2 plan has changes (--detailed-exitcode),
3 some items failed, 4 refused (stale, tampered, not approved, locked), 130 interrupted.
A closed standard output (`| head`) ends a command quietly with exit 0.";

/// Remove mistaken identifiers from Segment Unify profiles: plan, review, apply.
#[derive(Debug, Parser)]
#[command(name = "idprune", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Print errors only: no progress, notes or warnings, and no human summary on stdout
    /// (views asked for, like `show`, `status`, `report` and `--format json`, still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set).
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Shells `completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest offline: syntax, schema, duplicates, guard rails knowable offline.
    #[command(after_help = "Example:\n  idprune validate plans/2026-11-bad-emails.yaml")]
    Validate(ValidateArgs),
    /// Resolve a manifest against the live profiles and seal the plan into a state file.
    #[command(
        after_help = "Examples:\n  idprune plan plans/x.yaml\n  idprune plan plans/x.yaml --receipt\n  idprune plan plans/x.yaml --check-receipt --format markdown\n  idprune plan plans/x.yaml -o /secure/x.state.db --detailed-exitcode --format markdown"
    )]
    Plan {
        /// What to plan.
        #[command(flatten)]
        args: PlanArgs,
        /// How to reach Segment.
        #[command(flatten)]
        net: NetArgs,
    },
    /// Render a sealed plan and its progress.
    #[command(
        after_help = "Examples:\n  idprune show plans/x.state.db\n  idprune show plans/x.state.db --format markdown\n  idprune show plans/x.state.db --format json --reveal"
    )]
    Show(ShowArgs),
    /// Execute the approved plan; running it again resumes.
    #[command(
        after_help = "Examples:\n  idprune apply plans/x.state.db --approve 9f2c4e1a0b3d\n  idprune apply plans/x.yaml --receipt plans/x.receipt.json\n  idprune apply plans/x.yaml --approve sha256:9f2c4e1a0b3d...\n  idprune apply plans/x.state.db --yes --retry-failed\n  idprune apply plans/x.state.db --approve 9f2c4e1a0b3d --canary 5\n  idprune apply plans/x.state.db --approve 9f2c4e1a0b3d --reapply   # after a space rebuild"
    )]
    Apply {
        /// What to apply.
        #[command(flatten)]
        args: ApplyArgs,
        /// How to reach Segment.
        #[command(flatten)]
        net: NetArgs,
    },
    /// Counts by state, lock holder, runs and last errors.
    #[command(after_help = "Example:\n  idprune status plans/x.state.db --format json")]
    Status(StatusArgs),
    /// Re-read the touched profiles and report identifiers still present; exit 2 if any.
    #[command(
        after_help = "Examples:\n  idprune verify plans/x.state.db\n  idprune verify plans/x.state.db --wait 6m\n\nExit codes: 0 every removed identifier is gone, 2 some are still present or re-introduced."
    )]
    Verify {
        /// What to verify.
        #[command(flatten)]
        args: VerifyArgs,
        /// How to reach Segment.
        #[command(flatten)]
        net: NetArgs,
    },
    /// What Segment leaves to you: removed identifiers for downstream tools, or a warehouse check.
    #[command(
        after_help = "Examples:\n  idprune report plans/x.state.db --downstream --format csv > removed.csv\n  idprune report plans/x.state.db --results --only failed > failed.csv\n  idprune report plans/x.state.db --sql --schema profiles_sync --dialect snowflake\n  idprune report plans/x.state.db --sql --dialect bigquery --schema my-project.profiles_sync --csv removed.csv\n  idprune report --sql --discover 'email:%@import.invalid' --dialect snowflake"
    )]
    Report(ReportArgs),
    /// Replace the identifier values of a finished run with keyed fingerprints (audit trail kept).
    #[command(
        after_help = "Example:\n  IDPRUNE_FINGERPRINT_KEY=\"$(cat ~/.idprune-key)\" idprune purge plans/x.state.db"
    )]
    Purge(PurgeArgs),
    /// Break a stale apply lock (refused while its holder runs on this host).
    #[command(after_help = "Example:\n  idprune unlock plans/x.state.db 3f2a9c01")]
    Unlock(UnlockArgs),
    /// Run the built-in Unify emulator on loopback.
    #[command(
        after_help = "Example:\n  IDPRUNE_EMULATOR_TOKEN=t idprune emulator --seed examples/demo-seed.json --listen 127.0.0.1:8080"
    )]
    Emulator(crate::emulator::Config),
    /// The whole job offline: emulator, plan, show, apply, status, verify.
    #[command(after_help = "Example:\n  cargo run --release -- demo")]
    Demo(DemoArgs),
    /// Find archived events that would re-add removed identifiers; exit 2 if any.
    #[command(
        after_help = "Examples:\n  idprune guard plans/x.state.db --archive s3-export/segment-logs\n  idprune guard plans/x.state.db --archive export/ --write-filtered export-filtered/\n  idprune guard plans/x.state.db --archive linked-export/ --follow-symlinks\n\nSymbolic links inside an archive folder are skipped unless --follow-symlinks is given.\n\nExit codes: 0 no event references a removed identifier, 2 some do, 1 error (also: a file\ncould not be read to its end)."
    )]
    Guard(GuardArgs),
    /// Write a manifest for a CSV export, pinned by sha256, `reason` left for you to fill in.
    #[command(
        after_help = "Example:\n  idprune init --from-csv plans/bad-emails.csv --profile-column segment_id --remove-column email -o plans/2026-11-bad-emails.yaml"
    )]
    Init(InitArgs),
    /// Print a shell completion script to stdout.
    #[command(
        after_help = "Examples:\n  idprune completions bash > ~/.local/share/bash-completion/completions/idprune\n  idprune completions zsh > \"${fpath[1]}/_idprune\"\n  idprune completions fish > ~/.config/fish/completions/idprune.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) to stdout.
    #[command(after_help = "Example:\n  idprune man > ~/.local/share/man/man1/idprune.1")]
    Man,
}

/// `--format` of `validate`, `apply`, `status`, `verify` and `guard`: text for people, or one
/// JSON object. What the JSON holds differs by command, so each flag says it in its help
/// ([`OutputFormat::values`]). (`plan` and `show` add markdown: [`crate::render::Format`];
/// `report` writes CSV or JSON: [`ReportFormat`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

impl OutputFormat {
    /// The values of a command's `--format` (`text`, the default, and `json`), with `json`
    /// described as `json_help` in `--help`.
    pub fn values(json_help: &'static str) -> impl clap::builder::TypedValueParser<Value = Self> {
        use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
        PossibleValuesParser::new([
            PossibleValue::new("text").help("For people"),
            PossibleValue::new("json").help(json_help),
        ])
        .map(|value| match value.as_str() {
            "json" => Self::Json,
            _ => Self::Text,
        })
    }
}

/// Flags whose values are free text that their command quotes or escapes itself, and may hold
/// any character: a `--discover` pattern is quoted into SQL (a warehouse may hold hostile
/// values), a `--why` is the override's recorded reason.
const FREE_TEXT_FLAGS: [&str; 2] = ["--discover", "--why"];

/// Refuses a command-line argument that holds a control or invisible character
/// ([`crate::text::is_deceptive`]), before clap reads any: no path, digest, column or other
/// value needs one, and once in a message (clap's usage errors quote values raw, and every
/// error names its file) a line break would start a line of its own in a CI log or job
/// summary, and an escape would drive the terminal. The values of `FREE_TEXT_FLAGS` are
/// exempt. `args` excludes the program name.
pub fn refuse_deceptive_arguments(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(), String> {
    let mut free_text = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy();
        if std::mem::take(&mut free_text) {
            continue;
        }
        if FREE_TEXT_FLAGS.contains(&text.as_ref()) {
            free_text = true;
            continue;
        }
        if FREE_TEXT_FLAGS
            .iter()
            .any(|flag| text.strip_prefix(flag).is_some_and(|v| v.starts_with('=')))
        {
            continue;
        }
        if text.chars().any(crate::text::is_deceptive) {
            return Err(format!(
                "argument {} `{}` holds a control or invisible character (shown escaped); idprune takes no argument with one: rename the file, or type the value again",
                i + 1,
                crate::text::clean(&text)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_with_control_or_invisible_characters_are_refused() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            refuse_deceptive_arguments(args(&["show", "plans/it's a plan.state.db", "é"])),
            Ok(())
        );
        for bad in [
            "x\n~~~~.state.db",
            "a\u{1b}[2J",
            "tab\there",
            "rtl\u{202e}gpj.db",
        ] {
            let err = refuse_deceptive_arguments(args(&["show", bad])).expect_err(bad);
            assert!(err.starts_with("argument 2 `"), "{err}");
            assert!(!err.contains(['\n', '\u{1b}', '\t', '\u{202e}']), "{err:?}");
        }
        // Free text, quoted or escaped by its command, in both spellings; the flag itself
        // does not exempt anything after its value.
        assert_eq!(
            refuse_deceptive_arguments(args(&[
                "report",
                "--sql",
                "--discover",
                "email:a\nb%",
                "--discover=email:\u{202e}%",
                "--why",
                "two\nlines",
            ])),
            Ok(())
        );
        assert!(
            refuse_deceptive_arguments(args(&["apply", "--why", "ok", "x\n.state.db"])).is_err()
        );
    }
}
