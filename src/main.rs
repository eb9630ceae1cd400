//! The `idprune` binary: parse the arguments, build the runtime, run the command, print the
//! error once and exit with its code (mapped in `idprune::exit`). Everything else lives in the
//! library.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use idprune::cli::Cli;
use idprune::commands;
use idprune::exit::{self, Exit};

/// Turns core dumps off for this process (soft and hard `RLIMIT_CORE` of 0): a dump would
/// hold the access token (read from the environment or a file) and the identifiers in memory,
/// and is written wherever the system puts dumps. Best effort: a failure changes nothing else.
fn no_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads the struct we pass and changes only this process's limit.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
    }
}

fn main() -> ExitCode {
    no_core_dumps();
    if let Err(message) = idprune::cli::refuse_deceptive_arguments(std::env::args_os().skip(1)) {
        let _ = writeln!(std::io::stderr(), "error: {message}");
        return ExitCode::from(Exit::Error.code());
    }
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
            let _ = writeln!(std::io::stderr(), "error: starting the async runtime: {e}");
            return ExitCode::from(Exit::Error.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            let ending = exit::for_error(&error);
            if ending.report {
                // Line by line: messages may span lines, but no value may drive the terminal.
                // A closed stderr is ignored: the exit code still says what happened.
                let mut err = std::io::stderr().lock();
                for (i, line) in format!("{error:#}").lines().enumerate() {
                    let prefix = if i == 0 { "error: " } else { "" };
                    let _ = writeln!(err, "{prefix}{}", idprune::render::clean(line));
                }
            }
            ExitCode::from(ending.exit.code())
        }
    }
}
