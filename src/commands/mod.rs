//! The command layer: each command parses its flags into the plain options of one
//! [`crate::ops`] call (or a core module's, for the read-only views), makes that call and
//! hands the outcome to [`crate::render`], then maps it to an exit code. No clap type goes
//! below this layer.

mod apply;
mod demo;
mod guard;
mod init;
mod plan;
mod shell;
mod show;
mod verify;

use crate::cli::{Cli, Command, NetArgs};
use crate::exit::Exit;
use crate::ops::api::{Api, Pace, TokenSource};

pub use crate::ops::{
    API_URL_ENV, FINGERPRINT_KEY_ENV, REQUEST_TIMEOUT, REQUEST_TIMEOUT_ENV, Refused, Signal,
    Signals, TOKEN_ENV, default_state_path, relative_to, request_timeout, state_dir, state_region,
};
pub use crate::ui::{self, Ui};

/// Runs one command and returns how it ended. Errors map to exit codes in [`crate::exit`].
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let color = match cli.color {
        crate::cli::ColorChoice::Always => Some(true),
        crate::cli::ColorChoice::Never => Some(false),
        crate::cli::ColorChoice::Auto => None,
    };
    let ui = Ui::new(cli.quiet, color);
    match cli.command {
        Command::Validate(args) => plan::validate(&args, &ui),
        Command::Plan { args, net } => plan::plan(&args, &api_from_flags(&net), &ui).await,
        Command::Show(args) => show::show(&args, &ui),
        Command::Apply { args, net } => apply::apply(&args, &api_from_flags(&net), &ui).await,
        Command::Status(args) => show::status(&args, &ui),
        Command::Verify { args, net } => verify::verify(&args, &api_from_flags(&net), &ui).await,
        Command::Report(args) => show::report(&args, &ui),
        Command::Purge(args) => show::purge(&args, &ui),
        Command::Unlock(args) => show::unlock(&args, &ui),
        Command::Emulator(config) => crate::emulator::run(config).await.map(|()| Exit::Success),
        Command::Demo(args) => demo::demo(&args, &ui).await,
        Command::Completions { shell } => shell::completions(shell),
        Command::Man => shell::man(),
        Command::Guard(args) => guard::guard(&args, &ui),
        Command::Init(args) => init::init(&args),
    }
}

/// The [`Api`] the network flags name, with `IDPRUNE_API_URL` read now (empty counts as unset).
pub fn api_from_flags(net: &NetArgs) -> Api {
    let env = std::env::var(API_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let endpoint = match (&net.api.api_url, env) {
        (Some(flag), _) => Some((flag.clone(), "--api-url")),
        (None, Some(env)) => Some((env, API_URL_ENV)),
        (None, None) => None,
    };
    let token = match (&net.api.token_file, net.api.token_stdin) {
        (Some(path), _) => TokenSource::File(path.clone()),
        (None, true) => TokenSource::Stdin,
        (None, false) => TokenSource::Env,
    };
    Api::new(
        endpoint,
        net.api.insecure,
        token,
        Pace {
            rate: net.pace.rate,
            concurrency: net.pace.concurrency,
        },
    )
}
