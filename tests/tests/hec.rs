//! End to end: simulated Entra sign-ins and CloudTrail records are normalised and stored, and
//! queued for Splunk in the same transaction (raw records, normalised events, risk events, a
//! finding); the HEC forwarder then drains the outbox to the loopback HEC receiver through a
//! dropped connection, a 503 storm with `Retry-After`, a lost ack, one invalid event, and a
//! sender killed mid-request and restarted on the same SQLite file. The receiver's set of events
//! must equal the outbox's delivery history, every raw record must arrive byte for byte, and any
//! duplicate must follow a lost ack or the kill, and be counted.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crosswind_hec::{Forwarder, Renderer, SplunkConfig, enqueue};
use crosswind_model::{CloudProvider, Finding, Signal, SourceFormat};
use crosswind_sim::hec::{Faults, HecSim, HecSimConfig};
use crosswind_sim::{SimConfig, stream};
use crosswind_store::outbox::{self, Quota};
use crosswind_store::{Inserted, NewRecord, Store};
use serde_json::Value;

const TOKEN: &str = "5f0c3c2e-8a41-4d4e-9b7e-0d7c2c1f9e11";
const RECORDS: u64 = 400;

/// `sourcetype/id`: names one forwarded item, on both sides.
fn key(v: &Value) -> String {
    let st = v["sourcetype"].as_str().unwrap_or_default();
    let e = &v["event"];
    let id = match st {
        "azure:aad:signin" => &e["id"],
        "aws:cloudtrail" => &e["eventID"],
        "crosswind:event" => &e["metadata"]["uid"],
        "crosswind:risk" => &e["signal_id"],
        "crosswind:finding" => &e["finding_id"],
        _ => &Value::Null,
    };
    format!("{st}/{}", id.as_str().unwrap_or("?"))
}

