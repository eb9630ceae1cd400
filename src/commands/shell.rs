//! `completions` and `man`: generated from the clap definition in `cli.rs`, so they cannot
//! drift from the real flags.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, Shell};
use crate::exit::Exit;

/// `idprune completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> anyhow::Result<Exit> {
    use clap_complete::Shell as S;
    let generator = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "idprune", &mut script);
    write_stdout(&script)
}

/// `idprune man`: the man page (roff) on stdout.
pub fn man() -> anyhow::Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    write_stdout(&page)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<Exit> {
    let mut out = super::ui::stdout();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(Exit::Success)
}
