//! Tests: determinism, record shapes, each scenario's ground truth checked against the records,
//! benign traffic free of attack IPs and of strong signals, file layout, the stream.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::*;

fn cfg() -> SimConfig {
    SimConfig {
        users: 120,
        ..SimConfig::default()
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    cur.as_str().unwrap_or_default()
}

fn t(v: &Value, key: &str) -> i64 {
    parse_iso(s(v, &[key])).expect("valid time")
}

fn err(v: &Value) -> i64 {
    v["status"]["errorCode"].as_i64().expect("errorCode")
}

fn slash24(ip: &str) -> &str {
    ip.rsplit_once('.').map_or(ip, |(p, _)| p)
}

/// The attacks `mixed` injects into a window of `hours`.
fn mixed_attacks(hours: u32) -> usize {
    Scenario::ATTACKS
        .iter()
        .filter(|a| a.min_hours() <= hours)
        .count()
}

fn truth_of<'a>(ds: &'a Dataset, name: &str) -> &'a ScenarioTruth {
    ds.truth
        .scenarios
        .iter()
        .find(|x| x.scenario == name)
        .expect("scenario present")
}

/// (signal, score) of each signal the scenario's truth expects, in order.
fn expected_scores(tr: &ScenarioTruth) -> Vec<(&str, f64)> {
    tr.expected_signals
        .iter()
        .map(|e| (e.signal.as_str(), e.score))
        .collect()
}

/// No CloudTrail record outside the scenario's own comes from `ip`.
fn only_the_attack_uses(ds: &Dataset, ct: &[&Value], ip: &str) -> bool {
    ds.cloudtrail
        .iter()
        .filter(|v| !ct.contains(v))
        .all(|v| s(v, &["sourceIPAddress"]) != ip)
}

fn ids(tr: &ScenarioTruth) -> BTreeSet<&str> {
    tr.signin_ids
        .iter()
        .chain(&tr.cloudtrail_event_ids)
        .map(String::as_str)
        .collect()
}

fn scenario_signins<'a>(ds: &'a Dataset, tr: &ScenarioTruth) -> Vec<&'a Value> {
    let ids = ids(tr);
    ds.signins
        .iter()
        .filter(|v| ids.contains(s(v, &["id"])))
        .collect()
}

fn scenario_trail<'a>(ds: &'a Dataset, tr: &ScenarioTruth) -> Vec<&'a Value> {
    let ids = ids(tr);
    ds.cloudtrail
        .iter()
        .filter(|v| ids.contains(s(v, &["eventID"])))
        .collect()
}

/// Most distinct users failing (spray codes) from one source within `window_ms`.
fn max_spray(signins: &[&Value], source: impl Fn(&str) -> String, window_ms: i64) -> usize {
    let mut by_src: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for v in signins {
        if matches!(err(v), 50126 | 50053 | 50055 | 50057) {
            by_src
                .entry(source(s(v, &["ipAddress"])))
                .or_default()
                .push((
                    t(v, "createdDateTime"),
                    s(v, &["userPrincipalName"]).to_owned(),
                ));
        }
    }
    let mut best = 0;
    for evs in by_src.values_mut() {
        evs.sort();
        for (i, (t0, _)) in evs.iter().enumerate() {
            let users: BTreeSet<&str> = evs[i..]
                .iter()
                .take_while(|(t1, _)| t1 - t0 <= window_ms)
                .map(|(_, u)| u.as_str())
                .collect();
            best = best.max(users.len());
        }
    }
    best
}

type ReconGroups = BTreeMap<(String, String, String), Vec<(i64, String, bool)>>;

/// Largest set of distinct recon names sharing key, IP and UA within 2 minutes.
fn max_recon(trail: &[&Value]) -> (usize, bool) {
    let mut groups = ReconGroups::new();
    for v in trail {
        let name = s(v, &["eventName"]);
        // The simulator's own recon calls, and the EC2/IAM ones the post-compromise scenarios
        // add (all in docs/detections.md's list).
        if RECON_EVENT_NAMES.contains(&name)
            || matches!(
                name,
                "DescribeRegions" | "DescribeVpcs" | "DescribeSecurityGroups" | "ListAccessKeys"
            )
        {
            let key = (
                s(v, &["userIdentity", "accessKeyId"]).to_owned(),
                s(v, &["sourceIPAddress"]).to_owned(),
                s(v, &["userAgent"]).to_owned(),
            );
            groups.entry(key).or_default().push((
                t(v, "eventTime"),
                name.to_owned(),
                v.get("errorCode").is_some(),
            ));
        }
    }
    let mut best = (0, false);
    for evs in groups.values_mut() {
        evs.sort();
        for (i, (t0, _, _)) in evs.iter().enumerate() {
            let win: Vec<_> = evs[i..]
                .iter()
                .take_while(|(t1, _, _)| t1 - t0 <= 120_000)
                .collect();
            let names: BTreeSet<&str> = win.iter().map(|(_, n, _)| n.as_str()).collect();
            if names.len() > best.0 {
                best = (names.len(), win.iter().any(|(_, _, d)| *d));
            }
        }
    }
    best
}

fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

fn coords(v: &Value) -> (f64, f64) {
    let g = &v["location"]["geoCoordinates"];
    (
        g["latitude"].as_f64().unwrap_or_default(),
        g["longitude"].as_f64().unwrap_or_default(),
    )
}

// === scenarios and config ===

#[test]
fn scenario_names_round_trip() {
    for sc in Scenario::ALL {
        assert_eq!(sc.name().parse::<Scenario>().expect("parses"), sc);
    }
    let e = "nope".parse::<Scenario>().expect_err("unknown");
    assert!(e.to_string().starts_with("unknown scenario"), "{e}");
}

