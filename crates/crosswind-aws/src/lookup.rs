//! `mode = "lookup_events"`: one `LookupEvents` call per event name (one lookup attribute per
//! call, as the API requires) per region, `MaxResults` 50, `NextToken` to the end, at most
//! `max_calls_per_sec` per region, `ThrottlingException` and 5xx backed off with jitter.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudtrail::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};
use crosswind_store::Store;
use crosswind_store::window::plan_late_sweep;

use crate::{
    AwsCollector, AwsError, PollStats, add, fmt_time, parse_time, region_error_name, store_record,
    too_late_name,
};

/// Sliding one-second window: at most `limit` calls in any second.
#[derive(Debug)]
pub(crate) struct Pacer {
    limit: usize,
    sent: VecDeque<Instant>,
}

impl Pacer {
    fn new(limit: u32) -> Pacer {
        Pacer {
            limit: limit.max(1) as usize,
            sent: VecDeque::new(),
        }
    }

    async fn wait(&mut self) {
        const WINDOW: Duration = Duration::from_secs(1);
        loop {
            let now = Instant::now();
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                self.sent.pop_front();
            }
            match self.sent.front() {
                Some(oldest) if self.sent.len() >= self.limit => {
                    tokio::time::sleep(WINDOW.saturating_sub(now.duration_since(*oldest))).await;
                }
                _ => break,
            }
        }
        self.sent.push_back(Instant::now());
    }
}

fn region_checkpoint_name(name: &str, region: &str) -> String {
    format!("aws:{name}:{region}")
}

fn swept_name(name: &str, region: &str) -> String {
    format!("aws:{name}:swept:{region}")
}

impl AwsCollector {
    /// Every region on its own: one that fails (an opt-in region not enabled answers
    /// `UnrecognizedClientException`, a regional outage) keeps its checkpoint and records its
    /// error, and the regions after it are still read.
    pub(crate) async fn poll_lookup(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AwsError> {
        let mut stats = PollStats::default();
        let regions = self.cfg.regions.clone();
        let mut failures = Vec::new();
        for region in &regions {
            let cp = store
                .checkpoint(&region_checkpoint_name(&self.cfg.name, region))?
                .and_then(|c| parse_time(&c.value));
            if cp.is_some_and(|cp| cp > now) {
                // Before any region stores anything (see `newest_collected`).
                self.newest_collected(store, now)?;
                break;
            }
        }
        for region in &regions {
            let res = self
                .poll_region(store, region, since, now, &mut stats)
                .await;
            let cp = store
                .checkpoint(&region_checkpoint_name(&self.cfg.name, region))?
                .and_then(|c| parse_time(&c.value));
            let lag = cp.map(|c| (now - c).num_seconds());
            let err_name = region_error_name(&self.cfg.name, region);
            match res {
                Ok(()) => {
                    self.metrics.region(region, |m| {
                        m.up = Some(true);
                        m.lag_secs = lag;
                    });
                    let mut b = store.begin()?;
                    b.set_checkpoint(&err_name, "")?;
                    b.commit()?;
                }
                // The store is shared by every region: no point going on.
                Err(e @ AwsError::Store(_)) => return Err(e),
                Err(e) => {
                    self.metrics.region(region, |m| {
                        m.up = Some(false);
                        m.errors += 1;
                        m.lag_secs = lag;
                    });
                    tracing::warn!(collector = %self.cfg.name, region = %region, error = %e, error_type = e.kind(), "Region poll failed; its checkpoint stays, the other regions go on.");
                    let mut b = store.begin()?;
                    b.set_checkpoint(&err_name, &e.to_string())?;
                    b.commit()?;
                    failures.push((region.clone(), e));
                }
            }
        }
        match failures.len() {
            0 => Ok(stats),
            1 if regions.len() == 1 => Err(failures.remove(0).1),
            _ => Err(AwsError::Regions {
                total: regions.len(),
                failures,
            }),
        }
    }

    /// One region's window, every event name, every page; its checkpoint advances in the
    /// transaction of the last page of the last name.
    async fn poll_region(
        &mut self,
        store: &mut Store,
        region: &str,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        stats: &mut PollStats,
    ) -> Result<(), AwsError> {
        let end = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let cp_name = region_checkpoint_name(&self.cfg.name, region);
        let stored = store
            .checkpoint(&cp_name)?
            .and_then(|c| parse_time(&c.value));
        let checkpoint = self.rebase_if_ahead(store, region, stored, now)?;
        let start = self.window_start(since, checkpoint, now);
        stats.window_start = Some(
            stats
                .window_start
                .map_or(start, |s: DateTime<Utc>| s.min(start)),
        );
        stats.window_end = Some(end);
        if start > end {
            return Ok(());
        }
        let new_cp = checkpoint.map_or(end, |c| c.max(end));
        let client = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.base)
                .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        let close = |_stored: u64| vec![(cp_name.clone(), fmt_time(new_cp))];
        self.read_window(store, &client, region, start, end, &close, stats)
            .await?;
        tracing::debug!(collector = %self.cfg.name, region = %region, checkpoint = %fmt_time(new_cp), "Region window committed.");
        if since.is_none() {
            self.late_sweep(store, &client, region, start, stats)
                .await?;
        }
        Ok(())
    }

