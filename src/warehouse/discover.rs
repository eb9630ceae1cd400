//! `report --sql --discover`: the Profiles Sync queries that turn "identifiers like a pattern"
//! (or a list of values loaded from a CSV) into the rows of an addressable clean-up.
//!
//! Three statements, sharing the same common table expressions:
//! 1. the clean-up: `user_id`, `canonical_segment_id`, then one column per identifier type to
//!    remove (one identifier a row, the other type columns empty), then `data_as_of` (the
//!    sync's newest `received_at`, the same on every row). `user_id` is a user_id of
//!    the same canonical profile that this clean-up does not delete (the smallest, so the
//!    output is stable), because the Delete Profile Identifier API addresses profiles by
//!    user_id only. Exported as CSV, it is the input of `idprune init --from-csv`, which
//!    writes `data_as_of` into the manifest for `plan` to seal;
//! 2. the profiles that match but carry no other user_id: this API cannot reach them;
//! 3. the counts of both, and the data's "as of" (the newest `received_at` and `uuid_ts` of
//!    `external_id_mapping_updates`, which the hourly sync appends to).
//!
//! An identifier is live when `user_identifiers` lists it and the latest
//! `external_id_mapping_updates` row of its type and value (by `timestamp`) is not
//! `REMOVED`: Segment's view already leaves removed identifiers out, but a view built by
//! the `profiles-sync-dbt` models keeps the latest row whatever its `__operation`.

use std::io::Write;

use super::{Dialect, csv_load, identifier, qualified, string_literal};

/// What to discover.
pub enum Discover<'a> {
    /// `(type, LIKE pattern)` pairs, any of which matches.
    Patterns(Vec<(String, String)>),
    /// A CSV of `id_type,id_value` the warehouse loads (its path as printed), and the
    /// identifier types it holds (one output column each, in this order).
    Csv { file: &'a str, kinds: Vec<String> },
}

impl<'a> Discover<'a> {
    /// Parses `--discover TYPE:PATTERN` arguments.
    pub fn patterns(args: &[String]) -> anyhow::Result<Discover<'a>> {
        let mut patterns = Vec::new();
        for arg in args {
            let Some((kind, like)) = arg.split_once(':').filter(|(k, l)| {
                !l.is_empty() && crate::model::Identifier::parse(&format!("{k}:x")).is_ok()
            }) else {
                anyhow::bail!(
                    "--discover `{}` is not `TYPE:PATTERN`; for example --discover 'email:%@import.invalid' (SQL LIKE: `%` any run, `_` one character)",
                    crate::render::clean(arg)
                );
            };
            if kind == "user_id" {
                anyhow::bail!(
                    "--discover `{}`: user_ids cannot be discovered for removal here. The export's `user_id` column is the user_id each row's delete is addressed by, so a second `user_id` column (the ones to remove) would make the CSV ambiguous for `init --from-csv`, and a zero-read plan gains nothing: `plan` reads every profile that loses a user_id anyway, to keep its last one (Segment refuses that delete). List the extra user_ids in a manifest's `remove:` entries instead (`profile: user_id:KEEP`, `identifier: user_id:EXTRA`); `plan` checks each profile and keeps at least one user_id",
                    crate::render::clean(arg)
                );
            }
            patterns.push((kind.to_owned(), like.to_owned()));
        }
        Ok(Discover::Patterns(patterns))
    }

    /// Reads the `id_type,id_value` CSV of `--discover-csv` for the identifier types it holds
    /// (the query's columns), checking its header and each type; `file` is the path as the
    /// printed statements name it.
    pub fn csv(path: &std::path::Path, file: &'a str) -> anyhow::Result<Discover<'a>> {
        super::check_printable_path("--discover-csv", file)?;
        let shown = || path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .from_path(path)
            .map_err(|e| anyhow::anyhow!("reading `{}`: {e}", shown()))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| anyhow::anyhow!("reading the header of `{}`: {e}", shown()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        if header != ["id_type", "id_value"] {
            anyhow::bail!(
                "`{}` has the header `{}`; --discover-csv reads a CSV with the header `id_type,id_value` (one identifier a row), so write that header",
                shown(),
                crate::render::clean(&header.join(","))
            );
        }
        let mut kinds: Vec<String> = Vec::new();
        let mut rows = 0u64;
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| anyhow::anyhow!("reading `{}`: {e}", shown()))?;
            let kind = record.get(0).unwrap_or_default();
            if crate::model::Identifier::parse(&format!("{kind}:x")).is_err() {
                anyhow::bail!(
                    "`{}` line {}: `{}` is not an identifier type (letters, digits, `_`, `.` and `-`); fix the `id_type` cell",
                    shown(),
                    n + 2,
                    crate::render::clean(kind)
                );
            }
            if kind == "user_id" {
                anyhow::bail!(
                    "`{}` line {}: user_ids cannot be discovered for removal here: the export's `user_id` column is the user_id each row's delete is addressed by, so a second `user_id` column would make it ambiguous, and `plan` reads every profile that loses a user_id anyway (to keep its last one). List the extra user_ids in a manifest's `remove:` entries instead (`profile: user_id:KEEP`, `identifier: user_id:EXTRA`)",
                    shown(),
                    n + 2
                );
            }
            if !kinds.iter().any(|k| k == kind) {
                kinds.push(kind.to_owned());
            }
            rows += 1;
        }
        if rows == 0 {
            anyhow::bail!(
                "`{}` has a header but no rows; list the identifiers to look for, one a row",
                shown()
            );
        }
        Ok(Discover::Csv { file, kinds })
    }

    /// The identifier types to remove, each once, in the order given.
    fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = Vec::new();
        let all: Vec<&String> = match self {
            Self::Patterns(p) => p.iter().map(|(k, _)| k).collect(),
            Self::Csv { kinds, .. } => kinds.iter().collect(),
        };
        for k in all {
            if !kinds.contains(k) {
                kinds.push(k.clone());
            }
        }
        kinds
    }
}

