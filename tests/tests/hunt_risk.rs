//! The hunts over the new evidence, through the binary: `hunt risk-detections` lists each
//! Identity Protection detection once in its latest state (a detection dismissed later is
//! dismissed, whichever state was imported first), narrowed by `--user`, `--level` and
//! `--state` on that latest state; `hunt post-compromise` lists identities only for their AWS
//! post-compromise signals, never for Entra evidence alone; the narrowing options are refused
//! by hunts that do not take them.

use crosswind_tests::*;
use serde_json::{Value, json};

fn detection(id: &str, upn: &str, level: &str, state: &str, updated: &str) -> Value {
    json!({
        "id": id,
        "requestId": format!("req-{id}"),
        "correlationId": format!("corr-{id}"),
        "riskEventType": if level == "high" { "leakedCredentials" } else { "unfamiliarFeatures" },
        "riskState": state,
        "riskLevel": level,
        "riskDetail": if state == "dismissed" { "adminDismissedAllRiskForUser" } else { "none" },
        "source": "IdentityProtection",
        "detectionTimingType": if level == "high" { "offline" } else { "realtime" },
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": "198.51.100.23",
        "location": {"city": "Lagos", "state": "Lagos", "countryOrRegion": "NG"},
        "activityDateTime": "2025-03-04T02:10:00Z",
        "detectedDateTime": "2025-03-04T07:40:00Z",
        "lastUpdatedDateTime": updated,
        "userId": format!("oid-{upn}"),
        "userDisplayName": upn,
        "userPrincipalName": upn,
    })
}

fn run(args: &[&str]) -> std::process::Output {
    crosswind(args)
}

fn hunt(cfg: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--config", cfg, "hunt"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--since", "2025-03-01T00:00:00Z", "--format", "json"]);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r["detection_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn risk_detections_latest_state_and_filters_and_post_compromise() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("crosswind.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"{}\"\n",
            dir.path().join("cw.db").display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    // The later state first: the hunt must not depend on arrival order.
    let later = json!({"value": [
        detection("a1", "alice@corp.example", "high", "dismissed", "2025-03-05T09:00:00Z"),
    ]});
    let first = json!({"value": [
        detection("a1", "alice@corp.example", "high", "atRisk", "2025-03-04T07:40:00Z"),
        detection("b2", "bob@corp.example", "medium", "atRisk", "2025-03-04T07:40:00Z"),
        detection("c3", "carol@corp.example", "high", "confirmedCompromised", "2025-03-04T08:00:00Z"),
    ]});
    for (name, page) in [("later.json", later), ("first.json", first)] {
        let p = dir.path().join(name);
        std::fs::write(&p, page.to_string()).unwrap();
        let out = run(&["--config", cfg, "import", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }

    let rows = hunt(cfg, &["risk-detections"]);
    assert_eq!(ids(&rows), ["a1", "b2", "c3"], "{rows:?}");
    let a = rows.iter().find(|r| r["detection_id"] == "a1").unwrap();
    assert_eq!(a["risk_state"], "dismissed");
    assert_eq!(a["states"], 2);
    assert_eq!(a["updated"], "2025-03-05T09:00:00.000Z");
    assert_eq!(a["user"], "alice@corp.example");
    assert_eq!(a["timing"], "offline");
    assert_eq!(a["src_ip"], "198.51.100.23");

    // Filters apply to the latest state: alice's detection is no longer atRisk.
    assert_eq!(
        ids(&hunt(cfg, &["risk-detections", "--state", "atrisk"])),
        ["b2"]
    );
    assert_eq!(
        ids(&hunt(cfg, &["risk-detections", "--level", "high"])),
        ["a1", "c3"]
    );
    assert_eq!(
        ids(&hunt(
            cfg,
            &["risk-detections", "--user", "CAROL@corp.example"]
        )),
        ["c3"]
    );
    assert_eq!(
        ids(&hunt(
            cfg,
            &[
                "risk-detections",
                "--level",
                "high",
                "--state",
                "confirmedCompromised"
            ]
        )),
        ["c3"]
    );
    // The range is on the activity: nothing before March.
    let out = run(&[
        "--config",
        cfg,
        "hunt",
        "risk-detections",
        "--until",
        "2025-03-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "");

    // Entra evidence alone (the imported detections raised azure_risk_detection) is not a
    // post-compromise row: the hunt starts from what a stolen AWS credential did.
    let out = run(&[
        "--config",
        cfg,
        "hunt",
        "identity-risk",
        "--since",
        "2025-03-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("carol@corp.example"),
        "{}",
        stdout(&out)
    );
    assert!(hunt(cfg, &["post-compromise"]).is_empty());

    // Narrowing options belong to the hunts that take them.
    let out = run(&[
        "--config",
        cfg,
        "hunt",
        "spray-sources",
        "--user",
        "bob@corp.example",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&[
        "--config",
        cfg,
        "hunt",
        "post-compromise",
        "--level",
        "high",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&["--config", cfg, "hunt", "--list"]);
    assert!(
        stdout(&out).contains("risk-detections") && stdout(&out).contains("post-compromise"),
        "{}",
        stdout(&out)
    );
}
