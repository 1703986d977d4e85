//! Crosswind's correlator: identity resolution, signals (Splunk ES-style risk events), decayed
//! per-identity risk and findings — docs/detections.md in code.
//!
//! Invariants: this crate does no I/O, SQL or clock reads. Time is the events' own time and
//! history is passed in, so a historical import, a live run and a re-run after a restart give
//! the same signal and finding ids. The driver:
//! 1. reads events from the store sorted by [`event_order`] (time, then event id);
//! 2. for a range starting at `start`, feeds `[start − Engine::max_lookback_ms(), start)`
//!    through [`Engine::warm_up`] and the stored signals from
//!    `start − Engine::seed_lookback_ms()` on through [`Engine::seed_signals`], then
//!    [`Engine::process`]es from `start`;
//! 3. stores signals with `INSERT OR IGNORE` on the id;
//! 4. re-scores each touched identity with [`score_identity`] over its stored signals and
//!    findings, storing new findings with `INSERT OR IGNORE`.

#![forbid(unsafe_code)]

mod catalog;
mod config;
mod detect;
mod emit;
mod engine;
mod identity;
mod net;
mod score;

/// The engine's state maps: keyed by identity, IP, key or pattern and looked up several times
/// per event, so hashed with a fast per-process-seeded hash rather than SipHash.
pub(crate) type StateMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use catalog::{RECON_CALLS, RISKY_EVENT_TYPES, SignalKind, SignalSpec};
pub use config::{
    ConfigError, CorrelateConfig, DEFAULT_SUPPRESS_SECS, RawCorrelateConfig, SignalOverride,
    SignalSettings,
};
pub use detect::entra_risk::{SeedDimensions, seed_dimensions, tenants};
pub use engine::{
    Engine, EngineStats, GEO_TTL_MS, StateSizes, event_order, made_by_console, plain_event_name,
    sort_events, stable_id,
};
pub use identity::{
    IdentityFileError, IdentityLinks, PrincipalKind, Resolved, aliases_of, identity_of, resolve,
};
pub use net::{Cidr, haversine_km, source_of};
pub use score::{IdentityScore, ScorePoint, score_all, score_at, score_identity};

/// Convenience for imports and tests: sort `events`, run a fresh engine over them, return the
/// signals.
pub fn correlate(
    cfg: &CorrelateConfig,
    links: &IdentityLinks,
    events: &mut [crosswind_model::Event],
) -> Vec<crosswind_model::Signal> {
    sort_events(events);
    let mut engine = Engine::new(cfg.clone(), links.clone());
    engine.process_all(events.iter())
}

#[cfg(test)]
mod tests;
