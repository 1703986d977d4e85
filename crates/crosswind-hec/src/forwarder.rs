//! The outbox drainer: claim a batch, send it, then account for every event in it.
//!
//! Invariant: every claimed event ends in exactly one of these places after Splunk answers —
//! still queued (pending, or sent and awaiting its ack), delivered (`outbox_delivered`) or
//! dead-lettered with Splunk's reason (`outbox_dead`). An event leaves the outbox only when
//! Splunk acknowledged it, accepted it without acks, or refused that very event for good.
//!
//! "That very event" is proved, not taken from `invalid-event-number`: a request Splunk cannot
//! read from the start (a mangled gzip body, say) is refused as a whole and names event 0 every
//! time. So a named event is re-sent alone. Refused alone, it is set aside (dead-lettered) on a
//! first strike; once Splunk accepts another event, the struck events go back in line and are
//! sent again, and one refused alone a second time, after Splunk accepted others, is bad by
//! itself: it stays dead-lettered. When [`MAX_UNPROVEN`] events in a row are refused alone with
//! none accepted, or nothing is left to send and Splunk never accepted an event, Splunk refuses
//! everything, not these events: they go back in line and the sink pauses (an error that needs
//! an operator).

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crosswind_store::Store;
use crosswind_store::outbox::{self, Claimed, ClaimedRow};
use tokio::time::Instant;

/// How long without a 413 before a lowered batch size limit doubles again.
const LIMIT_QUIET: Duration = Duration::from_secs(600);

use crate::client::{AckStatus, Health, HecClient, SendOutcome, refusal_hint};
use crate::config::{Env, ProcessEnv, SplunkConfig};
use crate::metrics::Metrics;
use crate::{HecError, Result};

/// Outbox meta key of the per-store `X-Splunk-Request-Channel`.
pub const CHANNEL_META_KEY: &str = "splunk_hec.channel";
/// Ack ids asked about in one ack query.
const ACK_QUERY_CHUNK: usize = 1_000;
/// Requests awaiting their ack before the sink stops sending and waits for acks.
const MAX_REQUESTS_AWAITING_ACK: usize = 256;
/// Retry-After is honoured up to this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Events refused alone in a row, with none accepted in between, before the sink concludes that
/// Splunk refuses everything (not these events), re-queues them and pauses.
pub const MAX_UNPROVEN: usize = 32;

/// What one [`Forwarder::drain_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Requests sent to `/services/collector/event`.
    pub requests: u64,
    /// Requests accepted (2xx).
    pub batches: u64,
    pub events_sent: u64,
    /// Events that left the outbox as delivered (acked or accepted).
    pub events_delivered: u64,
    /// Of those, confirmed by an indexer ack.
    pub events_acked: u64,
    pub dead_lettered: u64,
    pub retries: u64,
    pub possible_duplicates: u64,
    pub ack_timeouts: u64,
}

enum Step {
    /// A request was answered; `full` when the batch was large (more are likely waiting).
    Sent { full: bool },
    /// Nothing to send; acks pending: ask again after this.
    Waiting(Duration),
    /// Splunk is busy or unreachable: wait this long.
    Backoff(Duration),
    /// Outbox empty, everything acknowledged.
    Empty,
}

/// A claimed batch, encoded for the wire.
struct Prepared {
    claimed: Claimed,
    wire: Vec<u8>,
}

/// Drains the outbox of one store to Splunk HEC.
///
/// While one request is in flight, the next batch is claimed and compressed (when the backlog
/// fills batches), so SQLite and gzip overlap the network and Splunk.
pub struct Forwarder {
    config: SplunkConfig,
    store: Store,
    client: Arc<HecClient>,
    prepared: Option<Prepared>,
    metrics: Arc<Metrics>,
    channel: Option<String>,
    clock: Clock,
    limit_bytes: usize,
    /// When a 413 last lowered `limit_bytes` (or it was last raised back).
    limit_changed: Option<Instant>,
    limit_rows: usize,
    backoff: Backoff,
    needs_health: bool,
    next_ack_poll: Instant,
    awaiting_ack: usize,
    /// Claim pending rows after this id; 0 after anything put rows back.
    cursor: i64,
    /// Refused alone once (first strike), set aside in the dead-letter table until Splunk
    /// accepts another event.
    unproven: Vec<ClaimedRow>,
    /// Struck once and back in line: refused alone again, they are bad by themselves.
    retest: HashSet<i64>,
    /// Splunk accepted at least one event from this sink.
    accepted_any: bool,
    /// See [`Forwarder::give_up_after`].
    give_up_after: Option<Duration>,
    /// What went wrong last (for the give-up message): never holds a token or a URL's password.
    last_problem: Option<String>,
}

