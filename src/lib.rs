//! idprune removes mistaken identifiers from Segment Unify profiles, plan first, apply second.
//!
//! The pipeline: [`manifest`] reads and validates the YAML manifest and its CSV sources into
//! entries; [`resolve`] reads every distinct profile lookup through the [`segment`] client
//! (paced by [`pace`], retried by the policy in [`retry`]); [`plan`], a pure function, turns
//! entries and resolved profiles into items with actions; [`digest`] seals them and [`state`]
//! writes the sealed plan into SQLite; a reviewer reads it through [`render`] (with the text
//! helpers of [`text`]); [`apply`] then executes exactly the sealed deletions and journals each
//! one in the same state file.
//! [`commands`] wires the steps to the command line of [`cli`]; [`exit`] holds the exit codes;
//! The pull-request flow adds [`receipt`] (a PII-free name of a sealed plan, committed beside
//! the manifest), [`markdown`] (the bounded, paste-safe review view) and [`mask`] (masked
//! previews and keyed fingerprints of identifier values).
//! [`emulator`] is a stand-in for Segment used by the demo, the tests and the benchmarks.
//! After the deletion, [`guard`] scans Event Archive exports for events that would re-add a
//! removed identifier, and [`report`] writes the downstream lists and the warehouse queries.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod digest;
pub mod emulator;
pub mod exit;
pub mod guard;
pub mod manifest;
pub mod markdown;
pub mod mask;
pub mod model;
pub mod pace;
pub mod plan;
pub mod receipt;
pub mod render;
pub mod report;
pub mod resolve;
pub mod retry;
pub mod segment;
pub mod stage;
pub mod state;
pub mod sync;
pub mod text;
pub mod window;
