//! `guard`: scan Event Archive exports for events that would re-add a removed identifier.

use std::io::Write as _;

use crate::cli::{GuardArgs, OutputFormat};
use crate::exit::Exit;
use crate::guard::{self, archive, matcher::Targets};
use crate::plan::Action;
use crate::render;
use crate::state::State;

/// `idprune guard STATE --archive PATH...`: exit 2 when an archived event references an
/// identifier the plan removes, 0 when none does, 1 when a file could not be read to its end.
pub fn guard(args: &GuardArgs, ui: &super::Ui) -> anyhow::Result<Exit> {
    crate::ops::sniff::expect_state(&args.state, "guard")?;
    let state = State::open(&args.state)?;
    if state.purged_at()?.is_some() {
        anyhow::bail!(
            "state file `{}` was purged: its identifiers are fingerprints and cannot be matched against events",
            args.state.display()
        );
    }
    let targets = removed_identifiers(&state)?;
    if targets.is_empty() {
        writeln!(
            super::ui::stdout(),
            "The plan removes no identifiers; there is nothing to look for."
        )?;
        return Ok(Exit::Success);
    }
    if targets.parses_every_line() {
        ui.shout(
            "note: a removed identifier has no ASCII character, so every line is parsed (slower)",
        );
    }
    let found = archive_files(args)?;
    if let Some(dir) = &args.write_filtered {
        guard::check_output(&found, &args.archive, dir)?;
    }
    let quiet = args.format == OutputFormat::Json;
    let scan = guard::scan(&targets, &found, args.write_filtered.as_deref(), |p| {
        if !quiet {
            ui.shout(format!(
                "guard: {} of {} files, {:.0} MB scanned, {:.0} MB/s",
                p.files_done,
                p.files,
                p.bytes as f64 / 1e6,
                p.bytes as f64 / 1e6 / p.elapsed.as_secs_f64().max(1e-9)
            ));
        }
    })?;
    let mut out = std::io::BufWriter::new(crate::ui::stdout());
    match args.format {
        OutputFormat::Text => crate::render::guard_text(&scan, &mut out)?,
        OutputFormat::Json => crate::render::guard_json(&scan, &mut out)?,
    }
    out.flush()?;
    let unreadable: Vec<String> = scan
        .unreadable()
        .map(|f| format!("`{}`", render::clean(&f.path.display().to_string())))
        .collect();
    if !unreadable.is_empty() {
        anyhow::bail!(
            "{} archive files could not be read to their end ({}); the scan is incomplete: fetch them again and re-run",
            unreadable.len(),
            unreadable.join(", ")
        );
    }
    Ok(if scan.matched() > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// The identifiers this plan removes: every `delete` item, whatever its state (an item not
/// yet applied is removed by the next apply; a replay before that re-adds nothing new, but
/// one after it does).
fn removed_identifiers(state: &State) -> anyhow::Result<Targets> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    state.for_each_item(|s| {
        if s.item.action == Action::Delete {
            pairs.push((s.item.identifier.kind, s.item.identifier.id));
        }
        Ok(())
    })?;
    Ok(Targets::new(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

/// The archive files under `--archive` (symbolic links followed with `--follow-symlinks`);
/// refused when there is none.
fn archive_files(args: &GuardArgs) -> anyhow::Result<archive::Found> {
    let links = if args.follow_symlinks {
        archive::Links::Follow
    } else {
        archive::Links::Skip
    };
    let found = archive::find(&args.archive, links)?;
    if found.files.is_empty() {
        anyhow::bail!(
            "no archive files (.gz, .jsonl, .ndjson, .json) under {}; pass the export's directory or its files",
            args.archive
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(found)
}
