//! Unit and loopback tests: config, rendering, the outbox contract, and delivery under every
//! injected fault (the receiver's set of event ids must equal the outbox's delivery history).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crosswind_model::{CloudProvider, Event, Finding, Signal, SourceFormat};
use crosswind_sim::hec::{Faults, HecSim, HecSimConfig};
use crosswind_store::outbox::{self, NewOutboxRow, OutboxKind, Quota};
use crosswind_store::{NewRecord, Store};

use crate::*;

const TOKEN: &str = "11111111-2222-4333-8444-555555555555";

fn env(name: &str) -> Option<String> {
    (name == "HEC_TOKEN").then(|| TOKEN.to_string())
}

fn sim_config() -> HecSimConfig {
    HecSimConfig {
        token: TOKEN.into(),
        ..HecSimConfig::default()
    }
}

fn splunk_config(url: &str) -> SplunkConfig {
    let mut c = SplunkConfig::new(url);
    c.token_env = Some("HEC_TOKEN".into());
    c.batch_max_bytes = 4_096;
    c.ack_poll_interval_ms = 200;
    c.ack_timeout_secs = 30;
    c.retry_max_backoff_secs = 5;
    c
}

/// A store with `n` queued test events whose `event.id` is `ev-<n>`; returns outbox id → marker.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    markers: BTreeMap<i64, String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crosswind.db");
        Store::open(&path).unwrap();
        Fixture {
            _dir: dir,
            path,
            markers: BTreeMap::new(),
        }
    }

    fn store(&self) -> Store {
        Store::open(&self.path).unwrap()
    }

    fn enqueue(&mut self, n: usize, tag: &str) {
        self.enqueue_to(n, tag, &[None]);
    }

    /// `n` events, the i-th bound for `indexes[i % len]` (`None`: the token's default index).
    fn enqueue_to(&mut self, n: usize, tag: &str, indexes: &[Option<&str>]) {
        let mut store = self.store();
        let batch = store.begin().unwrap();
        let mut quota = Quota::unlimited();
        for i in 0..n {
            let marker = format!("{tag}-{i:05}");
            let index = indexes[i % indexes.len()];
            let index_member = index.map_or(String::new(), |x| format!(r#","index":"{x}""#));
            let payload = format!(
                r#"{{"time":1700000000.{:03},"host":"test","source":"crosswind:test","sourcetype":"crosswind:test"{index_member},"event":{{"id":"{marker}","pad":"{}"}}}}"#,
                i % 1000,
                "x".repeat(100)
            );
            let id = outbox::enqueue(
                &batch,
                &mut quota,
                &NewOutboxRow {
                    kind: OutboxKind::Event,
                    sourcetype: "crosswind:test",
                    source: "crosswind:test",
                    time: 1_700_000_000_000,
                    index,
                    payload: payload.as_bytes(),
                },
            )
            .unwrap();
            self.markers.insert(id, marker);
        }
        batch.commit().unwrap();
    }

    fn forwarder(&self, config: SplunkConfig) -> Forwarder {
        Forwarder::with_env(config, self.store(), &env).unwrap()
    }

    /// Every enqueued event is delivered or dead-lettered; the receiver indexed exactly the
    /// delivered ones (each at least once); duplicates are bounded by what the sink counted.
    fn assert_exact(&self, sim: &HecSim, metrics: &MetricsSnapshot) -> Report {
        let store = self.store();
        let stats = outbox::stats(&store).unwrap();
        assert_eq!(stats.depth(), 0, "outbox not drained: {stats:?}");
        let delivered: BTreeSet<String> = outbox::delivered(&store)
            .unwrap()
            .iter()
            .map(|d| self.markers[&d.id].clone())
            .collect();
        let dead: BTreeSet<String> = outbox::dead_letters(&store, usize::MAX)
            .unwrap()
            .iter()
            .map(|d| self.markers[&d.id].clone())
            .collect();
        let all: BTreeSet<String> = self.markers.values().cloned().collect();
        assert!(delivered.is_disjoint(&dead));
        assert_eq!(
            delivered.union(&dead).cloned().collect::<BTreeSet<_>>(),
            all
        );
        let received: Vec<String> = sim
            .events()
            .iter()
            .filter_map(|e| e.pointer("/event/id")?.as_str().map(str::to_string))
            .collect();
        let received_set: BTreeSet<String> = received.iter().cloned().collect();
        assert_eq!(received_set, delivered, "receiver set != delivery history");
        let duplicates = (received.len() - received_set.len()) as u64;
        assert_eq!(duplicates, sim.stats().duplicates);
        assert!(
            duplicates <= metrics.possible_duplicates,
            "{duplicates} duplicates but only {} counted",
            metrics.possible_duplicates
        );
        Report {
            delivered: delivered.len(),
            dead,
            duplicates,
        }
    }
}

struct Report {
    delivered: usize,
    dead: BTreeSet<String>,
    duplicates: u64,
}

// --- config ---

#[test]
fn config_parses_with_defaults_and_rejects_unknown_keys() {
    let c: SplunkConfig = toml::from_str(
        r#"url = "https://splunk.example.com:8088"
           token_env = "HEC_TOKEN"
           index = "cloud"
           forward = ["raw", "risk", "findings", "events"]"#,
    )
    .unwrap();
    assert!(c.indexer_ack && c.gzip && c.tls_verify);
    assert_eq!(c.batch_max_bytes, 900_000);
    assert!(c.validate(&env).is_empty(), "{:?}", c.validate(&env));
    let err = toml::from_str::<SplunkConfig>(
        r#"url = "https://s:8088"
           token_env = "X"
           idx = "typo""#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("idx"), "{err}");
}

#[test]
fn indexes_route_each_kind_and_the_rest_go_to_index() {
    let c: SplunkConfig = toml::from_str(
        r#"url = "https://s:8088"
           token_env = "HEC_TOKEN"
           index = "cloud"
           indexes = { entra = "azure", aws = "aws", risk = "risk" }
           forward = ["raw", "risk", "findings", "events"]"#,
    )
    .unwrap();
    assert!(c.validate(&env).is_empty(), "{:?}", c.validate(&env));
    let r = Renderer::new(&c);
    assert_eq!(r.index_of(IndexKind::Entra), Some("azure"));
    assert_eq!(r.index_of(IndexKind::Aws), Some("aws"));
    assert_eq!(r.index_of(IndexKind::Risk), Some("risk"));
    assert_eq!(r.index_of(IndexKind::Findings), Some("cloud"));
    assert_eq!(r.index_of(IndexKind::Events), Some("cloud"));
    let raw = br#"{"id":"r1","createdDateTime":"2023-11-14T22:13:20Z"}"#;
    let event = graph_event(&serde_json::from_slice(raw).unwrap());
    for (format, index) in [
        (SourceFormat::GraphSignIn, "azure"),
        (SourceFormat::SigninLogsRow, "azure"),
        (SourceFormat::GraphRiskDetection, "azure"),
        (SourceFormat::CloudTrail, "aws"),
        (SourceFormat::SentinelCloudTrailRow, "aws"),
    ] {
        let rendered = r.raw(format, raw, &event, "import").unwrap();
        assert_eq!(rendered.index.as_deref(), Some(index), "{format:?}");
        let v: serde_json::Value = serde_json::from_slice(&rendered.payload).unwrap();
        assert_eq!(v["index"], index, "{format:?}");
    }
    let e = r.event(&event, "import").unwrap();
    assert_eq!(e.index.as_deref(), Some("cloud"));

    // No index at all: no index member, the token's default index applies.
    let r = Renderer::new(&splunk_config("https://s:8088"));
    let rendered = r
        .raw(SourceFormat::GraphSignIn, raw, &event, "import")
        .unwrap();
    assert_eq!(rendered.index, None);
    assert!(!String::from_utf8_lossy(&rendered.payload).contains("\"index\""));
}

#[test]
fn validate_names_a_bad_indexes_key_or_index() {
    let mut c = splunk_config("https://s:8088");
    c.indexes.insert("entra".into(), "azure".into());
    c.indexes.insert("azure".into(), "azure".into());
    c.indexes.insert("risk".into(), "Risk Index".into());
    c.indexes.insert("aws".into(), "_internal".into());
    let problems = c.validate(&env);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "splunk.indexes.aws",
            "splunk.indexes.azure",
            "splunk.indexes.risk"
        ],
        "{problems:?}"
    );
    assert!(problems[1].message.contains("unknown kind"), "{problems:?}");
    assert!(
        problems[1]
            .message
            .contains("entra, aws, risk, findings, events"),
        "{problems:?}"
    );
}