#[test]
fn default_start_is_monday_midnight() {
    assert_eq!(time::iso(DEFAULT_START), "2026-11-30T00:00:00Z");
    assert_eq!(time::weekday(DEFAULT_START), 0);
    assert_eq!(time::iso(1_700_000_000_123), "2023-11-14T22:13:20Z");
    assert_eq!(parse_iso("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
}

#[test]
fn same_seed_same_bytes() {
    let a = generate(&cfg(), &[Scenario::Mixed]);
    let b = generate(&cfg(), &[Scenario::Mixed]);
    assert_eq!(a, b);
    let c = generate(&SimConfig { seed: 7, ..cfg() }, &[Scenario::Mixed]);
    assert_ne!(a.signins, c.signins);

    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let s1 = write_dataset(&a, d1.path()).expect("write");
    let s2 = write_dataset(&b, d2.path()).expect("write");
    assert_eq!(s1, s2);
    for f in &s1.files {
        let x = std::fs::read(d1.path().join(f)).expect("read");
        let y = std::fs::read(d2.path().join(f)).expect("read");
        assert!(x == y, "{} differs", f.display());
    }
}

#[test]
fn benign_output_does_not_depend_on_scenarios() {
    let benign = generate(&cfg(), &[Scenario::Benign]);
    let mixed = generate(&cfg(), &[Scenario::Mixed]);
    let all: BTreeSet<String> = mixed
        .signins
        .iter()
        .chain(&mixed.cloudtrail)
        .map(Value::to_string)
        .collect();
    for v in benign.signins.iter().chain(&benign.cloudtrail) {
        assert!(
            all.contains(&v.to_string()),
            "benign record missing from mixed: {v}"
        );
    }
    assert!(benign.truth.scenarios.is_empty());
    assert!(benign.truth.malicious_identities.is_empty());
}

// === shapes ===

const BETA_KEYS: &[&str] = &[
    "id",
    "createdDateTime",
    "userDisplayName",
    "userPrincipalName",
    "userId",
    "appId",
    "appDisplayName",
    "ipAddress",
    "clientAppUsed",
    "correlationId",
    "conditionalAccessStatus",
    "isInteractive",
    "resourceDisplayName",
    "resourceId",
    "riskDetail",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "riskEventTypes_v2",
    "status",
    "deviceDetail",
    "location",
    "appliedConditionalAccessPolicies",
    "appOwnerTenantId",
    "appTokenProtectionStatus",
    "appliedEventListeners",
    "homeTenantId",
    "homeTenantName",
    "resourceTenantId",
    "resourceOwnerTenantId",
    "resourceServicePrincipalId",
    "azureResourceId",
    "crossTenantAccessType",
    "authenticationAppDeviceDetails",
    "authenticationAppPolicyEvaluationDetails",
    "authenticationContextClassReferences",
    "authenticationDetails",
    "authenticationMethodsUsed",
    "authenticationProcessingDetails",
    "authenticationProtocol",
    "authenticationRequirement",
    "authenticationRequirementPolicies",
    "clientCredentialType",
    "conditionalAccessAudiences",
    "federatedCredentialId",
    "incomingTokenType",
    "autonomousSystemNumber",
    "globalSecureAccessIpAddress",
    "isThroughGlobalSecureAccess",
    "ipAddressFromResourceProvider",
    "isTenantRestricted",
    "networkLocationDetails",
    "privateLinkDetails",
    "flaggedForReview",
    "managedServiceIdentity",
    "mfaDetail",
    "originalRequestId",
    "originalTransferMethod",
    "processingTimeInMilliseconds",
    "sessionId",
    "sessionLifetimePolicies",
    "signInTokenProtectionStatus",
    "tokenProtectionStatusDetails",
    "uniqueTokenIdentifier",
    "tokenIssuerName",
    "tokenIssuerType",
    "servicePrincipalCredentialKeyId",
    "servicePrincipalCredentialThumbprint",
    "servicePrincipalId",
    "servicePrincipalName",
    "signInEventTypes",
    "signInIdentifier",
    "signInIdentifierType",
    "userAgent",
    "userType",
];

const CT_KEYS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
    "tlsDetails",
];

#[test]
fn every_record_has_the_documented_keys() {
    let ds = generate(&cfg(), &[Scenario::Mixed]);
    assert!(
        ds.signins.len() > 1000 && ds.cloudtrail.len() > 500,
        "{} / {}",
        ds.signins.len(),
        ds.cloudtrail.len()
    );
    for v in &ds.signins {
        for k in BETA_KEYS {
            assert!(v.get(*k).is_some(), "sign-in lacks {k}: {v}");
        }
        assert!(v.get("riskEventTypes").is_none());
        let upn = s(v, &["userPrincipalName"]);
        assert_eq!(upn, upn.to_lowercase());
        let created = s(v, &["createdDateTime"]);
        assert_eq!(created.len(), 20, "{created}");
        assert!(v["status"]["errorCode"].is_u64());
        assert!(v["autonomousSystemNumber"].is_u64());
        assert!(matches!(s(v, &["userType"]), "member" | "guest"));
        let ev = s(&v["signInEventTypes"][0], &[]);
        assert_eq!(v["isInteractive"].as_bool(), Some(ev == "interactiveUser"));
    }
    for v in &ds.cloudtrail {
        // A call a service makes on the caller's behalf has no TLS details of its own.
        let by_service = v["userIdentity"].get("invokedBy").is_some();
        for k in CT_KEYS {
            assert!(
                v.get(*k).is_some() || (by_service && *k == "tlsDetails"),
                "cloudtrail record lacks {k}: {v}"
            );
        }
        assert!(matches!(s(v, &["eventVersion"]), "1.08" | "1.09"));
        let src = s(v, &["eventSource"]);
        if matches!(
            src,
            "iam.amazonaws.com" | "sts.amazonaws.com" | "signin.amazonaws.com"
        ) {
            assert_eq!(s(v, &["awsRegion"]), "us-east-1");
        }
        if v.get("errorCode").is_some() {
            assert!(v.get("errorMessage").is_some());
        }
        let web_identity = v["userIdentity"]["sessionContext"]["webIdFederationData"]
            .get("federatedProvider")
            .is_some();
        if web_identity {
            // The CI role (GitHub Actions OIDC): a role session, never a person.
            assert_eq!(s(v, &["userIdentity", "type"]), "AssumedRole");
            assert!(
                s(v, &["userIdentity", "arn"])
                    .ends_with(":assumed-role/github-actions-deploy/GitHubActions"),
                "{v}"
            );
        } else if s(v, &["userIdentity", "type"]) == "AssumedRole" {
            let issuer = s(
                v,
                &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
            );
            assert!(
                issuer.contains(":role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_"),
                "{issuer}"
            );
            let session = s(v, &["userIdentity", "arn"])
                .rsplit('/')
                .next()
                .unwrap_or_default();
            assert!(session.ends_with("@contoso.com"), "{session}");
            assert!(v["additionalEventData"].get("SamlProviderArn").is_none());
        }
    }
}

#[test]
fn addresses_are_public_and_attack_ips_stay_in_attacks() {
    let ds = generate(&cfg(), &[Scenario::Mixed]);
    let attack: BTreeSet<&str> = ds.truth.scenarios.iter().flat_map(ids).collect();
    let bad_nets: BTreeSet<&str> = ds
        .truth
        .malicious_ips
        .iter()
        .map(|ip| slash24(ip))
        .collect();
    let private = |ip: &str| {
        let o: Vec<u8> = ip.split('.').filter_map(|x| x.parse().ok()).collect();
        o.len() != 4
            || o[0] == 10
            || o[0] == 127
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168)
            || (o[0] == 100 && (64..128).contains(&o[1]))
    };
    for (v, ip, id) in ds
        .signins
        .iter()
        .map(|v| (v, s(v, &["ipAddress"]), s(v, &["id"])))
        .chain(
            ds.cloudtrail
                .iter()
                .map(|v| (v, s(v, &["sourceIPAddress"]), s(v, &["eventID"]))),
        )
    {
        // A service acting for the caller (CloudFormation) is named, as CloudTrail does.
        if ip == "cloudformation.amazonaws.com" {
            assert_eq!(s(v, &["userIdentity", "invokedBy"]), ip);
            continue;
        }
        assert!(!private(ip), "private address {ip}: {v}");
        if !attack.contains(id) {
            assert!(
                !bad_nets.contains(slash24(ip)),
                "benign record uses an attack /24: {v}"
            );
        }
    }
}

// === ground truth against the records ===

#[test]
fn password_spray_truth() {
    let ds = generate(&cfg(), &[Scenario::PasswordSpray]);
    let tr = truth_of(&ds, "password-spray");
    let recs = scenario_signins(&ds, tr);
    assert!(max_spray(&recs, |ip| slash24(ip).to_owned(), 5 * 60_000) >= 20);
    assert!(
        recs.iter()
            .all(|v| s(v, &["clientAppUsed"]) == "Other clients"
                && s(v, &["authenticationProtocol"]) == "ropc")
    );
    assert!(recs.iter().any(|v| err(v) == 50053));
    let nets: BTreeSet<&str> = tr.ips.iter().map(|ip| slash24(ip)).collect();
    assert_eq!(nets.len(), 1);
    // Exactly one success from the spraying /24 in the whole dataset: the victim's.
    let wins: Vec<&Value> = ds
        .signins
        .iter()
        .filter(|v| err(v) == 0 && nets.contains(slash24(s(v, &["ipAddress"]))))
        .collect();
    assert_eq!(wins.len(), 1);
    assert_eq!(
        tr.identities,
        vec![s(wins[0], &["userPrincipalName"]).to_owned()]
    );
    assert_eq!(
        s(wins[0], &["authenticationRequirement"]),
        "singleFactorAuthentication"
    );
    assert!(tr.expected_min_score >= 100.0);
}

#[test]
fn mfa_fatigue_truth() {
    let ds = generate(&cfg(), &[Scenario::MfaFatigue]);
    let tr = truth_of(&ds, "mfa-fatigue");
    let recs = scenario_signins(&ds, tr);
    let refused: Vec<&&Value> = recs.iter().filter(|v| err(v) == 500121).collect();
    assert_eq!(refused.len(), 8);
    // Entra's own words for a push the user declined or did not answer.
    for v in &refused {
        let details = s(v, &["status", "additionalDetails"]);
        assert!(
            details == "MFA denied; user declined the authentication"
                || details == "MFA denied; user did not respond to mobile app notification",
            "{details}"
        );
        assert_eq!(
            s(v, &["status", "failureReason"]),
            "Authentication failed during strong authentication request."
        );
    }
    let first = refused
        .iter()
        .map(|v| t(v, "createdDateTime"))
        .min()
        .unwrap();
    let last = refused
        .iter()
        .map(|v| t(v, "createdDateTime"))
        .max()
        .unwrap();
    assert!(last - first <= 10 * 60_000, "within the fatigue window");
    // Then approved from the same IP, then the AWS console through Identity Center.
    let approved: Vec<&&Value> = recs.iter().filter(|v| err(v) == 0).collect();
    assert!(approved.iter().all(|v| t(v, "createdDateTime") > last));
    assert!(approved.iter().all(|v| s(v, &["ipAddress"]) == tr.ips[0]));
    assert_eq!(tr.cloudtrail_event_ids.len(), 3);
    assert!(tr.expected_min_score >= 100.0);
}

