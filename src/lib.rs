//! idprune removes mistaken identifiers from Segment Unify profiles, plan first, apply second.
pub mod apply;
pub mod cli;
pub mod commands;
pub mod digest;
pub mod emulator;
pub mod exit;
pub mod manifest;
pub mod model;
pub mod pace;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod retry;
pub mod segment;
pub mod state;
