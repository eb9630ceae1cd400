//! `init --from-csv`: the flags into [`InitOptions`], one [`ops::init::init`] call (the CSV
//! checked, the manifest written), then what was written on stdout.

use std::io::Write as _;

use crate::cli::InitArgs;
use crate::exit::Exit;
use crate::ops::{self, InitOptions};
use crate::render;

/// `idprune init --from-csv FILE --profile-column COL --remove-column COL [-o PATH]`.
pub fn init(args: &InitArgs) -> anyhow::Result<Exit> {
    let opts = InitOptions {
        from_csv: args.from_csv.clone(),
        profile_column: args.profile_column.clone(),
        remove_columns: args.remove_column.clone(),
        out: args.out.clone(),
        space: args.space.clone(),
        region: args.region,
        force: args.force,
    };
    let written = ops::init::init(&opts)?;
    let mut out = std::io::BufWriter::new(crate::ui::stdout());
    render::init_text(&written, &mut out)?;
    out.flush()?;
    Ok(Exit::Success)
}