#[test]
fn sourcetype_follows_the_record_shape_and_an_unparsed_record_gets_crosswinds_own() {
    let raw = br#"{"id":"r1","createdDateTime":"2023-11-14T22:13:20Z"}"#;
    let event = graph_event(&serde_json::from_slice(raw).unwrap());
    let r = Renderer::new(&splunk_config("https://s:8088"));
    for (format, sourcetype) in [
        (SourceFormat::GraphSignIn, "azure:aad:signin"),
        (SourceFormat::DiagnosticSignIn, "azure:monitor:aad"),
        (SourceFormat::SigninLogsRow, "crosswind:signinlogs"),
        (SourceFormat::CloudTrail, "aws:cloudtrail"),
        (SourceFormat::CloudTrailLogstash, "aws:cloudtrail"),
        (
            SourceFormat::SentinelCloudTrailRow,
            "crosswind:awscloudtrail",
        ),
        (
            SourceFormat::GraphRiskDetection,
            "azure:aad:identity_protection:risk_detection",
        ),
        (
            SourceFormat::DiagnosticRiskDetection,
            "azure:aad:identity_protection:risk_detection",
        ),
        (
            SourceFormat::UserRiskEventsRow,
            "azure:aad:identity_protection:risk_detection",
        ),
    ] {
        let rendered = r.raw(format, raw, &event, "import").unwrap();
        assert_eq!(rendered.sourcetype, sourcetype, "{format:?}");
        // Bytes that are not a JSON object are no add-on's shape.
        for odd in [&b"not json"[..], b"[1,2]", b"\"text\""] {
            let rendered = r.raw(format, odd, &event, "import").unwrap();
            assert_eq!(rendered.sourcetype, "crosswind:unparsed", "{format:?}");
            let v: serde_json::Value = serde_json::from_slice(&rendered.payload).unwrap();
            assert_eq!(v["event"], String::from_utf8_lossy(odd).as_ref());
            assert!(v.get("fields").is_none(), "{v}");
        }
    }
    assert_eq!(
        crate::sourcetypes(),
        [
            "aws:cloudtrail",
            "azure:aad:identity_protection:risk_detection",
            "azure:aad:signin",
            "azure:monitor:aad",
            "crosswind:awscloudtrail",
            "crosswind:event",
            "crosswind:finding",
            "crosswind:risk",
            "crosswind:signinlogs",
            "crosswind:unparsed",
        ]
    );
}

#[test]
fn validate_names_each_bad_key() {
    let mut c = SplunkConfig::new("ftp://splunk");
    c.index = Some("Bad Index".into());
    c.forward.clear();
    c.batch_max_bytes = 10;
    c.ack_timeout_secs = 0;
    c.ca_file = Some("/nonexistent/ca.pem".into());
    let keys: BTreeSet<String> = c.validate(&env).into_iter().map(|p| p.key).collect();
    for key in [
        "splunk.url",
        "splunk.token_file",
        "splunk.index",
        "splunk.forward",
        "splunk.batch_max_bytes",
        "splunk.ack_timeout_secs",
        "splunk.ca_file",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    let mut c = splunk_config("https://s:8088");
    c.token_env = Some("UNSET_TOKEN".into());
    let problems = c.validate(&env);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "splunk.token_env");
}