#[test]
fn imap_new_country_truth() {
    let ds = generate(&cfg(), &[Scenario::ImapNewCountry]);
    let tr = truth_of(&ds, "imap-new-country");
    let recs = scenario_signins(&ds, tr);
    assert!(recs.len() >= 2);
    assert!(
        recs.iter()
            .all(|v| s(v, &["clientAppUsed"]) == "IMAP4" && err(v) == 0)
    );
    let country = s(recs[0], &["location", "countryOrRegion"]);
    // The victim never signs in from that country otherwise.
    let upn = &tr.identities[0];
    assert!(
        ds.signins
            .iter()
            .all(|v| s(v, &["userPrincipalName"]) != upn
                || s(v, &["location", "countryOrRegion"]) != country
                || recs.iter().any(|r| r["id"] == v["id"]))
    );
    assert!(tr.expected_min_score >= 100.0);
}

#[test]
fn entra_traps_in_every_tenant() {
    let ds = generate(&cfg(), &[Scenario::Benign]);
    let kind = |k: &str| {
        ds.truth
            .benign_trap_kinds
            .iter()
            .find(|(_, v)| v.as_str() == k)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no {k} trap"))
    };
    let denier = kind("mfa_denier");
    let mail_room = kind("mail_room");
    let of = |upn: &str| -> Vec<&Value> {
        ds.signins
            .iter()
            .filter(|v| s(v, &["userPrincipalName"]) == upn)
            .collect()
    };
    // One or two refusals at a time, never near the fatigue threshold.
    let refused: Vec<i64> = of(&denier)
        .iter()
        .filter(|v| err(v) == 500121)
        .map(|v| t(v, "createdDateTime"))
        .collect();
    assert!(!refused.is_empty());
    for &r in &refused {
        assert!(
            refused
                .iter()
                .filter(|&&x| (x - r).abs() <= 10 * 60_000)
                .count()
                <= 2
        );
    }
    let eas = of(&mail_room);
    assert!(eas.len() >= 8);
    assert!(
        eas.iter()
            .all(|v| s(v, &["clientAppUsed"]) == "Exchange ActiveSync" && err(v) == 0)
    );
}

#[test]
fn anonymizer_truth() {
    let ds = generate(&cfg(), &[Scenario::AnonymizerSignin]);
    let tr = truth_of(&ds, "anonymizer-signin");
    let recs = scenario_signins(&ds, tr);
    assert!(!recs.is_empty());
    for v in recs {
        assert_eq!(err(v), 0);
        assert_eq!(
            v["riskEventTypes_v2"],
            serde_json::json!(["anonymizedIPAddress"])
        );
        assert!(matches!(
            s(v, &["riskLevelDuringSignIn"]),
            "high" | "medium"
        ));
        assert_eq!(s(v, &["riskState"]), "atRisk");
        assert!(
            tr.identities
                .contains(&s(v, &["userPrincipalName"]).to_owned())
        );
    }
    assert!(tr.expected_min_score >= 100.0);
}

#[test]
fn cross_tenant_truth() {
    let ds = generate(&cfg(), &[Scenario::CrossTenantSfa]);
    let tr = truth_of(&ds, "cross-tenant-sfa");
    let si = scenario_signins(&ds, tr);
    let ct = scenario_trail(&ds, tr);
    let g = si.first().expect("guest sign-in");
    assert_eq!(err(g), 0);
    assert_eq!(s(g, &["userType"]), "guest");
    assert_eq!(
        s(g, &["authenticationRequirement"]),
        "singleFactorAuthentication"
    );
    assert_ne!(s(g, &["homeTenantId"]), s(g, &["resourceTenantId"]));
    assert!(
        !ds.correlate_toml.contains(s(g, &["homeTenantId"])),
        "foreign tenant must not be a partner"
    );
    let upn = s(g, &["userPrincipalName"]);
    assert_eq!(tr.identities, vec![upn.to_owned()]);
    let login = ct
        .iter()
        .find(|v| s(v, &["eventName"]) == "ConsoleLogin")
        .expect("console login");
    assert_eq!(s(login, &["sourceIPAddress"]), s(g, &["ipAddress"]));
    assert_eq!(s(login, &["additionalEventData", "MFAUsed"]), "No");
    assert_eq!(s(login, &["responseElements", "ConsoleLogin"]), "Success");
    let dt = t(login, "eventTime") - t(g, "createdDateTime");
    assert!(dt > 0 && dt < 2 * 3_600_000);
    let arn = s(login, &["userIdentity", "arn"]);
    assert!(
        ds.identities_toml
            .contains(&format!("name = \"{upn}\"\naws = [\"{arn}\"]")),
        "{}",
        ds.identities_toml
    );
}

#[test]
fn aws_recon_truth() {
    let ds = generate(&cfg(), &[Scenario::AwsRecon]);
    let tr = truth_of(&ds, "aws-recon");
    let ct = scenario_trail(&ds, tr);
    let (distinct, denied) = max_recon(&ct);
    assert!(distinct >= 4 && denied, "{distinct} {denied}");
    let key = s(ct[0], &["userIdentity", "accessKeyId"]);
    assert!(key.starts_with("AKIA"));
    assert!(s(ct[0], &["userAgent"]).starts_with("aws-cli/2."));
    let arn = s(ct[0], &["userIdentity", "arn"]);
    assert!(ds.identities_toml.contains(&format!(
        "name = \"{}\"\naws = [\"{arn}\"]",
        tr.identities[0]
    )));
    // The key is used benignly too, but never from the attack IP before.
    let ip = s(ct[0], &["sourceIPAddress"]);
    let benign_uses: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["userIdentity", "accessKeyId"]) == key && !ct.contains(v))
        .collect();
    assert!(!benign_uses.is_empty());
    assert!(benign_uses.iter().all(|v| s(v, &["sourceIPAddress"]) != ip));
    let messages: BTreeSet<&str> = ct
        .iter()
        .filter_map(|v| v.get("errorMessage").and_then(Value::as_str))
        .collect();
    assert!(messages.contains("You are not authorized to perform this operation."));
    assert!(messages.iter().any(|m| m.starts_with("User: arn:aws:iam::")
        && m.contains("is not authorized to perform: iam:ListUsers")));
    assert!(
        ct.iter()
            .any(|v| s(v, &["errorCode"]) == "Client.UnauthorizedOperation")
    );
}

#[test]
fn spray_to_aws_truth() {
    let ds = generate(&cfg(), &[Scenario::SprayToAws]);
    let tr = truth_of(&ds, "spray-to-aws");
    let si = scenario_signins(&ds, tr);
    let ct = scenario_trail(&ds, tr);
    assert!(max_spray(&si, str::to_owned, 10 * 60_000) >= 10);
    let ip = &tr.ips[0];
    let login = ct
        .iter()
        .find(|v| s(v, &["eventName"]) == "ConsoleLogin")
        .expect("login");
    assert_eq!(s(login, &["sourceIPAddress"]), ip);
    assert_eq!(s(login, &["additionalEventData", "MFAUsed"]), "No");
    assert_eq!(s(login, &["userIdentity", "type"]), "IAMUser");
    let last_spray = si
        .iter()
        .map(|v| t(v, "createdDateTime"))
        .max()
        .unwrap_or_default();
    let dt = t(login, "eventTime") - last_spray;
    assert!(dt > 0 && dt < 24 * 3_600_000);
    assert!(max_recon(&ct).0 >= 4);
    // The identity is the sprayed person linked to the IAM user.
    let sprayed: BTreeSet<&str> = si.iter().map(|v| s(v, &["userPrincipalName"])).collect();
    assert!(sprayed.contains(tr.identities[0].as_str()));
}

#[test]
fn impossible_travel_truth() {
    let ds = generate(&cfg(), &[Scenario::ImpossibleTravel]);
    let tr = truth_of(&ds, "impossible-travel");
    let si = scenario_signins(&ds, tr);
    let ct = scenario_trail(&ds, tr);
    let login = ct
        .iter()
        .find(|v| s(v, &["eventName"]) == "ConsoleLogin")
        .expect("login");
    let ip = s(login, &["sourceIPAddress"]);
    assert_eq!(s(login, &["additionalEventData", "MFAUsed"]), "No");
    // The AWS IP is located through Entra sign-ins from the same IP.
    let located = ds
        .signins
        .iter()
        .find(|v| s(v, &["ipAddress"]) == ip)
        .expect("IP seen in Entra");
    let home = si.iter().find(|v| err(v) == 0).expect("home sign-in");
    assert_eq!(s(home, &["userPrincipalName"]), tr.identities[0]);
    let km = haversine_km(coords(home), coords(located));
    let hours = (t(login, "eventTime") - t(home, "createdDateTime")) as f64 / 3_600_000.0;
    assert!(hours > 0.0 && km / hours > 1000.0, "{km} km in {hours} h");
    // The victim's latest Entra sign-in before the login is the European one.
    let latest = ds
        .signins
        .iter()
        .filter(|v| {
            s(v, &["userPrincipalName"]) == tr.identities[0]
                && t(v, "createdDateTime") <= t(login, "eventTime")
        })
        .max_by_key(|v| t(v, "createdDateTime"))
        .expect("some sign-in");
    assert_ne!(s(latest, &["ipAddress"]), ip);
}

