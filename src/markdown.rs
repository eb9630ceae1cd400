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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use crate::mask::Masker;
use crate::plan::Action;
use crate::receipt::Unresolved;
use crate::render::{
    PlanView, SCOPE_REMINDER, clean, profile_diff, progress_line, started, summary_line, thousands,
    timestamp,
};
use crate::state::{ItemFilter, State};

/// GitHub's limit on a comment, in characters.
pub const GITHUB_LIMIT: usize = 65_536;
/// The most bytes the view writes (bytes ≥ characters), leaving room under [`GITHUB_LIMIT`].
pub const BUDGET: usize = 60_000;
/// Bytes kept back for the closing sections (what was left out, warnings, the scope note).
const TAIL_RESERVE: usize = 6_000;
/// Rows of each counts table and groups of change shapes shown at most.
const TABLE_ROWS: usize = 20;
/// Change shapes tracked at most; further distinct shapes count as "other".
const MAX_SHAPES: usize = 10_000;
/// The longest reason shown, in characters.
const REASON_CHARS: usize = 1_000;

/// The zero-width joiner put after `@`, inside `://`, after `www` and after `#`, so that no
/// value forms a mention, an autolink or an issue reference.
const BREAK: char = '\u{200D}';

/// Escapes text for GitHub-flavoured markdown: control characters as Rust escapes, `<`, `>`,
/// `&` and `"` as HTML entities, every other ASCII punctuation character backslash-escaped,
/// and the starts of mentions (`@`), autolinks (`://`, `www.`) and issue references (`#1`)
/// broken with a zero-width joiner.
pub fn escape(value: &str) -> String {
    let value = clean(value);
    let mut out = String::with_capacity(value.len() + 8);
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '@' => {
                out.push_str("&#64;");
                out.push(BREAK);
            }
            ':' if chars.get(i + 1) == Some(&'/') => {
                out.push_str("\\:");
                out.push(BREAK);
            }
            '#' => {
                out.push_str("\\#");
                out.push(BREAK);
            }
            '.' if i >= 3
                && chars[i - 3..i]
                    .iter()
                    .collect::<String>()
                    .eq_ignore_ascii_case("www") =>
            {
                out.push(BREAK);
                out.push_str("\\.");
            }
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A value inside a fenced code block: control characters escaped; GitHub renders nothing
/// else there, and our lines never start with a fence.
fn code(value: &str) -> String {
    clean(value)
}

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

/// Counts per identifier type and action, per source file, and change shapes.
struct Breakdown {
    by_type: BTreeMap<String, BTreeMap<String, u64>>,
    by_source: BTreeMap<String, (u64, u64)>,
    shapes: BTreeMap<String, u64>,
    other_shapes: u64,
}

/// The file of an origin `file:line:column`.
fn origin_file(origin: &str) -> &str {
    let mut parts = origin.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (col, line, file) {
        (Some(c), Some(l), Some(f))
            if c.bytes().all(|b| b.is_ascii_digit()) && l.bytes().all(|b| b.is_ascii_digit()) =>
        {
            f
        }
        _ => origin,
    }
}

fn number_word(n: u64) -> String {
    match n {
        1 => "one".into(),
        2 => "two".into(),
        3 => "three".into(),
        n => thousands(n),
    }
}

/// `one email at @import.invalid and two anonymous_ids` (escaped).
fn shape_text(parts: &BTreeMap<(String, Option<String>), u64>) -> String {
    parts
        .iter()
        .map(|((kind, at), n)| {
            let kind = format!("{}{}", escape(kind), if *n == 1 { "" } else { "s" });
            match at {
                Some(at) => format!("{} {kind} at {}", number_word(*n), escape(at)),
                None => format!("{} {kind}", number_word(*n)),
            }
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

fn breakdown(state: &State, m: &Masker) -> anyhow::Result<Breakdown> {
    let conn = state.conn();
    let mut b = Breakdown {
        by_type: BTreeMap::new(),
        by_source: BTreeMap::new(),
        shapes: BTreeMap::new(),
        other_shapes: 0,
    };
    let mut stmt = conn.prepare("SELECT id_type, action, count(*) FROM items GROUP BY 1, 2")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        b.by_type
            .entry(row.get(0)?)
            .or_default()
            .insert(row.get(1)?, row.get::<_, i64>(2)? as u64);
    }
    let mut stmt = conn.prepare("SELECT origin, action = 'delete' FROM items")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let origin: String = row.get(0)?;
        let delete: bool = row.get(1)?;
        let e = b
            .by_source
            .entry(origin_file(&origin).to_owned())
            .or_default();
        e.0 += 1;
        e.1 += u64::from(delete);
    }
    let mut stmt = conn.prepare(
        "SELECT profile, id_type, id_value FROM items
         WHERE action = 'delete' AND profile IS NOT NULL ORDER BY profile, seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<String> = None;
    let mut parts: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let flush = |parts: &mut BTreeMap<(String, Option<String>), u64>, b: &mut Breakdown| {
        if parts.is_empty() {
            return;
        }
        let text = shape_text(parts);
        parts.clear();
        if let Some(n) = b.shapes.get_mut(&text) {
            *n += 1;
        } else if b.shapes.len() < MAX_SHAPES {
            b.shapes.insert(text, 1);
        } else {
            b.other_shapes += 1;
        }
    };
    while let Some(row) = rows.next()? {
        let profile: String = row.get(0)?;
        let ident =
            crate::model::Identifier::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?);
        if current.as_deref() != Some(profile.as_str()) {
            flush(&mut parts, &mut b);
            current = Some(profile);
        }
        *parts
            .entry((ident.kind.clone(), m.shape(&ident)))
            .or_default() += 1;
    }
    flush(&mut parts, &mut b);
    Ok(b)
}

/// A code span that no content can close: the delimiter is longer than any run of backticks
/// inside. GitHub renders nothing inside a code span (no HTML, mention or link).
pub fn code_span(value: &str) -> String {
    let value = clean(value);
    let mut longest = 0;
    let mut run = 0;
    for c in value.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') || value.starts_with(' ') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
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
            "> [!WARNING]\n> **{} of {} profile lookups found no profile.** A wrong space id, or the EU space with the US host? Check before approving.\n",
            thousands(unresolved.unresolved),
            thousands(unresolved.lookups)
        )?;
    }
    writeln!(s, "**{}**\n", summary_line(counts))?;
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
    if b.by_type.len() > TABLE_ROWS {
        writeln!(
            s,
            "\n… and {} more identifier types.",
            thousands((b.by_type.len() - TABLE_ROWS) as u64)
        )?;
    }
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
    if b.by_source.len() > TABLE_ROWS {
        writeln!(
            s,
            "\n… and {} more source files.",
            thousands((b.by_source.len() - TABLE_ROWS) as u64)
        )?;
    }
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
                    if doc.fits(&block, TAIL_RESERVE + foot.len()) {
                        shown += 1;
                        Ok(())
                    } else {
                        Err(BudgetSpent.into())
                    }
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
                    if doc.fits(&line, TAIL_RESERVE / 2 + foot.len()) {
                        shown += 1;
                        Ok(())
                    } else {
                        Err(BudgetSpent.into())
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        let e = escape("</details><img src=x> @octo https://x.io www.x.io [a](b) #12 *b*");
        assert!(!e.contains('<') && !e.contains('>'), "{e}");
        assert!(!e.contains("@o"), "{e}");
        assert!(!e.contains("://"), "{e}");
        assert!(!e.to_lowercase().contains("www."), "{e}");
        assert!(e.contains("\\[a\\]\\(b\\)"), "{e}");
        assert!(!e.contains("#1"), "{e}");
        assert_eq!(escape("plain words"), "plain words");
        assert_eq!(escape("a\nb"), "a\\\\nb");
    }

    #[test]
    fn code_spans_cannot_be_closed() {
        assert_eq!(code_span("x"), "`x`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`a"), "`` `a ``");
    }

    #[test]
    fn a_large_plan_stays_under_the_limit_and_says_what_it_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let items: Vec<_> = (1..=3_000)
            .map(|i| {
                crate::state::testing::delete_item(
                    i,
                    &format!("u{i}"),
                    &format!("p{i}@import.invalid"),
                )
            })
            .collect();
        let state = crate::state::testing::sealed(dir.path(), &items);
        let view = PlanView::new(&state).expect("view");
        let m = Masker::new(Some(crate::mask::RedactLevel::Preview), b"k".to_vec());
        let mut out = Vec::new();
        plan(&view, &m, "plans/t.state.db", &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.len() <= BUDGET, "{} bytes", text.len());
        assert!(text.contains("**Left out to stay under"), "{text}");
        assert!(
            text.contains("`idprune show plans/t.state.db`"),
            "where the full plan is"
        );
        assert!(
            text.contains("3,000 profiles lose one email at &#64;\u{200D}import\\.invalid"),
            "{text}"
        );
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
        assert!(!text.contains("p1@import.invalid"));
    }

    fn gfm(markdown: &str) -> String {
        let mut options = comrak::Options::default();
        options.extension.table = true;
        options.extension.autolink = true;
        options.extension.strikethrough = true;
        options.render.r#unsafe = true;
        comrak::markdown_to_html(markdown, &options)
    }

    /// The elements in rendered HTML, by name.
    fn elements(html: &str) -> Vec<String> {
        html.match_indices('<')
            .map(|(at, _)| {
                html[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                    .collect()
            })
            .collect()
    }

    proptest::proptest! {
        /// Whatever the value, escaped text renders as one paragraph of text and a code span
        /// as one code element: no other element, no link, nothing that closes a block.
        #[test]
        fn no_value_becomes_markup(
            value in proptest::string::string_regex(
                r#"([a-z0-9 ]|<|>|&|"|'|@|:|/|\.|#|\[|\]|\(|\)|!|\*|_|`|\||~|\\|=|-|\+|\n|www\.|https://|</details>|<img src=x>|&#64;|&lt;){1,40}"#
            ).expect("regex")
        ) {
            let text = gfm(&format!("x {} x\n", escape(&value)));
            let kinds = elements(&text);
            proptest::prop_assert!(
                kinds.iter().all(|k| k == "p" || k == "/p"),
                "escape({:?}) rendered {}", value, text
            );
            let code = gfm(&format!("x {} x\n", code_span(&value)));
            let kinds = elements(&code);
            proptest::prop_assert!(
                kinds.iter().all(|k| ["p", "/p", "code", "/code"].contains(&k.as_str())),
                "code_span({:?}) rendered {}", value, code
            );
        }
    }

    #[test]
    fn origins_name_their_file() {
        assert_eq!(origin_file("plans/m.yaml:3:5"), "plans/m.yaml");
        assert_eq!(origin_file("we:ird.csv:8:1"), "we:ird.csv");
        assert_eq!(origin_file("odd"), "odd");
    }
}