#[test]
fn token_never_in_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut c = SplunkConfig::new("http://127.0.0.1:1");
    c.token_file = Some(file);
    let token = c.token(&env).unwrap();
    assert_eq!(token.expose(), TOKEN);
    assert!(!format!("{token:?} {token}").contains(TOKEN));
    let fwd = Forwarder::with_env(c, Store::open_in_memory().unwrap(), &env).unwrap();
    assert!(fwd.channel().is_some());
    let refused = HecError::Refused {
        status: 403,
        code: Some(4),
        text: "Invalid token".into(),
        hint: client::refusal_hint(403, Some(4)),
    };
    assert!(!format!("{refused} {refused:?}").contains(TOKEN));
    assert!(refused.needs_operator());
}

/// A token pasted where its file's path or variable's name belongs is not echoed.
#[test]
fn a_pasted_token_is_never_echoed() {
    let mut c = SplunkConfig::new("https://splunk.example.com:8088");
    c.token_file = Some(TOKEN.into());
    let problems = c.validate(&env);
    assert!(problems.iter().any(|p| p.key == "splunk.token_file"));
    for p in &problems {
        assert!(!p.message.contains(TOKEN), "{p}");
    }
    let e = c.token(&env).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(TOKEN), "{e:?}");
    c.token_file = None;
    c.token_env = Some(TOKEN.into());
    for p in c.validate(&env) {
        assert!(!p.message.contains(TOKEN), "{p}");
    }
    let e = c.token(&env).unwrap_err();
    assert!(!e.to_string().contains(TOKEN), "{e}");
    // A real path or name is shown.
    c.token_env = Some("MISSING_HEC_TOKEN".into());
    assert!(
        c.token(&env)
            .unwrap_err()
            .to_string()
            .contains("MISSING_HEC_TOKEN")
    );
}

/// A HEC URL with a user name and password: neither reaches a log or an error.
#[tokio::test]
async fn urls_in_logs_and_errors_never_carry_credentials() {
    assert_eq!(
        redacted_url("https://admin:hunter2@splunk.example.com:8088"),
        "https://***@splunk.example.com:8088/"
    );
    assert_eq!(
        redacted_url("https://splunk.example.com:8088"),
        "https://splunk.example.com:8088/"
    );
    // Nothing listens there: the connection error names the URL, without the password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut c = splunk_config(&format!("http://admin:hunter2@127.0.0.1:{port}"));
    c.tls_verify = false;
    let fwd = Forwarder::with_env(c, Store::open_in_memory().unwrap(), &env).unwrap();
    let err = fwd.healthcheck().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

// --- rendering ---

fn graph_event(raw: &serde_json::Value) -> Event {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1,
        "class_uid": 3002,
        "time": 1_700_000_000_123i64,
        "status_id": 2,
        "status_code": "50126",
        "metadata": {
            "uid": raw["id"],
            "product": "Microsoft Entra ID",
            "log_name": SourceFormat::GraphSignIn,
        },
        "cloud": { "provider": CloudProvider::Azure,
                   "account": { "uid": "9f1c0000-0000-4000-8000-00000000aaaa" } },
    }))
    .unwrap()
}

