//! What remote state costs (issue 19), as figures:
//!
//! 1. A lifted-limit apply (emulator without a space limit, `--rate 0`) of N deletions with the
//!    state in a local file, in a `file://` store and in an S3-compatible store (moto's server,
//!    started on 127.0.0.1), each the median of `--repeat` runs of the **release binary**;
//!    printed as deletions/s and as the ratio to the local file's rate (target ≥ 0.9). The
//!    store runs checkpoint every `--checkpoint-every` (default: idprune's 10 s).
//! 2. For a sealed state of `--big` items (default 1,000,000), built with the library's
//!    `Sealer`: the time to push it (snapshot, encrypt, upload) and to pull it (download,
//!    decrypt, write), and the object's size, in both stores.
//!
//! ```sh
//! cargo build --release && cargo run --release --example remote_bench
//! cargo run --release --example remote_bench -- --items 20000 --repeat 3 --big 1000000
//! ```
//!
//! Needs `moto_server` on the PATH (`pip install 'moto[server]'`). Contacts only 127.0.0.1.
//! Figures, not assertions: the remote-state tests assert behaviour.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use idprune::emulator::{Config, Emulator, Seed, SeedIdentifier, SeedProfile};
use idprune::model::Identifier;
use idprune::plan::{Action, Item, Profile};
use idprune::state::{Meta, Sealer};
use idprune::store::{DEFAULT_LEASE, Remote, StateKey};

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

const TOKEN: &str = "bench-token";
const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

struct Args {
    items: u64,
    repeat: usize,
    big: u64,
    checkpoint_every: String,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        items: 20_000,
        repeat: 3,
        big: 1_000_000,
        checkpoint_every: "10s".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--items" => out.items = value()?.parse()?,
            "--repeat" => out.repeat = value()?.parse()?,
            "--big" => out.big = value()?.parse()?,
            "--checkpoint-every" => out.checkpoint_every = value()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(out)
}

/// `target/release/idprune`: this example lives in `target/release/examples/`.
fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("no grandparent")?;
    let bin = release.join("idprune");
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        );
    }
    Ok(bin)
}

fn seed(items: u64) -> Seed {
    Seed {
        space: "spa_bench".into(),
        token: Some(TOKEN.into()),
        profiles: (1..=items)
            .map(|i| SeedProfile {
                segment_id: Some(format!("use_{i}")),
                identifiers: vec![
                    SeedIdentifier::Text(format!("user_id:u_{i}")),
                    SeedIdentifier::Text(format!("email:keep_{i}@x.com")),
                    SeedIdentifier::Text(format!("email:bad_{i}@x.com")),
                ],
            })
            .collect(),
    }
}

/// Where one run keeps its state.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Local,
    File,
    S3,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Local => "local file",
            Backend::File => "file:// store",
            Backend::S3 => "S3 store (moto)",
        }
    }
}

/// `idprune ARGS` in `dir`, timed; fails on a non-zero exit.
fn idprune(
    bin: &Path,
    dir: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> anyhow::Result<(Duration, String)> {
    let start = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .context("running idprune")?;
    let wall = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("idprune {args:?} failed ({}):\n{stderr}", out.status);
    }
    Ok((wall, stderr))
}

