//! Crosswind's common schema: the OCSF-aligned [`Event`] every source is normalised into, the
//! source formats we accept, and small shared value types.
//!
//! Invariant: this crate does no I/O, SQL or HTTP. It is the vocabulary the other crates share.

#![forbid(unsafe_code)]

mod event;
mod identity;
mod sensitive;
mod signal;

pub use event::*;
pub use identity::*;
pub use sensitive::{SensitiveString, shown_env_name, shown_path};
pub use signal::*;

/// Version of the serialised schema (`schemas/*.json`, HEC payloads). Bump on breaking change.
pub const SCHEMA_VERSION: u32 = 1;

/// Which JSON Schemas we publish, by file name under `schemas/`.
pub fn json_schemas() -> Vec<(&'static str, serde_json::Value)> {
    let to_value = |s: schemars::Schema| serde_json::to_value(s).expect("schema serialises");
    vec![
        ("event.schema.json", to_value(schemars::schema_for!(Event))),
        (
            "signal.schema.json",
            to_value(schemars::schema_for!(Signal)),
        ),
        (
            "finding.schema.json",
            to_value(schemars::schema_for!(Finding)),
        ),
    ]
}

#[cfg(test)]
mod tests;
