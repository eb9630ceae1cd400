//! The view of `idprune init`: what was written, the data's age when the export had one, and
//! what to do next, drawn from an [`Initialized`].

use std::io::{self, Write};

use super::{clean, thousands};
use crate::outcome::Initialized;

/// The lines `init` prints on stdout once the manifest is written.
pub fn init_text(written: &Initialized, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "Wrote `{}`: {} rows of `{}` (removing {}, looked up by `{}`), pinned at sha256 {}.",
        written.manifest.display(),
        thousands(written.rows),
        written.csv.display(),
        written
            .remove_columns
            .iter()
            .map(|c| format!("`{}`", clean(c)))
            .collect::<Vec<_>>()
            .join(", "),
        clean(&written.profile_column),
        &written.sha256[..12]
    )?;
    if let Some(at) = written.data_as_of {
        writeln!(
            out,
            "The data is as of {} (the oldest `{}` of the CSV): `data_as_of` in the manifest, sealed into the plan.",
            crate::text::timestamp(at),
            written.data_as_of_column
        )?;
    }
    writeln!(
        out,
        "Next: fill in `reason`{} in it (validate refuses the placeholder), then `idprune validate {}` and `idprune plan {}`.",
        if written.space_given {
            ""
        } else {
            " and `space`"
        },
        crate::text::shell_path(&written.manifest),
        crate::text::shell_path(&written.manifest)
    )
}
