//! AWS CloudTrail collector: `LookupEvents` per configured event name and region (paginated,
//! paced, throttling backed off), or trail files from S3 driven by S3→SQS notifications or by
//! listing. Credentials from the default chain, optionally through an STS-assumed role.
//!
//! Invariants:
//! - every page (LookupEvents) or file (S3) is committed in its own store transaction, with
//!   dedup on `eventID`; records that cannot be mapped are quarantined with the reason;
//! - a LookupEvents region checkpoint advances only in the transaction committing the last page
//!   of that region's poll window (pages are newest first);
//! - an S3 file's key is checkpointed in the transaction that stores its records, and its SQS
//!   notification is deleted only after that commit;
//! - Get/List/Describe calls are kept: nothing is dropped for being read-only.

#![forbid(unsafe_code)]

pub mod config;
mod lookup;
mod s3;
pub mod trail;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudtrail::config::{Credentials, Region, SharedCredentialsProvider};
use chrono::{DateTime, SecondsFormat, Utc};
use crosswind_model::SourceFormat;
use crosswind_normalize::{FormatHint, normalize};
use crosswind_store::window::rebased;
use crosswind_store::{Batch, NewRecord, QuarantineRecord, Store};

pub use config::{AwsConfig, ConfigProblem, DEFAULT_EVENT_NAMES, Mode};

/// An AWS API call that failed for good.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation} in {region} failed{status}: {code}: {message}{hint}")]
pub struct ApiError {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: String,
    /// ` (HTTP n)` or empty.
    pub status: String,
    pub code: String,
    pub message: String,
    /// What to do about it, with a leading "; ".
    pub hint: String,
    pub retriable: bool,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("invalid config: {0}")]
    Config(String),
    #[error("{0}")]
    Api(Box<ApiError>),
    #[error("{service} {operation} in {region} still failing after {attempts} attempts: {last}")]
    RetriesExhausted {
        service: &'static str,
        operation: &'static str,
        region: String,
        attempts: u32,
        last: String,
    },
    #[error("trail file s3://{bucket}/{key}: {message}")]
    TrailFile {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("store: {0}")]
    Store(#[from] crosswind_store::StoreError),
    /// Some LookupEvents regions failed; the others were read and checkpointed.
    #[error("{} of {total} regions failed: {}", failures.len(), region_list(failures))]
    Regions {
        total: usize,
        failures: Vec<(String, AwsError)>,
    },
    /// Some trail files could not be read (`(key, error)`); every other file was collected, and
    /// these are tried again (their notifications stay on the queue).
    #[error("{} trail file(s) could not be read, the others were collected: {}", failures.len(), file_list(failures))]
    Files { failures: Vec<(String, AwsError)> },
}

