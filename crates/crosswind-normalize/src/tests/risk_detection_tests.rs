//! Identity Protection risk detections in their three shapes, hand-written from the documented
//! resource (Graph `riskDetection`, v1.0 and beta), the Azure Monitor `AADUserRiskEvents` table
//! reference and the diagnostic-settings `UserRiskEvents` record (see docs/schema.md).

use crosswind_model::{CLASS_DETECTION_FINDING, STATUS_UNKNOWN, SourceFormat};
use expect_test::expect_file;
use serde_json::{Value, json};

use super::{norm, pretty};
use crate::{FormatFamily, FormatHint, Normalized, normalize};

const ID: &str = "d52a631815aaa527bf642b196715da5cf0f35b6879204ea5b5c99b21bd4c16f4";

/// A v1.0 `riskDetection` as `/identityProtection/riskDetections` lists it.
fn graph_v1() -> Value {
    json!({
        "id": ID,
        "requestId": "06f7fd18-b8f1-407d-86a3-f6cbe3a4be00",
        "correlationId": "2a38abff-5701-4073-a81e-fd3aac09cba3",
        "riskEventType": "anonymizedIPAddress",
        "riskState": "atRisk",
        "riskLevel": "medium",
        "riskDetail": "none",
        "source": "IdentityProtection",
        "detectionTimingType": "realtime",
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": "185.220.101.7",
        "location": {
            "city": "Chisinau", "state": "Chisinau", "countryOrRegion": "MD",
            "geoCoordinates": {"latitude": 47.0269, "longitude": 28.8416}
        },
        "activityDateTime": "2025-03-04T20:51:34.6245276Z",
        "detectedDateTime": "2025-03-04T20:51:34.6245276Z",
        "lastUpdatedDateTime": "2025-03-04T20:53:12.1984203Z",
        "userId": "4628e7df-dff3-407c-a08f-75f08c0806dc",
        "userDisplayName": "Test User One",
        "userPrincipalName": "TestUser1@Contoso.com",
        "additionalInfo": "[{\"Key\":\"userAgent\",\"Value\":\"Mozilla/5.0 (Windows NT 10.0; rv:78.0) Gecko/20100101 Firefox/78.0\"}]"
    })
}

/// The same state as a diagnostic-settings record (Event Hub / storage export).
fn diagnostic() -> Value {
    let mut props = graph_v1();
    if let Some(p) = props.as_object_mut() {
        p.insert("riskType".into(), json!("anonymizedIPAddress"));
        p.insert("homeTenantId".into(), json!(TENANT));
        p.insert("resourceTenantId".into(), Value::Null);
        p.insert("userType".into(), json!("member"));
        p.insert("crossTenantAccessType".into(), json!("none"));
        // Azure writes hours below 10 unpadded in this category.
        p.insert(
            "lastUpdatedDateTime".into(),
            json!("2025-03-04T20:53:12.198Z"),
        );
    }
    json!({
        "time": "3/4/2025 8:53:12 PM",
        "resourceId": format!("/tenants/{TENANT}/providers/microsoft.aadiam"),
        "operationName": "User Risk Detection",
        "operationVersion": "1.0",
        "category": "UserRiskEvents",
        "tenantId": TENANT,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": "185.220.101.7",
        "correlationId": ID,
        "identity": "test user one",
        "Level": 4,
        "location": "md",
        "properties": props
    })
}

