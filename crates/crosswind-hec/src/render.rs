//! Renders what reaches Splunk into HEC event objects, once, at enqueue time:
//! `{"time":..,"host":..,"source":..,"sourcetype":..,"index":..,"event":..,"fields":{..}}`.
//!
//! Raw records are embedded byte for byte (never re-serialised), so Splunk indexes the record
//! exactly as the source returned it. See INTERFACES.md, "What reaches Splunk".

use crosswind_model::{CloudProvider, Event, Finding, Signal, SourceFormat};
use crosswind_store::outbox::{NewOutboxRow, OutboxKind};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::SplunkConfig;

/// Version of the JSON shapes crosswind itself defines (risk events, findings).
pub const PAYLOAD_SCHEMA_VERSION: u32 = 1;

pub const SOURCETYPE_RISK: &str = "crosswind:risk";
pub const SOURCETYPE_FINDING: &str = "crosswind:finding";
pub const SOURCETYPE_EVENT: &str = "crosswind:event";

/// A rendered HEC event, ready for [`crosswind_store::outbox::enqueue`].
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub kind: OutboxKind,
    pub sourcetype: &'static str,
    pub source: String,
    /// Event time, epoch ms.
    pub time: i64,
    pub index: Option<String>,
    /// The HEC event object, JSON.
    pub payload: Vec<u8>,
}

impl Rendered {
    pub fn row(&self) -> NewOutboxRow<'_> {
        NewOutboxRow {
            kind: self.kind,
            sourcetype: self.sourcetype,
            source: &self.source,
            time: self.time,
            index: self.index.as_deref(),
            payload: &self.payload,
        }
    }
}

/// Turns records, signals and findings into HEC events, honouring `forward`, `index`, `source`
/// and `host`.
#[derive(Clone, Debug)]
pub struct Renderer {
    host: String,
    index: Option<String>,
    source: Option<String>,
    forward: [bool; 4],
}

#[derive(Serialize)]
struct RiskEvent<'a> {
    schema_version: u32,
    risk_object: &'a str,
    risk_object_type: &'a str,
    risk_score: f64,
    risk_message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object_type: Option<&'a str>,
    signal: &'a str,
    signal_id: &'a str,
    mitre_technique_id: &'a [String],
    cloud: &'a [CloudProvider],
    event_ids: &'a [String],
}

#[derive(Serialize)]
struct FindingEvent<'a> {
    schema_version: u32,
    finding_id: &'a str,
    identity: &'a str,
    score: f64,
    threshold: f64,
    clouds: &'a [CloudProvider],
    signals: &'a [String],
    first_seen: i64,
    last_seen: i64,
    summary: &'a str,
}

// === impl Renderer ===

