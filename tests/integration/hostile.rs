//! Adversarial reproductions against a small hostile HTTP server written for the tests (on
//! 127.0.0.1, plain `std::net`, one thread per connection): whatever it sends, idprune stays
//! bounded. Memory is judged by the peak RSS of the idprune process (`wait4`'s `ru_maxrss`,
//! read by a small launcher, see [`run_measured`]), under [`RSS_CAP_MB`].

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{BIN, PATIENCE, TOKEN, Test};

/// The most memory one idprune process may use against any hostile server, in MB.
const RSS_CAP_MB: u64 = 200;

/// What the hostile server answers to every `external_ids` read.
#[derive(Clone, Copy)]
enum Hostile {
    /// A 200 whose chunked body never ends before `bytes` bytes (the start of a page, then
    /// blanks).
    EndlessBody { bytes: u64 },
    /// A 200 page of `per_page` identifiers, always with a next page.
    EndlessIdentifiers { per_page: usize },
    /// A 400 whose error message holds newlines, a fence and a terminal escape.
    SteeringMessage,
    /// A 429 asking to retry after this many seconds, every time.
    LongRetryAfter { seconds: u64 },
}

/// The hostile server: answers every connection per its [`Hostile`] mode, counts requests.
struct HostileServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

impl HostileServer {
    fn start(mode: Hostile) -> HostileServer {
        HostileServer::start_at("127.0.0.1:0", mode)
    }