/// One lifted apply of `items` deletions; returns deletions per second of the apply's wall time.
fn one_apply(
    bin: &Path,
    runtime: &tokio::runtime::Runtime,
    backend: Backend,
    moto: &moto::Moto,
    items: u64,
    checkpoint_every: &str,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut csv = String::from("user_id,email\n");
    for i in 1..=items {
        writeln!(csv, "u_{i},bad_{i}@x.com")?;
    }
    std::fs::write(dir.path().join("bench.csv"), csv)?;
    std::fs::write(
        dir.path().join("bench.yaml"),
        "version: 1\nspace: spa_bench\nregion: us\nreason: bench\nsources:\n  - csv: bench.csv\n    profile_column: user_id\n    remove_columns: [email]\n",
    )?;
    let emulator = runtime.block_on(Emulator::start(
        Config {
            space_rate: 0,
            profile_rate: 0,
            random_seed: Some(1),
            ..Config::default()
        },
        seed(items),
    ))?;
    let mut env = vec![
        ("SEGMENT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("IDPRUNE_API_URL", emulator.base_url()),
        ("IDPRUNE_STATE_KEY", KEY.to_owned()),
    ];
    env.extend(moto.env());
    let bucket = format!("bench{}", rand_suffix());
    moto.create_bucket(&bucket);
    let url = match backend {
        Backend::Local => None,
        Backend::File => Some(format!("file://{}/store/bench.state", dir.path().display())),
        Backend::S3 => Some(format!("s3://{bucket}/bench.state")),
    };
    if backend == Backend::File {
        std::fs::create_dir_all(dir.path().join("store"))?;
    }
    let mut plan = vec!["plan", "bench.yaml", "--rate", "0", "--concurrency", "32"];
    if let Some(url) = &url {
        plan.extend(["--state", url]);
    }
    idprune(bin, dir.path(), &env, &plan)?;
    let mut apply = vec!["apply", "--yes", "--rate", "0", "--concurrency", "32"];
    match &url {
        Some(url) => apply.extend([
            "bench.state.db",
            "--state",
            url,
            "--checkpoint-every",
            checkpoint_every,
        ]),
        None => apply.push("bench.state.db"),
    }
    let (wall, _) = idprune(bin, dir.path(), &env, &apply)?;
    runtime.block_on(emulator.shutdown());
    Ok(items as f64 / wall.as_secs_f64())
}

/// A bucket name of its own for each run.
fn rand_suffix() -> u32 {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A sealed state of `n` delete items, built with the library's `Sealer`.
fn big_state(path: &Path, n: u64) -> anyhow::Result<()> {
    let meta = Meta {
        format_version: idprune::state::FORMAT_VERSION,
        digest: String::new(),
        space: "spa_bench".into(),
        region: "us".into(),
        api_origin: "http://127.0.0.1:1".into(),
        manifest_path: "bench.yaml".into(),
        manifest_sha256: "00".into(),
        reason: "bench".into(),
        created_at: idprune::state::now_unix(),
        ttl_secs: 3600,
        policy_sha256: None,
    };
    let mut sealer = Sealer::begin(path, meta, &[])?;
    for seq in 1..=n {
        let (uid, email) = (format!("u_{seq}"), format!("bad_{seq}@x.com"));
        let key = format!("user_id:{uid}");
        sealer.profile(&Profile {
            key: key.clone(),
            lookup: key.clone(),
            before: vec![
                Identifier::new("user_id", &uid),
                Identifier::new("email", &email),
                Identifier::new("email", format!("keep_{seq}@x.com")),
            ],
        })?;
        sealer.item(&Item {
            seq,
            lookup: key.clone(),
            profile: Some(key),
            user_id: Some(uid),
            identifier: Identifier::new("email", email),
            action: Action::Delete,
            note: None,
            origin: format!("bench.csv:{}:1", seq + 1),
        })?;
    }
    sealer.finish()?;
    Ok(())
}

/// Push and pull times (medians of `repeat`) and the object's size for `local` in `url`.
fn push_pull(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    overrides: &[(&str, &str)],
    local: &Path,
    repeat: usize,
) -> anyhow::Result<(f64, f64, usize)> {
    let remote = Remote::open_with(
        &url::Url::parse(url)?,
        StateKey::from_base64(KEY, "the bench key")?,
        overrides,
    )?;
    let (mut pushes, mut pulls, mut size) = (Vec::new(), Vec::new(), 0);
    let pulled = local.with_extension("pulled.db");
    for _ in 0..repeat {
        let lease = runtime.block_on(remote.lock_chain().acquire("bench", DEFAULT_LEASE))?;
        let start = Instant::now();
        size = runtime.block_on(remote.push(&lease, local, 0))?;
        pushes.push(start.elapsed().as_secs_f64());
        runtime.block_on(lease.release())?;
        let _ = std::fs::remove_file(&pulled);
        let start = Instant::now();
        runtime.block_on(remote.pull(&pulled))?;
        pulls.push(start.elapsed().as_secs_f64());
    }
    Ok((median(pushes), median(pulls), size))
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let bin = binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let moto = moto::Moto::start();

    println!(
        "lifted-limit apply of {} deletions, median of {} (checkpoint every {}):",
        args.items, args.repeat, args.checkpoint_every
    );
    let mut local_rate = 0.0;
    for backend in [Backend::Local, Backend::File, Backend::S3] {
        let rates = (0..args.repeat)
            .map(|_| {
                one_apply(
                    &bin,
                    &runtime,
                    backend,
                    &moto,
                    args.items,
                    &args.checkpoint_every,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rate = median(rates.clone());
        if backend == Backend::Local {
            local_rate = rate;
        }
        let runs: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "  {:<16} {rate:>8.0} deletions/s  ratio to local {:.3}  (runs: {})",
            backend.name(),
            rate / local_rate,
            runs.join(", ")
        );
    }

    if args.big > 0 {
        let dir = tempfile::tempdir()?;
        let local = dir.path().join("big.state.db");
        let start = Instant::now();
        big_state(&local, args.big)?;
        let file_size = std::fs::metadata(&local)?.len();
        println!(
            "{}-item state: {:.1} MB on disk (built in {:.1} s); push and pull, median of {}:",
            args.big,
            file_size as f64 / 1e6,
            start.elapsed().as_secs_f64(),
            args.repeat
        );
        std::fs::create_dir_all(dir.path().join("store"))?;
        let file_url = format!("file://{}/store/big.state", dir.path().display());
        moto.create_bucket("bigbench");
        let s3_overrides = moto.overrides();
        for (name, url, overrides) in [
            ("file:// store", file_url.as_str(), &[][..]),
            (
                "S3 store (moto)",
                "s3://bigbench/big.state",
                &s3_overrides[..],
            ),
        ] {
            let (push, pull, size) = push_pull(&runtime, url, overrides, &local, args.repeat)?;
            println!(
                "  {name:<16} push {push:.2} s  pull {pull:.2} s  object {:.1} MB",
                size as f64 / 1e6
            );
        }
    }
    Ok(())
}