    /// Reads `[start, end]` of one region: every event name, every page, one transaction per
    /// page. The checkpoints `close` gives (from the records stored by the window) are written in
    /// the transaction of the last page of the last name. Returns the records stored.
    #[allow(clippy::too_many_arguments)]
    async fn read_window(
        &mut self,
        store: &mut Store,
        client: &aws_sdk_cloudtrail::Client,
        region: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        close: &(dyn Fn(u64) -> Vec<(String, String)> + Send + Sync),
        stats: &mut PollStats,
    ) -> Result<u64, AwsError> {
        let origin = self.origin();
        let names = self.cfg.event_names.clone();
        let mut stored = 0;
        for (ni, event_name) in names.iter().enumerate() {
            let last_name = ni + 1 == names.len();
            let mut token: Option<String> = None;
            let mut page_no = 0u64;
            loop {
                let out = self
                    .lookup_with_retries(client, region, event_name, start, end, token.clone())
                    .await?;
                let next = out
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                let events = out.events();
                let mut batch = store.begin()?;
                for (i, ev) in events.iter().enumerate() {
                    let Some(raw) = ev.cloud_trail_event() else {
                        let pos = format!("{region} {event_name} page {page_no} item {i}");
                        batch.quarantine_once(&crosswind_store::QuarantineRecord {
                            origin: &origin,
                            position: Some(&pos),
                            reason: "lookup event has no CloudTrailEvent",
                            raw: ev.event_id().unwrap_or_default().as_bytes(),
                        })?;
                        continue;
                    };
                    store_record(&mut batch, raw.as_bytes(), &origin, &|| {
                        format!("{region} {event_name} page {page_no} item {i}")
                    })?;
                }
                if next.is_none() && last_name {
                    for (name, value) in close(stored + batch.stats().stored) {
                        batch.set_checkpoint(&name, &value)?;
                    }
                }
                let b = batch.commit()?;
                stored += b.stored;
                stats.pages += 1;
                stats.records += events.len() as u64;
                stats.add_batch(&b);
                add(&self.metrics.records, events.len() as u64);
                add(&self.metrics.stored, b.stored);
                add(&self.metrics.quarantined, b.quarantined);
                page_no += 1;
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        Ok(stored)
    }

    /// Records that LookupEvents shows later than `lookback_secs` fall behind every poll's
    /// window and would never be read. Once the windows have moved two lookbacks past the last
    /// sweep, the band up to a lookback behind the window is read once more: whatever is new
    /// there arrived later than `lookback_secs` (it catches records up to two lookbacks late).
    /// Those are stored, counted (`records_too_late`, the `status` line) and logged, so a too
    /// short lookback shows.
    async fn late_sweep(
        &mut self,
        store: &mut Store,
        client: &aws_sdk_cloudtrail::Client,
        region: &str,
        window_start: DateTime<Utc>,
        stats: &mut PollStats,
    ) -> Result<(), AwsError> {
        let Some(plan) = plan_late_sweep(
            store,
            &swept_name(&self.cfg.name, region),
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
        let late = self
            .read_window(store, client, region, from, to, &close, stats)
            .await?;
        stats.too_late += late;
        if late > 0 {
            add(&self.metrics.records_too_late, late);
            tracing::warn!(
                collector = %self.cfg.name,
                region,
                records = late,
                from = %fmt_time(from),
                to = %fmt_time(to),
                lookback_secs = self.cfg.lookback_secs,
                "CloudTrail records arrived later than lookback_secs; the late sweep collected them. Raise lookback_secs: later ones still may be missed."
            );
        }
        Ok(())
    }

    async fn lookup_with_retries(
        &mut self,
        client: &aws_sdk_cloudtrail::Client,
        region: &str,
        event_name: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        token: Option<String>,
    ) -> Result<aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput, AwsError> {
        let attr = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::EventName)
            .attribute_value(event_name)
            .build()
            .map_err(|e| AwsError::Config(e.to_string()))?;
        let max_attempts = self.cfg.max_retries.max(1);
        let mut attempt = 0u32;
        loop {
            let rate = self.cfg.max_calls_per_sec;
            self.pacers
                .entry(region.to_owned())
                .or_insert_with(|| Pacer::new(rate))
                .wait()
                .await;
            let started = Instant::now();
            let res = client
                .lookup_events()
                .lookup_attributes(attr.clone())
                .start_time(AwsDateTime::from_secs(start.timestamp()))
                .end_time(AwsDateTime::from_secs(end.timestamp()))
                .max_results(50)
                .set_next_token(token.clone())
                .send()
                .await;
            add(&self.metrics.requests, 1);
            let duration_ms = started.elapsed().as_millis() as u64;
            let err = match res {
                Ok(out) => {
                    tracing::debug!(
                        collector = %self.cfg.name,
                        method = "POST",
                        path = "/",
                        operation = "LookupEvents",
                        region,
                        event_name,
                        status = 200u16,
                        duration_ms,
                        retries = attempt,
                        "CloudTrail request."
                    );
                    return Ok(out);
                }
                Err(e) => e,
            };
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().unwrap_or_default().to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            let (retriable, throttled) = match &err {
                SdkError::TimeoutError(_)
                | SdkError::DispatchFailure(_)
                | SdkError::ResponseError(_) => (true, false),
                SdkError::ServiceError(_) => {
                    let throttled = matches!(
                        code.as_str(),
                        "ThrottlingException"
                            | "Throttling"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                    ) || status == Some(429);
                    (throttled || status.is_some_and(|s| s >= 500), throttled)
                }
                _ => (false, false),
            };
            let shown = if code.is_empty() {
                aws_sdk_cloudtrail::error::DisplayErrorContext(&err).to_string()
            } else {
                format!("{code}: {message}")
            };
            tracing::info!(
                collector = %self.cfg.name,
                method = "POST",
                path = "/",
                operation = "LookupEvents",
                region,
                event_name,
                status = status.unwrap_or(0),
                duration_ms,
                retries = attempt,
                error = %shown,
                "CloudTrail request failed."
            );
            if !retriable {
                let hint = match code.as_str() {
                    "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
                        "; the principal needs cloudtrail:LookupEvents".to_owned()
                    }
                    "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "ExpiredTokenException" => {
                        "; check the credentials (and role_arn)".to_owned()
                    }
                    _ => String::new(),
                };
                return Err(AwsError::Api(Box::new(crate::ApiError {
                    service: "cloudtrail",
                    operation: "LookupEvents",
                    region: region.to_owned(),
                    status: status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                    code: if code.is_empty() {
                        "error".to_owned()
                    } else {
                        code
                    },
                    message: if message.is_empty() { shown } else { message },
                    hint,
                    retriable: false,
                })));
            }
            if attempt + 1 >= max_attempts {
                return Err(AwsError::RetriesExhausted {
                    service: "cloudtrail",
                    operation: "LookupEvents",
                    region: region.to_owned(),
                    attempts: attempt + 1,
                    last: shown,
                });
            }
            let base = if throttled {
                self.tuning.throttle_base
            } else {
                self.tuning.base
            };
            let wait = self.tuning.backoff(base, attempt);
            self.metrics.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}
