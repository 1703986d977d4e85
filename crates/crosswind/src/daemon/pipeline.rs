//! The store followers, on one store connection, run on the blocking pool one job at a time:
//! - the **outbox feeder** ([`crate::feeder`]) after each committed poll;
//! - the **correlator** (`Correlation::run_pending`) after each committed poll and on a timer;
//! - **retention** once an hour.
//!
//! When the outbox is full both stop and collection pauses ([`Shared::set_paused`]); nothing is
//! dropped. Memory stays bounded whatever Splunk does: batches of
//! [`FEED_BATCH`](crate::feeder::FEED_BATCH) rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use crosswind_hec::Renderer;
use crosswind_store::outbox::{self, OutboxError};
use crosswind_store::{Store, cursor, feed, retention};
use tokio::sync::{Notify, watch};

use super::state::{Shared, StoreSample, add, lock};
use crate::correlation::Correlation;

pub use crate::feeder::FEEDER_CHECKPOINT;

/// What the followers need; reloaded correlation settings arrive on `correlation`.
pub(crate) struct Pipeline {
    pub store: Store,
    pub renderer: Option<Renderer>,
    pub max_outbox_rows: u64,
    pub retention_days: u32,
    pub correlation: watch::Receiver<Arc<Correlation>>,
    pub shared: Arc<Shared>,
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
    pub correlate_every: Duration,
}

struct Job {
    store: Store,
    renderer: Option<Renderer>,
    max_outbox_rows: u64,
    shared: Arc<Shared>,
    stopping: Arc<AtomicBool>,
}

fn is_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<OutboxError>()
            .is_some_and(OutboxError::is_full)
    })
}

/// A follower's cursor, moved back (logged and counted) when it is ahead of every event id the
/// store handed out: the rows behind it would never be read otherwise.
fn follower_cursor(store: &mut Store, shared: &Shared, name: &str) -> anyhow::Result<i64> {
    let c = cursor::follower_cursor(store, name)?;
    if let Some(from) = c.rebased_from {
        add(&shared.cursor_rebases, 1);
        tracing::warn!(
            follower = name,
            cursor = from,
            rebased_to = c.after,
            "A store cursor was ahead of every stored event id (ids went back); re-reading from \
             the first record it cannot have seen."
        );
    }
    Ok(c.after)
}

impl Job {
    /// Enqueues collected records until caught up, the outbox is full, or time is up.
    fn feed(&mut self) -> anyhow::Result<()> {
        let Some(renderer) = &self.renderer else {
            return Ok(());
        };
        let started = Instant::now();
        let stopping = &self.stopping;
        let fed = crate::feeder::feed(&mut self.store, renderer, self.max_outbox_rows, || {
            !stopping.load(Ordering::Relaxed) && started.elapsed() <= Duration::from_secs(5)
        })?;
        add(&self.shared.fed_records, fed.records);
        if fed.rebased {
            add(&self.shared.cursor_rebases, 1);
        }
        if fed.full {
            self.shared.set_paused(true, self.max_outbox_rows);
        }
        Ok(())
    }

    fn correlate(&mut self, correlation: &Correlation) {
        add(&self.shared.correlation_runs, 1);
        match correlation.run_pending(&mut self.store, self.renderer.as_ref()) {
            Ok(stats) => {
                add(&self.shared.correlated_events, stats.events);
                if stats.cursor_rebased_from.is_some() {
                    add(&self.shared.cursor_rebases, 1);
                }
                for f in &stats.findings_new {
                    tracing::warn!(
                        identity = %f.identity,
                        score = f.score,
                        summary = %f.summary,
                        "Finding raised."
                    );
                }
                if stats.signals_new > 0 {
                    tracing::info!(
                        events = stats.events,
                        signals = stats.signals_new,
                        findings = stats.findings_new.len(),
                        "Correlated new events."
                    );
                }
            }
            Err(e) if is_full(&e) => self.shared.set_paused(true, self.max_outbox_rows),
            Err(e) => {
                add(&self.shared.correlation_errors, 1);
                tracing::error!(error = format!("{e:#}"), "Correlation failed; will retry.");
            }
        }
    }

    fn retention(&mut self, days: u32) -> anyhow::Result<()> {
        let cutoff = crosswind_store::now_ms() - i64::from(days) * 86_400_000;
        // Never remove what a follower has not read yet.
        let mut keep_after = follower_cursor(
            &mut self.store,
            &self.shared,
            crosswind_store::correlate::CORRELATE_CHECKPOINT,
        )?;
        if self.renderer.is_some() {
            keep_after = keep_after.min(follower_cursor(
                &mut self.store,
                &self.shared,
                FEEDER_CHECKPOINT,
            )?);
        }
        let stats = retention::purge(&mut self.store, cutoff, keep_after, 5_000)?;
        add(&self.shared.retention_deleted, stats.total());
        if stats.total() > 0 {
            tracing::info!(
                events = stats.events,
                quarantined = stats.quarantined,
                delivered = stats.delivered,
                retention_days = days,
                "Retention removed old rows."
            );
        }
        Ok(())
    }
}