/// The same state as a Log Analytics `AADUserRiskEvents` row (dynamic columns as JSON text, as
/// a portal or `az monitor log-analytics query` export writes them).
fn la_row() -> Value {
    json!({
        "TenantId": "0f1e2d3c-0000-0000-0000-00000000beef",
        "TimeGenerated": "2025-03-04T20:53:40.0000000Z",
        "Activity": "signin",
        "ActivityDateTime": "2025-03-04T20:51:34.6245276Z",
        "AdditionalInfo": "[{\"Key\":\"userAgent\",\"Value\":\"Mozilla/5.0 (Windows NT 10.0; rv:78.0) Gecko/20100101 Firefox/78.0\"}]",
        "CorrelationId": "2a38abff-5701-4073-a81e-fd3aac09cba3",
        "DetectedDateTime": "2025-03-04T20:51:34.6245276Z",
        "DetectionTimingType": "realtime",
        "Id": ID,
        "IpAddress": "185.220.101.7",
        "LastUpdatedDateTime": "2025-03-04T20:53:12.1984203Z",
        "Location": "{\"city\":\"Chisinau\",\"state\":\"Chisinau\",\"countryOrRegion\":\"MD\",\"geoCoordinates\":{\"latitude\":47.0269,\"longitude\":28.8416}}",
        "OperationName": "User Risk Detection",
        "RequestId": "06f7fd18-b8f1-407d-86a3-f6cbe3a4be00",
        "RiskDetail": "none",
        "RiskEventType": "anonymizedIPAddress",
        "RiskLevel": "medium",
        "RiskState": "atRisk",
        "Source": "IdentityProtection",
        "SourceSystem": "Azure AD",
        "TokenIssuerType": "AzureAD",
        "UserDisplayName": "Test User One",
        "UserId": "4628e7df-dff3-407c-a08f-75f08c0806dc",
        "UserPrincipalName": "TestUser1@Contoso.com",
        "Type": "AADUserRiskEvents"
    })
}

const TENANT: &str = "aaaaaaaa-0000-0000-0000-000000000001";

fn ok(v: &Value) -> Normalized {
    let raw = serde_json::to_vec(v).unwrap_or_default();
    match norm(&raw) {
        Ok(n) => n,
        Err(r) => panic!("rejected: {r}"),
    }
}

fn reason(v: &Value) -> String {
    let raw = serde_json::to_vec(v).unwrap_or_default();
    match norm(&raw) {
        Ok(n) => panic!("accepted as {}", n.format.as_str()),
        Err(r) => r.reason,
    }
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        if value.is_null() {
            o.remove(key);
        } else {
            o.insert(key.to_owned(), value);
        }
    }
    v
}

#[test]
fn golden_graph_v1_detection() {
    let n = ok(&graph_v1());
    assert_eq!(n.format, SourceFormat::GraphRiskDetection);
    let e = &n.event;
    assert_eq!(e.class_uid, CLASS_DETECTION_FINDING);
    assert_eq!(e.status_id, STATUS_UNKNOWN, "a detection is no success");
    assert_eq!(n.record_id, format!("{ID}@2025-03-04T20:53:12.198Z"));
    assert_eq!(n.record_id, e.metadata.uid);
    // Scored at the risky activity, not when it was detected or updated.
    assert_eq!(
        Some(e.time),
        crate::parse_timestamp_ms("2025-03-04T20:51:34.624Z")
    );
    let f = e.finding_info.as_ref().expect("finding_info");
    assert_eq!(f.uid, ID);
    assert_eq!(f.title, "anonymizedIPAddress");
    let d = e.entra.as_ref().expect("entra");
    assert_eq!(d.risk_level.as_deref(), Some("medium"));
    assert_eq!(d.risk_state.as_deref(), Some("atRisk"));
    assert_eq!(d.detection_timing_type.as_deref(), Some("realtime"));
    assert_eq!(
        d.request_id.as_deref(),
        Some("06f7fd18-b8f1-407d-86a3-f6cbe3a4be00")
    );
    assert_eq!(
        e.principal().and_then(|u| u.name.as_deref()),
        Some("testuser1@contoso.com")
    );
    assert_eq!(e.src_ip(), Some("185.220.101.7"));
    expect_file!["../../tests/golden/risk_detection_graph_v1.json"].assert_eq(&pretty(&n));
}

