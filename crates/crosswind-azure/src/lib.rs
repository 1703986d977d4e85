//! Microsoft Entra ID sign-in collector: `GET {graph_url}/{api_version}/auditLogs/signIns` with a
//! `createdDateTime` window (and, on beta, one `signInEventTypes` filter per configured type),
//! `$top`, `@odata.nextLink` to the end, tokens from azure_identity; and (`risk_detections`)
//! `identityProtection/riskDetections` with a `lastUpdatedDateTime` window and its own
//! checkpoint, whose failure (a missing IdentityRiskEvent.Read.All) never stops the sign-ins.
//!
//! Invariants:
//! - every page is committed in its own store transaction (records inserted with dedup on the
//!   sign-in `id`, unmappable records quarantined with the reason);
//! - the checkpoint advances only in the transaction that commits the last page of a poll window:
//!   pages come newest first, so advancing earlier could skip older records after a crash;
//! - each poll re-reads `lookback_secs` behind the checkpoint, so sign-ins that Graph shows late
//!   with an older `createdDateTime` are still collected, and never twice;
//! - the bearer token is never logged and is sent only to the configured Graph origin.
//!
//! Not done here: the schedule, the interval and shutdown belong to the driver in the binary.

#![forbid(unsafe_code)]

mod cert;
mod client;
mod collector;
pub mod config;
mod error;
mod metrics;
mod proxy;
mod token;

#[cfg(test)]
mod tests;

pub use cert::{CertError, CertFormat, ClientCertificate};
pub use client::{
    GraphClient, RISK_DETECTIONS_PERMISSION, RetryTuning, build_http, parse_retry_after,
};
pub use collector::{AzureCollector, CollectorStatus, FeedStatus, PollStats, RiskStats, status};
pub use config::{
    AuthKind, AzureConfig, ConfigProblem, Env, ProcessEnv, read_certificate_password,
};
pub use error::AzureError;
pub use metrics::{Metrics, MetricsSnapshot};
pub use token::{TokenSource, graph_scope, load_client_certificate, read_client_secret};