#[test]
fn raw_graph_signin_is_verbatim_with_indexed_fields() {
    // Odd spacing and key order: must reach Splunk byte for byte.
    let raw = br#"{"id":"66ea54eb-6301-4ee5-be62-ff5a759b0100",  "createdDateTime":"2023-11-14T22:13:20.123Z","status":{"errorCode":50126,"failureReason":"Invalid username or password."},"userPrincipalName":"alice@contoso.com"}"#;
    let event = graph_event(&serde_json::from_slice(raw).unwrap());
    let mut c = splunk_config("https://s:8088");
    c.index = Some("cloud".into());
    c.host = Some("collector-1".into());
    let r = Renderer::new(&c)
        .raw(SourceFormat::GraphSignIn, raw, &event, "corp")
        .unwrap();
    let payload = std::str::from_utf8(&r.payload).unwrap();
    assert!(
        payload.contains(std::str::from_utf8(raw).unwrap()),
        "{payload}"
    );
    assert!(payload.starts_with(r#"{"time":1700000000.123,"host":"collector-1","source":"crosswind:corp","sourcetype":"azure:aad:signin","index":"cloud","event":{"id""#), "{payload}");
    let v: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(v["fields"]["resultType"], "50126");
    assert_eq!(
        v["fields"]["tenant_id"],
        "9f1c0000-0000-4000-8000-00000000aaaa"
    );
    assert_eq!(r.kind, OutboxKind::Raw);
    assert_eq!(r.sourcetype, "azure:aad:signin");
}

#[test]
fn risk_events_carry_es_fields_and_findings_their_shape() {
    let signal = Signal {
        schema_version: 1,
        id: "sig-1".into(),
        signal: "azure_password_spray".into(),
        time: 1_700_000_000_500,
        risk_object: "alice@contoso.com".into(),
        risk_object_type: "user".into(),
        risk_score: 56.0,
        risk_message: "Password spray from 203.0.113.9 hit alice@contoso.com.".into(),
        // The correlator's own name for an IP: ES calls it ip_address.
        threat_object: Some("203.0.113.9".into()),
        threat_object_type: Some("ip".into()),
        mitre_technique_id: vec!["T1110.003".into()],
        cloud: vec![CloudProvider::Azure, CloudProvider::Aws],
        event_ids: vec!["e1".into(), "e2".into()],
        habitual: false,
        extends: None,
    };
    let mut c = splunk_config("https://s:8088");
    // A configured source applies to raw records, never to risk events (RBA counts sources).
    c.source = Some("crosswind".into());
    let r = Renderer::new(&c).risk(&signal).unwrap();
    assert_eq!(r.sourcetype, "crosswind:risk");
    assert_eq!(r.source, "crosswind - azure_password_spray - Rule");
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(v["sourcetype"], "crosswind:risk");
    assert_eq!(v["source"], "crosswind - azure_password_spray - Rule");
    assert_eq!(v["time"].as_f64(), Some(1_700_000_000.5));
    let e = &v["event"];
    assert_eq!(e["search_name"], "crosswind - azure_password_spray - Rule");
    assert_eq!(e["risk_object"], "alice@contoso.com");
    assert_eq!(e["risk_object_type"], "user");
    assert_eq!(e["risk_score"], 56.0);
    assert_eq!(e["risk_message"], signal.risk_message.as_str());
    assert_eq!(e["threat_object"], "203.0.113.9");
    assert_eq!(e["threat_object_type"], "ip_address");
    assert_eq!(e["signal"], "azure_password_spray");
    assert_eq!(e["signal_id"], "sig-1");
    assert_eq!(
        e["annotations"]["mitre_attack"]["mitre_technique_id"],
        serde_json::json!(["T1110.003"])
    );
    assert!(e.get("mitre_technique_id").is_none(), "{e}");
    assert_eq!(e["cloud"], serde_json::json!(["Azure", "AWS"]));
    assert_eq!(e["event_ids"], serde_json::json!(["e1", "e2"]));
    assert!(e.get("habitual").is_none(), "{e}");
    let habitual = Signal {
        habitual: true,
        ..signal.clone()
    };
    let v: serde_json::Value =
        serde_json::from_slice(&Renderer::new(&c).risk(&habitual).unwrap().payload).unwrap();
    assert_eq!(v["event"]["habitual"], true);
    // A threat-only signal (the spraying IP, no identity): the IP is ES's `system` risk object.
    let threat_only = Signal {
        risk_object: String::new(),
        risk_object_type: "system".into(),
        risk_score: 0.0,
        ..signal.clone()
    };
    let v: serde_json::Value =
        serde_json::from_slice(&Renderer::new(&c).risk(&threat_only).unwrap().payload).unwrap();
    assert_eq!(v["event"]["risk_object"], "203.0.113.9");
    assert_eq!(v["event"]["risk_object_type"], "system");
    assert_eq!(v["event"]["threat_object"], "203.0.113.9");

    let finding = Finding {
        schema_version: 1,
        id: "f-1".into(),
        identity: "alice@contoso.com".into(),
        score: 120.0,
        threshold: 100.0,
        clouds: vec![CloudProvider::Azure],
        signals: vec!["sig-1".into(), "sig-2".into()],
        first_seen: 1,
        last_seen: 2,
        raised_at: 1_700_000_001_000,
        summary: "alice".into(),
    };
    let other = Signal {
        id: "sig-2".into(),
        signal: "aws_console_login_no_mfa".into(),
        threat_object: Some("198.51.100.7".into()),
        mitre_technique_id: vec!["T1078.004".into()],
        ..signal.clone()
    };
    let unrelated = Signal {
        id: "sig-3".into(),
        signal: "aws_recon_burst".into(),
        ..signal.clone()
    };
    let behind: std::collections::HashMap<&str, &Signal> = [&signal, &other, &unrelated]
        .into_iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let f = Renderer::new(&c).finding(&finding, &behind).unwrap();
    assert_eq!(f.source, "crosswind");
    let v: serde_json::Value = serde_json::from_slice(&f.payload).unwrap();
    assert_eq!(v["sourcetype"], "crosswind:finding");
    let e = &v["event"];
    assert_eq!(e["risk_object"], "alice@contoso.com");
    assert_eq!(e["risk_object_type"], "user");
    assert_eq!(e["signals"], serde_json::json!(["sig-1", "sig-2"]));
    assert_eq!(
        e["signal_names"],
        serde_json::json!(["aws_console_login_no_mfa", "azure_password_spray"])
    );
    assert_eq!(
        e["search_names"],
        serde_json::json!([
            "crosswind - aws_console_login_no_mfa - Rule",
            "crosswind - azure_password_spray - Rule"
        ])
    );
    assert_eq!(
        e["threat_objects"],
        serde_json::json!(["198.51.100.7", "203.0.113.9"])
    );
    assert_eq!(
        e["annotations"]["mitre_attack"]["mitre_technique_id"],
        serde_json::json!(["T1078.004", "T1110.003"])
    );
    for key in [
        "identity",
        "score",
        "threshold",
        "clouds",
        "signals",
        "first_seen",
        "last_seen",
        "summary",
    ] {
        assert!(!v["event"][key].is_null(), "{key}");
    }
    // forward = raw, risk, findings by default: normalised events are not forwarded.
    assert!(
        Renderer::new(&c)
            .event(&graph_event(&serde_json::json!({"id":"x"})), "corp")
            .is_none()
    );
}

// --- outbox contract ---

#[test]
fn enqueue_commits_or_rolls_back_with_the_record_and_full_outbox_refuses() {
    let mut store = Store::open_in_memory().unwrap();
    let raw = br#"{"id":"r1","createdDateTime":"2023-11-14T22:13:20Z"}"#;
    let event = graph_event(&serde_json::from_slice(raw).unwrap());
    let renderer = Renderer::new(&splunk_config("https://s:8088"));
    let rec = NewRecord {
        event: &event,
        format: SourceFormat::GraphSignIn,
        raw,
        origin: "import",
    };
    {
        let mut batch = store.begin().unwrap();
        let mut quota = Quota::check(&batch, 1).unwrap();
        batch.insert(&rec).unwrap();
        let r = renderer
            .raw(rec.format, rec.raw, rec.event, rec.origin)
            .unwrap();
        enqueue(&batch, &mut quota, &r).unwrap();
        // Dropped without commit: neither the record nor its outbox row exist.
    }
    assert_eq!(outbox::stats(&store).unwrap().depth(), 0);
    let mut batch = store.begin().unwrap();
    let mut quota = Quota::check(&batch, 1).unwrap();
    batch.insert(&rec).unwrap();
    let r = renderer
        .raw(rec.format, rec.raw, rec.event, rec.origin)
        .unwrap();
    enqueue(&batch, &mut quota, &r).unwrap();
    let full = enqueue(&batch, &mut quota, &r).unwrap_err();
    assert!(full.is_full() && full.to_string().contains("max_outbox_rows"));
    batch.commit().unwrap();
    let batch = store.begin().unwrap();
    assert!(Quota::check(&batch, 1).unwrap_err().is_full());
    drop(batch);
    let stats = outbox::stats(&store).unwrap();
    assert_eq!((stats.pending, stats.depth()), (1, 1));
    assert!(stats.oldest_enqueued_at.is_some());
}

// --- delivery under faults ---

#[tokio::test(start_paused = true)]
async fn delivers_everything_with_gzip_and_acks() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(300, "ev");
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    let stats = fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 300);
    assert_eq!(report.duplicates, 0);
    assert_eq!(stats.events_acked, 300);
    assert!(
        stats.batches > 5,
        "small batch_max_bytes should split: {stats:?}"
    );
    assert!(
        outbox::delivered(&fx.store())
            .unwrap()
            .iter()
            .all(|d| d.acked)
    );
    assert_eq!(m.possible_duplicates, 0);
}

