//! The collector driver: one task per configured collector, polling on its own cron schedule
//! (seconds field first), each with its own store connection. A poll commits page by page in the
//! collector crate; nothing here holds a transaction across an `.await`, so stopping a task at
//! any await point (SIGTERM, reload) loses nothing: the next poll re-reads from the checkpoint.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, anyhow};
use chrono::Utc;
use crosswind_aws::{AwsCollector, AwsConfig, CredentialSource};
use crosswind_azure::{AzureCollector, AzureConfig};
use crosswind_store::Store;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::state::{CollectorEntry, LastPoll, Shared, SourceMetrics, add, lock};

/// One `[[azure]]` or `[[aws]]` table.
#[derive(Clone, Debug)]
pub(crate) enum Spec {
    Azure(AzureConfig),
    Aws(AwsConfig),
}

impl Spec {
    pub fn all(config: &crate::config::Config) -> Vec<Spec> {
        let azure = config.azure.iter().cloned().map(Spec::Azure);
        let aws = config.aws.iter().cloned().map(Spec::Aws);
        azure.chain(aws).collect()
    }

    pub fn name(&self) -> &str {
        match self {
            Spec::Azure(c) => &c.name,
            Spec::Aws(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Azure(_) => "azure_signins",
            Spec::Aws(_) => "aws_cloudtrail",
        }
    }

    pub(crate) fn schedule(&self) -> &str {
        match self {
            Spec::Azure(c) => &c.schedule,
            Spec::Aws(c) => &c.schedule,
        }
    }

    /// Changes when any setting changes (reload restarts the collector then).
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

/// Parses a `schedule` key: cron with seconds first (`0 */2 * * * *`).
pub(crate) fn parse_schedule(expr: &str) -> anyhow::Result<cron::Schedule> {
    cron::Schedule::from_str(expr).map_err(|e| {
        anyhow!("invalid schedule {expr:?}: {e} (cron with a seconds field first, e.g. \"0 */2 * * * *\")")
    })
}

/// One built collector: the daemon's scheduler and `crosswind collect` poll through this.
pub(crate) enum Source {
    Azure(Box<AzureCollector>),
    Aws(Box<AwsCollector>),
}

/// What one poll brought.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Polled {
    pub stored: u64,
    pub pages: u64,
}

impl Source {
    /// Builds the collector (reads its secret, sets up TLS and credentials).
    pub async fn build(
        spec: &Spec,
        aws_credentials: Option<&aws_sdk_cloudtrail::config::Credentials>,
    ) -> anyhow::Result<(Source, SourceMetrics)> {
        Ok(match spec {
            Spec::Azure(cfg) => {
                let c = AzureCollector::new(cfg.clone())
                    .with_context(|| format!("collector {}", cfg.name))?;
                let m = SourceMetrics::Azure(c.metrics());
                (Source::Azure(Box::new(c)), m)
            }
            Spec::Aws(cfg) => {
                let creds = match aws_credentials {
                    Some(c) => CredentialSource::Static(c.clone()),
                    None => CredentialSource::DefaultChain,
                };
                let c = AwsCollector::with_credentials(cfg.clone(), creds)
                    .await
                    .with_context(|| format!("collector {}", cfg.name))?;
                let m = SourceMetrics::Aws(c.metrics());
                (Source::Aws(Box::new(c)), m)
            }
        })
    }

    /// One full poll cycle; `since` backfills from that time instead of the checkpoint.
    pub async fn poll_from(
        &mut self,
        store: &mut Store,
        since: Option<chrono::DateTime<Utc>>,
    ) -> Result<Polled, String> {
        let now = Utc::now();
        match self {
            Source::Azure(c) => match since {
                Some(t) => c.poll_since(store, t, now).await,
                None => c.poll_once(store, now).await,
            }
            .map(|s| Polled {
                stored: s.stored,
                pages: s.pages,
            })
            .map_err(|e| e.to_string()),
            Source::Aws(c) => match since {
                Some(t) => c.poll_since(store, t, now).await,
                None => c.poll_once(store, now).await,
            }
            .map(|s| Polled {
                stored: s.stored,
                pages: s.pages,
            })
            .map_err(|e| e.to_string()),
        }
    }

    async fn poll(&mut self, store: &mut Store) -> Result<u64, String> {
        self.poll_from(store, None).await.map(|p| p.stored)
    }
}

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

/// Builds the collector (reads its secret, sets up TLS and credentials) and starts its task.
pub(crate) async fn start(
    spec: &Spec,
    aws_credentials: Option<&aws_sdk_cloudtrail::config::Credentials>,
    store_path: PathBuf,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
) -> anyhow::Result<Running> {
    let schedule = parse_schedule(spec.schedule())
        .with_context(|| format!("collector {}: schedule", spec.name()))?;
    let (source, metrics) = Source::build(spec, aws_credentials).await?;
    let store = Store::open(&store_path)
        .with_context(|| format!("collector {}: cannot open the store", spec.name()))?;
    let entry = Arc::new(CollectorEntry {
        name: spec.name().to_owned(),
        kind: spec.kind(),
        metrics,
        polls: AtomicU64::new(0),
        skipped_polls: AtomicU64::new(0),
        last: Mutex::new(LastPoll::default()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let span = tracing::info_span!(
        "collector",
        component_kind = "source",
        component_type = spec.kind(),
        component_id = %spec.name()
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
    Ok(Running {
        fingerprint: spec.fingerprint(),
        entry,
        stop: stop_tx,
        task,
    })
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
                Ok(_) => {
                    last.ok = Some(true);
                    last.error = None;
                }
                Err(e) => {
                    // The collector logged and counted it already.
                    last.ok = Some(false);
                    last.error = Some(e.clone());
                }
            }
        }
        // The correlator and the outbox feeder follow the store: tell them something landed.
        if matches!(result, Ok(n) if n > 0) {
            wake.notify_one();
        }
    }
    tracing::info!("Collector stopped.");
}
