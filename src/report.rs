//! Reports for the work Segment leaves to its users (see `docs/ARCHITECTURE.md`), written into any
//! `impl Write`: the removed identifiers for downstream clean-up (CSV or JSON), and a warehouse
//! query that checks Profiles Sync received a `REMOVED` row for each of them, in the SQL dialect
//! of the user's warehouse (string and identifier quoting differ: see [`Dialect`]), inline for a
//! few identifiers or joined to a CSV the warehouse loads for a million; and the `--discover`
//! query that lists profiles carrying identifiers like a pattern, the first step of a clean-up.
//! Values are shown: these reports are for the operator doing the clean-up, not for a pull
//! request.

use std::io::Write;

use serde_json::json;

use crate::state::{ItemState, StoredItem};

/// A stream of items: the report calls it once with a sink that takes each item in turn
/// (`State::for_each_item_in` in the command layer, a vector in tests).
pub trait Items:
    FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>
{
}
impl<F: FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>> Items
    for F
{
}

/// Items a report lists: those the API confirmed gone (`done`, `already_absent`).
pub fn removed(item: &StoredItem) -> bool {
    matches!(
        item.journal.state,
        ItemState::Done | ItemState::AlreadyAbsent
    )
}

/// Writes `seq,user_id,type,id,state` rows with a header, CSV-quoted.
pub fn downstream_csv(items: impl Items, out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["seq", "user_id", "type", "id", "state"])?;
    items(&mut |s| {
        if removed(&s) {
            w.write_record([
                s.item.seq.to_string().as_str(),
                s.item.user_id.as_deref().unwrap_or(""),
                &s.item.identifier.kind,
                &s.item.identifier.id,
                s.journal.state.as_str(),
            ])?;
        }
        Ok(())
    })?;
    w.flush()?;
    Ok(())
}

/// Writes one JSON object `{"removed": [{seq, user_id, type, id, state}, ...]}`, a row a line.
pub fn downstream_json(items: impl Items, mut out: impl Write) -> anyhow::Result<()> {
    write!(out, "{{\"removed\": [")?;
    let mut first = true;
    items(&mut |s| {
        if removed(&s) {
            let row = json!({"seq": s.item.seq, "user_id": s.item.user_id, "type": s.item.identifier.kind,
                             "id": s.item.identifier.id, "state": s.journal.state.as_str()});
            write!(out, "{}\n  {row}", if first { "" } else { "," })?;
            first = false;
        }
        Ok(())
    })?;
    writeln!(out, "{}]}}", if first { "" } else { "\n" })?;
    Ok(())
}

/// The warehouses Profiles Sync writes to, each with its own quoting rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// `'…'` with `\` and `'` escaped by a backslash (backslash escapes are on by default in
    /// single-quoted string constants); `"…"` identifiers.
    Snowflake,
    /// `'…'` with backslash escapes (`''` is not a quote there); `` `…` `` identifiers.
    Bigquery,
    /// `'…'` with `'` doubled and `\` doubled (Redshift reads backslash escapes in literals, as
    /// its `QUOTE_LITERAL` shows); `"…"` identifiers.
    Redshift,
    /// `'…'` with `'` doubled (`standard_conforming_strings`, on by default); a value holding
    /// `\` or a control character becomes an `E'…'` string, which reads the same whatever that
    /// setting is; `"…"` identifiers.
    Postgres,
    /// `'…'` with backslash escapes (adjacent literals concatenate, so `''` is not a quote);
    /// `` `…` `` identifiers.
    Databricks,
}

impl Dialect {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snowflake => "snowflake",
            Self::Bigquery => "bigquery",
            Self::Redshift => "redshift",
            Self::Postgres => "postgres",
            Self::Databricks => "databricks",
        }
    }
}

/// Inline identifiers at most; more go through a CSV the warehouse loads (`--csv`).
pub const MAX_INLINE_ROWS: usize = 1000;

/// `\uXXXX` (or `\UXXXXXXXX`) for a character, as the backslash dialects spell it.
fn unicode_escape(c: char) -> String {
    let n = c as u32;
    if n <= 0xFFFF {
        format!("\\u{n:04x}")
    } else {
        format!("\\U{n:08x}")
    }
}