#[test]
fn mixed_has_every_attack_with_distinct_victims() {
    let ds = generate(&cfg(), &[Scenario::Mixed]);
    // Everything but unused-region, which needs a week of account history first.
    assert_eq!(mixed_attacks(24), Scenario::ATTACKS.len() - 1);
    assert_eq!(ds.truth.scenarios.len(), mixed_attacks(24));
    assert_eq!(ds.truth.malicious_identities.len(), mixed_attacks(24));
    for tr in &ds.truth.scenarios {
        assert!(tr.expected_min_score >= 100.0, "{}", tr.scenario);
        assert!(tr.start_ms >= DEFAULT_START && tr.end_ms < DEFAULT_START + 24 * 3_600_000);
    }
    assert!(
        ds.truth
            .malicious_identities
            .is_disjoint(&ds.truth.benign_traps)
    );
    let kinds: BTreeSet<&str> = ds
        .truth
        .benign_trap_kinds
        .values()
        .map(String::as_str)
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ci_new_region",
            "key_rotation",
            "mail_room",
            "mfa_denier",
            "partner_guest",
            "service_account",
            "ses_sender",
            "traveller",
            "vpn"
        ])
    );
}

// === benign traffic does not raise strong signals ===

#[test]
fn benign_traffic_stays_quiet() {
    let ds = generate(&SimConfig { hours: 72, ..cfg() }, &[Scenario::Benign]);
    let refs: Vec<&Value> = ds.signins.iter().collect();
    assert!(max_spray(&refs, |ip| slash24(ip).to_owned(), 10 * 60_000) < 3);
    let mut travellers = BTreeMap::new();
    for v in &ds.signins {
        if err(v) != 0 {
            continue;
        }
        let ip = s(v, &["ipAddress"]);
        let level = s(v, &["riskLevelDuringSignIn"]);
        let state = s(v, &["riskState"]);
        let events: Vec<&str> = v["riskEventTypes_v2"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if ip.starts_with("198.51.100.") {
            continue; // trusted VPN egress
        }
        assert!(
            !matches!(level, "high" | "medium")
                && !matches!(state, "atRisk" | "confirmedCompromised"),
            "{v}"
        );
        if !events.is_empty() {
            assert_eq!(level, "low");
            assert!(
                events
                    .iter()
                    .all(|e| matches!(*e, "unlikelyTravel" | "unfamiliarFeatures"))
            );
            *travellers
                .entry(s(v, &["userPrincipalName"]).to_owned())
                .or_insert(0) += 1;
        }
        if s(v, &["homeTenantId"]) != s(v, &["resourceTenantId"]) {
            assert_eq!(s(v, &["homeTenantId"]), world::PARTNER.id);
        }
    }
    assert!(
        !travellers.is_empty() && travellers.values().all(|n| *n == 1),
        "{travellers:?}"
    );
    let mut recon_bursts = 0;
    for v in &ds.cloudtrail {
        if s(v, &["eventName"]) == "ConsoleLogin" && s(v, &["userIdentity", "type"]) == "IAMUser" {
            assert_eq!(s(v, &["additionalEventData", "MFAUsed"]), "Yes", "{v}");
        }
        if s(v, &["eventName"]) == "ListRoles" {
            recon_bursts += 1;
            assert!(s(v, &["userIdentity", "userName"]).starts_with("svc-"));
        }
    }
    // Inventory twice a day per account: 0.5^(12h/24h) decay keeps a quarter-scored sum < 100.
    assert!(
        recon_bursts <= 6 * ds.truth.accounts.len(),
        "{recon_bursts}"
    );
    let refs: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| !s(v, &["userIdentity", "userName"]).starts_with("svc-"))
        .collect();
    assert!(max_recon(&refs).0 < 4);
}

#[test]
fn arrival_delays_are_rare_and_bounded() {
    let ds = generate(&cfg(), &[Scenario::Benign]);
    assert_eq!(ds.signin_arrival_delay_ms.len(), ds.signins.len());
    let late: Vec<i64> = ds
        .signin_arrival_delay_ms
        .iter()
        .copied()
        .filter(|d| *d > 0)
        .collect();
    let share = late.len() as f64 / ds.signins.len() as f64;
    assert!((0.01..0.03).contains(&share), "{share}");
    assert!(late.iter().all(|d| (300_000..=1_800_000).contains(d)));
}

// === files ===

#[test]
fn files_look_like_graph_pages_and_trails() {
    let ds = generate(&SimConfig { hours: 48, ..cfg() }, &[Scenario::Mixed]);
    let dir = tempfile::tempdir().expect("tempdir");
    let sum = write_dataset(&ds, dir.path()).expect("write");
    assert!(sum.signin_pages >= 2);
    let mut seen = 0;
    let mut prev = i64::MAX;
    for i in 1..=sum.signin_pages {
        let text = std::fs::read_to_string(dir.path().join(format!("entra/signins-{i:04}.json")))
            .expect("page");
        let page: Value = serde_json::from_str(&text).expect("json");
        assert!(s(&page, &["@odata.context"]).ends_with("$metadata#auditLogs/signIns"));
        assert_eq!(page.get("@odata.nextLink").is_some(), i < sum.signin_pages);
        let vals = page["value"].as_array().expect("value");
        assert!(vals.len() <= GRAPH_PAGE_SIZE);
        for v in vals {
            let ts = t(v, "createdDateTime");
            assert!(ts <= prev, "pages are newest first");
            prev = ts;
        }
        seen += vals.len();
    }
    assert_eq!(seen, ds.signins.len());

    let mut records = 0;
    for f in sum
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "gz"))
    {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parts: Vec<&str> = name.trim_end_matches(".json.gz").split('_').collect();
        assert_eq!(parts.len(), 5, "{name}");
        assert_eq!(parts[1], "CloudTrail");
        assert_eq!(parts[3].len(), 14);
        assert!(
            f.starts_with(
                Path::new("cloudtrail/AWSLogs")
                    .join(parts[0])
                    .join("CloudTrail")
                    .join(parts[2])
            )
        );
        let mut gz =
            flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join(f)).expect("open"));
        let mut text = String::new();
        gz.read_to_string(&mut text).expect("gunzip");
        let body: Value = serde_json::from_str(&text).expect("json");
        let recs = body["Records"].as_array().expect("Records");
        assert!(!recs.is_empty() && recs.len() <= TRAIL_FILE_RECORDS);
        for r in recs {
            assert_eq!(s(r, &["recipientAccountId"]), parts[0]);
            assert_eq!(s(r, &["awsRegion"]), parts[2]);
        }
        records += recs.len();
    }
    assert_eq!(records, ds.cloudtrail.len());

    // Risk detections: every state once, newest update first, pages of at most 500.
    assert!(sum.risk_detection_pages >= 1 && sum.risk_detections == ds.risk_detections.len());
    let mut states = Vec::new();
    let mut prev = i64::MAX;
    for i in 1..=sum.risk_detection_pages {
        let text =
            std::fs::read_to_string(dir.path().join(format!("entra/riskdetections-{i:04}.json")))
                .expect("page");
        let page: Value = serde_json::from_str(&text).expect("json");
        assert!(s(&page, &["@odata.context"]).ends_with("$metadata#riskDetections"));
        assert_eq!(
            page.get("@odata.nextLink").is_some(),
            i < sum.risk_detection_pages
        );
        let vals = page["value"].as_array().expect("value");
        assert!(vals.len() <= RISK_DETECTION_PAGE_SIZE);
        for v in vals {
            let ts = t(v, "lastUpdatedDateTime");
            assert!(ts <= prev, "newest update first");
            prev = ts;
            states.push((s(v, &["id"]).to_owned(), ts));
        }
    }
    let mut expected: Vec<(String, i64)> = ds
        .risk_detections
        .iter()
        .map(|v| (s(v, &["id"]).to_owned(), t(v, "lastUpdatedDateTime")))
        .collect();
    expected.sort();
    states.sort();
    assert_eq!(states, expected);
    assert!(
        states.windows(2).any(|w| w[0].0 == w[1].0),
        "a reviewed detection is written once per state"
    );

    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("truth.json")).expect("truth"),
    )
    .expect("json");
    assert_eq!(
        truth["scenarios"].as_array().map(Vec::len),
        Some(mixed_attacks(48))
    );
    let correlate = std::fs::read_to_string(dir.path().join("correlate.toml")).expect("correlate");
    assert!(
        correlate.contains("[correlate]")
            && correlate.contains("198.51.100.0/24")
            && correlate.contains(world::PARTNER.id)
    );
    assert!(correlate.contains(":user/svc-backup\""));
    assert!(
        std::fs::read_to_string(dir.path().join("identities.toml"))
            .expect("ids")
            .contains("[[identity]]")
    );
}

