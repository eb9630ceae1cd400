//! idprune removes mistaken identifiers from Segment Unify profiles, plan first, apply second.
//! `docs/ARCHITECTURE.md` walks the design; this is the map of the modules, in pipeline order.
//!
//! - Plan: [`manifest`] reads and validates the YAML manifest and its CSV sources into entries
//!   (the domain nouns, identifiers and lookups, are in [`model`]); [`scratch`] holds them in a
//!   scratch SQLite file; [`resolve`] reads every distinct lookup through the [`segment`]
//!   client, inside the in-flight [`window`], paced by [`pace`] and retried by [`retry`];
//!   [`plan`], a pure function, turns each profile's entries into items with actions;
//!   [`digest`] hashes them and [`state`] seals them into the state file.
//! - Review: [`render`] draws the plan as text or JSON, [`markdown`] as a bounded, paste-safe
//!   pull-request view with masked values ([`mask`]); [`receipt`] is the PII-free name of a
//!   sealed plan committed beside the manifest; [`text`] holds the escaping and number helpers.
//! - Apply: [`apply`] executes exactly the sealed deletions and journals each one in the same
//!   state file; [`store`] keeps that file in an object store when `--state` names one
//!   (encrypted, under a lease lock), the local file then being the working copy.
//! - After: [`downstream`] writes the lists of removed identifiers and [`warehouse`] the
//!   warehouse queries over them (both behind `idprune report`); [`guard`] scans Event
//!   Archive exports for events that would re-add a removed identifier.
//! - The operations: [`ops`] runs the steps above as library calls (plan, apply with its
//!   canary, `apply MANIFEST`, verify, validate, init) over plain options, returning the
//!   [`outcome`] values that [`render`] draws; [`ui`] is the only way out to the terminal.
//! - Around them: [`commands`] wires the operations to the command line of [`cli`]; [`exit`] holds
//!   the exit codes; [`ci`] reads the CI context a run records and [`git`] whether git tracks a
//!   state file; [`sync`] the one lock helper; [`bounded`] the one bounded read of a file named from outside; [`emulator`] is a stand-in for Segment used
//!   by the demo, the tests and the benchmarks.

pub mod apply;
pub mod bounded;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod digest;
pub mod downstream;
pub mod emulator;
pub mod exit;
pub mod git;
pub mod guard;
pub mod manifest;
pub mod markdown;
pub mod mask;
pub mod model;
pub mod ops;
pub mod outcome;
pub mod pace;
pub mod plan;
pub mod policy;
pub mod receipt;
pub mod render;
pub mod resolve;
pub mod results;
pub mod retry;
pub mod sample;
pub mod scratch;
pub mod segment;
pub mod state;
pub mod store;
pub mod sync;
pub mod text;
pub mod ui;
pub mod warehouse;
pub mod window;
