//! Hunts over what the correlator stored: spray sources, recon bursts and per-identity risk.

use std::collections::BTreeMap;

use crosswind_correlate::{CorrelateConfig, SignalKind, score_at, score_identity};
use crosswind_model::{CloudProvider, Signal};
use crosswind_store::Store;
use crosswind_store::correlate::{findings_count_of, signals_between, signals_of_kinds_between};
use serde_json::{Value, json};

use super::Range;
use crate::correlation::{clouds_of, clouds_text};
use crate::output::Rows;
use crate::timearg::format_time;

fn signals_in(store: &Store, range: Range, kinds: &[SignalKind]) -> anyhow::Result<Vec<Signal>> {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let mut signals = signals_of_kinds_between(
        store,
        &names,
        range.since.unwrap_or(i64::MIN),
        range.until.unwrap_or(i64::MAX),
    )?;
    signals.sort_by(|a, b| b.time.cmp(&a.time).then(a.id.cmp(&b.id)));
    Ok(signals)
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// `spray-sources`: sources that sprayed Entra, and who then signed in from them (either cloud).
pub(super) fn spray_sources(store: &Store, range: Range) -> anyhow::Result<Rows> {
    let signals = signals_in(
        store,
        range,
        &[
            SignalKind::AzurePasswordSpray,
            SignalKind::CrossCloudSprayThenAwsLogin,
            SignalKind::AwsConsoleLoginFailures,
        ],
    )?;
    let mut rows = Rows::new(vec![
        "time", "source", "signal", "identity", "score", "events", "message",
    ]);
    for s in signals {
        rows.push(vec![
            json!(format_time(s.time)),
            opt(&s.threat_object),
            json!(s.signal),
            if s.risk_object.is_empty() {
                Value::Null
            } else {
                json!(s.risk_object)
            },
            json!(s.risk_score),
            json!(s.event_ids.len()),
            json!(s.risk_message),
        ]);
    }
    Ok(rows)
}

/// `recon-bursts`: bursts of reconnaissance calls from one key, IP and client.
pub(super) fn recon_bursts(store: &Store, range: Range) -> anyhow::Result<Rows> {
    let signals = signals_in(store, range, &[SignalKind::AwsReconBurst])?;
    let mut rows = Rows::new(vec![
        "time", "identity", "src_ip", "score", "calls", "message",
    ]);
    for s in signals {
        rows.push(vec![
            json!(format_time(s.time)),
            json!(s.risk_object),
            opt(&s.threat_object),
            json!(s.risk_score),
            json!(s.event_ids.len()),
            json!(s.risk_message),
        ]);
    }
    Ok(rows)
}

/// One identity's risk over a range: the `identity-risk` hunt's row, the report's ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityRisk {
    pub identity: String,
    /// The decayed score at the end of the range (or now).
    pub score: f64,
    /// The highest score it reached within the range (right after a signal), and when.
    pub peak: f64,
    pub peak_at: i64,
    pub clouds: Vec<CloudProvider>,
    /// Signals in the score look-back before the end of the range.
    pub signals: usize,
    pub findings: usize,
    pub last_signal: i64,
}

/// Every identity with signals in the range, scored by crosswind-correlate over its signals in
/// the score look-back; riskiest (current score) first.
pub fn identity_risks(
    store: &Store,
    range: Range,
    config: &CorrelateConfig,
) -> anyhow::Result<Vec<IdentityRisk>> {
    let until = range.until.unwrap_or_else(crosswind_store::now_ms);
    let since = range.since.unwrap_or(i64::MIN);
    let lookback = until.saturating_sub(config.score_lookback_ms()).min(since);
    let all = signals_between(store, lookback, until)?;
    let mut by_identity: BTreeMap<String, Vec<Signal>> = BTreeMap::new();
    for s in all {
        if !s.risk_object.is_empty() {
            by_identity
                .entry(s.risk_object.clone())
                .or_default()
                .push(s);
        }
    }
    let mut scored = Vec::new();
    for (identity, signals) in by_identity {
        if !signals.iter().any(|s| s.time >= since) {
            continue;
        }
        let score = score_at(&identity, &signals, until, config);
        let (peak, peak_at) = score_identity(&identity, &signals, &[], config)
            .timeline
            .iter()
            .filter(|p| p.time >= since)
            .map(|p| (p.score, p.time))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .unwrap_or((0.0, until));
        let clouds = clouds_of(&signals);
        let findings = findings_count_of(store, &identity)? as usize;
        let last_signal = signals.iter().map(|s| s.time).max().unwrap_or(until);
        scored.push(IdentityRisk {
            signals: signals.len(),
            identity,
            score,
            peak,
            peak_at,
            clouds,
            findings,
            last_signal,
        });
    }
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.identity.cmp(&b.identity))
    });
    Ok(scored)
}

/// `identity-risk`: every identity with signals in the range, its decayed score at the end of
/// the range (or now) as `score`, the highest score it reached within the range as
/// `peak_score` at `peak_at` (an identity whose signals are days old shows ~0 now and its peak),
/// clouds, signal and finding counts; riskiest (current score) first.
pub(super) fn identity_risk(
    store: &Store,
    range: Range,
    config: &CorrelateConfig,
) -> anyhow::Result<Rows> {
    let mut rows = Rows::new(vec![
        "identity",
        "score",
        "peak_score",
        "peak_at",
        "clouds",
        "signals",
        "findings",
        "last_signal",
    ]);
    for r in identity_risks(store, range, config)? {
        rows.push(vec![
            json!(r.identity),
            json!((r.score * 10.0).round() / 10.0),
            json!((r.peak * 10.0).round() / 10.0),
            json!(format_time(r.peak_at)),
            json!(clouds_text(&r.clouds)),
            json!(r.signals),
            json!(r.findings),
            json!(format_time(r.last_signal)),
        ]);
    }
    Ok(rows)
}