fn file_list(failures: &[(String, AwsError)]) -> String {
    let mut s = failures
        .iter()
        .take(3)
        .map(|(key, e)| match e {
            // Already names the file.
            AwsError::TrailFile { .. } => e.to_string(),
            _ => format!("{key}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > 3 {
        s.push_str(&format!("; and {} more", failures.len() - 3));
    }
    s
}

fn region_list(failures: &[(String, AwsError)]) -> String {
    failures
        .iter()
        .map(|(r, e)| format!("{r}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AwsError {
    pub fn is_retriable(&self) -> bool {
        match self {
            AwsError::Api(e) => e.retriable,
            AwsError::RetriesExhausted { .. } | AwsError::Store(_) => true,
            AwsError::Config(_) | AwsError::TrailFile { .. } => false,
            AwsError::Regions { failures, .. } | AwsError::Files { failures } => {
                failures.iter().all(|(_, e)| e.is_retriable())
            }
        }
    }

    /// Bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AwsError::Config(_) => "config",
            AwsError::Api(_) => "api",
            AwsError::RetriesExhausted { .. } => "retries_exhausted",
            AwsError::TrailFile { .. } => "trail_file",
            AwsError::Store(_) => "store",
            AwsError::Regions { .. } => "regions",
            AwsError::Files { .. } => "trail_files",
        }
    }
}

/// Counters for one collector, shared with the daemon's metrics endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// AWS API requests (every attempt).
    pub requests: AtomicU64,
    /// CloudTrail records read (kept, duplicate or quarantined; not those filtered by name).
    pub records: AtomicU64,
    pub stored: AtomicU64,
    pub quarantined: AtomicU64,
    /// Failed polls.
    pub errors: AtomicU64,
    /// Attempts repeated after throttling, 5xx or network errors.
    pub retries: AtomicU64,
    /// Trail files read (S3 mode).
    pub files: AtomicU64,
    /// Trail file reads that failed (S3 mode: access denied, KMS, archived; tried again).
    pub files_failed: AtomicU64,
    /// Queue messages that name no trail file in a shape we know; left for the queue's redrive
    /// policy (counted each time one is received).
    pub messages_unrecognized: AtomicU64,
    /// `now - oldest region checkpoint`, seconds.
    pub lag_secs: AtomicI64,
    /// Checkpoints found ahead of the host clock and re-based (the clock ran fast, then was
    /// set back).
    pub checkpoint_rebases: AtomicU64,
    /// Records that arrived later than `lookback_secs`, found by the late sweep.
    pub records_too_late: AtomicU64,
    /// Per LookupEvents region (or `s3`): its own outcome, errors and lag.
    regions: Mutex<BTreeMap<String, RegionMetrics>>,
}

/// One region's figures (`crosswind_collector_region_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionMetrics {
    /// Polls of this region that failed.
    pub errors: u64,
    /// Whether the region's last poll succeeded (`None` before its first).
    pub up: Option<bool>,
    /// `now - checkpoint` after its last poll (`None` while it has none).
    pub lag_secs: Option<i64>,
}

/// A copy of [`Metrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub records: u64,
    pub stored: u64,
    pub quarantined: u64,
    pub errors: u64,
    pub retries: u64,
    pub files: u64,
    pub files_failed: u64,
    pub messages_unrecognized: u64,
    pub lag_secs: i64,
    pub checkpoint_rebases: u64,
    pub records_too_late: u64,
}

impl Metrics {
    /// Every region polled so far, by name.
    pub fn regions(&self) -> Vec<(String, RegionMetrics)> {
        self.regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn region(&self, region: &str, f: impl FnOnce(&mut RegionMetrics)) {
        let mut m = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(region.to_owned()).or_default());
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            requests: l(&self.requests),
            records: l(&self.records),
            stored: l(&self.stored),
            quarantined: l(&self.quarantined),
            errors: l(&self.errors),
            retries: l(&self.retries),
            files: l(&self.files),
            files_failed: l(&self.files_failed),
            messages_unrecognized: l(&self.messages_unrecognized),
            lag_secs: self.lag_secs.load(Ordering::Relaxed),
            checkpoint_rebases: l(&self.checkpoint_rebases),
            records_too_late: l(&self.records_too_late),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// What one poll did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    /// Pages (LookupEvents) or files (S3) committed.
    pub pages: u64,
    pub files: u64,
    pub requests: u64,
    pub retries: u64,
    pub records: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// Records skipped because their event name is not configured (S3 mode).
    pub filtered: u64,
    /// SQS notifications deleted after their files were committed.
    pub messages_deleted: u64,
    /// Trail files that could not be read this poll.
    pub files_failed: u64,
    /// Records the late sweep found: they arrived later than `lookback_secs`.
    pub too_late: u64,
}

impl PollStats {
    fn add_batch(&mut self, b: &crosswind_store::BatchStats) {
        self.stored += b.stored;
        self.duplicates += b.duplicates;
        self.quarantined += b.quarantined;
    }
}

/// One checkpoint as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionCheckpoint {
    /// Region (LookupEvents) or `s3` (the listing watermark).
    pub scope: String,
    pub checkpoint: DateTime<Utc>,
    pub lag_secs: i64,
}

