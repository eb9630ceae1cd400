//! The markdown view of a plan, for a pull-request comment or a job summary: what a reviewer
//! needs to judge a plan without seeing the data, safe to paste, and bounded in size.
//!
//! - Counts first (by action, by identifier type, by source file), then the facts the digest
//!   covers (digest, space, API host, manifest and pinned sources with their sha256), the
//!   reason and the expiry; identical change shapes grouped ("1,180 profiles lose one email at
//!   @import.invalid"); the per-profile diff in a collapsed `<details>` block.
//! - Values are masked previews with keyed fingerprints ([`crate::mask`]) unless revealed.
//! - Every value from outside (space, reason, file names, types, notes, warnings, revealed
//!   values) goes through [`escape`] in text, or sits in a fenced code block where GitHub
//!   renders nothing, so no value can close the `<details>` block, inject HTML or an image,
//!   mention someone or form a link. Raw HTML lines hold only our own words and numbers.
//! - The whole view stays under [`BUDGET`] bytes (GitHub's comment limit is 65,536
//!   characters) whatever the plan's size, and says what it left out and where the full plan is.
//!
//! `escape.rs` holds the escaping, `breakdown.rs` the counts read from the state file; this
//! file lays the view out within the budget. `docs/ARCHITECTURE.md` places the view.

use std::fmt::Write as _;
use std::io::Write;

use crate::mask::Masker;
use crate::plan::Action;
use crate::receipt::Unresolved;
use crate::render::{
    PlanView, SCOPE_REMINDER, profile_diff, progress_line, started, summary_line, thousands,
    timestamp,
};
use crate::state::ItemFilter;

mod breakdown;
mod escape;

use breakdown::breakdown;
use escape::code;
pub use escape::{code_span, escape};

/// GitHub's limit on a comment, in characters.
pub const GITHUB_LIMIT: usize = 65_536;
/// The most bytes the view writes (bytes ≥ characters), leaving room under [`GITHUB_LIMIT`].
pub const BUDGET: usize = 60_000;
/// Bytes kept back for the closing sections (what was left out, warnings, the scope note).
const TAIL_RESERVE: usize = 6_000;
/// Rows of each counts table and groups of change shapes shown at most.
const TABLE_ROWS: usize = 20;
/// The longest reason shown, in characters.
const REASON_CHARS: usize = 1_000;

/// A bounded document: appends stop at the budget.
struct Doc {
    buf: String,
    limit: usize,
}

