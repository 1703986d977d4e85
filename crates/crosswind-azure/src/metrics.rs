//! Per-collector counters, shared with the daemon's metrics endpoint through an `Arc`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters for one collector. Monotonic except `lag_secs`, a gauge.
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests sent to Graph (every attempt, retries included).
    pub requests: AtomicU64,
    /// Records read from pages (stored, duplicate or quarantined).
    pub records: AtomicU64,
    /// Records newly stored.
    pub stored: AtomicU64,
    /// Records quarantined.
    pub quarantined: AtomicU64,
    /// Failed polls.
    pub errors: AtomicU64,
    /// Request attempts repeated after throttling, 5xx, network errors or a 401.
    pub retries: AtomicU64,
    /// Tokens fetched from the token endpoint.
    pub token_fetches: AtomicU64,
    /// Seconds between the last poll's `now` and its checkpoint (the newest time covered).
    pub lag_secs: AtomicI64,
    /// Checkpoints found ahead of the host clock and re-based (the clock ran fast, then was
    /// set back).
    pub checkpoint_rebases: AtomicU64,
    /// Records that arrived later than `lookback_secs`, found by the late sweep.
    pub records_too_late: AtomicU64,
    /// Requests to `identityProtection/riskDetections` (also in `requests`).
    pub risk_requests: AtomicU64,
    /// Risk detection records read, stored and quarantined (not in the sign-in counters).
    pub risk_records: AtomicU64,
    pub risk_stored: AtomicU64,
    pub risk_quarantined: AtomicU64,
    /// Risk detection polls that failed (a 403: the permission is missing).
    pub risk_errors: AtomicU64,
    /// Gauge: 1 when the last risk detection poll succeeded, 0 when it failed, -1 before one.
    pub risk_up: AtomicI64,
    /// Gauge: seconds between the last poll's `now` and the risk detections checkpoint.
    pub risk_lag_secs: AtomicI64,
    /// Risk detection states later than `lookback_secs`, found by the late sweep.
    pub risk_records_too_late: AtomicU64,
}

/// A copy of [`Metrics`] at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub records: u64,
    pub stored: u64,
    pub quarantined: u64,
    pub errors: u64,
    pub retries: u64,
    pub token_fetches: u64,
    pub lag_secs: i64,
    pub checkpoint_rebases: u64,
    pub records_too_late: u64,
    pub risk_requests: u64,
    pub risk_records: u64,
    pub risk_stored: u64,
    pub risk_quarantined: u64,
    pub risk_errors: u64,
    pub risk_up: i64,
    pub risk_lag_secs: i64,
    pub risk_records_too_late: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            token_fetches: self.token_fetches.load(Ordering::Relaxed),
            lag_secs: self.lag_secs.load(Ordering::Relaxed),
            checkpoint_rebases: self.checkpoint_rebases.load(Ordering::Relaxed),
            records_too_late: self.records_too_late.load(Ordering::Relaxed),
            risk_requests: self.risk_requests.load(Ordering::Relaxed),
            risk_records: self.risk_records.load(Ordering::Relaxed),
            risk_stored: self.risk_stored.load(Ordering::Relaxed),
            risk_quarantined: self.risk_quarantined.load(Ordering::Relaxed),
            risk_errors: self.risk_errors.load(Ordering::Relaxed),
            risk_up: self.risk_up.load(Ordering::Relaxed),
            risk_lag_secs: self.risk_lag_secs.load(Ordering::Relaxed),
            risk_records_too_late: self.risk_records_too_late.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
