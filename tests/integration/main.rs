//! The integration suite: the real `idprune` binary against the real emulator
//! (`idprune emulator`) on loopback (STYLE.md rule 8). Every test has its own temporary
//! directory and its own emulator on port 0, so the tests run in parallel; waits poll real
//! signals (the emulator's `listening on` line, the state file, the emulator's statistics)
//! with a bound, never a fixed sleep. Tests assert on exit codes, on what the emulator saw and
//! on the journal, not only on printed text.
//!
//! - `harness`: the builder (`Test`, `Run`, `Output`, `Emulator`) and its helpers.
//! - `plan_apply`: the whole flow on a mixed manifest; matching rules; determinism.
//! - `crash`: `kill -9` mid-apply, then resume; re-plan after a kill.
//! - `resilience`: Ctrl-C, a concurrent apply, faults, lost acknowledgements, 429s, file modes.
//! - `encoding`: awkward values in paths and bodies; CSV dialects.
//! - `refusals`: every exit-4 refusal sends nothing.
//! - `auth`: wrong, revoked and forbidden tokens; resuming with a good one.
//! - `input_errors`: bad manifests and CSVs, usage errors, `--help`.
//! - `render`: snapshots of the human views; redaction.
//! - `secrets`: the token appears in no output and not in the state file.

mod auth;
mod crash;
mod encoding;
mod harness;
mod input_errors;
mod plan_apply;
mod refusals;
mod render;
mod resilience;
mod secrets;
