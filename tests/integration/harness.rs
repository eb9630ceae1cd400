//! The test harness: the real `idprune` binary against the real emulator (`idprune emulator`)
//! on loopback, each test in its own temporary directory with its own emulator on port 0.
//!
//! `Test::new(seed)` starts an emulator seeded from JSON; `test.write(..)` puts a manifest or a
//! CSV into the test's directory; `test.idprune([..]).run()` runs a command there with
//! `SEGMENT_ACCESS_TOKEN` and `IDPRUNE_API_URL` set and returns its [`Output`]. The emulator's
//! admin endpoints are read with a few lines of HTTP/1.1 over `std::net::TcpStream`, and the
//! state file with rusqlite, so tests assert on what the API saw and on the journal, not only
//! on printed text.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_idprune");
/// The token every test's emulator accepts unless a test says otherwise.
pub const TOKEN: &str = "itest-token-5f1e0c9a";
/// How long any wait on a child process or on progress may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The interval between two polls of a state file or of the emulator's statistics.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// A running `idprune emulator`, killed when dropped.
pub struct Emulator {
    child: Child,
    addr: SocketAddr,
}

impl Emulator {
    /// Starts `idprune emulator --seed SEED --listen 127.0.0.1:0 EXTRA...` and waits for its
    /// `listening on http://127.0.0.1:PORT` line.
    pub fn start(seed: &Path, extra: &[&str]) -> Emulator {
        Emulator::start_at(seed, "127.0.0.1:0", extra)
    }

