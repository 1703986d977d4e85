//! What reaches Splunk, kind by kind (docs/splunk.md): `import` of a simulated spray-to-AWS
//! scenario plus one public record of every other shape crosswind reads, then `forward --once`
//! into the loopback HEC receiver with `[splunk] indexes` routing. Every event's envelope is
//! checked: sourcetype by record shape (Log Analytics and Sentinel rows under crosswind's own,
//! never an add-on's), index by kind, time from the record's own time field, `source`
//! (`search_name` for risk events), `host` and indexed fields. A record of no known shape is
//! quarantined and never sent; a row queued before the sourcetypes changed keeps what it was
//! queued with.

use std::collections::{BTreeMap, BTreeSet};

use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_store::Store;
use crosswind_store::outbox::{self, NewOutboxRow, OutboxKind, Quota};
use crosswind_tests::*;
use serde_json::{Value, json};

const TOKEN: &str = "3c1b7f0e-5d2a-4e8b-9c6f-1a2b3c4d5e6f";
const HOST: &str = "crosswind-e2e";
const MYSTERY: &str = "mystery-shape-7f3a";
const OLD_ROW: &str = "queued-before-upgrade-1";
/// The sourcetypes of raw records.
const RAW: [&str; 6] = [
    "azure:aad:signin",
    "azure:monitor:aad",
    "crosswind:signinlogs",
    "azure:aad:identity_protection:risk_detection",
    "aws:cloudtrail",
    "crosswind:awscloudtrail",
];

/// The first record of a shared data file whose text holds `needle`, unwrapped.
fn shared_record(rel: &str, needle: &str) -> String {
    let text = std::fs::read_to_string(shared_data_dir().join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"));
    text.lines()
        .filter_map(unwrap_test_line)
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{rel}: no record with {needle}"))
}

/// A spray-to-AWS scenario (Graph sign-ins, CloudTrail, its correlate.toml) written into
/// `data`; returns the files to import.
fn simulate(data: &std::path::Path) -> Vec<String> {
    let out = crosswind(&[
        "simulate",
        "--scenario",
        "spray-to-aws",
        "--out",
        data.to_str().unwrap(),
        "--users",
        "40",
        "--hours",
        "6",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    walk(data)
        .into_iter()
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".json.gz") || (name.starts_with("signins-") && name.ends_with(".json"))
        })
        .map(|path| path.display().to_string())
        .collect()
}

