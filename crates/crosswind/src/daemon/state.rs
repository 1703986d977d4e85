//! State shared by the daemon's tasks and read by `/readyz`, `/metrics` and the STATUS line:
//! plain atomics and short-held mutexes, never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One collector's counters (owned by its crate) and the driver's view of its last poll.
#[derive(Debug)]
pub(crate) struct CollectorEntry {
    pub name: String,
    /// `azure_signins` or `aws_cloudtrail`.
    pub kind: &'static str,
    pub metrics: SourceMetrics,
    pub polls: AtomicU64,
    /// Polls skipped because the Splunk outbox was full.
    pub skipped_polls: AtomicU64,
    pub last: Mutex<LastPoll>,
}

#[derive(Debug)]
pub(crate) enum SourceMetrics {
    Azure(Arc<crosswind_azure::Metrics>),
    Aws(Arc<crosswind_aws::Metrics>),
}

/// Counters common to both collector kinds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SourceCounts {
    pub requests: u64,
    pub records: u64,
    pub stored: u64,
    pub quarantined: u64,
    pub errors: u64,
    pub retries: u64,
    pub lag_secs: i64,
    pub checkpoint_rebases: u64,
    pub records_too_late: u64,
}

impl SourceMetrics {
    /// Queue messages an S3-mode collector could not read (0 for others).
    pub fn messages_unrecognized(&self) -> u64 {
        match self {
            SourceMetrics::Azure(_) => 0,
            SourceMetrics::Aws(m) => m.snapshot().messages_unrecognized,
        }
    }

    /// The risk detections feed's counters (Entra collectors; `None` for others).
    pub fn risk(&self) -> Option<crosswind_azure::MetricsSnapshot> {
        match self {
            SourceMetrics::Azure(m) => Some(m.snapshot()),
            SourceMetrics::Aws(_) => None,
        }
    }

    /// Per-region figures (LookupEvents collectors; empty for others).
    pub fn regions(&self) -> Vec<(String, crosswind_aws::RegionMetrics)> {
        match self {
            SourceMetrics::Azure(_) => Vec::new(),
            SourceMetrics::Aws(m) => m.regions(),
        }
    }

    pub fn counts(&self) -> SourceCounts {
        match self {
            SourceMetrics::Azure(m) => {
                let s = m.snapshot();
                SourceCounts {
                    requests: s.requests,
                    records: s.records,
                    stored: s.stored,
                    quarantined: s.quarantined,
                    errors: s.errors,
                    retries: s.retries,
                    lag_secs: s.lag_secs,
                    checkpoint_rebases: s.checkpoint_rebases,
                    records_too_late: s.records_too_late,
                }
            }
            SourceMetrics::Aws(m) => {
                let s = m.snapshot();
                SourceCounts {
                    requests: s.requests,
                    records: s.records,
                    stored: s.stored,
                    quarantined: s.quarantined,
                    errors: s.errors,
                    retries: s.retries,
                    lag_secs: s.lag_secs,
                    checkpoint_rebases: s.checkpoint_rebases,
                    records_too_late: s.records_too_late,
                }
            }
        }
    }
}

/// The outcome of a collector's last poll.
#[derive(Clone, Debug, Default)]
pub(crate) struct LastPoll {
    /// `None` before the first poll finished.
    pub ok: Option<bool>,
    pub error: Option<String>,
    /// What failed while the poll went on (risk detections refused: a missing permission).
    pub warning: Option<String>,
    /// Wall clock, epoch ms.
    pub at: Option<i64>,
}

/// Figures sampled from the store every few seconds.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreSample {
    pub file_bytes: u64,
    pub outbox_pending: u64,
    pub outbox_awaiting_ack: u64,
    pub outbox_dead: u64,
    pub outbox_oldest_age_ms: i64,
    pub signals: Vec<(String, u64)>,
    pub findings: u64,
    /// Events stored but not yet read by the outbox feeder.
    pub feeder_lag: u64,
    /// Events stored but not yet read by the correlator.
    pub correlator_lag: u64,
}

impl StoreSample {
    pub fn outbox_depth(&self) -> u64 {
        self.outbox_pending + self.outbox_awaiting_ack
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub collectors: Mutex<BTreeMap<String, Arc<CollectorEntry>>>,
    pub hec: Mutex<Option<Arc<crosswind_hec::Metrics>>>,
    pub splunk_configured: AtomicBool,
    /// Splunk answered the last health check / requests.
    pub splunk_ok: AtomicBool,
    pub store_ok: AtomicBool,
    pub sample: Mutex<StoreSample>,
    /// Collection paused: the outbox is full.
    pub paused: AtomicBool,
    pub fed_records: AtomicU64,
    pub correlation_runs: AtomicU64,
    pub correlation_errors: AtomicU64,
    pub correlated_events: AtomicU64,
    pub retention_deleted: AtomicU64,
    /// Follower cursors found ahead of every event id and moved back.
    pub cursor_rebases: AtomicU64,
    /// Why the Splunk HEC forwarder stopped, while it is being restarted.
    pub forwarder_stopped: Mutex<Option<String>>,
    pub forwarder_restarts: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_errors: AtomicU64,
    pub started_at_ms: AtomicI64,
}

/// Aborts the task when dropped (a supervisor aborted at shutdown takes its child with it).
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Shared {
    pub fn collectors(&self) -> Vec<Arc<CollectorEntry>> {
        lock(&self.collectors).values().cloned().collect()
    }

    pub fn hec(&self) -> Option<Arc<crosswind_hec::Metrics>> {
        lock(&self.hec).clone()
    }

    pub fn sample(&self) -> StoreSample {
        lock(&self.sample).clone()
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool, depth: u64) {
        let was = self.paused.swap(paused, Ordering::Relaxed);
        if paused && !was {
            tracing::warn!(
                outbox_depth = depth,
                "Splunk outbox is full; collection paused until the sink drains it (nothing is dropped)."
            );
        } else if !paused && was {
            tracing::info!(
                outbox_depth = depth,
                "Splunk outbox has room again; collection resumed."
            );
        }
    }
}