#[tokio::test(start_paused = true)]
async fn busy_storm_and_unhealthy_server_are_waited_out() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            busy_requests: 6,
            retry_after_secs: Some(3),
            unhealthy_checks: 4,
            ..Faults::default()
        },
        120,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!((report.delivered, report.duplicates), (120, 0));
    assert_eq!(stats.retries, 6);
    assert!(m.health_failures >= 4);
    assert_eq!(m.possible_duplicates, 0, "503 means nothing was indexed");
}

#[tokio::test(start_paused = true)]
async fn slow_acks_are_waited_for_without_resending() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            ack_delay_polls: 5,
            ..Faults::default()
        },
        100,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!((report.delivered, report.duplicates), (100, 0));
    assert_eq!(stats.ack_timeouts, 0);
    assert_eq!(stats.events_acked, 100);
}

#[tokio::test(start_paused = true)]
async fn lost_acks_are_resent_after_the_timeout_and_counted() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            lose_acks: 2,
            ..Faults::default()
        },
        100,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 100);
    assert!(report.duplicates > 0, "the lost acks' events were resent");
    assert_eq!(report.duplicates, m.possible_duplicates);
    assert_eq!(stats.ack_timeouts, report.duplicates);
    let resent = outbox::delivered(&fx.store())
        .unwrap()
        .iter()
        .filter(|d| d.attempts > 1)
        .count() as u64;
    assert_eq!(resent, report.duplicates);
}

/// Indexer restarts: three requests in a row are answered with an ack id, then lost before they
/// are indexed, and the restarted indexer counts ack ids from 0 again, so the next request gets
/// the same ack id. Its "true" must not confirm a lost batch: those are resent, and every event
/// the delivery history calls delivered is at the receiver.
#[tokio::test(start_paused = true)]
async fn a_reused_ack_id_never_confirms_a_lost_batch() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            restart_after_accept: 3,
            ..Faults::default()
        },
        600,
    )
    .await;
    fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 600);
    assert_eq!(m.ack_id_reuses, 3, "each lost request's ack id came back");
    assert_eq!(report.duplicates, 0, "the lost batches were never indexed");
}

#[tokio::test(start_paused = true)]
async fn too_large_splits_the_batch_and_dead_letters_a_lone_giant() {
    let sim = HecSim::start(HecSimConfig {
        max_content_length: Some(1_500),
        ..sim_config()
    })
    .await
    .unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(40, "ev");
    // One event alone over the limit.
    {
        let mut store = fx.store();
        let batch = store.begin().unwrap();
        let payload = format!(
            r#"{{"time":1.000,"event":{{"id":"giant","pad":"{}"}}}}"#,
            "y".repeat(3_000)
        );
        let id = outbox::enqueue(
            &batch,
            &mut Quota::unlimited(),
            &NewOutboxRow {
                kind: OutboxKind::Raw,
                sourcetype: "t",
                source: "s",
                time: 1,
                index: None,
                payload: payload.as_bytes(),
            },
        )
        .unwrap();
        batch.commit().unwrap();
        fx.markers.insert(id, "giant".into());
    }
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 40);
    assert_eq!(report.dead, BTreeSet::from(["giant".to_string()]));
    assert!(m.splits > 0);
    let dead = outbox::dead_letters(&fx.store(), 10).unwrap();
    assert!(dead[0].error.contains("too large"), "{}", dead[0].error);
}

