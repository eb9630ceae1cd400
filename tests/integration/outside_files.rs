//! Every file idprune is named from outside (a receipt, a token file, a key file, a CSV source,
//! `init`'s CSV, a manifest, a state file), given as a named pipe, as a device (a committed
//! symbolic link to `/dev/zero`) or over its size limit: each is refused at once with exit 1,
//! a message naming the file and what is wrong with it, and no request sent. Never waited on,
//! never read without limit.

use std::path::Path;

use crate::harness::Test;

/// What a file named from outside is made into.
#[derive(Clone, Copy, Debug)]
enum Odd {
    /// A named pipe with no writer: an open that blocks would hang.
    Fifo,
    /// A symbolic link to `/dev/zero`: a read that does not stop would fill memory.
    Device,
    /// A sparse file of this many bytes: one byte over the limit of its kind.
    Oversized(u64),
}

fn make(test: &Test, name: &str, odd: Odd) {
    let path = test.path(name);
    match odd {
        Odd::Fifo => mkfifo(&path),
        Odd::Device => std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink"),
        Odd::Oversized(bytes) => std::fs::File::create(&path)
            .and_then(|f| f.set_len(bytes))
            .expect("a sparse file"),
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A manifest like the fleet's, reading its CSV from `csv`.
fn manifest_reading(test: &Test, name: &str, csv: &str) {
    test.write(
        name,
        &format!(
            "version: 1\nspace: spa_test\nregion: us\nreason: fleet\nsources:\n  - csv: {csv}\n    profile_column: user_id\n    remove_columns: [email]\n"
        ),
    );
}

/// The limits the oversized cases are one byte over (the crate's constants).
const RECEIPT_MAX: u64 = idprune::receipt::MAX_RECEIPT_BYTES;
const TOKEN_MAX: u64 = idprune::ops::api::MAX_TOKEN_BYTES;
const KEY_MAX: u64 = idprune::ops::MAX_KEY_FILE_BYTES;
const MANIFEST_MAX: u64 = idprune::manifest::MAX_MANIFEST_BYTES;
const CSV_RECORD_MAX: u64 = idprune::manifest::MAX_CSV_RECORD_BYTES;

#[test]
fn every_file_named_from_outside_refuses_a_pipe_a_device_and_an_oversized_file() {
    let test = crate::kills::fleet(2, &[]);
    test.write("good.key", "a-fingerprint-key\n");
    let cases: [(&str, Odd, &str); 3] = [
        ("fifo", Odd::Fifo, "is not a regular file (a named pipe)"),
        ("dev", Odd::Device, "is not a regular file (a device)"),
        ("big", Odd::Oversized(0), "over the"),
    ];
    let mut checked = 0;
    for (tag, odd, says) in cases {
        // (kind of file, its limit, the command that reads it, what the message names)
        let kinds: [(&str, u64); 6] = [
            ("receipt", RECEIPT_MAX),
            ("token", TOKEN_MAX),
            ("key", KEY_MAX),
            ("csv", CSV_RECORD_MAX),
            ("init", CSV_RECORD_MAX),
            ("manifest", MANIFEST_MAX),
        ];
        for (kind, max) in kinds {
            let odd = match odd {
                Odd::Oversized(_) => Odd::Oversized(max + 1),
                other => other,
            };
            let name = format!("{tag}-{kind}");
            make(&test, &name, odd);
            let (args, named): (Vec<String>, String) = match kind {
                "receipt" => (
                    args(&["apply", "big.state.db", "--yes", "--receipt", &name]),
                    format!("receipt `{name}`"),
                ),
                "token" => (
                    args(&["apply", "big.state.db", "--yes", "--token-file", &name]),
                    format!("token file `{name}`"),
                ),
                "key" => (
                    args(&["purge", "big.state.db", "--key-file", &name]),
                    format!("key file `{name}`"),
                ),
                "csv" => {
                    let manifest = format!("{name}.yaml");
                    manifest_reading(&test, &manifest, &name);
                    let named = match odd {
                        Odd::Oversized(_) => format!("{name}:1:1: the header line"),
                        Odd::Device => format!("`csv` path `{name}`"),
                        Odd::Fifo => format!("CSV source `{name}`"),
                    };
                    (args(&["validate", &manifest]), named)
                }
                "init" => {
                    let named = match odd {
                        Odd::Oversized(_) => format!("`{name}` line 1: the header line"),
                        _ => format!("CSV `{name}`"),
                    };
                    (
                        args(&[
                            "init",
                            "--from-csv",
                            &name,
                            "--profile-column",
                            "user_id",
                            "--remove-column",
                            "email",
                            "-o",
                            &format!("{name}.yaml"),
                        ]),
                        named,
                    )
                }
                "manifest" => (
                    args(&["validate", &name]),
                    format!("{name}:1:1: the manifest"),
                ),
                _ => unreachable!("the kinds above"),
            };
            let says = match (kind, odd) {
                // The manifest's one message for every file that is not a regular one.
                ("manifest", Odd::Fifo | Odd::Device) => "is not a regular file",
                // A link out of the manifest's folder is refused before it is opened.
                ("csv", Odd::Device) => "leads outside the manifest's directory",
                _ => says,
            };
            let out = test.idprune(&args).run();
            let what = format!("{kind} as {odd:?}: idprune {}", args.join(" "));
            assert_eq!(out.code, Some(1), "{what}\n{}", out.stderr);
            assert!(
                out.stderr.contains(&named),
                "{what}: names the file\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains(says),
                "{what}: says {says:?}\n{}",
                out.stderr
            );
            checked += 1;
        }
        // The state file, by every command that opens one: refused as not a regular file.
        // (A state file has no size limit: a plan of a million items is hundreds of MB, and
        // idprune streams it; what a server can make it grow by is capped in `hostile`.)
        if !matches!(odd, Odd::Oversized(_)) {
            let state = format!("{tag}.state.db");
            make(&test, &state, odd);
            for command in [
                args(&["apply", &state, "--yes"]),
                args(&["show", &state]),
                args(&["status", &state]),
                args(&["verify", &state]),
                args(&["guard", &state, "--archive", "bad.csv"]),
                args(&["report", &state, "--downstream"]),
                args(&["purge", &state, "--key-file", "good.key"]),
            ] {
                let out = test.idprune(&command).run();
                let what = format!("idprune {}", command.join(" "));
                assert_eq!(out.code, Some(1), "{what}\n{}", out.stderr);
                assert!(
                    out.stderr.contains(&format!("`{state}`"))
                        && out.stderr.contains("is not a regular file"),
                    "{what}\n{}",
                    out.stderr
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 6 + 2 * 7);
    assert_eq!(test.emu().stats().deletes, 0, "nothing was deleted");
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn paths_in_suggested_shell_lines_are_quoted() {
    let test = crate::kills::fleet(2, &[]);
    std::fs::create_dir(test.path("it's plans")).expect("mkdir");
    test.idprune([
        "plan",
        "big.yaml",
        "-o",
        "it's plans/big.state.db",
        "--rate",
        "0",
    ])
    .run()
    .ok();
    let state = test.path("it's plans/big.state.db");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    // The fix is a line a person can paste: the path is one shell word.
    test.idprune(["show", "it's plans/big.state.db"])
        .run()
        .code(1)
        .stderr_has(r"run `chmod 600 'it'\''s plans/big.state.db'`");
    // A plan into a folder that does not exist: `mkdir -p` with the folder quoted.
    test.idprune([
        "plan",
        "big.yaml",
        "-o",
        "no such/x.state.db",
        "--rate",
        "0",
    ])
    .run()
    .code(1)
    .stderr_has("(`mkdir -p 'no such'`)");
}

#[test]
fn an_argument_with_a_line_break_or_an_escape_is_refused_escaped() {
    let test = crate::kills::fleet(2, &[]);
    // A committed file named to close the job summary's fence, and a value with an escape.
    let fenced = "x\n~~~~\n# all clear.state.db";
    let before = test.emu().stats().requests;
    std::fs::copy(test.path("big.state.db"), test.path(fenced)).expect("copying the state file");
    for args in [
        vec!["show", fenced],
        vec!["apply", fenced, "--yes"],
        vec!["apply", "big.state.db", "--yes", "--rate", "1\u{1b}[2J"],
    ] {
        let out = test.idprune(&args).run().code(1);
        assert!(
            out.stderr
                .contains("holds a control or invisible character (shown escaped)"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("\n~~~~"), "{}", out.stderr);
        assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
    }
    assert!(
        test.idprune(["show", fenced])
            .run()
            .stderr
            .contains(r"`x\n~~~~\n# all clear.state.db`")
    );
    assert_eq!(test.emu().stats().requests, before, "nothing was sent");
}
