//! Runs one measurement: an in-process emulator, the real binary as child processes, the
//! emulator's counters before and after each phase.

use super::*;

/// What a child process left behind.
pub struct Child {
    pub wall: Duration,
    /// User + system CPU time of the child.
    pub cpu: Duration,
    /// When the child's first stdout byte came, since its start.
    pub first_stdout: Option<Duration>,
    /// When the watched path (a plan's state file) first existed, since the child's start.
    pub appeared: Option<Duration>,
    pub peak_rss_kib: u64,
    pub code: i32,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Bench {
    /// Runs `run` `self.repeat` times and returns the medians.
    pub fn measure(&self, run: &Run) -> anyhow::Result<Figures> {
        let mut all = Vec::new();
        for i in 0..self.repeat {
            if self.repeat > 1 {
                eprintln!("bench: repetition {} of {}", i + 1, self.repeat);
            }
            all.push(self.measure_once(run)?);
        }
        Ok(median_figures(&all))
    }

    pub fn measure_once(&self, run: &Run) -> anyhow::Result<Figures> {
        let mut dir = tempfile::Builder::new()
            .prefix("idprune-bench-")
            .tempdir()
            .context("creating a scratch directory")?;
        if self.keep {
            dir.disable_cleanup(true);
            eprintln!("bench: keeping {}", dir.path().display());
        }
        let manifest = write_inputs(dir.path(), run)?;
        let state = dir.path().join("bench.state.db");
        eprintln!("bench: seeding {} profiles", thousands(run.items));
        let emulator = self.runtime.block_on(Emulator::start(
            Config {
                space_rate: run.limit(),
                limiter: run.limiter,
                transit_jitter_ms: run.transit_jitter_ms,
                profile_rate: if run.lifted() { 0 } else { PROFILE_RATE },
                latency_ms: run.latency_ms,
                latency_jitter: run.jitter,
                random_seed: Some(1),
                ..Config::default()
            },
            seed(run.items),
        ))?;
        let base = emulator.base_url();
        let result = self.measure_against(run, dir.path(), &manifest, &state, &base);
        self.runtime.block_on(emulator.shutdown());
        result
    }

    pub fn measure_against(
        &self,
        run: &Run,
        dir: &Path,
        manifest: &Path,
        state: &Path,
        base: &str,
    ) -> anyhow::Result<Figures> {
        let client = reqwest::Client::new();
        let pace = pace_args(run);

        eprintln!("bench: plan");
        let before = self.counters(&client, base)?;
        let cpu_before = own_cpu()?;
        let mut plan_args = vec![
            "plan".to_owned(),
            path_arg(manifest),
            "-o".to_owned(),
            path_arg(state),
        ];
        plan_args.extend(pace.iter().cloned());
        if !run.refresh {
            plan_args.push("--refresh=false".to_owned());
        }
        let arrivals_before = self.arrivals(&client, base)?;
        let plan = self.child_watching(
            dir,
            "plan",
            &plan_args,
            base,
            run.deadline(run.items),
            state,
        )?;
        expect_code(&plan, &[0])?;
        let cpu_after_plan = own_cpu()?;
        let after_plan = self.counters(&client, base)?;
        let arrivals_after_plan = self.arrivals(&client, base)?;
        let mut figures = Figures {
            plan: phase(&plan, after_plan.since(before), cpu_after_plan - cpu_before),
            ..Figures::default()
        };
        figures.plan.server =
            ServerSide::between(&arrivals_before, &arrivals_after_plan, run.limit());
        if !run.apply {
            figures.planned_deletes = run.items;
            return Ok(figures);
        }

        let shown = self.json_view(dir, "show", state, base)?;
        let digest = shown
            .get("digest")
            .and_then(Value::as_str)
            .context("`show --format json` printed no `digest`")?
            .to_owned();
        figures.planned_deletes = shown
            .pointer("/summary/by_action/delete")
            .and_then(Value::as_u64)
            .unwrap_or(run.items);

        eprintln!(
            "bench: apply {} deletions",
            thousands(figures.planned_deletes)
        );
        let mut apply_args = vec![
            "apply".to_owned(),
            path_arg(state),
            "--approve".to_owned(),
            digest,
        ];
        apply_args.extend(pace);
        let apply = self.child(
            dir,
            "apply",
            &apply_args,
            base,
            run.deadline(figures.planned_deletes),
        )?;
        expect_code(&apply, &[0])?;
        let cpu_after_apply = own_cpu()?;
        let after_apply = self.counters(&client, base)?;
        let arrivals_after_apply = self.arrivals(&client, base)?;
        let mut apply_phase = phase(
            &apply,
            after_apply.since(after_plan),
            cpu_after_apply - cpu_after_plan,
        );
        apply_phase.server =
            ServerSide::between(&arrivals_after_plan, &arrivals_after_apply, run.limit());
        figures.apply = Some(apply_phase);

        let status = self.json_view(dir, "status", state, base)?;
        if let Some(last) = status
            .get("runs")
            .and_then(Value::as_array)
            .and_then(|runs| runs.last())
        {
            figures.reported_rate = last.get("rate").and_then(Value::as_f64);
            figures.latency_p50_ms = last.get("latency_p50_ms").and_then(Value::as_f64);
            figures.latency_p99_ms = last.get("latency_p99_ms").and_then(Value::as_f64);
        }
        Ok(figures)
    }

    /// Runs idprune with `args`, output to files in `dir`, and reaps it with `wait4` for its
    /// peak RSS; kills it past `deadline`.
    /// Runs `idprune VERB STATE --format json` and parses what it printed.
    pub fn json_view(
        &self,
        dir: &Path,
        verb: &str,
        state: &Path,
        base: &str,
    ) -> anyhow::Result<Value> {
        let args = [
            verb.to_owned(),
            path_arg(state),
            "--format".into(),
            "json".into(),
        ];
        let child = self.child(dir, verb, &args, base, DEADLINE_SLACK)?;
        expect_code(&child, &[0])?;
        read_json(&child.stdout)
    }

    pub fn child(
        &self,
        dir: &Path,
        name: &str,
        args: &[String],
        base: &str,
        deadline: Duration,
    ) -> anyhow::Result<Child> {
        self.launch(dir, name, args, base, deadline, TOKEN, None)
    }

    /// [`Bench::child`] timing when `watch` (the plan's state file) appears.
    pub fn child_watching(
        &self,
        dir: &Path,
        name: &str,
        args: &[String],
        base: &str,
        deadline: Duration,
        watch: &Path,
    ) -> anyhow::Result<Child> {
        self.launch(dir, name, args, base, deadline, TOKEN, Some(watch))
    }

    /// [`Bench::child`] sending `token`.
    pub fn child_with_token(
        &self,
        dir: &Path,
        name: &str,
        args: &[String],
        base: &str,
        deadline: Duration,
        token: &str,
    ) -> anyhow::Result<Child> {
        self.launch(dir, name, args, base, deadline, token, None)
    }

    /// Runs the binary with `args` through the launcher (see [`launch`]).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        dir: &Path,
        name: &str,
        args: &[String],
        base: &str,
        deadline: Duration,
        token: &str,
        watch: Option<&Path>,
    ) -> anyhow::Result<Child> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let launcher = std::env::current_exe().context("locating the bench executable")?;
        let output = Command::new(&launcher)
            .arg(LAUNCHER_ARG)
            .arg(deadline.as_millis().to_string())
            .arg(&stdout)
            .arg(&stderr)
            .arg(watch.map_or_else(|| OsString::from("-"), |w| w.as_os_str().to_owned()))
            .arg(&self.bin)
            .args(args)
            .env("SEGMENT_ACCESS_TOKEN", token)
            .env("IDPRUNE_API_URL", base)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting the launcher `{}`", launcher.display()))?;
        if !output.status.success() {
            bail!(
                "running `idprune {name}`: {}; its stderr ends with: {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                tail(&stderr)
            );
        }
        let report = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = report.split_whitespace().collect();
        let [code, rss, nanos, cpu, first_out, appeared] = fields.as_slice() else {
            bail!(
                "the launcher printed `{}`, not `CODE RSS WALL CPU FIRST_STDOUT WATCHED`",
                report.trim()
            );
        };
        let since_start = |field: &str, what: &str| -> anyhow::Result<Option<Duration>> {
            let n = field
                .parse::<i128>()
                .with_context(|| format!("the launcher's {what} time"))?;
            Ok(u64::try_from(n).ok().map(Duration::from_nanos))
        };
        Ok(Child {
            code: code.parse().context("the launcher's exit code")?,
            peak_rss_kib: rss.parse().context("the launcher's peak RSS")?,
            wall: Duration::from_nanos(nanos.parse().context("the launcher's wall time")?),
            cpu: Duration::from_nanos(cpu.parse().context("the launcher's CPU time")?),
            first_stdout: since_start(first_out, "first-output")?,
            appeared: since_start(appeared, "state-file")?,
            stdout,
            stderr,
        })
    }

    /// The emulator's accepted and refused arrival times so far (µs since its start).
    pub fn arrivals(&self, client: &reqwest::Client, base: &str) -> anyhow::Result<Arrivals> {
        self.emulator_json(client, base, "arrivals")
    }

    /// The JSON of the emulator's admin endpoint `/__emulator/NAME`.
    pub fn emulator_json<T: serde::de::DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        base: &str,
        name: &str,
    ) -> anyhow::Result<T> {
        let url = format!("{base}/__emulator/{name}");
        let body = self
            .runtime
            .block_on(async {
                client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            })
            .with_context(|| format!("reading the emulator's {name}"))?;
        serde_json::from_slice(&body).with_context(|| format!("parsing the emulator's {name}"))
    }

    /// What a wrong token costs a plan of `items` lookups (requests the server saw), and what
    /// a space without the feature costs the apply of `items` deletes (deletes it saw).
    pub fn stops(&self, items: u64) -> anyhow::Result<(u64, u64)> {
        let dir = tempfile::Builder::new()
            .prefix("idprune-bench-")
            .tempdir()
            .context("creating a scratch directory")?;
        let run = Run::limited(items, 50, 40, None);
        let manifest = write_inputs(dir.path(), &run)?;
        let state = dir.path().join("bench.state.db");
        let client = reqwest::Client::new();
        let start = |not_activated: bool| {
            self.runtime.block_on(Emulator::start(
                Config {
                    space_rate: if not_activated { 0 } else { 100 },
                    transit_jitter_ms: LIMITS_TRANSIT_JITTER_MS,
                    latency_ms: 50,
                    latency_jitter: 40,
                    not_activated,
                    random_seed: Some(1),
                    ..Config::default()
                },
                seed(items),
            ))
        };

        let emulator = start(false)?;
        let base = emulator.base_url();
        let args = vec![
            "plan".to_owned(),
            path_arg(&manifest),
            "-o".to_owned(),
            path_arg(&state),
        ];
        let plan = self.child_with_token(
            dir.path(),
            "plan-wrong-token",
            &args,
            &base,
            DEADLINE_SLACK,
            "not-the-token",
        );
        let plan_requests = self.counters(&client, &base).map(|c| c.requests);
        self.runtime.block_on(emulator.shutdown());
        expect_code(&plan?, &[1])?;
        let plan_requests = plan_requests?;

        let emulator = start(true)?;
        let base = emulator.base_url();
        let result = (|| -> anyhow::Result<u64> {
            let mut args = args.clone();
            args.extend(["--rate".to_owned(), "0".to_owned()]);
            let plan = self.child(dir.path(), "plan", &args, &base, run.deadline(items))?;
            expect_code(&plan, &[0])?;
            let shown = self.json_view(dir.path(), "show", &state, &base)?;
            let digest = shown
                .get("digest")
                .and_then(Value::as_str)
                .context("`show --format json` printed no `digest`")?
                .to_owned();
            let before = self.counters(&client, &base)?;
            let apply_args = vec![
                "apply".to_owned(),
                path_arg(&state),
                "--approve".to_owned(),
                digest,
            ];
            let apply = self.child(dir.path(), "apply", &apply_args, &base, DEADLINE_SLACK)?;
            expect_code(&apply, &[1])?;
            Ok(self.counters(&client, &base)?.since(before).deletes)
        })();
        self.runtime.block_on(emulator.shutdown());
        Ok((plan_requests, result?))
    }

    pub fn counters(&self, client: &reqwest::Client, base: &str) -> anyhow::Result<Counters> {
        let stats: Value = self.emulator_json(client, base, "stats")?;
        let count = |name: &str| {
            stats
                .get(name)
                .and_then(Value::as_u64)
                .with_context(|| format!("the emulator's stats lack `{name}`"))
        };
        Ok(Counters {
            requests: count("requests")?,
            reads: count("reads")?,
            deletes: count("deletes")?,
            rate_limited: count("rate_limited")?,
        })
    }

    /// The naive loop: one delete POST at a time on a fresh emulator; returns items/s.
    pub fn naive(&self, items: u64, latency_ms: u64, jitter: u32) -> anyhow::Result<f64> {
        let mut rates = Vec::new();
        for _ in 0..self.repeat {
            rates.push(self.naive_once(items, latency_ms, jitter)?);
        }
        Ok(median(&mut rates))
    }

    pub fn naive_once(&self, items: u64, latency_ms: u64, jitter: u32) -> anyhow::Result<f64> {
        eprintln!(
            "bench: naive loop, {} items at {latency_ms} ms",
            thousands(items)
        );
        self.runtime.block_on(async {
            let emulator = Emulator::start(
                Config {
                    latency_ms,
                    latency_jitter: jitter,
                    random_seed: Some(1),
                    ..Config::default()
                },
                seed(items),
            )
            .await?;
            let base = emulator.base_url();
            let client = reqwest::Client::new();
            let start = Instant::now();
            let mut outcome = Ok(());
            for i in 1..=items {
                let url = format!(
                    "{base}/v1/spaces/{SPACE}/collections/users/profiles/user_id:u_{i}/external_ids/delete"
                );
                let body = serde_json::json!({"delete_external_ids": [{"id": format!("bad_{i}@x.com"), "type": "email"}]})
                    .to_string();
                let sent = client
                    .post(&url)
                    .basic_auth(TOKEN, Some(""))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        outcome = Err(anyhow::anyhow!(
                            "naive delete #{i} answered {}",
                            response.status()
                        ));
                        break;
                    }
                    Err(e) => {
                        outcome = Err(anyhow::Error::new(e).context("naive delete request"));
                        break;
                    }
                }
            }
            let wall = start.elapsed();
            emulator.shutdown().await;
            outcome.map(|()| items as f64 / wall.as_secs_f64())
        })
    }
}

