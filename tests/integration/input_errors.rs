//! Bad input exits 1 before any request: the error names `file:line:column`, no state file is
//! written, the emulator sees nothing. Usage errors exit 1 too (never 2), `--help` exits 0.

use crate::harness::{Test, seed};

const HEAD: &str = "version: 1\nspace: spa_test\nregion: us\nreason: \"input errors\"\n";

/// Plans `manifest` (and validates it), expecting exit 1 with `location` on stderr.
#[track_caller]
fn rejected(files: &[(&str, &str)], location: &str) {
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    for (name, contents) in files {
        test.write(name, contents);
    }
    for command in ["validate", "plan"] {
        let out = test.idprune([command, "m.yaml"]).run().code(1);
        assert!(
            out.stderr.contains(location),
            "`{command}` does not name {location}\n{}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("error: "),
            "one error report\n{}",
            out.stderr
        );
    }
    assert!(
        !test.path("m.state.db").exists(),
        "a state file was written"
    );
    assert_eq!(test.emu().stats().requests, 0, "a request was sent");
}

#[test]
fn malformed_yaml() {
    let manifest =
        format!("{HEAD}remove:\n  - profile: [unclosed\n    identifier: email:a@x.com\n");
    rejected(&[("m.yaml", &manifest)], "m.yaml:6:");
}

#[test]
fn unknown_key() {
    let manifest = format!("{HEAD}remove:\n  - identifier: email:a@x.com\n    colour: blue\n");
    rejected(&[("m.yaml", &manifest)], "m.yaml:7:5");
}

#[test]
fn unknown_top_level_key() {
    let manifest = format!("{HEAD}colour: red\nremove:\n  - identifier: email:a@x.com\n");
    rejected(&[("m.yaml", &manifest)], "m.yaml:5:1");
}

#[test]
fn billion_laughs() {
    let mut manifest = String::from(
        "version: 1\nspace: spa_test\nregion: us\nreason: x\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for n in 1..=9 {
        let p = n - 1;
        let refs = vec![format!("*l{p}"); 10].join(", ");
        manifest.push_str(&format!("l{n}: &l{n} [{refs}]\n"));
    }
    manifest.push_str("remove: *l9\n");
    let test = Test::new(&seed(&[]));
    test.write("m.yaml", &manifest);
    let out = test.idprune(["plan", "m.yaml"]).run().code(1);
    assert!(
        out.stderr.contains("m.yaml:") && out.stderr.contains("alias"),
        "{}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists());
    assert_eq!(test.emu().stats().requests, 0);
}

#[test]
fn ragged_csv_row() {
    let manifest = format!(
        "{HEAD}sources:\n  - csv: r.csv\n    profile_column: user_id\n    remove_columns: [email]\n"
    );
    rejected(
        &[
            ("m.yaml", &manifest),
            ("r.csv", "user_id,email\nu_1,a@x.com\nu_2,b@x.com,extra\n"),
        ],
        "r.csv:3:",
    );
}

#[test]
fn csv_pin_mismatch_refuses_the_plan() {
    let manifest = format!(
        "{HEAD}sources:\n  - csv: r.csv\n    profile_column: user_id\n    remove_columns: [email]\n    sha256: {}\n",
        "0".repeat(64)
    );
    let test = Test::new(&seed(&[("use_1", &["user_id:u_1", "email:a@x.com"])]));
    test.write("m.yaml", &manifest);
    test.write("r.csv", "user_id,email\nu_1,a@x.com\n");
    let out = test.idprune(["plan", "m.yaml"]).run().code(1);
    assert!(
        out.stderr.contains("r.csv") && out.stderr.contains("sha256"),
        "the error names the CSV and its pin\n{}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists());
    assert_eq!(test.emu().stats().requests, 0);
}

#[test]
fn usage_errors_exit_1_not_2() {
    let test = Test::offline();
    for args in [
        &[][..],
        &["plan"][..],
        &["frobnicate"][..],
        &["apply", "x.state.db", "--no-such-flag"][..],
        &["plan", "m.yaml", "--format", "xml"][..],
        &["plan", "m.yaml", "--concurrency", "0"][..],
        &["show", "x.state.db", "--reveal", "--redact"][..],
        &["plan", "m.yaml", "--token", "secret"][..],
    ] {
        let out = test.idprune(args).run();
        assert_eq!(out.code, Some(1), "idprune {args:?}\n{}", out.stderr);
    }
}

#[test]
fn help_and_version_exit_0() {
    let test = Test::offline();
    for args in [
        &["--help"][..],
        &["help"][..],
        &["--version"][..],
        &["plan", "--help"][..],
        &["apply", "--help"][..],
        &["show", "-h"][..],
    ] {
        let out = test.idprune(args).run().ok();
        assert!(!out.stdout.is_empty(), "idprune {args:?} prints to stdout");
    }
    let out = test.idprune(["apply", "--help"]).run().ok();
    assert!(out.stdout.contains("Example"), "{}", out.stdout);
}

#[test]
fn a_token_flag_is_refused_with_a_manifest_that_would_plan() {
    // The manifest plans fine without the flag, so only the flag can make this exit 1.
    let test = crate::plan_apply::mixed_test();
    let out = test
        .idprune(["plan", "m.yaml", "--token", "s3cr3t-value"])
        .run()
        .code(1);
    assert!(out.stderr.contains("--token"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("s3cr3t-value") && !out.stdout.contains("s3cr3t-value"),
        "the value is not echoed: {}",
        out.stderr
    );
    assert!(!test.path("m.state.db").exists());
    assert_eq!(test.emu().stats().requests, 0, "nothing was sent");
    test.idprune(["plan", "m.yaml"]).run().ok();
}