// === impl Forwarder ===

impl Forwarder {
    /// Validates `config`, reads the token (process environment) and prepares the channel.
    pub fn new(config: SplunkConfig, store: Store) -> Result<Forwarder> {
        Forwarder::with_env(config, store, &ProcessEnv)
    }

    /// Opens the store at `path` and calls [`Forwarder::new`].
    pub fn open(config: SplunkConfig, path: &Path) -> Result<Forwarder> {
        Forwarder::new(config, Store::open(path)?)
    }

    pub fn with_env(config: SplunkConfig, mut store: Store, env: &dyn Env) -> Result<Forwarder> {
        let problems = config.validate(env);
        if !problems.is_empty() {
            return Err(HecError::Config(problems));
        }
        let token = config.token(env)?;
        let channel = if config.indexer_ack {
            Some(outbox::meta_get_or_insert(
                &mut store,
                CHANNEL_META_KEY,
                &new_channel_guid(),
            )?)
        } else {
            None
        };
        let recovered = outbox::recover_inflight(&mut store)?;
        if recovered > 0 {
            tracing::warn!(
                events = recovered,
                "A previous run stopped mid-request; its events will be resent (possible duplicates)."
            );
        }
        // Rows sent on another channel, or with acks now off, can never be confirmed: resend.
        let requeued =
            outbox::requeue_unacked(&mut store, channel.as_deref().unwrap_or(""), i64::MIN)?;
        if requeued > 0 {
            tracing::warn!(
                events = requeued,
                "Re-queued events sent on another HEC channel; they may be duplicated in Splunk."
            );
        }
        let client = Arc::new(HecClient::new(&config, token, channel.clone())?);
        let awaiting_ack = match &channel {
            Some(ch) => outbox::pending_acks(&store, ch)?.len(),
            None => 0,
        };
        let limit_bytes = config.batch_max_bytes;
        Ok(Forwarder {
            limit_bytes,
            limit_changed: None,
            limit_rows: usize::MAX,
            backoff: Backoff::new(Duration::from_secs(config.retry_max_backoff_secs)),
            config,
            store,
            client,
            prepared: None,
            metrics: Arc::new(Metrics {
                batch_limit_bytes: (limit_bytes as u64).into(),
                ..Metrics::default()
            }),
            channel,
            clock: Clock::new(),
            needs_health: true,
            next_ack_poll: Instant::now(),
            awaiting_ack,
            cursor: 0,
            unproven: Vec::new(),
            retest: HashSet::new(),
            accepted_any: false,
            give_up_after: None,
            last_problem: None,
        })
    }

    /// [`Forwarder::drain_once`] gives up with [`HecError::GaveUp`] (every event still queued)
    /// once Splunk has taken nothing for this long: no event delivered, acknowledged or
    /// dead-lettered while it was unreachable, untrusted, unhealthy or busy. `forward --once`
    /// sets it so a run under cron or a script ends instead of retrying for ever.
    pub fn give_up_after(mut self, bound: Duration) -> Forwarder {
        self.give_up_after = Some(bound);
        self
    }

