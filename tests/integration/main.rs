//! The integration suite: the real `idprune` binary against the real emulator (`idprune emulator`)
//! on loopback. Every test has its own temporary directory and its own emulator on port 0, so the
//! tests run in parallel; waits poll real signals (the emulator's `listening on` line, the state
//! file, the emulator's statistics) with a bound, never a fixed sleep. Tests assert on exit codes,
//! on what the emulator saw and on the journal, not only on printed text.
//!
//! - `architecture`: no import cycle among the top-level modules of `src/` (`KNOWN_CYCLES` aside).
//! - `harness`: the builder (`Test`, `Run`, `Output`, `Emulator`) and its helpers.
//! - `plan_apply`: the whole flow on a mixed manifest; matching rules; determinism.
//! - `bad_inputs`: the `tests/fixtures/bad/` corpus and a 100 MB manifest: exit 1, located.
//! - `cli`: closed pipes, the wrong kind of file, JSON of validate/apply/verify, `--quiet`,
//!   colour and `NO_COLOR`, completions and man, died runs, the small messages.
//! - `crash`: `kill -9` mid-apply, then resume; re-plan after a kill.
//! - `kills`: ten `kill -9`s over a 2,000-item apply, resumed each time: exactly the plan.
//! - `lifecycle`: `report --downstream`/`--sql`, `purge` then refusals, foreign and stale locks.
//! - `pacing`: `--rate` counted in the emulator per one-second window; one pacer per process.
//! - `resilience`: Ctrl-C, a concurrent apply, faults, lost acknowledgements, 429s, file modes.
//! - `disk`: a read-only directory, a full disk: clear errors, no corruption, resumable.
//! - `encoding`: awkward values in paths and bodies; CSV dialects.
//! - `promises`: a space-level 404 stops the run; unlock refused under a live lock; other schema
//!   versions refused; a killed plan's scratch removed; format_version; empty IDPRUNE_API_URL;
//!   purge replaces every value; reads and deletes share one pacer.
//! - `properties`: proptest: path round trip via the emulator, digest ⇔ items, crash-anywhere resume.
//! - `refusals`: every exit-4 refusal sends nothing.
//! - `auth`: wrong, revoked and forbidden tokens; resuming with a good one.
//! - `failures`: a permanent failure (exit 3, `--retry-failed`); the retry budget spent (exit 1).
//! - `faults`: every injected fault at once, 429 storms, a token revoked mid-run.
//! - `input_errors`: bad manifests and CSVs, usage errors, `--help`.
//! - `render`: snapshots of the human views; redaction.
//! - `rerun`: `apply --reapply` after a rebuild; `apply --canary` stops on a delete that did not take
//!   or on a space refusal.
//! - `signals`: SIGINT and SIGTERM start no request after the signal (judged by the emulator),
//!   exit 130 and 143, resume to exactly the plan; SIGTERM stops plan and verify.
//! - `secrets`: the token appears in no output and not in the state file.
//! - `refresh`: `plan --refresh=false` reads only what an entry needs; unverified deletes.
//! - `slow_start`: a wrong token or a space without the feature costs at most 2 requests.
//! - `guard`: an Event Archive export in Segment's layout: exactly the referencing events found,
//!   exactly the rest in the filtered copy.
//! - `casing`: lowercase-only lookups: unresolved, and the plan says why.
//! - `outside_files`: every file named from outside (receipt, token and key files, CSV sources,
//!   `init`'s CSV, manifest, state file) as a pipe, a device or oversized: refused, named, no hang.
//! - `hostile`: a small hostile server on loopback: endless bodies, endless identifiers, steering
//!   messages; peak RSS of the child under a cap.
//! - `init`: `init --from-csv` pins the CSV; validate refuses the placeholders; then it plans.
//! - `report_sql`: `report --sql` per dialect, the `--csv` form, `--discover`.
//! - `warehouse`: the discovery and check SQL run on DuckDB and PostgreSQL over Profiles Sync
//!   tables built from the emulator's profiles (hostile values byte-exact); sqlglot parses the
//!   other dialects; the exported rows plan and apply exactly.
//! - `verify`: `--wait` outlasts a propagation delay; the history tells re-introduced from still present.
//! - `tamper`: the whole state file is sealed: triggers, fields outside the digest, journal
//!   states, view fields, odd values, a plan racing an apply; any single-row edit (proptest).
//! - `provenance`: a state file git tracks is refused; an edited receipt is refused; the CI
//!   context of a run in `status` and the markdown.
//! - `policy`: the team's rules: each fails a plan and refuses its apply with zero requests; soft
//!   overrides recorded and shown; a changed or added policy refused; `--policy FILE`.
//! - `schema`: `show --format json` validated against the published `docs/schema/show.schema.json`.
//! - `sources`: CSV sources in a store (`file://`, moto's S3): the same plan as from disk, apply
//!   without the file, missing and wrong pins, an oversized object, row errors naming the URL,
//!   no temporary copy left, `validate` offline.
//! - `review`: the pull-request flow (receipt, drift, apply from the manifest), paste-safe
//!   markdown checked with a GFM renderer, no identifier value in what a pull request shows.

mod architecture;
mod auth;
mod bad_inputs;
mod casing;
mod cli;
mod crash;
mod disk;
mod encoding;
mod failures;
mod faults;
mod guard;
mod harness;
mod hostile;
mod init;
mod input_errors;
mod kills;
mod lifecycle;
/// moto's S3 server (`tests/support/moto.rs`, which the store's unit tests use too), for
/// `remote` and `sources`.
#[path = "../support/moto.rs"]
mod moto;
mod outside_files;
mod pacing;
mod plan_apply;
mod policy;
mod promises;
mod properties;
mod provenance;
mod refresh;
mod refusals;
mod remote;
mod render;
mod report_sql;
mod rerun;
mod resilience;
mod review;
mod schema;
mod secrets;
mod signals;
mod slow_start;
mod sources;
mod tamper;
mod verify;
mod warehouse;
