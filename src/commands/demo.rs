//! `idprune demo`: the whole job offline, in seconds. It starts the built-in emulator on
//! loopback, seeded with `examples/demo-seed.json` (compiled in, so the demo runs from any
//! directory), writes `examples/demo.yaml` and its CSV into a working directory, then runs
//! plan → show (markdown, as a reviewer sees it) → apply → status → verify → plan again.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;

use super::{Api, Pace, Ui, apply, plan, show};
use crate::cli::{
    ApplyArgs, DemoArgs, OutputFormat, PlanArgs, ShowArgs, StatusArgs, StoreArgs, ValueArgs,
    VerifyArgs,
};
use crate::emulator::{Config, Emulator, Seed};
use crate::exit::Exit;
use crate::render::Format;

const MANIFEST: &str = include_str!("../../examples/demo.yaml");
const CSV: &str = include_str!("../../examples/demo-bad-emails.csv");
const SEED: &str = include_str!("../../examples/demo-seed.json");
/// The token the demo seed accepts (`"token"` in demo-seed.json).
const DEMO_TOKEN: &str = "demo-token";

fn step(ui: &Ui, title: &str) -> std::io::Result<()> {
    ui.say(format!("\n==> {title}\n"))
}

/// Runs the demo.
pub async fn demo(args: &DemoArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let (dir, keep) = match &args.dir {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!("idprune-demo-{}", std::process::id())),
            false,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    if !keep {
        ui.say(format!(
            "Working in `{}` (removed at the end; `idprune demo --dir DIR` keeps the manifest and state file to look at).",
            dir.display()
        ))?;
    }
    let result = run(&dir, ui).await;
    if keep {
        let said = ui.say(format!(
            "\nThe demo's manifest and state file are in `{}`.",
            dir.display()
        ));
        if result.is_ok() {
            said?;
        }
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing `{}`", path.display()))?;
    Ok(path)
}

async fn run(dir: &Path, ui: &Ui) -> anyhow::Result<Exit> {
    let manifest = write(dir, "demo.yaml", MANIFEST)?;
    write(dir, "demo-bad-emails.csv", CSV)?;
    let state = dir.join("demo.state.db");
    let _ = std::fs::remove_file(&state);

    let (emulator, api) = start_emulator(ui).await?;

    step(ui, &format!("idprune plan {}", manifest.display()))?;
    let plan_args = plan_args(&manifest);
    let planned = plan::plan(&plan_args, &api, ui).await?;
    ui.say(format!(
        "(exit code {} with --detailed-exitcode: the plan has changes)",
        planned.code()
    ))?;

    step(
        ui,
        "idprune show --format markdown   (what the pull request shows: redacted)",
    )?;
    show::show(
        &ShowArgs {
            state: state.clone(),
            format: Format::Markdown,
            values: ValueArgs::default(),
            store: StoreArgs::default(),
        },
        ui,
    )?;

    let digest = crate::state::State::open(&state)?.meta()?.digest;
    step(ui, &format!("idprune apply --approve {}", &digest[..19]))?;
    let applied = apply::apply(&apply_args(&state, &digest[..19]), &api, ui).await?;

    step(ui, "idprune status")?;
    show::status(
        &StatusArgs {
            state: state.clone(),
            format: OutputFormat::Text,
            reveal: false,
            store: StoreArgs::default(),
        },
        ui,
    )?;

    step(ui, "idprune verify")?;
    let verified = super::verify::verify(&verify_args(&state), &api, ui).await?;

    step(
        ui,
        "idprune plan again (a finished clean-up plans no deletions)",
    )?;
    let again = PlanArgs {
        out: Some(dir.join("demo-again.state.db")),
        ..plan_args
    };
    let replanned = plan::plan(&again, &api, ui).await?;
    emulator.shutdown().await;

    let ok = applied == Exit::Success && verified == Exit::Success && replanned == Exit::Success;
    ui.say(format!(
        "\nDemo {}: apply exit {}, verify exit {}, re-plan exit {}.",
        if ok { "finished" } else { "found a problem" },
        applied.code(),
        verified.code(),
        replanned.code()
    ))?;
    Ok(if ok { Exit::Success } else { Exit::Error })
}

/// Starts the emulator with the demo's seed, and the API that reaches it.
async fn start_emulator(ui: &Ui) -> anyhow::Result<(Emulator, Api)> {
    let emulator = Emulator::start(Config::default(), Seed::from_json(SEED)?).await?;
    ui.say(format!(
        "Started the Unify emulator at {} (space spa_demo).",
        emulator.base_url()
    ))?;
    let api = Api::fixed(
        emulator.base_url(),
        SecretString::from(DEMO_TOKEN),
        Pace {
            rate: 100,
            concurrency: 16,
        },
    );
    Ok((emulator, api))
}

/// `idprune plan MANIFEST --detailed-exitcode`, every other flag at its default.
fn plan_args(manifest: &Path) -> PlanArgs {
    PlanArgs {
        manifest: manifest.to_owned(),
        out: None,
        detailed_exitcode: true,
        format: Format::Text,
        values: ValueArgs::default(),
        force: false,
        ttl: std::time::Duration::from_secs(7 * 24 * 3600),
        refresh: true,
        sample: 0,
        max_drift: crate::sample::DEFAULT_MAX_DRIFT_PERCENT,
        allow_drift: false,
        receipt: false,
        check_receipt: None,
        allow_unresolved: false,
        policy: None,
        store: StoreArgs::default(),
        diff: false,
    }
}

/// `idprune apply STATE --approve DIGEST`, every other flag at its default.
fn apply_args(state: &Path, digest: &str) -> ApplyArgs {
    ApplyArgs {
        state: state.to_owned(),
        approve: Some(digest.to_owned()),
        receipt: None,
        yes: false,
        retry_failed: false,
        reapply: false,
        canary: 0,
        canary_wait: std::time::Duration::from_secs(360),
        format: OutputFormat::Text,
        policy: None,
        overrides: Vec::new(),
        why: None,
        checkpoint_every: crate::ops::stored::DEFAULT_CHECKPOINT_EVERY,
        store: StoreArgs::default(),
    }
}

/// `idprune verify STATE`, every other flag at its default.
fn verify_args(state: &Path) -> VerifyArgs {
    VerifyArgs {
        state: state.to_owned(),
        redact: false,
        wait: None,
        format: OutputFormat::Text,
        reveal: false,
        store: StoreArgs::default(),
    }
}
