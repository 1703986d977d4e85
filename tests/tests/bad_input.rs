//! Bad input never panics, never drops a good record silently: malformed lines, missing fields,
//! wrong types, invalid UTF-8, huge records and truncated gzip each get a quarantine row or a
//! clear error, and the good records around them are stored.

use std::io::Write;
use std::process::{Command, Stdio};

use crosswind_tests::*;
use serde_json::{Value, json};

fn graph_signin(id: &str) -> Value {
    json!({
        "id": id, "createdDateTime": "2026-11-30T09:12:03Z",
        "userDisplayName": "Alice", "userPrincipalName": "Alice@Contoso.com",
        "userId": "0f2c9a8e-1111-4c3b-9d1a-5a6b7c8d9e0f", "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": "Office 365 Exchange Online", "ipAddress": "203.0.113.10",
        "clientAppUsed": "Browser", "correlationId": "c1", "conditionalAccessStatus": "success",
        "isInteractive": true, "riskDetail": "none", "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none", "riskState": "none", "riskEventTypes_v2": [],
        "resourceDisplayName": "Office 365 Exchange Online", "resourceId": "r1",
        "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": null},
        "deviceDetail": {}, "location": {"city": "Berlin", "state": "Berlin", "countryOrRegion": "DE",
            "geoCoordinates": {"altitude": null, "latitude": 52.52, "longitude": 13.4}},
        "appliedConditionalAccessPolicies": []
    })
}

fn cloudtrail(id: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/bob",
            "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "bob"},
        "eventTime": "2026-11-30T09:13:00Z", "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.4",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "requestID": "r-1", "eventID": id, "readOnly": true, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management"
    })
}

fn import_json(store: &std::path::Path, file: &std::path::Path) -> (Option<i32>, Value, String) {
    let out = crosswind(&[
        "--store",
        store.to_str().unwrap(),
        "import",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    let summary = serde_json::from_str(stdout(&out).trim()).unwrap_or(Value::Null);
    (out.status.code(), summary, stderr(&out))
}

fn counts(v: &Value) -> [u64; 4] {
    ["read", "stored", "duplicates", "quarantined"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
}

#[test]
fn bad_lines_are_quarantined_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut missing_user = graph_signin("no-user");
    missing_user
        .as_object_mut()
        .unwrap()
        .remove("userPrincipalName");
    missing_user.as_object_mut().unwrap().remove("userId");
    let mut missing_time = cloudtrail("no-time");
    missing_time.as_object_mut().unwrap().remove("eventTime");
    let mut wrong_type = graph_signin("wrong-type");
    wrong_type["createdDateTime"] = json!(12345);
    let mut huge = cloudtrail("huge");
    huge["requestParameters"] = json!({"blob": "x".repeat(10 * 1024 * 1024)});

    let mut body: Vec<u8> = Vec::new();
    for line in [
        graph_signin("good-1").to_string().into_bytes(),
        b"{\"id\": \"truncated".to_vec(),
        missing_user.to_string().into_bytes(),
        missing_time.to_string().into_bytes(),
        wrong_type.to_string().into_bytes(),
        b"{\"id\":\"\xff\xfe bad utf8\"}".to_vec(),
        huge.to_string().into_bytes(),
        cloudtrail("good-2").to_string().into_bytes(),
    ] {
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    let file = dir.path().join("mixed.ndjson");
    std::fs::write(&file, &body).unwrap();
    let store = dir.path().join("cw.db");
    let (code, summary, err) = import_json(&store, &file);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counts(&summary), [8, 3, 0, 5], "{summary}");

    let db = crosswind_store::Store::open(&store).unwrap();
    let mut ids = db
        .record_ids(crosswind_model::RecordSource::CloudTrail)
        .unwrap();
    ids.extend(
        db.record_ids(crosswind_model::RecordSource::EntraSignIn)
            .unwrap(),
    );
    ids.sort();
    assert_eq!(ids, ["good-1", "good-2", "huge"]);
    let quarantine = db.quarantine(100).unwrap();
    assert_eq!(quarantine.len(), 5);
    for q in &quarantine {
        assert!(!q.reason.is_empty() && q.position.is_some(), "{q:?}");
    }
    let reasons: Vec<_> = quarantine.iter().map(|q| q.reason.to_lowercase()).collect();
    assert!(reasons.iter().any(|r| r.contains("user")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("time")), "{reasons:?}");
    // The raw bytes of a quarantined line are kept as received, invalid UTF-8 included.
    assert!(
        quarantine
            .iter()
            .any(|q| q.raw.windows(2).any(|w| w == b"\xff\xfe"))
    );
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&cloudtrail(&format!("gz-{i:04}")).to_string());
        text.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let full = gz.finish().unwrap();
    let file = dir.path().join("trail.json.gz");
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    let store = dir.path().join("cw.db");
    let (code, summary, err) = import_json(&store, &file);
    assert_eq!(code, Some(1), "a truncated file is a runtime failure");
    assert!(
        err.to_lowercase().contains("gzip") || err.to_lowercase().contains("truncated"),
        "{err}"
    );
    let [read, stored, _, _] = counts(&summary);
    assert!(stored > 0 && stored == read && stored < 2000, "{summary}");

    // The whole file, re-imported, adds exactly the rest.
    std::fs::write(&file, &full).unwrap();
    let (code, summary, err) = import_json(&store, &file);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counts(&summary), [2000, 2000 - stored, stored, 0]);
}

#[test]
fn csv_summary_rows_are_quarantined_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = shared_data_dir().join("otrf-security-datasets/aws_s3_honeybucket_logs.ndjson");
    let store = dir.path().join("cw.db");
    let (code, summary, err) = import_json(&store, &file);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counts(&summary), [301, 0, 0, 301], "{summary}");
}

#[test]
fn stdin_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let mut child = Command::new(crosswind_bin())
        .args(["--store", store.to_str().unwrap(), "import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = format!("{}\n{}\n", graph_signin("s-1"), cloudtrail("s-2"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "read 2, stored 2, duplicates 0, quarantined 0"
    );

    let missing = dir.path().join("nope.ndjson");
    let out = crosswind(&[
        "--store",
        store.to_str().unwrap(),
        "import",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.ndjson"), "{}", stderr(&out));
}