/// One state exported as a Graph record, a diagnostic record and a Log Analytics row is one
/// record: same record id, same facts.
#[test]
fn one_state_in_three_shapes_is_one_record() {
    let g = ok(&graph_v1());
    let d = ok(&diagnostic());
    let l = ok(&la_row());
    assert_eq!(d.format, SourceFormat::DiagnosticRiskDetection);
    assert_eq!(l.format, SourceFormat::UserRiskEventsRow);
    for n in [&d, &l] {
        assert_eq!(n.record_id, g.record_id, "{}", n.format.as_str());
        assert_eq!(n.event.time, g.event.time);
        assert_eq!(n.event.finding_info, g.event.finding_info);
        assert_eq!(
            n.event.principal().and_then(|u| u.name.as_deref()),
            Some("testuser1@contoso.com")
        );
        assert_eq!(n.event.src_endpoint.location, g.event.src_endpoint.location);
        assert_eq!(n.event.http_request, g.event.http_request);
        let (a, b) = (n.event.entra.as_ref(), g.event.entra.as_ref());
        assert_eq!(
            a.and_then(|x| x.risk_level.clone()),
            b.and_then(|x| x.risk_level.clone())
        );
        assert_eq!(
            a.and_then(|x| x.request_id.clone()),
            b.and_then(|x| x.request_id.clone())
        );
        assert_eq!(
            n.event.metadata.correlation_uid,
            g.event.metadata.correlation_uid
        );
    }
    // The diagnostic record names the tenant; Graph's riskDetection does not.
    assert_eq!(d.event.cloud.account.uid.as_deref(), Some(TENANT));
    assert_eq!(
        d.event.metadata.event_types,
        vec!["UserRiskEvents".to_owned()]
    );
    assert_eq!(
        l.event.metadata.event_types,
        vec!["AADUserRiskEvents".to_owned()]
    );
    // The row's TenantId is the workspace, never the Entra tenant.
    assert_eq!(l.event.cloud.account.uid, None);
}

/// A later state of the same detection is a new record with the same finding uid; its id sorts
/// after the earlier one's.
#[test]
fn a_state_change_is_a_new_record() {
    let first = ok(&graph_v1());
    let dismissed = with(
        with(graph_v1(), "riskState", json!("dismissed")),
        "lastUpdatedDateTime",
        json!("2025-03-06T09:00:00Z"),
    );
    let later = ok(&with(
        dismissed,
        "riskDetail",
        json!("adminDismissedAllRiskForUser"),
    ));
    assert_ne!(later.record_id, first.record_id);
    assert!(later.record_id > first.record_id, "newest state sorts last");
    assert_eq!(
        later.event.finding_info.as_ref().map(|f| &f.uid),
        first.event.finding_info.as_ref().map(|f| &f.uid)
    );
    assert_eq!(
        later.event.time, first.event.time,
        "still the activity's time"
    );
    assert_eq!(
        later.event.entra.and_then(|d| d.risk_state).as_deref(),
        Some("dismissed")
    );
}

#[test]
fn offline_detection_is_timed_by_its_activity() {
    let leaked = json!({
        "id": "5b3f8f2a0c",
        "riskEventType": "leakedCredentials",
        "riskState": "atRisk",
        "riskLevel": "high",
        "detectionTimingType": "offline",
        "activity": "user",
        "activityDateTime": "2025-03-01T02:00:00Z",
        "detectedDateTime": "2025-03-01T09:30:00Z",
        "lastUpdatedDateTime": "2025-03-01T09:30:00Z",
        "userId": "0b1c",
        "userPrincipalName": "alice@contoso.com",
        "ipAddress": null,
        "location": null,
        "correlationId": null,
        "requestId": null
    });
    let n = ok(&leaked);
    assert_eq!(
        Some(n.event.time),
        crate::parse_timestamp_ms("2025-03-01T02:00:00Z")
    );
    assert_eq!(
        n.event.finding_info.as_ref().and_then(|f| f.created_time),
        crate::parse_timestamp_ms("2025-03-01T09:30:00Z")
    );
    assert_eq!(n.event.src_ip(), None);
    assert_eq!(n.event.metadata.correlation_uid, None);
}

