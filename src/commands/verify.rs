//! `verify`: the flags into [`VerifyOptions`], one [`ops::verify::verify`] call, the view
//! asked for, the advice, and exit 2 while an identifier is still there.

use std::io::Write as _;

use super::Ui;
use crate::cli::{OutputFormat, VerifyArgs};
use crate::exit::Exit;
use crate::ops::{self, Api, VerifyOptions};
use crate::render;
use crate::state::verify::Seen;

/// `idprune verify STATE [--wait DURATION]`. SIGINT or SIGTERM stops it at once (nothing is
/// recorded: the verification is written when it ends) with 130 or 143.
pub async fn verify(args: &VerifyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let mut signals = super::Signals::listen()?;
    tokio::select! {
        exit = run_verify(args, api, ui) => exit,
        signal = signals.next() => {
            ui.note(format!("\n{}: this verification was not recorded.", signal.name()));
            Ok(signal.exit())
        }
    }
}

async fn run_verify(args: &VerifyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let opts = VerifyOptions {
        state: args.state.clone(),
        wait: args.wait,
    };
    let verified = ops::verify::verify(&opts, api, ui).await?;
    let mut out = std::io::BufWriter::new(crate::ui::stdout());
    match args.format {
        OutputFormat::Text => render::verify_text(&verified, args.redact, &mut out)?,
        OutputFormat::Json => render::verify_json(&verified, args.reveal, &mut out)?,
    }
    out.flush()?;
    // The text view prints the hints first; beside JSON on stdout they go to stderr.
    if args.format == OutputFormat::Json {
        for hint in render::verify_hints(&verified) {
            ui.note(hint);
        }
    }
    let present = verified.count(Seen::StillPresent) + verified.count(Seen::Reintroduced);
    Ok(if present > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}
