//! The markdown view: no value becomes markup (checked through a GFM renderer), code spans
//! cannot be closed, a large plan stays under the limit, origins name their file.

use super::breakdown::origin_file;
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
            crate::state::testing::delete_item(i, &format!("u{i}"), &format!("p{i}@import.invalid"))
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

/// 100,000 deletes and a handful of exceptions: `(seq, action, note)` of the exceptions.
fn exceptions() -> Vec<(u64, Action, String)> {
    use crate::plan::NEXT;
    vec![
        (
            100_001,
            Action::Blocked,
            format!(
                "the profile has no user_id, and the API addresses profiles only by user_id{NEXT}give the profile a user_id, then plan again"
            ),
        ),
        (
            100_002,
            Action::Blocked,
            format!(
                "the profile has no user_id, and the API addresses profiles only by user_id{NEXT}give the profile a user_id, then plan again"
            ),
        ),
        (
            100_003,
            Action::Unresolved,
            format!("no profile answers to the lookup{NEXT}check the lookup"),
        ),
        (
            100_004,
            Action::Absent,
            format!("the profile does not carry it{NEXT}nothing to send"),
        ),
        (
            100_005,
            Action::Blocked,
            format!(
                "group_id identifiers cannot be deleted{NEXT}remove the entry | even </details> @octocat"
            ),
        ),
    ]
}

#[test]
fn a_plan_of_100000_deletes_keeps_every_exception_in_distinct_blocks_under_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut items: Vec<_> = (1..=100_000)
        .map(|i| {
            crate::state::testing::delete_item(i, &format!("u{i}"), &format!("p{i}@import.invalid"))
        })
        .collect();
    for (seq, action, note) in exceptions() {
        let mut item = crate::state::testing::delete_item(
            seq,
            &format!("x{seq}"),
            &format!("odd{seq}|</details>@x.com"),
        );
        item.action = action;
        item.note = Some(note);
        items.push(item);
    }
    let state = crate::state::testing::sealed(dir.path(), &items);
    let view = PlanView::new(&state).expect("view");
    let m = Masker::new(Some(crate::mask::RedactLevel::Preview), b"k".to_vec());
    let mut out = Vec::new();
    plan(&view, &m, "plans/t.state.db", &mut out).expect("render");
    let md = String::from_utf8(out).expect("utf-8");
    assert!(md.len() < 60_000, "{} bytes", md.len());
    assert!(md.len() <= BUDGET);

    let html = gfm(&md);
    // Every exception is a row of a table, with its reason and its next step above it.
    for (seq, _, _) in exceptions() {
        assert!(
            md.contains(&format!("\n| {seq} | ")),
            "#{seq} missing:\n{md}"
        );
        assert!(
            html.contains(&format!("<td align=\"right\">{seq}</td>")),
            "#{seq} not a table cell"
        );
    }
    assert!(
        md.contains("**2 blocked**") && md.contains("**1 blocked**"),
        "{md}"
    );
    assert!(
        html.contains("<strong>Next:</strong> give the profile a user_id"),
        "{html}"
    );
    // The decision table is a table of its own, first; the change list a list of its own.
    let first_table = html.find("<table>").expect("a table");
    let first_list = html.find("<ul>").expect("the shapes list");
    assert!(first_table < first_list);
    assert!(
        html[..first_list].contains("<td>Digest</td>"),
        "the digest is in the head table"
    );
    assert_eq!(
        html.matches("<ul>").count(),
        1,
        "one list, the shapes:\n{html}"
    );
    assert!(
        !html.contains("<li>Digest"),
        "the digest is not a list item"
    );
    // The cap cut only the diffs, and says so.
    assert!(md.contains("the diffs of "), "{md}");
    assert!(
        !md.contains("exception rows"),
        "no exception row was cut:\n{md}"
    );
    let diffs = md
        .find("<details><summary>Per-profile changes")
        .expect("the diffs block");
    for (seq, _, _) in exceptions() {
        assert!(
            md.find(&format!("\n| {seq} | ")).expect("row") < diffs,
            "exceptions come before the diffs"
        );
    }
    assert_eq!(html.matches("<details>").count(), 1);
    assert_eq!(html.matches("</details>").count(), 1);
    // No hostile note or value made markup or a mention.
    assert!(!html.contains("@octocat"), "{html}");
}

proptest::proptest! {
    /// Whatever the value, an escaped value or a `cell` in a table cell stays in its cell: the
    /// row keeps its three cells and nothing but a code span renders.
    #[test]
    fn no_value_escapes_its_table_cell(
        value in proptest::string::string_regex(
            r#"([a-z0-9 ]|<|>|&|"|'|@|:|/|\.|#|\[|\]|\(|\)|!|\*|_|`|\||~|\\|=|-|\+|www\.|https://|</details>|\\\|){1,40}"#
        ).expect("regex")
    ) {
        for shown in [escape(&value), cell(&value)] {
            let html = gfm(&format!("| a | b | c |\n|---|---|---|\n| 1 | {shown} | 3 |\n"));
            proptest::prop_assert_eq!(html.matches("<td>").count(), 3, "{:?} rendered {}", shown, html);
            let kinds = elements(&html);
            proptest::prop_assert!(
                kinds.iter().all(|k| ["table", "/table", "thead", "/thead", "tbody", "/tbody", "tr", "/tr", "th", "/th", "td", "/td", "code", "/code"].contains(&k.as_str())),
                "{:?} rendered {}", shown, html
            );
        }
    }
}
