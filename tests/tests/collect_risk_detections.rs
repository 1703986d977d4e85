//! End to end: the Entra collector's risk detections (`identityProtection/riskDetections`)
//! against the Graph simulator, beside the sign-ins. Over a generated tenant whose detections
//! include offline ones (raised hours after the sign-in) and later reviews (dismissed,
//! confirmed compromised: the same id again with a newer `lastUpdatedDateTime`), with small
//! pages, 429s with `Retry-After` and a stretch where the app lacks IdentityRiskEvent.Read.All
//! (403): every detection state Graph served and every sign-in is stored exactly once, the
//! sign-ins never stop, the 403 is reported with the permission to grant (poll stats, `status`)
//! and the detections catch up when the permission is granted. Also: the requests it takes to
//! read 10,000 detections.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crosswind_azure::{AzureCollector, AzureConfig, RetryTuning};
use crosswind_model::RecordSource;
use crosswind_sim::graph::{GraphFault, GraphSim};
use crosswind_sim::token::{TokenSim, TokenSimConfig};
use crosswind_sim::{Dataset, EntraSims, Scenario, SimConfig, generate};
use crosswind_store::Store;
use serde_json::Value;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn ms(iso: &str) -> i64 {
    DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|e| panic!("not a time {iso:?}: {e}"))
}

struct Env {
    dir: tempfile::TempDir,
    cfg: AzureConfig,
    _token: TokenSim,
    graph: GraphSim,
}

async fn start(data: &Dataset, page_size: u32) -> Env {
    let token_cfg = TokenSimConfig::default();
    let EntraSims { ca, token, graph } = EntraSims::start(data, token_cfg.clone())
        .await
        .expect("entra simulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file).expect("write ca");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{}\n", token_cfg.client_secret)).expect("secret");
    let toml = format!(
        r#"
name = "corp"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{secret}"
graph_url = "{graph}"
authority_host = "{auth}"
ca_file = "{ca}"
lookback_secs = 3600
initial_backfill_secs = 3600
page_size = {page_size}
max_requests_per_10s = 0
max_retries = 12
request_timeout_secs = 10
"#,
        tenant = token_cfg.tenant_id,
        client = token_cfg.client_id,
        secret = secret_file.display(),
        graph = graph.url(),
        auth = token.authority_host(),
        ca = ca_file.display(),
    );
    let cfg: AzureConfig = toml::from_str(&toml).expect("azure config parses");
    assert_eq!(cfg.validate(), vec![], "config problems");
    assert!(
        cfg.risk_detections,
        "risk detections are collected by default"
    );
    Env {
        dir,
        cfg,
        _token: token,
        graph,
    }
}

fn collector(cfg: &AzureConfig) -> AzureCollector {
    let mut c = AzureCollector::new(cfg.clone()).expect("collector");
    c.set_retry_tuning(RetryTuning {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        default_retry_after: Duration::from_millis(50),
    });
    c
}

/// Stored risk detection record ids (`<id>@<lastUpdatedDateTime>`) as the simulator counts
/// them (`<id>@<epoch ms>`); panics on a record id of another shape.
fn stored_states(path: &Path) -> Vec<String> {
    let store = Store::open(path).expect("open store");
    store
        .record_ids(RecordSource::EntraRiskDetection)
        .expect("record ids")
        .into_iter()
        .map(|r| {
            let (id, at) = r.split_once('@').expect("record id is <id>@<time>");
            format!("{id}@{}", ms(at))
        })
        .collect()
}

