//! The generated inputs of a run: the emulator's seed and the manifest with its CSV.

use super::*;

/// N profiles `use_i` with `user_id:u_i`, `email:keep_i@x.com`, `email:bad_i@x.com`.
pub fn seed(items: u64) -> Seed {
    let profiles = (1..=items)
        .map(|i| SeedProfile {
            segment_id: Some(format!("use_{i}")),
            identifiers: vec![
                SeedIdentifier::Text(format!("user_id:u_{i}")),
                SeedIdentifier::Text(format!("email:keep_{i}@x.com")),
                SeedIdentifier::Text(format!("email:bad_{i}@x.com")),
            ],
        })
        .collect();
    Seed {
        space: SPACE.to_owned(),
        token: Some(TOKEN.to_owned()),
        profiles,
    }
}

/// Writes the manifest and its CSV source into `dir`; returns the manifest's path.
pub fn write_inputs(dir: &Path, run: &Run) -> anyhow::Result<PathBuf> {
    let csv_path = dir.join("bench.csv");
    let mut csv =
        std::io::BufWriter::new(fs::File::create(&csv_path).context("creating the bench CSV")?);
    let source = match run.shape {
        Shape::ByProfile => {
            writeln!(csv, "user_id,email")?;
            for i in 1..=run.items {
                writeln!(csv, "u_{i},bad_{i}@x.com")?;
            }
            "  - csv: bench.csv\n    profile_column: user_id\n    remove_columns: [email]\n"
        }
        Shape::IdentifierOnly => {
            writeln!(csv, "email")?;
            for i in 1..=run.items {
                writeln!(csv, "bad_{i}@x.com")?;
            }
            "  - csv: bench.csv\n    remove_columns: [email]\n"
        }
    };
    csv.flush().context("writing the bench CSV")?;
    let manifest = dir.join("bench.yaml");
    fs::write(
        &manifest,
        format!("version: 1\nspace: {SPACE}\nregion: us\nreason: bench\nsources:\n{source}"),
    )
    .context("writing the bench manifest")?;
    Ok(manifest)
}
