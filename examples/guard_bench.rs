//! Benchmark of `idprune guard`: generates an Event Archive export of at least `--gb` GB of
//! decompressed JSON lines in Segment's S3 layout (`segment-logs/<source>/<day>/<file>.gz`,
//! realistic track/identify/page calls, one event in `--hit-every` referencing a removed
//! identifier), plans `--targets` removals against the in-process emulator, then runs the
//! **real release binary** `idprune guard` on it as a child and prints the decompressed MB/s
//! (wall, and per CPU-second: guard is single-threaded, so the latter is what one core does
//! even on a machine shared with other jobs), the child's peak RSS and its CPU time. With
//! `--filtered` it also measures a run that writes the filtered copies.
//!
//! The child is started by a small launcher (this program re-executed as `guard_bench
//! __launch ...`) that reaps it with `wait4`: Linux folds the high-water mark of the process
//! image `exec` replaces into the new program's `ru_maxrss`, so a child spawned from this
//! bigger process would report this process's peak, not its own.
//!
//! ```sh
//! cargo build --release && cargo run --release --example guard_bench
//! cargo run --release --example guard_bench -- --gb 2 --targets 10000 --filtered
//! ```

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use flate2::Compression;
use flate2::write::GzEncoder;
use idprune::emulator::{Config, Emulator, Seed};

/// The first argument that makes this program the launcher of one child.
const LAUNCHER_ARG: &str = "__launch";
/// The token of the in-process emulator.
const TOKEN: &str = "guard-bench-token";
/// Target figure (issue 10): decompressed MB/s on one core.
const TARGET_MB_PER_SEC: f64 = 100.0;

/// Measures `idprune guard` on a generated archive.
#[derive(Debug, Parser)]
struct Args {
    /// Decompressed size of the archive, in GB (10^9 bytes).
    #[arg(long, default_value_t = 1.0)]
    gb: f64,
    /// How many identifiers the plan removes (emails on as many profiles).
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// One event in N references a removed identifier.
    #[arg(long, default_value_t = 10_000)]
    hit_every: u64,
    /// Archive files to spread the events over.
    #[arg(long, default_value_t = 16)]
    files: usize,
    /// Also measure a run that writes filtered copies.
    #[arg(long)]
    filtered: bool,
    /// The idprune binary (default: `target/release/idprune`).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep the scratch directory.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args_os();
    if argv.nth(1).as_deref() == Some(OsStr::new(LAUNCHER_ARG)) {
        return launch(&argv.collect::<Vec<_>>());
    }
    let args = Args::parse();
    let bin = match &args.bin {
        Some(p) => p.clone(),
        None => {
            let exe = std::env::current_exe().context("locating the bench executable")?;
            exe.parent()
                .and_then(Path::parent)
                .context("the bench executable has no grandparent directory")?
                .join("idprune")
        }
    };
    if !bin.is_file() {
        bail!(
            "idprune binary `{}` not found; run `cargo build --release` first or pass --bin",
            bin.display()
        );
    }
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let dir_path = dir.path().to_path_buf();
    if args.keep {
        std::mem::forget(dir);
        eprintln!("guard_bench: keeping {}", dir_path.display());
    }
    let state = plan(&bin, &dir_path, args.targets)?;

    let started = Instant::now();
    let (bytes, events, hits) = generate(&dir_path.join("export"), &args)?;
    eprintln!(
        "guard_bench: generated {:.2} GB ({} events, {} referencing removed identifiers) in {:.1} s",
        bytes as f64 / 1e9,
        events,
        hits,
        started.elapsed().as_secs_f64()
    );