/// A string literal of `dialect` that reads back as exactly `value`. Non-ASCII characters
/// are written as themselves (every dialect reads UTF-8 SQL); control characters are escaped
/// where the dialect has an escape for them.
pub fn string_literal(dialect: Dialect, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    match dialect {
        Dialect::Snowflake | Dialect::Bigquery | Dialect::Databricks => {
            out.push('\'');
            for c in value.chars() {
                match c {
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&unicode_escape(c)),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Dialect::Redshift => {
            out.push('\'');
            for c in value.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Dialect::Postgres => {
            let escaped = value.chars().any(|c| c == '\\' || c.is_control());
            if escaped {
                out.push_str("E'");
            } else {
                out.push('\'');
            }
            for c in value.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&unicode_escape(c)),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
    }
    out
}

/// An identifier of `dialect`: left bare when it is a plain one (`[A-Za-z_][A-Za-z0-9_]*`,
/// so the warehouse's own case folding applies, as for Profiles Sync's unquoted names), else
/// quoted the dialect's way.
pub fn identifier(dialect: Dialect, name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        return name.to_owned();
    }
    match dialect {
        Dialect::Snowflake | Dialect::Redshift | Dialect::Postgres => {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
        Dialect::Bigquery => format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`")),
        Dialect::Databricks => format!("`{}`", name.replace('`', "``")),
    }
}

/// `schema.table`, each dot-separated part of `schema` an [`identifier`].
pub fn qualified(dialect: Dialect, schema: &str, table: &str) -> String {
    let mut parts: Vec<String> = schema
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| identifier(dialect, p))
        .collect();
    parts.push(identifier(dialect, table));
    parts.join(".")
}

/// The table `--csv` loads the removed identifiers into.
const LOADED_TABLE: &str = "idprune_removed";

/// How the removed identifiers reach the query.
pub enum Removed<'a> {
    /// Inline rows (at most [`MAX_INLINE_ROWS`]).
    Inline(Vec<(String, String)>),
    /// A CSV file (`id_type,id_value` with a header) the warehouse loads, by this name.
    Csv(&'a str),
}

/// Collects the removed identifiers for an inline query, refusing more than
/// [`MAX_INLINE_ROWS`] (a query that size is where warehouses' statement limits start).
pub fn inline_rows(items: impl Items) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = Vec::new();
    let mut total = 0usize;
    items(&mut |s| {
        if removed(&s) {
            total += 1;
            if rows.len() < MAX_INLINE_ROWS {
                rows.push((s.item.identifier.kind, s.item.identifier.id));
            }
        }
        Ok(())
    })?;
    if total > MAX_INLINE_ROWS {
        anyhow::bail!(
            "{total} removed identifiers are too many to inline in one query (at most {MAX_INLINE_ROWS}); pass --csv FILE to write them to a CSV the warehouse loads, and the query joins it"
        );
    }
    Ok(rows)
}

/// Writes the `id_type,id_value` CSV of the removed identifiers (for `--csv`); returns how
/// many rows.
pub fn removed_csv(items: impl Items, out: impl Write) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["id_type", "id_value"])?;
    let mut n = 0u64;
    items(&mut |s| {
        if removed(&s) {
            w.write_record([&s.item.identifier.kind, &s.item.identifier.id])?;
            n += 1;
        }
        Ok(())
    })?;
    w.flush()?;
    Ok(n)
}

/// The inline rows as a relation `removed (id_type, id_value)`, in `dialect`'s syntax.
fn inline_cte(dialect: Dialect, rows: &[(String, String)]) -> String {
    let lit = |v: &str| string_literal(dialect, v);
    // `(type, id)` tuples, one per line: the row form of every dialect but Redshift.
    let tuples = || {
        rows.iter()
            .map(|(k, v)| format!("({}, {})", lit(k), lit(v)))
            .collect::<Vec<_>>()
            .join(",\n    ")
    };
    match dialect {
        Dialect::Postgres => format!(
            "WITH removed (id_type, id_value) AS (\n  VALUES\n    {}\n)",
            tuples()
        ),
        // Redshift accepts VALUES only in INSERT: a short UNION ALL (at most MAX_INLINE_ROWS).
        Dialect::Redshift => format!(
            "WITH removed AS (\n  {}\n)",
            rows.iter()
                .map(|(k, v)| format!(
                    "SELECT {}::varchar AS id_type, {}::varchar AS id_value",
                    lit(k),
                    lit(v)
                ))
                .collect::<Vec<_>>()
                .join("\n  UNION ALL ")
        ),
        Dialect::Snowflake => format!(
            "WITH removed AS (\n  SELECT column1 AS id_type, column2 AS id_value FROM VALUES\n    {}\n)",
            tuples()
        ),
        Dialect::Bigquery => format!(
            "WITH removed AS (\n  SELECT * FROM UNNEST(ARRAY<STRUCT<id_type STRING, id_value STRING>>[\n    {}\n  ])\n)",
            tuples()
        ),
        Dialect::Databricks => format!(
            "WITH removed AS (\n  SELECT * FROM VALUES\n    {}\n  AS t(id_type, id_value)\n)",
            tuples()
        ),
    }
}

