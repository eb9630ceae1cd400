//! The warehouse queries' quoting, read back by each dialect's documented rules, and their
//! filtering of removed items.

use super::*;
use crate::state::ItemState;
use crate::state::testing::stored_item as item;

/// Reads a string literal back by `dialect`'s documented rules, written independently of
/// [`string_literal`]: `None` when it is not exactly one well-formed literal.
fn read_back(dialect: Dialect, lit: &str) -> Option<String> {
    let (backslash, doubled, body) = match dialect {
        Dialect::Snowflake | Dialect::Redshift => (true, true, lit.strip_prefix('\'')?),
        Dialect::Bigquery | Dialect::Databricks => (true, false, lit.strip_prefix('\'')?),
        Dialect::Duckdb => (false, true, lit.strip_prefix('\'')?),
        Dialect::Postgres => match lit.strip_prefix("E'") {
            Some(rest) => (true, true, rest),
            None => (false, true, lit.strip_prefix('\'')?),
        },
    };
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if doubled && chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            // The closing quote must be the last character.
            '\'' => return chars.next().is_none().then_some(out),
            '\\' if backslash => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'U' => {
                    let hex: String = (0..8).filter_map(|_| chars.next()).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

const HOSTILE: &[&str] = &[
    "o'brien@x.com",
    "a\\b@x.com",
    "trailing\\",
    "\\'",
    "''",
    "'; DROP TABLE users; --",
    "zoë@例え.jp",
    "emoji 🎉 \u{202e}bidi",
    "tab\there\nnewline\u{1}",
    "\"double\" `back`",
    "",
];

#[test]
fn every_dialect_round_trips_hostile_values() {
    for dialect in [
        Dialect::Snowflake,
        Dialect::Bigquery,
        Dialect::Redshift,
        Dialect::Postgres,
        Dialect::Databricks,
        Dialect::Duckdb,
    ] {
        for value in HOSTILE {
            let lit = string_literal(dialect, value);
            assert_eq!(
                read_back(dialect, &lit).as_deref(),
                Some(*value),
                "{dialect:?}: {value:?} written as {lit}"
            );
        }
    }
    // The dialects differ where they must: BigQuery and Databricks never double a quote
    // (two adjacent literals there would concatenate), Postgres keeps a backslash-free
    // value standard.
    assert_eq!(string_literal(Dialect::Bigquery, "o'b"), r"'o\'b'");
    assert_eq!(string_literal(Dialect::Databricks, "a\\b"), r"'a\\b'");
    assert_eq!(string_literal(Dialect::Snowflake, "a\\b'"), r"'a\\b\''");
    assert_eq!(string_literal(Dialect::Redshift, "a\\b'"), r"'a\\b'''");
    assert_eq!(string_literal(Dialect::Postgres, "o'b"), "'o''b'");
    assert_eq!(string_literal(Dialect::Postgres, "a\\b"), r"E'a\\b'");
    assert_eq!(string_literal(Dialect::Postgres, "zoë"), "'zoë'");
}

#[test]
fn identifiers_are_bare_when_plain_and_quoted_otherwise() {
    assert_eq!(
        identifier(Dialect::Snowflake, "profiles_sync"),
        "profiles_sync"
    );
    assert_eq!(identifier(Dialect::Postgres, "__operation"), "__operation");
    assert_eq!(
        identifier(Dialect::Postgres, "my\"schema"),
        "\"my\"\"schema\""
    );
    assert_eq!(identifier(Dialect::Bigquery, "my-project"), "`my-project`");
    assert_eq!(identifier(Dialect::Bigquery, "a`b"), "`a\\`b`");
    assert_eq!(identifier(Dialect::Databricks, "a`b"), "`a``b`");
    assert_eq!(identifier(Dialect::Redshift, "1st"), "\"1st\"");
    assert_eq!(
        qualified(
            Dialect::Bigquery,
            "my-project.profiles_sync",
            "user_identifiers"
        ),
        "`my-project`.profiles_sync.user_identifiers"
    );
}

#[test]
fn each_dialect_writes_its_own_inline_form_and_a_csv_form() {
    let rows = vec![("email".to_owned(), "o'b\\c@x.com".to_owned())];
    let sql = |d, removed: &Removed<'_>| {
        let mut out = Vec::new();
        profiles_sync_sql(removed, d, "ps", &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    };
    let inline = Removed::Inline(rows);
    assert!(sql(Dialect::Postgres, &inline).contains(
        r"VALUES
    ('email', E'o''b\\c@x.com')"
    ));
    assert!(sql(Dialect::Bigquery, &inline).contains("UNNEST(ARRAY<STRUCT<"));
    assert!(sql(Dialect::Snowflake, &inline).contains("FROM VALUES"));
    assert!(sql(Dialect::Databricks, &inline).contains("AS t(id_type, id_value)"));
    assert!(sql(Dialect::Redshift, &inline).contains("::varchar AS id_value"));
    let csv = Removed::Csv("removed.csv");
    assert!(sql(Dialect::Postgres, &csv).contains("\\copy idprune_removed"));
    assert!(sql(Dialect::Snowflake, &csv).contains("PUT 'file://removed.csv'"));
    assert!(sql(Dialect::Redshift, &csv).contains("COPY idprune_removed"));
    assert!(sql(Dialect::Bigquery, &csv).contains("bq load"));
    assert!(sql(Dialect::Databricks, &csv).contains("read_files("));
    for d in [Dialect::Postgres, Dialect::Bigquery] {
        assert!(sql(d, &csv).contains("ps.external_id_mapping_updates u"));
    }
}

#[test]
fn inline_refuses_more_than_the_limit_and_the_csv_takes_them() {
    let items: Vec<_> = (0..=MAX_INLINE_ROWS as u64)
        .map(|n| item(n, &format!("u{n}@x.com"), ItemState::Done))
        .collect();
    let err = inline_rows(|f| items.clone().into_iter().try_for_each(f)).expect_err("too many");
    assert!(err.to_string().contains("--csv FILE"), "{err}");
    let mut out = Vec::new();
    let n = removed_csv(|f| items.into_iter().try_for_each(f), &mut out).expect("csv");
    assert_eq!(n, MAX_INLINE_ROWS as u64 + 1);
}

#[test]
fn discover_quotes_the_pattern_and_names_lower_case_columns() {
    let sql = |dialect| {
        let mut out = Vec::new();
        let discover = Discover::Patterns(vec![
            ("email".to_owned(), "%@o'x.invalid".to_owned()),
            ("phone".to_owned(), "+1555%".to_owned()),
        ]);
        discover_sql(dialect, "proj-1.ps", &discover, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    };
    let bq = sql(Dialect::Bigquery);
    assert!(bq.contains("FROM `proj-1`.ps.user_identifiers u"), "{bq}");
    assert!(bq.contains(r"l.value LIKE '%@o\'x.invalid'"), "{bq}");
    assert!(
        bq.contains("--profile-column user_id --remove-column email --remove-column phone"),
        "{bq}"
    );
    // Snowflake folds bare names to upper case: the output columns are quoted.
    let sf = sql(Dialect::Snowflake);
    assert!(
        sf.contains(
            r#"SELECT a.user_id AS "user_id", h.canonical_segment_id AS "canonical_segment_id""#
        ),
        "{sf}"
    );
    assert!(sf.contains(r#"THEN h.value END AS "email""#), "{sf}");
    // The clean-up carries the data's "as of" on every row, for `init --from-csv`.
    assert!(
        sf.contains(
            r#"m.received_at) FROM "proj-1".ps.external_id_mapping_updates m) AS "data_as_of""#
        ),
        "{sf}"
    );
    let duck = sql(Dialect::Duckdb);
    assert!(duck.contains("l.value LIKE '%@o''x.invalid'"), "{duck}");
}

#[test]
fn the_bigquery_load_line_targets_the_table_the_query_reads() {
    let sql = |schema, file| {
        let mut out = Vec::new();
        profiles_sync_sql(&Removed::Csv(file), Dialect::Bigquery, schema, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    };
    let two = sql("my-proj.ps", "removed.csv");
    assert!(
        two.contains(" my-proj:ps.idprune_removed removed.csv "),
        "{two}"
    );
    assert!(two.contains("FROM `my-proj`.ps.idprune_removed"), "{two}");
    let one = sql("ps", "my file's.csv");
    assert!(
        one.contains(r" ps.idprune_removed 'my file'\''s.csv' "),
        "{one}"
    );
}

#[test]
fn shell_words_are_quoted_unless_plain() {
    assert_eq!(shell_word("out/removed-1.csv"), "out/removed-1.csv");
    assert_eq!(shell_word("a b"), "'a b'");
    assert_eq!(shell_word("$(rm -rf ~)"), "'$(rm -rf ~)'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word(""), "''");
    assert!(check_printable_path("--csv", "a\nb.csv").is_err());
}

#[test]
fn sql_quotes_and_filters() {
    let items = vec![
        item(1, "o'brien@x.com", ItemState::Done),
        item(2, "b@x.com", ItemState::Failed),
    ];
    let rows = inline_rows(|f| items.into_iter().try_for_each(f)).expect("rows");
    let mut out = Vec::new();
    profiles_sync_sql(&Removed::Inline(rows), Dialect::Postgres, "ps", &mut out).expect("write");
    let sql = String::from_utf8(out).expect("utf8");
    assert!(sql.contains("'o''brien@x.com'"));
    assert!(!sql.contains("b@x.com"));
    assert!(sql.contains("ps.external_id_mapping_updates"));
}