    let runs: Vec<(&str, Vec<String>)> = {
        let mut runs = vec![("scan", vec![])];
        if args.filtered {
            runs.push((
                "scan + filtered copies",
                vec![
                    "--write-filtered".into(),
                    dir_path.join("filtered").display().to_string(),
                ],
            ));
        }
        runs
    };
    for (name, extra) in runs {
        let mut cmd: Vec<OsString> = vec![
            bin.clone().into(),
            "guard".into(),
            state.clone().into(),
            "--archive".into(),
            dir_path.join("export").into(),
            "--format".into(),
            "json".into(),
        ];
        cmd.extend(extra.into_iter().map(OsString::from));
        let out = dir_path.join("guard.out.json");
        let child = run_launched(&cmd, &out)?;
        let report: serde_json::Value = serde_json::from_slice(
            &fs::read(&out).with_context(|| format!("reading `{}`", out.display()))?,
        )
        .context("guard's JSON report")?;
        if child.code != 2 {
            bail!(
                "guard exited {} (expected 2: hits were planted)",
                child.code
            );
        }
        let matched = report["matched"].as_u64().unwrap_or(0);
        if matched != hits {
            bail!("guard found {matched} referencing events, {hits} were planted");
        }
        let scanned = report["bytes"].as_u64().unwrap_or(0);
        let secs = report["elapsed_secs"].as_f64().unwrap_or(f64::NAN);
        let mbps = scanned as f64 / 1e6 / secs;
        println!("== guard: {name} ==");
        println!(
            "archive: {:.2} GB decompressed in {} files, {events} events, {matched} found (all planted ones)",
            scanned as f64 / 1e9,
            args.files
        );
        println!(
            "throughput: {mbps:.0} MB/s decompressed (scan loop), {:.0} MB/s over the whole process ({:.1} s wall)",
            scanned as f64 / 1e6 / child.wall.as_secs_f64(),
            child.wall.as_secs_f64()
        );
        // Per CPU-second: what one core does, however many other jobs share the machine
        // (guard is single-threaded, so wall rate = this rate on an idle core).
        let per_core = scanned as f64 / 1e6 / child.cpu.as_secs_f64();
        println!(
            "cpu: {:.1} s ({:.2} cores busy) = {per_core:.0} MB per CPU-second; peak RSS: {:.1} MB",
            child.cpu.as_secs_f64(),
            child.cpu.as_secs_f64() / child.wall.as_secs_f64(),
            child.peak_rss_kib as f64 / 1024.0
        );
        if name == "scan" {
            println!(
                "{} guard ≥ {TARGET_MB_PER_SEC:.0} MB/s decompressed on one core: {per_core:.0} MB per CPU-second ({mbps:.0} MB/s wall on this machine now)",
                if per_core >= TARGET_MB_PER_SEC {
                    "PASS"
                } else {
                    "FAIL"
                }
            );
        }
    }
    Ok(())
}

/// The removed emails: `bad-N@import.invalid`.
fn target(n: usize) -> String {
    format!("bad-{n}@import.invalid")
}

