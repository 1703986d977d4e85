//! The crosswind application: CLI commands, import pipeline, hunts and config, as a library so
//! the end-to-end tests under `tests/` can drive the same code the binary runs.

#![forbid(unsafe_code)]

pub mod cli;
pub mod collect;
pub mod config;
pub mod correlation;
pub mod daemon;
pub mod explain;
pub mod hunt;
pub mod import;
pub mod output;
pub mod simulate;
pub mod timearg;
