//! `init --from-csv`: write a manifest for a CSV export, pinning the file by sha256, with the
//! `reason` (and, unless given, the `space`) left as a placeholder that `validate` refuses
//! until the author fills it in. The CSV's header is checked here, so a wrong column name is
//! found before anyone reviews the manifest.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};

use super::relative_to;
use crate::cli::InitArgs;
use crate::exit::Exit;
use crate::manifest::PLACEHOLDER;
use crate::model::Identifier;
use crate::render::{clean, thousands};
use crate::warehouse::DATA_AS_OF_COLUMN;

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// `idprune init --from-csv FILE --profile-column COL --remove-column COL [-o PATH]`.
pub fn init(args: &InitArgs) -> anyhow::Result<Exit> {
    let csv_path = &args.from_csv;
    if let Some(text) = csv_path.to_str()
        && crate::manifest::source_url(text).is_some()
    {
        bail!(
            "`init --from-csv` reads a local file, and `{}` is a URL; run it on your local copy of the CSV (the one you upload), then change `csv:` in the manifest to the URL, keeping its `sha256:` pin (a CSV in a store needs one)",
            clean(text)
        );
    }
    let out = match &args.out {
        Some(p) => p.clone(),
        None => csv_path.with_extension("yaml"),
    };
    if out == *csv_path {
        bail!(
            "the manifest would replace `{}`; pass -o plans/NAME.yaml",
            csv_path.display()
        );
    }
    // Columns: every one named must be in the header, each a valid identifier type.
    // A discovery export's `data_as_of` column (any case): the oldest time in it becomes the
    // source's `data_as_of`, which `plan` seals and every view shows.
    let (header, rows, data_as_of) =
        crate::manifest::csv_header_and_rows(csv_path, Some(DATA_AS_OF_COLUMN))?;
    let mut wanted = vec![("--profile-column", &args.profile_column)];
    wanted.extend(args.remove_column.iter().map(|c| ("--remove-column", c)));
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
    if args.remove_column.contains(&args.profile_column) {
        bail!(
            "`{}` is both the profile column and a column to remove; the profile lookup cannot be the identifier deleted",
            clean(&args.profile_column)
        );
    }
    if rows == 0 {
        bail!(
            "`{}` has a header but no rows; there is nothing to remove",
            csv_path.display()
        );
    }
    // The CSV path as the manifest will hold it: relative, inside the manifest's directory.
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
    let sha256 = crate::manifest::sha256_file(csv_path, "CSV")?;
    let space = match &args.space {
        Some(s) => quoted(s),
        None => quoted(&format!("{PLACEHOLDER}: the Unify space id (spa_...)")),
    };
    let text = format!(
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
        rows = thousands(rows),
        space_note = if args.space.is_none() {
            " and `space`"
        } else {
            ""
        },
        out = clean(&out.display().to_string()),
        region = args.region.as_str(),
        reason = quoted(&format!(
            "{PLACEHOLDER}: why these identifiers go, with the ticket (recorded in the journal)"
        )),
        csv = quoted(&relative),
        profile = quoted(&args.profile_column),
        as_of = data_as_of.map_or_else(String::new, |at| format!(
            "    # The newest sync of the warehouse data (its `{DATA_AS_OF_COLUMN}` column); sealed into the plan.\n    data_as_of: {}\n",
            quoted(&crate::text::timestamp(at))
        )),
        remove = args
            .remove_column
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut options = std::fs::OpenOptions::new();
    // Never through a symbolic link at `-o`, even with --force: it would overwrite its target.
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(&out).map_err(|e| {
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
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing manifest `{}`", out.display()))?;
    writeln!(
        super::ui::stdout(),
        "Wrote `{}`: {} rows of `{}` (removing {}, looked up by `{}`), pinned at sha256 {}.",
        out.display(),
        thousands(rows),
        csv_path.display(),
        args.remove_column
            .iter()
            .map(|c| format!("`{}`", clean(c)))
            .collect::<Vec<_>>()
            .join(", "),
        clean(&args.profile_column),
        &sha256[..12]
    )?;
    if let Some(at) = data_as_of {
        writeln!(
            super::ui::stdout(),
            "The data is as of {} (the oldest `{DATA_AS_OF_COLUMN}` of the CSV): `data_as_of` in the manifest, sealed into the plan.",
            crate::text::timestamp(at)
        )?;
    }
    writeln!(
        super::ui::stdout(),
        "Next: fill in `reason`{} in it (validate refuses the placeholder), then `idprune validate {}` and `idprune plan {}`.",
        if args.space.is_none() {
            " and `space`"
        } else {
            ""
        },
        crate::text::shell_path(&out),
        crate::text::shell_path(&out)
    )?;
    Ok(Exit::Success)
}
