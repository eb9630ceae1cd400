//! The markdown view of a plan, for a pull-request comment or a job summary: what a reviewer
//! needs to judge a plan without seeing the data, safe to paste, and bounded in size.
//!
//! - Decision first: the summary, then one table of what a reviewer approves (digest, space,
//!   API host, reason, manifest and sources with their sha256, data as of, expiry, estimate,
//!   policy, how to approve), the policy's rules ✅/❌, then the exceptions in full (every
//!   blocked, unresolved and absent item and every delete worth a look, grouped by reason with
//!   its next step), warnings and counts; identical change shapes grouped ("1,180 profiles
//!   lose one email at @import.invalid"); the bulk per-profile diffs last, in a collapsed
//!   `<details>` block.
//! - Values are masked previews with keyed fingerprints ([`crate::mask`]) unless revealed.
//! - Every value from outside (space, reason, file names, types, notes, warnings, revealed
//!   values) goes through [`escape`] in text, or sits in a code span ([`cell`] in a table) or
//!   a fenced code block, where GitHub renders nothing, so no value can close the `<details>` block, inject HTML or an image,
//!   mention someone or form a link. Raw HTML lines hold only our own words and numbers.
//! - The whole view stays under [`BUDGET`] bytes (GitHub's comment limit is 65,536
//!   characters) whatever the plan's size. The cap cuts the diffs only; exception rows only
//!   when they alone would not fit (their groups and counts always show), and it says what it
//!   left out and where the full plan is.
//!
//! `escape.rs` holds the escaping, `breakdown.rs` the counts read from the state file; this
//! file lays the view out within the budget. `docs/ARCHITECTURE.md` places the view.

use std::fmt::Write as _;
use std::io::Write;

use crate::mask::Masker;
use crate::plan::Action;
use crate::receipt::Unresolved;
use crate::render::{
    PlanView, SCOPE_AFTER_APPLY, SCOPE_REMINDER, profile_diff, progress_line, started,
    summary_line, thousands, timestamp,
};
use crate::state::ItemFilter;

mod breakdown;
mod escape;

use breakdown::breakdown;
use escape::code;
pub use escape::{cell, code_span, escape};

/// GitHub's limit on a comment, in characters.
pub const GITHUB_LIMIT: usize = 65_536;
/// The most bytes the view writes (bytes ≥ characters), leaving room under [`GITHUB_LIMIT`].
pub const BUDGET: usize = 60_000;
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

/// Bytes kept for the closing lines: what was left out, and the scope reminder.
const CLOSING_RESERVE: usize = 2_500;
/// The most bytes the plan's warnings take (each is one line; the rest are counted).
const WARNINGS_BUDGET: usize = 4_000;