/// Bad input the brief names: unknown types, no UPN (service principals), no user at all,
/// older beta names, unpadded hours. Stored, never rejected.
#[test]
fn odd_detections_are_kept() {
    let unknown = ok(&with(
        graph_v1(),
        "riskEventType",
        json!("someFutureDetection"),
    ));
    assert_eq!(
        unknown.event.finding_info.map(|f| f.title).as_deref(),
        Some("someFutureDetection")
    );

    // Older beta: `riskType` only.
    let beta = with(
        with(graph_v1(), "riskEventType", Value::Null),
        "riskType",
        json!("unfamiliarFeatures"),
    );
    let n = ok(&beta);
    assert_eq!(n.format, SourceFormat::GraphRiskDetection);
    assert_eq!(
        n.event.finding_info.map(|f| f.title).as_deref(),
        Some("unfamiliarFeatures")
    );

    // servicePrincipalRiskDetection: the service principal is the principal.
    let sp = json!({
        "id": "sp-1",
        "riskEventType": "investigationsThreatIntelligence",
        "riskState": "atRisk",
        "riskLevel": "high",
        "detectionTimingType": "offline",
        "activity": "servicePrincipal",
        "activityDateTime": "2025-03-01T02:00:00Z",
        "detectedDateTime": "2025-03-01T04:00:00Z",
        "lastUpdatedDateTime": "2025-03-01T04:00:00Z",
        "servicePrincipalId": "9f1a",
        "servicePrincipalDisplayName": "Contoso Sync",
        "appId": "c0ff",
        "keyIds": []
    });
    let n = ok(&sp);
    let who = n.event.principal().cloned().unwrap_or_default();
    assert_eq!(who.name.as_deref(), Some("Contoso Sync"));
    assert_eq!(who.uid.as_deref(), Some("9f1a"));
    assert_eq!(who.kind.as_deref(), Some("servicePrincipal"));

    // Nobody named at all: kept, unattributed.
    let nobody = with(
        with(
            with(graph_v1(), "userPrincipalName", Value::Null),
            "userId",
            Value::Null,
        ),
        "userDisplayName",
        Value::Null,
    );
    assert!(ok(&nobody).event.user.is_none());

    // Only the UPN missing: the user id still names the user.
    let no_upn = ok(&with(graph_v1(), "userPrincipalName", Value::Null));
    assert_eq!(
        no_upn.event.principal().and_then(|u| u.uid.as_deref()),
        Some("4628e7df-dff3-407c-a08f-75f08c0806dc")
    );

    // No id: a content id, still versioned.
    let n = ok(&with(graph_v1(), "id", Value::Null));
    assert!(n.record_id.starts_with("sha256:"), "{}", n.record_id);
    assert!(n.record_id.ends_with("@2025-03-04T20:53:12.198Z"));

    // Unpadded hours in the diagnostic export.
    let mut d = diagnostic();
    d["properties"]["lastUpdatedDateTime"] = json!("2025-03-05T9:04:27.739Z");
    let n = ok(&d);
    assert!(
        n.record_id.ends_with("@2025-03-05T09:04:27.739Z"),
        "{}",
        n.record_id
    );

    // Dynamic columns as objects (a JSON export of the table) instead of JSON text.
    let mut row = la_row();
    row["Location"] = json!({"city": "Chisinau", "countryOrRegion": "MD"});
    row["AdditionalInfo"] = json!([{"Key": "userAgent", "Value": "curl/8"}]);
    let n = ok(&row);
    assert_eq!(
        n.event.http_request.and_then(|h| h.user_agent).as_deref(),
        Some("curl/8")
    );
    // Garbage in additionalInfo is decoration lost, not a rejection.
    let n = ok(&with(graph_v1(), "additionalInfo", json!("not json")));
    assert!(n.event.http_request.is_none());
}