/// The statements that load `file` into a table and define `removed` over it.
fn csv_cte(dialect: Dialect, schema: &str, file: &str) -> String {
    let lit = |v: &str| string_literal(dialect, v);
    let table = identifier(dialect, LOADED_TABLE);
    match dialect {
        Dialect::Postgres => format!(
            "-- Run in psql (\\copy reads the file on your machine).\nCREATE TEMP TABLE {table} (id_type text, id_value text);\n\\copy {table} (id_type, id_value) FROM {} WITH (FORMAT csv, HEADER true)\nWITH removed AS (SELECT id_type, id_value FROM {table})",
            lit(file)
        ),
        Dialect::Redshift => format!(
            "-- Upload the CSV to S3 first; replace the bucket path and the IAM role.\nCREATE TEMP TABLE {table} (id_type varchar(256), id_value varchar(1024));\nCOPY {table} (id_type, id_value) FROM {} IAM_ROLE {} CSV IGNOREHEADER 1;\nWITH removed AS (SELECT id_type, id_value FROM {table})",
            lit(&format!("s3://YOUR-BUCKET/{file}")),
            lit("arn:aws:iam::ACCOUNT:role/YOUR-ROLE")
        ),
        Dialect::Snowflake => format!(
            "-- Run in SnowSQL (PUT uploads the file from your machine to the table's stage).\nCREATE TEMPORARY TABLE {table} (id_type STRING, id_value STRING);\nPUT {} @%{table};\nCOPY INTO {table} FROM @%{table} FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"');\nWITH removed AS (SELECT id_type, id_value FROM {table})",
            lit(&format!("file://{file}"))
        ),
        Dialect::Bigquery => {
            let dataset = schema.rsplit('.').next().unwrap_or(schema);
            format!(
                "-- Load the CSV first (a shell command):\n--   bq load --source_format=CSV --skip_leading_rows=1 --allow_quoted_newlines {dataset}.{LOADED_TABLE} {file} id_type:STRING,id_value:STRING\nWITH removed AS (SELECT id_type, id_value FROM {})",
                qualified(dialect, schema, LOADED_TABLE)
            )
        }
        Dialect::Databricks => format!(
            "-- Upload the CSV to a volume first; replace the path.\nWITH removed AS (\n  SELECT id_type, id_value FROM read_files({}, format => 'csv', header => true, schema => 'id_type STRING, id_value STRING')\n)",
            lit(&format!("/Volumes/CATALOG/SCHEMA/VOLUME/{file}"))
        ),
    }
}

/// Writes a warehouse query in `dialect` listing removed identifiers that have no `REMOVED`
/// row in Profiles Sync's `external_id_mapping_updates` yet (an empty result means all
/// arrived). The identifiers come inline or from a CSV the warehouse loads.
pub fn profiles_sync_sql(
    removed: &Removed<'_>,
    dialect: Dialect,
    schema: &str,
    mut out: impl Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "-- idprune ({}): identifiers removed from Unify that Profiles Sync has not yet marked REMOVED.",
        dialect.as_str()
    )?;
    writeln!(
        out,
        "-- Needs the `__operation` column on external_id_mapping_updates. Empty result: all arrived."
    )?;
    let cte = match removed {
        Removed::Inline(rows) if rows.is_empty() => {
            writeln!(out, "-- No identifiers were removed yet.")?;
            return Ok(());
        }
        Removed::Inline(rows) => inline_cte(dialect, rows),
        Removed::Csv(file) => csv_cte(dialect, schema, file),
    };
    writeln!(out, "{cte}")?;
    writeln!(out, "SELECT r.id_type, r.id_value\nFROM removed r")?;
    writeln!(
        out,
        "LEFT JOIN {} u",
        qualified(dialect, schema, "external_id_mapping_updates")
    )?;
    writeln!(
        out,
        "  ON u.external_id_type = r.id_type AND u.external_id_value = r.id_value AND u.__operation = {}",
        string_literal(dialect, "REMOVED")
    )?;
    writeln!(out, "WHERE u.external_id_value IS NULL;")?;
    Ok(())
}