// === stream ===

#[test]
fn stream_yields_valid_deterministic_records() {
    let cfg = SimConfig {
        stream_records: 20_000,
        ..cfg()
    };
    let a: Vec<SimRecord> = stream(&cfg).collect();
    let b: Vec<SimRecord> = stream(&cfg).collect();
    assert_eq!(a.len(), 20_000);
    assert!(a == b);
    let signins = a
        .iter()
        .filter(|r| matches!(r, SimRecord::SignIn(_)))
        .count();
    assert!((8_000..12_000).contains(&signins), "{signins}");
    let mut prev = 0;
    let mut ids = BTreeSet::new();
    for r in &a {
        let v: Value = serde_json::from_str(r.json()).expect("valid json");
        let (key, id) = match r {
            SimRecord::SignIn(_) => {
                for k in BETA_KEYS {
                    assert!(v.get(*k).is_some(), "{k}");
                }
                ("createdDateTime", s(&v, &["id"]).to_owned())
            }
            SimRecord::CloudTrail(_) => ("eventTime", s(&v, &["eventID"]).to_owned()),
        };
        let ts = t(&v, key);
        assert!(ts >= prev);
        prev = ts;
        assert!(ids.insert(id), "ids are unique");
    }
}

// === token endpoint: certificate credentials ===

mod client_assertions {
    use std::sync::Mutex;

    use serde_json::{Value, json};

    use crate::assertion::{self, Rejection, TestClientCert};
    use crate::loopback::SimRequest;
    use crate::token::{TokenSimConfig, TokenState, handle};

