//! Helpers shared by the end-to-end tests: where the public sample data lives and how to unwrap
//! its test-only wrappers.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// `../shared/data` beside the repository (CI lays it out the same way).
pub fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}
