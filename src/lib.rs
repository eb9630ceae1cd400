//! idprune removes mistaken identifiers from Segment Unify profiles, plan first, apply second.
pub mod emulator;
pub mod exit;
pub mod model;
