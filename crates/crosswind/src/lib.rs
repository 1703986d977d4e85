//! The crosswind application: CLI commands, import pipeline, hunts and config, as a library so
//! the end-to-end tests under `tests/` can drive the same code the binary runs.

#![forbid(unsafe_code)]

pub mod cli;
pub mod collect;
pub mod collectors;
pub mod config;
pub mod config_safety;
pub mod correlation;
pub mod daemon;
pub mod explain;
pub mod feeder;
pub mod hunt;
pub mod import;
pub mod output;
pub mod reconcile;
pub mod report;
pub mod simulate;
pub mod timearg;

/// mimalloc for every binary linking this crate (the daemon, the CLI, the benches, the e2e
/// tests): the import pipeline allocates records on its reading thread and frees them on the
/// storing thread, which glibc malloc handles poorly (16% more CPU for the same import).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