/// Writes the markdown view of `view`; `state_path` is where the full plan is (as shown to
/// the reviewer). Every value is masked by `m` (or revealed when `m` reveals).
///
/// Decision first: the title and summary, a table of the facts a reviewer approves (digest,
/// space, host, reason, manifest, data as of, expiry, estimate, policy), the policy's rules,
/// then the exceptions (every item not sent, and deletes worth a look, grouped by reason with
/// the next step), the warnings and the counts. The per-profile diffs come last, and the size
/// cap cuts only from them (the exception rows only when they alone would not fit).
pub fn plan(
    view: &PlanView<'_>,
    m: &Masker,
    state_path: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let counts = &view.counts;
    let b = breakdown(view.state, m)?;
    let head = head_section(view)?;
    let mut policy = String::new();
    if let Some(p) = &view.policy {
        policy_section(&mut policy, p, &view.overrides)?;
    }
    let groups = view
        .state
        .count_by_action_and_note(ItemFilter::Exceptions)?;
    let (warnings, warnings_left) = warnings_section(&view.warnings);
    let tables = counts_section(counts, &b)?;
    let shapes = shapes_section(&b, m.hides())?;
    let scope = if started(counts) {
        SCOPE_AFTER_APPLY
    } else {
        SCOPE_REMINDER
    };
    let closing_fixed: usize = scope.iter().map(|l| l.len() + 3).sum();

    let mut left_out: Vec<String> = Vec::new();
    // Everything but the exception rows and the diffs is bounded; they share what is left.
    let fixed = head.len()
        + policy.len()
        + warnings.len()
        + tables.len()
        + shapes.len()
        + closing_fixed
        + CLOSING_RESERVE;
    let exceptions = exceptions_section(view, m, &groups, BUDGET.saturating_sub(fixed))?;
    if exceptions.left_out > 0 {
        left_out.push(format!(
            "{} of {} exception rows (every group above still counts them)",
            thousands(exceptions.left_out),
            thousands(exceptions.total)
        ));
    }
    let mut doc = Doc {
        buf: String::with_capacity(BUDGET),
        limit: BUDGET,
    };
    doc.push(&head);
    doc.push(&policy);
    doc.push(&exceptions.text);
    doc.push(&warnings);
    if warnings_left > 0 {
        left_out.push(format!(
            "{} of {} warnings",
            thousands(warnings_left as u64),
            thousands(view.warnings.len() as u64)
        ));
    }
    doc.push(&tables);
    doc.push(&shapes);

    if counts.delete_profiles > 0 {
        let reserve = closing_fixed + CLOSING_RESERVE;
        diffs_section(&mut doc, view, m, reserve, &mut left_out)?;
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
    for line in scope {
        doc.push(&format!("> {line}\n"));
    }
    out.write_all(doc.buf.as_bytes())?;
    Ok(())
}

/// The per-profile diffs in a collapsed block, as many as fit with `reserve` bytes kept for
/// what follows; what did not fit goes to `left_out`.
fn diffs_section(
    doc: &mut Doc,
    view: &PlanView<'_>,
    m: &Masker,
    reserve: usize,
    left_out: &mut Vec<String>,
) -> anyhow::Result<()> {
    let head = format!(
        "\n<details><summary>Per-profile changes ({} profiles)</summary>\n\n```diff\n",
        thousands(view.counts.delete_profiles)
    );
    let foot = "```\n</details>\n";
    if doc.fits(&head, reserve + foot.len()) {
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
                    let _ = writeln!(block, "{}   {}{seq}", line.sign, code(&m.ident(line.ident)));
                }
                doc.fits_or_stop(&block, reserve + foot.len())?;
                shown += 1;
                Ok(())
            });
        stop_at_budget(walked)?;
        doc.push(foot);
        if shown < view.counts.delete_profiles {
            left_out.push(format!(
                "the diffs of {} of {} profiles",
                thousands(view.counts.delete_profiles - shown),
                thousands(view.counts.delete_profiles)
            ));
        }
    } else {
        left_out.push(format!(
            "the diffs of all {} profiles",
            thousands(view.counts.delete_profiles)
        ));
    }
    Ok(())
}

/// The title, the summary and the table of the facts a reviewer approves.
fn head_section(view: &PlanView<'_>) -> anyhow::Result<String> {
    let mut s = title(view)?;
    // A two-column table of facts: never a list, so nothing below can run into it.
    writeln!(s, "| fact | value |\n|---|---|")?;
    for (name, value) in facts(view)? {
        writeln!(s, "| {name} | {value} |")?;
    }
    if let Some(sample) = &view.sample
        && sample.over()
    {
        // Our own sentence of numbers: nothing from outside to escape.
        writeln!(s, "\n> [!WARNING]\n> {}", sample.line())?;
    }
    s.push('\n');
    Ok(s)
}

/// The title, a warning when many lookups found no profile, the summary and, once applied,
/// the progress.
fn title(view: &PlanView<'_>) -> anyhow::Result<String> {
    let meta = &view.meta;
    let counts = &view.counts;
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
    if started(counts) {
        writeln!(s, "**Applied.** {}\n", progress_line(counts))?;
    }
    Ok(s)
}

/// The rows of the facts table, in order: what the plan is, what it read, when it expires,
/// what it costs, the policy, then the last run or how to approve.
fn facts(view: &PlanView<'_>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let meta = &view.meta;
    let mut rows = vec![
        ("Digest", code_span(&meta.digest)),
        (
            "Space",
            format!(
                "{} · region {}",
                code_span(&meta.space),
                code_span(&meta.region)
            ),
        ),
        ("API host", code_span(&meta.api_origin)),
        ("Reason", reason_fact(&meta.reason)),
        (
            "Manifest",
            format!(
                "{} (sha256 {})",
                code_span(&meta.manifest_path),
                code_span(&meta.manifest_sha256)
            ),
        ),
    ];
    rows.extend(source_facts(view)?);
    rows.push(("Data as of", data_as_of(view)?));
    rows.push((
        "Expires",
        format!(
            "{} (planned {})",
            timestamp(crate::render::expires_at(meta)),
            timestamp(meta.created_at)
        ),
    ));
    let estimate = crate::render::Estimate::of(&view.counts).line();
    rows.push((
        "Estimate",
        estimate.trim_start_matches("Estimate: ").to_owned(),
    ));
    rows.push(("Policy", policy_fact(view)));
    rows.extend(run_facts(view)?);
    Ok(rows)
}

