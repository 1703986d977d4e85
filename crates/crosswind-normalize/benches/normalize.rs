//! Normalisation throughput on synthetic Graph beta sign-ins and CloudTrail records built in
//! code: `cargo bench -p crosswind-normalize` prints records/s for `normalize` alone and for
//! reading an NDJSON stream plus normalising (one core).

use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use crosswind_normalize::{RecordReader, normalize};
use serde_json::json;

fn graph_beta(i: usize) -> serde_json::Value {
    json!({
        "id": format!("66ea54eb-6301-4ee5-be62-{i:012x}"),
        "createdDateTime": format!("2025-03-04T05:{:02}:{:02}.1234567Z", (i / 60) % 60, i % 60),
        "userDisplayName": "Adele Vance",
        "userPrincipalName": format!("User{}@Contoso.com", i % 5000),
        "userId": format!("d7cc485d-2c1b-422c-98fd-{:012x}", i % 5000),
        "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "appDisplayName": "Azure Portal",
        "ipAddress": format!("203.0.{}.{}", (i / 256) % 256, i % 256),
        "clientAppUsed": "Browser",
        "correlationId": "d79f5bee-5860-4832-928f-3133e22ae912",
        "conditionalAccessStatus": "notApplied",
        "isInteractive": true,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": if i.is_multiple_of(97) { "high" } else { "none" },
        "riskState": "none",
        "riskEventTypes_v2": if i.is_multiple_of(97) { json!(["anonymizedIPAddress"]) } else { json!([]) },
        "resourceDisplayName": "Windows Azure Service Management API",
        "resourceId": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "status": if i.is_multiple_of(10) {
            json!({"errorCode": 50126, "failureReason": "Invalid username or password.", "additionalDetails": null})
        } else {
            json!({"errorCode": 0, "failureReason": null, "additionalDetails": null})
        },
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows 10",
                         "browser": "Edge 120.0", "isCompliant": false, "isManaged": false, "trustType": ""},
        "location": {"city": "Amsterdam", "state": "Noord-Holland", "countryOrRegion": "NL",
                     "geoCoordinates": {"altitude": null, "latitude": 52.37, "longitude": 4.89}},
        "appliedConditionalAccessPolicies": [
            {"id": "8872f6fb-da88-4b63-bcc7-17247669596b", "displayName": "Require MFA for admins",
             "enforcedGrantControls": ["Mfa"], "enforcedSessionControls": [], "result": "notApplied",
             "conditionsSatisfied": "none", "conditionsNotSatisfied": "users"}
        ],
        "authenticationDetails": [
            {"authenticationStepDateTime": "2025-03-04T05:06:07Z", "authenticationMethod": "Password",
             "authenticationMethodDetail": "Password in the cloud", "succeeded": true,
             "authenticationStepResultDetail": "Correct password", "authenticationStepRequirement": "Primary authentication"}
        ],
        "authenticationProcessingDetails": [{"key": "Login Hint Present", "value": "True"}],
        "authenticationRequirement": "singleFactorAuthentication",
        "homeTenantId": "aaaaaaaa-0000-0000-0000-000000000001",
        "resourceTenantId": "aaaaaaaa-0000-0000-0000-000000000001",
        "crossTenantAccessType": "none",
        "authenticationProtocol": "none",
        "autonomousSystemNumber": 63182,
        "signInEventTypes": ["interactiveUser"],
        "userType": "member",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
        "tokenIssuerType": "AzureAD",
        "tokenIssuerName": "",
        "clientCredentialType": "none",
        "processingTimeInMilliseconds": 120,
        "uniqueTokenIdentifier": "kP3aT9XzJ0e5n1yVb2cQAA",
        "incomingTokenType": "none",
        "flaggedForReview": false,
    })
}

fn cloudtrail(i: usize) -> serde_json::Value {
    let console = i.is_multiple_of(20);
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDATFQR7NSC5U6Q3TMDR",
            "arn": format!("arn:aws:iam::123837392027:user/user{}", i % 300),
            "accountId": "123837392027", "accessKeyId": "AKIATFQR7NSCUXC3DDDP",
            "userName": format!("user{}", i % 300),
            "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                               "attributes": {"creationDate": "2023-07-10T11:57:47Z", "mfaAuthenticated": "false"}}
        },
        "eventTime": format!("2023-07-10T11:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        "eventSource": if console { "signin.amazonaws.com" } else { "iam.amazonaws.com" },
        "eventName": if console { "ConsoleLogin" } else { "ListAttachedUserPolicies" },
        "awsRegion": "us-east-1",
        "sourceIPAddress": format!("198.51.{}.{}", (i / 256) % 256, i % 256),
        "userAgent": "Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165",
        "requestParameters": if console { json!(null) } else { json!({"userName": "benjamin"}) },
        "responseElements": if console { json!({"ConsoleLogin": "Success"}) } else { json!(null) },
        "additionalEventData": if console {
            json!({"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "No"})
        } else { json!(null) },
        "errorCode": if i.is_multiple_of(7) { json!("AccessDenied") } else { json!(null) },
        "requestID": format!("699479d4-2a01-4e9e-bf31-{i:012x}"),
        "eventID": format!("875240ac-e821-4fc6-a311-{i:012x}"),
        "readOnly": true,
        "eventType": if console { "AwsConsoleSignIn" } else { "AwsApiCall" },
        "managementEvent": true,
        "recipientAccountId": "123837392027",
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": "iam.amazonaws.com"}
    })
}

fn main() {
    const N: usize = 300_000;
    let records: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let v = if i.is_multiple_of(2) {
                graph_beta(i)
            } else {
                cloudtrail(i)
            };
            serde_json::to_vec(&v).unwrap_or_default()
        })
        .collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!("{N} records, {} bytes on average", bytes / N);

    // Warm up.
    for r in records.iter().take(10_000) {
        black_box(normalize(r, None).is_ok());
    }

    // Baseline: parsing alone, the floor for a `serde_json::Value` based mapping.
    let start = Instant::now();
    for r in &records {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(r)).is_ok());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parse to Value only:   {:>9.0} records/s ({:.2} µs/record)",
        N as f64 / secs,
        secs * 1e6 / N as f64
    );

    let start = Instant::now();
    let mut ok = 0usize;
    for r in &records {
        if black_box(normalize(black_box(r), None)).is_ok() {
            ok += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ok, N, "every synthetic record normalises");
    println!(
        "normalize:             {:>9.0} records/s ({:.2} µs/record)",
        N as f64 / secs,
        secs * 1e6 / N as f64
    );

    let mut ndjson = Vec::with_capacity(bytes + N);
    for r in &records {
        ndjson.extend_from_slice(r);
        ndjson.push(b'\n');
    }
    let start = Instant::now();
    let mut ok = 0usize;
    if let Ok(reader) = RecordReader::from_read(Cursor::new(&ndjson)) {
        for raw in reader.flatten() {
            if black_box(normalize(&raw.bytes, None)).is_ok() {
                ok += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ok, N, "every synthetic record read and normalised");
    println!(
        "read ndjson+normalize: {:>9.0} records/s ({:.2} µs/record, {:.0} MB/s)",
        N as f64 / secs,
        secs * 1e6 / N as f64,
        bytes as f64 / secs / 1e6
    );
}
