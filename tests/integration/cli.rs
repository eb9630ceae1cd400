//! The command line in CI pipes and in a hurry: closed pipes end quietly with exit 0, the
//! wrong kind of file is named with the command to run instead, `--format json` on
//! `validate`/`apply`/`verify`, `--quiet`, colour only on a terminal (`NO_COLOR`), shell
//! completions and the man page, an honest audit trail after a `kill -9`, and the small
//! messages a person reads (plurals, short approvals, missing folders, unreachable hosts).

use crate::harness::{Output, Test, seed, wait_bounded};

const HEAD: &str = "version: 1\nspace: spa_test\nregion: us\nreason: \"cli tests\"\n";

/// One profile with a bad email, a manifest removing it, planned into `m.state.db`.
fn small() -> (Test, String) {
    let test = Test::new(&seed(&[(
        "use_1",
        &[
            "user_id:u_1",
            "email:bad@import.invalid",
            "email:good@x.com",
        ],
    )]));
    test.write(
        "m.yaml",
        &format!(
            "{HEAD}remove:\n  - profile: user_id:u_1\n    identifier: email:bad@import.invalid\n"
        ),
    );
    let digest = test.plan("m.yaml", "m.state.db");
    (test, digest)
}

#[track_caller]
fn quiet_exit(out: Output, what: &str) {
    assert_eq!(
        out.code,
        Some(0),
        "`{what}` into a closed pipe: exit {:?}\n{}",
        out.code,
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("error"),
        "`{what}` into a closed pipe printed an error:\n{}",
        out.stderr
    );
}

/// Every command of the CLI (the emulator aside: a server keeps serving, see
/// `the_emulator_keeps_serving_when_its_output_pipes_are_closed`), with the files it
/// needs in `test`'s directory: `small()`'s plan applied, an archive line, a CSV, a key.
fn every_command(test: &Test) -> Vec<Vec<&'static str>> {
    test.write(
        "archive.jsonl",
        "{\"type\":\"identify\",\"userId\":\"u_1\",\"traits\":{\"email\":\"bad@import.invalid\"}}\n",
    );
    test.write("ids.csv", "user_id,email\nu_1,bad@import.invalid\n");
    test.write("key", "a-fingerprint-key-for-the-test");
    let commands: &[&[&str]] = &[
        &["validate", "m.yaml"],
        &["validate", "m.yaml", "--format", "json"],
        &["plan", "m.yaml", "-o", "again.state.db", "--force"],
        &[
            "plan",
            "m.yaml",
            "-o",
            "again.state.db",
            "--force",
            "--format",
            "markdown",
        ],
        &[
            "plan",
            "m.yaml",
            "-o",
            "again.state.db",
            "--force",
            "--format",
            "json",
        ],
        &[
            "plan",
            "m.yaml",
            "-o",
            "again.state.db",
            "--force",
            "--diff",
        ],
        &["show", "m.state.db", "--reveal"],
        &["show", "m.state.db", "--format", "markdown"],
        &["show", "m.state.db", "--format", "json"],
        &["apply", "m.state.db", "--yes"],
        &["apply", "m.state.db", "--yes", "--format", "json"],
        &["status", "m.state.db"],
        &["status", "m.state.db", "--format", "json"],
        &["verify", "m.state.db"],
        &["verify", "m.state.db", "--format", "json"],
        &["report", "m.state.db", "--downstream"],
        &["report", "m.state.db", "--downstream", "--format", "json"],
        &["report", "m.state.db", "--results"],
        &["report", "m.state.db", "--results", "--format", "json"],
        &["report", "m.state.db", "--sql"],
        &["report", "--sql", "--discover", "email:%@import.invalid"],
        &["guard", "m.state.db", "--archive", "archive.jsonl"],
        &[
            "init",
            "--from-csv",
            "ids.csv",
            "--profile-column",
            "user_id",
            "--remove-column",
            "email",
            "-o",
            "init.yaml",
            "--force",
        ],
        &["unlock", "m.state.db", "0123456789abcdef"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
        &["demo", "--dir", "demo-dir"],
    ];
    commands.iter().map(|c| c.to_vec()).collect()
}

