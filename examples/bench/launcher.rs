//! The launcher of one child process: times it, stamps its stderr, reaps it with `wait4` for
//! its peak RSS and CPU time, and kills it past a deadline.

use super::*;

/// The launcher (`bench __launch DEADLINE_MS STDOUT STDERR WATCH PROGRAM ARGS...`): spawns
/// PROGRAM with its output in the two files, reaps it with `wait4` and prints
/// `EXIT_CODE PEAK_RSS_KIB WALL_NANOS CPU_NANOS FIRST_STDOUT_NANOS WATCH_NANOS` (-1: no output;
/// no file), with each stderr line stamped with its time (see [`copy_stamping_lines`]).
/// WATCH is a path (or `-`) whose appearance is timed: `plan` renames its sealed state file into
/// a fresh directory, so that is the moment the state file was written.
///
/// Why a separate small process: Linux folds the memory high-water mark of the process image
/// that `exec` replaces into the new program's `ru_maxrss`. Spawned straight from the bench,
/// whose in-process emulator holds every seeded profile, idprune's peak RSS would read as the
/// bench's; spawned from this fresh process it carries at most the launcher's few MB.
pub fn launch(args: &[OsString]) -> anyhow::Result<()> {
    let [deadline_ms, stdout, stderr, watch, program, rest @ ..] = args else {
        bail!("usage: bench {LAUNCHER_ARG} DEADLINE_MS STDOUT STDERR WATCH PROGRAM [ARGS...]");
    };
    let watch = (watch != "-").then(|| Path::new(watch));
    let deadline = Duration::from_millis(
        deadline_ms
            .to_str()
            .and_then(|d| d.parse().ok())
            .context("DEADLINE_MS is not a number")?,
    );
    let out_file = fs::File::create(stdout).context("creating the stdout file")?;
    let err_file = fs::File::create(stderr).context("creating the stderr file")?;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{}`", Path::new(program).display()))?;
    let out_pipe = child.stdout.take().context("the child's stdout pipe")?;
    let err_pipe = child.stderr.take().context("the child's stderr pipe")?;
    let out_copy = std::thread::spawn(move || copy_noting_first_byte(out_pipe, out_file, start));
    let err_copy = std::thread::spawn(move || copy_stamping_lines(err_pipe, err_file, start));
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (code, peak_rss_kib, cpu, appeared) = reap(pid, start, deadline, watch)?;
    let wall = start.elapsed();
    let first_out = out_copy
        .join()
        .map_err(|_| anyhow::anyhow!("the stdout copier panicked"))?
        .context("copying the child's stdout")?;
    err_copy
        .join()
        .map_err(|_| anyhow::anyhow!("the stderr copier panicked"))?
        .context("copying the child's stderr")?;
    let nanos = |d: Option<Duration>| d.map_or(-1, |d| i128::try_from(d.as_nanos()).unwrap_or(-1));
    println!(
        "{code} {peak_rss_kib} {} {} {} {}",
        wall.as_nanos(),
        cpu.as_nanos(),
        nanos(first_out),
        nanos(appeared)
    );
    Ok(())
}

/// Copies the child's stdout to its file; returns when its first byte came (idprune prints
/// the plan only after sealing it, so that is when the state file was complete).
pub fn copy_noting_first_byte(
    mut from: impl Read,
    to: fs::File,
    start: Instant,
) -> std::io::Result<Option<Duration>> {
    let mut to = std::io::BufWriter::new(to);
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = None;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| start.elapsed());
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok(first)
}

/// Copies the child's stderr to its file, each line prefixed with `[  12.345s] `, the time
/// since the child started.
pub fn copy_stamping_lines(from: impl Read, to: fs::File, start: Instant) -> std::io::Result<()> {
    let mut from = std::io::BufReader::new(from);
    let mut to = std::io::BufWriter::new(to);
    let mut line = Vec::new();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        write!(to, "[{:>8.3}s] ", start.elapsed().as_secs_f64())?;
        to.write_all(&line)?;
        // Unbuffered enough for `tail` of a live run.
        if line.ends_with(b"\n") {
            to.flush()?;
        }
    }
    to.flush()
}

/// The time stamp `copy_stamping_lines` put on the first stderr line containing `needle`.
pub fn stamped(stderr: &Path, needle: &str) -> Option<f64> {
    let text = fs::read_to_string(stderr).ok()?;
    let line = text.lines().find(|l| l.contains(needle))?;
    let stamp = line.strip_prefix('[')?.split_once("s]")?.0;
    stamp.trim().parse().ok()
}

/// User + system CPU time of this process so far.
pub fn own_cpu() -> anyhow::Result<Duration> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

pub fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Waits for `pid` with `wait4`, polling so a deadline can kill it; returns the exit code
/// (128 + signal when killed by one), the peak RSS in KiB, the CPU time (user + system), and
/// when `watch` first existed (to within one poll).
pub fn reap(
    pid: libc::pid_t,
    start: Instant,
    deadline: Duration,
    watch: Option<&Path>,
) -> anyhow::Result<(i32, u64, Duration, Option<Duration>)> {
    let mut killed = false;
    let mut appeared = None;
    loop {
        if appeared.is_none() && watch.is_some_and(Path::exists) {
            appeared = Some(start.elapsed());
        }
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid for writes.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                -1
            };
            if killed {
                bail!("killed after the {} s deadline", deadline.as_secs());
            }
            let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
            let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
            return Ok((code, rss, cpu, appeared));
        }
        if got == -1 {
            return Err(std::io::Error::last_os_error()).context("wait4 on the child");
        }
        if !killed && start.elapsed() > deadline {
            // SAFETY: sending a signal to our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(REAP_POLL);
    }
}
