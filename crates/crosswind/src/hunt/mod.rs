//! Named hunts over the store (`crosswind hunt NAME`). Each hunt reads events in a time range
//! and returns rows; printing is the caller's.

mod risky_signins;

use crosswind_store::Store;

use crate::output::Rows;

pub use risky_signins::{SeedDimensions, seed_dimensions};

/// Time range a hunt covers (epoch ms; `until` exclusive).
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The built-in hunts, a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hunt {
    RiskySignins,
}

impl Hunt {
    pub const ALL: [Hunt; 1] = [Hunt::RiskySignins];

    pub fn name(self) -> &'static str {
        match self {
            Hunt::RiskySignins => "risky-signins",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Hunt::RiskySignins => {
                "successful Entra sign-ins with high/medium or at-risk Identity Protection risk, a risky event type, or a cross-tenant single-factor sign-in, scored by how many of the three they meet"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Hunt> {
        Hunt::ALL.into_iter().find(|h| h.name() == name)
    }

    pub fn run(self, store: &Store, range: Range) -> anyhow::Result<Rows> {
        match self {
            Hunt::RiskySignins => risky_signins::run(store, range),
        }
    }
}