/// What `crosswind status` shows for one collector (store only, no network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorStatus {
    pub name: String,
    /// `aws_cloudtrail`.
    pub kind: &'static str,
    pub checkpoints: Vec<RegionCheckpoint>,
    /// Oldest checkpoint across regions.
    pub checkpoint: Option<DateTime<Utc>>,
    pub lag_secs: Option<i64>,
    /// Trail files done (S3 mode).
    pub files_done: u64,
    /// Trail files that could not be read and are tried again (S3 mode).
    pub files_failing: u64,
    pub last_error: Option<String>,
    /// `(region, error)` for each LookupEvents region whose last poll failed.
    pub region_errors: Vec<(String, String)>,
    /// Records that arrived later than `lookback_secs` (found by the late sweep), all time.
    pub too_late: u64,
}

pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn last_error_name(name: &str) -> String {
    format!("aws:{name}:last_error")
}

/// Records found by the late sweeps (arrived later than `lookback_secs`), all time.
fn too_late_name(name: &str) -> String {
    format!("aws:{name}:too_late")
}

fn region_error_name(name: &str, region: &str) -> String {
    format!("aws:{name}:last_error:{region}")
}

/// Reads a collector's status from the store.
pub fn status(name: &str, store: &Store, now: DateTime<Utc>) -> Result<CollectorStatus, AwsError> {
    let prefix = format!("aws:{name}:");
    let mut checkpoints = Vec::new();
    let mut files_done = 0;
    let mut files_failing = 0;
    let mut last_error = None;
    let mut region_errors = Vec::new();
    let mut too_late = 0;
    for c in store.checkpoints()? {
        let Some(rest) = c.name.strip_prefix(&prefix) else {
            continue;
        };
        if rest == "last_error" {
            last_error = Some(c.value).filter(|v| !v.is_empty());
        } else if rest == "too_late" {
            too_late = c.value.parse().unwrap_or(0);
        } else if rest.starts_with("swept:") {
            // Late-sweep positions: behind the checkpoints by design, not a lag.
        } else if let Some(region) = rest.strip_prefix("last_error:") {
            if !c.value.is_empty() {
                region_errors.push((region.to_owned(), c.value));
            }
        } else if rest.starts_with("s3key:") {
            files_done += 1;
        } else if rest.starts_with("s3failed:") {
            files_failing += 1;
        } else if let Some(t) = parse_time(&c.value) {
            checkpoints.push(RegionCheckpoint {
                scope: rest.to_owned(),
                checkpoint: t,
                lag_secs: (now - t).num_seconds(),
            });
        }
    }
    let checkpoint = checkpoints.iter().map(|c| c.checkpoint).min();
    Ok(CollectorStatus {
        name: name.to_owned(),
        kind: "aws_cloudtrail",
        lag_secs: checkpoint.map(|c| (now - c).num_seconds()),
        checkpoint,
        checkpoints,
        files_done,
        files_failing,
        last_error,
        region_errors,
        too_late,
    })
}

/// Backoff timings; tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryTuning {
    pub base: Duration,
    pub cap: Duration,
    /// First wait after a `ThrottlingException` (doubles, jittered).
    pub throttle_base: Duration,
}

impl Default for RetryTuning {
    fn default() -> Self {
        RetryTuning {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            throttle_base: Duration::from_secs(1),
        }
    }
}