/// The clean-up's last column: the newest `received_at` of the sync, the same on every row,
/// so the export carries it to `idprune init --from-csv` (which writes it into the manifest
/// as the source's `data_as_of`, which `plan` seals).
pub const DATA_AS_OF_COLUMN: &str = "data_as_of";

/// The table a `--discover-csv` file is loaded into.
const WANTED_TABLE: &str = "idprune_wanted";

/// An output column name that comes back lower-case: quoted where the warehouse folds bare
/// names to upper case (Snowflake), else an [`identifier`].
fn column(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Snowflake => format!("\"{}\"", name.replace('"', "\"\"")),
        _ => identifier(dialect, name),
    }
}

/// The shared common table expressions, and the statements that load a CSV first.
fn ctes(dialect: Dialect, schema: &str, discover: &Discover<'_>) -> (String, String) {
    let lit = |v: &str| string_literal(dialect, v);
    let updates = qualified(dialect, schema, "external_id_mapping_updates");
    let identifiers = qualified(dialect, schema, "user_identifiers");
    let (load, wanted) = match discover {
        Discover::Patterns(_) => (String::new(), None),
        Discover::Csv { file, .. } => {
            let (load, relation) = csv_load(dialect, schema, file, WANTED_TABLE);
            (
                load,
                Some(format!(
                    "wanted AS (\n  SELECT id_type, id_value FROM {relation}\n),\n"
                )),
            )
        }
    };
    let matches = match discover {
        Discover::Patterns(patterns) => format!(
            "  WHERE {}",
            patterns
                .iter()
                .map(|(k, p)| format!("(l.type = {} AND l.value LIKE {})", lit(k), lit(p)))
                .collect::<Vec<_>>()
                .join("\n     OR ")
        ),
        Discover::Csv { .. } => {
            "  JOIN wanted w ON w.id_type = l.type AND w.id_value = l.value".to_owned()
        }
    };
    let removed = lit("REMOVED");
    let user_id = lit("user_id");
    let ctes = format!(
        "WITH {wanted}gone AS (\n  -- identifiers whose latest row is REMOVED\n  SELECT m.external_id_type AS type, m.external_id_value AS value\n  FROM {updates} m\n  GROUP BY m.external_id_type, m.external_id_value\n  HAVING MAX(CASE WHEN m.__operation = {removed} THEN m.timestamp END) >= MAX(m.timestamp)\n),\nlive AS (\n  SELECT u.canonical_segment_id, u.type, u.value\n  FROM {identifiers} u\n  WHERE NOT EXISTS (SELECT 1 FROM gone g WHERE g.type = u.type AND g.value = u.value)\n),\nhits AS (\n  SELECT DISTINCT l.canonical_segment_id, l.type, l.value\n  FROM live l\n{matches}\n),\naddressing AS (\n  -- per profile, the smallest user_id this clean-up keeps\n  SELECT l.canonical_segment_id, MIN(l.value) AS user_id\n  FROM live l\n  WHERE l.type = {user_id}\n    AND NOT EXISTS (SELECT 1 FROM hits h WHERE h.canonical_segment_id = l.canonical_segment_id AND h.type = l.type AND h.value = l.value)\n  GROUP BY l.canonical_segment_id\n)\n",
        wanted = wanted.unwrap_or_default(),
    );
    (load, ctes)
}