/// Writes a Profiles Sync query listing the profiles that carry an identifier of type `kind`
/// whose value is `LIKE pattern`, with the columns `segment_id,<kind>`: exported as CSV, it is
/// the input of `idprune init --from-csv FILE --profile-column segment_id --remove-column
/// <kind>`. Reads the `user_identifiers` view, which already leaves out removed identifiers.
pub fn discover_sql(
    dialect: Dialect,
    schema: &str,
    kind: &str,
    pattern: &str,
    mut out: impl Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "-- idprune ({}): profiles carrying a `{kind}` LIKE the pattern. Export the result as CSV, then:",
        dialect.as_str()
    )?;
    writeln!(
        out,
        "--   idprune init --from-csv FILE.csv --profile-column segment_id --remove-column {kind}"
    )?;
    writeln!(
        out,
        "-- Check the list by hand first: a pattern can match identifiers that are right."
    )?;
    writeln!(
        out,
        "SELECT DISTINCT canonical_segment_id AS segment_id, value AS {}",
        identifier(dialect, kind)
    )?;
    writeln!(
        out,
        "FROM {}",
        qualified(dialect, schema, "user_identifiers")
    )?;
    writeln!(
        out,
        "WHERE type = {} AND value LIKE {}",
        string_literal(dialect, kind),
        string_literal(dialect, pattern)
    )?;
    writeln!(out, "ORDER BY 1, 2;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identifier;
    use crate::plan::{Action, Item};
    use crate::state::Journal;

    fn item(seq: u64, id: &str, state: ItemState) -> StoredItem {
        StoredItem {
            item: Item {
                seq,
                lookup: "user_id:u1".into(),
                profile: Some("user_id:u1".into()),
                user_id: Some("u1".into()),
                identifier: Identifier::new("email", id),
                action: Action::Delete,
                note: None,
                origin: "m.yaml:1:1".into(),
            },
            journal: Journal {
                last_status: Some(200),
                ..Journal::new(state)
            },
            attempts: 1,
        }
    }

    /// Reads a string literal back by `dialect`'s documented rules, written independently of
    /// [`string_literal`]: `None` when it is not exactly one well-formed literal.
    fn read_back(dialect: Dialect, lit: &str) -> Option<String> {
        let (backslash, doubled, body) = match dialect {
            Dialect::Snowflake | Dialect::Redshift => (true, true, lit.strip_prefix('\'')?),
            Dialect::Bigquery | Dialect::Databricks => (true, false, lit.strip_prefix('\'')?),
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
    fn discover_quotes_the_pattern() {
        let mut out = Vec::new();
        discover_sql(
            Dialect::Bigquery,
            "proj-1.ps",
            "email",
            "%@o'x.invalid",
            &mut out,
        )
        .expect("write");
        let sql = String::from_utf8(out).expect("utf8");
        assert!(sql.contains("FROM `proj-1`.ps.user_identifiers"), "{sql}");
        assert!(sql.contains(r"value LIKE '%@o\'x.invalid'"), "{sql}");
        assert!(sql.contains("--remove-column email"), "{sql}");
    }

    #[test]
    fn sql_quotes_and_filters() {
        let items = vec![
            item(1, "o'brien@x.com", ItemState::Done),
            item(2, "b@x.com", ItemState::Failed),
        ];
        let rows = inline_rows(|f| items.into_iter().try_for_each(f)).expect("rows");
        let mut out = Vec::new();
        profiles_sync_sql(&Removed::Inline(rows), Dialect::Postgres, "ps", &mut out)
            .expect("write");
        let sql = String::from_utf8(out).expect("utf8");
        assert!(sql.contains("'o''brien@x.com'"));
        assert!(!sql.contains("b@x.com"));
        assert!(sql.contains("ps.external_id_mapping_updates"));
    }

    #[test]
    fn csv_lists_removed_only() {
        let items = vec![
            item(1, "a,b@x.com", ItemState::Done),
            item(2, "c@x.com", ItemState::Pending),
        ];
        let mut out = Vec::new();
        downstream_csv(|f| items.into_iter().try_for_each(f), &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,user_id,type,id,state\n1,u1,email,\"a,b@x.com\",done\n"
        );
    }
}
