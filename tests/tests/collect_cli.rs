//! `crosswind collect --once --since T` through the real binary against the loopback
//! simulators (TLS token endpoint, Graph signIns, CloudTrail LookupEvents, Splunk HEC): one full
//! cycle stores exactly what the clouds served, the correlator runs over it, `forward --once` then
//! delivers the raw records, risk events and findings, a second cycle stores nothing new, and
//! `status` shows each collector's checkpoint.

use std::collections::BTreeSet;

use crosswind_model::RecordSource;
use crosswind_sim::cloudtrail_api::CloudTrailSim;
use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_sim::token::TokenSimConfig;
use crosswind_sim::{EntraSims, Scenario, SimConfig, generate};
use crosswind_tests::*;

fn ids(values: &[serde_json::Value], key: &str) -> BTreeSet<String> {
    values
        .iter()
        .filter_map(|v| v[key].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_once_stores_what_the_clouds_served_and_correlates() {
    let sim = SimConfig {
        users: 60,
        hours: 8,
        ..SimConfig::default()
    };
    let data = generate(&sim, &[Scenario::AnonymizerSignin, Scenario::AwsRecon]);
    let token_cfg = TokenSimConfig::default();
    let EntraSims { ca, token, graph } = EntraSims::start(&data, token_cfg.clone()).await.unwrap();
    let delays = vec![0; data.cloudtrail.len()];
    let cloudtrail = CloudTrailSim::start(&data.cloudtrail, &delays)
        .await
        .unwrap();
    let hec = HecSim::start(HecSimConfig::default()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file).unwrap();
    let secret = dir.path().join("azure-secret");
    std::fs::write(&secret, &token_cfg.client_secret).unwrap();
    let hec_token = dir.path().join("hec-token");
    std::fs::write(&hec_token, hec.token()).unwrap();
    std::fs::write(dir.path().join("identities.toml"), &data.identities_toml).unwrap();
    let correlate = data.correlate_toml.clone();
    // What a production config collects: console logins and the reconnaissance calls.
    let wanted: BTreeSet<&str> = crosswind_sim::RECON_EVENT_NAMES
        .iter()
        .copied()
        .chain(["ConsoleLogin"])
        .collect();
    let served_trail: Vec<serde_json::Value> = data
        .cloudtrail
        .iter()
        .filter(|r| r["eventName"].as_str().is_some_and(|n| wanted.contains(n)))
        .cloned()
        .collect();
    let names: Vec<&str> = wanted.iter().copied().collect();
    let regions: Vec<String> = data
        .cloudtrail
        .iter()
        .filter_map(|r| r["awsRegion"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let config = dir.path().join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            r#"{correlate}
[store]
path = "{db}"

[[azure]]
name = "corp"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{secret}"
graph_url = "{graph}"
authority_host = "{auth}"
ca_file = "{ca}"
max_requests_per_10s = 0

[[aws]]
name = "prod"
regions = {regions:?}
endpoint_url = "{ct}"
event_names = {names:?}
max_calls_per_sec = 1000

[splunk]
url = "{hec_url}"
token_file = "{hec_token}"
indexer_ack = true
ack_poll_interval_ms = 100
"#,
            db = dir.path().join("cw.db").display(),
            tenant = token_cfg.tenant_id,
            client = token_cfg.client_id,
            secret = secret.display(),
            graph = graph.url(),
            auth = token.authority_host(),
            ca = ca_file.display(),
            ct = cloudtrail.url(),
            hec_url = hec.url(),
            hec_token = hec_token.display(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let since = "2026-11-29T00:00:00Z";
    // The SDK's default credential chain reads these; the simulator does not check them.
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crosswind_env(
                &args,
                &[
                    ("AWS_ACCESS_KEY_ID", "AKIASIMULATOR0000000"),
                    ("AWS_SECRET_ACCESS_KEY", "simulator-secret"),
                    ("AWS_REGION", "us-east-1"),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ],
            )
        })
    };
    let collect = vec![
        "--config".to_string(),
        cfg.clone(),
        "collect".into(),
        "--once".into(),
        "--since".into(),
        since.into(),
    ];
    let out = run(collect.clone()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    let store = crosswind_store::Store::open(&dir.path().join("cw.db")).unwrap();
    let stored_signins: BTreeSet<String> = store
        .record_ids(RecordSource::EntraSignIn)
        .unwrap()
        .into_iter()
        .collect();
    let stored_trail: BTreeSet<String> = store
        .record_ids(RecordSource::CloudTrail)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        stored_signins,
        ids(&data.signins, "id"),
        "every served sign-in, once"
    );
    assert_eq!(
        stored_trail,
        ids(&served_trail, "eventID"),
        "every served CloudTrail record, once"
    );
    // Risk detections (read by default): every state Graph served, once.
    let stored_risk: BTreeSet<String> = store
        .record_ids(RecordSource::EntraRiskDetection)
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        !stored_risk.is_empty(),
        "the anonymizer sign-in has a detection"
    );
    assert_eq!(
        stored_risk.len(),
        graph.served_risk_states().len(),
        "every served risk detection state, once"
    );
    let findings = crosswind_store::correlate::findings_since(&store, i64::MIN).unwrap();
    let found: BTreeSet<String> = findings.into_iter().map(|f| f.identity).collect();
    let expected: BTreeSet<String> = data.truth.malicious_identities.iter().cloned().collect();
    assert_eq!(
        found, expected,
        "the correlator ran over what was collected"
    );
    let signals: BTreeSet<String> =
        crosswind_store::correlate::signals_between(&store, i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
    let finding_ids: BTreeSet<String> =
        crosswind_store::correlate::findings_since(&store, i64::MIN)
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect();
    drop(store);

    // `forward --once` delivers what `collect` queued: every raw record, risk event and finding.
    let forward = run(vec![
        "--config".into(),
        cfg.clone(),
        "forward".into(),
        "--once".into(),
    ])
    .await
    .unwrap();
    assert_eq!(forward.status.code(), Some(0), "{}", stderr(&forward));
    let received = hec.events();
    let of = |sourcetype: &str, key: &str| -> BTreeSet<String> {
        received
            .iter()
            .filter(|e| e["sourcetype"] == sourcetype)
            .filter_map(|e| e["event"][key].as_str().map(str::to_owned))
            .collect()
    };
    assert!(!signals.is_empty() && !finding_ids.is_empty());
    assert_eq!(of("crosswind:risk", "signal_id"), signals, "risk events");
    assert_eq!(
        of("crosswind:finding", "finding_id"),
        finding_ids,
        "findings"
    );
    assert_eq!(of("azure:aad:signin", "id"), stored_signins, "raw sign-ins");
    assert_eq!(
        of("aws:cloudtrail", "eventID"),
        stored_trail,
        "raw CloudTrail"
    );
    assert_eq!(
        of("azure:aad:identity_protection:risk_detection", "id").len(),
        stored_risk
            .iter()
            .map(|r| r.split_once('@').map_or(r.as_str(), |(id, _)| id))
            .collect::<BTreeSet<_>>()
            .len(),
        "raw risk detections"
    );
    assert_eq!(
        received
            .iter()
            .filter(|e| e["sourcetype"] == "azure:aad:identity_protection:risk_detection")
            .count(),
        stored_risk.len(),
        "one raw event per detection state"
    );
    assert_eq!(hec.stats().duplicates, 0);

    let again = run(collect).await.unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again)
            .lines()
            .all(|l| !l.contains(": ") || l.contains(": 0 new records")),
        "{}",
        stdout(&again)
    );

    let status = run(vec![
        "--config".into(),
        cfg,
        "status".into(),
        "--format".into(),
        "json".into(),
    ])
    .await
    .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(
        text.contains("collector corp (azure_signins)")
            && text.contains("collector prod (aws_cloudtrail)"),
        "{text}"
    );
    // What could fall behind unseen has its own line: each region, records later than the
    // lookback.
    for region in &regions {
        assert!(
            text.contains(&format!(
                "\"collector prod region {region}\",\"value\":\"ok\""
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("\"collector corp risk_detections\",\"value\":\"ok\""),
        "{text}"
    );
    assert!(
        text.contains("\"collector corp records_too_late\",\"value\":0")
            && text.contains("\"collector prod records_too_late\",\"value\":0"),
        "{text}"
    );
}
