//! `verify`: the flags into [`VerifyOptions`], one [`ops::verify::verify`] call, the view
//! asked for, the advice, and exit 2 while an identifier is still there.

use std::io::Write as _;

use super::Ui;
use crate::cli::{VerifyArgs, VerifyFormat};
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
        VerifyFormat::Text => render::verify_text(&verified, args.redact, &mut out)?,
        VerifyFormat::Json => render::verify_json(&verified, args.reveal, &mut out)?,
    }
    out.flush()?;
    if verified.count(Seen::StillPresent) > 0 {
        ui.note(
            if verified.waited {
                "The deadline passed with identifiers still present: the deletes may not have taken; check them, or verify again later."
            } else {
                "Segment's profile storage can lag up to about 5 minutes behind a delete: run `idprune verify STATE --wait 6m` to poll until they are gone."
            }
        );
    }
    if verified.count(Seen::Reintroduced) > 0 {
        ui.note(
            "Re-introduced identifiers were re-added after they were gone: by live events, an Event Archive replay (see `idprune guard`) or a space rebuild (see `idprune apply --reapply`).",
        );
    }
    let present = verified.count(Seen::StillPresent) + verified.count(Seen::Reintroduced);
    Ok(if present > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}