    const CLIENT: &str = "66666666-7777-8888-9999-aaaaaaaaaaaa";
    const AUD: &str =
        "https://127.0.0.1:4443/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(now: i64) -> Value {
        json!({"aud": AUD, "exp": now + 300, "iss": CLIENT, "jti": "a-jti", "nbf": now, "sub": CLIENT})
    }

    fn header(c: &TestClientCert) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "x5t": c.x5t()})
    }

    fn code(r: Result<assertion::Accepted, Rejection>) -> (u16, &'static str, u32) {
        match r {
            Ok(a) => panic!("accepted: {a:?}"),
            Err(r) => (r.status, r.error, r.code),
        }
    }

    #[test]
    fn valid_assertions_are_accepted() {
        let c = TestClientCert::generate("sim-client").expect("cert");
        let reg = [c.registered()];
        let now = now();
        // As azure_identity sends it: RS256, x5t in standard base64 with padding.
        let a = assertion::verify(&c.assertion(CLIENT, AUD, now), CLIENT, AUD, &reg, now)
            .expect("azure_identity style");
        assert_eq!(a.thumbprint, reg[0].thumbprint());
        // As documented: x5t in base64url.
        let jwt = c.sign(&header(&c), &claims(now));
        assert_eq!(
            assertion::verify(&jwt, CLIENT, AUD, &reg, now)
                .expect("base64url x5t")
                .jti,
            "a-jti"
        );
        // The newer form: PS256 with x5t#S256.
        let jwt = c.sign(
            &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": c.x5t_s256()}),
            &claims(now),
        );
        assertion::verify(&jwt, CLIENT, AUD, &reg, now).expect("PS256");
        // Within the clock skew on both ends.
        let mut cl = claims(now);
        cl["exp"] = json!(now - 60);
        cl["nbf"] = json!(now - 400);
        assertion::verify(&c.sign(&header(&c), &cl), CLIENT, AUD, &reg, now).expect("skew");
        // The certificate may also be registered from PEM.
        let pem_reg = [assertion::RegisteredCert::new(c.cert_pem().as_bytes()).expect("pem")];
        assertion::verify(&c.assertion(CLIENT, AUD, now), CLIENT, AUD, &pem_reg, now)
            .expect("pem registration");
    }

    #[test]
    fn bad_assertions_are_refused_like_entra() {
        let c = TestClientCert::generate("sim-client").expect("cert");
        let other = TestClientCert::generate("someone-else").expect("cert");
        let reg = [c.registered()];
        let now = now();
        let good = c.sign(&header(&c), &claims(now));

        // Tampered: claims changed after signing, and a flipped signature byte.
        let parts: Vec<&str> = good.split('.').collect();
        let mut forged = claims(now);
        forged["sub"] = json!("attacker");
        let forged_b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
        };
        let tampered = format!("{}.{}.{}", parts[0], forged_b64, parts[2]);
        assert_eq!(
            code(assertion::verify(&tampered, CLIENT, AUD, &reg, now)),
            (401, "invalid_client", 700027)
        );
        let mut sig: Vec<char> = parts[2].chars().collect();
        sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
        let flipped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            sig.into_iter().collect::<String>()
        );
        assert_eq!(
            code(assertion::verify(&flipped, CLIENT, AUD, &reg, now)),
            (401, "invalid_client", 700027)
        );
        // Signed by another key while claiming the registered thumbprint.
        let impostor = other.sign(&header(&c), &claims(now));
        assert_eq!(
            code(assertion::verify(&impostor, CLIENT, AUD, &reg, now)),
            (401, "invalid_client", 700027)
        );
        // Wrong thumbprint: a certificate that is not registered.
        let unregistered = other.sign(&header(&other), &claims(now));
        let r = assertion::verify(&unregistered, CLIENT, AUD, &reg, now);
        assert!(
            r.as_ref()
                .is_err_and(|r| r.description.contains("not registered on application")),
            "{r:?}"
        );
        assert_eq!(code(r), (401, "invalid_client", 700027));
        // Nothing registered at all.
        assert_eq!(
            code(assertion::verify(&good, CLIENT, AUD, &[], now)),
            (401, "invalid_client", 700027)
        );
        // Wrong audience (another tenant's endpoint).
        let mut cl = claims(now);
        cl["aud"] = json!(AUD.replace("11111111", "99999999"));
        assert_eq!(
            code(assertion::verify(
                &c.sign(&header(&c), &cl),
                CLIENT,
                AUD,
                &reg,
                now
            )),
            (401, "invalid_client", 700023)
        );
        // Expired, and not valid yet.
        for (exp, nbf) in [(now - 400, now - 700), (now + 900, now + 600)] {
            let mut cl = claims(now);
            cl["exp"] = json!(exp);
            cl["nbf"] = json!(nbf);
            assert_eq!(
                code(assertion::verify(
                    &c.sign(&header(&c), &cl),
                    CLIENT,
                    AUD,
                    &reg,
                    now
                )),
                (401, "invalid_client", 700024),
                "exp {exp} nbf {nbf}"
            );
        }
        // iss / sub not the client.
        for k in ["iss", "sub"] {
            let mut cl = claims(now);
            cl[k] = json!("00000000-0000-0000-0000-000000000000");
            assert_eq!(
                code(assertion::verify(
                    &c.sign(&header(&c), &cl),
                    CLIENT,
                    AUD,
                    &reg,
                    now
                )),
                (401, "invalid_client", 700021),
                "{k}"
            );
        }
        // No jti, no exp.
        for k in ["jti", "exp"] {
            let mut cl = claims(now);
            cl.as_object_mut().map(|m| m.remove(k));
            assert_eq!(
                code(assertion::verify(
                    &c.sign(&header(&c), &cl),
                    CLIENT,
                    AUD,
                    &reg,
                    now
                )),
                (400, "invalid_request", 50027),
                "{k}"
            );
        }
        // alg none / HS256 and garbage.
        for alg in ["none", "HS256"] {
            let h = json!({"alg": alg, "typ": "JWT", "x5t": c.x5t()});
            assert_eq!(
                code(assertion::verify(
                    &c.sign(&h, &claims(now)),
                    CLIENT,
                    AUD,
                    &reg,
                    now
                )),
                (401, "invalid_client", 700027),
                "{alg}"
            );
        }
        assert_eq!(
            code(assertion::verify("not-a-jwt", CLIENT, AUD, &reg, now)),
            (400, "invalid_request", 50027)
        );
    }

    fn post(
        cfg: &TokenSimConfig,
        state: &Mutex<TokenState>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = handle(
            cfg,
            state,
            SimRequest {
                method: "POST".into(),
                path: format!("/{}/oauth2/v2.0/token", cfg.tenant_id),
                query: String::new(),
                headers: vec![("host".into(), "127.0.0.1:4443".into())],
                body: body.into_bytes(),
            },
        );
        (
            resp.status,
            serde_json::from_slice(&resp.body).expect("json body"),
        )
    }

    #[test]
    fn token_endpoint_takes_a_secret_or_an_assertion() {
        let c = TestClientCert::generate("sim-client").expect("cert");
        let cfg = TokenSimConfig {
            client_certificates: vec![c.registered()],
            ..TokenSimConfig::default()
        };
        let state = Mutex::new(TokenState::default());
        let scope = "https://graph.microsoft.com/.default";
        let base = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", scope),
        ];
        let with = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
            base.iter()
                .chain(extra.iter())
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect()
        };
        let send = |form: Vec<(&'static str, String)>| {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&cfg, &state, &f)
        };
        let jwt = c.assertion(CLIENT, AUD, now());
        let (status, body) = send(with(&[
            ("client_assertion_type", assertion::JWT_BEARER),
            ("client_assertion", &jwt),
        ]));
        assert_eq!(status, 200, "{body}");
        assert!(
            body["access_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("sim."))
        );
        let (status, body) = send(with(&[("client_secret", "sim-secret")]));
        assert_eq!(status, 200, "{body}");

        let err = |(status, body): (u16, Value)| {
            (
                status,
                body["error"].as_str().unwrap_or("").to_owned(),
                body["error_codes"][0].as_u64().unwrap_or(0),
            )
        };
        assert_eq!(
            err(send(with(&[]))),
            (401, "invalid_client".into(), 7000216)
        );
        assert_eq!(
            err(send(with(&[
                ("client_assertion_type", "urn:something-else"),
                ("client_assertion", &jwt),
            ]))),
            (400, "invalid_request".into(), 7000216)
        );
        // Unknown client: the application is not in the directory.
        let mut f = with(&[
            ("client_assertion_type", assertion::JWT_BEARER),
            ("client_assertion", &jwt),
        ]);
        f[1].1 = "00000000-1111-2222-3333-444444444444".to_owned();
        assert_eq!(err(send(f)), (400, "unauthorized_client".into(), 700016));
        // An assertion for another endpoint (aud) is refused with the AADSTS description.
        let elsewhere = c.assertion(
            CLIENT,
            "https://login.microsoftonline.com/x/oauth2/v2.0/token",
            now(),
        );
        let (status, body) = send(with(&[
            ("client_assertion_type", assertion::JWT_BEARER),
            ("client_assertion", &elsewhere),
        ]));
        assert_eq!(status, 401);
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS700023: ")),
            "{body}"
        );
    }

    // === federated credentials (workload identity) ===

    const ISSUER: &str = "https://oidc.example/clusters/prod";
    const SA: &str = "system:serviceaccount:security:crosswind";
    const EXCHANGE: &str = assertion::DEFAULT_FEDERATED_AUDIENCE;

    fn fed_code(r: Result<assertion::FederatedAccepted, Rejection>) -> (u16, u32) {
        match r {
            Ok(a) => panic!("accepted: {a:?}"),
            Err(r) => (r.status, r.code),
        }
    }

    #[test]
    fn federated_tokens_match_issuer_subject_audience_and_key() {
        let issuer = assertion::TestOidcIssuer::generate(ISSUER).expect("issuer");
        let creds = [issuer.credential(SA)];
        let now = now();
        let ok = assertion::verify_federated(
            &issuer.service_account_token(SA, &[EXCHANGE], 3600, "sa-1"),
            &creds,
            now,
        )
        .expect("valid service-account token");
        assert_eq!(ok.subject, SA);
        assert_eq!(ok.jti.as_deref(), Some("sa-1"));
        // An audience list with another entry first.
        let multi =
            issuer.service_account_token(SA, &["https://kubernetes.default", EXCHANGE], 60, "y");
        assertion::verify_federated(&multi, &creds, now).expect("second audience");

        // Wrong subject, audience or issuer: no matching federated identity record.
        let wrong_sub = issuer.service_account_token(
            "system:serviceaccount:default:other",
            &[EXCHANGE],
            60,
            "z",
        );
        assert_eq!(
            fed_code(assertion::verify_federated(&wrong_sub, &creds, now)),
            (401, 70021)
        );
        let wrong_aud = issuer.service_account_token(SA, &["api://something-else"], 60, "z");
        assert_eq!(
            fed_code(assertion::verify_federated(&wrong_aud, &creds, now)),
            (401, 70021)
        );
        let other_issuer =
            assertion::TestOidcIssuer::generate("https://oidc.example/other").expect("issuer");
        let foreign = other_issuer.service_account_token(SA, &[EXCHANGE], 60, "z");
        assert_eq!(
            fed_code(assertion::verify_federated(&foreign, &creds, now)),
            (401, 70021)
        );
        // The right issuer URL signed by another key: signature validation fails.
        let impostor = assertion::TestOidcIssuer::generate(ISSUER).expect("issuer");
        let forged = impostor.service_account_token(SA, &[EXCHANGE], 60, "z");
        assert_eq!(
            fed_code(assertion::verify_federated(&forged, &creds, now)),
            (401, 50013)
        );
        // A tampered payload (subject swapped after signing).
        let good = issuer.service_account_token(
            "system:serviceaccount:default:other",
            &[EXCHANGE],
            60,
            "z",
        );
        let parts: Vec<&str> = good.split('.').collect();
        let payload =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
                .expect("b64");
        let payload = String::from_utf8(payload)
            .expect("utf8")
            .replace("default:other", "security:crosswind");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload),
            parts[2]
        );
        assert_eq!(
            fed_code(assertion::verify_federated(&tampered, &creds, now)),
            (401, 50013)
        );
        // Expired beyond the 5 minute skew; within the skew it still passes. Tokens take their
        // times from the clock when made, so each is checked against the clock after it was
        // made (the `now` above is seconds old on a loaded machine).
        let expired = issuer.service_account_token(SA, &[EXCHANGE], -301, "z");
        assert_eq!(
            fed_code(assertion::verify_federated(&expired, &creds, self::now())),
            (401, 700024)
        );
        let just = issuer.service_account_token(SA, &[EXCHANGE], -200, "z");
        assertion::verify_federated(&just, &creds, self::now()).expect("within skew");
        assert_eq!(
            fed_code(assertion::verify_federated("a.b", &creds, now)),
            (400, 50027)
        );
    }

    #[test]
    fn token_endpoint_routes_federated_and_certificate_assertions() {
        let c = TestClientCert::generate("sim-client").expect("cert");
        let issuer = assertion::TestOidcIssuer::generate(ISSUER).expect("issuer");
        let cfg = TokenSimConfig {
            client_certificates: vec![c.registered()],
            federated_credentials: vec![issuer.credential(SA)],
            ..TokenSimConfig::default()
        };
        let state = Mutex::new(TokenState::default());
        let send = |jwt: &str| {
            post(
                &cfg,
                &state,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT),
                    ("scope", "https://graph.microsoft.com/.default"),
                    ("client_assertion_type", assertion::JWT_BEARER),
                    ("client_assertion", jwt),
                ],
            )
        };
        let (status, body) = send(&issuer.service_account_token(SA, &[EXCHANGE], 3600, "sa-1"));
        assert_eq!(status, 200, "{body}");
        let (status, body) = send(&c.assertion(CLIENT, AUD, now()));
        assert_eq!(status, 200, "{body}");
        let (status, body) = send(&issuer.service_account_token(
            "system:serviceaccount:x:y",
            &[EXCHANGE],
            3600,
            "sa-2",
        ));
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        let d = body["error_description"].as_str().unwrap_or("");
        assert!(
            d.starts_with("AADSTS70021: No matching federated identity record"),
            "{d}"
        );
        assert!(d.contains("system:serviceaccount:x:y"), "{d}");
        let (status, body) = send(&issuer.service_account_token(SA, &[EXCHANGE], -3600, "sa-3"));
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error_codes"][0], 700024);
        let st = state.lock().expect("state");
        assert_eq!(st.federated_jtis, vec!["sa-1".to_owned()]);
        assert_eq!(st.assertions_accepted, 1);
        drop(st);
        // Without federated credentials, a token that names no certificate is refused as before.
        let plain = TokenSimConfig {
            client_certificates: vec![c.registered()],
            ..TokenSimConfig::default()
        };
        let (status, body) = post(
            &plain,
            &state,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_assertion_type", assertion::JWT_BEARER),
                (
                    "client_assertion",
                    &issuer.service_account_token(SA, &[EXCHANGE], 3600, "sa-4"),
                ),
            ],
        );
        assert_eq!(
            (status, body["error_codes"][0].as_u64()),
            (401, Some(700027)),
            "{body}"
        );
    }
}

mod managed_identity {
    use std::sync::Mutex;

    use serde_json::Value;

    use crate::loopback::SimRequest;
    use crate::msi::{MsiSimConfig, MsiState, handle};
    use crate::token::{TokenSimConfig, TokenState};