#[test]
fn rejections_name_the_field() {
    let no_times = with(
        with(
            with(graph_v1(), "activityDateTime", Value::Null),
            "detectedDateTime",
            Value::Null,
        ),
        "lastUpdatedDateTime",
        Value::Null,
    );
    // Still recognised by its type; rejected because nothing says when.
    let raw = serde_json::to_vec(&no_times).unwrap_or_default();
    let r = normalize(&raw, Some(FormatFamily::Graph.into()))
        .map(|_| ())
        .map_err(|r| r.reason);
    assert_eq!(r, Err("missing activityDateTime".to_owned()));
    assert_eq!(
        reason(&with(graph_v1(), "riskLevel", json!({"x": 1}))),
        "invalid riskLevel: expected a string, found an object"
    );
    assert_eq!(
        reason(&with(graph_v1(), "lastUpdatedDateTime", json!("soon"))),
        "invalid lastUpdatedDateTime: \"soon\" is not a timestamp"
    );
    let mut row = la_row();
    row["Location"] = json!("Chisinau");
    assert_eq!(
        reason(&row),
        "invalid Location: expected an object or array, found a string"
    );
}

/// Quarantine reasons say what a record is, not just that it is not a sign-in.
#[test]
fn records_we_do_not_map_are_named() {
    let diag = |category: &str| {
        json!({"time": "2025-01-01T00:00:00Z", "category": category,
               "operationName": "x", "properties": {"id": "1"}})
    };
    let cases = [
        (
            diag("RiskyUsers"),
            "Identity Protection risky-user record (a user's risk, not a detection) (category RiskyUsers)",
        ),
        (diag("AuditLogs"), "Entra audit log (category AuditLogs)"),
        (
            diag("ProvisioningLogs"),
            "Entra provisioning log (category ProvisioningLogs)",
        ),
        (
            diag("StorageRead"),
            "Azure Monitor diagnostic record (category StorageRead)",
        ),
        (
            json!({"Type": "AADRiskyUsers", "Id": "1", "RiskLevel": "high"}),
            "Identity Protection risky-user record (a user's risk, not a detection) (Log Analytics table AADRiskyUsers)",
        ),
        (
            json!({"Type": "AuditLogs", "Id": "1", "OperationName": "Add user"}),
            "Entra audit log (Log Analytics table AuditLogs)",
        ),
        (
            json!({"id": "1", "riskLevel": "high", "riskState": "atRisk", "riskLastUpdatedDateTime": "2025-01-01T00:00:00Z", "userPrincipalName": "a@b"}),
            "Identity Protection risky-user record (a user's risk, not a detection)",
        ),
        (
            json!({"Type": "AADUserRiskEvents", "count_": 3}),
            "AADUserRiskEvents analytic summary row (no Id, RiskEventType or ActivityDateTime)",
        ),
    ];
    for (record, what) in cases {
        assert_eq!(
            reason(&record),
            format!("not a sign-in, risk detection or CloudTrail record: {what}"),
            "{record}"
        );
    }
}

#[test]
fn format_families_hold_the_risk_shapes() {
    let raw = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    let fam = |v: Value, f: FormatFamily| {
        normalize(&raw(v), Some(FormatHint::Family(f)))
            .map(|n| n.format)
            .map_err(|r| r.reason)
    };
    assert_eq!(
        fam(graph_v1(), FormatFamily::Graph),
        Ok(SourceFormat::GraphRiskDetection)
    );
    assert_eq!(
        fam(diagnostic(), FormatFamily::Diagnostic),
        Ok(SourceFormat::DiagnosticRiskDetection)
    );
    assert_eq!(
        fam(la_row(), FormatFamily::SigninLogs),
        Ok(SourceFormat::UserRiskEventsRow)
    );
    assert_eq!(
        fam(graph_v1(), FormatFamily::CloudTrail),
        Err("expected a cloudtrail record, found graph_risk_detection".to_owned())
    );
    assert_eq!(
        fam(la_row(), FormatFamily::Graph),
        Err("expected a graph record, found userriskevents_row".to_owned())
    );
}