/// The reason, escaped, cut at [`REASON_CHARS`] with an ellipsis.
fn reason_fact(full: &str) -> String {
    let reason: String = full.chars().take(REASON_CHARS).collect();
    format!(
        "{}{}",
        escape(&reason),
        if reason.len() < full.len() {
            " …"
        } else {
            ""
        }
    )
}

/// A `Source` row for each of the first [`TABLE_ROWS`] sources, then how many more.
fn source_facts(view: &PlanView<'_>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let sources = view.state.sources()?;
    let mut rows: Vec<_> = sources
        .iter()
        .take(TABLE_ROWS)
        .map(|src| {
            let fact = format!(
                "{} ({} rows, sha256 {}{})",
                code_span(&src.written),
                thousands(src.rows),
                code_span(&src.sha256),
                if src.pinned { ", pinned" } else { "" }
            );
            ("Source", fact)
        })
        .collect();
    if sources.len() > TABLE_ROWS {
        let more = thousands((sources.len() - TABLE_ROWS) as u64);
        rows.push(("Source", format!("… and {more} more")));
    }
    Ok(rows)
}

/// The policy the plan was judged by and whether every rule holds.
fn policy_fact(view: &PlanView<'_>) -> String {
    let Some(p) = &view.policy else {
        return "none (no `idprune.policy.yaml` above the manifest)".to_owned();
    };
    let (named, failed) = policy_named(p);
    format!(
        "{named}: {}",
        if failed == 0 {
            "✅ every rule holds".to_owned()
        } else {
            format!("❌ {failed} of {} rules failed", p.verdicts.len())
        }
    )
}

/// The policy as the page names it (its path and the start of its sha256, as code spans) and
/// how many of its rules failed.
fn policy_named(policy: &crate::policy::Sealed) -> (String, usize) {
    let named = format!(
        "{} (sha256 {})",
        code_span(&policy.path),
        code_span(&policy.sha256[..policy.sha256.len().min(12)])
    );
    (named, policy.verdicts.iter().filter(|v| !v.passed).count())
}

/// Once applied, the last run and where to look next; before, how to approve.
fn run_facts(view: &PlanView<'_>) -> anyhow::Result<Vec<(&'static str, String)>> {
    if !started(&view.counts) {
        let approve = format!(
            "merge with the committed receipt, or `idprune apply <state> --approve {}`",
            view.meta.digest
        );
        return Ok(vec![("Approve", approve)]);
    }
    let mut rows = Vec::new();
    if let Some(run) = view.state.runs()?.last() {
        // Who ran it: the last run's CI context, as a code span (no value in it can form a
        // link, a mention or markup).
        let at = run
            .context
            .as_ref()
            .map(|c| format!(" in {}", code_span(&c.summary())))
            .unwrap_or_default();
        let last = format!(
            "run {} by {} on {}{at}, {}",
            run.id,
            code_span(&run.user),
            code_span(&run.host),
            run.outcome.as_deref().map_or("running or died", |o| o)
        );
        rows.push(("Last run", last));
    }
    let next = "`idprune status` shows the runs, `idprune verify` re-reads the profiles";
    rows.push(("Next", next.to_owned()));
    Ok(rows)
}

