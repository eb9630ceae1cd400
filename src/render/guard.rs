//! The view of `idprune guard`'s [`Scan`]: for people (types, counts, files, `messageId`s, the
//! malformed and unreadable files) and as one JSON object. Identifier values are never printed.

use std::io::Write;

use serde_json::json;

use super::{clean, thousands};
use crate::guard::{FORMAT_VERSION, Sample, Scan};

fn sample_text(s: &Sample) -> String {
    match &s.message_id {
        Some(id) => format!("messageId {}", clean(id)),
        None => format!("line {} (no messageId)", s.line),
    }
}

/// Writes the guard's findings for people. Identifier values are never printed: only types, counts,
/// files and `messageId`s.
pub fn guard_text(scan: &Scan, mut out: impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "Scanned {} files ({:.1} MB of JSON lines, {} events) for {} removed identifiers in {:.1} s ({:.0} MB/s).",
        thousands(scan.files.len() as u64),
        scan.bytes() as f64 / 1e6,
        thousands(scan.events()),
        thousands(scan.targets as u64),
        scan.elapsed.as_secs_f64(),
        scan.mb_per_sec()
    )?;
    if scan.skipped_files > 0 {
        writeln!(
            out,
            "Skipped {} files that are not .gz, .jsonl, .ndjson or .json.",
            thousands(scan.skipped_files)
        )?;
    }
    let matched = scan.matched();
    matches_text(scan, matched, &mut out)?;
    let malformed = scan.malformed_total();
    malformed_text(scan, malformed, &mut out)?;
    closing_text(scan, (matched, malformed), &mut out)
}

/// The events that reference a removed identifier: by type, then by file with their
/// `messageId`s; or that none does.
fn matches_text(scan: &Scan, matched: u64, out: &mut impl Write) -> anyhow::Result<()> {
    if matched == 0 {
        writeln!(
            out,
            "No event references a removed identifier: replaying these files does not re-add one."
        )?;
        return Ok(());
    }
    let identifiers: u64 = scan.identifiers_by_type.values().sum();
    writeln!(
        out,
        "Found {} events referencing {} removed identifiers; replaying them would re-add those identifiers.",
        thousands(matched),
        thousands(identifiers)
    )?;
    writeln!(out, "By identifier type (events, distinct identifiers):")?;
    for (kind, n) in scan.by_type() {
        writeln!(
            out,
            "  {}: {} events, {} identifiers",
            clean(&kind),
            thousands(n),
            thousands(scan.identifiers_by_type.get(&kind).copied().unwrap_or(0))
        )?;
    }
    writeln!(out, "By file:")?;
    for f in scan.files.iter().filter(|f| f.matched > 0) {
        let samples: Vec<String> = f.samples.iter().map(sample_text).collect();
        writeln!(
            out,
            "  {}: {} of {} events ({}{})",
            clean(&f.path.display().to_string()),
            thousands(f.matched),
            thousands(f.events),
            samples.join(", "),
            if f.matched > f.samples.len() as u64 {
                ", …"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

/// The malformed lines, as many as were kept, and how many more.
fn malformed_text(scan: &Scan, malformed: u64, out: &mut impl Write) -> anyhow::Result<()> {
    if malformed == 0 {
        return Ok(());
    }
    let kept = if scan.filtered_dir.is_some() {
        "kept unchanged in the filtered copy"
    } else {
        "not events; a filtered copy keeps them unchanged"
    };
    writeln!(
        out,
        "Malformed lines: {} ({kept}; check them by hand before a replay):",
        thousands(malformed)
    )?;
    for m in &scan.malformed {
        writeln!(
            out,
            "  {}:{}: {}",
            clean(&m.file.display().to_string()),
            m.line,
            clean(&m.error)
        )?;
    }
    if malformed > scan.malformed.len() as u64 {
        writeln!(
            out,
            "  … and {} more",
            thousands(malformed - scan.malformed.len() as u64)
        )?;
    }
    Ok(())
}

/// The unreadable files, then the filtered copies written or how to write them.
fn closing_text(
    scan: &Scan,
    (matched, malformed): (u64, u64),
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for f in scan.unreadable() {
        writeln!(
            out,
            "Unreadable: {}: {}{}",
            clean(&f.path.display().to_string()),
            clean(f.error.as_deref().unwrap_or("")),
            if scan.filtered_dir.is_some() {
                " (no filtered copy written)"
            } else {
                ""
            }
        )?;
    }
    if let Some(dir) = &scan.filtered_dir {
        let copies = scan.files.iter().filter(|f| f.copy.is_some()).count();
        writeln!(
            out,
            "Filtered copies: {} files under `{}`, without the {} matching events{}; replay those instead.",
            thousands(copies as u64),
            clean(&dir.display().to_string()),
            thousands(matched),
            if malformed > 0 {
                format!(", with the {} malformed lines kept", thousands(malformed))
            } else {
                String::new()
            }
        )?;
    } else if matched > 0 {
        writeln!(
            out,
            "Run again with --write-filtered DIR for copies without these events, and fix the source that sent them."
        )?;
    }
    Ok(())
}

/// Writes the guard's findings as one JSON object (no identifier values).
pub fn guard_json(scan: &Scan, mut out: impl Write) -> anyhow::Result<()> {
    let files: Vec<_> = scan
        .files
        .iter()
        .map(|f| {
            json!({
                "path": f.path.display().to_string(),
                "gzip": f.gzip,
                "lines": f.lines,
                "events": f.events,
                "matched": f.matched,
                "malformed": f.malformed,
                "bytes": f.bytes,
                "by_type": f.by_type,
                "samples": f.samples.iter().map(|s| json!({"line": s.line, "message_id": s.message_id})).collect::<Vec<_>>(),
                "error": f.error,
                "copy": f.copy.as_ref().map(|p| p.display().to_string()),
            })
        })
        .collect();
    let value = json!({
        "format_version": FORMAT_VERSION,
        "targets": scan.targets,
        "files_scanned": scan.files.len(),
        "files_skipped": scan.skipped_files,
        "bytes": scan.bytes(),
        "events": scan.events(),
        "matched": scan.matched(),
        "by_type": scan.by_type(),
        "identifiers_by_type": scan.identifiers_by_type,
        "malformed_total": scan.malformed_total(),
        "malformed": scan.malformed.iter().map(|m| json!({"file": m.file.display().to_string(), "line": m.line, "error": m.error})).collect::<Vec<_>>(),
        "unreadable": scan.unreadable().count(),
        "filtered_dir": scan.filtered_dir.as_ref().map(|p| p.display().to_string()),
        "elapsed_secs": scan.elapsed.as_secs_f64(),
        "files": files,
    });
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{self, archive, matcher::Targets};

    #[test]
    fn the_text_names_malformed_lines_and_never_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("a.jsonl");
        std::fs::write(
            &input,
            "{\"userId\":\"u_bad\"}\nnot json\n{\"traits\":{\"email\":\"BAD@x.com\"}}\n",
        )
        .expect("write");
        let targets = Targets::new([("user_id", "u_bad"), ("email", "bad@x.com")]);
        let found =
            archive::find(std::slice::from_ref(&input), archive::Links::Skip).expect("find");
        let scan = guard::scan(&targets, &found, None, |_| {}).expect("scan");
        let mut text = Vec::new();
        guard_text(&scan, &mut text).expect("text");
        let text = String::from_utf8(text).expect("utf8");
        assert!(text.contains("a.jsonl:2:"), "{text}");
        for value in ["u_bad", "bad@x.com", "BAD@x.com"] {
            assert!(!text.contains(value), "values are never printed: {text}");
        }
    }
}
