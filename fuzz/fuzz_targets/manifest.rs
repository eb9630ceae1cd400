//! Fuzzes the path `idprune plan` runs on a manifest: arbitrary bytes written to a temporary
//! file (beside a small fixed CSV, so `sources:` paths are exercised too) are loaded with
//! `idprune::manifest::load_into` into a real `idprune::scratch::Scratch`, the scratch SQLite
//! file `plan` stages entries in. The loader must never panic, never hang and never return a
//! diagnostic without a location; every failure is an `Err`. No problem and no warning may
//! carry a raw control character (C0 but tab and newline, DEL, or C1 such as the 8-bit CSI
//! 0x9b), since they reach the terminal; and an accepted manifest leaves at least one entry in
//! the scratch file, with no more distinct lookups than entries.
#![no_main]

use idprune::manifest::{Diagnostic, EntrySink as _, ManifestError};
use libfuzzer_sys::fuzz_target;

/// A character a terminal may act on: C0 but tab and newline, DEL, C1 (U+0080..=U+009F).
fn raw_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

fn check(d: &Diagnostic) {
    assert!(d.location.line >= 1 && d.location.column >= 1, "{d}");
    let text = d.to_string();
    assert!(
        !text.chars().any(raw_control),
        "a raw control character in {text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("s.csv"),
        "user_id,email\nu_1,a@x.com\nu_1,a@x.com\nu_2,\u{9b}31m@x.com\n",
    )
    .expect("writing the CSV");
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, data).expect("writing the manifest");
    let mut scratch = idprune::scratch::Scratch::create(&dir.path().join("m.state.db"))
        .expect("creating a scratch file");
    match idprune::manifest::load_into(&path, &mut scratch) {
        Ok(m) => {
            assert!(scratch.count() > 0, "a manifest without entries is an error");
            for w in &m.warnings {
                check(w);
            }
            let lookups = scratch.lookup_count().expect("counting lookups");
            assert!(lookups >= 1 && lookups <= scratch.count(), "{lookups} lookups");
        }
        Err(ManifestError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "an Invalid error lists its problems");
            for p in &problems {
                check(p);
            }
        }
        Err(_) => {}
    }
});