    #[test]
    fn app_service_endpoint_checks_header_version_resource_and_identity() {
        let cfg = MsiSimConfig {
            identity_header: "hdr".into(),
            resources: vec!["https://graph.microsoft.com".into()],
            system_client_id: "sys".into(),
            user_assigned_client_ids: vec!["uai".into()],
        };
        let token_cfg = TokenSimConfig::default();
        let tokens = Mutex::new(TokenState::default());
        let state = Mutex::new(MsiState::default());
        let get = |header: Option<&str>, query: &str| -> (u16, Value) {
            let resp = handle(
                &cfg,
                &token_cfg,
                &tokens,
                &state,
                SimRequest {
                    method: "GET".into(),
                    path: "/msi/token".into(),
                    query: query.into(),
                    headers: header
                        .map(|h| vec![("X-IDENTITY-HEADER".to_owned(), h.to_owned())])
                        .unwrap_or_default(),
                    body: Vec::new(),
                },
            );
            (
                resp.status,
                serde_json::from_slice(&resp.body).expect("json"),
            )
        };
        let ok = "api-version=2019-08-01&resource=https%3A%2F%2Fgraph.microsoft.com";
        let (status, body) = get(Some("hdr"), ok);
        assert_eq!(status, 200, "{body}");
        assert!(
            body["access_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("sim."))
        );
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["resource"], "https://graph.microsoft.com");
        assert_eq!(body["client_id"], "sys");
        let exp: i64 = body["expires_on"]
            .as_str()
            .and_then(|e| e.parse().ok())
            .expect("expires_on string");
        assert!(exp > chrono::Utc::now().timestamp() + 3000);
        let (status, body) = get(Some("hdr"), &format!("{ok}&client_id=uai"));
        assert_eq!((status, body["client_id"].as_str()), (200, Some("uai")));
        assert_eq!(get(None, ok).0, 401);
        assert_eq!(get(Some("wrong"), ok).0, 401);
        assert_eq!(get(Some("hdr"), &format!("{ok}&client_id=other")).0, 400);
        assert_eq!(
            get(Some("hdr"), &format!("{ok}&mi_res_id=%2Fsubscriptions%2Fx")).0,
            400
        );
        assert_eq!(
            get(
                Some("hdr"),
                "api-version=2017-09-01&resource=https%3A%2F%2Fgraph.microsoft.com"
            )
            .0,
            400
        );
        assert_eq!(
            get(
                Some("hdr"),
                "api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com"
            )
            .0,
            400
        );
        assert_eq!(state.lock().expect("state").identities, vec!["sys", "uai"]);
    }
}

// === AWS post-compromise scenarios and traps ===

fn named<'a>(trail: &[&'a Value], name: &str) -> Vec<&'a Value> {
    trail
        .iter()
        .copied()
        .filter(|v| s(v, &["eventName"]) == name)
        .collect()
}

#[test]
fn stolen_key_persistence_truth() {
    let ds = generate(&cfg(), &[Scenario::StolenKeyPersistence]);
    let tr = truth_of(&ds, "stolen-key-persistence");
    let ct = scenario_trail(&ds, tr);
    let (distinct, denied) = max_recon(&ct);
    assert!(distinct >= 4 && !denied, "{distinct} {denied}");
    let caller = s(ct[0], &["userIdentity", "userName"]);
    let key = s(ct[0], &["userIdentity", "accessKeyId"]);
    assert!(key.starts_with("AKIA") && s(ct[0], &["userIdentity", "type"]) == "IAMUser");
    // CreateAccessKey for another user, shaped as CloudTrail logs it.
    let create = named(&ct, "CreateAccessKey");
    assert_eq!(create.len(), 1);
    let c = create[0];
    assert_eq!(s(c, &["userIdentity", "accessKeyId"]), key);
    let target = s(c, &["requestParameters", "userName"]);
    assert!(!target.is_empty() && target != caller, "{target}");
    let made = &c["responseElements"]["accessKey"];
    assert_eq!(s(made, &["userName"]), target);
    assert_eq!(s(made, &["status"]), "Active");
    assert!(s(made, &["accessKeyId"]).starts_with("AKIA"));
    assert!(s(made, &["createDate"]).ends_with(" PM") || s(made, &["createDate"]).ends_with(" AM"));
    assert!(
        made.get("secretAccessKey").is_none(),
        "the secret is never logged"
    );
    assert_eq!(s(c, &["awsRegion"]), "us-east-1");
    assert!(c.get("errorCode").is_none());
    // It comes after the burst, within the 8 h that make it count ×3.
    let first = t(ct[0], "eventTime");
    let dt = t(c, "eventTime") - first;
    assert!(dt > 0 && dt < 8 * 3_600_000);
    // The new key is then tried under the target's name, from the same IP.
    let tried = ct
        .iter()
        .find(|v| s(v, &["userIdentity", "accessKeyId"]) == s(made, &["accessKeyId"]))
        .expect("new key used");
    assert_eq!(s(tried, &["userIdentity", "userName"]), target);
    assert_eq!(s(tried, &["sourceIPAddress"]), s(c, &["sourceIPAddress"]));
    let ip = s(c, &["sourceIPAddress"]);
    assert!(only_the_attack_uses(&ds, &ct, ip));
    assert_eq!(
        expected_scores(tr),
        [
            ("aws_recon_burst", 84.0),
            ("aws_credential_persistence", 48.0)
        ]
    );
    assert!(tr.expected_min_score >= 100.0);
}

#[test]
fn unused_region_needs_a_week_and_launches_where_the_account_never_was() {
    // Asked for in a day's window, the window grows to the scenario's eight days.
    let ds = generate(&cfg(), &[Scenario::UnusedRegion]);
    assert_eq!(Scenario::UnusedRegion.min_hours(), 192);
    let tr = truth_of(&ds, "unused-region");
    let ct = scenario_trail(&ds, tr);
    assert!(max_recon(&ct).0 >= 4);
    let run = named(&ct, "RunInstances");
    assert_eq!(run.len(), 1);
    let r = run[0];
    let at = t(r, "eventTime");
    let account = s(r, &["recipientAccountId"]);
    assert_eq!(s(r, &["awsRegion"]), scenarios::MINER_REGION);
    assert_eq!(s(r, &["userIdentity", "type"]), "IAMUser");
    let items = r["responseElements"]["instancesSet"]["items"]
        .as_array()
        .expect("instances");
    assert_eq!(items.len(), 8);
    assert!(
        items
            .iter()
            .all(|i| s(i, &["placement", "availabilityZone"]).starts_with(scenarios::MINER_REGION))
    );
    assert!(
        s(
            &r["requestParameters"]["instancesSet"]["items"][0],
            &["imageId"]
        )
        .starts_with("ami-")
    );
    // The account's history reaches 7 UTC days back, and none of it is in that region.
    let days = |ms: i64| ms.div_euclid(86_400_000);
    let history: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["recipientAccountId"]) == account && t(v, "eventTime") < at)
        .collect();
    let first = history
        .iter()
        .map(|v| t(v, "eventTime"))
        .min()
        .expect("history");
    assert!(
        days(at) - days(first) >= 7,
        "{} days",
        days(at) - days(first)
    );
    assert!(at - first <= 14 * 86_400_000);
    assert!(
        ds.cloudtrail
            .iter()
            .filter(|v| s(v, &["awsRegion"]) == scenarios::MINER_REGION)
            .all(|v| ct.contains(&v))
    );
    assert_eq!(
        expected_scores(tr),
        [("aws_recon_burst", 84.0), ("aws_unused_region", 40.0)]
    );
    // mixed leaves it out of a day's window and carries it in eight days.
    let long = generate(
        &SimConfig {
            hours: 192,
            users: 60,
            ..cfg()
        },
        &[Scenario::Mixed],
    );
    assert_eq!(long.truth.scenarios.len(), Scenario::ATTACKS.len());
    assert!(
        long.truth
            .scenarios
            .iter()
            .any(|x| x.scenario == "unused-region")
    );
}