impl Pipeline {
    pub async fn run(self) {
        let Pipeline {
            store,
            renderer,
            max_outbox_rows,
            retention_days,
            correlation,
            shared,
            wake,
            mut stop,
            correlate_every,
        } = self;
        let stopping = Arc::new(AtomicBool::new(false));
        let mut job = Some(Job {
            store,
            renderer,
            max_outbox_rows,
            shared: shared.clone(),
            stopping: stopping.clone(),
        });
        // The first pass in the first job (after the feeder and the correlator caught up once), then
        // hourly: a daemon restarted more often than hourly still applies its retention.
        let mut next_retention = Instant::now();
        let mut tick = tokio::time::interval(correlate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = wake.notified() => {}
                _ = tick.tick() => {}
            }
            let Some(mut j) = job.take() else { break };
            let corr = correlation.borrow().clone();
            let do_retention = Instant::now() >= next_retention;
            if do_retention {
                next_retention = Instant::now() + Duration::from_secs(3600);
            }
            // The job runs to the end of its transaction even when a stop arrives meanwhile:
            // the handle is awaited, and the job checks `stopping` between batches.
            let handle = tokio::task::spawn_blocking(move || {
                if let Err(e) = j.feed() {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "Outbox feeder failed; will retry."
                    );
                }
                j.correlate(&corr);
                if do_retention && let Err(e) = j.retention(retention_days) {
                    tracing::error!(error = format!("{e:#}"), "Retention failed; will retry.");
                }
                j
            });
            let stop_flag = stopping.clone();
            let mut stop2 = stop.clone();
            let watcher = tokio::spawn(async move {
                let _ = stop2.wait_for(|s| *s).await;
                stop_flag.store(true, Ordering::Relaxed);
            });
            match handle.await {
                Ok(j) => job = Some(j),
                Err(e) => {
                    tracing::error!(error = %e, "Store follower job panicked; followers stopped.");
                    watcher.abort();
                    return;
                }
            }
            watcher.abort();
            if *stop.borrow() {
                break;
            }
        }
        tracing::info!("Store followers stopped.");
    }
}

/// Samples sizes for `/metrics`, `/readyz`, STATUS and the outbox-full pause.
pub(crate) fn sample(store: &Store, with_feeder: bool) -> anyhow::Result<StoreSample> {
    let now = crosswind_store::now_ms();
    let o = outbox::stats(store).context("outbox stats")?;
    let (signals, findings) = feed::correlation_counts(store)?;
    let feeder_lag = if with_feeder {
        cursor::lag(store, FEEDER_CHECKPOINT)?
    } else {
        0
    };
    let correlator_lag = cursor::lag(store, crosswind_store::correlate::CORRELATE_CHECKPOINT)?;
    Ok(StoreSample {
        file_bytes: feed::file_bytes(store)?,
        outbox_pending: o.pending,
        outbox_awaiting_ack: o.awaiting_ack,
        outbox_dead: o.dead,
        outbox_oldest_age_ms: o.oldest_age_ms(now).unwrap_or(0),
        signals,
        findings,
        feeder_lag,
        correlator_lag,
    })
}

/// Every few seconds: store figures, the pause decision (resume below 90 % of the bound), Splunk
/// reachability from the sink's counters, and the systemd STATUS line.
pub(crate) async fn sampler(
    store: Store,
    shared: Arc<Shared>,
    max_outbox_rows: u64,
    with_feeder: bool,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut store = Some(store);
    let mut last_hec: Option<crosswind_hec::MetricsSnapshot> = None;
    loop {
        let Some(s) = store.take() else { return };
        let res = tokio::task::spawn_blocking(move || {
            let r = sample(&s, with_feeder);
            (s, r)
        })
        .await;
        let Ok((s, r)) = res else { return };
        store = Some(s);
        match r {
            Ok(sample) => {
                shared.store_ok.store(true, Ordering::Relaxed);
                let depth = sample.outbox_depth();
                if depth >= max_outbox_rows {
                    shared.set_paused(true, depth);
                } else if shared.paused() && depth <= max_outbox_rows / 10 * 9 {
                    shared.set_paused(false, depth);
                }
                let status = status_line(&shared, &sample);
                *lock(&shared.sample) = sample;
                super::notify::status(&status);
            }
            Err(e) => {
                shared.store_ok.store(false, Ordering::Relaxed);
                tracing::error!(error = format!("{e:#}"), "Cannot read the store.");
            }
        }
        if let Some(hec) = shared.hec() {
            let now = hec.snapshot();
            if let Some(prev) = last_hec {
                let failing = now.health_failures > prev.health_failures
                    || now.refusals > prev.refusals
                    || (now.retries > prev.retries && now.batches == prev.batches);
                let working = now.batches > prev.batches || now.ack_polls > prev.ack_polls;
                if failing && !working {
                    shared.splunk_ok.store(false, Ordering::Relaxed);
                } else if working || !failing {
                    shared.splunk_ok.store(true, Ordering::Relaxed);
                }
            }
            last_hec = Some(now);
        }
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn status_line(shared: &Shared, sample: &StoreSample) -> String {
    let entries = shared.collectors();
    let ok = entries
        .iter()
        .filter(|e| lock(&e.last).ok == Some(true))
        .count();
    let paused = if shared.paused() {
        "; collection PAUSED (outbox full)"
    } else {
        ""
    };
    let forwarder = match super::http::forwarder_state(shared) {
        Some(why) => format!("; Splunk forwarder {why}"),
        None => String::new(),
    };
    format!(
        "{ok}/{} collectors ok; outbox {} queued; {} findings{paused}{forwarder}",
        entries.len(),
        sample.outbox_depth(),
        sample.findings
    )
}