    /// [`Emulator::start`] listening on `listen` (a loopback address).
    pub fn start_at(seed: &Path, listen: &str, extra: &[&str]) -> Emulator {
        // Its stderr goes to a file beside the seed, shown when it fails to start.
        let log_path = seed.with_extension("emulator.log");
        let log = std::fs::File::create(&log_path).expect("creating the emulator's log");
        let mut child = Command::new(BIN)
            .arg("emulator")
            .arg("--seed")
            .arg(seed)
            .args(["--listen", listen])
            .args(extra)
            .env("IDPRUNE_EMULATOR_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawning the emulator");
        let stdout = child.stdout.take().expect("the emulator's stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the emulator's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("unexpected first emulator line {line:?}; its stderr:\n{log}")
            })
            .parse::<SocketAddr>()
            .expect("the emulator prints a socket address");
        assert!(addr.ip().is_loopback(), "the emulator must bind loopback");
        Emulator { child, addr }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /__emulator/stats`.
    pub fn stats(&self) -> Stats {
        let (status, body) = http(self.addr, "GET", "/__emulator/stats", "");
        assert_eq!(status, 200, "stats: {body}");
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// `GET /__emulator/arrivals`: when the space limiter accepted and refused requests (only
    /// while the emulator runs with a space limit).
    pub fn arrivals(&self) -> Arrivals {
        let (status, body) = http(self.addr, "GET", "/__emulator/arrivals", "");
        assert_eq!(status, 200, "arrivals: {body}");
        serde_json::from_str(&body).expect("arrivals JSON")
    }

    /// `GET /__emulator/profiles`, as segment id → live `type:id` identifiers.
    pub fn profiles(&self) -> BTreeMap<String, BTreeSet<String>> {
        #[derive(Deserialize)]
        struct Snapshot {
            profiles: Vec<SnapshotProfile>,
        }
        #[derive(Deserialize)]
        struct SnapshotProfile {
            segment_id: String,
            identifiers: Vec<String>,
        }
        let (status, body) = http(self.addr, "GET", "/__emulator/profiles", "");
        assert_eq!(status, 200, "profiles: {body}");
        let snapshot: Snapshot = serde_json::from_str(&body).expect("profiles JSON");
        snapshot
            .profiles
            .into_iter()
            .map(|p| (p.segment_id, p.identifiers.into_iter().collect()))
            .collect()
    }

    /// `POST /__emulator/rebuild`: restores every deleted identifier (`None`, a space rebuilt
    /// from its sources) or only the given `type:id`s (a replay); returns how many came back.
    pub fn rebuild(&self, only: Option<&[&str]>) -> u64 {
        let body = only
            .map(|ids| serde_json::json!({ "identifiers": ids }).to_string())
            .unwrap_or_default();
        let (status, reply) = http(self.addr, "POST", "/__emulator/rebuild", &body);
        assert_eq!(status, 200, "rebuild: {reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).expect("rebuild JSON");
        v["restored"].as_u64().expect("restored count")
    }

    /// Deletes `kind:id` from the profile of `user_id:USER_ID` through the real `/v1` delete
    /// route (as Segment's documentation shows it), to change a profile between two plans;
    /// returns the status.
    pub fn delete_identifier(&self, user_id: &str, kind: &str, id: &str) -> u16 {
        use base64::Engine as _;
        let body = serde_json::json!({ "delete_external_ids": [{ "type": kind, "id": id }] });
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"));
        let path = format!(
            "/v1/spaces/spa_test/collections/users/profiles/user_id:{user_id}/external_ids/delete"
        );
        let (status, _) = http_with(
            self.addr,
            "POST",
            &path,
            &format!("Authorization: Basic {auth}\r\n"),
            &body.to_string(),
        );
        status
    }

    /// `POST /__emulator/token`: from now on only `token` is accepted.
    pub fn set_token(&self, token: &str) {
        let body = serde_json::json!({ "token": token }).to_string();
        let (status, reply) = http(self.addr, "POST", "/__emulator/token", &body);
        assert_eq!(status, 200, "set token: {reply}");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange with `Connection: close`; returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_with(addr, method, path, "", body)
}

/// [`http`] with extra header lines (each ending `\r\n`).
fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connecting to the emulator");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("setting a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("sending the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("reading the emulator's answer");
    let text = String::from_utf8(raw).expect("the emulator answers UTF-8");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("an HTTP answer has a head and a body");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this tiny client reads only content-length bodies"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

/// `/__emulator/stats`.
#[derive(Debug, Deserialize)]
pub struct Stats {
    /// Every `/v1` request.
    pub requests: u64,
    /// Requests to the delete route.
    pub deletes: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Every applied delete, in order.
    pub deleted: Vec<Deleted>,
    /// Injected faults: 5xx, hangs, malformed bodies, lost acknowledgements.
    #[serde(default)]
    pub faults: u64,
    /// Every delete request past authentication that the emulator answered, in order.
    #[serde(default)]
    pub delete_attempts: Vec<Attempt>,
    /// Requests by the identifier type their path names the profile by.
    #[serde(default)]
    pub path_types: BTreeMap<String, u64>,
}

/// `/__emulator/arrivals`: microseconds since the emulator started, as its space limiter
/// judged each request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Arrivals {
    /// Accepted requests.
    pub accepted_us: Vec<u64>,
    /// Requests answered 429.
    pub refused_us: Vec<u64>,
}

impl Arrivals {
    /// Every arrival as `(at_us, refused)`, in time order.
    pub fn all(&self) -> Vec<(u64, bool)> {
        let mut all: Vec<(u64, bool)> = self
            .accepted_us
            .iter()
            .map(|&t| (t, false))
            .chain(self.refused_us.iter().map(|&t| (t, true)))
            .collect();
        all.sort_unstable();
        all
    }
}

/// The most of `times` (microseconds, sorted) inside any window of `window_us` microseconds.
pub fn busiest_window(times: &[u64], window_us: u64) -> usize {
    let mut start = 0;
    let mut best = 0;
    for (end, &t) in times.iter().enumerate() {
        while t - times[start] >= window_us {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// One delete request the emulator answered (`/__emulator/stats` `delete_attempts`).
#[derive(Clone, Debug, Deserialize)]
pub struct Attempt {
    /// The `user_id` the request addressed.
    pub user_id: String,
    /// The body's identifier type, when it named one.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The body's identifier value, when it named one.
    pub id: Option<String>,
    /// The status the client was sent (500 for a lost acknowledgement).
    pub status: u16,
}

impl Attempt {
    /// The target as a [`Deleted`] (missing body fields as empty strings).
    pub fn target(&self) -> Deleted {
        Deleted {
            user_id: self.user_id.clone(),
            kind: self.kind.clone().unwrap_or_default(),
            id: self.id.clone().unwrap_or_default(),
        }
    }
}

/// One applied delete, as the emulator recorded it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deleted {
    /// The `user_id` the request addressed the profile by.
    pub user_id: String,
    /// The deleted identifier's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The deleted identifier's value.
    pub id: String,
}

impl Deleted {
    /// `Deleted { user_id, kind, id }` from string slices.
    pub fn new(user_id: &str, kind: &str, id: &str) -> Deleted {
        Deleted {
            user_id: user_id.into(),
            kind: kind.into(),
            id: id.into(),
        }
    }
}

impl Stats {
    /// The applied deletes as a set. (The emulator records a delete only when it removed the
    /// identifier, and a removed identifier cannot be removed again, so this list never holds
    /// one twice: repeats show in [`Stats::resent`], which counts every request.)
    pub fn deleted_set(&self) -> BTreeSet<Deleted> {
        self.deleted.iter().cloned().collect()
    }

    /// The delete requests that named an identifier an earlier request had named: every
    /// arrival counts, answered 200, 404 or anything else.
    pub fn resent(&self) -> usize {
        let distinct: BTreeSet<Deleted> =
            self.delete_attempts.iter().map(Attempt::target).collect();
        self.delete_attempts.len() - distinct.len()
    }
}

/// A test: a temporary directory and, usually, an emulator.
pub struct Test {
    dir: tempfile::TempDir,
    /// The emulator; `None` for tests that never reach the network.
    pub emulator: Option<Emulator>,
}

impl Test {
    /// A test with an emulator seeded with `seed` (JSON) and started with `emulator_flags`.
    pub fn with_emulator(seed: &serde_json::Value, emulator_flags: &[&str]) -> Test {
        let test = Test::offline();
        let path = test.write("seed.json", &seed.to_string());
        let emulator = Emulator::start(&path, emulator_flags);
        Test {
            emulator: Some(emulator),
            ..test
        }
    }

    /// A test with an emulator on default settings.
    pub fn new(seed: &serde_json::Value) -> Test {
        Test::with_emulator(seed, &[])
    }

    /// A test without an emulator.
    pub fn offline() -> Test {
        Test {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
            emulator: None,
        }
    }

    /// Stops the emulator and starts a fresh one from the same seed on the same address with
    /// `emulator_flags`: plan against a healthy server, then apply against a faulty one (the
    /// API origin, which the plan seals, stays the same). The profiles start from the seed
    /// again.
    pub fn restart_emulator(&mut self, emulator_flags: &[&str]) {
        let old = self.emulator.take().expect("this test started an emulator");
        let listen = old.addr.to_string();
        drop(old);
        let seed = self.path("seed.json");
        self.emulator = Some(Emulator::start_at(&seed, &listen, emulator_flags));
    }

    /// The emulator (panics for offline tests).
    pub fn emu(&self) -> &Emulator {
        self.emulator
            .as_ref()
            .expect("this test started an emulator")
    }

    /// A path inside the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the test's directory and returns the path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// The contents of `name` in the test's directory.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_else(|e| panic!("reading test file {name}: {e}"))
    }

    /// `idprune ARGS` in the test's directory, with the emulator's URL and the right token.
    pub fn idprune<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut command = Command::new(BIN);
        command
            .args(args.into_iter().map(Into::into))
            .current_dir(self.dir.path())
            .env_remove("SEGMENT_ACCESS_TOKEN")
            .env_remove("IDPRUNE_API_URL")
            .env_remove("IDPRUNE_EMULATOR_TOKEN")
            // A run records its CI context: none unless a test sets one.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("IDPRUNE_RUN_CONTEXT")
            .env("SEGMENT_ACCESS_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(emulator) = &self.emulator {
            command.env("IDPRUNE_API_URL", emulator.url());
        }
        Run {
            command,
            stdin: None,
        }
    }

    /// Plans `manifest` into `state` and returns the sealed digest, checking the exit code.
    pub fn plan(&self, manifest: &str, state: &str) -> String {
        self.idprune(["plan", manifest, "-o", state]).run().ok();
        self.digest(state)
    }

    /// The digest sealed in `state`, read with `show --format json`.
    pub fn digest(&self, state: &str) -> String {
        let json = self.show_json(state);
        json["digest"]
            .as_str()
            .expect("show --format json has a digest")
            .to_owned()
    }

    /// `show STATE --format json` (redacted), parsed.
    pub fn show_json(&self, state: &str) -> serde_json::Value {
        let out = self.idprune(["show", state, "--format", "json"]).run().ok();
        serde_json::from_str(&out.stdout).expect("show --format json prints JSON")
    }

    /// Opens a state file read-only, to look at it: the file and its `-wal` stay exactly as
    /// the last idprune left them. (A read-write connection replays the WAL into the file and
    /// deletes the `-wal` when it closes, so after a `kill -9` the resumed idprune would meet
    /// a file the test had repaired, not what the crash left.)
    pub fn db(&self, state: &str) -> rusqlite::Connection {
        let db = rusqlite::Connection::open_with_flags(
            self.path(state),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("opening the state file read-only");
        db.busy_timeout(Duration::from_secs(5))
            .expect("setting the busy timeout");
        db
    }

    /// Opens a state file read-write, for the tests that edit it on purpose (tampering, a
    /// planted lock row).
    pub fn edit_db(&self, state: &str) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(state)).expect("opening the state file")
    }

    /// Item counts by state, straight from the state file (read-only).
    pub fn item_states(&self, state: &str) -> BTreeMap<String, u64> {
        let db = self.db(state);
        let mut stmt = db
            .prepare("SELECT state, count(*) FROM items GROUP BY state")
            .expect("preparing the count");
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))
            .expect("counting items")
            .collect::<Result<_, _>>()
            .expect("reading counts")
    }

    /// The `(user_id, type, id)` of every planned `delete` item.
    pub fn planned_deletes(&self, state: &str) -> BTreeSet<Deleted> {
        self.items_where(state, "action = 'delete'")
    }

    /// The `(user_id, type, id)` of the items matching the SQL condition `filter`.
    pub fn items_where(&self, state: &str, filter: &str) -> BTreeSet<Deleted> {
        let db = self.db(state);
        let mut stmt = db
            .prepare(&format!(
                "SELECT user_id, id_type, id_value FROM items WHERE {filter}"
            ))
            .expect("preparing the select");
        stmt.query_map([], |r| {
            Ok(Deleted {
                user_id: r.get(0)?,
                kind: r.get(1)?,
                id: r.get(2)?,
            })
        })
        .expect("selecting items")
        .collect::<Result<_, _>>()
        .expect("reading items")
    }

    /// Polls `done(states)` on the item counts until it holds; fails the test after [`PATIENCE`].
    pub fn wait_for_items(
        &self,
        state: &str,
        what: &str,
        done: impl Fn(&BTreeMap<String, u64>) -> bool,
    ) {
        let start = Instant::now();
        loop {
            // The apply may hold a write lock for a moment; a busy read just polls again.
            if self.path(state).exists()
                && let Ok(counts) = self.try_item_states(state)
                && done(&counts)
            {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
            std::thread::sleep(POLL_EVERY);
        }
    }

    fn try_item_states(&self, state: &str) -> rusqlite::Result<BTreeMap<String, u64>> {
        let db = rusqlite::Connection::open_with_flags(
            self.path(state),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        db.busy_timeout(Duration::from_secs(5))?;
        let mut stmt = db.prepare("SELECT state, count(*) FROM items GROUP BY state")?;
        let counts = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(counts)
    }
}

/// A command about to run.
pub struct Run {
    command: Command,
    stdin: Option<String>,
}

impl Run {
    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.command.env(key, value);
        self
    }

    /// Sends this token instead of the right one.
    pub fn token(self, token: &str) -> Run {
        self.env("SEGMENT_ACCESS_TOKEN", token)
    }

    /// Runs in `dir` instead of the test's directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.command.current_dir(dir);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Run {
        self.command.arg(arg);
        self
    }

    /// Runs as the user and group `id` (the test process must be root to switch), with no
    /// supplementary groups: a root test can then meet what a file's mode refuses.
    pub fn run_as(mut self, id: u32) -> Run {
        std::os::unix::process::CommandExt::uid(&mut self.command, id);
        std::os::unix::process::CommandExt::gid(&mut self.command, id);
        self
    }

    /// Feeds `text` to standard input (which is otherwise empty: no terminal).
    pub fn stdin(mut self, text: &str) -> Run {
        self.stdin = Some(text.to_owned());
        self
    }

    /// Runs to completion and captures the outcome.
    pub fn run(mut self) -> Output {
        let stdin = self.stdin.take();
        let out = output_bounded(&mut self.command, stdin.as_deref().map(str::as_bytes));
        Output {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs with standard output a pipe whose reader is already gone, as when `| head` has
    /// read its fill: every write to stdout fails with `EPIPE`. With `merge_stderr`, stderr is
    /// that pipe too (`2>&1 | head`) and the returned `stderr` is empty; otherwise it is
    /// captured.
    pub fn run_into_closed_pipe(mut self, merge_stderr: bool) -> Output {
        let (reader, writer) = std::io::pipe().expect("creating a pipe");
        drop(reader);
        if merge_stderr {
            let err = writer.try_clone().expect("cloning the pipe's writer");
            self.command.stderr(err);
        }
        self.command.stdout(writer);
        let out = output_bounded(&mut self.command, None);
        Output {
            code: out.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs the command under `bash -o pipefail` followed by `tail` (say `2>&1 | head -1`),
    /// as a CI step does, with the same environment and directory.
    pub fn through_bash(self, tail: &str) -> Output {
        let c = &self.command;
        let mut bash = Command::new("bash");
        bash.arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(format!("\"$0\" \"$@\" {tail}"))
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => bash.env(k, v),
                None => bash.env_remove(k),
            };
        }
        if let Some(dir) = c.get_current_dir() {
            bash.current_dir(dir);
        }
        let out = output_bounded(bash.stdout(Stdio::piped()).stderr(Stdio::piped()), None);
        Output {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Starts without waiting, stderr into the file `stderr` (stdout discarded), for tests that
    /// interrupt a run once it has said something.
    pub fn spawn_logged(mut self, stderr: &Path) -> Child {
        let log = std::fs::File::create(stderr).expect("creating a log file");
        self.command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning idprune")
    }

    /// Starts without waiting (output discarded), for tests that interrupt a run.
    pub fn spawn(mut self) -> Child {
        self.command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning idprune")
    }
}

/// Polls `path` (a log file a child writes) until it contains `needle`; fails the test after
/// [`PATIENCE`].
pub fn wait_for_text(path: &Path, needle: &str) {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {needle:?} in `{}`",
            path.display()
        );
        std::thread::sleep(POLL_EVERY);
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, printing both streams when it differs.
    #[track_caller]
    pub fn code(self, expected: i32) -> Output {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts exit 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        self.code(0)
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Output {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// Both streams, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Reports that `test` could not make its proof here, for `reason`. The line goes straight to
/// the process's stderr (libtest captures only the print macros), as
/// `test-skipped: TEST: REASON`, and `.ci/run` counts such a test as skipped, not passed.
pub fn skipped(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "test-skipped: {test}: {reason}");
}

/// Runs `command` to its end like `Command::output`, with `stdin` written to it (else no
/// input), but within [`PATIENCE`]: a child that hangs is killed and fails the test instead
/// of hanging the suite. Standard output and error are captured where the command pipes them
/// (`Stdio::piped()`); otherwise they come back empty.
pub fn output_bounded(command: &mut Command, stdin: Option<&[u8]>) -> std::process::Output {
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", command.get_program()));
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(bytes)
            .expect("writing to the child's stdin");
    }
    // Drained on threads, so a child that fills a pipe cannot block while we wait.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_bounded(&mut child);
    std::process::Output {
        status,
        stdout: stdout.join().expect("reading stdout"),
        stderr: stderr.join().expect("reading stderr"),
    }
}

/// Waits for a child with a bound, killing it and failing the test when it takes too long.
pub fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("polling a child") {
            return status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// A seed of profiles given as `(segment_id, ["type:id", ...])`.
pub fn seed(profiles: &[(&str, &[&str])]) -> serde_json::Value {
    serde_json::json!({
        "space": "spa_test",
        "profiles": profiles
            .iter()
            .map(|(sid, ids)| serde_json::json!({"segment_id": sid, "identifiers": ids}))
            .collect::<Vec<_>>(),
    })
}

/// The identifiers of a seed, as [`Emulator::profiles`] returns them.
pub fn seed_profiles(seed: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    seed["profiles"]
        .as_array()
        .expect("seed profiles")
        .iter()
        .map(|p| {
            let ids = p["identifiers"]
                .as_array()
                .expect("identifiers")
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).unwrap_or_else(|| {
                        format!(
                            "{}:{}",
                            i["type"].as_str().expect("type"),
                            i["id"].as_str().expect("id")
                        )
                    })
                })
                .collect();
            (
                p["segment_id"].as_str().expect("segment_id").to_owned(),
                ids,
            )
        })
        .collect()
}

/// `profiles` with the identifiers of `deleted` removed from whichever profile holds them.
pub fn without(
    mut profiles: BTreeMap<String, BTreeSet<String>>,
    deleted: &BTreeSet<Deleted>,
) -> BTreeMap<String, BTreeSet<String>> {
    for d in deleted {
        let key = format!("{}:{}", d.kind, d.id);
        let owner = profiles
            .values_mut()
            .find(|ids| ids.contains(&key))
            .unwrap_or_else(|| panic!("no seeded profile holds {key}"));
        assert!(
            owner.contains(&format!("user_id:{}", d.user_id)),
            "{key} was deleted through user_id {:?}, which is not on its profile",
            d.user_id
        );
        owner.remove(&key);
    }
    profiles
}
