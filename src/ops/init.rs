//! `init --from-csv` as a library call: a manifest written for a CSV export, pinning the file
//! by sha256, with the `reason` (and, unless given, the `space`) left as a placeholder that
//! `validate` refuses until the author fills it in. The CSV's header is checked here, so a
//! wrong column name is found before anyone reviews the manifest. What it wrote is an
//! [`Initialized`] outcome, which `render::init_text` draws.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};

use super::relative_to;
use crate::manifest::{PLACEHOLDER, Region};
use crate::model::Identifier;
use crate::outcome::Initialized;
use crate::text::{clean, thousands};
use crate::warehouse::DATA_AS_OF_COLUMN;

/// What `init` needs: the CSV, its columns and where the manifest goes.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The CSV export (a local file).
    pub from_csv: PathBuf,
    /// The column holding each row's profile lookup.
    pub profile_column: String,
    /// The columns of identifiers to remove; each header is the identifier type.
    pub remove_columns: Vec<String>,
    /// The manifest to write (`None`: the CSV's path with `.yaml`).
    pub out: Option<PathBuf>,
    /// The space id (`None`: a placeholder to fill in).
    pub space: Option<String>,
    /// The space's region.
    pub region: Region,
    /// Replace an existing manifest.
    pub force: bool,
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Checks the CSV and its columns, then writes the manifest (never through a symbolic link,
/// never over a file without `force`).
pub fn init(opts: &InitOptions) -> anyhow::Result<Initialized> {
    let csv_path = &opts.from_csv;
    if let Some(text) = csv_path.to_str()
        && crate::manifest::source_url(text).is_some()
    {
        bail!(
            "`init --from-csv` reads a local file, and `{}` is a URL; run it on your local copy of the CSV (the one you upload), then change `csv:` in the manifest to the URL, keeping its `sha256:` pin (a CSV in a store needs one)",
            clean(text)
        );
    }
    let out = match &opts.out {
        Some(p) => p.clone(),
        None => csv_path.with_extension("yaml"),
    };
    if out == *csv_path {
        bail!(
            "the manifest would replace `{}`; pass -o plans/NAME.yaml",
            csv_path.display()
        );
    }
    // A discovery export's `data_as_of` column (any case): the oldest time in it becomes the
    // source's `data_as_of`, which `plan` seals and every view shows.
    let (header, rows, data_as_of) =
        crate::manifest::csv_header_and_rows(csv_path, Some(DATA_AS_OF_COLUMN))?;
    check_columns(&header, opts)?;
    if rows == 0 {
        bail!(
            "`{}` has a header but no rows; there is nothing to remove",
            csv_path.display()
        );
    }
    let relative = csv_path_in_manifest(csv_path, &out)?;
    let sha256 = crate::manifest::sha256_file(csv_path, "CSV")?;
    let written = Initialized {
        manifest: out,
        csv: csv_path.clone(),
        rows,
        profile_column: opts.profile_column.clone(),
        remove_columns: opts.remove_columns.clone(),
        sha256,
        data_as_of,
        data_as_of_column: DATA_AS_OF_COLUMN,
        space_given: opts.space.is_some(),
    };
    let text = manifest_text(&written, &relative, opts);
    write_manifest(&written.manifest, &text, opts.force)?;
    Ok(written)
}

/// Every column named must be in the header (exactly, or in any case when only one column
/// matches so), each a valid identifier type, and the profile column not one to remove.
fn check_columns(header: &[String], opts: &InitOptions) -> anyhow::Result<()> {
    let csv_path = &opts.from_csv;
    let mut wanted = vec![("--profile-column", &opts.profile_column)];
    wanted.extend(opts.remove_columns.iter().map(|c| ("--remove-column", c)));
    for (flag, col) in &wanted {
        // The exact name, else the name in any case (one such column only), as `validate`
        // matches it: Snowflake exports `USER_ID` for a `user_id` alias.
        let exact = header.iter().any(|h| h == *col);
        let folded = header
            .iter()
            .filter(|h| h.eq_ignore_ascii_case(col))
            .count();
        if !exact && folded > 1 {
            bail!(
                "{flag} `{}` matches {folded} columns of `{}` when case is ignored, and none exactly; name the column exactly as its header spells it",
                clean(col),
                csv_path.display()
            );
        }
        if !exact && folded == 0 {
            bail!(
                "{flag} `{}` is not a column of `{}` (its header: {}); name one of those",
                clean(col),
                csv_path.display(),
                header
                    .iter()
                    .map(|h| format!("`{}`", clean(h)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if Identifier::parse(&format!("{col}:x")).is_err() {
            bail!(
                "{flag} `{}`: a column name doubles as the identifier type and may only hold letters, digits, `_`, `.` and `-`; rename the column",
                clean(col)
            );
        }
    }
    if opts.remove_columns.contains(&opts.profile_column) {
        bail!(
            "`{}` is both the profile column and a column to remove; the profile lookup cannot be the identifier deleted",
            clean(&opts.profile_column)
        );
    }
    Ok(())
}

/// The CSV path as the manifest at `out` will hold it: relative, inside the manifest's
/// directory (a manifest may not read a CSV outside it).
fn csv_path_in_manifest(csv_path: &Path, out: &Path) -> anyhow::Result<String> {
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let relative = relative_to(csv_path, &out_dir)?;
    if Path::new(&relative)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        bail!(
            "`{}` is outside `{}`, and a manifest may only read CSVs inside its own directory; move the CSV under `{}` or write the manifest beside it (-o)",
            csv_path.display(),
            out_dir.display(),
            out_dir.display()
        );
    }
    Ok(relative)
}

/// The manifest's YAML, with the CSV at `csv` (relative to the manifest) pinned.
fn manifest_text(written: &Initialized, csv: &str, opts: &InitOptions) -> String {
    let space = match &opts.space {
        Some(s) => quoted(s),
        None => quoted(&format!("{PLACEHOLDER}: the Unify space id (spa_...)")),
    };
    format!(
        "# Written by `idprune init` from a CSV of {rows} rows, pinned by its sha256: a changed file is refused.\n\
         # Fill in `reason`{space_note}, then: idprune validate {out} && idprune plan {out}\n\
         version: 1\n\
         space: {space}\n\
         region: {region}\n\
         reason: {reason}\n\
         sources:\n  \
           - csv: {csv}\n    \
             profile_column: {profile}\n    \
             remove_columns: [{remove}]\n    \
             sha256: {sha256}\n{as_of}",
        rows = thousands(written.rows),
        space_note = if written.space_given {
            ""
        } else {
            " and `space`"
        },
        out = clean(&written.manifest.display().to_string()),
        region = opts.region.as_str(),
        reason = quoted(&format!(
            "{PLACEHOLDER}: why these identifiers go, with the ticket (recorded in the journal)"
        )),
        csv = quoted(csv),
        profile = quoted(&written.profile_column),
        sha256 = written.sha256,
        as_of = written.data_as_of.map_or_else(String::new, |at| format!(
            "    # The newest sync of the warehouse data (its `{DATA_AS_OF_COLUMN}` column); sealed into the plan.\n    data_as_of: {}\n",
            quoted(&crate::text::timestamp(at))
        )),
        remove = written
            .remove_columns
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Writes `text` to `out`: never through a symbolic link (even with `force`: it would
/// overwrite its target), never over an existing file without `force`.
fn write_manifest(out: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(out).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            anyhow::anyhow!(
                "`{}` is a symbolic link; idprune does not write through one, choose another -o path",
                out.display()
            )
        } else if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "`{}` already exists; choose another -o path, or pass --force to replace it",
                out.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("writing manifest `{}`", out.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing manifest `{}`", out.display()))
}
