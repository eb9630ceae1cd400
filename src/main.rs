//! The `idprune` binary: parse the arguments, build the runtime, run the command, print the
//! error once and exit with its code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use idprune::cli::Cli;
use idprune::commands;
use idprune::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, not clap's 2, which CI scripts read as "plan has changes".
            return ExitCode::from(if e.use_stderr() {
                Exit::Error.code()
            } else {
                Exit::Success.code()
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(Exit::Error.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            // Line by line: messages may span lines, but no value may drive the terminal.
            for (i, line) in format!("{error:#}").lines().enumerate() {
                let prefix = if i == 0 { "error: " } else { "" };
                eprintln!("{prefix}{}", idprune::render::clean(line));
            }
            ExitCode::from(commands::exit_for(&error).code())
        }
    }
}
