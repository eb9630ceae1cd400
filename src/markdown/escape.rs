//! Escaping for the markdown view: text that can form no markup, mention, autolink or issue
//! reference ([`escape`]), values in fenced code blocks (`code`), and code spans no content can
//! close ([`code_span`]).

use crate::text::clean;

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
pub(super) fn code(value: &str) -> String {
    clean(value)
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

/// A value in a table cell: a code span (copyable as it is, nothing renders inside), or escaped
/// text when it holds `|` or `\`, which GFM's table rows split on (or escape) even inside a
/// code span.
pub fn cell(value: &str) -> String {
    if value.contains('|') || value.contains('\\') {
        escape(value)
    } else {
        code_span(value)
    }
}