/// The three statements (see the module docs), each a complete query ending in `;`, after
/// the statements that load a CSV (empty for patterns).
pub fn discover_statements(
    dialect: Dialect,
    schema: &str,
    discover: &Discover<'_>,
) -> (String, [String; 3]) {
    let (load, ctes) = ctes(dialect, schema, discover);
    let kinds = discover.kinds();
    let type_columns = kinds
        .iter()
        .map(|k| {
            format!(
                ",\n  CASE WHEN h.type = {} THEN h.value END AS {}",
                string_literal(dialect, k),
                column(dialect, k)
            )
        })
        .collect::<String>();
    let order = "ORDER BY h.canonical_segment_id, h.type, h.value;";
    let updates = qualified(dialect, schema, "external_id_mapping_updates");
    let cleanup = format!(
        "{ctes}SELECT a.user_id AS {}, h.canonical_segment_id AS {}{type_columns},\n  (SELECT MAX(m.received_at) FROM {updates} m) AS {}\nFROM hits h\nJOIN addressing a ON a.canonical_segment_id = h.canonical_segment_id\n{order}",
        column(dialect, "user_id"),
        column(dialect, "canonical_segment_id"),
        column(dialect, DATA_AS_OF_COLUMN),
    );
    let no_address = "NOT EXISTS (SELECT 1 FROM addressing a WHERE a.canonical_segment_id = h.canonical_segment_id)";
    let apart = format!(
        "{ctes}SELECT h.canonical_segment_id AS {}{type_columns}\nFROM hits h\nWHERE {no_address}\n{order}",
        column(dialect, "canonical_segment_id"),
    );
    let address =
        "EXISTS (SELECT 1 FROM addressing a WHERE a.canonical_segment_id = h.canonical_segment_id)";
    let counts = format!(
        "{ctes}SELECT\n  (SELECT COUNT(DISTINCT h.canonical_segment_id) FROM hits h WHERE {address}) AS {},\n  (SELECT COUNT(*) FROM hits h WHERE {address}) AS {},\n  (SELECT COUNT(DISTINCT h.canonical_segment_id) FROM hits h WHERE {no_address}) AS {},\n  (SELECT COUNT(*) FROM hits h WHERE {no_address}) AS {},\n  (SELECT MAX(m.received_at) FROM {updates} m) AS {},\n  (SELECT MAX(m.uuid_ts) FROM {updates} m) AS {};",
        column(dialect, "addressable_profiles"),
        column(dialect, "addressable_identifiers"),
        column(dialect, "profiles_without_user_id"),
        column(dialect, "identifiers_without_user_id"),
        column(dialect, "newest_received_at"),
        column(dialect, "newest_uuid_ts"),
    );
    (load, [cleanup, apart, counts])
}

/// Writes the discovery queries (see the module docs) with the comments that say what each
/// is for and what to run next.
pub fn discover_sql(
    dialect: Dialect,
    schema: &str,
    discover: &Discover<'_>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let (load, [cleanup, apart, counts]) = discover_statements(dialect, schema, discover);
    let kinds = discover.kinds();
    let what = match discover {
        Discover::Patterns(p) => format!(
            "identifiers LIKE {}",
            p.iter()
                .map(|(k, l)| format!("{k}:{l}"))
                .collect::<Vec<_>>()
                .join(" or ")
                .escape_debug()
        ),
        Discover::Csv { .. } => "the identifiers listed in the CSV".to_owned(),
    };
    writeln!(
        out,
        "-- idprune ({}): profiles in Profiles Sync carrying {what}, addressed by a user_id each keeps.",
        dialect.as_str()
    )?;
    writeln!(
        out,
        "-- Identifiers whose latest external_id_mapping_updates row is REMOVED are left out."
    )?;
    if !load.is_empty() {
        write!(out, "{load}")?;
    }
    writeln!(
        out,
        "\n-- 1. The clean-up. Check the list by hand (a pattern can match identifiers that are right), export it as CSV\n--    (data_as_of, the sync's newest received_at, goes into the manifest and is sealed into the plan), then:"
    )?;
    writeln!(
        out,
        "--   idprune init --from-csv FILE.csv --profile-column user_id{}",
        kinds
            .iter()
            .map(|k| format!(" --remove-column {k}"))
            .collect::<String>()
    )?;
    writeln!(out, "{cleanup}")?;
    writeln!(
        out,
        "\n-- 2. Matching profiles with no other user_id: the Delete Profile Identifier API addresses profiles by user_id\n--    only, and so do Segment's user deletion regulations, so no plan can reach them. Give each a user_id (an\n--    identify call from the source that owns the profile; after the next sync it shows up in query 1), or ask\n--    Segment support to remove the identifiers."
    )?;
    writeln!(out, "{apart}")?;
    writeln!(
        out,
        "\n-- 3. The counts of 1 and 2, and the data's \"as of\": the newest received_at and uuid_ts of the sync. A profile\n--    changed in Unify since then may differ from these rows (`plan` reads it unless --refresh=false)."
    )?;
    writeln!(out, "{counts}")?;
    Ok(())
}
