//! idprune removes mistaken identifiers from Segment Unify profiles, plan first, apply second.
pub mod exit;
pub mod manifest;
pub mod model;
