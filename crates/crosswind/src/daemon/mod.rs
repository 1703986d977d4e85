//! `crosswind run`: the daemon. One tokio runtime; each collector on its own cron schedule, the
//! store followers (outbox feeder, correlator, retention), the Splunk HEC forwarder, the
//! `/healthz` `/readyz` `/metrics` endpoint, systemd notifications and signals.
//!
//! Lifecycle:
//! - a lock file beside the store (`<store>.lock`, exclusive `flock`) keeps a second daemon off
//!   the same store;
//! - READY once the config is loaded, the store open and every component built;
//! - SIGTERM/SIGINT stop the collectors at their next await point (no transaction is ever open
//!   across one), let the follower job finish its transaction, give the forwarder a few seconds
//!   to finish its request, and exit well within 10 s;
//! - SIGHUP re-reads the config: collectors added, removed or changed are started/stopped,
//!   correlation settings replaced; nothing stored is lost (every cursor is in the store).
//!
//! Invariant: every hand-off is a committed row, so killing the process at any instant (even
//! SIGKILL) loses nothing; the only possible duplicates in Splunk are resends after an outcome
//! that may have indexed them, which the sink counts.

mod demo;
mod http;
mod logging;
mod metrics;
mod notify;
mod pipeline;
mod scheduler;
mod state;

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use crosswind_hec::{Forwarder, Renderer};
use crosswind_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

pub use demo::{DEFAULT_DEMO_SECONDS, demo};
pub use logging::LogFormat;
pub use logging::init as init_logging;
pub use pipeline::FEEDER_CHECKPOINT;

use crate::collectors::Spec;
use crate::config::Config;
use crate::correlation::Correlation;
use scheduler::Running;
use state::{Shared, add};

/// How `run` behaves beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub log_format: LogFormat,
    /// Fixed AWS credentials instead of the default chain (the demo's simulators).
    pub aws_credentials: Option<aws_sdk_cloudtrail::config::Credentials>,
    /// Do not install the log subscriber (the caller did).
    pub keep_logging: bool,
}

/// How long shutdown waits for the HEC forwarder's in-flight request before leaving it in doubt
/// (resent after restart, counted as a possible duplicate).
const FORWARDER_GRACE: Duration = Duration::from_secs(5);

/// Runs the daemon in the foreground until SIGTERM/SIGINT.
pub fn run(config: Config, config_path: PathBuf, options: RunOptions) -> anyhow::Result<()> {
    if !options.keep_logging {
        logging::init(options.log_format, tracing::Level::INFO)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("crosswind")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config, config_path, options, std::future::pending()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The lock file that keeps a second daemon off the store; held while the returned file lives.
pub fn lock_store(store_path: &Path) -> anyhow::Result<File> {
    let mut lock_path = store_path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(
            "another crosswind daemon is already running on store {} (lock file {} is held); \
             stop it first or point this one at another store",
            store_path.display(),
            lock_path.display()
        ),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
        }
    }
    // For humans: which process holds it.
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}

struct Daemon {
    config: Config,
    config_path: PathBuf,
    store_path: PathBuf,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    collectors: BTreeMap<String, Running>,
    correlation: watch::Sender<Arc<Correlation>>,
    aws_credentials: Option<aws_sdk_cloudtrail::config::Credentials>,
}