/// Seeds the emulator with `targets` profiles, each carrying one removed email, plans their
/// removal with the release binary and returns the state file.
fn plan(bin: &Path, dir: &Path, targets: usize) -> anyhow::Result<PathBuf> {
    let profiles: Vec<_> = (0..targets)
        .map(|n| {
            serde_json::json!({"identifiers": [format!("user_id:u{n}"), format!("email:{}", target(n)), format!("email:good{n}@example.com")]})
        })
        .collect();
    let seed = Seed::from_json(
        &serde_json::json!({"space": "spa_bench", "token": TOKEN, "profiles": profiles})
            .to_string(),
    )?;
    let csv: String = std::iter::once("user_id,email\n".to_owned())
        .chain((0..targets).map(|n| format!("u{n},{}\n", target(n))))
        .collect();
    fs::write(dir.join("targets.csv"), csv)?;
    fs::write(
        dir.join("m.yaml"),
        "version: 1\nspace: spa_bench\nregion: us\nreason: \"guard benchmark\"\nsources:\n  - csv: targets.csv\n    profile_column: user_id\n    remove_columns: [email]\n",
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let emulator = runtime.block_on(Emulator::start(
        Config {
            space_rate: 0,
            profile_rate: 0,
            random_seed: Some(1),
            ..Config::default()
        },
        seed,
    ))?;
    let state = dir.join("m.state.db");
    let status = Command::new(bin)
        .arg("plan")
        .arg(dir.join("m.yaml"))
        .args(["--rate", "0", "--format", "json"])
        .env("SEGMENT_ACCESS_TOKEN", TOKEN)
        .env("IDPRUNE_API_URL", emulator.base_url())
        .stdout(Stdio::null())
        .status()
        .context("running idprune plan")?;
    runtime.block_on(emulator.shutdown());
    if !status.success() {
        bail!("idprune plan failed: {status}");
    }
    Ok(state)
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes the archive; returns (decompressed bytes, events, planted references).
fn generate(root: &Path, args: &Args) -> anyhow::Result<(u64, u64, u64)> {
    let total = (args.gb * 1e9) as u64;
    let per_file = total / args.files as u64 + 1;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut bytes, mut events, mut hits) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(2048);
    for f in 0..args.files {
        let source = ["src_web", "src_ios", "src_server"][f % 3];
        let day = 1_764_547_200_000u64 + (f as u64 / 3) * 86_400_000;
        let dir = root.join(format!("segment-logs/{source}/{day}"));
        fs::create_dir_all(&dir)?;
        let file = fs::File::create(dir.join(format!("{day}.{f:04x}.gz")))?;
        let mut gz = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), Compression::fast());
        let mut written = 0u64;
        while written < per_file {
            events += 1;
            line.clear();
            let r = rng.next();
            let user = r % 5_000_000;
            let hit = events.is_multiple_of(args.hit_every);
            let email = if hit {
                hits += 1;
                target((r >> 20) as usize % args.targets)
            } else {
                format!("user{user}@example.com")
            };
            let kind = ["track", "identify", "page"][(r >> 8) as usize % 3];
            let hit_in_context = hit && (r >> 30).is_multiple_of(2);
            use std::fmt::Write as _;
            write!(
                line,
                r#"{{"anonymousId":"{anon:016x}-{a2:08x}","channel":"browser","context":{{"ip":"10.{b}.{c}.{d}","library":{{"name":"analytics.js","version":"next-1.70.0"}},"locale":"en-US","page":{{"path":"/products/{p}","referrer":"https://www.google.com/","title":"Product {p} - Shop","url":"https://shop.example.com/products/{p}?utm_source=newsletter"}},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"{ctx}}},"event":"Product Viewed","integrations":{{}},"messageId":"ajs-next-{m:016x}","originalTimestamp":"2026-12-01T10:{mm:02}:{ss:02}.123Z","properties":{{"product_id":"{p}","price":{price}.99,"currency":"USD","category":"Games"}},"receivedAt":"2026-12-01T10:{mm:02}:{ss:02}.456Z","sentAt":"2026-12-01T10:{mm:02}:{ss:02}.200Z","timestamp":"2026-12-01T10:{mm:02}:{ss:02}.123Z","traits":{{"email":"{trait_email}","plan":"premium","logins":{logins}}},"type":"{kind}","userId":"u{user}","version":"1.1"}}"#,
                anon = rng.next(),
                a2 = r as u32,
                b = r % 256,
                c = (r >> 8) % 256,
                d = (r >> 16) % 256,
                p = r % 100_000,
                ctx = if hit_in_context {
                    format!(r#","traits":{{"email":"{email}"}}"#)
                } else {
                    String::new()
                },
                m = r,
                mm = (r >> 3) % 60,
                ss = (r >> 9) % 60,
                price = r % 500,
                trait_email = if hit && !hit_in_context {
                    email.clone()
                } else {
                    format!("user{user}@example.com")
                },
                logins = r % 40,
            )?;
            line.push('\n');
            gz.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        gz.finish()?.flush()?;
        bytes += written;
    }
    Ok((bytes, events, hits))
}

/// A child's exit code, peak RSS, wall and CPU time.
struct Child {
    code: i32,
    peak_rss_kib: u64,
    wall: Duration,
    cpu: Duration,
}

/// Runs `cmd` through the launcher, its stdout into `out`.
fn run_launched(cmd: &[OsString], out: &Path) -> anyhow::Result<Child> {
    let me = std::env::current_exe().context("locating the bench executable")?;
    let output = Command::new(me)
        .arg(LAUNCHER_ARG)
        .arg(out)
        .args(cmd)
        .stderr(Stdio::inherit())
        .output()
        .context("starting the launcher")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [code, rss, wall, cpu] = fields.as_slice() else {
        bail!("the launcher printed `{text}`, not `CODE RSS WALL CPU`");
    };
    Ok(Child {
        code: code.parse()?,
        peak_rss_kib: rss.parse()?,
        wall: Duration::from_nanos(wall.parse()?),
        cpu: Duration::from_nanos(cpu.parse()?),
    })
}

/// `guard_bench __launch STDOUT PROGRAM ARGS...`: runs PROGRAM, reaps it with `wait4` and
/// prints `EXIT_CODE PEAK_RSS_KIB WALL_NANOS CPU_NANOS`.
fn launch(args: &[OsString]) -> anyhow::Result<()> {
    let [stdout, program, rest @ ..] = args else {
        bail!("usage: guard_bench {LAUNCHER_ARG} STDOUT PROGRAM [ARGS...]");
    };
    let out = fs::File::create(stdout).context("creating the stdout file")?;
    let start = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting `{}`", Path::new(program).display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid for writes.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        return Err(std::io::Error::last_os_error()).context("wait4 on the child");
    }
    let wall = start.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    println!(
        "{code} {} {} {}",
        usage.ru_maxrss,
        wall.as_nanos(),
        cpu.as_nanos()
    );
    Ok(())
}
