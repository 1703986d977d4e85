//! Crosswind's Splunk HTTP Event Collector sink.
//!
//! Producers render what reaches Splunk with a [`Renderer`] and enqueue it with [`enqueue`] in
//! the same store [`Batch`] that stores the record; the [`Forwarder`] drains the outbox to
//! `/services/collector/event` in batches (gzip, indexer acknowledgement on a persisted
//! `X-Splunk-Request-Channel`, capped jittered backoff honouring `Retry-After`, health-gated).
//!
//! Invariants:
//! - an event leaves the outbox only when Splunk acknowledged it (indexer ack), accepted it (2xx
//!   without acks), or refused that one event for good — sent alone, after accepting others —
//!   (then it is dead-lettered with Splunk's reason): delivery is at least once;
//! - a duplicate can reach Splunk only when an event is resent after an outcome that may have
//!   indexed it (ack not confirmed in time, lost connection, restart mid-request), and every such
//!   resend is counted in [`Metrics::possible_duplicates`];
//! - the HEC token lives in a [`SensitiveString`](crosswind_model::SensitiveString) and appears in
//!   no log, error or `Debug` output.
//!
//! This crate does no SQL (the outbox is `crosswind_store::outbox`) and owns no schedule: the
//! binary calls [`Forwarder::drain_once`] (`crosswind forward --once`) or [`Forwarder::run`].

#![forbid(unsafe_code)]

mod client;
mod config;
mod forwarder;
mod metrics;
mod render;

use crosswind_store::outbox::{self, OutboxError, Quota};
use crosswind_store::{Batch, StoreError};

pub use client::{
    ACK_PATH, CHANNEL_HEADER, EVENT_PATH, HEALTH_PATH, Health, HecReply, SendOutcome, classify,
    redacted_url,
};
pub use config::{ConfigProblem, Env, Forward, IndexKind, ProcessEnv, SplunkConfig, TokenError};
pub use forwarder::{CHANNEL_META_KEY, DrainStats, Forwarder, MAX_UNPROVEN, new_channel_guid};
pub use metrics::{Metrics, MetricsSnapshot};
pub use render::{
    PAYLOAD_SCHEMA_VERSION, Rendered, Renderer, SOURCETYPE_EVENT, SOURCETYPE_FINDING,
    SOURCETYPE_RAW_UNPARSED, SOURCETYPE_RISK, hostname, search_name, sourcetypes,
};

/// Sink failures. Messages never contain the HEC token.
#[derive(Debug, thiserror::Error)]
pub enum HecError {
    #[error("invalid [splunk] config: {}", join_problems(.0))]
    Config(Vec<ConfigProblem>),
    #[error("splunk hec token: {0}")]
    Token(#[from] TokenError),
    #[error("splunk tls: {message}")]
    Tls { message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(
        "splunk refused the request (http {status}, code {}: {text}); {hint}; every event stays queued",
        code.map_or_else(|| "none".to_string(), |c| c.to_string())
    )]
    Refused {
        status: u16,
        code: Option<i64>,
        text: String,
        hint: &'static str,
    },
    #[error(
        "splunk hec is unhealthy (http {status}, code {}: {text})",
        code.map_or_else(|| "none".to_string(), |c| c.to_string())
    )]
    Unhealthy {
        status: u16,
        code: Option<i64>,
        text: String,
    },
    #[error("cannot reach splunk hec: {0}")]
    Http(#[source] reqwest::Error),
    #[error(
        "gave up: Splunk HEC took nothing for {secs} s (last problem: {last}); every event stays queued"
    )]
    GaveUp { secs: u64, last: String },
}

impl HecError {
    /// Only an operator can fix it (token, index, channel, URL, config): retrying as is will not.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            HecError::Config(_)
                | HecError::Token(_)
                | HecError::Tls { .. }
                | HecError::Refused { .. }
        )
    }

    /// Worth retrying later as is (busy or unreachable Splunk).
    pub fn is_retriable(&self) -> bool {
        matches!(self, HecError::Unhealthy { .. } | HecError::Http(_))
    }

    /// The store failed (its write lock held past the busy timeout by a concurrent import, a full
    /// disk): nothing Splunk did, and worth retrying.
    pub fn is_store(&self) -> bool {
        matches!(
            self,
            HecError::Store(_) | HecError::Outbox(OutboxError::Store(_))
        )
    }
}

fn join_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T, E = HecError> = std::result::Result<T, E>;

/// Enqueues a rendered event in `batch` (the transaction that stores its record).
/// [`OutboxError::Full`] means the caller must pause collection; nothing was dropped.
pub fn enqueue(
    batch: &Batch<'_>,
    quota: &mut Quota,
    rendered: &Rendered,
) -> Result<i64, OutboxError> {
    outbox::enqueue(batch, quota, &rendered.row())
}

#[cfg(test)]
mod tests;