/// Exits a command may end with here besides 0: `guard` finds the archived event (2),
/// `verify` the identifiers the emulator keeps for its propagation window (2), `unlock` is
/// refused, as the file is not locked (4).
fn expected_exit(args: &[&str]) -> &'static [i32] {
    match args.first().copied() {
        Some("guard") | Some("verify") => &[0, 2],
        Some("unlock") => &[4],
        _ => &[0],
    }
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let (test, _) = small();
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    for args in every_command(&test) {
        let what = args.join(" ");
        if expected_exit(&args) != [0] {
            // Their exit says what they found; into a closed pipe they still end without
            // a panic or a broken-pipe error.
            for merge in [true, false] {
                let out = test.idprune(&args).run_into_closed_pipe(merge);
                assert!(
                    out.code.is_some_and(|c| expected_exit(&args).contains(&c)),
                    "`{what}`: exit {:?}\n{}",
                    out.code,
                    out.stderr
                );
                assert!(
                    !out.stderr.contains("panicked") && !out.stderr.contains("Broken pipe"),
                    "{}",
                    out.stderr
                );
            }
            continue;
        }
        quiet_exit(test.idprune(&args).run_into_closed_pipe(true), &what);
        quiet_exit(test.idprune(&args).run_into_closed_pipe(false), &what);
    }
    // Last, as it changes the state file.
    let purge = ["purge", "m.state.db", "--key-file", "key"];
    quiet_exit(test.idprune(purge).run_into_closed_pipe(false), "purge");
}

#[test]
fn output_to_a_pipe_has_no_escape_codes_or_progress_bars() {
    let (test, _) = small();
    let mut commands = vec![vec!["apply", "m.state.db", "--yes"]];
    commands.extend(every_command(&test));
    commands.push(vec!["purge", "m.state.db", "--key-file", "key"]);
    for args in commands {
        let what = args.join(" ");
        // `--color auto` (the default) with stdout and stderr pipes: plain text only.
        let out = test.idprune(&args).env("TERM", "xterm-256color").run();
        assert!(
            out.code.is_some_and(|c| expected_exit(&args).contains(&c)),
            "`{what}`: exit {:?}\n{}",
            out.code,
            out.stderr
        );
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains('\u{1b}'),
                "`{what}` wrote an escape code to {stream} in a pipe:\n{text:?}"
            );
            assert!(
                !text.contains('\r'),
                "`{what}` drew a progress bar on {stream} in a pipe:\n{text:?}"
            );
        }
    }
}

#[test]
fn show_into_head_under_pipefail_exits_zero() {
    // 2,000 profiles: the text plan is far larger than a pipe's buffer, so `head` closes
    // its end while idprune is still writing.
    let test = crate::kills::fleet(2_000, &[]);
    for tail in ["2>&1 | head -2", "| head -1"] {
        let out = test
            .idprune(["show", "big.state.db", "--reveal"])
            .through_bash(tail)
            .code(0);
        assert!(
            out.stdout.starts_with("idprune plan for space spa_test"),
            "{tail}: {}",
            out.stdout
        );
        assert!(!out.all().contains("panicked"), "{}", out.all());
        assert!(!out.all().contains("Broken pipe"), "{}", out.all());
    }
    for args in [
        &["status", "big.state.db"][..],
        &["report", "big.state.db", "--sql"],
        &["show", "big.state.db", "--format", "json"],
    ] {
        test.idprune(args).through_bash("2>&1 | head -1").code(0);
    }
}

