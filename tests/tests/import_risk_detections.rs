//! `import` of Identity Protection risk detections in every shape crosswind reads — a Graph
//! page, a single Graph object, a JSON array, Log Analytics `AADUserRiskEvents` rows, a
//! diagnostic-settings `{"records":[…]}` export of category `UserRiskEvents` — end to end: each
//! state stored once, a later state (dismissed) stored beside the earlier one and found as the
//! detection's current state even when it arrives first, odd detections (unknown type, no UPN,
//! a service principal) kept, risky-user records quarantined under their own name, and every
//! stored detection forwarded raw under `azure:aad:identity_protection:risk_detection` timed by
//! its `activityDateTime`. The records are written from the documented resource shapes (there
//! are no public raw risk detections in the shared data).

use std::collections::BTreeMap;

use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_store::Store;
use crosswind_tests::*;
use serde_json::{Value, json};

const TOKEN: &str = "0d7e4c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6";
const TENANT: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const SOURCETYPE: &str = "azure:aad:identity_protection:risk_detection";

/// A Graph `riskDetection`.
fn detection(id: &str, upn: Option<&str>, kind: &str, state: &str, updated: &str) -> Value {
    let mut d = json!({
        "id": id,
        "requestId": format!("req-{id}"),
        "correlationId": format!("corr-{id}"),
        "riskEventType": kind,
        "riskState": state,
        "riskLevel": "high",
        "riskDetail": if state == "dismissed" { "adminDismissedAllRiskForUser" } else { "none" },
        "source": "IdentityProtection",
        "detectionTimingType": "offline",
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": "198.51.100.23",
        "location": {"city": "Lagos", "state": "Lagos", "countryOrRegion": "NG",
                     "geoCoordinates": {"latitude": 6.45, "longitude": 3.39}},
        "activityDateTime": "2025-03-04T02:10:00.1234567Z",
        "detectedDateTime": "2025-03-04T07:40:00Z",
        "lastUpdatedDateTime": updated,
        "userId": format!("oid-{id}"),
        "userDisplayName": "Someone",
        "userPrincipalName": upn,
        "additionalInfo": "[{\"Key\":\"userAgent\",\"Value\":\"python-requests/2.31\"}]"
    });
    if upn.is_none()
        && let Some(o) = d.as_object_mut()
    {
        o.remove("userPrincipalName");
    }
    d
}

/// The Log Analytics row of a Graph detection (PascalCase, dynamic columns as JSON text).
fn la_row(d: &Value) -> Value {
    let mut row = serde_json::Map::new();
    for (k, v) in d.as_object().into_iter().flatten() {
        let mut name: Vec<char> = k.chars().collect();
        name[0] = name[0].to_ascii_uppercase();
        let name: String = name.into_iter().collect();
        let v = match k.as_str() {
            "location" => json!(v.to_string()),
            _ => v.clone(),
        };
        row.insert(name, v);
    }
    row.insert(
        "TenantId".into(),
        json!("0f1e2d3c-0000-0000-0000-00000000beef"),
    );
    row.insert("TimeGenerated".into(), json!("2025-03-04T08:00:00Z"));
    row.insert("Type".into(), json!("AADUserRiskEvents"));
    Value::Object(row)
}

/// The diagnostic-settings record of a Graph detection.
fn diagnostic(d: &Value) -> Value {
    json!({
        "time": "3/4/2025 8:00:00 AM",
        "resourceId": format!("/tenants/{TENANT}/providers/microsoft.aadiam"),
        "operationName": "User Risk Detection",
        "operationVersion": "1.0",
        "category": "UserRiskEvents",
        "tenantId": TENANT,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": d["ipAddress"],
        "correlationId": d["id"],
        "Level": 4,
        "properties": d
    })
}

fn write(dir: &std::path::Path, name: &str, text: String) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn run(args: Vec<String>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crosswind(&args)
}

/// `import --format FAMILY --format json FILES`: the summary as JSON.
fn import(cfg: &str, family: &str, files: &[String]) -> Value {
    let mut args = vec![
        "--config".to_string(),
        cfg.to_string(),
        "import".into(),
        "--format".into(),
        family.into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(files.iter().cloned());
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).expect("json summary")
}