#[tokio::test(start_paused = true)]
async fn every_record_reaches_splunk_once_stored_through_faults_and_a_restart() {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crosswind.db");
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config: SplunkConfig = toml::from_str(&format!(
        r#"url = "{}"
           token_file = "{}"
           indexer_ack = true
           gzip = true
           forward = ["raw", "risk", "findings", "events"]
           batch_max_bytes = 32768
           ack_timeout_secs = 30
           ack_poll_interval_ms = 250
           retry_max_backoff_secs = 5"#,
        hec.url(),
        token_file.display()
    ))
    .unwrap();

    // Import: each new record is stored and queued in one transaction.
    let renderer = Renderer::new(&config);
    let mut expected: BTreeMap<i64, String> = BTreeMap::new();
    let mut raw_by_key: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut store = Store::open(&path).unwrap();
    let records: Vec<String> = stream(&SimConfig {
        stream_records: RECORDS,
        ..SimConfig::default()
    })
    .map(|r| r.json().to_string())
    .collect();
    let mut poisoned = None;
    for pass in 0..2 {
        let mut batch = store.begin().unwrap();
        let mut quota = Quota::check(&batch, config.max_outbox_rows).unwrap();
        for raw in &records {
            let n = crosswind_normalize::normalize(raw.as_bytes(), None).unwrap();
            let rec = NewRecord {
                event: &n.event,
                format: n.format,
                raw: raw.as_bytes(),
                origin: "import",
            };
            if let Inserted::New(_) = batch.insert(&rec).unwrap() {
                let rendered = [
                    renderer.raw(rec.format, rec.raw, rec.event, "import"),
                    renderer.event(rec.event, "import"),
                ];
                for r in rendered.into_iter().flatten() {
                    let k = key(&serde_json::from_slice(&r.payload).unwrap());
                    if r.kind == outbox::OutboxKind::Raw {
                        raw_by_key.insert(k.clone(), raw.as_bytes().to_vec());
                    }
                    expected.insert(enqueue(&batch, &mut quota, &r).unwrap(), k);
                }
                if poisoned.is_none() && n.format == SourceFormat::GraphSignIn {
                    poisoned = Some(n.record_id.clone());
                }
            }
        }
        if pass == 0 {
            let signal = Signal {
                schema_version: 1,
                id: "sig-spray-1".into(),
                signal: "azure_password_spray".into(),
                time: 1_764_460_800_000,
                risk_object: "alice@contoso.com".into(),
                risk_object_type: "user".into(),
                risk_score: 56.0,
                risk_message: "Password spray from 203.0.113.9 reached alice@contoso.com.".into(),
                threat_object: Some("203.0.113.9".into()),
                threat_object_type: Some("ip_address".into()),
                mitre_technique_id: vec!["T1110.003".into()],
                cloud: vec![CloudProvider::Azure],
                event_ids: vec!["e1".into()],
                habitual: false,
                extends: None,
            };
            let finding = Finding {
                schema_version: 1,
                id: "finding-alice-1".into(),
                identity: "alice@contoso.com".into(),
                score: 112.0,
                threshold: 100.0,
                clouds: vec![CloudProvider::Azure, CloudProvider::Aws],
                signals: vec![signal.id.clone()],
                first_seen: 1_764_460_800_000,
                last_seen: 1_764_464_400_000,
                raised_at: 1_764_464_400_000,
                summary: "alice@contoso.com: spray then AWS console without MFA.".into(),
            };
            let behind = [(signal.id.as_str(), &signal)].into_iter().collect();
            for r in [renderer.risk(&signal), renderer.finding(&finding, &behind)]
                .into_iter()
                .flatten()
            {
                let k = key(&serde_json::from_slice(&r.payload).unwrap());
                expected.insert(enqueue(&batch, &mut quota, &r).unwrap(), k);
            }
        }
        let stats = batch.commit().unwrap();
        if pass == 1 {
            assert_eq!(stats.stored, 0, "re-import stores (and queues) nothing");
        }
    }
    assert_eq!(
        outbox::stats(&store).unwrap().pending,
        expected.len() as u64
    );
    drop(store);

    // Faults, in the order the receiver meets them.
    let poisoned = poisoned.unwrap();
    hec.set_faults(Faults {
        drop_connections: 1,
        busy_requests: 3,
        retry_after_secs: Some(2),
        lose_acks: 1,
        stall_after_index: 1,
        invalid_marker: Some(poisoned.clone()),
        ..Faults::default()
    });

    // First sender: hangs on the stalled request, then is killed.
    let mut first = Forwarder::open(config.clone(), &path).unwrap();
    let first_metrics = first.metrics();
    let task = tokio::spawn(async move { first.drain_once().await });
    while hec.stats().indexed == 0 || hec.stats().requests < 6 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    // Restarted on the same file: drains everything.
    let mut second = Forwarder::open(config.clone(), &path).unwrap();
    second.drain_once().await.unwrap();
    let counted = first_metrics.snapshot().possible_duplicates
        + second.metrics().snapshot().possible_duplicates;
    let store = second.into_store();

    let left = outbox::stats(&store).unwrap();
    assert_eq!(left.depth(), 0, "{left:?}");
    let delivered: BTreeSet<String> = outbox::delivered(&store)
        .unwrap()
        .iter()
        .map(|d| expected[&d.id].clone())
        .collect();
    let dead: BTreeSet<String> = outbox::dead_letters(&store, usize::MAX)
        .unwrap()
        .iter()
        .map(|d| expected[&d.id].clone())
        .collect();
    // The poisoned sign-in's raw record and its normalised event, nothing else.
    assert_eq!(
        dead,
        BTreeSet::from([
            format!("azure:aad:signin/{poisoned}"),
            format!("crosswind:event/{poisoned}"),
        ])
    );
    let all: BTreeSet<String> = expected.values().cloned().collect();
    assert_eq!(all.len(), expected.len(), "keys are unique");
    assert_eq!(
        delivered.union(&dead).cloned().collect::<BTreeSet<_>>(),
        all
    );

    let received = hec.events();
    let received_keys: Vec<String> = received.iter().map(key).collect();
    let received_set: BTreeSet<String> = received_keys.iter().cloned().collect();
    assert_eq!(received_set, delivered, "receiver set == delivery history");
    let duplicates = (received_keys.len() - received_set.len()) as u64;
    assert!(duplicates > 0, "the lost ack and the kill resend events");
    assert!(
        duplicates <= counted,
        "{duplicates} duplicates, {counted} counted"
    );

    // Raw records byte for byte; sign-ins with their indexed fields; risk events with ES fields.
    let raw_events = hec.raw_events();
    let mut signins = 0;
    for (bytes, v) in raw_events.iter().zip(&received) {
        let k = key(v);
        if let Some(raw) = raw_by_key.get(&k) {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(
                text.contains(std::str::from_utf8(raw).unwrap()),
                "{k} not verbatim"
            );
            assert_eq!(v["source"], "crosswind:import");
        }
        if v["sourcetype"] == "azure:aad:signin" {
            signins += 1;
            assert!(v["fields"]["resultType"].is_string(), "{k}");
            assert!(v["fields"]["tenant_id"].is_string(), "{k}");
            assert_eq!(
                v["fields"]["resultType"].as_str(),
                v["event"]["status"]["errorCode"]
                    .as_i64()
                    .map(|c| c.to_string())
                    .as_deref()
            );
        }
        if v["sourcetype"] == "crosswind:risk" {
            for f in [
                "risk_object",
                "risk_object_type",
                "risk_score",
                "risk_message",
                "threat_object",
                "threat_object_type",
                "signal",
                "search_name",
                "cloud",
                "event_ids",
            ] {
                assert!(!v["event"][f].is_null(), "risk event lacks {f}");
            }
            assert!(
                v["event"]["annotations"]["mitre_attack"]["mitre_technique_id"].is_array(),
                "{v}"
            );
            assert_eq!(v["source"], v["event"]["search_name"]);
        }
    }
    assert!(signins > 0);
    assert!(received_set.contains("crosswind:finding/finding-alice-1"));
}
