//! The integration suite: the real `idprune` binary against the real emulator on loopback
//! (STYLE.md rule 8). `harness` holds the builder; each other module is one area of behaviour.

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
