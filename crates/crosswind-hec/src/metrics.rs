//! The sink's counters: plain atomics, shared with the binary's `/metrics` endpoint through an
//! `Arc`. Names in [`Metrics::export`] follow `crosswind_splunk_hec_<noun>_<unit>_total`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for one forwarder. Only ever incremented, except the `outbox_*` gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests to `/services/collector/event`, whatever their outcome.
    pub requests: AtomicU64,
    /// Requests Splunk accepted (2xx).
    pub batches: AtomicU64,
    /// Events in accepted requests.
    pub events_sent: AtomicU64,
    /// Bytes put on the wire (after gzip) in accepted requests.
    pub bytes_sent: AtomicU64,
    /// Events confirmed by an indexer ack.
    pub events_acked: AtomicU64,
    /// Events accepted without an ack (2xx without `ackId`, events before an invalid one).
    pub events_accepted: AtomicU64,
    /// Ack queries sent.
    pub ack_polls: AtomicU64,
    /// Events re-queued because their ack was not confirmed within `ack_timeout_secs`.
    pub ack_timeouts: AtomicU64,
    /// Events sent again after an outcome that may have indexed them (lost ack, lost connection,
    /// restart mid-request): each may be a duplicate in Splunk.
    pub possible_duplicates: AtomicU64,
    /// Requests retried (busy server, 5xx, network).
    pub retries: AtomicU64,
    /// Batches split after a 413 or an invalid event without a position.
    pub splits: AtomicU64,
    /// Events moved to `outbox_dead`.
    pub dead_lettered: AtomicU64,
    /// Failed health checks.
    pub health_failures: AtomicU64,
    /// Refusals that need an operator (token, index, channel, URL).
    pub refusals: AtomicU64,
    /// Store operations that failed (retried with backoff).
    pub store_errors: AtomicU64,
    /// Ack ids Splunk handed out again while an earlier request still waited for them (indexer
    /// restart, load balancer): that request's events were resent.
    pub ack_id_reuses: AtomicU64,
    /// The last store error, while the forwarder is retrying it (cleared by the next step that
    /// works): for `/readyz` and the status line.
    pub store_failing: Mutex<Option<String>>,
    /// Gauge: events queued (pending or awaiting ack) at the last look.
    pub outbox_depth: AtomicU64,
    /// Gauge: age in ms of the oldest queued event at the last look.
    pub outbox_oldest_age_ms: AtomicU64,
    /// Gauge: the batch size limit in force (below `batch_max_bytes` for a while after a 413).
    pub batch_limit_bytes: AtomicU64,
}

/// A copy of [`Metrics`] at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub batches: u64,
    pub events_sent: u64,
    pub bytes_sent: u64,
    pub events_acked: u64,
    pub events_accepted: u64,
    pub ack_polls: u64,
    pub ack_timeouts: u64,
    pub possible_duplicates: u64,
    pub retries: u64,
    pub splits: u64,
    pub dead_lettered: u64,
    pub health_failures: u64,
    pub refusals: u64,
    pub store_errors: u64,
    pub ack_id_reuses: u64,
    pub outbox_depth: u64,
    pub outbox_oldest_age_ms: u64,
}

// === impl Metrics ===

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The store error the forwarder is retrying, if it is.
    pub fn store_failing(&self) -> Option<String> {
        self.store_failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_store_failing(&self, error: Option<String>) {
        *self.store_failing.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            requests: g(&self.requests),
            batches: g(&self.batches),
            events_sent: g(&self.events_sent),
            bytes_sent: g(&self.bytes_sent),
            events_acked: g(&self.events_acked),
            events_accepted: g(&self.events_accepted),
            ack_polls: g(&self.ack_polls),
            ack_timeouts: g(&self.ack_timeouts),
            possible_duplicates: g(&self.possible_duplicates),
            retries: g(&self.retries),
            splits: g(&self.splits),
            dead_lettered: g(&self.dead_lettered),
            health_failures: g(&self.health_failures),
            refusals: g(&self.refusals),
            store_errors: g(&self.store_errors),
            ack_id_reuses: g(&self.ack_id_reuses),
            outbox_depth: g(&self.outbox_depth),
            outbox_oldest_age_ms: g(&self.outbox_oldest_age_ms),
        }
    }

    /// `(name, value)` pairs in Prometheus naming, for the binary's registry.
    pub fn export(&self) -> Vec<(&'static str, u64)> {
        let s = self.snapshot();
        vec![
            ("crosswind_splunk_hec_requests_total", s.requests),
            ("crosswind_splunk_hec_batches_total", s.batches),
            ("crosswind_splunk_hec_events_sent_total", s.events_sent),
            ("crosswind_splunk_hec_sent_bytes_total", s.bytes_sent),
            ("crosswind_splunk_hec_events_acked_total", s.events_acked),
            (
                "crosswind_splunk_hec_events_accepted_total",
                s.events_accepted,
            ),
            ("crosswind_splunk_hec_ack_polls_total", s.ack_polls),
            ("crosswind_splunk_hec_ack_timeouts_total", s.ack_timeouts),
            (
                "crosswind_splunk_hec_possible_duplicates_total",
                s.possible_duplicates,
            ),
            ("crosswind_splunk_hec_retries_total", s.retries),
            ("crosswind_splunk_hec_splits_total", s.splits),
            ("crosswind_splunk_hec_dead_lettered_total", s.dead_lettered),
            (
                "crosswind_splunk_hec_health_failures_total",
                s.health_failures,
            ),
            ("crosswind_splunk_hec_refusals_total", s.refusals),
            ("crosswind_splunk_hec_store_errors_total", s.store_errors),
            ("crosswind_splunk_hec_ack_id_reuses_total", s.ack_id_reuses),
            (
                "crosswind_splunk_hec_store_failing",
                u64::from(self.store_failing().is_some()),
            ),
            ("crosswind_splunk_hec_outbox_depth", s.outbox_depth),
            (
                "crosswind_splunk_hec_batch_limit_bytes",
                self.batch_limit_bytes
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "crosswind_splunk_hec_outbox_oldest_age_ms",
                s.outbox_oldest_age_ms,
            ),
        ]
    }
}