/// `n` more detections over the generated ones (a tenant of 60 has only a few): copies with
/// their own ids, activity spread over the 8 hours, every other one offline (detected 2–9 h
/// after its activity), every third reviewed later (dismissed 1–5 h after), some visible in
/// Graph 20 minutes after their `lastUpdatedDateTime` (within the lookback).
fn add_detections(data: &mut Dataset, start: i64, n: i64) {
    let template = data
        .risk_detections
        .first()
        .cloned()
        .expect("a generated detection");
    let iso = |t: i64| {
        DateTime::from_timestamp_millis(t)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    for i in 0..n {
        let activity = start + (i * 8 * HOUR) / n + 17_000;
        let offline = i % 2 == 0;
        let detected = if offline {
            activity + 2 * HOUR + (i % 7) * HOUR
        } else {
            activity + 20_000
        };
        let mut d = template.clone();
        d["id"] = Value::from(format!("{:064x}", 0xdead_0000 + i));
        d["riskEventType"] = Value::from(if offline {
            "leakedCredentials"
        } else {
            "unfamiliarFeatures"
        });
        d["detectionTimingType"] = Value::from(if offline { "offline" } else { "realtime" });
        d["riskState"] = Value::from("atRisk");
        d["activityDateTime"] = Value::from(iso(activity));
        d["detectedDateTime"] = Value::from(iso(detected));
        d["lastUpdatedDateTime"] = Value::from(iso(detected));
        data.risk_detections.push(d.clone());
        data.risk_detection_arrival_delay_ms
            .push(if i % 5 == 0 { 20 * MIN } else { 0 });
        if i % 3 == 0 {
            let at = detected + HOUR + (i % 5) * HOUR;
            d["riskState"] = Value::from("dismissed");
            d["riskDetail"] = Value::from("adminDismissedAllRiskForUser");
            d["lastUpdatedDateTime"] = Value::from(iso(at));
            data.risk_detections.push(d);
            data.risk_detection_arrival_delay_ms.push(0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_detection_state_and_sign_in_once_across_429s_paging_and_a_403() {
    let sim = SimConfig {
        hours: 8,
        users: 60,
        ..SimConfig::default()
    };
    let mut data = generate(&sim, &[Scenario::Mixed]);
    add_detections(&mut data, sim.start, 90);
    // What the dataset must hold for this test to mean anything: offline detections raised
    // hours after their sign-in, and detections whose state changed later.
    let offline_late = data
        .risk_detections
        .iter()
        .filter(|d| d["detectionTimingType"] == "offline")
        .filter(|d| {
            let activity = ms(d["activityDateTime"].as_str().unwrap_or_default());
            let detected = ms(d["detectedDateTime"].as_str().unwrap_or_default());
            detected - activity >= 2 * HOUR
        })
        .count();
    let mut states_per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &data.risk_detections {
        *states_per_id
            .entry(d["id"].as_str().unwrap_or_default())
            .or_default() += 1;
    }
    let reviewed = states_per_id.values().filter(|n| **n > 1).count();
    assert!(offline_late > 0, "no offline detection in the dataset");
    assert!(reviewed > 0, "no detection changes state in the dataset");

    // Small pages: windows of sign-ins and of detections span several nextLinks.
    let env = start(&data, 5).await;
    let db = env.dir.path().join("crosswind.db");
    let mut store = Store::open(&db).expect("store");
    let mut c = collector(&env.cfg);
    let start_ms = sim.start;
    let end_ms = sim.start + i64::from(sim.hours) * HOUR;
    // Until every offline detection and review has arrived (hours after the window).
    let last = end_ms + 18 * HOUR;
    let mut now = start_ms + HOUR;
    let mut polls = 0;
    let mut denied_polls = 0;
    let mut risk_stored = 0;
    while now <= last {
        env.graph.set_now(now);
        if polls % 4 == 1 {
            env.graph.push_faults([
                GraphFault::Throttle {
                    retry_after_secs: 1,
                },
                GraphFault::Throttle {
                    retry_after_secs: 0,
                },
            ]);
        }
        // Three hours without the permission, in the middle of the window.
        let denied = (start_ms + 3 * HOUR..start_ms + 6 * HOUR).contains(&now);
        env.graph.deny_risk_detections(denied);
        let before = store.checkpoint("azure:corp:risk").expect("cp");
        let stats = c
            .poll_once(&mut store, ts(now))
            .await
            .expect("sign-ins poll");
        assert_eq!(stats.quarantined, 0, "sign-ins all normalise");
        let risk = stats.risk.expect("risk detections polled");
        assert_eq!(risk.quarantined, 0, "detections all normalise");
        risk_stored += risk.stored;
        let status = c.status(&store, ts(now)).expect("status");
        if denied {
            denied_polls += 1;
            let err = risk.error.expect("a 403 is reported");
            assert!(
                err.contains("403") && err.contains("IdentityRiskEvent.Read.All"),
                "{err}"
            );
            assert_eq!(status.risk_detections.last_error, Some(err));
            assert_eq!(
                store
                    .checkpoint("azure:corp:risk")
                    .expect("cp")
                    .map(|c| c.value),
                before.map(|c| c.value),
                "the detections' checkpoint stays while refused"
            );
            assert_eq!(status.last_error, None, "the sign-ins are not failing");
        } else {
            assert_eq!(risk.error, None);
            assert_eq!(status.risk_detections.last_error, None);
        }
        polls += 1;
        now += if now < end_ms { 10 * MIN } else { 30 * MIN };
    }
    assert!(denied_polls >= 10);
    let m = c.metrics().snapshot();
    assert_eq!(m.risk_errors, denied_polls);
    assert_eq!(m.risk_stored, risk_stored);
    assert_eq!(m.risk_up, 1);
    drop(store);

    // Detection states: exactly what Graph served, each once.
    let stored = stored_states(&db);
    let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "a state stored twice");
    let served = env.graph.served_risk_states();
    assert_eq!(stored_set, served, "stored = served");
    // Every detection's final state is among them, and the reviews show up as second states of
    // the same id (the ones during the 403 replaced before they could be read are gone from
    // Graph, as in Entra).
    let finals = env.graph.visible_risk_states(i64::MAX, i64::MIN, i64::MAX);
    assert_eq!(finals.len(), states_per_id.len());
    let missing: Vec<_> = finals.difference(&stored_set).take(5).collect();
    assert!(missing.is_empty(), "final states missing: {missing:?}");
    let mut stored_per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &stored {
        *stored_per_id
            .entry(s.split_once('@').map_or("", |(id, _)| id))
            .or_default() += 1;
    }
    assert!(
        stored_per_id.values().any(|n| *n > 1),
        "no state update was recorded"
    );
    // Sign-ins: every one generated, once, whatever happened to the detections.
    let store = Store::open(&db).expect("store");
    let signins = store.record_ids(RecordSource::EntraSignIn).expect("ids");
    let signin_set: BTreeSet<String> = signins.iter().cloned().collect();
    assert_eq!(signins.len(), signin_set.len(), "a sign-in stored twice");
    assert_eq!(signin_set, env.graph.served_ids());
    assert_eq!(
        signin_set,
        env.graph.visible_ids(i64::MAX, start_ms, end_ms)
    );
    eprintln!(
        "risk detections: {} states of {} detections stored ({} offline ≥ 2 h late, {} reviewed), \
         {} polls ({} refused), {} requests to riskDetections",
        stored.len(),
        stored_per_id.len(),
        offline_late,
        reviewed,
        polls,
        denied_polls,
        m.risk_requests,
    );
}

/// Requests per 10,000 detections: one poll over 10,000 detections updated in the last hour,
/// pages of `$top=500` (Graph's maximum on riskDetections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_ten_thousand_detections() {
    let sim = SimConfig {
        hours: 6,
        users: 40,
        ..SimConfig::default()
    };
    let mut data = generate(&sim, &[Scenario::AnonymizerSignin]);
    let template = data.risk_detections.first().cloned().expect("a detection");
    let now = sim.start + 6 * HOUR;
    data.risk_detections = (0..10_000i64)
        .map(|i| {
            let mut d: Value = template.clone();
            let at = chrono::DateTime::from_timestamp_millis(now - HOUR + i * 300)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            d["id"] = Value::from(format!("{i:064x}"));
            d["detectedDateTime"] = Value::from(at.clone());
            d["lastUpdatedDateTime"] = Value::from(at);
            d
        })
        .collect();
    data.risk_detection_arrival_delay_ms = vec![0; 10_000];
    let env = start(&data, 1000).await;
    assert_eq!(env.cfg.risk_page_size(), 500);
    let mut store = Store::open(&env.dir.path().join("crosswind.db")).expect("store");
    let mut c = collector(&env.cfg);
    env.graph.set_now(now);
    let stats = c.poll_once(&mut store, ts(now)).await.expect("poll");
    let risk = stats.risk.expect("risk polled");
    assert_eq!(risk.error, None);
    assert_eq!(risk.stored, 10_000);
    assert_eq!(env.graph.risk_served_count(), 10_000, "each served once");
    // 10,000 / 500 pages, and nothing else: no retries, no second read.
    assert_eq!(risk.requests, 20);
    assert_eq!(env.graph.risk_requests(), 20);
    eprintln!(
        "10,000 risk detections: {} requests ({} pages of $top=500)",
        risk.requests, risk.pages
    );
    // The next poll re-reads the overlap (lookback_secs = 3600): the same 20 requests, nothing
    // new stored.
    env.graph.set_now(now + 10 * MIN);
    let again = c
        .poll_once(&mut store, ts(now + 10 * MIN))
        .await
        .expect("poll")
        .risk
        .expect("risk polled");
    assert_eq!((again.stored, again.duplicates), (0, 10_000));
    eprintln!(
        "next poll with a 1 h overlap: {} requests, {} duplicates",
        again.requests, again.duplicates
    );
}

/// Through the binary: `collect --once` while the app lacks IdentityRiskEvent.Read.All stores
/// every sign-in, exits 0, names the permission on stderr, and `status` shows the feed failing
/// with Graph's answer; once granted, the next `collect --once` reads the detections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_once_without_the_permission_keeps_the_sign_ins_and_says_what_to_grant() {
    let sim = SimConfig {
        hours: 6,
        users: 40,
        ..SimConfig::default()
    };
    let mut data = generate(&sim, &[Scenario::AnonymizerSignin]);
    add_detections(&mut data, sim.start, 12);
    let env = start(&data, 1000).await;
    env.graph.deny_risk_detections(true);
    let db = env.dir.path().join("cw.db");
    let config = env.dir.path().join("crosswind.toml");
    let azure = azure_table(&env.cfg);
    std::fs::write(
        &config,
        format!("[store]\npath = \"{}\"\n\n[[azure]]\n{azure}", db.display()),
    )
    .expect("config");
    let cfg = config.to_str().expect("utf-8").to_owned();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crosswind_tests::crosswind(&args)
        })
    };
    let collect: Vec<String> = [
        "--config",
        &cfg,
        "collect",
        "--once",
        "--since",
        "2026-11-29T00:00:00Z",
    ]
    .map(str::to_owned)
    .to_vec();
    let out = run(collect.clone()).await.expect("run");
    let err = crosswind_tests::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "risk detections: graph GET /beta/identityProtection/riskDetections returned 403"
        ) && err.contains("IdentityRiskEvent.Read.All"),
        "{err}"
    );
    // The log's warning, once: a second cycle still refused says it only in its summary.
    assert_eq!(
        err.matches("Risk detections cannot be read").count(),
        1,
        "{err}"
    );
    let again = run(collect.clone()).await.expect("run");
    let err = crosswind_tests::stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains("IdentityRiskEvent.Read.All"), "{err}");
    assert!(!err.contains("Risk detections cannot be read"), "{err}");
    let store = Store::open(&db).expect("store");
    let signins: BTreeSet<String> = store
        .record_ids(RecordSource::EntraSignIn)
        .expect("ids")
        .into_iter()
        .collect();
    assert_eq!(signins, env.graph.served_ids());
    assert_eq!(
        signins,
        env.graph.visible_ids(i64::MAX, i64::MIN, i64::MAX),
        "every sign-in"
    );
    assert!(
        store
            .record_ids(RecordSource::EntraRiskDetection)
            .expect("ids")
            .is_empty()
    );
    drop(store);
    let status: Vec<String> = ["--config", &cfg, "status", "--format", "json"]
        .map(str::to_owned)
        .to_vec();
    let text = crosswind_tests::stdout(&run(status.clone()).await.expect("run"));
    let line = text
        .lines()
        .find(|l| l.contains("collector corp risk_detections"))
        .unwrap_or_else(|| panic!("no risk_detections line: {text}"));
    assert!(
        line.contains("\"value\":\"failing\"")
            && line.contains("Authorization_RequestDenied")
            && line.contains("IdentityRiskEvent.Read.All"),
        "{line}"
    );

    // Granted: the next cycle reads them all and the error clears.
    env.graph.deny_risk_detections(false);
    let out = run(collect).await.expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crosswind_tests::stderr(&out)
    );
    let store = Store::open(&db).expect("store");
    let states: BTreeSet<String> = store
        .record_ids(RecordSource::EntraRiskDetection)
        .expect("ids")
        .into_iter()
        .collect();
    assert_eq!(states.len(), env.graph.served_risk_states().len());
    assert!(states.len() >= 12);
    drop(store);
    let text = crosswind_tests::stdout(&run(status).await.expect("run"));
    assert!(
        text.contains("\"collector corp risk_detections\",\"value\":\"ok\""),
        "{text}"
    );
}

/// The `[[azure]]` table the binary needs, from the parsed config.
fn azure_table(c: &AzureConfig) -> String {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    format!(
        "name = \"{}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\n\
         graph_url = \"{}\"\nauthority_host = \"{}\"\napi_version = \"{}\"\nca_file = \"{}\"\n\
         page_size = {}\nmax_requests_per_10s = 0\n",
        c.name,
        c.tenant_id,
        c.client_id.as_deref().unwrap_or_default(),
        path(&c.client_secret_file),
        c.graph_url,
        c.authority_host,
        c.api_version,
        path(&c.ca_file),
        c.page_size,
    )
}
