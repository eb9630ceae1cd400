//! `show`, `status`, `report`, `purge` and `unlock`: the commands that read a sealed state
//! file (`purge` and `unlock` change it; `verify` is in its own module).

use anyhow::Context as _;
use std::io::Write as _;

use super::plan::{default_redaction, print_plan};
use super::{Refused, Ui};
use crate::cli::{
    OutputFormat, PurgeArgs, ReportArgs, ReportFormat, ShowArgs, StatusArgs, UnlockArgs,
};
use crate::exit::Exit;
use crate::ops::sniff;
use crate::render::{self, Redaction, StatusView};
use crate::state::{ItemFilter, State, StoredItem};
use crate::text::plural;

/// `idprune show STATE`.
pub fn show(args: &ShowArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "show")?;
    let state = State::open(&args.state)?;
    print_plan(
        &state,
        args.format,
        default_redaction(
            args.format,
            args.values.redact.is_some(),
            args.values.reveal,
        ),
        args.values.redact,
        None,
        ui,
    )?;
    Ok(Exit::Success)
}

/// `idprune status STATE`.
pub fn status(args: &StatusArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "status")?;
    let state = State::open(&args.state)?;
    let view = StatusView {
        meta: state.meta()?,
        counts: state.counts()?,
        lock: state.lock_holder()?,
        last_errors: state.last_errors(5)?,
        runs: state.runs()?,
        sample: state.sample()?,
        data_as_of: state.data_as_of()?,
        state: &state,
    };
    let color = ui.color && args.format == OutputFormat::Text;
    let mut out = super::ui::Colored::new(std::io::BufWriter::new(super::ui::stdout()), color);
    match args.format {
        OutputFormat::Text => {
            render::status_text(&view, &mut out)?;
            render::verification_history_text(&state.verifications()?, &mut out)?;
        }
        OutputFormat::Json => render::status_json(&view, Redaction(!args.reveal), &mut out)?,
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `idprune report STATE --downstream | --results | --sql [--dialect D] [--csv FILE]`, and
/// `idprune report --sql --discover TYPE:PATTERN` (no state file needed).
pub fn report(args: &ReportArgs, ui: &Ui) -> anyhow::Result<Exit> {
    use crate::downstream;
    if args.sql {
        check_schema(&args.schema)?;
    }
    let mut out = std::io::BufWriter::new(super::ui::stdout());
    if discover(args, &mut out)? {
        out.flush()?;
        return Ok(Exit::Success);
    }
    let Some(path) = &args.state else {
        anyhow::bail!(
            "report needs the state file (only `--sql --discover` and `--sql --discover-csv` work without one)"
        );
    };
    sniff::expect_state(path, "report")?;
    let state = State::open(path)?;
    if let Some(at) = state.purged_at()? {
        ui.shout(format!(
            "note: `{}` was purged at {}: its identifier values are keyed fingerprints (`{}...`), not the identifiers; use the lists made before the purge for clean-up elsewhere.",
            path.display(),
            render::timestamp(at),
            crate::state::FINGERPRINT_PREFIX
        ));
    }
    let items = |f: &mut dyn FnMut(StoredItem) -> anyhow::Result<()>| {
        state.for_each_item_in(ItemFilter::All, u64::MAX, f)
    };
    if args.sql {
        profiles_sync_check(args, &state, &mut out, ui)?;
    } else if args.results {
        let level = (!args.reveal).then_some(crate::mask::RedactLevel::Preview);
        let masker = crate::mask::Masker::for_state(&state, level)?;
        let only_failed = args.only == Some(crate::cli::ResultRows::Failed);
        let rows = |f: &mut dyn FnMut(crate::results::Row) -> anyhow::Result<()>| {
            state.for_each_result(only_failed, |r| f(crate::results::Row::new(&r, &masker)))
        };
        match args.format {
            ReportFormat::Csv => crate::results::write_csv(rows, &mut out)?,
            ReportFormat::Json => crate::results::write_json(rows, &mut out)?,
        };
    } else {
        match args.format {
            ReportFormat::Csv => downstream::write_csv(items, &mut out)?,
            ReportFormat::Json => downstream::write_json(items, &mut out)?,
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// Refuses a `--schema` that is not a plain (possibly dotted) SQL name.
fn check_schema(schema: &str) -> anyhow::Result<()> {
    let schema_ok = !schema.is_empty()
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$'));
    if !schema_ok {
        anyhow::bail!(
            "--schema `{}` may only hold letters, digits, `_`, `-`, `$` and `.`",
            render::clean(schema)
        );
    }
    Ok(())
}

/// `--sql --discover-csv FILE` or `--sql --discover TYPE:PATTERN`: the discovery query, no
/// state file needed. False when neither was asked for.
fn discover(args: &ReportArgs, out: &mut impl std::io::Write) -> anyhow::Result<bool> {
    use crate::warehouse::{self, Discover};
    let name = args.discover_csv.as_ref().map(|p| p.display().to_string());
    let discover = match (&args.discover_csv, &name) {
        (Some(csv_path), Some(name)) => Discover::csv(csv_path, name)?,
        _ if !args.discover.is_empty() => Discover::patterns(&args.discover)?,
        _ => return Ok(false),
    };
    warehouse::discover_sql(args.dialect, &args.schema, &discover, out)?;
    Ok(true)
}

/// `--sql`: the Profiles Sync check over the removed identifiers, inline in the query or,
/// with `--csv FILE`, written to a new `0600` file the query loads.
fn profiles_sync_check(
    args: &ReportArgs,
    state: &State,
    out: &mut impl std::io::Write,
    ui: &Ui,
) -> anyhow::Result<()> {
    use crate::warehouse::{self, Removed};
    let items = |f: &mut dyn FnMut(StoredItem) -> anyhow::Result<()>| {
        state.for_each_item_in(ItemFilter::All, u64::MAX, f)
    };
    let Some(csv_path) = &args.csv else {
        let rows = warehouse::inline_rows(items)?;
        return warehouse::profiles_sync_sql(
            &Removed::Inline(rows),
            args.dialect,
            &args.schema,
            out,
        );
    };
    warehouse::check_printable_path("--csv", &csv_path.display().to_string())?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(csv_path)
        .with_context(|| format!("creating `{}` (it must not exist yet)", csv_path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let n = warehouse::removed_csv(items, &mut w)?;
    w.flush()
        .with_context(|| format!("writing `{}`", csv_path.display()))?;
    let name = csv_path.display().to_string();
    warehouse::profiles_sync_sql(&Removed::Csv(&name), args.dialect, &args.schema, out)?;
    ui.shout(format!(
        "Wrote {} removed identifiers to `{}` (it holds the identifiers themselves: delete it after the check).",
        render::thousands(n),
        csv_path.display()
    ));
    Ok(())
}

/// Opens files `0600`: they hold identifiers.
trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// `idprune purge STATE`.
pub fn purge(args: &PurgeArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "purge")?;
    let key = match &args.key_file {
        Some(path) => {
            crate::bounded::read_secret_line(path, "key file", crate::ops::MAX_KEY_FILE_BYTES)?
        }
        None => std::env::var(super::FINGERPRINT_KEY_ENV).unwrap_or_default(),
    };
    let key = key.trim();
    if key.is_empty() {
        anyhow::bail!(
            "no fingerprint key: set {} or pass --key-file PATH (keep the key: it is what lets an audit check an identifier later)",
            super::FINGERPRINT_KEY_ENV
        );
    }
    let mut state = State::open(&args.state)?;
    if let Some(holder) = state.lock_holder()?.filter(|h| !h.is_stale()) {
        return Err(Refused(crate::state::lock::locked_by(&args.state, &holder)).into());
    }
    let n = state.purge(key.as_bytes())?;
    ui.say(format!(
        "Purged `{}`: {} now {} keyed fingerprints instead of identifier values; outcomes and runs are kept.",
        args.state.display(),
        plural(n, "item", "items"),
        if n == 1 { "holds" } else { "hold" }
    ))?;
    Ok(Exit::Success)
}

/// `idprune unlock STATE LOCK_ID`.
pub fn unlock(args: &UnlockArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "unlock")?;
    let state = State::open(&args.state)?;
    let holder = state
        .unlock(&args.lock_id)
        .map_err(|e| Refused(e.to_string()))?;
    ui.say(format!("Broke the lock held by {holder}."))?;
    Ok(Exit::Success)
}
