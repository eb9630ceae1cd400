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

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, NetArgs, StoreArgs};
use crate::exit::Exit;
use crate::ops::api::{Api, Pace, TokenSource};
use crate::ops::stored;

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
        Command::Show(mut args) => {
            let _copy = read_state(&mut args.state, &args.store).await?;
            show::show(&args, &ui)
        }
        Command::Apply { args, net } => apply::apply(&args, &api_from_flags(&net), &ui).await,
        Command::Status(mut args) => {
            let resolved = store_of(&args.state, &args.store)?;
            let _copy = read_state(&mut args.state, &args.store).await?;
            if let Some(store) = &resolved.store {
                let lease = match store.lease().await? {
                    Some(r) if r.binds(crate::state::now_unix()) => format!("held by {r}"),
                    _ => "free".to_owned(),
                };
                ui.note(format!("Store: `{}`; lease: {lease}.", store.url()));
            }
            show::status(&args, &ui)
        }
        Command::Verify { mut args, net } => {
            let held = hold_state(&mut args.state, &args.store, "verify").await?;
            let api = api_from_flags(&net);
            let verified = verify::verify(&args, &api, &ui);
            let result = stored::while_renewed(held.as_ref(), verified).await;
            finish(held, result).await
        }
        Command::Report(mut args) => {
            let _copy = match args.state.as_mut() {
                Some(state) => Some(read_state(state, &args.store).await?),
                None => None,
            };
            show::report(&args, &ui)
        }
        Command::Purge(mut args) => {
            let held = hold_state(&mut args.state, &args.store, "purge").await?;
            let result = show::purge(&args, &ui);
            finish(held, result).await
        }
        Command::Unlock(args) => unlock(&args, &ui).await,
        Command::Emulator(config) => crate::emulator::run(config).await.map(|()| Exit::Success),
        Command::Demo(args) => demo::demo(&args, &ui).await,
        Command::Completions { shell } => shell::completions(shell),
        Command::Man => shell::man(),
        Command::Guard(mut args) => {
            let _copy = read_state(&mut args.state, &args.store).await?;
            guard::guard(&args, &ui)
        }
        Command::Init(args) => init::init(&args),
    }
}

/// The store a command's state path and `--state` name, if any (`positional`: the path given).
fn store_of(positional: &Path, store: &StoreArgs) -> anyhow::Result<stored::Resolved> {
    stored::resolve(
        Some(positional),
        store.url.as_deref(),
        store.state_key_file.as_deref(),
    )
}

/// A reader's state: with a store, its latest copy is fetched into the working copy (the path
/// given, or a private one kept as long as the returned guard) and `state` is set to it.
async fn read_state(
    state: &mut PathBuf,
    store: &StoreArgs,
) -> anyhow::Result<Option<stored::PrivateCopy>> {
    let resolved = store_of(state, store)?;
    let (local, scratch) = resolved.local_or_scratch()?;
    if let Some(store) = &resolved.store {
        store.read_into(&local).await?;
    }
    *state = local;
    Ok(scratch)
}

/// A writer's state: with a store, its lease is taken and its latest copy fetched into the
/// working copy, and `state` is set to it; [`finish`] pushes it back.
async fn hold_state(
    state: &mut PathBuf,
    store: &StoreArgs,
    doing: &str,
) -> anyhow::Result<Option<stored::Held>> {
    let resolved = store_of(state, store)?;
    let (local, scratch) = resolved.local_or_scratch()?;
    *state = local.clone();
    let Some(store) = &resolved.store else {
        return Ok(None);
    };
    let held = store.hold(&local, scratch, doing).await?;
    match held.pull().await {
        Ok(crate::store::Pulled::Fetched { .. }) => Ok(Some(held)),
        Ok(crate::store::Pulled::Absent) => {
            held.release().await?;
            Err(store.absent())
        }
        Err(e) => {
            held.release().await?;
            Err(e)
        }
    }
}

/// Pushes a writer's working copy back to its store and releases the lease, whatever the
/// command's `result`; the command's own error comes first.
async fn finish(held: Option<stored::Held>, result: anyhow::Result<Exit>) -> anyhow::Result<Exit> {
    let Some(held) = held else {
        return result;
    };
    let pushed = held.finish().await;
    let exit = result?;
    pushed?;
    Ok(exit)
}

/// `unlock`: a local state file's lock, or the lease of a state in a store.
async fn unlock(args: &crate::cli::UnlockArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let resolved = store_of(&args.state, &args.store)?;
    match &resolved.store {
        Some(store) => {
            let holder = store.unlock(&args.lock_id).await?;
            ui.say(format!(
                "Broke the lease of `{}` held by {holder}.",
                store.url()
            ))?;
            Ok(Exit::Success)
        }
        None => show::unlock(args, ui),
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