impl Renderer {
    pub fn new(config: &SplunkConfig) -> Renderer {
        let mut forward = [false; 4];
        for f in &config.forward {
            forward[kind_slot(f.kind())] = true;
        }
        Renderer {
            host: config.host.clone().unwrap_or_else(hostname),
            index: config.index.clone().filter(|i| !i.is_empty()),
            source: config.source.clone(),
            forward,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn forwards(&self, kind: OutboxKind) -> bool {
        self.forward[kind_slot(kind)]
    }

    /// A raw record exactly as received; `origin` is the collector name or `import`.
    /// `None` when raw records are not forwarded.
    pub fn raw(
        &self,
        format: SourceFormat,
        raw: &[u8],
        event: &Event,
        origin: &str,
    ) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Raw) {
            return None;
        }
        let sourcetype = format.sourcetype();
        let mut fields = Vec::new();
        if matches!(
            format,
            SourceFormat::GraphSignIn | SourceFormat::SigninLogsRow
        ) {
            let (result_type, tenant_id) = signin_fields(raw, event);
            if let Some(r) = result_type {
                fields.push(("resultType", r));
            }
            if let Some(t) = tenant_id {
                fields.push(("tenant_id", t));
            }
        }
        // The record verbatim when it is JSON (RawValue trims surrounding whitespace only);
        // anything else as a JSON string, so one odd record never poisons a batch.
        let event_json: std::borrow::Cow<'_, str> = match serde_json::from_slice::<&RawValue>(raw) {
            Ok(v) => v.get().into(),
            Err(_) => json_string(&String::from_utf8_lossy(raw)).into(),
        };
        Some(self.render(
            OutboxKind::Raw,
            sourcetype,
            self.source_for(origin),
            event.time,
            &event_json,
            &fields,
        ))
    }

    /// A risk event for one signal (`sourcetype = crosswind:risk`), with the ES risk fields.
    pub fn risk(&self, signal: &Signal) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Risk) {
            return None;
        }
        let body = RiskEvent {
            schema_version: PAYLOAD_SCHEMA_VERSION,
            risk_object: &signal.risk_object,
            risk_object_type: &signal.risk_object_type,
            risk_score: finite(signal.risk_score),
            risk_message: &signal.risk_message,
            threat_object: signal.threat_object.as_deref(),
            threat_object_type: signal.threat_object_type.as_deref(),
            signal: &signal.signal,
            signal_id: &signal.id,
            mitre_technique_id: &signal.mitre_technique_id,
            cloud: &signal.cloud,
            event_ids: &signal.event_ids,
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
        Some(self.render(
            OutboxKind::Risk,
            SOURCETYPE_RISK,
            self.source_for("correlate"),
            signal.time,
            &json,
            &[],
        ))
    }

    /// A finding (`sourcetype = crosswind:finding`), timed when it was raised.
    pub fn finding(&self, finding: &Finding) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Finding) {
            return None;
        }
        let body = FindingEvent {
            schema_version: PAYLOAD_SCHEMA_VERSION,
            finding_id: &finding.id,
            identity: &finding.identity,
            score: finite(finding.score),
            threshold: finite(finding.threshold),
            clouds: &finding.clouds,
            signals: &finding.signals,
            first_seen: finding.first_seen,
            last_seen: finding.last_seen,
            summary: &finding.summary,
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
        Some(self.render(
            OutboxKind::Finding,
            SOURCETYPE_FINDING,
            self.source_for("correlate"),
            finding.raised_at,
            &json,
            &[],
        ))
    }

    /// A normalised event (`sourcetype = crosswind:event`), the common-schema JSON.
    pub fn event(&self, event: &Event, origin: &str) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Event) {
            return None;
        }
        let json = serde_json::to_string(event).ok()?;
        Some(self.render(
            OutboxKind::Event,
            SOURCETYPE_EVENT,
            self.source_for(origin),
            event.time,
            &json,
            &[],
        ))
    }

    fn source_for(&self, origin: &str) -> String {
        match &self.source {
            Some(s) => s.clone(),
            None => format!("crosswind:{origin}"),
        }
    }

    fn render(
        &self,
        kind: OutboxKind,
        sourcetype: &'static str,
        source: String,
        time_ms: i64,
        event_json: &str,
        fields: &[(&str, String)],
    ) -> Rendered {
        let mut out = String::with_capacity(event_json.len() + 192);
        out.push_str("{\"time\":");
        push_epoch_secs(&mut out, time_ms);
        out.push_str(",\"host\":");
        out.push_str(&json_string(&self.host));
        out.push_str(",\"source\":");
        out.push_str(&json_string(&source));
        out.push_str(",\"sourcetype\":");
        out.push_str(&json_string(sourcetype));
        if let Some(index) = &self.index {
            out.push_str(",\"index\":");
            out.push_str(&json_string(index));
        }
        out.push_str(",\"event\":");
        out.push_str(event_json);
        if !fields.is_empty() {
            out.push_str(",\"fields\":{");
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k));
                out.push(':');
                out.push_str(&json_string(v));
            }
            out.push('}');
        }
        out.push('}');
        Rendered {
            kind,
            sourcetype,
            source,
            time: time_ms,
            index: self.index.clone(),
            payload: out.into_bytes(),
        }
    }
}

fn kind_slot(kind: OutboxKind) -> usize {
    match kind {
        OutboxKind::Raw => 0,
        OutboxKind::Risk => 1,
        OutboxKind::Finding => 2,
        OutboxKind::Event => 3,
    }
}

/// `resultType` (Entra `status.errorCode` as text) and `tenant_id`, from the normalised event,
/// falling back to the raw record.
fn signin_fields(raw: &[u8], event: &Event) -> (Option<String>, Option<String>) {
    let mut result_type = event.status_code.clone();
    let mut tenant_id = event.cloud.account.uid.clone();
    if result_type.is_none() || tenant_id.is_none() {
        let value: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if result_type.is_none() {
            result_type = value
                .pointer("/status/errorCode")
                .or_else(|| value.get("ResultType"))
                .and_then(text);
        }
        if tenant_id.is_none() {
            tenant_id = ["tenantId", "homeTenantId", "resourceTenantId", "TenantId"]
                .iter()
                .find_map(|k| value.get(*k).and_then(text));
        }
    }
    (result_type, tenant_id)
}

/// Epoch seconds with a millisecond fraction, written as a plain decimal (never `1.7E9`, which
/// Splunk rejects as code 15).
fn push_epoch_secs(out: &mut String, ms: i64) {
    use std::fmt::Write;
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let _ = write!(out, "{secs}.{frac:03}");
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// JSON has no NaN or infinity: clamp them so a bad score never makes an invalid event.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// This machine's host name (Linux `/proc`, then `/etc/hostname`, then `$HOSTNAME`).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}