/// Issue 16, suspected: a 413 halved the batch size limit for the rest of the process's life.
/// Once Splunk takes large bodies again, the limit doubles back to `batch_max_bytes` after a
/// quiet while (ten minutes of tokio's paused clock per step).
#[tokio::test(start_paused = true)]
async fn a_lowered_batch_limit_is_raised_back_after_a_quiet_while() {
    let sim = HecSim::start(HecSimConfig {
        max_content_length: Some(1_500),
        ..sim_config()
    })
    .await
    .unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(40, "small");
    let config = splunk_config(&sim.url());
    let max = config.batch_max_bytes;
    let mut fwd = fx.forwarder(config);
    fwd.drain_once().await.unwrap();
    assert!(fwd.metrics().snapshot().splits > 0);
    let low = fwd.batch_limit_bytes();
    assert!(low <= 1_500, "{low}");
    let gauge = |fwd: &Forwarder| {
        fwd.metrics()
            .export()
            .into_iter()
            .find(|(n, _)| *n == "crosswind_splunk_hec_batch_limit_bytes")
            .map(|(_, v)| v)
    };
    assert_eq!(gauge(&fwd), Some(low as u64));
    sim.update_config(|c| c.max_content_length = None);
    // Within the quiet while it stays where the 413 put it.
    fx.enqueue(40, "soon");
    fwd.drain_once().await.unwrap();
    assert_eq!(fwd.batch_limit_bytes(), low);
    let mut rounds = 0;
    while fwd.batch_limit_bytes() < max {
        rounds += 1;
        assert!(
            rounds <= 8,
            "the limit never came back: {}",
            fwd.batch_limit_bytes()
        );
        tokio::time::advance(std::time::Duration::from_secs(601)).await;
        fx.enqueue(40, &format!("later{rounds}"));
        fwd.drain_once().await.unwrap();
    }
    assert_eq!(fwd.batch_limit_bytes(), max);
    assert_eq!(gauge(&fwd), Some(max as u64));
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 80 + 40 * rounds);
}

#[tokio::test(start_paused = true)]
async fn dropped_connections_are_retried() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            drop_connections: 3,
            ..Faults::default()
        },
        100,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!((report.delivered, report.duplicates), (100, 0));
    assert!(stats.retries >= 3);
}

#[tokio::test(start_paused = true)]
async fn connection_lost_after_indexing_is_a_counted_duplicate() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            drop_after_index: 1,
            ..Faults::default()
        },
        60,
    )
    .await;
    fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 60);
    assert!(report.duplicates > 0);
    assert_eq!(report.duplicates, m.possible_duplicates);
}

#[tokio::test(start_paused = true)]
async fn one_invalid_event_is_dead_lettered_and_the_rest_delivered_once() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            invalid_marker: Some("ev-00013".into()),
            ..Faults::default()
        },
        50,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let m = fwd.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.dead, BTreeSet::from(["ev-00013".to_string()]));
    assert_eq!(report.delivered, 49);
    assert_eq!(
        report.duplicates, 0,
        "events before the bad one were not doubled"
    );
    assert_eq!(stats.dead_lettered, 1);
    let dead = outbox::dead_letters(&fx.store(), 10).unwrap();
    assert!(
        dead[0].error.contains("Invalid data format") && dead[0].error.contains("code 6"),
        "{}",
        dead[0].error
    );
    // The events before the bad one were indexed without an ack to confirm them.
    assert!(
        outbox::delivered(&fx.store())
            .unwrap()
            .iter()
            .any(|d| !d.acked)
    );
}

/// A simulator with `faults`, a store with `n` queued events `ev-<i>`, and a forwarder between.
async fn faulty_setup(faults: Faults, n: usize) -> (HecSim, Fixture, Forwarder) {
    let sim = HecSim::start(sim_config()).await.unwrap();
    sim.set_faults(faults);
    let mut fx = Fixture::new();
    fx.enqueue(n, "ev");
    let fwd = fx.forwarder(splunk_config(&sim.url()));
    (sim, fx, fwd)
}

/// The issue-17 case: requests refused as a whole name event 0 each time. Taking that at its
/// word dead-lettered 32 of 50 good events; sent alone, each one is accepted.
#[tokio::test(start_paused = true)]
async fn requests_refused_as_a_whole_dead_letter_no_good_event() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            refuse_requests: 32,
            ..Faults::default()
        },
        50,
    )
    .await;
    let stats = fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!(report.dead, BTreeSet::new());
    assert_eq!(report.delivered, 50);
    assert_eq!(stats.dead_lettered, 0);
    assert_eq!(sim.stats().invalid, 32, "every refusal was answered");
}

/// A bad event behind whole-request refusals: only it is dead-lettered, with Splunk's reason.
#[tokio::test(start_paused = true)]
async fn only_the_event_refused_alone_is_dead_lettered() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            refuse_requests: 6,
            invalid_marker: Some("ev-00032".into()),
            ..Faults::default()
        },
        50,
    )
    .await;
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!(report.dead, BTreeSet::from(["ev-00032".to_string()]));
    assert_eq!(report.delivered, 49);
    let dead = outbox::dead_letters(&fx.store(), 10).unwrap();
    assert!(
        dead[0].error.contains("sent alone") && dead[0].error.contains("code 6"),
        "{}",
        dead[0].error
    );
}

/// Ten bad events in a row (ev-00020..ev-00029) are each refused alone while Splunk takes the
/// others: all ten are dead-lettered, nothing else.
#[tokio::test(start_paused = true)]
async fn a_run_of_bad_events_is_dead_lettered_event_by_event() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            invalid_marker: Some("ev-0002".into()),
            ..Faults::default()
        },
        50,
    )
    .await;
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    let expected: BTreeSet<String> = (20..30).map(|i| format!("ev-{i:05}")).collect();
    assert_eq!(report.dead, expected);
    assert_eq!(report.delivered, 40);
}