impl RetryTuning {
    pub(crate) fn backoff(&self, base: Duration, attempt: u32) -> Duration {
        let step = base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Where credentials come from.
#[derive(Clone, Debug, Default)]
pub enum CredentialSource {
    /// The SDK's default chain (env, profile, web identity, ECS, IMDS).
    #[default]
    DefaultChain,
    /// Fixed keys (tests, emulators).
    Static(Credentials),
}

/// One account's (or trail's) CloudTrail collector.
#[derive(Debug)]
pub struct AwsCollector {
    cfg: AwsConfig,
    base: aws_config::SdkConfig,
    metrics: Arc<Metrics>,
    tuning: RetryTuning,
    pacers: std::collections::HashMap<String, lookup::Pacer>,
    /// A checkpoint ahead of the host clock was reported (once per collector).
    clock_warned: bool,
    /// Trail files this poll could not read (`(key, error)`), S3 mode.
    file_failures: Vec<(String, AwsError)>,
    /// The newest event time collected before this poll stored anything (`None` until asked).
    newest_before_poll: Option<Option<DateTime<Utc>>>,
}

// === impl AwsCollector ===

impl AwsCollector {
    /// Builds the collector with the default credential chain (and `role_arn` when set).
    pub async fn new(cfg: AwsConfig) -> Result<AwsCollector, AwsError> {
        AwsCollector::with_credentials(cfg, CredentialSource::DefaultChain).await
    }

    pub async fn with_credentials(
        cfg: AwsConfig,
        creds: CredentialSource,
    ) -> Result<AwsCollector, AwsError> {
        if let Some(p) = cfg.validate().first() {
            return Err(AwsError::Config(format!("{}: {}", p.key, p.message)));
        }
        let home_region = cfg
            .regions
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let timeout = Duration::from_secs(cfg.request_timeout_secs);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(home_region))
            // Our own loop retries LookupEvents (so every attempt is logged and counted);
            // S3/SQS/STS use the SDK's standard retries.
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_retries.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(30)))
                    .operation_attempt_timeout(timeout)
                    .build(),
            );
        if let Some(u) = cfg.endpoint_url() {
            loader = loader.endpoint_url(u);
        }
        if let CredentialSource::Static(c) = creds {
            loader = loader.credentials_provider(c);
        }
        let mut base = loader.load().await;
        if let Some(role) = &cfg.role_arn {
            let mut b = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name(format!("crosswind-{}", cfg.name))
                .configure(&base);
            if let Some(ext) = &cfg.external_id {
                b = b.external_id(ext.clone());
            }
            let provider = b.build().await;
            // The SDK's identity cache refreshes the assumed-role credentials before they expire.
            base = base
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }
        Ok(AwsCollector {
            cfg,
            base,
            metrics: Arc::new(Metrics::default()),
            tuning: RetryTuning::default(),
            pacers: Default::default(),
            clock_warned: false,
            file_failures: Vec::new(),
            newest_before_poll: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &AwsConfig {
        &self.cfg
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn set_retry_tuning(&mut self, t: RetryTuning) {
        self.tuning = t;
    }

    pub fn status(&self, store: &Store, now: DateTime<Utc>) -> Result<CollectorStatus, AwsError> {
        status(&self.cfg.name, store, now)
    }

    /// One poll of every region (LookupEvents) or of the queue / bucket (S3).
    pub async fn poll_once(
        &mut self,
        store: &mut Store,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AwsError> {
        self.poll(store, None, now).await
    }

    /// Like [`AwsCollector::poll_once`] but from `since` (`collect --since`).
    pub async fn poll_since(
        &mut self,
        store: &mut Store,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AwsError> {
        self.poll(store, Some(since), now).await
    }

    async fn poll(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AwsError> {
        let requests_before = self.metrics.requests.load(Ordering::Relaxed);
        let retries_before = self.metrics.retries.load(Ordering::Relaxed);
        self.newest_before_poll = None;
        let res = match self.cfg.mode {
            Mode::LookupEvents => self.poll_lookup(store, since, now).await,
            Mode::S3 => self.poll_s3(store, since, now).await,
        };
        match res {
            Ok(mut stats) => {
                stats.requests = self.metrics.requests.load(Ordering::Relaxed) - requests_before;
                stats.retries = self.metrics.retries.load(Ordering::Relaxed) - retries_before;
                let mut b = store.begin()?;
                b.set_checkpoint(&last_error_name(&self.cfg.name), "")?;
                b.commit()?;
                self.update_lag(store, now);
                tracing::info!(
                    collector = %self.cfg.name,
                    pages = stats.pages,
                    files = stats.files,
                    requests = stats.requests,
                    retries = stats.retries,
                    stored = stats.stored,
                    duplicates = stats.duplicates,
                    quarantined = stats.quarantined,
                    "Poll complete."
                );
                Ok(stats)
            }
            Err(e) => {
                add(&self.metrics.errors, 1);
                // The regions that were read moved on; one that failed shows in its own gauge.
                self.update_lag(store, now);
                tracing::warn!(collector = %self.cfg.name, error = %e, error_type = e.kind(), "Poll failed.");
                if let Ok(mut b) = store.begin() {
                    let _ = b.set_checkpoint(&last_error_name(&self.cfg.name), &e.to_string());
                    let _ = b.commit();
                }
                Err(e)
            }
        }
    }

    fn update_lag(&self, store: &Store, now: DateTime<Utc>) {
        if let Ok(st) = status(&self.cfg.name, store, now)
            && let Some(lag) = st.lag_secs
        {
            self.metrics.lag_secs.store(lag, Ordering::Relaxed);
        }
    }

    /// The newest event time this collector stored, at most `now`, as it was before this poll
    /// stored anything: a scope re-based later in the poll must not start from records another
    /// scope just read. Call it before reading when any checkpoint is ahead.
    pub(crate) fn newest_collected(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AwsError> {
        if let Some(t) = self.newest_before_poll {
            return Ok(t);
        }
        let t = store
            .newest_event_time(&self.origin(), now.timestamp_millis())?
            .and_then(DateTime::from_timestamp_millis);
        self.newest_before_poll = Some(t);
        Ok(t)
    }

    /// The checkpoint to read from. Checkpoints are our clock's `now`; one later than `now` was
    /// written while the host clock ran fast and has since been set back. Taken as it is, every
    /// poll would read nothing until the clock caught up and then start there, skipping the
    /// stretch in between. It is replaced by the newest event time this collector stored (the
    /// source's clock, so what it had really delivered), at most `now`, at least
    /// `now - initial_backfill_secs` (as far as a first poll reads).
    pub(crate) fn rebase_if_ahead(
        &mut self,
        store: &Store,
        scope: &str,
        checkpoint: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AwsError> {
        let Some(cp) = checkpoint.filter(|cp| *cp > now) else {
            return Ok(checkpoint);
        };
        let backfill_ms =
            (self.cfg.initial_backfill_secs.min(i64::MAX as u64 / 4_000) * 1_000) as i64;
        let newest = self.newest_collected(store, now)?;
        let rebased = DateTime::from_timestamp_millis(rebased(
            newest.map(|t| t.timestamp_millis()),
            now.timestamp_millis(),
            backfill_ms,
        ))
        .unwrap_or(now);
        add(&self.metrics.checkpoint_rebases, 1);
        let ahead_secs = (cp - now).num_seconds();
        if !self.clock_warned {
            self.clock_warned = true;
            tracing::warn!(
                collector = %self.cfg.name,
                scope,
                checkpoint = %fmt_time(cp),
                now = %fmt_time(now),
                ahead_secs,
                rebased = %fmt_time(rebased),
                "Checkpoint is ahead of the host clock (it ran fast and was set back); reading again from the newest record collected so nothing is skipped."
            );
        } else {
            tracing::debug!(collector = %self.cfg.name, scope, ahead_secs, rebased = %fmt_time(rebased), "Checkpoint ahead of the host clock re-based.");
        }
        Ok(Some(rebased))
    }

    pub(crate) fn window_start(
        &self,
        since: Option<DateTime<Utc>>,
        checkpoint: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let secs = |s: u64| chrono::Duration::seconds(s.min(i64::MAX as u64 / 4) as i64);
        let t = match (since, checkpoint) {
            (Some(s), _) => s,
            (None, Some(cp)) => cp - secs(self.cfg.lookback_secs),
            (None, None) => now - secs(self.cfg.initial_backfill_secs),
        };
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }

    pub(crate) fn origin(&self) -> String {
        format!("crosswind:{}", self.cfg.name)
    }
}

/// Normalises one raw CloudTrail record into the batch (insert with dedup, or quarantine).
pub(crate) fn store_record(
    batch: &mut Batch<'_>,
    raw: &[u8],
    origin: &str,
    position: &dyn Fn() -> String,
) -> Result<(), AwsError> {
    match normalize(raw, Some(FormatHint::Exact(SourceFormat::CloudTrail))) {
        Ok(n) => {
            batch.insert(&NewRecord {
                event: &n.event,
                format: n.format,
                raw,
                origin,
            })?;
        }
        Err(rej) => {
            let pos = position();
            batch.quarantine_once(&QuarantineRecord {
                origin,
                position: Some(&pos),
                reason: &rej.reason,
                raw,
            })?;
        }
    }
    Ok(())
}