#[test]
fn a_manifest_where_a_state_file_goes_is_named() {
    let (test, _) = small();
    // A manifest readable by others: the old message was permission advice about it.
    let m = test.path("m.yaml");
    std::fs::set_permissions(&m, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    // `apply MANIFEST` exists (with the approved plan named); without one it says what to do.
    let out = test
        .idprune(["apply", "m.yaml", "--yes"])
        .run()
        .code(4)
        .stderr_has("`m.yaml` is a manifest, not a state file: run `idprune plan m.yaml` first")
        .stderr_has("--approve DIGEST");
    assert!(!out.stderr.contains("chmod"), "{}", out.stderr);
    // After a chmod 600 the old message was SQLite's "file is not a database".
    std::fs::set_permissions(&m, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = test
        .idprune(["apply", "m.yaml", "--yes"])
        .run()
        .code(4)
        .stderr_has("`m.yaml` is a manifest, not a state file");
    assert!(!out.stderr.contains("not a database"), "{}", out.stderr);
    for command in ["show", "status", "verify", "purge", "guard"] {
        let mut args = vec![command, "m.yaml"];
        if command == "guard" {
            args.extend(["--archive", "."]);
        }
        test.idprune(args)
            .env("IDPRUNE_FINGERPRINT_KEY", "k")
            .run()
            .code(1)
            .stderr_has("is a manifest (text), not an idprune state file")
            .stderr_has(&format!("idprune {command} m.state.db"));
    }
    test.idprune(["report", "m.yaml", "--downstream"])
        .run()
        .code(1)
        .stderr_has("is a manifest");
    test.idprune(["unlock", "m.yaml", "abc"])
        .run()
        .code(1)
        .stderr_has("is a manifest");
    assert_eq!(
        test.item_states("m.state.db").get("pending"),
        Some(&1),
        "nothing was applied"
    );
    // `plan -o` onto the manifest itself is refused, and the manifest is untouched.
    let before = std::fs::read(&m).expect("reading the manifest");
    test.idprune(["plan", "m.yaml", "-o", "m.yaml"])
        .run()
        .code(1)
        .stderr_has("`-o m.yaml` names a text file (a manifest?), not a state file");
    assert_eq!(std::fs::read(&m).expect("reading the manifest"), before);
}

#[test]
fn a_state_file_where_a_manifest_goes_is_named() {
    let (test, _) = small();
    let requests = test.emu().stats().requests;
    for command in ["plan", "validate"] {
        let out = test
            .idprune([command, "m.state.db"])
            .run()
            .code(1)
            .stderr_has("`m.state.db` is a state file (SQLite), not a manifest")
            .stderr_has("idprune show m.state.db")
            .stderr_has(&format!("`idprune {command} m.yaml`"));
        assert!(!out.stderr.contains("UTF-8"), "{}", out.stderr);
    }
    test.write("bad.csv", "user_id,email\nu_1,bad@import.invalid\n");
    test.idprune(["plan", "bad.csv"])
        .run()
        .code(1)
        .stderr_has("`bad.csv` is a CSV file, not a manifest")
        .stderr_has("sources: [{csv: bad.csv");
    assert_eq!(test.emu().stats().requests, requests, "a request was sent");
}

#[test]
fn a_short_approval_asks_for_twelve_digits() {
    let (test, digest) = small();
    let short = &digest["sha256:".len().."sha256:".len() + 6];
    test.idprune(["apply", "m.state.db", "--approve", short])
        .run()
        .code(4)
        .stderr_has("use at least 12 hex digits");
    assert_eq!(test.item_states("m.state.db").get("pending"), Some(&1));
    // A wrong digest of the right length still says it does not name the plan.
    test.idprune(["apply", "m.state.db", "--approve", "000000000000"])
        .run()
        .code(4)
        .stderr_has("does not name this plan's digest");
}

#[test]
fn plan_into_a_missing_folder_names_it() {
    let (test, _) = small();
    let out = test
        .idprune(["plan", "m.yaml", "-o", "nodir/x.state.db"])
        .run()
        .code(1)
        .stderr_has("folder `nodir` does not exist");
    assert!(!out.stderr.contains("stage"), "{}", out.stderr);
}

#[test]
fn an_unreachable_api_is_named() {
    let (test, _) = small();
    // Port 1 on loopback: nothing listens there.
    test.idprune(["plan", "m.yaml", "-o", "x.state.db"])
        .env("IDPRUNE_API_URL", "http://127.0.0.1:1")
        .run()
        .code(1)
        .stderr_has("could not connect to http://127.0.0.1:1");
    assert!(!test.path("x.state.db").exists());
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    test.idprune(["verify", "m.state.db"])
        .env("IDPRUNE_API_URL", "http://127.0.0.1:1")
        .run()
        .code(1)
        .stderr_has("could not connect to http://127.0.0.1:1");
}

#[test]
fn apply_with_nothing_left_records_no_run() {
    let (test, _) = small();
    test.idprune(["apply", "m.state.db", "--yes"])
        .run()
        .ok()
        .stderr_has("Applying 1 deletion at");
    let runs = || -> i64 {
        test.db("m.state.db")
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .expect("counting runs")
    };
    assert_eq!(runs(), 1);
    let resumed_rate = test
        .idprune([
            "apply",
            "m.state.db",
            "--yes",
            "--rate",
            "7",
            "--retry-failed",
        ])
        .run()
        .ok();
    assert!(
        !resumed_rate.stderr.contains("Resuming"),
        "nothing was resumed"
    );
    let again = test
        .idprune(["apply", "m.state.db", "--yes"])
        .run()
        .ok()
        .stderr_has("nothing to apply: every planned item is settled");
    assert!(!again.stderr.contains("note:"), "{}", again.stderr);
    assert_eq!(runs(), 1, "an empty run was recorded");
}

#[test]
fn a_killed_apply_is_closed_as_died_with_its_counts() {
    let test = crate::crash::big_test(&[]);
    let mut apply = crate::crash::apply_under_way(&test);
    apply.kill().expect("SIGKILL the apply");
    wait_bounded(&mut apply);
    let done_at_kill = test.item_states("big.state.db")["done"];

    let status = test.idprune(["status", "big.state.db"]).run().ok();
    assert!(
        status.stdout.contains("which no longer runs"),
        "the dead holder is not marked:\n{}",
        status.stdout
    );
    assert!(status.stdout.contains("Run 1"), "{}", status.stdout);
    let json = test
        .idprune(["status", "big.state.db", "--format", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("status JSON");
    assert_eq!(v["lock"]["holder_dead"], true, "{v}");
    assert!(status.stdout.contains("died"), "{}", status.stdout);

    test.idprune(["apply", "big.state.db", "--yes", "--rate", "5000"])
        .run()
        .ok()
        .stderr_has("run 1 ended without closing its record")
        .stderr_has(
            "Resuming: run 1 (died) was started at no rate limit; this run goes at up to 5000/s.",
        );
    let (outcome, done): (String, i64) = test
        .db("big.state.db")
        .query_row("SELECT outcome, done FROM runs WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("run 1");
    assert_eq!(outcome, "died");
    assert!(
        done as u64 >= done_at_kill,
        "run 1 recorded {done} done, the journal held {done_at_kill}"
    );
    let status = test.idprune(["status", "big.state.db"]).run().ok();
    assert!(
        status.stdout.contains("Run 1") && status.stdout.contains(": died"),
        "{}",
        status.stdout
    );
}

#[test]
fn json_of_validate_apply_and_verify() {
    let (test, _) = small();
    let out = test
        .idprune(["validate", "m.yaml", "--format", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("validate JSON");
    assert_eq!(v["format_version"], "1.1");
    assert_eq!(v["valid"], true);
    assert_eq!(v["entries"], 1);
    assert_eq!(v["sources_not_fetched"], serde_json::json!([]));

    test.write(
        "bad.yaml",
        "version: 1\nspace: spa_test\nreason: x\nremove:\n  - identifer: email:a@x.com\n",
    );
    let out = test
        .idprune(["validate", "bad.yaml", "--format", "json"])
        .run()
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("validate JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"], 5);

    let out = test
        .idprune(["apply", "m.state.db", "--yes", "--format", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("apply JSON");
    assert_eq!(v["format_version"], "1.0");
    assert_eq!(v["run"]["deleted"], 1);
    assert_eq!(v["run"]["outcome"], "completed");
    assert!(v["run"]["rate"].is_number());
    assert!(v["run"]["latency_p50_ms"].is_number());
    assert_eq!(v["stop"], serde_json::Value::Null);
    assert_eq!(v["summary"]["by_state"]["done"], 1);

    let out = test
        .idprune(["verify", "m.state.db", "--format", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("verify JSON");
    assert_eq!(v["format_version"], "1.0");
    assert_eq!(v["still_present"], 0);
    assert_eq!(v["gone"], 1);
    assert_eq!(v["items"][0]["status"], "gone");
    assert_eq!(
        v["items"][0]["identifier"]["id"], "***",
        "redacted by default"
    );
}

#[test]
fn quiet_prints_errors_only() {
    let (test, digest) = small();
    let out = test.idprune(["validate", "m.yaml", "-q"]).run().ok();
    assert_eq!(out.all().trim(), "");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest, "--quiet"])
        .run()
        .ok();
    assert_eq!(out.all().trim(), "", "apply --quiet printed something");
    let out = test
        .idprune(["--quiet", "plan", "m.yaml", "-o", "again.state.db"])
        .run()
        .ok();
    assert_eq!(out.all().trim(), "");
    // Views asked for still print; errors still print.
    let out = test.idprune(["status", "m.state.db", "-q"]).run().ok();
    assert!(out.stdout.contains("Progress:"));
    test.idprune(["show", "nope.state.db", "-q"])
        .run()
        .code(1)
        .stderr_has("error:");
}

/// Runs `command` on a pseudo-terminal (`script`), so stdout is a terminal.
fn on_terminal(test: &Test, command: &str, no_color: Option<&str>) -> String {
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .current_dir(test.path("."))
        .stdin(std::process::Stdio::null());
    match no_color {
        Some(v) => script.env("NO_COLOR", v),
        None => script.env_remove("NO_COLOR"),
    };
    let out = crate::harness::output_bounded(
        script
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
        None,
    );
    assert!(out.status.success(), "{command}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_only_and_never_with_no_color() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::harness::skipped(
            "cli::colour_on_a_terminal_only_and_never_with_no_color",
            "`script` (bsdutils) is not installed",
        );
        return;
    }
    let (test, _) = small();
    let bin = crate::harness::BIN;
    let show = format!("{bin} show m.state.db");
    let esc = "\u{1b}[";
    assert!(
        on_terminal(&test, &show, None).contains(esc),
        "no colour on a terminal"
    );
    assert!(
        !on_terminal(&test, &show, Some("1")).contains(esc),
        "colour despite NO_COLOR"
    );
    assert!(
        !on_terminal(&test, &format!("{show} --color never"), None).contains(esc),
        "colour despite --color never"
    );
    // NO_COLOR set but empty counts as unset.
    assert!(on_terminal(&test, &show, Some("")).contains(esc));
    // Not a terminal: no colour unless asked for.
    let piped = test.idprune(["show", "m.state.db"]).run().ok();
    assert!(!piped.stdout.contains(esc));
    let forced = test
        .idprune(["show", "m.state.db", "--color", "always"])
        .run()
        .ok();
    assert!(
        forced.stdout.contains(&format!("{esc}31m-")),
        "{}",
        forced.stdout
    );
    // Markdown and JSON are for files and programs: never coloured.
    for format in ["markdown", "json"] {
        let out = test
            .idprune([
                "show",
                "m.state.db",
                "--color",
                "always",
                "--format",
                format,
            ])
            .run()
            .ok();
        assert!(!out.stdout.contains(esc), "{format} was coloured");
    }
}

#[test]
fn completions_parse_and_the_man_page_renders() {
    let test = Test::offline();
    let out = test.idprune(["completions", "bash"]).run().ok();
    assert!(out.stdout.contains("_idprune"), "{}", out.stdout);
    test.write("idprune.bash", &out.stdout);
    let check = crate::harness::output_bounded(
        std::process::Command::new("bash")
            .arg("-n")
            .arg(test.path("idprune.bash"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
        None,
    );
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // And it completes: a subcommand, then a flag of that subcommand.
    let complete = crate::harness::output_bounded(
        std::process::Command::new("bash")
        .arg("-c")
        .arg(
            "source \"$0\"; COMP_WORDS=(idprune sh); COMP_CWORD=1; _idprune idprune sh idprune; echo \"${COMPREPLY[*]}\"; \
             COMP_WORDS=(idprune apply --retry-f); COMP_CWORD=2; _idprune idprune --retry-f apply; echo \"${COMPREPLY[*]}\"",
        )
        .arg(test.path("idprune.bash"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&complete.stdout),
        "show\n--retry-failed\n",
        "{}",
        String::from_utf8_lossy(&complete.stderr)
    );
    for (shell, program) in [("zsh", "zsh"), ("fish", "fish")] {
        let out = test.idprune(["completions", shell]).run().ok();
        assert!(out.stdout.contains("idprune"));
        let file = test.write(&format!("idprune.{shell}"), &out.stdout);
        match std::process::Command::new(program)
            .arg("-n")
            .arg(&file)
            .output()
        {
            Ok(check) => assert!(
                check.status.success(),
                "{program} -n: {}",
                String::from_utf8_lossy(&check.stderr)
            ),
            Err(_) => crate::harness::skipped(
                &format!("cli::completions_parse_and_the_man_page_renders ({program} -n)"),
                &format!("{program} is not installed; its script is only generated"),
            ),
        }
    }
    let out = test.idprune(["completions", "powershell"]).run().ok();
    assert!(out.stdout.contains("Register-ArgumentCompleter"));
    let man = test.idprune(["man"]).run().ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        man.stdout
    );
    assert!(man.stdout.contains("idprune"));
}

#[test]
fn demo_names_its_dir_flag() {
    let test = Test::offline();
    let out = test.idprune(["demo"]).run().ok();
    assert!(out.stdout.contains("idprune demo --dir"), "{}", out.stdout);
}

#[test]
fn redact_hides_the_values_warnings_quote() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:dave@acme.io"])]));
    test.write(
        "m.yaml",
        &format!(
            "{HEAD}remove:\n  - profile: email:Dave@Acme.io\n    identifier: email:dave@acme.io\n"
        ),
    );
    let plain = test
        .idprune(["plan", "m.yaml", "--allow-unresolved"])
        .run()
        .ok();
    assert!(plain.stderr.contains("Dave@Acme.io"), "{}", plain.stderr);
    let redacted = test
        .idprune([
            "plan",
            "m.yaml",
            "--redact",
            "-o",
            "r.state.db",
            "--allow-unresolved",
        ])
        .run()
        .ok()
        .stderr_has("warning:");
    assert!(
        !redacted.all().contains("Dave@Acme.io") && !redacted.all().contains("dave@acme.io"),
        "{}",
        redacted.all()
    );
}

#[test]
fn typos_of_every_kind_are_reported_in_one_pass() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    test.write(
        "m.yaml",
        "version: 1\nspcae: spa_test\nreason: x\nremove:\n  - identifer: email:a@x.com\n  - profile: user_id:u_1\n    identifiers: email:x\n    idntifier: email:y@x.com\n  - identifier: nocolon\nregion: mars\n",
    );
    for command in ["validate", "plan"] {
        let out = test
            .idprune([command, "m.yaml"])
            .run()
            .code(1)
            .stderr_has("m.yaml:2:1: unknown key `spcae` at the top level; did you mean `space`?")
            .stderr_has("m.yaml:5:5: unknown key `identifer` in a `remove` entry; did you mean `identifier`?")
            .stderr_has("m.yaml:7:18: `identifiers` must be a list, for example `[email:a@x.com]`")
            .stderr_has("m.yaml:8:5: unknown key `idntifier`")
            .stderr_has("m.yaml:9:17: `nocolon` is not an identifier")
            .stderr_has("m.yaml:10:9: unknown region `mars`")
            .stderr_has("6 problems in `m.yaml`");
        assert!(!out.stderr.contains("expected sequence"), "{}", out.stderr);
    }
    assert_eq!(test.emu().stats().requests, 0);
}

#[test]
fn suspicious_identifiers_are_warned_about() {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:dave@acme.io"])]));
    test.write(
        "m.yaml",
        &format!(
            "{HEAD}remove:\n  - profile: user_id:u_1\n    identifiers: [Email:dave@acme.io, email:Dave@Acme.io, \"email: spaced@x.com \"]\n"
        ),
    );
    test.idprune(["validate", "m.yaml"])
        .run()
        .ok()
        .stderr_has("identifier type `Email` has upper-case letters")
        .stderr_has("email `Dave@Acme.io` has upper-case letters")
        .stderr_has("`email: spaced@x.com ` has whitespace at its start or end");
    let out = test
        .idprune(["validate", "m.yaml", "--format", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(3), "{v}");
}

#[test]
fn the_emulator_prints_the_exports_to_use_it_but_no_token_of_its_own() {
    let test = Test::offline();
    for (token, shown) in [
        (None, "demo-token"),
        (Some("s3cret-emu-token"), "<the token"),
    ] {
        let log = test.path("emulator.log");
        let mut run = test.idprune(["emulator", "--listen", "127.0.0.1:0"]);
        if let Some(t) = token {
            run = run.env("IDPRUNE_EMULATOR_TOKEN", t);
        }
        let mut emulator = run.spawn_logged(&log);
        crate::harness::wait_for_text(&log, "export SEGMENT_ACCESS_TOKEN=");
        // SAFETY: stopping our own child, which has not been reaped yet.
        let pid = libc::pid_t::try_from(emulator.id()).expect("pid fits pid_t");
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        crate::harness::wait_bounded(&mut emulator);
        let text = std::fs::read_to_string(&log).expect("reading the log");
        assert!(
            text.contains("export IDPRUNE_API_URL=http://127.0.0.1:"),
            "{text}"
        );
        assert!(
            text.contains(&format!("export SEGMENT_ACCESS_TOKEN={shown}")),
            "{text}"
        );
        assert!(!text.contains("s3cret-emu-token"), "{text}");
    }
}

#[test]
fn plan_prints_its_summary_first_and_the_diffs_only_with_diff_or_show() {
    const PROFILES: usize = 300;
    let test = crate::kills::fleet(PROFILES, &[]);
    let out = test
        .idprune(["plan", "big.yaml", "-o", "p.state.db", "--rate", "0"])
        .run()
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.len() < 30,
        "{} lines for {PROFILES} deletions:\n{}",
        lines.len(),
        out.stdout
    );
    assert!(
        lines[..8]
            .iter()
            .any(|l| l.starts_with("Plan: 300 to delete")),
        "the summary first:\n{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("The per-profile diffs of 300 profiles are not printed here: add --diff"),
        "{}",
        out.stdout
    );
    let full = test
        .idprune([
            "plan",
            "big.yaml",
            "-o",
            "p.state.db",
            "--rate",
            "0",
            "--diff",
        ])
        .run()
        .ok();
    assert_eq!(full.stdout.matches("\nprofile user_id:").count(), PROFILES);
    let show = test.idprune(["show", "p.state.db"]).run().ok();
    assert_eq!(show.stdout.matches("\nprofile user_id:").count(), PROFILES);
    // A short plan still shows its diffs.
    let (small, _) = small();
    let short = small.idprune(["show", "m.state.db"]).run().ok();
    assert!(
        short.stdout.contains("profile user_id:u_1"),
        "{}",
        short.stdout
    );
}

#[test]
fn the_scope_notes_come_once_a_plan_and_in_the_right_tense() {
    let (test, _) = small();
    let planned = test
        .idprune(["plan", "m.yaml", "-o", "n.state.db"])
        .run()
        .ok();
    assert_eq!(
        planned
            .stderr
            .matches("add the `__operation` column")
            .count(),
        1,
        "plan says what to do before applying, once:\n{}",
        planned.stderr
    );
    let applied = test.idprune(["apply", "n.state.db", "--yes"]).run().ok();
    assert!(
        applied.stderr.contains("Segment removed these identifiers")
            && !applied.stderr.contains("before applying"),
        "after the apply, in the past tense:\n{}",
        applied.stderr
    );
    // A second completed run of the same plan does not repeat them.
    let again = test
        .idprune(["apply", "n.state.db", "--yes", "--reapply"])
        .run()
        .ok();
    assert!(
        !again.stderr.contains("note: Segment"),
        "once a plan:\n{}",
        again.stderr
    );
    let nothing = test.idprune(["apply", "n.state.db", "--yes"]).run().ok();
    assert!(
        !nothing.stderr.contains("note: Segment"),
        "{}",
        nothing.stderr
    );
    let md = test
        .idprune(["show", "n.state.db", "--format", "markdown"])
        .run()
        .ok();
    assert!(
        md.stdout.contains("> Segment removed these identifiers")
            && !md.stdout.contains("before applying"),
        "{}",
        md.stdout
    );
}

#[test]
fn the_emulator_keeps_serving_when_its_output_pipes_are_closed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let test = Test::offline();
    let seed = test.write(
        "seed.json",
        &seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]).to_string(),
    );
    // A free port, named up front: the `listening on` line goes into the closed pipe.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut child = Command::new(crate::harness::BIN)
        .args([
            "emulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--seed",
        ])
        .arg(&seed)
        .env_remove("SEGMENT_ACCESS_TOKEN")
        .env_remove("IDPRUNE_EMULATOR_TOKEN")
        .stdin(Stdio::null())
        .stderr(writer.try_clone().expect("cloning the writer"))
        .stdout(writer)
        .spawn()
        .expect("starting the emulator");
    // It serves: a profile read answers, however long the start takes (bounded).
    let start = Instant::now();
    let answered = loop {
        let read = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            use std::io::{Read as _, Write as _};
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /__emulator/stats HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match read {
            Ok(body) if body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200") => {
                break body;
            }
            _ if start.elapsed() > crate::harness::PATIENCE => {
                let _ = child.kill();
                panic!("the emulator never answered with its output pipes closed");
            }
            _ => {
                if let Some(status) = child.try_wait().expect("polling the emulator") {
                    panic!("the emulator ended ({status}) when its output pipes were closed");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert!(answered.contains("requests"), "{answered}");
    // And it stops on SIGTERM as usual.
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
}
