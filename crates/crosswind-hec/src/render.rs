//! Renders what reaches Splunk into HEC event objects, once, at enqueue time:
//! `{"time":..,"host":..,"source":..,"sourcetype":..,"index":..,"event":..,"fields":{..}}`.
//!
//! Raw records are embedded byte for byte (never re-serialised), so Splunk indexes the record
//! exactly as the source returned it. Sourcetypes, indexes and the risk and finding shapes are
//! described in docs/splunk.md.

use std::collections::HashMap;

use crosswind_model::{CloudProvider, Event, Finding, Signal, SourceFormat};
use crosswind_store::outbox::{NewOutboxRow, OutboxKind};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::{IndexKind, SplunkConfig};

/// Version of the JSON shapes crosswind itself defines (risk events, findings).
pub const PAYLOAD_SCHEMA_VERSION: u32 = 1;

pub const SOURCETYPE_RISK: &str = "crosswind:risk";
pub const SOURCETYPE_FINDING: &str = "crosswind:finding";
pub const SOURCETYPE_EVENT: &str = "crosswind:event";
/// A raw record whose bytes are not a JSON object: never an add-on's shape, so never under an
/// add-on's sourcetype (the normaliser rejects such records, so this is a last guard).
pub const SOURCETYPE_RAW_UNPARSED: &str = "crosswind:unparsed";

/// Every sourcetype crosswind can send (the Splunk app has a props stanza for each).
pub fn sourcetypes() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = SourceFormat::ALL.iter().map(|f| f.sourcetype()).collect();
    all.extend([
        SOURCETYPE_RISK,
        SOURCETYPE_FINDING,
        SOURCETYPE_EVENT,
        SOURCETYPE_RAW_UNPARSED,
    ]);
    all.sort_unstable();
    all.dedup();
    all
}

/// `search_name` and HEC `source` of a signal's risk event: one per detection, so risk-based
/// alerting's count of distinct sources counts distinct detections (docs/splunk.md).
pub fn search_name(signal: &str) -> String {
    format!("crosswind - {signal} - Rule")
}

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

/// Turns records, signals and findings into HEC events, honouring `forward`, `index`,
/// `indexes`, `source` and `host`.
#[derive(Clone, Debug)]
pub struct Renderer {
    host: String,
    /// The index of each [`IndexKind`]: `indexes.<kind>`, else `index`, else none (the token's
    /// default index).
    indexes: [Option<String>; IndexKind::ALL.len()],
    source: Option<String>,
    forward: [bool; 4],
}

/// Splunk ES's risk event fields (the risk index's shape), plus crosswind's own.
#[derive(Serialize)]
struct RiskEvent<'a> {
    schema_version: u32,
    search_name: &'a str,
    risk_object: &'a str,
    risk_object_type: &'a str,
    risk_score: f64,
    risk_message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object_type: Option<&'a str>,
    annotations: Annotations<'a>,
    signal: &'a str,
    signal_id: &'a str,
    cloud: &'a [CloudProvider],
    event_ids: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    habitual: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    extends: Option<&'a str>,
}

/// `annotations.mitre_attack.mitre_technique_id`, as ES annotates its detections.
#[derive(Serialize)]
struct Annotations<'a> {
    mitre_attack: MitreAttack<'a>,
}

#[derive(Serialize)]
struct MitreAttack<'a> {
    mitre_technique_id: &'a [String],
}