fn counts(v: &Value) -> [u64; 4] {
    ["read", "stored", "duplicates", "quarantined"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_risk_detection_shape_imports_and_forwards() {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        indexer_ack: true,
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cw.db");
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let cfg = write(
        dir.path(),
        "crosswind.toml",
        format!(
            "[store]\npath = \"{}\"\n\n[splunk]\nurl = \"{}\"\ntoken_file = \"{}\"\nindex = \"cloud\"\nindexer_ack = true\nforward = [\"raw\"]\n",
            db.display(),
            hec.url(),
            token_file.display()
        ),
    );

    let leaked_at_risk = detection(
        "d-leaked",
        Some("Alice@Contoso.com"),
        "leakedCredentials",
        "atRisk",
        "2025-03-04T07:40:00Z",
    );
    let leaked_dismissed = detection(
        "d-leaked",
        Some("Alice@Contoso.com"),
        "leakedCredentials",
        "dismissed",
        "2025-03-05T10:00:00Z",
    );
    let unknown_type = detection(
        "d-future",
        Some("bob@contoso.com"),
        "someFutureDetection",
        "atRisk",
        "2025-03-04T07:41:00Z",
    );
    let no_upn = detection(
        "d-noupn",
        None,
        "anonymizedIPAddress",
        "atRisk",
        "2025-03-04T07:42:00Z",
    );
    let never_signed_in = detection(
        "d-stranger",
        Some("nobody.seen@contoso.com"),
        "investigationsThreatIntelligence",
        "atRisk",
        "2025-03-04T07:43:00Z",
    );
    let service_principal = json!({
        "id": "d-sp",
        "riskEventType": "investigationsThreatIntelligence",
        "riskState": "atRisk",
        "riskLevel": "high",
        "detectionTimingType": "offline",
        "activity": "servicePrincipal",
        "activityDateTime": "2025-03-04T03:00:00Z",
        "detectedDateTime": "2025-03-04T05:00:00Z",
        "lastUpdatedDateTime": "2025-03-04T05:00:00Z",
        "servicePrincipalId": "sp-oid",
        "servicePrincipalDisplayName": "Contoso Sync",
        "appId": "app-1"
    });
    let risky_user = json!({
        "time": "2025-03-04T08:00:00Z",
        "category": "RiskyUsers",
        "operationName": "Risky user",
        "tenantId": TENANT,
        "properties": {"id": "oid-alice", "riskLevel": "high", "riskState": "atRisk",
                       "riskLastUpdatedDateTime": "2025-03-04T07:40:00Z",
                       "userPrincipalName": "alice@contoso.com"}
    });

    // The dismissal arrives first, alone, as a single Graph object.
    let first = write(
        dir.path(),
        "dismissal.json",
        serde_json::to_string_pretty(&leaked_dismissed).unwrap(),
    );
    let s = import(&cfg, "auto", std::slice::from_ref(&first));
    assert_eq!(counts(&s), [1, 1, 0, 0], "{s}");

    // A Graph page, a plain JSON array, LA rows, a diagnostic export.
    let page = write(
        dir.path(),
        "riskDetections-page.json",
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#riskDetections",
            "value": [leaked_at_risk, unknown_type, no_upn]
        })
        .to_string(),
    );
    let array = write(
        dir.path(),
        "detections-array.json",
        json!([never_signed_in, service_principal]).to_string(),
    );
    // The same two states again as Log Analytics rows: duplicates, not new records.
    let rows = write(
        dir.path(),
        "AADUserRiskEvents.ndjson",
        format!(
            "{}\n{}\n",
            la_row(&leaked_at_risk),
            la_row(&leaked_dismissed)
        ),
    );
    let diag = write(
        dir.path(),
        "PT1H.json",
        json!({"records": [diagnostic(&unknown_type), diagnostic(&detection(
            "d-diag", Some("carol@contoso.com"), "unfamiliarFeatures", "atRisk", "2025-03-04T07:44:00Z")),
            risky_user]})
        .to_string(),
    );
    let s = import(&cfg, "auto", &[page.clone(), array.clone()]);
    assert_eq!(counts(&s), [5, 5, 0, 0], "{s}");
    let s = import(&cfg, "signinlogs", std::slice::from_ref(&rows));
    assert_eq!(counts(&s), [2, 0, 2, 0], "{s}");
    let s = import(&cfg, "diagnostic", std::slice::from_ref(&diag));
    assert_eq!(counts(&s), [3, 1, 1, 1], "{s}");
    // Re-importing everything stores nothing.
    let s = import(&cfg, "auto", &[first, page, array, rows, diag]);
    assert_eq!(counts(&s), [11, 0, 10, 1], "{s}");

    {
        let store = Store::open(&db).unwrap();
        let states = store.risk_detection_states("d-leaked").unwrap();
        let by_state: Vec<_> = states
            .iter()
            .map(|e| e.event.entra.as_ref().and_then(|d| d.risk_state.clone()))
            .collect();
        assert_eq!(
            by_state,
            [Some("atRisk".to_owned()), Some("dismissed".to_owned())]
        );
        let latest = store.latest_risk_detection("d-leaked").unwrap().unwrap();
        assert_eq!(
            latest.event.entra.and_then(|d| d.risk_state).as_deref(),
            Some("dismissed"),
            "the newest state counts, though it arrived first"
        );
        let sp = store.latest_risk_detection("d-sp").unwrap().unwrap().event;
        assert_eq!(
            sp.user.and_then(|u| u.kind).as_deref(),
            Some("servicePrincipal")
        );
        // Once per import of the diagnostic file (import keeps each run's quarantine rows).
        let q = store.quarantine(10).unwrap();
        assert_eq!(q.len(), 2);
        for row in q {
            assert!(
                row.reason
                    .contains("risky-user record (a user's risk, not a detection)"),
                "{}",
                row.reason
            );
        }
    }

    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = hec.events();
    for e in &events {
        if e["sourcetype"] == SOURCETYPE {
            let activity = e["event"]["activityDateTime"]
                .as_str()
                .or_else(|| e["event"]["properties"]["activityDateTime"].as_str())
                .unwrap_or_default();
            let want = chrono::DateTime::parse_from_rfc3339(activity)
                .map(|t| t.timestamp_millis() as f64 / 1000.0)
                .unwrap_or(f64::NAN);
            assert_eq!(e["time"].as_f64(), Some(want), "{e}");
        }
    }
    assert_eq!(
        count_by_sourcetype(&events),
        BTreeMap::from([(SOURCETYPE.to_owned(), 7)]),
        "every stored detection state forwarded once, raw"
    );
}