#[test]
fn admin_key_rotation_trap() {
    let ds = generate(&cfg(), &[Scenario::Benign]);
    let admin = ds
        .truth
        .benign_trap_kinds
        .iter()
        .find(|(_, k)| *k == "key_rotation")
        .map(|(u, _)| u.clone())
        .expect("trap");
    let creates: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["eventName"]) == "CreateAccessKey")
        .collect();
    // A service user's key, then their own, in one console session on Monday.
    assert_eq!(creates.len(), 2);
    let caller = s(creates[0], &["userIdentity", "userName"]);
    assert!(admin.starts_with(caller), "{admin} {caller}");
    let targets: Vec<&str> = creates
        .iter()
        .map(|v| s(v, &["requestParameters", "userName"]))
        .collect();
    assert_eq!(targets, ["svc-reporting", caller]);
    for c in &creates {
        assert_eq!(s(c, &["sessionCredentialFromConsole"]), "true");
        assert_eq!(
            s(
                c,
                &[
                    "userIdentity",
                    "sessionContext",
                    "attributes",
                    "mfaAuthenticated"
                ]
            ),
            "true"
        );
    }
    // From the IP the admin always uses, and each followed by deleting the old key.
    let ip = s(creates[0], &["sourceIPAddress"]);
    let logins = ds.cloudtrail.iter().filter(|v| {
        s(v, &["eventName"]) == "ConsoleLogin" && s(v, &["userIdentity", "userName"]) == caller
    });
    assert!(logins.clone().count() >= 1);
    assert!(logins.clone().all(|v| s(v, &["sourceIPAddress"]) == ip));
    let deletes: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["eventName"]) == "DeleteAccessKey")
        .collect();
    assert_eq!(deletes.len(), 2);
    for (c, d) in creates.iter().zip(&deletes) {
        assert!(t(d, "eventTime") > t(c, "eventTime"));
        let user = s(c, &["requestParameters", "userName"]);
        assert_eq!(s(d, &["requestParameters", "userName"]), user);
        let old = s(d, &["requestParameters", "accessKeyId"]);
        assert!(old.starts_with("AKIA"));
        assert_ne!(old, s(c, &["responseElements", "accessKey", "accessKeyId"]));
    }
}

#[test]
fn ci_role_adopts_a_region_on_the_first_weekday() {
    let ds = generate(&SimConfig { hours: 96, ..cfg() }, &[Scenario::Benign]);
    let role = ds
        .truth
        .benign_trap_kinds
        .iter()
        .find(|(_, k)| *k == "ci_new_region")
        .map(|(u, _)| u.clone())
        .expect("trap");
    let mine: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["userIdentity", "arn"]) == role)
        .collect();
    let create = named(&mine, "CreateStack");
    assert_eq!(create.len(), 1);
    let c = create[0];
    let adopted = t(c, "eventTime");
    // The first weekday (the window starts on a Monday), in the pipelines' hours.
    assert_eq!(adopted - DEFAULT_START, 15 * 3_600_000);
    assert_eq!(s(c, &["awsRegion"]), aws_traps::CI_NEW_REGION);
    assert!(
        s(c, &["responseElements", "stackId"]).starts_with("arn:aws:cloudformation:eu-central-1:")
    );
    // Nothing used that region before; CloudFormation then launches the stack's instances.
    assert!(
        ds.cloudtrail
            .iter()
            .filter(|v| s(v, &["awsRegion"]) == aws_traps::CI_NEW_REGION)
            .all(|v| t(v, "eventTime") >= adopted)
    );
    let run = named(&mine, "RunInstances");
    assert_eq!(run.len(), 1);
    assert_eq!(
        s(run[0], &["userIdentity", "invokedBy"]),
        "cloudformation.amazonaws.com"
    );
    assert_eq!(
        s(run[0], &["sourceIPAddress"]),
        "cloudformation.amazonaws.com"
    );
    // Then an update every weekday after.
    let updates = named(&mine, "UpdateStack");
    assert_eq!(updates.len(), 3);
    assert!(updates.iter().all(|v| t(v, "eventTime") > adopted));
}

#[test]
fn leaked_credentials_then_messaging_truth() {
    let ds = generate(&cfg(), &[Scenario::LeakedCredentialsMessaging]);
    let tr = truth_of(&ds, "leaked-credentials-messaging");
    let upn = &tr.identities[0];
    // The detection: offline leakedCredentials at high, tied to the user and to no sign-in,
    // raised hours after the leak was found, then confirmed compromised (same id, later update).
    assert_eq!(tr.risk_detection_ids.len(), 1);
    let states: Vec<&Value> = ds
        .risk_detections
        .iter()
        .filter(|d| s(d, &["id"]) == tr.risk_detection_ids[0])
        .collect();
    assert_eq!(states.len(), 2);
    let d = states[0];
    assert_eq!(s(d, &["riskEventType"]), "leakedCredentials");
    assert_eq!(s(d, &["riskLevel"]), "high");
    assert_eq!(s(d, &["riskState"]), "atRisk");
    assert_eq!(s(d, &["detectionTimingType"]), "offline");
    assert_eq!(s(d, &["activity"]), "user");
    assert_eq!(s(d, &["userPrincipalName"]), upn.as_str());
    for k in ["requestId", "correlationId", "ipAddress"] {
        assert!(d[k].is_null(), "{k}: {d}");
    }
    let activity = t(d, "activityDateTime");
    let detected = t(d, "detectedDateTime");
    assert_eq!(activity, tr.start_ms);
    assert!(detected - activity >= 2 * 3_600_000, "raised hours later");
    assert_eq!(t(d, "lastUpdatedDateTime"), detected);
    assert_eq!(s(states[1], &["riskState"]), "confirmedCompromised");
    assert_eq!(t(states[1], "activityDateTime"), activity);
    assert!(t(states[1], "lastUpdatedDateTime") > detected);
    // Its key, linked to the same person, then checks and unlocks SES from one new IP, within
    // 10 min and within 8 h of the leak; at most three recon calls (no recon burst).
    let ct = scenario_trail(&ds, tr);
    let ses: Vec<&Value> = ct
        .iter()
        .copied()
        .filter(|v| s(v, &["eventSource"]) == "ses.amazonaws.com")
        .collect();
    let names: Vec<&str> = ses.iter().map(|v| s(v, &["eventName"])).collect();
    assert_eq!(
        names,
        [
            "GetSendQuota",
            "GetAccountSendingEnabled",
            "ListIdentities",
            "VerifyEmailIdentity",
            "UpdateAccountSendingEnabled"
        ]
    );
    assert!(
        ses.iter()
            .all(|v| s(v, &["tlsDetails", "clientProvidedHostHeader"])
                == format!("email.{}.amazonaws.com", s(v, &["awsRegion"])))
    );
    assert_eq!(ses[3]["readOnly"], Value::Bool(false));
    assert_eq!(ses[0]["readOnly"], Value::Bool(true));
    let first = t(ct[0], "eventTime");
    let last = t(ct[ct.len() - 1], "eventTime");
    assert!(last - first < 10 * 60_000);
    assert!(first > activity && first - activity < 8 * 3_600_000);
    let (distinct, _) = max_recon(&ct);
    assert!(distinct < 4, "{distinct} recon calls");
    let user = s(ct[0], &["userIdentity", "userName"]);
    assert!(
        ds.identities_toml
            .contains(&format!(":user/{user}\"]\nazure = ")),
        "the IAM user is linked"
    );
    let ip = s(ct[0], &["sourceIPAddress"]);
    assert!(ct.iter().all(|v| s(v, &["sourceIPAddress"]) == ip));
    assert!(only_the_attack_uses(&ds, &ct, ip));
    assert_eq!(
        expected_scores(tr),
        [
            ("azure_risk_detection", 64.0),
            ("aws_messaging_abuse", 84.0),
            ("cross_cloud_risky_then_aws", 80.0)
        ]
    );
    assert_eq!(tr.expected_min_score, (64.0 + 84.0 + 80.0) * 1.5);
}

#[test]
fn ses_sender_trap_sends_every_day_from_one_address() {
    let ds = generate(&SimConfig { hours: 72, ..cfg() }, &[Scenario::Benign]);
    let sender = ds
        .truth
        .benign_trap_kinds
        .iter()
        .find(|(_, k)| *k == "ses_sender")
        .map(|(u, _)| u.clone())
        .expect("trap");
    assert!(sender.ends_with(":user/svc-notifications"), "{sender}");
    let mine: Vec<&Value> = ds
        .cloudtrail
        .iter()
        .filter(|v| s(v, &["userIdentity", "arn"]) == sender)
        .collect();
    // The quota every hour, and whether sending is on once a day, before the 07:30 digest.
    assert_eq!(named(&mine, "GetSendQuota").len(), 72 + 3);
    let enabled = named(&mine, "GetAccountSendingEnabled");
    assert_eq!(enabled.len(), 3);
    for e in &enabled {
        let at = t(e, "eventTime") - DEFAULT_START;
        assert_eq!(at.rem_euclid(86_400_000) / 60_000 / 30, 15, "07:30 UTC");
    }
    let ip = s(mine[0], &["sourceIPAddress"]);
    assert!(
        mine.iter()
            .all(|v| s(v, &["sourceIPAddress"]) == ip
                && s(v, &["eventSource"]) == "ses.amazonaws.com")
    );
    // Nothing else in the tenant uses its address; it is not among the service accounts.
    assert!(
        ds.cloudtrail
            .iter()
            .filter(|v| s(v, &["userIdentity", "arn"]) != sender)
            .all(|v| s(v, &["sourceIPAddress"]) != ip)
    );
    assert!(!ds.correlate_toml.contains("svc-notifications"));
}