/// Splunk refuses every request, even a lone event: nothing proves any event bad, so none is
/// dead-lettered; the drain stops with an error that needs an operator and all stay queued.
#[tokio::test(start_paused = true)]
async fn splunk_refusing_everything_dead_letters_nothing() {
    for events in [5, 100] {
        let sim = HecSim::start(sim_config()).await.unwrap();
        sim.set_faults(Faults {
            refuse_requests: u32::MAX,
            ..Faults::default()
        });
        let mut fx = Fixture::new();
        fx.enqueue(events, "ev");
        let mut fwd = fx.forwarder(splunk_config(&sim.url()));
        let err = fwd.drain_once().await.unwrap_err();
        assert!(err.needs_operator(), "{err}");
        assert!(err.to_string().contains("even one at a time"), "{err}");
        let stats = outbox::stats(&fx.store()).unwrap();
        assert_eq!((stats.pending, stats.dead), (events as u64, 0), "{events}");
        // Fixed: everything goes, in order, nothing lost.
        sim.set_faults(Faults::default());
        fwd.drain_once().await.unwrap();
        let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
        assert_eq!((report.delivered, report.dead.len()), (events, 0));
    }
}

/// What the simulator answers for a body it cannot read from the start, as Splunk does.
#[tokio::test]
async fn simulator_refuses_an_unreadable_body_as_a_whole() {
    let sim = HecSim::start(HecSimConfig {
        indexer_ack: false,
        ..sim_config()
    })
    .await
    .unwrap();
    let post = |gzip: bool| {
        let mut req = reqwest::Client::new()
            .post(format!("{}{EVENT_PATH}", sim.url()))
            .header("Authorization", format!("Splunk {TOKEN}"))
            .body(r#"{"event":"fine"}"#);
        if gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        req.send()
    };
    let resp = post(true).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
    );
    sim.set_faults(Faults {
        refuse_requests: 1,
        ..Faults::default()
    });
    let refused: serde_json::Value = post(false).await.unwrap().json().await.unwrap();
    assert_eq!(refused, body);
    assert_eq!(post(false).await.unwrap().status().as_u16(), 200);
    assert_eq!(sim.stats().indexed, 1);
}

/// `forward --retry-dead`: a dead letter goes back in line and reaches Splunk once fixed.
#[tokio::test(start_paused = true)]
async fn retry_dead_requeues_dead_letters() {
    let (sim, fx, mut fwd) = faulty_setup(
        Faults {
            invalid_marker: Some("ev-00007".into()),
            ..Faults::default()
        },
        20,
    )
    .await;
    fwd.drain_once().await.unwrap();
    assert_eq!(outbox::stats(fwd.store()).unwrap().dead, 1);
    sim.set_faults(Faults::default());
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    assert_eq!(fwd.retry_dead().unwrap(), 1);
    assert_eq!(fwd.retry_dead().unwrap(), 0, "nothing left to re-queue");
    let stats = outbox::stats(fwd.store()).unwrap();
    assert_eq!((stats.pending, stats.dead), (1, 0));
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!((report.delivered, report.dead.len()), (20, 0));
}

#[tokio::test(start_paused = true)]
async fn bad_token_pauses_with_everything_queued_until_fixed() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    sim.update_config(|c| c.token = "another-token".into());
    let mut fx = Fixture::new();
    fx.enqueue(30, "ev");
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    let err = fwd.drain_once().await.unwrap_err();
    assert!(err.needs_operator(), "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("Invalid token") && text.contains("code 4"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
    assert_eq!(outbox::stats(&fx.store()).unwrap().pending, 30);
    assert_eq!(sim.stats().indexed, 0);
    // Disabled token: code 1, still queued.
    sim.update_config(|c| {
        c.token = TOKEN.into();
        c.token_disabled = true;
    });
    let err = fwd.drain_once().await.unwrap_err();
    assert!(err.to_string().contains("Token disabled"), "{err}");
    sim.update_config(|c| c.token_disabled = false);
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!(report.delivered, 30);
}

#[tokio::test(start_paused = true)]
async fn incorrect_index_dead_letters_only_that_index() {
    let sim = HecSim::start(HecSimConfig {
        allowed_indexes: Some(vec!["azure".into(), "aws".into()]),
        ..sim_config()
    })
    .await
    .unwrap();
    let mut fx = Fixture::new();
    // Interleaved, so every batch mixes good events, the refused index and the default index.
    fx.enqueue_to(
        120,
        "ev",
        &[Some("azure"), Some("risk-typo"), None, Some("aws")],
    );
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    let stats = fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!(report.delivered, 90);
    assert_eq!(report.dead.len(), 30);
    assert_eq!(stats.dead_lettered, 30);
    let dead = outbox::dead_letters(&fx.store(), usize::MAX).unwrap();
    for d in &dead {
        let payload = String::from_utf8_lossy(&d.payload);
        assert!(payload.contains(r#""index":"risk-typo""#), "{payload}");
        assert!(
            d.error.contains("index risk-typo") && d.error.contains("code 7"),
            "{}",
            d.error
        );
    }
    assert!(
        sim.events()
            .iter()
            .all(|e| e.get("index").and_then(|i| i.as_str()) != Some("risk-typo"))
    );
    // `status` names the refused index with Splunk's reason.
    let by_index = outbox::dead_by_index(&fx.store()).unwrap();
    assert_eq!(by_index.len(), 1, "{by_index:?}");
    assert_eq!(by_index[0].index.as_deref(), Some("risk-typo"));
    assert_eq!(by_index[0].count, 30);
    assert!(by_index[0].last_error.contains("index risk-typo"));
}

#[tokio::test(start_paused = true)]
async fn lone_event_to_a_refused_index_is_dead_lettered() {
    // Splunk answers a lone event with `invalid-event-number` 1: it is that event, not the next.
    let sim = HecSim::start(HecSimConfig {
        allowed_indexes: Some(vec!["azure".into()]),
        ..sim_config()
    })
    .await
    .unwrap();
    let mut fx = Fixture::new();
    fx.enqueue_to(1, "ev", &[Some("elsewhere")]);
    let mut fwd = fx.forwarder(splunk_config(&sim.url()));
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!((report.delivered, report.dead.len()), (0, 1));
    let dead = outbox::dead_letters(&fx.store(), 1).unwrap();
    assert!(
        dead[0].error.contains("index elsewhere"),
        "{}",
        dead[0].error
    );
}

#[tokio::test(start_paused = true)]
async fn without_acks_two_hundred_means_delivered() {
    let sim = HecSim::start(HecSimConfig {
        indexer_ack: false,
        ..sim_config()
    })
    .await
    .unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(80, "ev");
    let mut config = splunk_config(&sim.url());
    config.indexer_ack = false;
    config.gzip = false;
    let mut fwd = fx.forwarder(config);
    assert!(fwd.channel().is_none());
    fwd.drain_once().await.unwrap();
    let report = fx.assert_exact(&sim, &fwd.metrics().snapshot());
    assert_eq!(report.delivered, 80);
    assert!(
        outbox::delivered(&fx.store())
            .unwrap()
            .iter()
            .all(|d| !d.acked)
    );
}

#[tokio::test(start_paused = true)]
async fn token_with_acks_but_sink_without_is_code_10() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(5, "ev");
    let mut config = splunk_config(&sim.url());
    config.indexer_ack = false;
    let err = fx.forwarder(config).drain_once().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Data channel is missing") && text.contains("indexer_ack = true"),
        "{text}"
    );
    assert_eq!(outbox::stats(&fx.store()).unwrap().pending, 5);
}

