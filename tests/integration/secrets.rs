//! The access token never shows: not in any command's output, not in the state file's bytes.

use crate::harness::{Output, TOKEN, Test};
use crate::plan_apply::mixed_test;

#[track_caller]
fn no_token(out: &Output, token: &str) {
    assert!(
        !out.all().contains(token),
        "the token leaked into the output\n{}",
        out.all()
    );
}

/// Every file of the state database (`.state.db`, `-wal`, `-shm`, `-journal`), as bytes.
fn state_bytes(test: &Test, state: &str) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| format!("{state}{suffix}"))
        .filter(|name| test.path(name).exists())
        .map(|name| {
            let bytes = std::fs::read(test.path(&name)).expect("reading a state file");
            (name, bytes)
        })
        .collect()
}

#[track_caller]
fn no_token_in_state(test: &Test, state: &str, token: &str) {
    let files = state_bytes(test, state);
    assert!(!files.is_empty());
    for (name, bytes) in files {
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "the token is in `{name}`");
    }
}

#[test]
fn the_token_appears_in_no_output_and_not_in_the_state_file() {
    let test = mixed_test();
    let mut outputs = vec![
        test.idprune(["validate", "m.yaml"]).run().ok(),
        test.idprune(["plan", "m.yaml", "--detailed-exitcode"])
            .run()
            .code(2),
    ];
    // While the plan is the only writer, and again after each step.
    no_token_in_state(&test, "m.state.db", TOKEN);
    let digest = test.digest("m.state.db");
    for format in ["text", "markdown", "json"] {
        outputs.push(
            test.idprune(["show", "m.state.db", "--format", format, "--reveal"])
                .run()
                .ok(),
        );
    }
    outputs.push(
        test.idprune(["apply", "m.state.db", "--approve", &digest])
            .run()
            .ok(),
    );
    no_token_in_state(&test, "m.state.db", TOKEN);
    for format in ["text", "json"] {
        outputs.push(
            test.idprune(["status", "m.state.db", "--format", format, "--reveal"])
                .run()
                .ok(),
        );
    }
    outputs.push(test.idprune(["verify", "m.state.db"]).run().ok());
    no_token_in_state(&test, "m.state.db", TOKEN);
    for out in &outputs {
        no_token(out, TOKEN);
    }
}

#[test]
fn a_wrong_token_is_not_echoed_either() {
    let test = mixed_test();
    let wrong = "wrong-token-3c9d1e77";
    let out = test.idprune(["plan", "m.yaml"]).token(wrong).run().code(1);
    no_token(&out, wrong);
    let digest = test.plan("m.yaml", "m.state.db");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .token(wrong)
        .run()
        .code(1);
    no_token(&out, wrong);
    no_token_in_state(&test, "m.state.db", wrong);
}

#[test]
fn token_file_and_stdin_work_and_stay_secret() {
    let test = mixed_test();
    let path = test.write("token.txt", &format!("{TOKEN}\n"));
    let out = test
        .idprune(["plan", "m.yaml", "--token-file"])
        .env("SEGMENT_ACCESS_TOKEN", "")
        .arg(&path)
        .run()
        .ok();
    no_token(&out, TOKEN);
    let digest = test.digest("m.state.db");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest, "--token-stdin"])
        .env("SEGMENT_ACCESS_TOKEN", "")
        .stdin(TOKEN)
        .run()
        .ok();
    no_token(&out, TOKEN);
    assert_eq!(test.emu().stats().deleted.len(), 10);
}

/// A one-shot HTTP server on loopback that answers every request with `302` to `location` and
/// records the raw requests it got.
fn redirecting_server(location: String) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buf = vec![0u8; 16 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn a_redirect_is_not_followed_with_the_token() {
    let test = mixed_test();
    // The redirect points at the real emulator: following it would "work", with credentials.
    let (url, requests) = redirecting_server(format!("{}/v1/elsewhere", test.emu().url()));
    let out = test
        .idprune(["plan", "m.yaml", "--api-url", &url])
        .run()
        .code(1);
    no_token(&out, TOKEN);
    // Said as a redirect, not as "302 unknown".
    assert!(
        out.stderr.contains("302 redirect") && out.stderr.contains("does not follow"),
        "{}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists());
    let got: Vec<String> = requests.try_iter().collect();
    assert!(!got.is_empty(), "the redirecting server was asked");
    assert_eq!(
        test.emu().stats().requests,
        0,
        "the redirect was followed to the emulator"
    );
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_before_sending() {
    let test = mixed_test();
    // 127.0.0.2 is loopback, so use a documentation address (TEST-NET-1): never contacted,
    // since the refusal comes before any connection.
    for url in ["http://192.0.2.1:9", "http://example.invalid"] {
        let out = test
            .idprune(["plan", "m.yaml", "--api-url", url])
            .run()
            .code(1)
            .stderr_has("--insecure");
        no_token(&out, TOKEN);
        let out = test
            .idprune(["validate", "m.yaml"])
            .env("IDPRUNE_API_URL", url)
            .run()
            .ok();
        no_token(&out, TOKEN);
    }
    assert!(!test.path("m.state.db").exists());
    let digest = test.plan("m.yaml", "m.state.db");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .env("IDPRUNE_API_URL", "http://192.0.2.1:9")
        .run()
        .code(1)
        .stderr_has("error: ")
        .stderr_has("--insecure");
    no_token(&out, TOKEN);
    assert_eq!(test.emu().stats().deletes, 0);
}

#[test]
fn core_dumps_are_off_while_idprune_runs() {
    // An apply whose requests take 2 s holds the token in memory meanwhile.
    let mut test = crate::kills::fleet(4, &[]);
    test.restart_emulator(&[
        "--space-rate",
        "0",
        "--profile-rate",
        "0",
        "--latency-ms",
        "2000",
    ]);
    // Whatever this machine's default, the child starts with dumps allowed up to the hard
    // limit (it inherits ours), so only idprune itself can turn them off.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reading and setting this test process's own core limit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_CORE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_CORE, &limit), 0);
    }
    let mut apply = test
        .idprune(["apply", "big.state.db", "--yes", "--rate", "0"])
        .spawn();
    test.wait_for_items("big.state.db", "a request in flight", |c| {
        c.get("in_flight").copied().unwrap_or(0) >= 1
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", apply.id()))
        .expect("reading the child's limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("a core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        fields[4..6],
        ["0", "0"],
        "soft and hard core limits: {core}"
    );
    crate::harness::wait_bounded(&mut apply);
}
