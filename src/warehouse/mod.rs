//! The warehouse queries of `idprune report --sql` (see `docs/ARCHITECTURE.md`): a query that
//! checks Profiles Sync received a `REMOVED` row for each removed identifier, in the SQL dialect
//! of the user's warehouse (string and identifier quoting differ: see [`Dialect`]), inline for a
//! few identifiers or joined to a CSV the warehouse loads for a million; and the `--discover`
//! query that lists profiles carrying identifiers like a pattern, the first step of a clean-up.
//! Values are shown: these queries are for the operator doing the clean-up, not for a pull
//! request.

use std::io::Write;

use crate::downstream::{Items, removed};

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
    /// `'…'` with `'` doubled and nothing else escaped (a DuckDB string constant reads `\` and
    /// control characters as themselves); `"…"` identifiers. For Profiles Sync tables exported
    /// to Parquet or CSV files and queried on a laptop.
    Duckdb,
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
            Self::Duckdb => "duckdb",
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

/// Appends `value` as the body of a backslash-escaping string literal: `\`, newline, return,
/// tab and other control characters backslash-escaped, and `'` written as `quote` (`\'` or
/// `''`, by dialect).
fn push_backslash_escaped(out: &mut String, value: &str, quote: &str) {
    for c in value.chars() {
        match c {
            '\'' => out.push_str(quote),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&unicode_escape(c)),
            c => out.push(c),
        }
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
            push_backslash_escaped(&mut out, value, "\\'");
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
            // Without the `E` prefix there is no backslash or control character to escape.
            push_backslash_escaped(&mut out, value, "''");
            out.push('\'');
        }
        Dialect::Duckdb => {
            out.push('\'');
            out.push_str(&value.replace('\'', "''"));
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
        Dialect::Snowflake | Dialect::Redshift | Dialect::Postgres | Dialect::Duckdb => {
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
        Dialect::Postgres | Dialect::Duckdb => format!(
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

/// A path as one word of a POSIX shell line: bare when it holds only safe characters, else
/// single-quoted (a `'` inside written `'\''`).
pub fn shell_word(path: &str) -> String {
    let safe = !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:@%+,".contains(&b));
    if safe {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

/// Refuses a `--csv` path that cannot be printed inside a SQL comment or a shell line: a
/// control character (a newline would end the comment and run the rest as SQL).
pub fn check_printable_path(flag: &str, path: &str) -> anyhow::Result<()> {
    if path.chars().any(char::is_control) {
        anyhow::bail!(
            "{flag} `{}` holds a control character, which the printed SQL and shell lines cannot carry; rename the file",
            path.escape_debug()
        );
    }
    Ok(())
}

/// How a CSV of `id_type,id_value` (with a header) reaches the warehouse: the statements
/// that load it (each ending in `;`, or a comment), and the relation it is read from.
pub(crate) fn csv_load(
    dialect: Dialect,
    schema: &str,
    file: &str,
    table: &str,
) -> (String, String) {
    let lit = |v: &str| string_literal(dialect, v);
    let name = identifier(dialect, table);
    match dialect {
        Dialect::Postgres => (
            format!(
                "-- Run in psql (\\copy reads the file on your machine).\nCREATE TEMP TABLE {name} (id_type text, id_value text);\n\\copy {name} (id_type, id_value) FROM {} WITH (FORMAT csv, HEADER true)\n",
                lit(file)
            ),
            name,
        ),
        Dialect::Redshift => (
            format!(
                "-- Upload the CSV to S3 first; replace the bucket path and the IAM role.\nCREATE TEMP TABLE {name} (id_type varchar(256), id_value varchar(1024));\nCOPY {name} (id_type, id_value) FROM {} IAM_ROLE {} CSV IGNOREHEADER 1;\n",
                lit(&format!("s3://YOUR-BUCKET/{file}")),
                lit("arn:aws:iam::ACCOUNT:role/YOUR-ROLE")
            ),
            name,
        ),
        Dialect::Snowflake => (
            format!(
                "-- Run in SnowSQL (PUT uploads the file from your machine to the table's stage).\nCREATE TEMPORARY TABLE {name} (id_type STRING, id_value STRING);\nPUT {} @%{name};\nCOPY INTO {name} FROM @%{name} FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"');\n",
                lit(&format!("file://{file}"))
            ),
            name,
        ),
        Dialect::Bigquery => {
            // `bq` names a table `project:dataset.table`; the query reads `project.dataset.table`.
            let parts: Vec<&str> = schema.split('.').filter(|p| !p.is_empty()).collect();
            let target = match parts.as_slice() {
                [project, dataset] => format!("{project}:{dataset}.{table}"),
                _ => format!("{schema}.{table}"),
            };
            (
                format!(
                    "-- Load the CSV first (a shell command):\n--   bq load --source_format=CSV --skip_leading_rows=1 --allow_quoted_newlines {} {} id_type:STRING,id_value:STRING\n",
                    shell_word(&target),
                    shell_word(file)
                ),
                qualified(dialect, schema, table),
            )
        }
        Dialect::Databricks => (
            "-- Upload the CSV to a volume first; replace the path.\n".to_owned(),
            format!(
                "read_files({}, format => 'csv', header => true, multiLine => true, schema => 'id_type STRING, id_value STRING')",
                lit(&format!("/Volumes/CATALOG/SCHEMA/VOLUME/{file}"))
            ),
        ),
        Dialect::Duckdb => (
            String::new(),
            format!(
                "read_csv({}, header = true, quote = '\"', escape = '\"', columns = {{'id_type': 'VARCHAR', 'id_value': 'VARCHAR'}})",
                lit(file)
            ),
        ),
    }
}

/// The statements that load `file` into a table and define `removed` over it.
fn csv_cte(dialect: Dialect, schema: &str, file: &str) -> String {
    let (load, relation) = csv_load(dialect, schema, file, LOADED_TABLE);
    format!("{load}WITH removed AS (SELECT id_type, id_value FROM {relation})")
}

/// Writes a warehouse query in `dialect` listing removed identifiers whose latest row in
/// Profiles Sync's `external_id_mapping_updates` is not (yet) a `REMOVED` one (an empty
/// result means all arrived; an earlier removal undone by a replay does not count). The
/// identifiers come inline or from a CSV the warehouse loads.
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
        "-- Needs the `__operation` column on external_id_mapping_updates. Arrived: the identifier's latest row is REMOVED.\n-- Empty result: all arrived."
    )?;
    let cte = match removed {
        Removed::Inline(rows) if rows.is_empty() => {
            writeln!(out, "-- No identifiers were removed yet.")?;
            return Ok(());
        }
        Removed::Inline(rows) => inline_cte(dialect, rows),
        Removed::Csv(file) => csv_cte(dialect, schema, file),
    };
    // A REMOVED row counts when it is the identifier's latest row (by `timestamp`): an older
    // one is from an earlier removal that a replay or a new event has since undone.
    writeln!(
        out,
        "{cte},\narrived AS (\n  SELECT u.external_id_type AS id_type, u.external_id_value AS id_value\n  FROM {} u\n  JOIN removed r ON u.external_id_type = r.id_type AND u.external_id_value = r.id_value\n  GROUP BY u.external_id_type, u.external_id_value\n  HAVING MAX(CASE WHEN u.__operation = {} THEN u.timestamp END) >= MAX(u.timestamp)\n)",
        qualified(dialect, schema, "external_id_mapping_updates"),
        string_literal(dialect, "REMOVED")
    )?;
    writeln!(
        out,
        "SELECT r.id_type, r.id_value\nFROM removed r\nLEFT JOIN arrived a ON a.id_type = r.id_type AND a.id_value = r.id_value"
    )?;
    writeln!(out, "WHERE a.id_value IS NULL;")?;
    Ok(())
}

mod discover;
pub use discover::{DATA_AS_OF_COLUMN, Discover, discover_sql};

#[cfg(test)]
mod tests;
