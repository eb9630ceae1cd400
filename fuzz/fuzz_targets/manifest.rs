//! Fuzzes `idprune::manifest::load` on arbitrary bytes written to a temporary file (beside
//! a small fixed CSV, so `sources:` paths are exercised too). The loader must never panic,
//! never hang and never return a manifest whose diagnostics are missing a location; every
//! failure is an `Err`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("s.csv"), "user_id,email\nu_1,a@x.com\n")
        .expect("writing the CSV");
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, data).expect("writing the manifest");
    match idprune::manifest::load(&path) {
        Ok(m) => assert!(!m.entries.is_empty(), "a manifest without entries is an error"),
        Err(idprune::manifest::ManifestError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "an Invalid error lists its problems");
            for p in &problems {
                assert!(p.location.line >= 1 && p.location.column >= 1, "{p}");
                assert!(!p.message.contains('\u{1b}'), "a raw escape in {p}");
            }
        }
        Err(_) => {}
    }
});