fn config_dir(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// The daemon on the current runtime, until a signal or `stop_requested` completes.
pub(crate) async fn serve(
    config: Config,
    config_path: PathBuf,
    options: RunOptions,
    stop_requested: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;

    let http_config = config.http.clone();
    let store_path = config.store.path.clone();
    let _lock = lock_store(&store_path)?;
    let store = Store::open(&store_path)?;
    let shared = Arc::new(Shared::default());
    shared
        .started_at_ms
        .store(crosswind_store::now_ms(), Ordering::Relaxed);
    shared.store_ok.store(true, Ordering::Relaxed);

    let correlation = Arc::new(Correlation::from_config(&config, config_dir(&config_path))?);
    let (correlation_tx, correlation_rx) = watch::channel(correlation);
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());

    // Splunk: the forwarder drains the outbox; the renderer feeds it.
    let splunk = config.splunk.clone();
    let renderer = splunk.as_ref().map(Renderer::new);
    let max_outbox_rows = splunk.as_ref().map_or(u64::MAX, |s| s.max_outbox_rows);
    let mut forwarder_task = None;
    if let Some(cfg) = splunk.clone() {
        if !cfg.tls_verify {
            tracing::warn!("[splunk] tls_verify = false: Splunk's certificate is not checked.");
        }
        let forwarder = Forwarder::new(cfg.clone(), Store::open(&store_path)?)
            .context("cannot start the Splunk HEC sink")?;
        *state::lock(&shared.hec) = Some(forwarder.metrics());
        shared.splunk_configured.store(true, Ordering::Relaxed);
        let healthy = tokio::time::timeout(Duration::from_secs(5), forwarder.healthcheck())
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        shared.splunk_ok.store(healthy, Ordering::Relaxed);
        if !healthy {
            tracing::warn!("Splunk HEC is not reachable yet; events stay queued until it is.");
        }
        let span = tracing::info_span!(
            "forwarder",
            component_kind = "sink",
            component_id = "splunk_hec"
        );
        forwarder_task = Some(tokio::spawn(
            supervise_forwarder(
                forwarder,
                cfg,
                store_path.clone(),
                shared.clone(),
                stop_rx.clone(),
            )
            .instrument(span),
        ));
    }

    let mut daemon = Daemon {
        config,
        config_path,
        store_path: store_path.clone(),
        shared: shared.clone(),
        wake: wake.clone(),
        collectors: BTreeMap::new(),
        correlation: correlation_tx,
        aws_credentials: options.aws_credentials.clone(),
    };
    for spec in Spec::all(&daemon.config) {
        let running = daemon.start_collector(&spec).await?;
        daemon.collectors.insert(spec.name().to_owned(), running);
    }

    // The store followers and the sampler, each on its own connection.
    let pipeline = pipeline::Pipeline {
        store,
        renderer,
        max_outbox_rows,
        retention_days: daemon.config.store.retention_days,
        correlation: correlation_rx,
        shared: shared.clone(),
        wake: wake.clone(),
        stop: stop_rx.clone(),
        correlate_every: Duration::from_secs(5),
    };
    let span = tracing::info_span!(
        "followers",
        component_kind = "transform",
        component_id = "correlate"
    );
    let pipeline_task = tokio::spawn(pipeline.run().instrument(span));
    let sampler_task = tokio::spawn(pipeline::sampler(
        Store::open(&store_path)?,
        shared.clone(),
        max_outbox_rows,
        splunk.is_some(),
        Duration::from_secs(2),
        stop_rx.clone(),
    ));

    let http_task = match &http_config {
        Some(h) => {
            let registry = metrics::registry(shared.clone());
            Some(
                http::serve(h, shared.clone(), registry, stop_rx.clone())
                    .await?
                    .1,
            )
        }
        None => None,
    };

    let watchdog_task = notify::watchdog_interval().map(|every| {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                notify::watchdog();
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        })
    });

    notify::ready(&format!(
        "running: {} collectors, store {}",
        daemon.collectors.len(),
        store_path.display()
    ));
    tracing::info!(
        collectors = daemon.collectors.len(),
        store = %store_path.display(),
        splunk = splunk.is_some(),
        "Crosswind daemon ready."
    );

    tokio::pin!(stop_requested);
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping."); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping."); break; }
            _ = &mut stop_requested => { tracing::info!("Stop requested."); break; }
            _ = sighup.recv() => {
                notify::reloading();
                daemon.reload().await;
                notify::ready(&format!("running: {} collectors (reloaded)", daemon.collectors.len()));
            }
        }
    }

    // Shutdown: collectors first (no new rows), then the followers' in-flight job, the sink.
    notify::stopping();
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    for (_, running) in std::mem::take(&mut daemon.collectors) {
        running.stop();
        let _ = tokio::time::timeout_at(deadline, running.join()).await;
    }
    let _ = tokio::time::timeout_at(deadline, pipeline_task).await;
    if let Some(mut task) = forwarder_task {
        let grace = tokio::time::Instant::now() + FORWARDER_GRACE;
        if tokio::time::timeout_at(grace.min(deadline), &mut task)
            .await
            .is_err()
        {
            tracing::warn!(
                "Splunk request still in flight at shutdown; it will be resent after restart (possible duplicates, counted)."
            );
            task.abort();
        }
    }
    for t in [Some(sampler_task), http_task, watchdog_task]
        .into_iter()
        .flatten()
    {
        let _ = tokio::time::timeout_at(deadline, t).await;
    }
    tracing::info!("Crosswind daemon stopped.");
    Ok(())
}

/// Runs the Splunk HEC forwarder until `stop`; if it ever ends otherwise (an error it does not
/// retry itself, a panic), reports it (`/readyz`, the status line) and builds a new one after a
/// pause, so forwarding never stops while the daemon runs.
async fn supervise_forwarder(
    mut forwarder: Forwarder,
    config: crosswind_hec::SplunkConfig,
    store_path: PathBuf,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = forwarder.metrics();
    let pause = Duration::from_secs(config.retry_max_backoff_secs.max(1));
    loop {
        let mut run_stop = stop.clone();
        let run = tokio::spawn(
            forwarder
                .run(async move {
                    let _ = run_stop.wait_for(|s| *s).await;
                })
                .in_current_span(),
        );
        // Aborted with this task (shutdown gives the forwarder a grace period, then aborts).
        let mut run = state::AbortOnDrop(run);
        let mut ended = match (&mut run.0).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("{e}"),
            Err(e) => format!("the forwarder task failed: {e}"),
        };
        add(&shared.forwarder_restarts, 1);
        loop {
            *state::lock(&shared.forwarder_stopped) = Some(ended.clone());
            tracing::error!(
                error = %ended,
                restart_in_secs = pause.as_secs(),
                "Splunk HEC sink stopped; restarting it (events stay queued)."
            );
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(pause) => {}
            }
            let rebuilt = Store::open(&store_path)
                .map_err(crosswind_hec::HecError::from)
                .and_then(|store| Forwarder::new(config.clone(), store));
            match rebuilt {
                Ok(f) => {
                    forwarder = f.with_metrics(metrics.clone());
                    *state::lock(&shared.forwarder_stopped) = None;
                    tracing::info!("Splunk HEC sink restarted.");
                    break;
                }
                Err(e) => ended = format!("cannot restart it: {e}"),
            }
        }
    }
}

