//! The pull function: (checkpoint, window) → pages of sign-ins → one store transaction per page,
//! with the checkpoint advanced only in the transaction that commits the window's last page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, SecondsFormat, Utc};
use crosswind_model::SourceFormat;
use crosswind_normalize::{FormatHint, normalize};
use crosswind_store::window::{plan_late_sweep, rebased};
use crosswind_store::{NewRecord, QuarantineRecord, Store};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{GraphClient, RetryTuning, build_http};
use crate::config::{AzureConfig, Env, ProcessEnv};
use crate::error::AzureError;
use crate::metrics::Metrics;
use crate::token::TokenSource;

/// What one poll did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Inclusive window that was read: `createdDateTime ge start and le end`.
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    /// Pages committed (each its own transaction).
    pub pages: u64,
    /// HTTP requests to Graph, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Records read from pages.
    pub records: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// The checkpoint after the poll.
    pub checkpoint: Option<DateTime<Utc>>,
    /// Sign-ins the late sweep found: they arrived later than `lookback_secs`.
    pub too_late: u64,
    /// Risk detections (`None` when `risk_detections = false`). Counted apart from the
    /// sign-in figures above; a failure there is in `risk.error`, never the poll's error.
    pub risk: Option<RiskStats>,
}

/// What one poll of `identityProtection/riskDetections` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RiskStats {
    /// Inclusive window that was read: `lastUpdatedDateTime ge start and le end`.
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub pages: u64,
    /// HTTP requests to the risk detections endpoint, retries included.
    pub requests: u64,
    pub records: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// The risk detections checkpoint after the poll.
    pub checkpoint: Option<DateTime<Utc>>,
    /// Detection states the late sweep found (later than `lookback_secs`).
    pub too_late: u64,
    /// Why the query failed (a 403 names the permission to grant); the sign-ins went on.
    pub error: Option<String>,
}

/// The risk detections feed in `crosswind status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// Newest `lastUpdatedDateTime` fully covered.
    pub checkpoint: Option<DateTime<Utc>>,
    pub lag_secs: Option<i64>,
    pub last_error: Option<String>,
    pub too_late: u64,
}

/// What `crosswind status` shows for one collector (read from the store, no network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorStatus {
    pub name: String,
    /// `azure_signins`.
    pub kind: &'static str,
    /// Newest time fully covered (`createdDateTime le` of the last complete window).
    pub checkpoint: Option<DateTime<Utc>>,
    /// When the checkpoint was written (epoch ms).
    pub checkpoint_updated_at: Option<i64>,
    /// `now - checkpoint` in seconds.
    pub lag_secs: Option<i64>,
    /// The last poll's error, if the last poll failed.
    pub last_error: Option<String>,
    /// Sign-ins that arrived later than `lookback_secs` (found by the late sweep), all time.
    pub too_late: u64,
    /// `(event type, error)` for each sign-in event-type query whose last poll failed.
    pub event_type_errors: Vec<(String, String)>,
    /// The risk detections query (its rows are empty before its first poll).
    pub risk_detections: FeedStatus,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow, default)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

fn last_error_name(name: &str) -> String {
    format!("azure:{name}:last_error")
}

/// What a page is read from: the endpoint, the record shape and the filtered time field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    SignIns,
    RiskDetections,
}

impl Feed {
    fn format(self) -> SourceFormat {
        match self {
            Feed::SignIns => SourceFormat::GraphSignIn,
            Feed::RiskDetections => SourceFormat::GraphRiskDetection,
        }
    }
}

fn risk_checkpoint_name(name: &str) -> String {
    format!("azure:{name}:risk")
}

fn risk_error_name(name: &str) -> String {
    format!("azure:{name}:risk:last_error")
}

fn risk_swept_name(name: &str) -> String {
    format!("azure:{name}:risk:swept")
}