    /// Shares the counters (the binary's `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Counts into `metrics` (those of a forwarder this one replaces) instead of its own.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Forwarder {
        self.metrics = metrics;
        self.set_limit(self.limit_bytes);
        self
    }

    /// Sets the batch size limit and its gauge.
    fn set_limit(&mut self, bytes: usize) {
        self.limit_bytes = bytes;
        self.metrics
            .batch_limit_bytes
            .store(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn into_store(self) -> Store {
        self.store
    }

    /// The persisted `X-Splunk-Request-Channel` (indexer ack on).
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// `forward --retry-dead`: moves every dead-lettered event back into the outbox, in its old
    /// place in line (after the cause was fixed). Returns how many.
    pub fn retry_dead(&mut self) -> Result<u64> {
        let n = outbox::requeue_dead(&mut self.store, None, &[])?;
        self.release_prepared()?;
        if n > 0 {
            tracing::info!(events = n, "Re-queued the dead-lettered events for Splunk.");
        }
        Ok(n)
    }

    /// `GET /services/collector/health`: `Ok` when HEC is healthy (or does not expose the
    /// endpoint).
    pub async fn healthcheck(&self) -> Result<()> {
        match self.client.health().await.map_err(HecError::Http)? {
            Health::Healthy | Health::Unknown => Ok(()),
            Health::Unhealthy { status, code, text } => {
                Err(HecError::Unhealthy { status, code, text })
            }
        }
    }

    /// Sends until the outbox is empty and every event is acknowledged. Busy servers and network
    /// errors are retried with backoff; a refusal that needs an operator (token, index, channel,
    /// URL) returns an error with every event still queued.
    #[tracing::instrument(skip_all, fields(component_kind = "sink", component_id = "splunk_hec"))]
    pub async fn drain_once(&mut self) -> Result<DrainStats> {
        let mut stats = DrainStats::default();
        let mut progress = (0, Instant::now());
        loop {
            let step = self.step(&mut stats).await?;
            let moved = stats.events_delivered + stats.dead_lettered;
            if moved != progress.0 {
                progress = (moved, Instant::now());
            }
            match step {
                Step::Sent { .. } => {}
                Step::Waiting(d) | Step::Backoff(d) => {
                    if let Some(bound) = self.give_up_after {
                        let stalled = progress.1.elapsed();
                        if stalled + d > bound {
                            self.release_prepared()?;
                            return Err(HecError::GaveUp {
                                secs: stalled.as_secs(),
                                last: self.last_problem.clone().unwrap_or_else(|| {
                                    "waiting for indexer acknowledgements".into()
                                }),
                            });
                        }
                    }
                    tokio::time::sleep(d).await
                }
                Step::Empty => {
                    self.refresh_gauges()?;
                    return Ok(stats);
                }
            }
        }
    }

    /// The daemon loop: drains continuously until `shutdown` completes. A request in flight is
    /// finished first (bounded by `request_timeout_secs`). Refusals pause sending (everything
    /// stays queued) and are retried after `retry_max_backoff_secs`. Store errors (the write lock
    /// held by a concurrent import, a full disk) are retried with backoff too, reported through
    /// [`Metrics::store_failing`] meanwhile; afterwards the sink starts over from the store as
    /// after a crash, so an answer whose effects could not be recorded is resent, never lost.
    #[tracing::instrument(skip_all, fields(component_kind = "sink", component_id = "splunk_hec"))]
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut stats = DrainStats::default();
        let delay = Duration::from_millis(self.config.batch_max_delay_ms);
        let pause = Duration::from_secs(self.config.retry_max_backoff_secs);
        let mut store_backoff = Backoff::new(pause);
        let mut store_failed = false;
        loop {
            let mut result = Ok(());
            if store_failed {
                result = self.start_over();
            }
            let result = match result {
                Ok(()) => self.step(&mut stats).await,
                Err(e) => Err(e),
            };
            let result = match result {
                Ok(step @ (Step::Sent { full: false } | Step::Empty)) => {
                    self.refresh_gauges().map(|()| step)
                }
                other => other,
            };
            if result.is_ok() && store_failed {
                store_failed = false;
                store_backoff.reset();
                self.metrics.set_store_failing(None);
                tracing::info!("The store works again; Splunk forwarding resumed.");
            }
            let wait = match result {
                Ok(Step::Sent { full: true }) => Duration::ZERO,
                Ok(Step::Sent { full: false }) | Ok(Step::Empty) => delay,
                Ok(Step::Waiting(d)) => d.min(delay.max(Duration::from_millis(10))),
                Ok(Step::Backoff(d)) => d,
                Err(e) if e.is_store() => {
                    Metrics::add(&self.metrics.store_errors, 1);
                    self.metrics.set_store_failing(Some(e.to_string()));
                    store_failed = true;
                    let wait = store_backoff.next(None);
                    tracing::error!(
                        error = %e,
                        retry_in_ms = wait.as_millis() as u64,
                        "Splunk forwarding: the store failed; retrying, events stay queued."
                    );
                    wait
                }
                Err(e) if e.needs_operator() || e.is_retriable() => {
                    tracing::error!(
                        error = %e,
                        pause_secs = pause.as_secs(),
                        "Splunk forwarding paused; events stay queued."
                    );
                    self.needs_health = true;
                    pause
                }
                Err(e) => return Err(e),
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn step(&mut self, stats: &mut DrainStats) -> Result<Step> {
        if let Some(channel) = self.channel.clone()
            && self.awaiting_ack > 0
            && (Instant::now() >= self.next_ack_poll
                || self.awaiting_ack >= MAX_REQUESTS_AWAITING_ACK)
        {
            // Unconfirmed for too long: resend (Splunk may have indexed them: possible
            // duplicates). Checked at ack-poll pace, not per request: it scans the sent rows.
            let timeout_ms = (self.config.ack_timeout_secs as i64).saturating_mul(1000);
            let now = self.clock.now_ms();
            let expired =
                outbox::requeue_unacked(&mut self.store, &channel, now.saturating_sub(timeout_ms))?;
            if expired > 0 {
                tracing::warn!(
                    events = expired,
                    ack_timeout_secs = self.config.ack_timeout_secs,
                    "Splunk did not confirm indexing in time; resending (possible duplicates)."
                );
                Metrics::add(&self.metrics.ack_timeouts, expired);
                stats.ack_timeouts += expired;
                self.release_prepared()?;
            }
            self.poll_acks(&channel, stats).await?;
            if self.awaiting_ack >= MAX_REQUESTS_AWAITING_ACK {
                return Ok(Step::Waiting(self.ack_poll_interval()));
            }
        }
        if self.needs_health {
            match self.client.health().await {
                Ok(Health::Healthy | Health::Unknown) => self.needs_health = false,
                Ok(Health::Unhealthy { status, code, text }) => {
                    Metrics::add(&self.metrics.health_failures, 1);
                    tracing::warn!(status, code, text = %text, "Splunk HEC is unhealthy; waiting.");
                    self.last_problem =
                        Some(format!("Splunk HEC is unhealthy (http {status}: {text})"));
                    return Ok(Step::Backoff(self.backoff.next(None)));
                }
                Err(e) => {
                    Metrics::add(&self.metrics.health_failures, 1);
                    // The causes say why (refused connection, an untrusted certificate).
                    let error = with_causes(&e);
                    tracing::warn!(error = %error, "Splunk HEC health check failed; waiting.");
                    self.last_problem = Some(format!("health check failed: {error}"));
                    return Ok(Step::Backoff(self.backoff.next(None)));
                }
            }
        }
        let prepared = match self.prepared.take() {
            Some(p) => p,
            None => {
                let claimed = outbox::claim_after(
                    &mut self.store,
                    self.cursor,
                    self.limit_bytes,
                    self.limit_rows,
                )?;
                if claimed.is_empty() {
                    if let Some(step) = self.settle_unproven()? {
                        return Ok(step);
                    }
                    if self.awaiting_ack > 0 {
                        let until_poll =
                            self.next_ack_poll.saturating_duration_since(Instant::now());
                        return Ok(Step::Waiting(until_poll.max(Duration::from_millis(1))));
                    }
                    return Ok(Step::Empty);
                }
                let wire = self.client.encode(&claimed.body);
                Prepared { claimed, wire }
            }
        };
        let inflight = prepared.claimed.inflight;
        let result = self.send(prepared, stats).await;
        // Settled only after the answer's effects are committed: a crash in between leaves the
        // claim in flight, and its rows in doubt.
        outbox::settle(&mut self.store, inflight)?;
        // Anything but a clean acceptance starts over from the oldest pending row.
        if !matches!(result, Ok(Step::Sent { .. })) || self.needs_health {
            self.release_prepared()?;
        }
        result
    }

    /// After a store error: what this sink holds in memory may not match the store (an answer
    /// whose effects were not committed, a claim never settled). Starts over as after a crash:
    /// unsettled claims are marked in doubt and resent, pending acks are counted again.
    fn start_over(&mut self) -> Result<()> {
        self.release_prepared()?;
        let resent = outbox::recover_inflight(&mut self.store)?;
        if resent > 0 {
            tracing::warn!(
                events = resent,
                "Events of a request whose outcome the store could not record will be resent (possible duplicates)."
            );
        }
        self.awaiting_ack = match &self.channel {
            Some(ch) => outbox::pending_acks(&self.store, ch)?.len(),
            None => 0,
        };
        self.next_ack_poll = Instant::now();
        Ok(())
    }

    /// A 413 halves the batch size limit; without this it stayed halved for the life of the
    /// process (and a few 413s that were not about size — a proxy's — would shrink it to one
    /// event per request). After `LIMIT_QUIET` without a 413 it doubles again, up to
    /// `batch_max_bytes`; a limit that Splunk really has costs one 413 per `LIMIT_QUIET`.
    fn raise_limit_after_quiet(&mut self) {
        let max = self.config.batch_max_bytes;
        if self.limit_bytes >= max
            || self
                .limit_changed
                .is_some_and(|t| t.elapsed() < LIMIT_QUIET)
        {
            return;
        }
        let old = self.limit_bytes;
        self.set_limit(old.saturating_mul(2).min(max));
        self.limit_changed = Some(Instant::now());
        tracing::info!(
            old_limit = old,
            new_limit = self.limit_bytes,
            "No 413 from Splunk for a while; raising the batch size limit again."
        );
    }

    /// The batch size limit in force (lowered by a 413, raised back after a quiet while).
    pub fn batch_limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// Puts the batch claimed ahead back (it was never sent) and restarts from the oldest row.
    fn release_prepared(&mut self) -> Result<()> {
        self.cursor = 0;
        if let Some(p) = self.prepared.take() {
            outbox::settle(&mut self.store, p.claimed.inflight)?;
        }
        Ok(())
    }

    fn ack_poll_interval(&self) -> Duration {
        Duration::from_millis(self.config.ack_poll_interval_ms)
    }

    async fn poll_acks(&mut self, channel: &str, stats: &mut DrainStats) -> Result<()> {
        let pending = outbox::pending_acks(&self.store, channel)?;
        self.awaiting_ack = pending.len();
        let ids: Vec<u64> = pending.iter().map(|p| p.ack_id).collect();
        for chunk in ids.chunks(ACK_QUERY_CHUNK) {
            Metrics::add(&self.metrics.ack_polls, 1);
            match self.client.ack_status(chunk).await {
                Ok(AckStatus::Answered(acked)) => {
                    let acked: Vec<u64> = acked.into_iter().filter(|a| chunk.contains(a)).collect();
                    let now = self.clock.now_ms();
                    let n = outbox::confirm_acks(&mut self.store, channel, &acked, now)?;
                    Metrics::add(&self.metrics.events_acked, n);
                    stats.events_acked += n;
                    stats.events_delivered += n;
                    self.awaiting_ack = self.awaiting_ack.saturating_sub(acked.len());
                }
                Ok(AckStatus::Failed { status, code, text }) if matches!(status, 401 | 403) => {
                    Metrics::add(&self.metrics.refusals, 1);
                    let hint = refusal_hint(status, code);
                    tracing::error!(status, code, text = %text, hint, "Splunk refused the ack query.");
                    return Err(HecError::Refused {
                        status,
                        code,
                        text,
                        hint,
                    });
                }
                Ok(AckStatus::Failed { status, code, text }) => {
                    tracing::warn!(status, code, text = %text, "Ack query failed; asking again later.");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Ack query failed; asking again later.");
                    break;
                }
            }
        }
        self.next_ack_poll = Instant::now() + self.ack_poll_interval();
        Ok(())
    }

    async fn send(&mut self, prepared: Prepared, stats: &mut DrainStats) -> Result<Step> {
        let Prepared { claimed, wire } = prepared;
        let n = claimed.len();
        let in_doubt = claimed.rows.iter().filter(|r| r.was_in_doubt).count() as u64;
        let wire_len = wire.len() as u64;
        Metrics::add(&self.metrics.requests, 1);
        stats.requests += 1;
        let client = Arc::clone(&self.client);
        let request = tokio::spawn(async move {
            client
                .send(wire, n)
                .await
                .map_err(|e| (e.is_connect(), with_causes(&e)))
        });
        // Overlap: claim and compress the next batch while Splunk works on this one.
        let full = claimed.body.len() >= self.limit_bytes / 2;
        if full
            && self.prepared.is_none()
            && self.awaiting_ack + 1 < MAX_REQUESTS_AWAITING_ACK
            && let Some(last) = claimed.rows.last()
        {
            let next =
                outbox::claim_after(&mut self.store, last.id, self.limit_bytes, self.limit_rows)?;
            if !next.is_empty() {
                let wire = self.client.encode(&next.body);
                self.prepared = Some(Prepared {
                    claimed: next,
                    wire,
                });
            }
        }
        let outcome = match request.await {
            Ok(r) => r,
            Err(join) => Err((false, format!("request task failed: {join}"))),
        };
        let now = self.clock.now_ms();
        let rows = &claimed.rows;
        let outcome = match outcome {
            Ok(o) => o,
            Err((connect, e)) => {
                // Never reached Splunk: nothing indexed. Otherwise the outcome is unknown and
                // the rows stay in doubt.
                if !connect {
                    outbox::mark_in_doubt(&mut self.store, rows)?;
                }
                Metrics::add(&self.metrics.retries, 1);
                stats.retries += 1;
                self.needs_health = true;
                let wait = self.backoff.next(None);
                tracing::warn!(error = %e, events = n, retry_in_ms = wait.as_millis() as u64,
                    "Sending to Splunk failed; retrying.");
                self.last_problem = Some(format!("sending failed: {e}"));
                return Ok(Step::Backoff(wait));
            }
        };
        match outcome {
            SendOutcome::Accepted { ack_id } => {
                self.backoff.reset();
                self.limit_rows = self.limit_rows.saturating_mul(2);
                self.raise_limit_after_quiet();
                self.cursor = rows.last().map_or(0, |r| r.id);
                Metrics::add(&self.metrics.batches, 1);
                Metrics::add(&self.metrics.events_sent, n as u64);
                Metrics::add(&self.metrics.bytes_sent, wire_len);
                Metrics::add(&self.metrics.possible_duplicates, in_doubt);
                stats.batches += 1;
                stats.events_sent += n as u64;
                stats.possible_duplicates += in_doubt;
                match (ack_id, &self.channel) {
                    (Some(ack_id), Some(channel)) => {
                        let superseded =
                            outbox::mark_sent(&mut self.store, rows, channel, ack_id, now)?;
                        if superseded > 0 {
                            // Its ack can no longer be told apart from this request's.
                            Metrics::add(&self.metrics.ack_id_reuses, 1);
                            tracing::warn!(
                                ack_id,
                                events = superseded,
                                "Splunk gave an ack id again while an earlier request still \
                                 waited for it (indexer restart, or a load balancer switching \
                                 indexers); resending that request's events (possible duplicates)."
                            );
                            self.release_prepared()?;
                        } else {
                            self.awaiting_ack += 1;
                        }
                    }
                    _ => {
                        let d = outbox::mark_delivered(&mut self.store, rows, false, now)?;
                        Metrics::add(&self.metrics.events_accepted, d);
                        stats.events_delivered += d;
                    }
                }
                self.splunk_accepted()?;
                Ok(Step::Sent { full })
            }
            SendOutcome::InvalidEvent { code, text, .. } if n == 1 => {
                self.refused_alone(&claimed, rows[0], code, &text, now, stats)?;
                self.release_prepared()?;
                Ok(Step::Sent { full: true })
            }
            SendOutcome::InvalidEvent {
                index: Some(i),
                code,
                text,
            } => {
                // HEC reads a batch as a stream: events before `i` were indexed and nothing
                // after `i` was read. Whether `i` itself is bad is proved by sending it alone:
                // a request refused as a whole names event 0 whatever it holds.
                self.deliver_prefix(&rows[..i], now, stats)?;
                Metrics::add(&self.metrics.splits, 1);
                self.limit_rows = 1;
                tracing::warn!(code, text = %text, event = i, events = n,
                    "Splunk refused an event of a batch; sending it alone to see if it is bad.");
                self.release_prepared()?;
                Ok(Step::Sent { full: true })
            }
            SendOutcome::InvalidEvent {
                index: None,
                code,
                text,
            } => {
                // Splunk did not say which event: halve until it is alone.
                Metrics::add(&self.metrics.splits, 1);
                self.limit_rows = (n / 2).max(1);
                tracing::warn!(code, text = %text, events = n,
                    "Splunk refused a batch without naming the event; splitting it.");
                self.release_prepared()?;
                Ok(Step::Sent { full: true })
            }
            SendOutcome::IncorrectIndex { number, text } => {
                self.refuse_index(&claimed, number, &text, now, stats)?;
                self.release_prepared()?;
                Ok(Step::Sent { full: true })
            }
            SendOutcome::TooLarge => {
                if n == 1 {
                    let text = format!(
                        "request entity too large: this event alone ({} bytes) is over \
                         Splunk's max_content_length",
                        claimed.body.len()
                    );
                    self.dead_letter(&claimed, &rows[0], 413, &text, now, stats)?;
                } else {
                    Metrics::add(&self.metrics.splits, 1);
                    self.set_limit((claimed.body.len() / 2).max(1));
                    self.limit_changed = Some(Instant::now());
                    tracing::warn!(
                        body_bytes = claimed.body.len(),
                        new_limit = self.limit_bytes,
                        "Splunk answered 413; splitting batches (lower splunk.batch_max_bytes)."
                    );
                }
                self.release_prepared()?;
                Ok(Step::Sent { full: true })
            }
            SendOutcome::Retry {
                status,
                retry_after,
                text,
            } => {
                Metrics::add(&self.metrics.retries, 1);
                stats.retries += 1;
                self.needs_health = true;
                let wait = self.backoff.next(retry_after);
                tracing::warn!(status, text = %text, events = n, retry_in_ms = wait.as_millis() as u64,
                    "Splunk is busy; retrying.");
                self.last_problem = Some(format!("Splunk is busy (http {status}: {text})"));
                Ok(Step::Backoff(wait))
            }
            SendOutcome::Refused {
                status,
                code,
                text,
                index,
            } => {
                let split = index.unwrap_or(0);
                let (before, after) = rows.split_at(split);
                self.deliver_prefix(before, now, stats)?;
                Metrics::add(&self.metrics.refusals, 1);
                let hint = refusal_hint(status, code);
                tracing::error!(status, code, text = %text, hint, queued = after.len(),
                    "Splunk refused the events; forwarding paused, everything stays queued.");
                Err(HecError::Refused {
                    status,
                    code,
                    text,
                    hint,
                })
            }
        }
    }

    /// Events Splunk indexed before the one it refused: delivered, without an ack to confirm.
    fn deliver_prefix(
        &mut self,
        rows: &[ClaimedRow],
        now: i64,
        stats: &mut DrainStats,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.splunk_accepted()?;
        let in_doubt = rows.iter().filter(|r| r.was_in_doubt).count() as u64;
        let d = outbox::mark_delivered(&mut self.store, rows, false, now)?;
        Metrics::add(&self.metrics.events_accepted, d);
        Metrics::add(&self.metrics.events_sent, rows.len() as u64);
        Metrics::add(&self.metrics.possible_duplicates, in_doubt);
        stats.events_delivered += d;
        stats.events_sent += rows.len() as u64;
        stats.possible_duplicates += in_doubt;
        Ok(())
    }

    /// HEC code 7: the token may not write to the index of the event Splunk counted as
    /// `number` (one-based: Splunk counts the refused event itself). The events before it were
    /// indexed; it and every other event of this batch bound for the same index are
    /// dead-lettered with the index named; the rest go back to the queue and keep flowing.
    fn refuse_index(
        &mut self,
        claimed: &Claimed,
        number: Option<usize>,
        text: &str,
        now: i64,
        stats: &mut DrainStats,
    ) -> Result<()> {
        let rows = &claimed.rows;
        let index_of = |row: &ClaimedRow| event_index(claimed.payload(row));
        let first = match number
            .map(|n| n.saturating_sub(1))
            .filter(|&p| p < rows.len())
        {
            Some(p) => p,
            // Splunk did not say which event: only a batch bound for one index is certain.
            None if rows.iter().all(|r| index_of(r) == index_of(&rows[0])) => 0,
            None => {
                Metrics::add(&self.metrics.splits, 1);
                self.limit_rows = (rows.len() / 2).max(1);
                tracing::warn!(text = %text, events = rows.len(),
                    "Splunk refused an index without naming the event; splitting the batch.");
                return Ok(());
            }
        };
        let (before, rest) = rows.split_at(first);
        self.deliver_prefix(before, now, stats)?;
        let index = index_of(&rest[0]);
        let named = match &index {
            Some(i) => format!("index {i}"),
            None => "the token's default index".to_string(),
        };
        let error =
            format!("splunk refused {named} (code 7: {text}): the HEC token may not write to it");
        let mut refused = 0u64;
        for row in rest.iter().filter(|r| index_of(r) == index) {
            self.bury(row, &error, now, stats)?;
            refused += 1;
        }
        tracing::error!(
            index = index.as_deref().unwrap_or(""),
            events = refused,
            requeued = rest.len() as u64 - refused,
            hint = refusal_hint(400, Some(7)),
            "Splunk refused {named}; its events are dead-lettered, the rest keep flowing \
             (after fixing the token, `crosswind forward --retry-dead` resends them)."
        );
        Ok(())
    }

    /// Splunk took an event: the events struck once go back in line for their second chance.
    fn splunk_accepted(&mut self) -> Result<()> {
        self.accepted_any = true;
        if self.unproven.is_empty() {
            return Ok(());
        }
        let n = self.requeue_unproven()?;
        tracing::info!(
            events = n,
            "Splunk accepts other events; re-sending those it refused alone once."
        );
        Ok(())
    }

    /// Moves one event to the dead-letter table with `error`.
    fn bury(
        &mut self,
        row: &ClaimedRow,
        error: &str,
        now: i64,
        stats: &mut DrainStats,
    ) -> Result<()> {
        outbox::dead_letter(&mut self.store, row.id, error, now)?;
        Metrics::add(&self.metrics.dead_lettered, 1);
        stats.dead_lettered += 1;
        Ok(())
    }

    /// A lone event refused: a second strike (after Splunk accepted others) dead-letters it for
    /// good; a first sets it aside. Too many first strikes in a row with nothing accepted means
    /// Splunk refuses everything: they go back in line and the sink pauses.
    fn refused_alone(
        &mut self,
        claimed: &Claimed,
        row: ClaimedRow,
        code: i64,
        text: &str,
        now: i64,
        stats: &mut DrainStats,
    ) -> Result<()> {
        if self.retest.remove(&row.id) {
            return self.dead_letter(claimed, &row, code, text, now, stats);
        }
        let error = format!("set aside: splunk refused it alone once (code {code}): {text}");
        outbox::dead_letter(&mut self.store, row.id, &error, now)?;
        self.unproven.push(row);
        tracing::warn!(outbox_id = row.id, code, text = %text,
            "Splunk refused one event sent alone; it is sent once more after Splunk accepts another.");
        if self.unproven.len() >= MAX_UNPROVEN {
            return Err(self.refuses_everything(code, text)?);
        }
        Ok(())
    }

    /// Nothing left to send but events struck once: after Splunk accepted events from this sink,
    /// they get their second chance after a pause; when it never did, nothing shows the events
    /// are the problem.
    fn settle_unproven(&mut self) -> Result<Option<Step>> {
        if self.unproven.is_empty() {
            return Ok(None);
        }
        if !self.accepted_any {
            return Err(self.refuses_everything(6, "every event was refused, even alone")?);
        }
        self.requeue_unproven()?;
        Ok(Some(Step::Backoff(self.backoff.next(None))))
    }

    /// Puts the events struck once back in line, marked for their second chance.
    fn requeue_unproven(&mut self) -> Result<u64> {
        let ids: Vec<i64> = self.unproven.iter().map(|r| r.id).collect();
        let in_doubt: Vec<i64> = self
            .unproven
            .iter()
            .filter(|r| r.was_in_doubt)
            .map(|r| r.id)
            .collect();
        let n = outbox::requeue_dead(&mut self.store, Some(&ids), &in_doubt)?;
        self.retest.extend(ids);
        self.unproven.clear();
        self.release_prepared()?;
        Ok(n)
    }

    /// Splunk refuses every event, even alone: the struck ones go back in line (with no mark:
    /// nothing was proved) and this error pauses the sink.
    fn refuses_everything(&mut self, code: i64, text: &str) -> Result<HecError> {
        let n = self.requeue_unproven()?;
        self.retest.clear();
        Metrics::add(&self.metrics.refusals, 1);
        tracing::error!(events = n, code, text = %text,
            "Splunk refused every event, even each alone, and accepted none; \
             they are back in the outbox and forwarding is paused.");
        Ok(HecError::Refused {
            status: 400,
            code: Some(code),
            text: text.to_string(),
            hint: "splunk refuses every event sent, even one at a time: look at what is between \
                   crosswind and HEC (a proxy rewriting bodies, gzip) and at HEC's own logs",
        })
    }

    fn dead_letter(
        &mut self,
        claimed: &Claimed,
        row: &ClaimedRow,
        code: i64,
        text: &str,
        now: i64,
        stats: &mut DrainStats,
    ) -> Result<()> {
        let error = format!("splunk refused this event, sent alone (code {code}): {text}");
        self.bury(row, &error, now, stats)?;
        tracing::error!(
            outbox_id = row.id,
            code,
            text = %text,
            bytes = claimed.payload(row).len(),
            "Splunk refused one event sent alone; moved it to the dead-letter table \
             (`crosswind forward --retry-dead` re-queues it) and sending the rest."
        );
        Ok(())
    }

    fn refresh_gauges(&self) -> Result<()> {
        let s = outbox::stats(&self.store)?;
        let m = &self.metrics;
        m.outbox_depth
            .store(s.depth(), std::sync::atomic::Ordering::Relaxed);
        m.outbox_oldest_age_ms.store(
            s.oldest_age_ms(self.clock.now_ms()).unwrap_or(0) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

/// The `index` an outbox payload (a HEC event object) names; `None` for the token's default.
fn event_index(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        index: Option<String>,
    }
    serde_json::from_slice::<Envelope>(payload)
        .ok()
        .and_then(|e| e.index)
}

/// Wall clock that follows tokio's clock, so paused-time tests see ack timeouts expire.
struct Clock {
    wall0: i64,
    t0: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall0: crosswind_store::now_ms(),
            t0: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.wall0
            .saturating_add(self.t0.elapsed().as_millis().min(i64::MAX as u128) as i64)
    }
}

/// Capped exponential backoff with jitter; `Retry-After` sets a floor.
struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(250);

    fn new(max: Duration) -> Backoff {
        Backoff { attempt: 0, max }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = Self::BASE.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let cap = exp.min(self.max);
        // Jitter in [cap/2, cap]: retries from many daemons spread out.
        let half = cap / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
}

/// A random (version 4) GUID, as HEC expects for `X-Splunk-Request-Channel`.
pub fn new_channel_guid() -> String {
    let mut b = [0u8; 16];
    for x in &mut b {
        *x = fastrand::u8(..);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `e` and its sources, `: `-joined (reqwest's own message names only the request).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