/// When the plan's view of the profiles dates from: the plan's reads, or for deletes planned
/// without a read (`--refresh=false`) the source data, with the sampled check when there was one.
fn data_as_of(view: &PlanView<'_>) -> anyhow::Result<String> {
    let unverified = view.state.count_unverified()?;
    let read = format!("profiles read at {}", timestamp(view.meta.created_at));
    if unverified == 0 {
        return Ok(read);
    }
    let mut s = format!(
        "{} planned without reading the profile (`--refresh=false`): as of the source data",
        crate::text::plural(unverified, "deletion", "deletions")
    );
    // The warehouse export's sealed sync time (issue 22), when its manifest gave one.
    if let Some(at) = view.data_as_of {
        write!(s, ", synced {} (`data_as_of`)", timestamp(at))?;
    }
    if view.counts.action(Action::Delete) > unverified {
        write!(s, "; the others: {read}")?;
    }
    match &view.sample {
        Some(sample) => {
            write!(s, ". {}", sample.line())?;
            if let Some(note) = sample.bound_note() {
                write!(s, " {note}")?;
            }
        }
        None => s.push_str(". No sampled check (`plan --sample N` reads some to measure drift)"),
    }
    Ok(s)
}

/// The exceptions as laid out, and how many rows the budget left out.
struct Exceptions {
    text: String,
    total: u64,
    left_out: u64,
}

/// The action's heading word in the exceptions.
fn exception_title(action: Action) -> &'static str {
    match action {
        Action::Blocked => "blocked",
        Action::Unresolved => "unresolved",
        Action::Absent => "absent",
        Action::Delete => "to delete, worth a look",
    }
}