#[derive(Serialize)]
struct FindingEvent<'a> {
    schema_version: u32,
    finding_id: &'a str,
    identity: &'a str,
    /// The identity again under ES's name, so a finding joins its risk events.
    risk_object: &'a str,
    risk_object_type: &'static str,
    score: f64,
    threshold: f64,
    clouds: &'a [CloudProvider],
    /// Ids of the signals behind the finding (`signal_id` of their risk events).
    signals: &'a [String],
    /// Names of those signals, and the `search_name` of their risk events, once each.
    signal_names: Vec<&'a str>,
    search_names: Vec<String>,
    /// The threat objects (IPs) of those signals, once each.
    threat_objects: Vec<&'a str>,
    annotations: Annotations<'a>,
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
        let default = config.index.clone().filter(|i| !i.is_empty());
        let indexes = IndexKind::ALL.map(|kind| {
            config
                .indexes
                .get(kind.as_str())
                .cloned()
                .filter(|i| !i.is_empty())
                .or_else(|| default.clone())
        });
        Renderer {
            host: config.host.clone().unwrap_or_else(hostname),
            indexes,
            source: config.source.clone(),
            forward,
        }
    }

    /// The index events of `kind` are sent to (`None`: the token's default index).
    pub fn index_of(&self, kind: IndexKind) -> Option<&str> {
        self.indexes[kind as usize].as_deref()
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
        let mut sourcetype = format.sourcetype();
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
        // The record verbatim when it is a JSON object (RawValue trims surrounding whitespace
        // only); anything else as a JSON string under crosswind's own sourcetype, so one odd
        // record never poisons a batch nor passes for an add-on's shape.
        let event_json: std::borrow::Cow<'_, str> = match serde_json::from_slice::<&RawValue>(raw) {
            Ok(v) if v.get().starts_with('{') => v.get().into(),
            _ => {
                sourcetype = SOURCETYPE_RAW_UNPARSED;
                fields.clear();
                json_string(&String::from_utf8_lossy(raw)).into()
            }
        };
        let index_kind = match format.provider() {
            CloudProvider::Azure => IndexKind::Entra,
            CloudProvider::Aws => IndexKind::Aws,
        };
        Some(self.render(
            OutboxKind::Raw,
            index_kind,
            sourcetype,
            self.source_for(origin),
            event.time,
            &event_json,
            &fields,
        ))
    }

    /// A risk event for one signal (`sourcetype = crosswind:risk`) in Splunk ES's risk shape.
    /// Its HEC `source` is its `search_name` whatever `[splunk] source` says: risk-based
    /// alerting counts distinct sources as distinct detections.
    pub fn risk(&self, signal: &Signal) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Risk) {
            return None;
        }
        let search_name = search_name(&signal.signal);
        // A threat-only observation (a spraying IP) has no identity: ES needs a risk object,
        // so the threat object is the `system` it is about.
        let (risk_object, risk_object_type) = match signal.threat_object.as_deref() {
            Some(threat) if signal.risk_object.is_empty() => (threat, "system"),
            _ => (
                signal.risk_object.as_str(),
                signal.risk_object_type.as_str(),
            ),
        };
        let body = RiskEvent {
            schema_version: PAYLOAD_SCHEMA_VERSION,
            search_name: &search_name,
            risk_object,
            risk_object_type,
            risk_score: finite(signal.risk_score),
            risk_message: &signal.risk_message,
            threat_object: signal.threat_object.as_deref(),
            threat_object_type: signal.threat_object_type.as_deref().map(es_threat_type),
            annotations: Annotations {
                mitre_attack: MitreAttack {
                    mitre_technique_id: &signal.mitre_technique_id,
                },
            },
            signal: &signal.signal,
            signal_id: &signal.id,
            cloud: &signal.cloud,
            event_ids: &signal.event_ids,
            habitual: signal.habitual,
            extends: signal.extends.as_deref(),
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
        Some(self.render(
            OutboxKind::Risk,
            IndexKind::Risk,
            SOURCETYPE_RISK,
            search_name,
            signal.time,
            &json,
            &[],
        ))
    }

    /// A finding (`sourcetype = crosswind:finding`), timed when it was raised. `behind` maps
    /// signal ids to (at least) the signals the finding lists; their names, search names,
    /// threat objects and techniques go with it, so a finding reads without a lookup.
    pub fn finding(&self, finding: &Finding, behind: &HashMap<&str, &Signal>) -> Option<Rendered> {
        if !self.forwards(OutboxKind::Finding) {
            return None;
        }
        let listed: Vec<&Signal> = finding
            .signals
            .iter()
            .filter_map(|id| behind.get(id.as_str()).copied())
            .collect();
        let mut signal_names: Vec<&str> = listed.iter().map(|s| s.signal.as_str()).collect();
        signal_names.sort_unstable();
        signal_names.dedup();
        let search_names = signal_names.iter().map(|n| search_name(n)).collect();
        let mut threat_objects: Vec<&str> = listed
            .iter()
            .filter_map(|s| s.threat_object.as_deref())
            .collect();
        threat_objects.sort_unstable();
        threat_objects.dedup();
        let mut techniques: Vec<String> = listed
            .iter()
            .flat_map(|s| s.mitre_technique_id.iter().cloned())
            .collect();
        techniques.sort_unstable();
        techniques.dedup();
        let body = FindingEvent {
            schema_version: PAYLOAD_SCHEMA_VERSION,
            finding_id: &finding.id,
            identity: &finding.identity,
            risk_object: &finding.identity,
            risk_object_type: "user",
            score: finite(finding.score),
            threshold: finite(finding.threshold),
            clouds: &finding.clouds,
            signals: &finding.signals,
            signal_names,
            search_names,
            threat_objects,
            annotations: Annotations {
                mitre_attack: MitreAttack {
                    mitre_technique_id: &techniques,
                },
            },
            first_seen: finding.first_seen,
            last_seen: finding.last_seen,
            summary: &finding.summary,
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
        Some(self.render(
            OutboxKind::Finding,
            IndexKind::Findings,
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
            IndexKind::Events,
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

    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        kind: OutboxKind,
        index_kind: IndexKind,
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
        let index = self.index_of(index_kind);
        if let Some(index) = index {
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
            index: index.map(str::to_owned),
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

/// ES's threat object type for crosswind's: an IP (or a sprayed /24, /48) is `ip_address`.
fn es_threat_type(kind: &str) -> &str {
    match kind {
        "ip" | "cidr" => "ip_address",
        other => other,
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
