//! `/metrics`: one explicit prometheus-client [`Registry`] with a collector that reads the
//! components' atomics and the last store sample at each scrape (no global state).
//!
//! Names follow `crosswind_<component>_<noun>_<unit>`, counters get `_total` from the encoder.
//! Labels are bounded: collector names from the config, signal names from the catalog; never a
//! user, an identity or an IP.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::state::{Shared, load};

type Labels = Vec<(&'static str, String)>;

/// Builds the registry served at `/metrics`.
pub(crate) fn registry(shared: Arc<Shared>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(DaemonMetrics { shared }));
    registry
}

/// Renders the registry in the Prometheus/OpenMetrics text format.
pub(crate) fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[derive(Debug)]
struct DaemonMetrics {
    shared: Arc<Shared>,
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(Labels, u64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(Labels, i64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn one<T>(v: T) -> Vec<(Labels, T)> {
    vec![(Vec::new(), v)]
}

impl Collector for DaemonMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.shared;
        // Collectors.
        let entries = s.collectors();
        let per = |f: &dyn Fn(&super::state::CollectorEntry) -> u64| -> Vec<(Labels, u64)> {
            entries
                .iter()
                .map(|e| {
                    (
                        vec![("collector", e.name.clone()), ("kind", e.kind.to_owned())],
                        f(e),
                    )
                })
                .collect()
        };
        counter(
            &mut enc,
            "crosswind_collector_requests",
            "API requests sent (every attempt).",
            &per(&|e| e.metrics.counts().requests),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_records",
            "Records read from the source.",
            &per(&|e| e.metrics.counts().records),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_stored_records",
            "Records newly stored.",
            &per(&|e| e.metrics.counts().stored),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_quarantined_records",
            "Records that could not be mapped, quarantined.",
            &per(&|e| e.metrics.counts().quarantined),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_errors",
            "Failed polls.",
            &per(&|e| e.metrics.counts().errors),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_retries",
            "Requests retried after throttling or errors.",
            &per(&|e| e.metrics.counts().retries),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_polls",
            "Polls started.",
            &per(&|e| load(&e.polls)),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_skipped_polls",
            "Polls skipped because the Splunk outbox was full.",
            &per(&|e| load(&e.skipped_polls)),
        )?;
        let lag: Vec<(Labels, i64)> = entries
            .iter()
            .map(|e| {
                (
                    vec![("collector", e.name.clone()), ("kind", e.kind.to_owned())],
                    e.metrics.counts().lag_secs,
                )
            })
            .collect();
        gauge(
            &mut enc,
            "crosswind_collector_lag_seconds",
            "Now minus the newest time fully collected.",
            &lag,
        )?;
        counter(
            &mut enc,
            "crosswind_collector_checkpoint_rebases",
            "Checkpoints found ahead of the host clock (it ran fast, then was set back) and \
             re-based on the newest record collected, so that nothing is skipped.",
            &per(&|e| e.metrics.counts().checkpoint_rebases),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_too_late_records",
            "Records that arrived later than lookback_secs, found by the late sweep (raise \
             lookback_secs: later ones may be missed).",
            &per(&|e| e.metrics.counts().records_too_late),
        )?;
        counter(
            &mut enc,
            "crosswind_collector_unrecognized_messages",
            "S3-mode queue messages naming no trail file in a known shape (left on the queue \
             for its redrive policy; counted each time received).",
            &per(&|e| e.metrics.messages_unrecognized()),
        )?;
        // Per LookupEvents region: one failing region is visible beside the others.
        let mut region_up = Vec::new();
        let mut region_errors = Vec::new();
        let mut region_lag = Vec::new();
        for e in &entries {
            for (region, m) in e.metrics.regions() {
                let labels: Labels = vec![
                    ("collector", e.name.clone()),
                    ("kind", e.kind.to_owned()),
                    ("region", region),
                ];
                if let Some(up) = m.up {
                    region_up.push((labels.clone(), i64::from(up)));
                }
                if let Some(lag) = m.lag_secs {
                    region_lag.push((labels.clone(), lag));
                }
                region_errors.push((labels, m.errors));
            }
        }
        gauge(
            &mut enc,
            "crosswind_collector_region_up",
            "1 when the region's last poll succeeded.",
            &region_up,
        )?;
        counter(
            &mut enc,
            "crosswind_collector_region_errors",
            "Failed polls of one region.",
            &region_errors,
        )?;
        gauge(
            &mut enc,
            "crosswind_collector_region_lag_seconds",
            "Now minus the newest time fully collected in the region.",
            &region_lag,
        )?;
        // The Entra risk detections feed (`[[azure]] risk_detections`), beside its sign-ins.
        let mut risk_counters: [Vec<(Labels, u64)>; 6] = Default::default();
        let mut risk_up = Vec::new();
        let mut risk_lag = Vec::new();
        for e in &entries {
            let Some(r) = e.metrics.risk() else { continue };
            if r.risk_up < 0 {
                continue; // risk detections not polled (turned off, or no poll yet)
            }
            let labels: Labels = vec![("collector", e.name.clone()), ("kind", e.kind.to_owned())];
            for (i, v) in [
                r.risk_requests,
                r.risk_records,
                r.risk_stored,
                r.risk_quarantined,
                r.risk_errors,
                r.risk_records_too_late,
            ]
            .into_iter()
            .enumerate()
            {
                risk_counters[i].push((labels.clone(), v));
            }
            risk_up.push((labels.clone(), r.risk_up));
            risk_lag.push((labels, r.risk_lag_secs));
        }
        for (samples, (name, help)) in risk_counters.iter().zip([
            (
                "crosswind_collector_risk_detection_requests",
                "Requests to Graph identityProtection/riskDetections (every attempt; also in crosswind_collector_requests).",
            ),
            (
                "crosswind_collector_risk_detection_records",
                "Risk detection records read (not in crosswind_collector_records).",
            ),
            (
                "crosswind_collector_risk_detection_stored_records",
                "Risk detection states newly stored.",
            ),
            (
                "crosswind_collector_risk_detection_quarantined_records",
                "Risk detection records that could not be mapped, quarantined.",
            ),
            (
                "crosswind_collector_risk_detection_errors",
                "Risk detection polls that failed (the sign-ins went on); a 403 means the app lacks IdentityRiskEvent.Read.All.",
            ),
            (
                "crosswind_collector_risk_detection_too_late_records",
                "Risk detection states later than lookback_secs, found by the late sweep.",
            ),
        ]) {
            counter(&mut enc, name, help, samples)?;
        }
        gauge(
            &mut enc,
            "crosswind_collector_risk_detection_up",
            "1 when the last risk detections poll succeeded.",
            &risk_up,
        )?;
        gauge(
            &mut enc,
            "crosswind_collector_risk_detection_lag_seconds",
            "Now minus the newest lastUpdatedDateTime fully collected.",
            &risk_lag,
        )?;
        let up: Vec<(Labels, i64)> = entries
            .iter()
            .map(|e| {
                let ok = super::state::lock(&e.last).ok == Some(true);
                (
                    vec![("collector", e.name.clone()), ("kind", e.kind.to_owned())],
                    i64::from(ok),
                )
            })
            .collect();
        gauge(
            &mut enc,
            "crosswind_collector_up",
            "1 when the last poll succeeded.",
            &up,
        )?;

        // Store and outbox.
        let sample = s.sample();
        gauge(
            &mut enc,
            "crosswind_store_size_bytes",
            "Size of the SQLite store.",
            &one(sample.file_bytes as i64),
        )?;
        gauge(
            &mut enc,
            "crosswind_outbox_depth_events",
            "Events queued for Splunk (pending or awaiting ack).",
            &one(sample.outbox_depth() as i64),
        )?;
        gauge(
            &mut enc,
            "crosswind_outbox_awaiting_ack_events",
            "Events sent, waiting for Splunk's indexer ack.",
            &one(sample.outbox_awaiting_ack as i64),
        )?;
        gauge(
            &mut enc,
            "crosswind_outbox_dead_events",
            "Events Splunk refused for good (dead letters).",
            &one(sample.outbox_dead as i64),
        )?;
        gauge(
            &mut enc,
            "crosswind_outbox_oldest_age_seconds",
            "Age of the oldest queued event.",
            &one(sample.outbox_oldest_age_ms / 1000),
        )?;
        gauge(
            &mut enc,
            "crosswind_outbox_feeder_lag_records",
            "Stored records the outbox feeder has not read yet.",
            &one(sample.feeder_lag as i64),
        )?;
        gauge(
            &mut enc,
            "crosswind_correlate_lag_records",
            "Stored records the correlator has not read yet.",
            &one(sample.correlator_lag as i64),
        )?;
        counter(
            &mut enc,
            "crosswind_store_cursor_rebases",
            "Follower cursors (correlator, outbox feeder) found ahead of every stored event id \
             and moved back so that no record stays unread.",
            &one(load(&s.cursor_rebases)),
        )?;
        counter(
            &mut enc,
            "crosswind_outbox_fed_records",
            "Collected raw records queued for Splunk.",
            &one(load(&s.fed_records)),
        )?;
        gauge(
            &mut enc,
            "crosswind_collection_paused",
            "1 while collection is paused because the outbox is full.",
            &one(i64::from(s.paused())),
        )?;
        counter(
            &mut enc,
            "crosswind_retention_deleted_records",
            "Rows removed by retention.",
            &one(load(&s.retention_deleted)),
        )?;

        // Correlation.
        counter(
            &mut enc,
            "crosswind_correlate_runs",
            "Correlation runs.",
            &one(load(&s.correlation_runs)),
        )?;
        counter(
            &mut enc,
            "crosswind_correlate_errors",
            "Failed correlation runs.",
            &one(load(&s.correlation_errors)),
        )?;
        counter(
            &mut enc,
            "crosswind_correlate_events",
            "Events replayed through the correlator.",
            &one(load(&s.correlated_events)),
        )?;
        let signals: Vec<(Labels, u64)> = sample
            .signals
            .iter()
            .map(|(name, n)| (vec![("signal", name.clone())], *n))
            .collect();
        counter(
            &mut enc,
            "crosswind_correlate_signals",
            "Signals (risk events) stored, by signal name.",
            &signals,
        )?;
        counter(
            &mut enc,
            "crosswind_correlate_findings",
            "Findings stored.",
            &one(sample.findings),
        )?;

        // Splunk HEC sink (its own counters, named by the sink).
        if let Some(hec) = s.hec() {
            for (name, value) in hec.export() {
                match name.strip_suffix("_total") {
                    Some(base) => counter(&mut enc, base, "Splunk HEC sink counter.", &one(value))?,
                    None => gauge(&mut enc, name, "Splunk HEC sink gauge.", &one(value as i64))?,
                }
            }
        }
        counter(
            &mut enc,
            "crosswind_splunk_hec_forwarder_restarts",
            "Times the Splunk HEC forwarder stopped and was started again.",
            &one(load(&s.forwarder_restarts)),
        )?;
        gauge(
            &mut enc,
            "crosswind_splunk_hec_up",
            "1 when Splunk HEC answered the last health check or request.",
            &one(i64::from(
                s.splunk_ok.load(std::sync::atomic::Ordering::Relaxed),
            )),
        )?;

        // Daemon.
        counter(
            &mut enc,
            "crosswind_daemon_reloads",
            "Config reloads (SIGHUP) applied.",
            &one(load(&s.reloads)),
        )?;
        counter(
            &mut enc,
            "crosswind_daemon_reload_errors",
            "Config reloads refused (invalid config).",
            &one(load(&s.reload_errors)),
        )?;
        gauge(
            &mut enc,
            "crosswind_daemon_start_time_seconds",
            "When the daemon started (epoch seconds).",
            &one(s.started_at_ms.load(std::sync::atomic::Ordering::Relaxed) / 1000),
        )?;
        Ok(())
    }
}