/// The exceptions, grouped by action and reason: each group's reason and next step, then a
/// table of its items. The group lines always show; item rows stop at `room` bytes.
fn exceptions_section(
    view: &PlanView<'_>,
    m: &Masker,
    groups: &[(Action, Option<String>, u64)],
    room: usize,
) -> anyhow::Result<Exceptions> {
    let total: u64 = groups.iter().map(|(_, _, n)| n).sum();
    let mut text = String::new();
    if total == 0 {
        writeln!(
            text,
            "**Exceptions: none.** Every item is a deletion; none is blocked, unresolved or absent.\n"
        )?;
        return Ok(Exceptions {
            text,
            total,
            left_out: 0,
        });
    }
    let order = [
        Action::Blocked,
        Action::Unresolved,
        Action::Absent,
        Action::Delete,
    ];
    writeln!(
        text,
        "**Exceptions: {}**, each with its reason and next step:\n",
        order
            .iter()
            .filter_map(|a| {
                let n: u64 = groups
                    .iter()
                    .filter(|(g, _, _)| g == a)
                    .map(|(_, _, n)| n)
                    .sum();
                (n > 0).then(|| format!("{} {}", thousands(n), exception_title(*a)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    // The group lines first, so that every group shows whatever the rows cost.
    let heads = exception_heads(groups, order)?;
    let heads_len: usize = heads.iter().map(|h| h.line.len()).sum();
    let mut rows_room = room.saturating_sub(text.len() + heads_len);
    let mut left_out = 0u64;
    for head in heads {
        text.push_str(&head.line);
        let table_head = "| # | identifier | lookup | entry |\n|---:|---|---|---|\n";
        let (rows, shown) = exception_rows(
            view,
            m,
            (head.action, &head.note),
            table_head,
            &mut rows_room,
        )?;
        if shown > 0 {
            text.push_str(table_head);
            text.push_str(&rows);
        }
        if shown < head.n {
            left_out += head.n - shown;
            writeln!(
                text,
                "\n… and {} more not listed here, to stay under the size limit.",
                thousands(head.n - shown)
            )?;
        }
        text.push('\n');
    }
    Ok(Exceptions {
        text,
        total,
        left_out,
    })
}

/// One group of exceptions: its action and note, how many items, and its line.
struct GroupHead {
    action: Action,
    note: Option<String>,
    n: u64,
    /// Its count, action, reason and next step, as shown.
    line: String,
}

/// Each group's line (its count, action, reason and next step), in `order` of actions.
fn exception_heads(
    groups: &[(Action, Option<String>, u64)],
    order: [Action; 4],
) -> anyhow::Result<Vec<GroupHead>> {
    let mut heads = Vec::new();
    for action in order {
        for (a, note, n) in groups.iter().filter(|(a, _, _)| *a == action) {
            let (reason, next) = crate::plan::split_note(note.as_deref().unwrap_or_default());
            let reason = if reason.is_empty() {
                "no reason recorded"
            } else {
                reason
            };
            let mut head = format!(
                "**{} {}**: {}",
                thousands(*n),
                exception_title(*a),
                escape(reason)
            );
            if let Some(next) = next {
                write!(head, ". **Next:** {}", escape(next))?;
            }
            head.push_str("\n\n");
            heads.push(GroupHead {
                action: *a,
                note: note.clone(),
                n: *n,
                line: head,
            });
        }
    }
    Ok(heads)
}

/// The table rows of one group's items (those of `action` with `note`), while they fit in
/// `rows_room` (less what they take, `table_head` counted with the first); how many.
fn exception_rows(
    view: &PlanView<'_>,
    m: &Masker,
    (action, note): (Action, &Option<String>),
    table_head: &str,
    rows_room: &mut usize,
) -> anyhow::Result<(String, u64)> {
    let mut rows = String::new();
    let mut shown = 0u64;
    let filter = exception_filter(action);
    let walked = view.state.for_each_item_in(filter, u64::MAX, |s| {
        if s.item.note != *note {
            return Ok(());
        }
        let row = format!(
            "| {} | {} | {} | {} |\n",
            s.item.seq,
            cell(&m.ident(&s.item.identifier)),
            cell(&m.lookup(&s.item.lookup)),
            escape(breakdown::origin_line(&s.item.origin))
        );
        let need = row.len() + if shown == 0 { table_head.len() } else { 0 };
        if need > *rows_room {
            return Err(BudgetSpent.into());
        }
        *rows_room -= need;
        rows.push_str(&row);
        shown += 1;
        Ok(())
    });
    stop_at_budget(walked)?;
    Ok((rows, shown))
}

/// The items of one exception action (notes are matched by the caller).
fn exception_filter(action: Action) -> ItemFilter {
    match action {
        Action::Delete => ItemFilter::Noted,
        Action::Absent => ItemFilter::Absent,
        Action::Blocked => ItemFilter::Blocked,
        Action::Unresolved => ItemFilter::Unresolved,
    }
}

/// The plan's warnings as quoted lines, up to [`WARNINGS_BUDGET`]; how many were left out.
fn warnings_section(warnings: &[String]) -> (String, usize) {
    let mut s = String::new();
    let mut shown = 0;
    for w in warnings {
        let line = format!("> warning: {}\n", escape(w));
        if s.len() + line.len() > WARNINGS_BUDGET {
            break;
        }
        if shown == 0 {
            s.push_str("**Warnings:**\n\n");
        }
        s.push_str(&line);
        shown += 1;
    }
    if shown > 0 {
        s.push('\n');
    }
    (s, warnings.len() - shown)
}

/// The counts: by action, by identifier type and action, by source file.
fn counts_section(
    counts: &crate::state::Counts,
    b: &breakdown::Breakdown,
) -> anyhow::Result<String> {
    let mut s = String::from("**Counts**\n\n| action | items |\n|---|---:|\n");
    for a in Action::ALL {
        writeln!(s, "| {} | {} |", a.as_str(), thousands(counts.action(a)))?;
    }
    writeln!(
        s,
        "| profiles losing identifiers | {} |",
        thousands(counts.delete_profiles)
    )?;
    s.push_str("\n| identifier type |");
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
    s.push_str("\n| source file | items | to delete |\n|---|---:|---:|\n");
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
    Ok(s)
}

/// The change shapes, largest first ("1,180 profiles lose one email at @import.invalid").
fn shapes_section(b: &breakdown::Breakdown, masked: bool) -> anyhow::Result<String> {
    let mut s = String::new();
    if b.shapes.is_empty() {
        return Ok(s);
    }
    let mut shapes: Vec<(&String, &u64)> = b.shapes.iter().collect();
    shapes.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    s.push_str("\n**Changes, grouped by shape:**\n\n");
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
    if masked {
        s.push_str("\nValues are masked previews with a keyed fingerprint (`~1a2b3c4d`: the same value has the same fingerprint with the same key); run `idprune show <state>` where the state file is to see them.\n");
    }
    Ok(s)
}

/// The policy's verdicts as a table (a rule a row: ✅/❌, level, what it found, the next
/// step), then the overrides apply recorded. Details quote the policy file: escaped.
fn policy_section(
    s: &mut String,
    policy: &crate::policy::Sealed,
    overrides: &[crate::policy::Override],
) -> std::fmt::Result {
    let (named, failed) = policy_named(policy);
    writeln!(
        s,
        "**Policy** {named}: {}\n",
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
