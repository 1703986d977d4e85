//! The collector driver: one task per configured collector, polling on its own cron schedule
//! (seconds field first), each with its own store connection. A poll commits page by page in the
//! collector crate; nothing here holds a transaction across an `.await`, so stopping a task at
//! any await point (SIGTERM, reload) loses nothing: the next poll re-reads from the checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use anyhow::Context;
use chrono::Utc;
use crosswind_store::Store;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::state::{CollectorEntry, LastPoll, Shared, SourceMetrics, add, lock};
use crate::collectors::{Source, Spec, parse_schedule};

/// A running collector task.
pub(crate) struct Running {
    pub fingerprint: String,
    pub entry: Arc<CollectorEntry>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Asks the task to stop; it does at its next await point (no transaction is open there).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub async fn join(self) {
        self.stop();
        let _ = self.task.await;
    }
}

/// A collector built (its secret read, TLS and credentials set up, its store connection open)
/// but not started yet: a reload builds the replacement before it stops the running collector.
pub(crate) struct Built {
    spec_name: String,
    kind: &'static str,
    fingerprint: String,
    schedule: cron::Schedule,
    source: Source,
    store: Store,
}

/// Builds the collector; nothing runs yet.
pub(crate) async fn build(
    spec: &Spec,
    aws_credentials: Option<&aws_sdk_cloudtrail::config::Credentials>,
    store_path: PathBuf,
) -> anyhow::Result<Built> {
    let schedule = parse_schedule(spec.schedule())
        .with_context(|| format!("collector {}: schedule", spec.name()))?;
    let source = Source::build(spec, aws_credentials).await?;
    let store = Store::open(&store_path)
        .with_context(|| format!("collector {}: cannot open the store", spec.name()))?;
    Ok(Built {
        spec_name: spec.name().to_owned(),
        kind: spec.kind(),
        fingerprint: spec.fingerprint(),
        schedule,
        source,
        store,
    })
}

/// Starts a built collector's task.
pub(crate) fn spawn(built: Built, shared: Arc<Shared>, wake: Arc<Notify>) -> Running {
    let Built {
        spec_name,
        kind,
        fingerprint,
        schedule,
        source,
        store,
    } = built;
    let metrics = match &source {
        Source::Azure(c) => SourceMetrics::Azure(c.metrics()),
        Source::Aws(c) => SourceMetrics::Aws(c.metrics()),
    };
    let entry = Arc::new(CollectorEntry {
        name: spec_name.clone(),
        kind,
        metrics,
        polls: AtomicU64::new(0),
        skipped_polls: AtomicU64::new(0),
        last: Mutex::new(LastPoll::default()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let span = tracing::info_span!(
        "collector",
        component_kind = "source",
        component_type = kind,
        component_id = %spec_name
    );
    let task = tokio::spawn(
        drive(
            source,
            schedule,
            store,
            entry.clone(),
            shared,
            wake,
            stop_rx,
        )
        .instrument(span),
    );
    Running {
        fingerprint,
        entry,
        stop: stop_tx,
        task,
    }
}

async fn drive(
    mut source: Source,
    schedule: cron::Schedule,
    mut store: Store,
    entry: Arc<CollectorEntry>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!("Collector started.");
    let mut skipping = false;
    loop {
        let Some(next) = schedule.upcoming(Utc).next() else {
            tracing::error!("Schedule has no future run; collector stopped.");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        if *stop.borrow() {
            break;
        }
        if shared.paused() {
            add(&entry.skipped_polls, 1);
            if !skipping {
                tracing::warn!("Poll skipped: the Splunk outbox is full.");
                skipping = true;
            }
            continue;
        }
        skipping = false;
        add(&entry.polls, 1);
        let result = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = source.poll(&mut store) => r,
        };
        {
            let mut last = lock(&entry.last);
            last.at = Some(crosswind_store::now_ms());
            match &result {
                Ok(p) => {
                    last.ok = Some(true);
                    last.error = None;
                    last.warning = p.warning.clone();
                }
                Err(e) => {
                    // The collector logged and counted it already.
                    last.ok = Some(false);
                    last.error = Some(e.clone());
                }
            }
        }
        // The correlator and the outbox feeder follow the store: tell them something landed.
        if matches!(&result, Ok(p) if p.stored > 0) {
            wake.notify_one();
        }
    }
    tracing::info!("Collector stopped.");
}