impl Daemon {
    async fn start_collector(&self, spec: &Spec) -> anyhow::Result<Running> {
        let built = self.build_collector(spec).await?;
        Ok(self.spawn_collector(built))
    }

    async fn build_collector(&self, spec: &Spec) -> anyhow::Result<scheduler::Built> {
        scheduler::build(spec, self.aws_credentials.as_ref(), self.store_path.clone()).await
    }

    fn spawn_collector(&self, built: scheduler::Built) -> Running {
        let running = scheduler::spawn(built, self.shared.clone(), self.wake.clone());
        state::lock(&self.shared.collectors)
            .insert(running.entry.name.clone(), running.entry.clone());
        running
    }

    async fn stop_collector(&mut self, name: &str) {
        if let Some(running) = self.collectors.remove(name) {
            state::lock(&self.shared.collectors).remove(name);
            let _ = tokio::time::timeout(Duration::from_secs(8), running.join()).await;
        }
    }

    /// SIGHUP: re-reads the config; an invalid one is refused and the running one kept.
    async fn reload(&mut self) {
        let span = tracing::info_span!("reload", config = %self.config_path.display());
        async {
            match self.try_reload().await {
                Ok(()) => add(&self.shared.reloads, 1),
                Err(e) => {
                    add(&self.shared.reload_errors, 1);
                    tracing::error!(
                        error = format!("{e:#}"),
                        "Config reload refused; keeping the running config."
                    );
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn try_reload(&mut self) -> anyhow::Result<()> {
        let mut config = Config::load(&self.config_path)?;
        // The store path is fixed for the life of the process (it holds the lock).
        if config.store.path != self.config.store.path {
            tracing::warn!("[store] path changed; it takes effect at the next restart.");
            config.store.path = self.config.store.path.clone();
        }
        let base = config_dir(&self.config_path).unwrap_or(Path::new("."));
        let problems = config.validate_in(base);
        for w in crate::config_safety::warnings(&config, &self.config_path) {
            tracing::warn!(key = %w.key, "{}", w.message);
        }
        if !problems.is_empty() {
            bail!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let correlation = Correlation::from_config(&config, config_dir(&self.config_path))?;
        if format!("{:?}", config.splunk) != format!("{:?}", self.config.splunk)
            || config.http != self.config.http
            || config.store.retention_days != self.config.store.retention_days
        {
            tracing::warn!(
                "[splunk], [http] or retention_days changed; they take effect at the next restart."
            );
        }
        // Collectors: stop removed or changed ones, start new or changed ones.
        let wanted: BTreeMap<String, Spec> = Spec::all(&config)
            .into_iter()
            .map(|s| (s.name().to_owned(), s))
            .collect();
        // Build every new or changed collector before touching a running one: if one cannot be
        // built (a secret file gone since validation, a credential provider failing), the
        // reload is refused as a whole and every running collector keeps running.
        let mut built = Vec::new();
        for (name, spec) in &wanted {
            let changed = match self.collectors.get(name) {
                None => false,
                Some(r) if r.fingerprint != spec.fingerprint() => true,
                Some(_) => continue,
            };
            built.push((name.clone(), changed, self.build_collector(spec).await?));
        }
        let removed_names: Vec<String> = self
            .collectors
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        let (mut added, mut changed, removed) = (0, 0, removed_names.len());
        for name in removed_names {
            self.stop_collector(&name).await;
            tracing::info!(collector = %name, "Collector removed.");
        }
        for (name, is_change, b) in built {
            if is_change {
                self.stop_collector(&name).await;
            }
            let running = self.spawn_collector(b);
            self.collectors.insert(name.clone(), running);
            if is_change {
                tracing::info!(collector = %name, "Collector restarted with its new settings.");
                changed += 1;
            } else {
                tracing::info!(collector = %name, "Collector added.");
                added += 1;
            }
        }
        let _ = self.correlation.send(Arc::new(correlation));
        self.wake.notify_one();
        self.config = config;
        tracing::info!(
            added,
            removed,
            changed,
            collectors = self.collectors.len(),
            "Config reloaded."
        );
        Ok(())
    }
}
