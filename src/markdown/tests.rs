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