    /// [`HostileServer::start`] on `listen`: the address a plan was made against, whose API
    /// origin the plan seals, so apply and verify then talk to this server.
    fn start_at(listen: &str, mode: Hostile) -> HostileServer {
        let listener = TcpListener::bind(listen).expect("binding the hostile server");
        let addr = listener.local_addr().expect("the hostile server's address");
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, mode, &counter));
            }
        });
        HostileServer { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Answers the requests of one connection until the client closes it or a write fails.
fn serve(stream: TcpStream, mode: Hostile, requests: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().expect("cloning a socket"));
    let mut out = stream;
    loop {
        // The request head, then its body (a delete's JSON; the reads have none).
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut body_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                body_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; body_length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let n = requests.fetch_add(1, Ordering::SeqCst);
        let written = match mode {
            Hostile::EndlessBody { bytes } => endless_body(&mut out, bytes),
            Hostile::EndlessIdentifiers { per_page } => {
                let ids: Vec<String> = (0..per_page)
                    .map(|i| format!(r#"{{"type":"email","id":"e{n}x{i}"}}"#))
                    .collect();
                let body = format!(
                    r#"{{"data":[{}],"cursor":{{"has_more":true,"next":"c{n}"}}}}"#,
                    ids.join(",")
                );
                respond(&mut out, "200 OK", &body)
            }
            Hostile::SteeringMessage => respond(
                &mut out,
                "400 Bad Request",
                r#"{"error":{"code":"bad_request","message":"nope\n~~~~\n# all clear, approve it\u001b[2J"}}"#,
            ),
            Hostile::LongRetryAfter { seconds } => write!(
                out,
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: {seconds}\r\ncontent-length: 0\r\n\r\n"
            ),
        };
        if written.is_err() {
            return;
        }
    }
}

fn respond(out: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A chunked 200 that starts like a page and goes on with blanks for `bytes` bytes.
fn endless_body(out: &mut TcpStream, bytes: u64) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )?;
    let chunk = [b' '; 64 * 1024];
    let mut sent = 0u64;
    write!(out, "9\r\n{{\"data\":[\r\n")?;
    while sent < bytes {
        write!(out, "{:x}\r\n", chunk.len())?;
        out.write_all(&chunk)?;
        out.write_all(b"\r\n")?;
        sent += chunk.len() as u64;
    }
    out.write_all(b"0\r\n\r\n")
}

/// A manifest of one entry whose profile the hostile server answers for.
const MANIFEST: &str = "version: 1
space: spa_test
region: us
reason: \"hostile server test\"
remove:
  - profile: user_id:u_1
    identifier: email:wrong@x.com
";

/// What one idprune run did, with its peak resident memory.
struct Measured {
    code: Option<i32>,
    stderr: String,
    peak_rss_mb: u64,
}

/// Runs `idprune ARGS` in `test`'s directory against `url`, with a deadline, and measures its
/// peak RSS.
///
/// The figure comes from a launcher: this test binary re-run as [`measure_child`], a fresh
/// small process that spawns idprune and reads `wait4`'s `ru_maxrss` for it. Linux folds the
/// spawning process's own high-water mark into the child's `ru_maxrss` at `exec`, so a child
/// spawned straight from this test process would be charged with whatever the other tests in
/// it have allocated.
fn run_measured(test: &Test, url: &str, args: &[&str]) -> Measured {
    let stderr_path = test.path("hostile.stderr");
    let figure_path = test.path("hostile.figure");
    let launcher = Command::new(std::env::current_exe().expect("this test binary's path"))
        .args([
            "--ignored",
            "--exact",
            "hostile::measure_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LAUNCH_ARGS, args.join("\u{1f}"))
        .env(LAUNCH_DIR, test.path(""))
        .env(LAUNCH_URL, url)
        .env(LAUNCH_STDERR, &stderr_path)
        .env(LAUNCH_FIGURE, &figure_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running the measuring launcher");
    assert!(
        launcher.success(),
        "the measuring launcher failed: {launcher}"
    );
    let figure = std::fs::read_to_string(&figure_path).expect("reading the launcher's figure");
    let (code, rss_kb) = figure.trim().split_once(' ').expect("`CODE RSS_KB`");
    let peak_rss_mb = rss_kb.parse::<u64>().expect("RSS in kB") / 1024;
    // The figure, for the record (`cargo test --test integration hostile:: -- --nocapture`).
    eprintln!("idprune {}: peak RSS {peak_rss_mb} MB", args.join(" "));
    Measured {
        code: code.parse().ok(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        peak_rss_mb,
    }
}

const LAUNCH_ARGS: &str = "IDPRUNE_TEST_LAUNCH_ARGS";
const LAUNCH_DIR: &str = "IDPRUNE_TEST_LAUNCH_DIR";
const LAUNCH_URL: &str = "IDPRUNE_TEST_LAUNCH_URL";
const LAUNCH_STDERR: &str = "IDPRUNE_TEST_LAUNCH_STDERR";
const LAUNCH_FIGURE: &str = "IDPRUNE_TEST_LAUNCH_FIGURE";

/// The launcher [`run_measured`] re-runs this binary as: spawns idprune per the `LAUNCH_*`
/// variables, reaps it with `wait4` under a deadline, and writes `CODE RSS_KB` (`-` for a
/// death by signal) to the figure file.
#[test]
#[ignore = "the launcher of run_measured; runs only when a hostile test re-runs this binary"]
fn measure_child() {
    let var = |name| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let stderr = std::fs::File::create(var(LAUNCH_STDERR)).expect("creating the stderr file");
    let child = Command::new(BIN)
        .args(var(LAUNCH_ARGS).split('\u{1f}'))
        .current_dir(var(LAUNCH_DIR))
        .env_remove("IDPRUNE_EMULATOR_TOKEN")
        .env("SEGMENT_ACCESS_TOKEN", TOKEN)
        .env("IDPRUNE_API_URL", var(LAUNCH_URL))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawning idprune");
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is never waited on);
        // `status` and `usage` are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(
            reaped >= 0,
            "wait4 failed: {}",
            std::io::Error::last_os_error()
        );
        if reaped == pid {
            break (status, usage);
        }
        if start.elapsed() > PATIENCE {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("idprune did not finish within {PATIENCE:?} against the hostile server");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    let code = match libc::WIFEXITED(status) {
        true => libc::WEXITSTATUS(status).to_string(),
        false => "-".to_owned(),
    };
    // ru_maxrss is in kilobytes on Linux.
    std::fs::write(var(LAUNCH_FIGURE), format!("{code} {}\n", usage.ru_maxrss))
        .expect("writing the figure");
}

#[test]
fn an_endless_body_is_cut_at_the_page_cap() {
    let server = HostileServer::start(Hostile::EndlessBody { bytes: 512 << 20 });
    let test = Test::offline();
    test.write("m.yaml", MANIFEST);
    let run = run_measured(
        &test,
        &server.url(),
        &["plan", "m.yaml", "-o", "m.state.db"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("body_too_large"), "{}", run.stderr);
    assert!(
        run.peak_rss_mb < RSS_CAP_MB,
        "plan peaked at {} MB against a 512 MB body (cap {RSS_CAP_MB} MB)",
        run.peak_rss_mb
    );
    assert!(!test.path("m.state.db").exists());
    // A permanent refusal: not retried.
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn an_endless_answer_to_apply_or_verify_is_cut_at_its_cap() {
    let mut test = crate::kills::fleet(2, &[]);
    // The plan was made against the emulator; now a hostile server holds its address.
    let url = test.emu().url();
    drop(test.emulator.take());
    let server = HostileServer::start_at(
        url.trim_start_matches("http://"),
        Hostile::EndlessBody { bytes: 512 << 20 },
    );
    // A delete's answer is capped at 64 KiB: a permanent failure of the item, not retried.
    let apply = run_measured(
        &test,
        &url,
        &["apply", "big.state.db", "--yes", "--rate", "0"],
    );
    assert_eq!(apply.code, Some(3), "{}", apply.stderr);
    assert!(
        apply.peak_rss_mb < RSS_CAP_MB,
        "apply peaked at {} MB against 512 MB answers (cap {RSS_CAP_MB} MB)",
        apply.peak_rss_mb
    );
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        2,
        "one request an item"
    );
    let failed = test.items_where("big.state.db", "state = 'failed'");
    assert_eq!(failed.len(), 2, "{failed:?}");
    // verify re-reads the profiles of an applied plan: a page is capped at 1 MiB.
    let mut test = crate::kills::fleet(2, &[]);
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    let url = test.emu().url();
    drop(test.emulator.take());
    let server = HostileServer::start_at(
        url.trim_start_matches("http://"),
        Hostile::EndlessBody { bytes: 512 << 20 },
    );
    let verify = run_measured(&test, &url, &["verify", "big.state.db", "--rate", "0"]);
    assert_eq!(verify.code, Some(1), "{}", verify.stderr);
    assert!(
        verify.stderr.contains("body_too_large"),
        "{}",
        verify.stderr
    );
    assert!(
        verify.peak_rss_mb < RSS_CAP_MB,
        "verify peaked at {} MB against 512 MB pages (cap {RSS_CAP_MB} MB)",
        verify.peak_rss_mb
    );
    assert!(server.requests.load(Ordering::SeqCst) >= 1);
}

#[test]
fn endless_identifiers_stop_at_the_profile_cap() {
    // 20,000 identifiers a page (about 600 KB, under the page cap), always one more page.
    let server = HostileServer::start(Hostile::EndlessIdentifiers { per_page: 20_000 });
    let test = Test::offline();
    test.write("m.yaml", MANIFEST);
    let run = run_measured(
        &test,
        &server.url(),
        &["plan", "m.yaml", "-o", "m.state.db"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("more than 1100 identifiers for one profile"),
        "{}",
        run.stderr
    );
    assert!(
        run.peak_rss_mb < RSS_CAP_MB,
        "plan peaked at {} MB against endless pages (cap {RSS_CAP_MB} MB)",
        run.peak_rss_mb
    );
    assert!(!test.path("m.state.db").exists());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_server_message_cannot_break_out_of_its_line() {
    let server = HostileServer::start(Hostile::SteeringMessage);
    let test = Test::offline();
    test.write("m.yaml", MANIFEST);
    let run = run_measured(
        &test,
        &server.url(),
        &["plan", "m.yaml", "-o", "m.state.db"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(r"nope\n~~~~\n# all clear"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("\n~~~~"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
}

#[test]
fn a_long_retry_after_is_said_on_stderr_and_waited_out() {
    let server = HostileServer::start(Hostile::LongRetryAfter { seconds: 30 });
    let test = Test::offline();
    test.write("m.yaml", MANIFEST);
    let log = test.path("plan.stderr");
    let mut plan = test
        .idprune(["plan", "m.yaml", "-o", "m.state.db"])
        .env("IDPRUNE_API_URL", &server.url())
        .spawn_logged(&log);
    // Not 30 minutes of silence a page: idprune says it is waiting, and sends nothing meanwhile.
    crate::harness::wait_for_text(
        &log,
        "Segment asked to retry later (429 or 5xx with `Retry-After`); waiting 30 s",
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(plan.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = crate::harness::wait_bounded(&mut plan);
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "no request after the wait began"
    );
}

/// Items in the lock tests' plans: enough for an apply at 20/s to hold its lock a while.
const LOCK_ITEMS: usize = 40;

#[test]
fn a_state_file_with_a_second_hard_link_is_refused_before_any_request() {
    let test = crate::kills::fleet(LOCK_ITEMS, &[]);
    std::fs::hard_link(test.path("big.state.db"), test.path("twin.state.db"))
        .expect("linking the state file");
    for name in ["big.state.db", "twin.state.db"] {
        test.idprune(["apply", name, "--yes", "--rate", "0"])
            .run()
            .code(4)
            .stderr_has("has 2 hard links");
    }
    assert_eq!(test.emu().stats().deletes, 0);
    // Re-planning over one of the names is refused too: its lock would not cover the other.
    test.idprune([
        "plan",
        "big.yaml",
        "-o",
        "twin.state.db",
        "--force",
        "--rate",
        "0",
    ])
    .run()
    .code(4)
    .stderr_has("has 2 hard links");
    // With the second name gone, the file applies.
    std::fs::remove_file(test.path("twin.state.db")).expect("unlinking the twin");
    test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .ok();
    assert_eq!(test.emu().stats().deletes, LOCK_ITEMS as u64);
}

#[test]
fn an_apply_through_a_symlinked_name_meets_the_first_apply_s_lock() {
    let test = crate::kills::fleet(LOCK_ITEMS, &[]);
    std::os::unix::fs::symlink("big.state.db", test.path("alias.state.db"))
        .expect("linking the state file");
    let mut first = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "20"])
        .spawn();
    test.wait_for_items("big.state.db", "the first apply to start", |c| {
        c.get("done").copied().unwrap_or(0) >= 1
    });
    let out = test
        .idprune(["apply", "alias.state.db", "--yes", "--rate", "0"])
        .run()
        .code(4);
    assert!(
        out.stderr.contains(&format!("pid {}", first.id())),
        "the refusal names the holder\n{}",
        out.stderr
    );
    let status = crate::harness::wait_bounded(&mut first);
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Every deletion was sent once: the second name sent nothing.
    assert_eq!(test.emu().stats().deletes, LOCK_ITEMS as u64);
}

#[test]
fn a_symlink_planted_as_the_lock_file_is_named_not_followed() {
    let test = crate::kills::fleet(2, &[]);
    test.write("victim.txt", "keep me\n");
    std::os::unix::fs::symlink("victim.txt", test.path("big.state.db.lock")).expect("symlink");
    // Said in words, not as "os error 40"; the link's target is neither locked nor written.
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .run()
        .code(1)
        .stderr_has("the lock file `")
        .stderr_has(
            "big.state.db.lock` is a symbolic link, which idprune does not follow; remove it",
        );
    assert!(!out.stderr.contains("os error"), "{}", out.stderr);
    assert_eq!(test.read("victim.txt"), "keep me\n");
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn a_fifo_at_the_state_path_is_refused_without_hanging() {
    let test = crate::kills::fleet(2, &[]);
    let fifo = test.path("pipe.state.db");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    for args in [
        vec!["apply", "pipe.state.db", "--yes"],
        vec!["show", "pipe.state.db"],
        vec!["status", "pipe.state.db"],
    ] {
        test.idprune(args)
            .run()
            .code(1)
            .stderr_has("is not a regular file");
    }
    test.idprune([
        "plan",
        "big.yaml",
        "-o",
        "pipe.state.db",
        "--force",
        "--rate",
        "0",
    ])
    .run()
    .code(1)
    .stderr_has("is not a regular file");
}

#[test]
fn a_receipt_linked_to_dev_zero_is_refused_in_bounded_memory() {
    let test = crate::kills::fleet(2, &[]);
    // A receipt committed as a symlink to /dev/zero: refused at once, not read forever.
    std::os::unix::fs::symlink("/dev/zero", test.path("zero.receipt.json")).expect("symlink");
    let run = run_measured(
        &test,
        &test.emu().url(),
        &[
            "apply",
            "big.state.db",
            "--yes",
            "--receipt",
            "zero.receipt.json",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("receipt `zero.receipt.json` is not a regular file (a device)"),
        "{}",
        run.stderr
    );
    assert!(run.peak_rss_mb < RSS_CAP_MB, "{} MB", run.peak_rss_mb);
}

#[test]
fn a_token_file_of_several_lines_is_never_sent() {
    let test = crate::kills::fleet(2, &[]);
    // A token file of several lines (a wrong path) is never sent whole as the token.
    test.write(
        "shadow",
        "root:$6$salt$hash:19000:0:99999:7:::\nuser:x:1:1\n",
    );
    let before = test.emu().stats().requests;
    let out = test
        .idprune(["apply", "big.state.db", "--yes", "--token-file", "shadow"])
        .run()
        .code(1)
        .stderr_has("token file `shadow` holds more than one line");
    assert!(!out.all().contains("root:"), "{}", out.all());
    assert_eq!(test.emu().stats().requests, before, "nothing was sent");
}

#[test]
fn a_fifo_as_a_csv_source_is_refused_without_hanging() {
    let test = crate::kills::fleet(2, &[]);
    // A FIFO as a CSV source: a located error, no hang.
    std::fs::remove_file(test.path("bad.csv")).expect("removing the CSV");
    let c = std::ffi::CString::new(test.path("bad.csv").as_os_str().as_encoded_bytes())
        .expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    test.idprune(["validate", "big.yaml"])
        .run()
        .code(1)
        .stderr_has("is not a regular file (a named pipe)");
}

/// Writes `name` in `test`: `head`, then `fill` repeated until the file is `bytes` long, then
/// `tail`.
fn csv_file(test: &Test, name: &str, head: &str, fill: &[u8], bytes: usize, tail: &str) {
    let mut text = head.as_bytes().to_vec();
    while text.len() < bytes {
        text.extend_from_slice(fill);
    }
    text.extend_from_slice(tail.as_bytes());
    std::fs::write(test.path(name), text).expect("writing a CSV");
}

#[test]
fn a_csv_record_over_the_cap_is_refused_at_its_line_in_bounded_memory() {
    const MIB: usize = 1 << 20;
    let test = Test::offline();
    let manifest = |name: &str| {
        test.write(
            &format!("{name}.yaml"),
            &format!(
                "version: 1\nspace: spa_test\nregion: us\nreason: wide\nsources:\n  - csv: {name}.csv\n    profile_column: user_id\n    remove_columns: [email]\n"
            ),
        );
    };
    // One endless header line (a sparse file of zeros, no line break): a parser that holds a
    // whole record would hold all 256 MiB.
    std::fs::File::create(test.path("endless.csv"))
        .and_then(|f| f.set_len(256 * MIB as u64))
        .expect("a sparse CSV");
    manifest("endless");
    let init = [
        "init",
        "--from-csv",
        "endless.csv",
        "--profile-column",
        "user_id",
        "--remove-column",
        "email",
        "-o",
        "endless-init.yaml",
    ];
    for args in [&["validate", "endless.yaml"][..], &init[..]] {
        let run = run_measured(&test, "http://127.0.0.1:9", args);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("endless.csv:1:1: the header line is over the 1048576-byte")
                || run
                    .stderr
                    .contains("`endless.csv` line 1: the header line is over the 1048576-byte"),
            "{}",
            run.stderr
        );
        assert!(run.peak_rss_mb < RSS_CAP_MB, "{} MB", run.peak_rss_mb);
    }
    // A row of 2 MiB on line 3; and a quote left open on line 2 that runs on over short lines.
    let head = "user_id,email\nu_1,a@x.com\nu_2,";
    csv_file(&test, "long.csv", head, b"x", 2 * MIB, "\nu_3,c@x.com\n");
    manifest("long");
    csv_file(
        &test,
        "open.csv",
        "user_id,email\nu_1,\"a@x.com\n",
        b"x\n",
        2 * MIB,
        "",
    );
    manifest("open");
    for (name, line) in [("long", 3), ("open", 2)] {
        test.idprune(["validate", &format!("{name}.yaml")])
            .run()
            .code(1)
            .stderr_has(&format!(
                "{name}.csv:{line}:1: this row is over the 1048576-byte (1 MiB) limit for one CSV record"
            ));
        test.idprune([
            "init",
            "--from-csv",
            &format!("{name}.csv"),
            "--profile-column",
            "user_id",
            "--remove-column",
            "email",
            "-o",
            &format!("{name}-init.yaml"),
        ])
        .run()
        .code(1)
        .stderr_has(&format!("`{name}.csv` line {line}: this row is over"));
    }
    // A row just under the cap is read: its cell is refused as a value, not the record.
    csv_file(&test, "under.csv", head, b"x", MIB - 100, "\n");
    manifest("under");
    let out = test.idprune(["validate", "under.yaml"]).run().code(1);
    assert!(
        out.stderr.contains("under.csv:3:2:")
            && out.stderr.contains("over the 1024-byte limit for a value"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("CSV record"), "{}", out.stderr);
}

/// The unprivileged user a root test runs idprune as (`nobody` on most systems).
const NOBODY: u32 = 65534;

/// Gives every file under `dir` (and `dir`) to `id`.
fn chown_tree(dir: &std::path::Path, id: u32) {
    std::os::unix::fs::chown(dir, Some(id), Some(id)).expect("chown");
    for entry in std::fs::read_dir(dir).expect("listing the test's directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            chown_tree(&path, id);
        } else {
            std::os::unix::fs::lchown(&path, Some(id), Some(id)).expect("chown");
        }
    }
}

#[test]
fn a_read_only_state_file_is_named_with_the_fix() {
    let test = crate::kills::fleet(2, &[]);
    let state = test.path("big.state.db");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o400))
        .expect("chmod");
    let apply = test.idprune(["apply", "big.state.db", "--yes", "--rate", "0"]);
    // Root writes a file whatever its mode: as root, the test gives its folder to `nobody` and
    // runs idprune as `nobody`, for whom the 0400 file is read-only as for any owner.
    // SAFETY: geteuid has no preconditions.
    let apply = if unsafe { libc::geteuid() } == 0 {
        chown_tree(&test.path(""), NOBODY);
        apply.run_as(NOBODY)
    } else {
        apply
    };
    apply
        .run()
        .code(1)
        .stderr_has("state file `big.state.db` is read-only for this user")
        .stderr_has("chmod u+w big.state.db");
    assert_eq!(test.emu().stats().deletes, 0);
    assert_eq!(
        test.item_states("big.state.db")
            .get("done")
            .copied()
            .unwrap_or(0),
        0,
        "nothing was journaled"
    );
}