#[tokio::test(start_paused = true)]
async fn sender_dropped_mid_batch_then_restarted_loses_nothing() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    // The 3rd request is indexed and never answered: the sender hangs mid-batch.
    sim.set_faults(Faults {
        stall_after_index: 1,
        ..Faults::default()
    });
    let mut fx = Fixture::new();
    fx.enqueue(200, "ev");
    let config = splunk_config(&sim.url());
    let mut first = fx.forwarder(config.clone());
    let task = tokio::spawn(async move { first.drain_once().await });
    // Wait until the stalled request reached the receiver, then kill the sender.
    while sim.stats().requests < 1 || sim.stats().indexed == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(outbox::stats(&fx.store()).unwrap().depth() > 0);
    let mut second = fx.forwarder(config);
    second.drain_once().await.unwrap();
    let m = second.metrics().snapshot();
    let report = fx.assert_exact(&sim, &m);
    assert_eq!(report.delivered, 200);
    assert!(
        report.duplicates > 0,
        "the stalled request's events were resent"
    );
    // The batch claimed behind the stalled one was never sent, yet counts as in doubt.
    assert!(report.duplicates <= m.possible_duplicates);
}

#[tokio::test(start_paused = true)]
async fn run_stops_on_shutdown_and_delivers_what_arrives() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    let mut fx = Fixture::new();
    fx.enqueue(20, "ev");
    let mut config = splunk_config(&sim.url());
    config.batch_max_delay_ms = 100;
    let fwd = fx.forwarder(config);
    let metrics = fwd.metrics();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(fwd.run(async move {
        let _ = rx.await;
    }));
    while metrics.snapshot().events_acked < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    fx.assert_exact(&sim, &metrics.snapshot());
}

#[test]
fn classify_reads_hec_answers() {
    let reply = |s: &str| serde_json::from_str::<HecReply>(s).unwrap();
    assert_eq!(
        classify(
            200,
            None,
            reply(r#"{"text":"Success","code":0,"ackId":7}"#),
            3
        ),
        SendOutcome::Accepted { ack_id: Some(7) }
    );
    assert_eq!(
        classify(
            400,
            None,
            reply(r#"{"text":"Invalid data format","code":6,"invalid-event-number":2}"#),
            3
        ),
        SendOutcome::InvalidEvent {
            index: Some(2),
            code: 6,
            text: "Invalid data format".into()
        }
    );
    // A number outside the batch is ignored.
    assert!(matches!(
        classify(
            400,
            None,
            reply(r#"{"text":"Invalid data format","code":6,"invalid-event-number":9}"#),
            3
        ),
        SendOutcome::InvalidEvent { index: None, .. }
    ));
    assert!(matches!(
        classify(503, None, reply(r#"{"text":"Server is busy","code":9}"#), 1),
        SendOutcome::Retry { status: 503, .. }
    ));
    assert!(matches!(
        classify(429, None, HecReply::default(), 1),
        SendOutcome::Retry { .. }
    ));
    assert_eq!(
        classify(413, None, HecReply::default(), 2),
        SendOutcome::TooLarge
    );
    assert!(matches!(
        classify(403, None, reply(r#"{"text":"Invalid token","code":4}"#), 1),
        SendOutcome::Refused { code: Some(4), .. }
    ));
    assert!(matches!(
        classify(
            400,
            None,
            reply(r#"{"text":"Incorrect index","code":7}"#),
            1
        ),
        SendOutcome::IncorrectIndex { number: None, .. }
    ));
    // Splunk counts the refused event itself: a lone event is number 1.
    assert!(matches!(
        classify(
            400,
            None,
            reply(r#"{"text":"Incorrect index","code":7,"invalid-event-number":1}"#),
            1
        ),
        SendOutcome::IncorrectIndex {
            number: Some(1),
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn healthcheck_reports_unhealthy_hec() {
    let sim = HecSim::start(sim_config()).await.unwrap();
    let fx = Fixture::new();
    let fwd = fx.forwarder(splunk_config(&sim.url()));
    fwd.healthcheck().await.unwrap();
    sim.set_faults(Faults {
        unhealthy_checks: 1,
        ..Faults::default()
    });
    let err = fwd.healthcheck().await.unwrap_err();
    assert!(err.is_retriable() && !err.needs_operator());
    assert!(err.to_string().contains("code 18"), "{err}");
    fwd.healthcheck().await.unwrap();
}