/// `--rate` and `--concurrency` for both plan and apply.
pub fn pace_args(run: &Run) -> Vec<String> {
    let mut args = vec!["--rate".to_owned(), run.rate.to_string()];
    if let Some(c) = run.concurrency {
        args.extend(["--concurrency".to_owned(), c.to_string()]);
    }
    args
}

pub fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub fn phase(child: &Child, seen: Counters, emulator_cpu: Duration) -> Phase {
    Phase {
        staged_secs: stamped(&child.stderr, "Resolving"),
        sealed_secs: child.appeared.map(|d| d.as_secs_f64()),
        printing_secs: child.first_stdout.map(|d| d.as_secs_f64()),
        emulator_cpu_secs: emulator_cpu.as_secs_f64(),
        wall_secs: child.wall.as_secs_f64(),
        cpu_secs: child.cpu.as_secs_f64(),
        peak_rss_kib: child.peak_rss_kib,
        seen,
        server: ServerSide::default(),
    }
}

pub fn expect_code(child: &Child, codes: &[i32]) -> anyhow::Result<()> {
    if codes.contains(&child.code) {
        Ok(())
    } else {
        bail!(
            "idprune exited {}; its stderr ends with: {}",
            child.code,
            tail(&child.stderr)
        )
    }
}

/// The last lines of a child's stderr, for error messages.
pub fn tail(path: &Path) -> String {
    const TAIL_BYTES: usize = 2_000;
    match fs::read(path) {
        Ok(bytes) => {
            let from = bytes.len().saturating_sub(TAIL_BYTES);
            String::from_utf8_lossy(&bytes[from..]).into_owned()
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let file = fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("parsing `{}` as JSON", path.display()))
}