impl Doc {
    fn room(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    /// Appends `text` when it fits in the room left above `reserve`; says whether it did.
    fn fits(&mut self, text: &str, reserve: usize) -> bool {
        if text.len() + reserve <= self.room() {
            self.buf.push_str(text);
            true
        } else {
            false
        }
    }

    /// Appends `text` like [`Doc::fits`], or ends the walk it is called from with
    /// [`BudgetSpent`] (which [`stop_at_budget`] turns back into a normal end).
    fn fits_or_stop(&mut self, text: &str, reserve: usize) -> anyhow::Result<()> {
        if self.fits(text, reserve) {
            Ok(())
        } else {
            Err(BudgetSpent.into())
        }
    }

    /// Appends `text`, cut at the budget (used for the closing lines only).
    fn push(&mut self, text: &str) {
        if text.len() <= self.room() {
            self.buf.push_str(text);
        }
    }
}

/// Ends a walk over the state file once the budget is spent.
#[derive(Debug, thiserror::Error)]
#[error("the markdown budget is spent")]
struct BudgetSpent;

/// A walk's result, with [`BudgetSpent`] counting as a normal end.
fn stop_at_budget(walked: anyhow::Result<()>) -> anyhow::Result<()> {
    match walked {
        Err(e) if e.downcast_ref::<BudgetSpent>().is_some() => Ok(()),
        other => other,
    }
}
/// Notes how many rows of a table of `rows` were left out beyond [`TABLE_ROWS`].
fn more_rows(s: &mut String, rows: usize, what: &str) -> std::fmt::Result {
    if rows > TABLE_ROWS {
        writeln!(
            s,
            "\n… and {} more {what}.",
            thousands((rows - TABLE_ROWS) as u64)
        )?;
    }
    Ok(())
}

/// Writes the markdown view of `view`; `state_path` is where the full plan is (as shown to
/// the reviewer). Every value is masked by `m` (or revealed when `m` reveals).
pub fn plan(
    view: &PlanView<'_>,
    m: &Masker,
    state_path: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let meta = &view.meta;
    let counts = &view.counts;
    let mut doc = Doc {
        buf: String::new(),
        limit: BUDGET,
    };
    let applied = started(counts);
    let mut s = String::new();
    writeln!(
        s,
        "### idprune plan for {} ({})\n",
        code_span(&meta.space),
        escape(&meta.region)
    )?;
    let unresolved = Unresolved::of(view.state)?;
    if unresolved.suspicious() {
        writeln!(
            s,
            "> [!WARNING]\n> **{} of {} profile lookups found no profile.** {} Check before approving.\n",
            thousands(unresolved.unresolved),
            thousands(unresolved.lookups),
            unresolved.cause()
        )?;
    }
    writeln!(s, "**{}**\n", summary_line(counts))?;
    writeln!(s, "{}\n", crate::render::Estimate::of(counts).line())?;
    if let Some(sample) = &view.sample {
        // Our own sentence of numbers: nothing from outside to escape.
        let mark = if sample.over() {
            "> [!WARNING]\n> "
        } else {
            ""
        };
        writeln!(s, "{mark}{}\n", sample.line())?;
    }
    if let Some(policy) = &view.policy {
        policy_section(&mut s, policy, &view.overrides)?;
    }
    if applied {
        writeln!(s, "**Applied.** {}\n", progress_line(counts))?;
    }
    writeln!(s, "| action | items |\n|---|---:|")?;
    for a in Action::ALL {
        writeln!(s, "| {} | {} |", a.as_str(), thousands(counts.action(a)))?;
    }
    writeln!(
        s,
        "| profiles losing identifiers | {} |",
        thousands(counts.delete_profiles)
    )?;
    doc.fits(&s, 0);

    let b = breakdown(view.state, m)?;
    let mut s = String::from("\n| identifier type |");
    for a in Action::ALL {
        write!(s, " {} |", a.as_str())?;
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(Action::ALL.len()));
    s.push('\n');
    for (kind, actions) in b.by_type.iter().take(TABLE_ROWS) {
        write!(s, "| {} |", escape(kind))?;
        for a in Action::ALL {
            write!(
                s,
                " {} |",
                thousands(actions.get(a.as_str()).copied().unwrap_or(0))
            )?;
        }
        s.push('\n');
    }
    more_rows(&mut s, b.by_type.len(), "identifier types")?;
    doc.fits(&s, TAIL_RESERVE);

    let mut s = String::from("\n| source file | items | to delete |\n|---|---:|---:|\n");
    for (file, (items, deletes)) in b.by_source.iter().take(TABLE_ROWS) {
        writeln!(
            s,
            "| {} | {} | {} |",
            escape(file),
            thousands(*items),
            thousands(*deletes)
        )?;
    }
    more_rows(&mut s, b.by_source.len(), "source files")?;
    doc.fits(&s, TAIL_RESERVE);

    if !b.shapes.is_empty() {
        let mut shapes: Vec<(&String, &u64)> = b.shapes.iter().collect();
        shapes.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let mut s = String::from("\n**Changes, grouped by shape:**\n\n");
        for (text, n) in shapes.iter().take(TABLE_ROWS) {
            writeln!(
                s,
                "- {} profile{} lose{} {text}",
                thousands(**n),
                if **n == 1 { "" } else { "s" },
                if **n == 1 { "s" } else { "" }
            )?;
        }
        let rest: u64 = shapes
            .iter()
            .skip(TABLE_ROWS)
            .map(|(_, n)| **n)
            .sum::<u64>()
            + b.other_shapes;
        if rest > 0 {
            writeln!(s, "- {} more profiles in other shapes", thousands(rest))?;
        }
        doc.fits(&s, TAIL_RESERVE);
    }

    let mut s = String::from("\n");
    writeln!(s, "- Digest: `{}`", meta.digest)?;
    writeln!(
        s,
        "- Space: {} · region {} · API host: {}",
        code_span(&meta.space),
        code_span(&meta.region),
        code_span(&meta.api_origin)
    )?;
    let reason: String = meta.reason.chars().take(REASON_CHARS).collect();
    writeln!(
        s,
        "- Reason: {}{}",
        escape(&reason),
        if reason.len() < meta.reason.len() {
            " …"
        } else {
            ""
        }
    )?;
    writeln!(
        s,
        "- Manifest: {} (sha256 {})",
        code_span(&meta.manifest_path),
        code_span(&meta.manifest_sha256)
    )?;
    for src in view.state.sources()?.iter().take(TABLE_ROWS) {
        writeln!(
            s,
            "- Source: {} ({} rows, sha256 {}{})",
            code_span(&src.written),
            thousands(src.rows),
            code_span(&src.sha256),
            if src.pinned { ", pinned" } else { "" }
        )?;
    }
    let expires = meta
        .created_at
        .saturating_add(i64::try_from(meta.ttl_secs).unwrap_or(i64::MAX));
    writeln!(
        s,
        "- Planned: {} · expires: {}",
        timestamp(meta.created_at),
        timestamp(expires)
    )?;
    if applied {
        writeln!(
            s,
            "- Applied from this plan; `idprune status` shows the runs, `idprune verify` re-reads the profiles."
        )?;
        // Who ran it: the last run's CI context, as a code span (no value in it can form a
        // link, a mention or markup).
        if let Some(run) = view.state.runs()?.last() {
            let at = run
                .context
                .as_ref()
                .map(|c| format!(" in {}", code_span(&c.summary())))
                .unwrap_or_default();
            writeln!(
                s,
                "- Last run: run {} by {} on {}{at}, {}",
                run.id,
                code_span(&run.user),
                code_span(&run.host),
                run.outcome.as_deref().map_or("running or died", |o| o)
            )?;
        }
    } else {
        writeln!(
            s,
            "- Approve: merge with the committed receipt, or `idprune apply <state> --approve {}`",
            meta.digest
        )?;
    }
    if m.hides() {
        writeln!(
            s,
            "- Values are masked previews with a keyed fingerprint (`~1a2b3c4d`: the same value has the same fingerprint with the same key); run `idprune show <state>` where the state file is to see them."
        )?;
    }
    doc.fits(&s, TAIL_RESERVE / 2);

    let mut left_out: Vec<String> = Vec::new();
    if counts.delete_profiles > 0 {
        let head = format!(
            "\n<details><summary>Per-profile changes ({} profiles)</summary>\n\n```diff\n",
            thousands(counts.delete_profiles)
        );
        let foot = "```\n</details>\n";
        if doc.fits(&head, TAIL_RESERVE + foot.len()) {
            let mut shown = 0u64;
            let walked = view
                .state
                .for_each_profile_diff(u64::MAX, |profile, items| {
                    let deleting = items
                        .iter()
                        .map(|s| (&s.item.identifier, s.item.seq))
                        .collect();
                    let mut block = format!("# profile {}\n", code(&m.lookup(&profile.lookup)));
                    for line in profile_diff(profile, &deleting) {
                        let seq = line.seq.map(|s| format!("   #{s}")).unwrap_or_default();
                        let _ =
                            writeln!(block, "{}   {}{seq}", line.sign, code(&m.ident(line.ident)));
                    }
                    doc.fits_or_stop(&block, TAIL_RESERVE + foot.len())?;
                    shown += 1;
                    Ok(())
                });
            stop_at_budget(walked)?;
            doc.push(foot);
            if shown < counts.delete_profiles {
                left_out.push(format!(
                    "the diffs of {} of {} profiles",
                    thousands(counts.delete_profiles - shown),
                    thousands(counts.delete_profiles)
                ));
            }
        } else {
            left_out.push(format!(
                "the diffs of all {} profiles",
                thousands(counts.delete_profiles)
            ));
        }
    }
    let others = view.state.count_items(ItemFilter::NotSentOrNoted)?;
    if others > 0 {
        let head = format!(
            "\n<details><summary>Not sent, or worth a look ({})</summary>\n\n```\n",
            thousands(others)
        );
        let foot = "```\n</details>\n";
        if doc.fits(&head, TAIL_RESERVE / 2 + foot.len()) {
            let mut shown = 0u64;
            let walked = view
                .state
                .for_each_item_in(ItemFilter::NotSentOrNoted, u64::MAX, |s| {
                    let note = s
                        .item
                        .note
                        .as_deref()
                        .map(|n| format!(" — {}", code(n)))
                        .unwrap_or_default();
                    let line = format!(
                        "#{} {:<10} {} via {}{note}\n",
                        s.item.seq,
                        s.item.action.as_str(),
                        code(&m.ident(&s.item.identifier)),
                        code(&m.lookup(&s.item.lookup))
                    );
                    doc.fits_or_stop(&line, TAIL_RESERVE / 2 + foot.len())?;
                    shown += 1;
                    Ok(())
                });
            stop_at_budget(walked)?;
            doc.push(foot);
            if shown < others {
                left_out.push(format!(
                    "{} of {} items not sent or worth a look",
                    thousands(others - shown),
                    thousands(others)
                ));
            }
        } else {
            left_out.push(format!(
                "{} items not sent or worth a look",
                thousands(others)
            ));
        }
    }
    if !view.warnings.is_empty() {
        doc.push("\n");
        let mut shown = 0;
        for w in &view.warnings {
            let line = format!("> warning: {}\n", escape(w));
            if !doc.fits(&line, TAIL_RESERVE / 2) {
                break;
            }
            shown += 1;
        }
        if shown < view.warnings.len() {
            left_out.push(format!(
                "{} of {} warnings",
                thousands((view.warnings.len() - shown) as u64),
                thousands(view.warnings.len() as u64)
            ));
        }
    }
    if !left_out.is_empty() {
        doc.push(&format!(
            "\n**Left out to stay under GitHub's {}-character limit:** {}. The full plan is in the state file (never committed: it holds the identifiers), on the machine or in the job that planned it: {}.\n",
            thousands(GITHUB_LIMIT as u64),
            left_out.join("; "),
            code_span(&format!("idprune show {state_path}"))
        ));
    }
    doc.push("\n");
    for line in SCOPE_REMINDER {
        doc.push(&format!("> {line}\n"));
    }
    out.write_all(doc.buf.as_bytes())?;
    Ok(())
}

/// The policy's verdicts as a table (a rule a row: ✅/❌, level, what it found, the next
/// step), then the overrides apply recorded. Details quote the policy file: escaped.
fn policy_section(
    s: &mut String,
    policy: &crate::policy::Sealed,
    overrides: &[crate::policy::Override],
) -> std::fmt::Result {
    let failed = policy.verdicts.iter().filter(|v| !v.passed).count();
    writeln!(
        s,
        "**Policy** {} (sha256 {}): {}\n",
        code_span(&policy.path),
        code_span(&policy.sha256[..policy.sha256.len().min(12)]),
        if failed == 0 {
            "every rule holds.".to_owned()
        } else {
            format!("{} of {} rules failed.", failed, policy.verdicts.len())
        }
    )?;
    writeln!(
        s,
        "| | rule | level | found | next step |\n|---|---|---|---|---|"
    )?;
    for v in &policy.verdicts {
        let next = match (&v.next, v.level) {
            (None, _) => String::new(),
            (Some(n), crate::policy::Level::Hard) => escape(n),
            (Some(n), crate::policy::Level::Soft) => format!(
                "{}; or at apply: {}",
                escape(n),
                code_span(&format!("--override {} --why \"...\"", v.rule))
            ),
        };
        writeln!(
            s,
            "| {} | {} | {} | {} | {next} |",
            if v.passed { "✅" } else { "❌" },
            escape(&v.rule),
            v.level.as_str(),
            escape(&v.detail)
        )?;
    }
    s.push('\n');
    for o in overrides {
        writeln!(
            s,
            "- Overridden: {} in run {} by {} at {}: {}",
            code_span(&o.rule),
            o.run,
            code_span(&o.user),
            timestamp(o.at),
            escape(&o.why)
        )?;
    }
    if !overrides.is_empty() {
        s.push('\n');
    }
    Ok(())
}

#[cfg(test)]
mod tests;