/// Owner-only, as an operator keeps a config naming secrets (else validate warns).
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Epoch ms of an RFC 3339 time field of `record`.
fn ms(record: &Value, key: &str) -> i64 {
    let text = record[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {record}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{key} {text}: {e}"))
        .timestamp_millis()
}

/// The HEC `time` (epoch seconds, millisecond fraction) as epoch ms.
fn hec_ms(v: &Value) -> i64 {
    let t = v["time"].as_f64().unwrap_or_else(|| panic!("no time: {v}"));
    (t * 1000.0).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_reaches_splunk_with_its_envelope() {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        indexer_ack: true,
        allowed_indexes: Some(
            ["azure", "aws", "risk", "findings", "cloud"]
                .map(String::from)
                .to_vec(),
        ),
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let simulated = simulate(&data);

    // One record of every other shape, from the public samples (a Graph risk detection is
    // written from its documented resource: there is no public raw one), and one of no shape.
    let shapes = [
        shared_record(
            "microsoft-docs/azure_monitor_signinlogs_record_example.ndjson",
            "SignInLogs",
        ),
        shared_record("msticpy/aad_logons_signinlogs.ndjson", "UserPrincipalName"),
        shared_record(
            "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
            "ConsoleLogin",
        ),
        shared_record(
            "otrf-security-datasets/ec2_proxy_s3_exfiltration_cloudtrail.ndjson",
            "@timestamp",
        ),
        json!({
            "id": "6f4b1e0c5a2d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
            "requestId": "b1e2c3d4-0000-4000-8000-000000000001",
            "correlationId": "c1e2c3d4-0000-4000-8000-000000000001",
            "riskEventType": "unfamiliarFeatures",
            "riskState": "atRisk",
            "riskLevel": "medium",
            "riskDetail": "none",
            "source": "IdentityProtection",
            "detectionTimingType": "realtime",
            "activity": "signin",
            "tokenIssuerType": "AzureAD",
            "ipAddress": "198.51.100.23",
            "activityDateTime": "2025-03-04T02:10:00.123Z",
            "detectedDateTime": "2025-03-04T02:10:05Z",
            "lastUpdatedDateTime": "2025-03-04T02:12:00Z",
            "userId": "0f2c9a8e-1111-4c3b-9d1a-5a6b7c8d9e0f",
            "userDisplayName": "Alice",
            "userPrincipalName": "alice@corp.example"
        })
        .to_string(),
        json!({"kind": MYSTERY, "happenedAt": "2025-03-04T02:10:00Z", "who": "nobody"}).to_string(),
    ];
    let shapes_file = dir.path().join("shapes.ndjson");
    std::fs::write(&shapes_file, shapes.join("\n") + "\n").unwrap();

    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let store_path = dir.path().join("cw.db");
    let correlate = std::fs::read_to_string(data.join("correlate.toml")).unwrap();
    let write_config = |name: &str, indexes: &str| {
        let config = data.join(name);
        std::fs::write(
            &config,
            format!(
                "{correlate}\n[store]\npath = \"{}\"\n\n[splunk]\nurl = \"{}\"\ntoken_file = \"{}\"\nindex = \"cloud\"\nindexes = {{ {indexes} }}\nhost = \"{HOST}\"\nforward = [\"raw\", \"risk\", \"findings\", \"events\"]\n",
                store_path.display(),
                hec.url(),
                token_file.display()
            ),
        )
        .unwrap();
        private(&config);
        config.to_str().unwrap().to_string()
    };
    private(&token_file);
    // A kind crosswind does not route is named by validate, and nothing starts.
    let bad = write_config("bad.toml", "entra = \"azure\", azure = \"azure\"");
    let out = crosswind(&["--config", &bad, "validate"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("splunk.indexes.azure: unknown kind"),
        "{}",
        stderr(&out)
    );
    let cfg = write_config(
        "crosswind.toml",
        "entra = \"azure\", aws = \"aws\", risk = \"risk\", findings = \"findings\"",
    );
    let out = crosswind(&["--config", &cfg, "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let mut import = vec![
        "--config".to_string(),
        cfg.clone(),
        "import".into(),
        "--format".into(),
        "json".into(),
        shapes_file.display().to_string(),
    ];
    import.extend(simulated);
    let out = tokio::task::block_in_place(|| {
        let args: Vec<&str> = import.iter().map(String::as_str).collect();
        crosswind(&args)
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["quarantined"], 1, "the mystery record: {summary}");
    assert!(summary["signals"].as_u64() > Some(0), "{summary}");
    assert!(summary["findings"].as_u64() > Some(0), "{summary}");

    // A row an earlier version queued (a Log Analytics row under the add-on's sourcetype):
    // the outbox holds rendered events, so it goes out exactly as it was queued.
    let old_payload = json!({
        "time": 1_700_000_000.0, "host": HOST, "source": "crosswind:import",
        "sourcetype": "azure:aad:signin", "index": "cloud",
        "event": {"Id": OLD_ROW, "UserPrincipalName": "old@corp.example"}
    })
    .to_string();
    {
        let mut store = Store::open(&store_path).unwrap();
        let batch = store.begin().unwrap();
        let mut quota = Quota::check(&batch, u64::MAX).unwrap();
        outbox::enqueue(
            &batch,
            &mut quota,
            &NewOutboxRow {
                kind: OutboxKind::Raw,
                sourcetype: "azure:aad:signin",
                source: "crosswind:import",
                time: 1_700_000_000_000,
                index: Some("cloud"),
                payload: old_payload.as_bytes(),
            },
        )
        .unwrap();
        batch.commit().unwrap();
    }

    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let received = hec.events();
    let raw_bytes = hec.raw_events();
    assert!(
        raw_bytes
            .iter()
            .all(|b| !String::from_utf8_lossy(b).contains(MYSTERY)),
        "a record of no known shape is never sent"
    );
    let old: Vec<&Value> = received
        .iter()
        .filter(|v| v["event"]["Id"] == OLD_ROW)
        .collect();
    assert_eq!(old.len(), 1);
    assert_eq!(
        old[0],
        &serde_json::from_str::<Value>(&old_payload).unwrap()
    );

    // Normalised events' times by record id, and risk events' times by signal id: a risk event
    // is timed by one of its events, a finding by one of its signals.
    let mut event_times: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut signal_times: BTreeMap<&str, i64> = BTreeMap::new();
    for v in &received {
        match v["sourcetype"].as_str() {
            Some("crosswind:event") => {
                if let Some(uid) = v["event"]["metadata"]["uid"].as_str() {
                    event_times.entry(uid).or_default().insert(hec_ms(v));
                }
            }
            Some("crosswind:risk") => {
                signal_times.insert(v["event"]["signal_id"].as_str().unwrap(), hec_ms(v));
            }
            _ => {}
        }
    }
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut risk_sources = BTreeSet::new();
    let mut threat_only = 0;
    for v in received.iter().filter(|v| v["event"]["Id"] != OLD_ROW) {
        let sourcetype = v["sourcetype"].as_str().unwrap_or_default().to_owned();
        let e = &v["event"];
        assert_eq!(v["host"], HOST, "{v}");
        let (index, time) = match sourcetype.as_str() {
            "azure:aad:signin" => {
                assert_eq!(
                    v["fields"]["resultType"].as_str().map(str::to_owned),
                    e["status"]["errorCode"].as_i64().map(|c| c.to_string()),
                    "{v}"
                );
                assert!(v["fields"]["tenant_id"].is_string(), "{v}");
                ("azure", ms(e, "createdDateTime"))
            }
            "azure:monitor:aad" => {
                assert_eq!(e["category"], "SignInLogs", "{v}");
                ("azure", ms(e, "time"))
            }
            "crosswind:signinlogs" => {
                assert!(e["UserPrincipalName"].is_string(), "{v}");
                let key = if e.get("CreatedDateTime").is_some() {
                    "CreatedDateTime"
                } else {
                    "TimeGenerated"
                };
                ("azure", ms(e, key))
            }
            "azure:aad:identity_protection:risk_detection" => {
                assert_eq!(e["riskEventType"], "unfamiliarFeatures", "{v}");
                ("azure", ms(e, "activityDateTime"))
            }
            "aws:cloudtrail" => {
                let key = if e.get("eventTime").is_some() {
                    "eventTime"
                } else {
                    "@timestamp"
                };
                ("aws", ms(e, key))
            }
            "crosswind:awscloudtrail" => {
                assert!(e["EventName"].is_string(), "{v}");
                ("aws", ms(e, "TimeGenerated"))
            }
            "crosswind:risk" => {
                let signal = e["signal"].as_str().unwrap();
                let search_name = format!("crosswind - {signal} - Rule");
                assert_eq!(e["search_name"], search_name.as_str(), "{v}");
                assert_eq!(v["source"], search_name.as_str(), "{v}");
                risk_sources.insert(search_name);
                assert!(
                    e["risk_object"].as_str().is_some_and(|o| !o.is_empty()),
                    "ES needs a risk object: {v}"
                );
                match e["risk_object_type"].as_str() {
                    Some("user") => {}
                    // The spraying source: the threat object is the system at risk.
                    Some("system") => {
                        assert_eq!(e["risk_object"], e["threat_object"], "{v}");
                        threat_only += 1;
                    }
                    other => panic!("risk_object_type {other:?}: {v}"),
                }
                for key in ["risk_object_type", "risk_message", "signal_id"] {
                    assert!(e[key].is_string(), "{key}: {v}");
                }
                assert!(e["risk_score"].is_number(), "{v}");
                assert!(e["cloud"].is_array() && e["event_ids"].is_array(), "{v}");
                let techniques = &e["annotations"]["mitre_attack"]["mitre_technique_id"];
                assert!(
                    techniques.as_array().is_some_and(|t| !t.is_empty()
                        && t.iter()
                            .all(|id| id.as_str().is_some_and(|s| s.starts_with('T')))),
                    "{v}"
                );
                if e.get("threat_object").is_some() {
                    assert_eq!(e["threat_object_type"], "ip_address", "{v}");
                }
                let t = hec_ms(v);
                assert!(
                    e["event_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|id| event_times
                            .get(id.as_str().unwrap_or_default())
                            .is_some_and(|times| times.contains(&t))),
                    "risk event timed by one of its events: {v}"
                );
                ("risk", t)
            }
            "crosswind:finding" => {
                assert_eq!(v["source"], "crosswind:correlate", "{v}");
                assert_eq!(e["risk_object"], e["identity"], "{v}");
                assert_eq!(e["risk_object_type"], "user", "{v}");
                let signals = e["signals"].as_array().unwrap();
                let names = e["signal_names"].as_array().unwrap();
                assert!(!signals.is_empty() && !names.is_empty(), "{v}");
                assert_eq!(
                    e["search_names"].as_array().unwrap().len(),
                    names.len(),
                    "{v}"
                );
                for key in ["score", "threshold", "first_seen", "last_seen"] {
                    assert!(e[key].is_number(), "{key}: {v}");
                }
                assert!(e["summary"].is_string() && e["clouds"].is_array(), "{v}");
                let t = hec_ms(v);
                assert!(
                    signals
                        .iter()
                        .any(|id| signal_times.get(id.as_str().unwrap_or_default()) == Some(&t)),
                    "finding timed by one of its signals: {v}"
                );
                ("findings", t)
            }
            "crosswind:event" => {
                assert_eq!(v["source"], "crosswind:import", "{v}");
                ("cloud", e["time"].as_i64().unwrap())
            }
            other => panic!("unexpected sourcetype {other}: {v}"),
        };
        if RAW.contains(&sourcetype.as_str()) {
            assert_eq!(v["source"], "crosswind:import", "{v}");
        }
        if time >= 0 {
            assert_eq!(hec_ms(v), time, "{sourcetype} time: {v}");
        }
        assert_eq!(v["index"], index, "{sourcetype}: {v}");
        *seen.entry(sourcetype).or_default() += 1;
    }
    let kinds: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "aws:cloudtrail",
            "azure:aad:identity_protection:risk_detection",
            "azure:aad:signin",
            "azure:monitor:aad",
            "crosswind:awscloudtrail",
            "crosswind:event",
            "crosswind:finding",
            "crosswind:risk",
            "crosswind:signinlogs",
        ]),
        "{seen:?}"
    );
    // One shared sample of each of these shapes: exactly one event each.
    for st in [
        "azure:monitor:aad",
        "crosswind:signinlogs",
        "crosswind:awscloudtrail",
        "azure:aad:identity_protection:risk_detection",
    ] {
        assert_eq!(seen[st], 1, "{st}: {seen:?}");
    }
    assert!(threat_only > 0, "the spray's threat-only signal");
    assert!(
        risk_sources.len() > 1,
        "each detection its own source: {risk_sources:?}"
    );
    let stored = summary["stored"].as_u64().unwrap();
    let raw: u64 = RAW.iter().filter_map(|st| seen.get(*st)).sum();
    assert_eq!(raw, stored, "every stored record once, raw: {seen:?}");
    assert_eq!(seen["crosswind:event"], stored, "{seen:?}");
}

/// An index Splunk refuses (HEC code 7: the token may not write to it) holds back only the kind
/// routed there: with `indexes.risk` naming such an index, every risk event is dead-lettered
/// with the index named in `status`, and raw records and findings are all delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_index_dead_letters_only_the_kind_routed_to_it() {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        indexer_ack: true,
        allowed_indexes: Some(["cloud", "azure", "aws"].map(String::from).to_vec()),
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let simulated = simulate(&data);
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    private(&token_file);
    let correlate = std::fs::read_to_string(data.join("correlate.toml")).unwrap();
    let config = data.join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            "{correlate}\n[store]\npath = \"{}\"\n\n[splunk]\nurl = \"{}\"\ntoken_file = \"{}\"\nindex = \"cloud\"\nindexes = {{ entra = \"azure\", aws = \"aws\", risk = \"riskx\" }}\n",
            dir.path().join("cw.db").display(),
            hec.url(),
            token_file.display()
        ),
    )
    .unwrap();
    private(&config);
    let cfg = config.to_str().unwrap().to_string();
    let mut import = vec![
        "--config".to_string(),
        cfg.clone(),
        "import".into(),
        "--format".into(),
        "json".into(),
    ];
    import.extend(simulated);
    let out = tokio::task::block_in_place(|| {
        let args: Vec<&str> = import.iter().map(String::as_str).collect();
        crosswind(&args)
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let (stored, signals, findings) = (
        summary["stored"].as_u64().unwrap(),
        summary["signals"].as_u64().unwrap(),
        summary["findings"].as_u64().unwrap(),
    );
    assert!(signals > 0 && findings > 0, "{summary}");

    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("dead letters for index riskx: {signals} (")),
        "the refused index is named: {}",
        stderr(&out)
    );

    let counts = count_by_sourcetype(&hec.events());
    assert_eq!(counts.get("crosswind:risk"), None, "{counts:?}");
    assert_eq!(
        counts.get("crosswind:finding"),
        Some(&findings),
        "{counts:?}"
    );
    let raw = counts["azure:aad:signin"] + counts["aws:cloudtrail"];
    assert_eq!(raw, stored, "{counts:?}");

    let out = crosswind(&["--config", &cfg, "status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = stdout(&out);
    let row: Value = status
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["item"] == "outbox_dead_letters index=riskx")
        .unwrap_or_else(|| panic!("no dead letters for riskx: {status}"));
    assert_eq!(
        row["value"], signals,
        "every risk event, nothing else: {row}"
    );
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("code 7")),
        "{row}"
    );
    assert!(
        !status.contains("outbox_dead_letters index=azure")
            && !status.contains("outbox_dead_letters index=aws")
            && !status.contains("outbox_dead_letters index=cloud"),
        "{status}"
    );

    // `forward` left running logs the refusal as it happens: re-queue the dead letters, and
    // the index is named again on stderr.
    let mut child = std::process::Command::new(crosswind_bin())
        .args(["--config", &cfg, "forward", "--retry-dead"])
        .env_remove("CROSSWIND_CONFIG")
        .env_remove("CROSSWIND_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr_pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // A generous guard so a silent forwarder fails the test rather than hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let named = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("refused index riskx") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(named, "forward logs the refused index: {seen:?}");
}
