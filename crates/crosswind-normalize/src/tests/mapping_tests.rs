//! Mapping tests: golden outputs for real public records of every shape (the goldens hold our
//! normalised events, never the records), exact values for the facts detections depend on,
//! hand-written Graph records, hints, and malformed input.

use crosswind_model::{CLASS_API_ACTIVITY, CLASS_AUTHENTICATION, SourceFormat, User};
use expect_test::expect_file;
use serde_json::json;

use super::{norm, pretty, records};
use crate::{FormatFamily, FormatHint, Normalized, detect, normalize};

/// The first record of `file` whose raw text contains every needle.
fn pick(file: &str, needles: &[&str]) -> (u64, Vec<u8>) {
    records(file)
        .into_iter()
        .find(|(_, raw)| {
            let text = String::from_utf8_lossy(raw);
            needles.iter().all(|n| text.contains(n))
        })
        .unwrap_or_else(|| panic!("{file}: no record with {needles:?}"))
}

fn ok(raw: &[u8]) -> Normalized {
    match norm(raw) {
        Ok(n) => n,
        Err(r) => panic!("rejected: {r}"),
    }
}

fn principal(n: &Normalized) -> User {
    n.event.principal().cloned().unwrap_or_default()
}

// === goldens over real public records ===

#[test]
fn golden_diagnostic_record_microsoft_docs() {
    let (_, raw) = pick(
        "microsoft-docs/azure_monitor_signinlogs_record_example.ndjson",
        &[],
    );
    let n = ok(&raw);
    assert_eq!(n.format, SourceFormat::DiagnosticSignIn);
    assert_eq!(n.event.status_code.as_deref(), Some("50140"));
    assert_eq!(n.event.status_id, 2);
    expect_file!["../../tests/golden/diagnostic_microsoft_docs.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_signinlogs_row_msticpy() {
    let (_, raw) = pick("msticpy/aad_logons_signinlogs.ndjson", &[]);
    let n = ok(&raw);
    assert_eq!(n.format, SourceFormat::SigninLogsRow);
    // The Entra tenant, not the Log Analytics workspace (`TenantId`).
    assert_eq!(
        n.event.cloud.account.uid.as_deref(),
        Some("4b2462a4-bbee-495a-a0e1-f23ae524cc9c")
    );
    expect_file!["../../tests/golden/signinlogs_msticpy.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_signinlogs_row_training_lab() {
    let (_, raw) = pick(
        "azure-sentinel/training_lab_signin_adelev_signinlogs.ndjson",
        &[],
    );
    let n = ok(&raw);
    assert_eq!(n.event.time, 1_619_618_925_221); // "4/28/2021, 2:08:45.221 PM" [UTC]
    expect_file!["../../tests/golden/signinlogs_training_lab.json"].assert_eq(&pretty(&n));
    let (_, raw) = pick(
        "azure-sentinel/training_lab_signin_adelev_signinlogs.ndjson",
        &["\"ResultType\": \"50058\""],
    );
    let n = ok(&raw);
    assert_eq!(
        (n.event.status_id, n.event.status_code.as_deref()),
        (2, Some("50058"))
    );
}

#[test]
fn golden_root_console_login_mfa_yes_uppercase() {
    let (_, raw) = pick(
        "awsdocs-cloudtrail-user-guide/doc_example_events.ndjson",
        &["\"YES\""],
    );
    let n = ok(&raw);
    assert_eq!(n.event.class_uid, CLASS_AUTHENTICATION);
    assert_eq!(n.event.is_mfa, Some(true));
    assert_eq!(
        n.event.aws.as_ref().and_then(|a| a.mfa_used.as_deref()),
        Some("YES")
    );
    assert_eq!(principal(&n).name.as_deref(), Some("root"));
    expect_file!["../../tests/golden/cloudtrail_root_console_login_mfa_yes.json"]
        .assert_eq(&pretty(&n));
}

#[test]
fn golden_iam_console_login_failure_without_arn() {
    let (_, raw) = pick(
        "awsdocs-cloudtrail-user-guide/doc_example_events.ndjson",
        &["\"ConsoleLogin\": \"Failure\"", "IAMUser"],
    );
    let n = ok(&raw);
    let user = principal(&n);
    assert_eq!(
        (n.event.status_id, n.event.status_code.as_deref()),
        (2, Some("Failure"))
    );
    assert!(user.arn.is_none());
    assert!(user.credential_uid.is_none(), "empty accessKeyId is absent");
    expect_file!["../../tests/golden/cloudtrail_iam_console_login_failure.json"]
        .assert_eq(&pretty(&n));
}

#[test]
fn golden_hidden_user_failure_sentinel() {
    let (_, raw) = pick(
        "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
        &["HIDDEN_DUE_TO_SECURITY_REASONS"],
    );
    let n = ok(&raw);
    assert_eq!(n.format, SourceFormat::SentinelCloudTrailRow);
    assert_eq!(
        principal(&n).name.as_deref(),
        Some("HIDDEN_DUE_TO_SECURITY_REASONS")
    );
    assert_eq!(
        n.event.status_detail.as_deref(),
        Some("No username found in supplied account")
    );
    expect_file!["../../tests/golden/sentinel_hidden_user_failure.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_sentinel_row_success_with_mfa() {
    let (_, raw) = pick(
        "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
        &["\"Root\"", "MFAIdentifier"],
    );
    let n = ok(&raw);
    assert_eq!((n.event.status_id, n.event.is_mfa), (1, Some(true)));
    assert_eq!(principal(&n).name.as_deref(), Some("root"));
    expect_file!["../../tests/golden/sentinel_root_success_mfa.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_logstash_record_otrf() {
    let (_, raw) = pick(
        "otrf-security-datasets/ec2_proxy_s3_exfiltration_cloudtrail.ndjson",
        &[],
    );
    let n = ok(&raw);
    assert_eq!(n.format, SourceFormat::CloudTrailLogstash);
    assert_eq!(n.event.time, 1_600_044_263_000); // @timestamp 2020-09-14T00:44:23.000Z
    expect_file!["../../tests/golden/logstash_otrf.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_stratus_assumed_role_denied() {
    let (_, raw) = pick(
        "stratus-red-team/detonation_logs.ndjson",
        &["GetPasswordData", "assumed-role"],
    );
    let n = ok(&raw);
    let user = principal(&n);
    assert_eq!(n.event.class_uid, CLASS_API_ACTIVITY);
    assert_eq!(
        n.event.status_code.as_deref(),
        Some("Client.UnauthorizedOperation")
    );
    assert!(
        user.name
            .as_deref()
            .is_some_and(|s| s.starts_with("aws-go-sdk-"))
    );
    expect_file!["../../tests/golden/stratus_assumed_role_denied.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_stratus_console_login_without_mfa() {
    let (_, raw) = pick(
        "stratus-red-team/detonation_logs.ndjson",
        &["\"ConsoleLogin\""],
    );
    let n = ok(&raw);
    assert_eq!(n.event.is_mfa, Some(false));
    expect_file!["../../tests/golden/stratus_console_login.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_panther_service_principal_signin() {
    // Lower-cased envelope keys, a 9-digit naive timestamp, no user: the principal is the app.
    let (_, raw) = pick(
        "panther-analysis/azure_audit_rule_tests.ndjson",
        &["ServicePrincipalSignInLogs", "7000215"],
    );
    let n = ok(&raw);
    let user = principal(&n);
    assert_eq!(user.name.as_deref(), Some("some-service-principal"));
    assert_eq!(user.kind.as_deref(), Some("servicePrincipal"));
    expect_file!["../../tests/golden/panther_service_principal.json"].assert_eq(&pretty(&n));
}

// === exact values over real records ===

#[test]
fn panther_hand_written_results_and_naive_times() {
    let (_, raw) = pick(
        "panther-analysis/azure_audit_rule_tests.ndjson",
        &["\"resultType\": \"Success\""],
    );
    let n = ok(&raw);
    assert_eq!(
        (n.event.status_id, n.event.status_code.as_deref()),
        (1, Some("Success"))
    );
    assert_eq!(n.event.time, 1_736_940_015_789); // "2025-01-15 11:20:15.789"
    // The sign-in's own status.errorCode wins over a hand-written "Failure".
    let (_, raw) = pick(
        "panther-analysis/azure_audit_rule_tests.ndjson",
        &["50053", "\"Failure\""],
    );
    let n = ok(&raw);
    assert_eq!(n.event.status_code.as_deref(), Some("50053"));
    assert_eq!(n.event.src_endpoint.autonomous_system_number, Some(12345));
    assert_eq!(n.event.is_mfa, Some(false));
}

#[test]
fn cloudtrail_identities() {
    let file = "invictus-ir-aws_dataset/cloudtrail_records.ndjson";
    // AWS service caller: no IP, the service's name.
    let (_, raw) = pick(
        file,
        &[
            r#""userIdentity": {"accountId": "123837392027", "invokedBy": "secretsmanager.amazonaws.com"}"#,
        ],
    );
    let n = ok(&raw);
    assert_eq!(n.event.src_endpoint.ip, None);
    assert_eq!(
        n.event.src_endpoint.domain.as_deref(),
        Some("secretsmanager.amazonaws.com")
    );
    let actor = n.event.actor.clone().map(|a| (a.user.name, a.invoked_by));
    assert_eq!(
        actor,
        Some((
            Some("secretsmanager.amazonaws.com".into()),
            Some("secretsmanager.amazonaws.com".into())
        ))
    );
    // IAM user with an access key.
    let (_, raw) = pick(
        file,
        &[
            "GetAccountAuthorizationDetails",
            "\"userName\": \"benjamin\"",
        ],
    );
    let n = ok(&raw);
    let user = principal(&n);
    assert_eq!(user.name.as_deref(), Some("benjamin"));
    assert_eq!(n.event.operation(), Some("GetAccountAuthorizationDetails"));
    assert!(
        user.credential_uid
            .as_deref()
            .is_some_and(|k| k.starts_with("AKIA"))
    );
    assert_eq!(n.event.cloud.account.uid.as_deref(), Some("123837392027"));
    // Throttled calls are failures with the error code.
    let (_, raw) = pick(file, &["ThrottlingException"]);
    let n = ok(&raw);
    assert_eq!(
        (n.event.status_id, n.event.status_code.as_deref()),
        (2, Some("ThrottlingException"))
    );
}

#[test]
fn sso_sessions_are_federated() {
    let (_, raw) = pick(
        "panther-analysis/aws_cloudtrail_rule_tests.ndjson",
        &["AWSReservedSSO_", "assumed-role"],
    );
    let n = ok(&raw);
    let session = principal(&n).session.unwrap_or_default();
    assert!(session.is_federated);
    assert!(
        session
            .issuer_name
            .is_some_and(|r| r.starts_with("AWSReservedSSO_"))
    );
}

#[test]
fn cloudtrail_without_user_identity_is_kept() {
    let raw = br#"{"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z","eventSource":"kms.amazonaws.com","eventName":"RotateKey","awsRegion":"us-east-1","sourceIPAddress":"AWS Internal","readOnly":"true","eventID":"x1"}"#;
    let n = ok(raw);
    assert!(n.event.actor.is_none() && n.event.user.is_none());
    assert_eq!(n.event.aws.and_then(|a| a.read_only), Some(true));
    assert_eq!(n.event.src_endpoint.domain.as_deref(), Some("AWS Internal"));
}

/// The console's own calls on a signed-in user's behalf are marked (`aws_recon_burst` ignores
/// them): `sessionCredentialFromConsole` is the string "true" in trail files, a column in
/// Log Analytics rows.
#[test]
fn session_credential_from_console() {
    let (_, raw) = pick(
        "invictus-ir-aws_dataset/cloudtrail_records.ndjson",
        &["\"sessionCredentialFromConsole\": \"true\""],
    );
    let aws = ok(&raw).event.aws.unwrap();
    assert_eq!(aws.session_credential_from_console, Some(true));
    let plain = br#"{"eventTime":"2024-01-02T03:04:05Z","eventName":"ListBuckets","eventID":"x2"}"#;
    assert_eq!(
        ok(plain).event.aws.unwrap().session_credential_from_console,
        None
    );
    let row = br#"{"TimeGenerated":"2024-01-02T03:04:05Z","EventName":"ListBuckets","AwsEventId":"x3","SessionCredentialFromConsole":"true","Type":"AWSCloudTrail"}"#;
    assert_eq!(
        ok(row).event.aws.unwrap().session_credential_from_console,
        Some(true)
    );
}

// === hand-written Graph records (documented shapes, FIELDS.md §1) ===

fn graph_beta() -> serde_json::Value {
    json!({
        "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100",
        "createdDateTime": "2025-03-04T05:06:07.1234567Z",
        "userDisplayName": "Adele Vance",
        "userPrincipalName": "AdeleV@Contoso.com",
        "userId": "d7cc485d-2c1b-422c-98fd-5ce52859a4a3",
        "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "appDisplayName": "Azure Portal",
        "ipAddress": "2001:db8::1",
        "clientAppUsed": "Browser",
        "correlationId": "d79f5bee-5860-4832-928f-3133e22ae912",
        "conditionalAccessStatus": "notApplied",
        "isInteractive": true,
        "riskDetail": "none",
        "riskLevelAggregated": "high",
        "riskLevelDuringSignIn": "high",
        "riskState": "atRisk",
        "riskEventTypes_v2": ["anonymizedIPAddress", "unfamiliarFeatures"],
        "resourceDisplayName": "Windows Azure Service Management API",
        "resourceId": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "status": {"errorCode": 0, "failureReason": null, "additionalDetails": null},
        "location": {"city": "Amsterdam", "state": "Noord-Holland", "countryOrRegion": "NL",
                     "geoCoordinates": {"altitude": null, "latitude": 52.37, "longitude": 4.89}},
        "authenticationRequirement": "singleFactorAuthentication",
        "homeTenantId": "aaaaaaaa-0000-0000-0000-000000000001",
        "resourceTenantId": "bbbbbbbb-0000-0000-0000-000000000002",
        "crossTenantAccessType": "b2bCollaboration",
        "authenticationProtocol": "none",
        "autonomousSystemNumber": 63182,
        "signInEventTypes": ["interactiveUser"],
        "userType": "guest",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "tokenIssuerType": "AzureAD",
        "authenticationDetails": [],
    })
}

#[test]
fn golden_graph_beta_with_risk() {
    let raw = serde_json::to_vec(&graph_beta()).unwrap_or_default();
    let n = ok(&raw);
    assert_eq!(n.format, SourceFormat::GraphSignIn);
    assert_eq!(n.record_id, "66ea54eb-6301-4ee5-be62-ff5a759b0100");
    assert_eq!(principal(&n).name.as_deref(), Some("adelev@contoso.com"));
    assert_eq!(n.event.src_ip(), Some("2001:db8::1"));
    assert_eq!(
        n.event.cloud.account.uid.as_deref(),
        Some("bbbbbbbb-0000-0000-0000-000000000002")
    );
    expect_file!["../../tests/golden/graph_beta_risky.json"].assert_eq(&pretty(&n));
}

#[test]
fn golden_graph_v1_failure() {
    let v1 = json!({
        "id": "b01b1a1b-0c0c-4d6e-8f70-00000000abcd",
        "createdDateTime": "2024-11-02T10:11:12Z",
        "userDisplayName": "Megan Bowen",
        "userPrincipalName": "meganb@contoso.com",
        "userId": "48d31887-5fad-4d73-a9f5-3c356e68a038",
        "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
        "appDisplayName": "Graph Explorer",
        "ipAddress": "131.107.159.37",
        "clientAppUsed": "Other clients",
        "correlationId": "65c6a3f6-06b9-4bb8-a0f4-33b3a9a62a2b",
        "conditionalAccessStatus": "notApplied",
        "isInteractive": true,
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": "00000003-0000-0000-c000-000000000000",
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "status": {"errorCode": 50126, "failureReason": "Error validating credentials due to invalid username or password.", "additionalDetails": null},
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows 10", "browser": "Python Requests 2.31", "isCompliant": false, "isManaged": false, "trustType": ""},
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US",
                     "geoCoordinates": {"altitude": null, "latitude": 47.68, "longitude": -122.12}},
        "appliedConditionalAccessPolicies": [],
    });
    let raw = serde_json::to_vec(&v1).unwrap_or_default();
    let n = ok(&raw);
    assert_eq!(
        (n.event.status_id, n.event.status_code.as_deref()),
        (2, Some("50126"))
    );
    assert!(n.event.is_mfa.is_none());
    assert!(
        n.event.cloud.account.uid.is_none(),
        "v1.0 carries no tenant"
    );
    expect_file!["../../tests/golden/graph_v1_failure.json"].assert_eq(&pretty(&n));
}

#[test]
fn graph_quirks() {
    // The documented typo, a numeric-string error code, an empty status, MFA from details.
    let mut r = graph_beta();
    if let Some(o) = r.as_object_mut() {
        o.remove("riskLevelDuringSignIn");
        o.remove("authenticationRequirement");
        o.insert("riskLevelDuringsignIn".into(), json!("medium"));
        o.insert("status".into(), json!({"errorCode": "0"}));
        o.insert(
            "authenticationDetails".into(),
            json!([{"authenticationMethod": "Password", "succeeded": true, "authenticationStepRequirement": "Primary authentication"},
                   {"authenticationMethod": "Mobile app notification", "succeeded": true, "authenticationStepRequirement": "MFA"}]),
        );
    }
    let n = ok(&serde_json::to_vec(&r).unwrap_or_default());
    let entra = n.event.entra.clone().unwrap_or_default();
    assert_eq!(entra.risk_level_during_signin.as_deref(), Some("medium"));
    assert_eq!((n.event.status_id, n.event.is_mfa), (1, Some(true)));
    if let Some(o) = r.as_object_mut() {
        o.insert("status".into(), json!({}));
    }
    let n = ok(&serde_json::to_vec(&r).unwrap_or_default());
    assert_eq!((n.event.status_id, n.event.status_code.clone()), (0, None));
}

#[test]
fn log_analytics_json_text_columns() {
    let row = json!({
        "Type": "SigninLogs", "TimeGenerated": "2025-01-15T14:20:35.4567890Z",
        "CreatedDateTime": "2025-01-15T14:20:35.1234567Z", "Id": "row-1",
        "UserPrincipalName": "Bob@Contoso.com", "UserId": "u-1", "ResultType": "50126",
        "ResultDescription": "Invalid username or password",
        "RiskEventTypes_V2": "[\"unfamiliarFeatures\"]", "RiskEventTypes": "[]",
        "LocationDetails": "{\"city\":\"Lagos\",\"countryOrRegion\":\"NG\",\"geoCoordinates\":{\"latitude\":6.45,\"longitude\":3.39}}",
        "AuthenticationDetails": "[{\"authenticationStepRequirement\":\"MFA\",\"succeeded\":true}]",
        "AutonomousSystemNumber": "37148", "IsInteractive": "false", "IPAddress": "102.89.1.2",
    });
    let n = ok(&serde_json::to_vec(&row).unwrap_or_default());
    let e = &n.event;
    assert_eq!(e.time, 1_736_950_835_123);
    assert_eq!(
        e.entra.as_ref().map(|d| d.risk_event_types.clone()),
        Some(vec!["unfamiliarFeatures".to_owned()])
    );
    assert_eq!(
        e.src_endpoint
            .location
            .as_ref()
            .and_then(|l| l.city.as_deref()),
        Some("Lagos")
    );
    assert_eq!(e.src_endpoint.autonomous_system_number, Some(37148));
    assert_eq!(e.is_mfa, Some(true));
    assert_eq!(e.entra.as_ref().and_then(|d| d.is_interactive), Some(false));
    assert_eq!(principal(&n).name.as_deref(), Some("bob@contoso.com"));
}

// === detection, hints and rejections ===

#[test]
fn detection_and_hints() {
    let graph = serde_json::to_vec(&graph_beta()).unwrap_or_default();
    assert_eq!(detect(&graph_beta()), Some(SourceFormat::GraphSignIn));
    let as_ct = normalize(&graph, Some(FormatHint::Family(FormatFamily::CloudTrail)));
    assert_eq!(
        as_ct.map(|_| ()).map_err(|r| r.reason),
        Err("expected a cloudtrail record, found graph_signin".into())
    );
    // Under --format graph an unrecognisable record is mapped as Graph, naming what is missing.
    let bare = br#"{"id":"x","userPrincipalName":"a@b.c"}"#;
    let auto = norm(bare).map(|_| ()).map_err(|r| r.reason);
    assert!(
        auto.is_err_and(|r| r.starts_with("not a sign-in, risk detection or CloudTrail record"))
    );
    let r = normalize(bare, Some(FormatFamily::Graph.into()))
        .map(|_| ())
        .map_err(|r| r.reason);
    assert_eq!(r, Err("missing createdDateTime".into()));
    assert_eq!(
        FormatFamily::parse("signinlogs"),
        Some(FormatFamily::SigninLogs)
    );
    assert!("nope".parse::<FormatFamily>().is_err());
}

#[test]
fn rejections_name_the_field() {
    let cases: [(&[u8], &str); 10] = [
        (b"{\"a\": }", "invalid json at column 7: expected value"),
        (b"[1,2]", "not a json object (found an array)"),
        (br#"{"createdDateTime":"2025-01-01T00:00:00Z","status":{"errorCode":0}}"#, "missing user"),
        (br#"{"createdDateTime":"2025-01-01T00:00:00Z","userPrincipalName":{"x":1}}"#, "invalid userPrincipalName: expected a string, found an object"),
        (br#"{"createdDateTime":12,"userPrincipalName":"a@b"}"#, "invalid createdDateTime: expected a timestamp string, found a number"),
        (br#"{"createdDateTime":"yesterday","userPrincipalName":"a@b"}"#, "invalid createdDateTime: \"yesterday\" is not a timestamp"),
        (br#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z"}"#, "missing eventName"),
        (br#"{"eventName":"X","eventTime":"2024-01-01T00:00:00Z","userIdentity":"root"}"#, "invalid userIdentity: expected an object or array, found a string"),
        (br#"{"eventName":"X","eventTime":"2024-01-01T00:00:00Z","readOnly":"maybe"}"#, "invalid readOnly: expected true or false, found \"maybe\""),
        (br#"{"time":"2025-01-01T00:00:00Z","category":"AuditLogs","operationName":"Add member to role","properties":{}}"#, "not a sign-in, risk detection or CloudTrail record: Entra audit log (category AuditLogs)"),
    ];
    for (raw, want) in cases {
        let got = norm(raw).map(|_| ()).map_err(|r| r.reason);
        assert_eq!(
            got,
            Err(want.to_owned()),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn numbers_where_strings_are_expected() {
    let raw = br#"{"eventName":"ListUsers","eventTime":"2024-01-01T00:00:00Z","recipientAccountId":123456789012,"userIdentity":{"type":"IAMUser","userName":"bob","accountId":123456789012,"principalId":42},"eventID":7}"#;
    let n = ok(raw);
    assert_eq!(n.record_id, "7");
    assert_eq!(n.event.cloud.account.uid.as_deref(), Some("123456789012"));
    assert_eq!(principal(&n).uid.as_deref(), Some("42"));
}

#[test]
fn content_id_when_no_record_id() {
    let a = br#"{"eventName":"X","eventTime":"2024-01-01T00:00:00Z","b":1,"a":[1,{"z":"\u00e9","y":null}]}"#;
    let b = b"{\n \"a\": [1, {\"y\": null, \"z\": \"\xc3\xa9\"}], \"b\": 1,\n \"eventTime\": \"2024-01-01T00:00:00Z\", \"eventName\": \"X\"}";
    let (ia, ib) = (ok(a).record_id, ok(b).record_id);
    assert_eq!(ia, ib, "same record, any layout, same id");
    assert!(ia.starts_with("sha256:") && ia.len() == 7 + 64);
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xff\xfe".to_vec(),
        deep.into_bytes(),
        deep_obj.into_bytes(),
        b"{\"eventName\":\"ConsoleLogin\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"responseElements\":\"{bad\",\"additionalEventData\":[]}".to_vec(),
        b"{\"Type\":\"SigninLogs\",\"Id\":\"1\",\"CreatedDateTime\":\"2024-01-01T00:00:00Z\",\"UserId\":\"u\",\"LocationDetails\":\"{oops\",\"RiskEventTypes_V2\":7}".to_vec(),
        b"{\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"SignInLogs\",\"properties\":{\"userId\":\"u\",\"location\":[1],\"autonomousSystemNumber\":-5}}".to_vec(),
        b"{\"createdDateTime\":\"9999-12-31T23:59:59.9999999+23:59\",\"userId\":\"u\",\"status\":{\"errorCode\":1e400}}".to_vec(),
        b"{\"createdDateTime\":\"0000-01-01T00:00:00Z\",\"userId\":\"u\",\"status\":[]}".to_vec(),
    ];
    for raw in inputs {
        for hint in [
            None,
            Some(FormatHint::Family(FormatFamily::CloudTrail)),
            Some(FormatHint::Exact(SourceFormat::SigninLogsRow)),
            Some(FormatHint::Exact(SourceFormat::DiagnosticSignIn)),
        ] {
            let _ = normalize(&raw, hint);
        }
    }
}

#[test]
fn mfa_denial_details_and_client_app_in_every_entra_shape() {
    // A denied push (500121) over a legacy protocol, as each sign-in shape carries it.
    let status = json!({
        "errorCode": 500121,
        "failureReason": "Authentication failed during strong authentication request.",
        "additionalDetails": "MFA denied; user declined the authentication"
    });
    let graph = json!({
        "id": "g-1", "createdDateTime": "2026-03-01T10:00:00Z",
        "userPrincipalName": "Ann@corp.example", "clientAppUsed": "IMAP4", "status": status
    });
    let diagnostic = json!({
        "time": "2026-03-01T10:00:00Z", "category": "SignInLogs", "operationName": "Sign-in activity",
        "properties": {
            "id": "d-1", "createdDateTime": "2026-03-01T10:00:00Z",
            "userPrincipalName": "ann@corp.example", "clientAppUsed": "IMAP4", "status": status
        }
    });
    let row = json!({
        "TimeGenerated": "2026-03-01T10:00:00Z", "CreatedDateTime": "2026-03-01T10:00:00Z",
        "Type": "SigninLogs", "Id": "r-1", "UserPrincipalName": "ann@corp.example",
        "ResultType": "500121", "ClientAppUsed": "IMAP4", "Status": status.to_string()
    });
    // Some exports name the dynamic column `Status_dynamic`.
    let mut row_dynamic = row.clone();
    let o = row_dynamic.as_object_mut().unwrap();
    o.remove("Status");
    o.insert("Status_dynamic".into(), status.clone());
    for (want, record) in [
        (SourceFormat::GraphSignIn, graph),
        (SourceFormat::DiagnosticSignIn, diagnostic),
        (SourceFormat::SigninLogsRow, row),
        (SourceFormat::SigninLogsRow, row_dynamic),
    ] {
        let n = ok(&serde_json::to_vec(&record).unwrap());
        assert_eq!(n.format, want);
        assert_eq!(n.event.status_code.as_deref(), Some("500121"), "{want:?}");
        let e = n.event.entra.as_ref().unwrap();
        assert_eq!(
            e.status_additional_details.as_deref(),
            Some("MFA denied; user declined the authentication"),
            "{want:?}"
        );
        assert_eq!(e.client_app_used.as_deref(), Some("IMAP4"), "{want:?}");
    }
}