fn risk_too_late_name(name: &str) -> String {
    format!("azure:{name}:risk:too_late")
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads a collector's status from the store; works without credentials or network.
pub fn status(
    name: &str,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<CollectorStatus, AzureError> {
    let cp = store.checkpoint(&format!("azure:{name}"))?;
    let checkpoint = cp
        .as_ref()
        .and_then(|c| DateTime::parse_from_rfc3339(&c.value).ok())
        .map(|t| t.with_timezone(&Utc));
    let last_error = store
        .checkpoint(&last_error_name(name))?
        .map(|c| c.value)
        .filter(|v| !v.is_empty());
    Ok(CollectorStatus {
        name: name.to_owned(),
        kind: "azure_signins",
        checkpoint,
        checkpoint_updated_at: cp.map(|c| c.updated_at),
        lag_secs: checkpoint.map(|c| (now - c).num_seconds()),
        last_error,
        too_late: store
            .checkpoint(&too_late_name(name))?
            .and_then(|c| c.value.parse().ok())
            .unwrap_or(0),
        event_type_errors: {
            let prefix = format!("azure:{name}:last_error:");
            store
                .checkpoints()?
                .into_iter()
                .filter(|c| !c.value.is_empty())
                .filter_map(|c| {
                    let t = c.name.strip_prefix(&prefix)?.to_owned();
                    Some((t, c.value))
                })
                .collect()
        },
        risk_detections: {
            let checkpoint = read_time(store, &risk_checkpoint_name(name))?;
            FeedStatus {
                checkpoint,
                lag_secs: checkpoint.map(|c| (now - c).num_seconds()),
                last_error: store
                    .checkpoint(&risk_error_name(name))?
                    .map(|c| c.value)
                    .filter(|v| !v.is_empty()),
                too_late: store
                    .checkpoint(&risk_too_late_name(name))?
                    .and_then(|c| c.value.parse().ok())
                    .unwrap_or(0),
            }
        },
    })
}

/// One Entra tenant's sign-in collector.
#[derive(Debug)]
pub struct AzureCollector {
    cfg: AzureConfig,
    client: GraphClient,
    metrics: Arc<Metrics>,
    base: Url,
    /// `{graph_url}/{api_version}/identityProtection/riskDetections`.
    risk_base: Url,
    /// A checkpoint ahead of the host clock was reported (once per collector).
    clock_warned: bool,
    /// The newest event time collected before this poll stored anything (`None` until asked).
    newest_before_poll: Option<Option<DateTime<Utc>>>,
}

// === impl AzureCollector ===

impl AzureCollector {
    /// Builds the collector (reads the secret, sets up TLS); no network yet.
    pub fn new(cfg: AzureConfig) -> Result<AzureCollector, AzureError> {
        AzureCollector::with_env(cfg, &ProcessEnv)
    }

    pub fn with_env(cfg: AzureConfig, env: &dyn Env) -> Result<AzureCollector, AzureError> {
        let problems = cfg.validate_with_env(env);
        if let Some(p) = problems.first() {
            return Err(AzureError::Config(format!("{}: {}", p.key, p.message)));
        }
        let http = build_http(&cfg)?;
        let tokens = TokenSource::from_config(&cfg, env, &http)?;
        AzureCollector::with_parts(cfg, http, tokens)
    }

    /// Builds the collector from an already made HTTP client and token source (tests, fakes).
    pub fn with_parts(
        cfg: AzureConfig,
        http: reqwest::Client,
        tokens: TokenSource,
    ) -> Result<AzureCollector, AzureError> {
        let signins = format!(
            "{}/{}/auditLogs/signIns",
            cfg.graph_url.trim_end_matches('/'),
            cfg.api_version
        );
        let base = Url::parse(&signins)
            .ok()
            .filter(|u| u.host_str().is_some())
            .ok_or_else(|| {
                AzureError::Config(format!("graph_url: {:?} is not a URL", cfg.graph_url))
            })?;
        let risk_base = Url::parse(&format!(
            "{}/{}/identityProtection/riskDetections",
            cfg.graph_url.trim_end_matches('/'),
            cfg.api_version
        ))
        .map_err(|_| AzureError::Config(format!("graph_url: {:?} is not a URL", cfg.graph_url)))?;
        let metrics = Arc::new(Metrics::default());
        metrics.risk_up.store(-1, Ordering::Relaxed);
        let client = GraphClient::new(&cfg, http, tokens, metrics.clone());
        Ok(AzureCollector {
            cfg,
            client,
            metrics,
            base,
            risk_base,
            clock_warned: false,
            newest_before_poll: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &AzureConfig {
        &self.cfg
    }

    /// Shared counters (for the daemon's `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Shortens backoff timings (tests).
    pub fn set_retry_tuning(&mut self, tuning: RetryTuning) {
        self.client.tuning = tuning;
    }

    /// The status view of this collector.
    pub fn status(&self, store: &Store, now: DateTime<Utc>) -> Result<CollectorStatus, AzureError> {
        status(&self.cfg.name, store, now)
    }

    /// One poll: reads `[checkpoint - lookback_secs, now]` (the first time
    /// `[now - initial_backfill_secs, now]`), all pages, every configured event type.
    pub async fn poll_once(
        &mut self,
        store: &mut Store,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AzureError> {
        self.poll(store, None, now).await
    }

    /// Like [`AzureCollector::poll_once`] but from `since` (`collect --since`).
    pub async fn poll_since(
        &mut self,
        store: &mut Store,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AzureError> {
        self.poll(store, Some(since), now).await
    }

    async fn poll(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AzureError> {
        let mut res = self.poll_inner(store, since, now).await;
        if let Err(e) = &res {
            Metrics::add(&self.metrics.errors, 1);
            tracing::warn!(collector = %self.cfg.name, error = %e, error_type = e.kind(), "Poll failed.");
            // Best effort: the status view shows it; a store failure here changes nothing.
            if let Ok(mut b) = store.begin() {
                let _ = b.set_checkpoint(&last_error_name(&self.cfg.name), &e.to_string());
                let _ = b.commit();
            }
        }
        // Risk detections are read whatever became of the sign-ins, unless the same failure
        // (token, network, store) would only repeat itself.
        let risk_too = match &res {
            Ok(_) | Err(AzureError::EventTypes { .. }) => true,
            Err(AzureError::Graph { status, .. }) => !matches!(status, 401),
            Err(_) => false,
        };
        if self.cfg.risk_detections && risk_too {
            let risk = self.poll_risk(store, since, now).await;
            if let Ok(stats) = &mut res {
                stats.risk = Some(risk);
            }
        }
        res
    }

    /// One poll of `identityProtection/riskDetections`: `lastUpdatedDateTime` from its own
    /// checkpoint minus `lookback_secs` to now, so a detection updated later (dismissed,
    /// remediated, confirmed) is read again and stored as a new state (`<id>@<lastUpdated>`,
    /// docs/schema.md). Never fails the poll: its error is stored, shown by `status` and
    /// `/readyz`, and logged as a warning once (then at debug until it changes or clears).
    async fn poll_risk(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> RiskStats {
        let requests_before = self.metrics.requests.load(Ordering::Relaxed);
        let mut rs = RiskStats::default();
        let res = self.poll_risk_inner(store, since, now, &mut rs).await;
        let requests = self.metrics.requests.load(Ordering::Relaxed) - requests_before;
        rs.requests = requests;
        Metrics::add(&self.metrics.risk_requests, requests);
        let error_name = risk_error_name(&self.cfg.name);
        let before = store
            .checkpoint(&error_name)
            .ok()
            .flatten()
            .map(|c| c.value)
            .unwrap_or_default();
        match res {
            Ok(()) => {
                self.metrics.risk_up.store(1, Ordering::Relaxed);
                if !before.is_empty() {
                    tracing::info!(collector = %self.cfg.name, "Risk detections are readable again.");
                    if let Ok(mut b) = store.begin() {
                        let _ = b.set_checkpoint(&error_name, "");
                        let _ = b.commit();
                    }
                }
                tracing::info!(
                    collector = %self.cfg.name,
                    window_start = %rs.window_start.map(fmt_time).unwrap_or_default(),
                    pages = rs.pages,
                    requests = rs.requests,
                    stored = rs.stored,
                    duplicates = rs.duplicates,
                    quarantined = rs.quarantined,
                    "Risk detections poll complete."
                );
            }
            Err(e) => {
                Metrics::add(&self.metrics.risk_errors, 1);
                self.metrics.risk_up.store(0, Ordering::Relaxed);
                let text = e.to_string();
                if before != text {
                    tracing::warn!(collector = %self.cfg.name, error = %e, error_type = e.kind(), "Risk detections cannot be read; sign-ins are still collected. Reported once: later polls fail the same way quietly until this changes.");
                } else {
                    tracing::debug!(collector = %self.cfg.name, error = %e, "Risk detections still cannot be read.");
                }
                // Best effort, as for the sign-in error.
                if let Ok(mut b) = store.begin() {
                    let _ = b.set_checkpoint(&error_name, &text);
                    let _ = b.commit();
                }
                rs.error = Some(text);
            }
        }
        rs
    }

    async fn poll_risk_inner(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        rs: &mut RiskStats,
    ) -> Result<(), AzureError> {
        let cp_name = risk_checkpoint_name(&self.cfg.name);
        let error_name = risk_error_name(&self.cfg.name);
        let lookback =
            chrono::Duration::seconds(self.cfg.lookback_secs.min(i64::MAX as u64 / 2) as i64);
        let backfill = chrono::Duration::seconds(
            self.cfg.initial_backfill_secs.min(i64::MAX as u64 / 2) as i64,
        );
        let stored = read_time(store, &cp_name)?;
        if stored.is_some_and(|cp| cp > now) {
            self.newest_collected(store, now)?;
        }
        let checkpoint = self.rebase_if_ahead(store, stored, now)?;
        let end = trunc_secs(now);
        let start = trunc_secs(match (since, checkpoint) {
            (Some(s), _) => s,
            (None, Some(cp)) => cp - lookback,
            (None, None) => now - backfill,
        });
        rs.window_start = Some(start);
        rs.window_end = Some(end);
        rs.checkpoint = checkpoint;
        if start > end {
            return Ok(());
        }
        let new_checkpoint = checkpoint.map_or(end, |cp| cp.max(end));
        let close = |_stored: u64| {
            vec![
                (cp_name.clone(), fmt_time(new_checkpoint)),
                (error_name.clone(), String::new()),
            ]
        };
        let mut sub = PollStats::default();
        let read = self
            .read_window(
                store,
                Feed::RiskDetections,
                (start, end),
                &[None],
                &close,
                &mut sub,
            )
            .await?;
        rs.checkpoint = Some(new_checkpoint);
        self.metrics
            .risk_lag_secs
            .store((now - new_checkpoint).num_seconds(), Ordering::Relaxed);
        rs.pages += read.pages;
        if since.is_none()
            && let Some(plan) = plan_late_sweep(
                store,
                &risk_swept_name(&self.cfg.name),
                &risk_too_late_name(&self.cfg.name),
                start.timestamp_millis(),
                self.cfg.lookback_secs,
            )?
        {
            let ms = |t: i64| DateTime::from_timestamp_millis(t).unwrap_or(start);
            let (from, to) = (ms(plan.from), ms(plan.to));
            let close = |n: u64| plan.closing(n);
            let late = self
                .read_window(
                    store,
                    Feed::RiskDetections,
                    (from, to),
                    &[None],
                    &close,
                    &mut sub,
                )
                .await?;
            rs.pages += late.pages;
            rs.too_late += late.stored;
            if late.stored > 0 {
                Metrics::add(&self.metrics.risk_records_too_late, late.stored);
                tracing::warn!(
                    collector = %self.cfg.name,
                    records = late.stored,
                    from = %fmt_time(from),
                    to = %fmt_time(to),
                    lookback_secs = self.cfg.lookback_secs,
                    "Risk detection states arrived later than lookback_secs; the late sweep collected them. Raise lookback_secs: later ones still may be missed."
                );
            }
        }
        rs.records = sub.records;
        rs.stored = sub.stored;
        rs.duplicates = sub.duplicates;
        rs.quarantined = sub.quarantined;
        Ok(())
    }

    /// Each event-type query has its own checkpoint (`azure:<name>:type:<type>`; v1.0's single
    /// query uses `azure:<name>`): one that keeps failing (a filter Graph refuses, an expired
    /// `nextLink`) keeps its checkpoint and error while the others move on, instead of every
    /// poll re-reading a window that grows from the last time all of them succeeded.
    /// `azure:<name>` is the oldest of them (status, lag).
    async fn poll_inner(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AzureError> {
        let overall_name = self.cfg.checkpoint_name();
        let overall = read_time(store, &overall_name)?;
        let lookback =
            chrono::Duration::seconds(self.cfg.lookback_secs.min(i64::MAX as u64 / 2) as i64);
        let backfill = chrono::Duration::seconds(
            self.cfg.initial_backfill_secs.min(i64::MAX as u64 / 2) as i64,
        );
        let end = trunc_secs(now);
        let mut stats = PollStats {
            window_end: Some(end),
            checkpoint: overall,
            ..PollStats::default()
        };
        let requests_before = self.metrics.requests.load(Ordering::Relaxed);
        let retries_before = self.metrics.retries.load(Ordering::Relaxed);
        let filters = self.cfg.event_type_filters();
        self.newest_before_poll = None;
        for filter in &filters {
            let cp = read_time(
                store,
                &type_checkpoint_name(&self.cfg.name, filter.as_deref()),
            )?;
            if cp.or(overall).is_some_and(|cp| cp > now) {
                // Before any query stores anything (see `newest_collected`).
                self.newest_collected(store, now)?;
                break;
            }
        }
        let mut failures: Vec<(String, AzureError)> = Vec::new();
        let mut sweep_from: Option<DateTime<Utc>> = None;
        for filter in &filters {
            let cp_name = type_checkpoint_name(&self.cfg.name, filter.as_deref());
            let error_name = type_error_name(&self.cfg.name, filter.as_deref());
            // Stores from before per-type checkpoints carry on from the collector's.
            let stored = read_time(store, &cp_name)?.or(overall);
            let checkpoint = self.rebase_if_ahead(store, stored, now)?;
            let start = trunc_secs(match (since, checkpoint) {
                (Some(s), _) => s,
                (None, Some(cp)) => cp - lookback,
                (None, None) => now - backfill,
            });
            stats.window_start = Some(stats.window_start.map_or(start, |s| s.min(start)));
            sweep_from = Some(sweep_from.map_or(start, |s| s.min(start)));
            if start > end {
                continue;
            }
            // Never move the checkpoint backwards (`--since` in the past); one ahead of the
            // clock was re-based above.
            let new_checkpoint = checkpoint.map_or(end, |cp| cp.max(end));
            let close = |_stored: u64| {
                vec![
                    (cp_name.clone(), fmt_time(new_checkpoint)),
                    (error_name.clone(), String::new()),
                ]
            };
            let res = self
                .read_window(
                    store,
                    Feed::SignIns,
                    (start, end),
                    std::slice::from_ref(filter),
                    &close,
                    &mut stats,
                )
                .await;
            match res {
                Ok(w) => stats.pages += w.pages,
                Err(e) if filters.len() > 1 && concerns_one_query(&e) => {
                    let t = filter.as_deref().unwrap_or("signIns");
                    tracing::warn!(collector = %self.cfg.name, event_type = t, error = %e, error_type = e.kind(), "Sign-in query failed; its checkpoint stays, the other event types go on.");
                    let mut b = store.begin()?;
                    b.set_checkpoint(&error_name, &e.to_string())?;
                    b.commit()?;
                    failures.push((t.to_owned(), e));
                }
                Err(e) => return Err(e),
            }
        }
        // The collector's checkpoint: the oldest of the queries' (what is fully covered).
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut all_have_one = true;
        for filter in &filters {
            match read_time(
                store,
                &type_checkpoint_name(&self.cfg.name, filter.as_deref()),
            )? {
                Some(t) => oldest = Some(oldest.map_or(t, |o| o.min(t))),
                None => all_have_one = false,
            }
        }
        {
            // Its own scope: a transaction is never held across an await.
            let mut b = store.begin()?;
            if let Some(t) = oldest.filter(|_| all_have_one) {
                b.set_checkpoint(&overall_name, &fmt_time(t))?;
                stats.checkpoint = Some(t);
                self.metrics
                    .lag_secs
                    .store((now - t).num_seconds(), Ordering::Relaxed);
            }
            if failures.is_empty() {
                b.set_checkpoint(&last_error_name(&self.cfg.name), "")?;
            }
            b.commit()?;
        }
        if since.is_none()
            && failures.is_empty()
            && let Some(from) = sweep_from
        {
            self.late_sweep(store, from, &mut stats).await?;
        }
        stats.requests = self.metrics.requests.load(Ordering::Relaxed) - requests_before;
        stats.retries = self.metrics.retries.load(Ordering::Relaxed) - retries_before;
        tracing::info!(
            collector = %self.cfg.name,
            window_start = %stats.window_start.map(fmt_time).unwrap_or_default(),
            window_end = %fmt_time(end),
            pages = stats.pages,
            requests = stats.requests,
            retries = stats.retries,
            stored = stats.stored,
            duplicates = stats.duplicates,
            quarantined = stats.quarantined,
            "Poll complete."
        );
        if failures.is_empty() {
            Ok(stats)
        } else {
            Err(AzureError::EventTypes {
                total: filters.len(),
                failures,
            })
        }
    }

    /// The newest `createdDateTime` this collector stored, at most `now`, as it was before this
    /// poll stored anything: a query re-based later in the poll must not start from sign-ins
    /// another query just read. Call it before reading when any checkpoint is ahead.
    fn newest_collected(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AzureError> {
        if let Some(t) = self.newest_before_poll {
            return Ok(t);
        }
        let t = store
            .newest_event_time(
                &format!("crosswind:{}", self.cfg.name),
                now.timestamp_millis(),
            )?
            .and_then(DateTime::from_timestamp_millis);
        self.newest_before_poll = Some(t);
        Ok(t)
    }

    /// The checkpoint to read from. Checkpoints are our clock's `now`; one later than `now` was
    /// written while the host clock ran fast and has since been set back. Taken as it is, every
    /// poll would read nothing until the clock caught up and then start there, skipping the
    /// stretch in between. It is replaced by the newest `createdDateTime` this collector stored
    /// (Graph's clock, so what it had really served), at most `now`, at least
    /// `now - initial_backfill_secs` (as far as a first poll reads).
    fn rebase_if_ahead(
        &mut self,
        store: &Store,
        checkpoint: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AzureError> {
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
        Metrics::add(&self.metrics.checkpoint_rebases, 1);
        let ahead_secs = (cp - now).num_seconds();
        if !self.clock_warned {
            self.clock_warned = true;
            tracing::warn!(
                collector = %self.cfg.name,
                checkpoint = %fmt_time(cp),
                now = %fmt_time(now),
                ahead_secs,
                rebased = %fmt_time(rebased),
                "Checkpoint is ahead of the host clock (it ran fast and was set back); reading again from the newest sign-in collected so nothing is skipped."
            );
        } else {
            tracing::debug!(collector = %self.cfg.name, ahead_secs, rebased = %fmt_time(rebased), "Checkpoint ahead of the host clock re-based.");
        }
        Ok(Some(rebased))
    }

    /// Reads `[start, end]`: each of `filters`' queries, every page, one transaction per page. The
    /// checkpoints `close` gives (from the records stored by the window) are written in the
    /// transaction of the last page of the last query.
    async fn read_window(
        &mut self,
        store: &mut Store,
        feed: Feed,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        filters: &[Option<String>],
        close: &(dyn Fn(u64) -> Vec<(String, String)> + Send + Sync),
        stats: &mut PollStats,
    ) -> Result<WindowRead, AzureError> {
        let origin = format!("crosswind:{}", self.cfg.name);
        let mut read = WindowRead::default();
        for (qi, event_type) in filters.iter().enumerate() {
            let last_query = qi + 1 == filters.len();
            let mut url = match feed {
                Feed::SignIns => self.first_url(start, end, event_type.as_deref()),
                Feed::RiskDetections => self.risk_url(start, end),
            };
            let mut page_no = 0u64;
            loop {
                let (body, _retries) = self.client.get(&url).await?;
                let page: Page<'_> =
                    serde_json::from_slice(&body).map_err(|e| AzureError::Decode(e.to_string()))?;
                let Some(values) = page.value else {
                    return Err(AzureError::Decode("no \"value\" array".to_owned()));
                };
                let next = match page.next_link {
                    Some(link) => Some(self.check_next_link(&link)?),
                    None => None,
                };
                let closes_window = next.is_none() && last_query;
                let mut batch = store.begin()?;
                for (i, raw) in values.iter().enumerate() {
                    let bytes = raw.get().as_bytes();
                    match normalize(bytes, Some(FormatHint::Exact(feed.format()))) {
                        Ok(n) => {
                            batch.insert(&NewRecord {
                                event: &n.event,
                                format: n.format,
                                raw: bytes,
                                origin: &origin,
                            })?;
                        }
                        Err(rej) => {
                            let position = format!(
                                "{} page {page_no} item {i}",
                                match feed {
                                    Feed::SignIns => event_type.as_deref().unwrap_or("signIns"),
                                    Feed::RiskDetections => "riskDetections",
                                }
                            );
                            batch.quarantine_once(&QuarantineRecord {
                                origin: &origin,
                                position: Some(&position),
                                reason: &rej.reason,
                                raw: bytes,
                            })?;
                        }
                    }
                }
                if closes_window {
                    for (name, value) in close(read.stored + batch.stats().stored) {
                        batch.set_checkpoint(&name, &value)?;
                    }
                }
                let b = batch.commit()?;
                read.pages += 1;
                read.stored += b.stored;
                stats.records += values.len() as u64;
                stats.stored += b.stored;
                stats.duplicates += b.duplicates;
                stats.quarantined += b.quarantined;
                let m = &self.metrics;
                let (records, stored, quarantined) = match feed {
                    Feed::SignIns => (&m.records, &m.stored, &m.quarantined),
                    Feed::RiskDetections => (&m.risk_records, &m.risk_stored, &m.risk_quarantined),
                };
                Metrics::add(records, values.len() as u64);
                Metrics::add(stored, b.stored);
                Metrics::add(quarantined, b.quarantined);
                tracing::debug!(
                    collector = %self.cfg.name,
                    feed = ?feed,
                    event_type = event_type.as_deref().unwrap_or("all"),
                    page = page_no,
                    records = values.len(),
                    stored = b.stored,
                    duplicates = b.duplicates,
                    quarantined = b.quarantined,
                    "Committed a page."
                );
                page_no += 1;
                match next {
                    Some(n) => url = n,
                    None => break,
                }
            }
        }
        Ok(read)
    }

    /// Sign-ins that Graph shows later than `lookback_secs` fall behind every poll's window and
    /// would never be read. Once the windows have moved two lookbacks past the last sweep, the
    /// band up to a lookback behind the window is read once more: whatever is new there arrived
    /// later than `lookback_secs` (it catches records up to two lookbacks late). Those are
    /// stored, counted (`records_too_late`, the `status` line) and logged, so a too short
    /// lookback shows.
    async fn late_sweep(
        &mut self,
        store: &mut Store,
        window_start: DateTime<Utc>,
        stats: &mut PollStats,
    ) -> Result<(), AzureError> {
        let Some(plan) = plan_late_sweep(
            store,
            &swept_name(&self.cfg.name),
            &too_late_name(&self.cfg.name),
            window_start.timestamp_millis(),
            self.cfg.lookback_secs,
        )?
        else {
            return Ok(());
        };
        let ms = |t: i64| DateTime::from_timestamp_millis(t).unwrap_or(window_start);
        let (from, to) = (ms(plan.from), ms(plan.to));
        let close = |n: u64| plan.closing(n);
        let mut sweep_stats = PollStats::default();
        let filters = self.cfg.event_type_filters();
        let read = self
            .read_window(
                store,
                Feed::SignIns,
                (from, to),
                &filters,
                &close,
                &mut sweep_stats,
            )
            .await?;
        stats.pages += read.pages;
        stats.records += sweep_stats.records;
        stats.stored += sweep_stats.stored;
        stats.duplicates += sweep_stats.duplicates;
        stats.quarantined += sweep_stats.quarantined;
        stats.too_late += read.stored;
        if read.stored > 0 {
            Metrics::add(&self.metrics.records_too_late, read.stored);
            tracing::warn!(
                collector = %self.cfg.name,
                records = read.stored,
                from = %fmt_time(from),
                to = %fmt_time(to),
                lookback_secs = self.cfg.lookback_secs,
                "Sign-ins arrived later than lookback_secs; the late sweep collected them. Raise lookback_secs: later ones still may be missed."
            );
        }
        Ok(())
    }

    /// `{graph_url}/{api_version}/auditLogs/signIns?$filter=…&$top=…`.
    pub fn first_url(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        event_type: Option<&str>,
    ) -> Url {
        let mut filter = format!(
            "createdDateTime ge {} and createdDateTime le {}",
            fmt_time(start),
            fmt_time(end)
        );
        if let Some(t) = event_type {
            filter.push_str(&format!(" and signInEventTypes/any(t: t eq '{t}')"));
        }
        let mut url = self.base.clone();
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$top", &self.cfg.page_size.to_string());
        url
    }

    /// `{graph_url}/{api_version}/identityProtection/riskDetections?$filter=…&$top=…`: filtered
    /// on `lastUpdatedDateTime`, not `detectedDateTime`, so a state change (dismissed,
    /// remediated) and an offline detection raised hours after its activity both fall in the
    /// window they were written in.
    pub fn risk_url(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Url {
        let filter = format!(
            "lastUpdatedDateTime ge {} and lastUpdatedDateTime le {}",
            fmt_time(start),
            fmt_time(end)
        );
        let mut url = self.risk_base.clone();
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$top", &self.cfg.risk_page_size().to_string());
        url
    }

    /// Follows `@odata.nextLink` only to the Graph origin we were configured with: the bearer
    /// token must never go anywhere else.
    fn check_next_link(&self, link: &str) -> Result<Url, AzureError> {
        let u = Url::parse(link)
            .map_err(|_| AzureError::ForeignNextLink(link.chars().take(200).collect()))?;
        if u.origin() != self.base.origin() {
            return Err(AzureError::ForeignNextLink(
                u.origin().ascii_serialization(),
            ));
        }
        Ok(u)
    }
}

/// What reading one window did.
#[derive(Clone, Copy, Debug, Default)]
struct WindowRead {
    pages: u64,
    stored: u64,
}

fn read_time(store: &Store, name: &str) -> Result<Option<DateTime<Utc>>, AzureError> {
    Ok(store
        .checkpoint(name)?
        .and_then(|c| DateTime::parse_from_rfc3339(&c.value).ok())
        .map(|t| t.with_timezone(&Utc)))
}

fn type_checkpoint_name(name: &str, event_type: Option<&str>) -> String {
    match event_type {
        Some(t) => format!("azure:{name}:type:{t}"),
        None => format!("azure:{name}"),
    }
}

fn type_error_name(name: &str, event_type: Option<&str>) -> String {
    match event_type {
        Some(t) => format!("azure:{name}:last_error:{t}"),
        None => last_error_name(name),
    }
}

/// Errors that concern one event-type query (Graph refused or could not serve it, a page that
/// could not be read), so the other queries go on. Token, permission and store errors do not:
/// every query would fail the same way.
fn concerns_one_query(e: &AzureError) -> bool {
    match e {
        AzureError::Graph { status, .. } => !matches!(status, 401 | 403),
        AzureError::RetriesExhausted { .. }
        | AzureError::Decode(_)
        | AzureError::ForeignNextLink(_) => true,
        _ => false,
    }
}

fn swept_name(name: &str) -> String {
    format!("azure:{name}:swept")
}

fn too_late_name(name: &str) -> String {
    format!("azure:{name}:too_late")
}

fn trunc_secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}
