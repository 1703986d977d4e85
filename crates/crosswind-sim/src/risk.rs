//! Identity Protection risk detections of the simulated tenant, as Graph `riskDetection`
//! objects (v1.0 shape), derived from the sign-ins that carry risk events:
//! - one detection per risk event type of a risky sign-in (`requestId` = the sign-in's id);
//! - real-time types (`anonymizedIPAddress`, `unfamiliarFeatures`) are detected seconds after
//!   the sign-in, offline ones (`unlikelyTravel`, `leakedCredentials`, …) hours after it, as
//!   Entra computes them later;
//! - some detections change state afterwards: an admin dismisses benign ones, confirms the
//!   attackers'. Each state is its own object with the same `id` and a newer
//!   `lastUpdatedDateTime`; the Graph simulator serves only the latest state that has arrived.

use serde_json::{Value, json};

use crate::rng::Rng;
use crate::time::{HOUR, MIN, SEC, iso};

/// Risk event types Identity Protection computes after the fact (Microsoft Entra ID Protection
/// "risk detection types": offline detections).
pub(crate) const OFFLINE_TYPES: [&str; 6] = [
    "unlikelyTravel",
    "leakedCredentials",
    "investigationsThreatIntelligence",
    "maliciousIPAddress",
    "suspiciousInboxForwarding",
    "newCountry",
];

/// One risk detection state and when Graph shows it (epoch ms).
#[derive(Clone, Debug)]
pub(crate) struct Detection {
    pub visible_ms: i64,
    pub value: Value,
}

/// What the ground truth adds to a sign-in: whether it is an attacker's, and an offline
/// detection (type, level) Entra raises on it later although the sign-in carried no risk event.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Known {
    pub malicious: bool,
    pub offline: Option<(&'static str, &'static str)>,
}

/// Every detection state derived from `signins` (Graph beta signIn objects). `known` tells
/// whether a sign-in id belongs to an attack (its detections are later confirmed compromised;
/// benign ones are partly dismissed) and what offline detection it gets.
pub(crate) fn derive(
    seed: u64,
    signins: &[(i64, Value)],
    known: &dyn Fn(&str) -> Known,
) -> Vec<Detection> {
    let mut out = Vec::new();
    for (created, s) in signins {
        let sid = s.get("id").and_then(Value::as_str).unwrap_or_default();
        let k = known(sid);
        let bad = k.malicious;
        let mut types: Vec<(&str, Option<&str>)> = s
            .get("riskEventTypes_v2")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| (t, None))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((t, level)) = k.offline {
            types.push((t, Some(level)));
        }
        if types.is_empty() {
            continue;
        }
        // One stream per sign-in: benign detections do not depend on the injected attacks.
        let mut rng = Rng::derive(seed, &format!("risk-detections:{sid}"));
        for (t, forced_level) in types {
            let offline = OFFLINE_TYPES.contains(&t);
            let detected = if offline {
                created + rng.range(2 * HOUR, 9 * HOUR)
            } else {
                created + rng.range(2 * SEC, 90 * SEC)
            };
            let level = match (
                forced_level,
                s.get("riskLevelDuringSignIn").and_then(Value::as_str),
            ) {
                (Some(l), _) => l,
                (None, Some(l @ ("low" | "medium" | "high"))) => l,
                _ => "low",
            };
            let id = rng.hex(64);
            let first = detection(s, &id, t, level, offline, *created, detected);
            out.push(Detection {
                visible_ms: detected + rng.range(30 * SEC, 5 * MIN),
                value: first.clone(),
            });
            // A later review: attackers' detections confirmed by the SOC, about a third of the benign ones
            // dismissed (the VPN and travelling users the traps describe).
            let review = if bad {
                Some(("confirmedCompromised", "adminConfirmedUserCompromised"))
            } else {
                rng.chance(0.35)
                    .then_some(("dismissed", "adminDismissedAllRiskForUser"))
            };
            if let Some((state, detail)) = review {
                let at = detected + rng.range(HOUR, 6 * HOUR);
                out.push(Detection {
                    visible_ms: at + rng.range(30 * SEC, 5 * MIN),
                    value: updated(&first, state, detail, at),
                });
            }
        }
    }
    out
}

/// A detection state's `lastUpdatedDateTime` (epoch ms).
pub(crate) fn updated_ms(v: &Value) -> i64 {
    v.get("lastUpdatedDateTime")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_iso)
        .unwrap_or(0)
}

fn detection(
    s: &Value,
    id: &str,
    risk_type: &str,
    level: &str,
    offline: bool,
    activity: i64,
    detected: i64,
) -> Value {
    let text = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let ua = s
        .get("userAgent")
        .and_then(Value::as_str)
        .unwrap_or_default();
    json!({
        "id": id,
        "requestId": text("id"),
        "correlationId": text("correlationId"),
        "riskEventType": risk_type,
        "riskState": "atRisk",
        "riskLevel": level,
        "riskDetail": "none",
        "source": "IdentityProtection",
        "detectionTimingType": if offline { "offline" } else { "realtime" },
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": text("ipAddress"),
        "location": text("location"),
        "activityDateTime": iso(activity),
        "detectedDateTime": iso(detected),
        "lastUpdatedDateTime": iso(detected),
        "userId": text("userId"),
        "userDisplayName": text("userDisplayName"),
        "userPrincipalName": text("userPrincipalName"),
        "additionalInfo": json!([
            { "Key": "userAgent", "Value": ua },
        ])
        .to_string(),
    })
}

/// A detection of no sign-in: Identity Protection found `user`'s valid credentials leaked
/// (`leakedCredentials`, always offline). Graph ties it to the user, not to a sign-in
/// (`activity` user; `requestId`, `correlationId`, `ipAddress` and `location` null);
/// `activityDateTime` is when the leak was found, `detectedDateTime` when Entra raised it.
pub(crate) fn leaked_credentials(
    id: &str,
    user: (&str, &str, &str),
    level: &str,
    activity: i64,
    detected: i64,
) -> Value {
    let (user_id, display, upn) = user;
    json!({
        "id": id,
        "requestId": null,
        "correlationId": null,
        "riskEventType": "leakedCredentials",
        "riskState": "atRisk",
        "riskLevel": level,
        "riskDetail": "none",
        "source": "IdentityProtection",
        "detectionTimingType": "offline",
        "activity": "user",
        "tokenIssuerType": "AzureAD",
        "ipAddress": null,
        "location": null,
        "activityDateTime": iso(activity),
        "detectedDateTime": iso(detected),
        "lastUpdatedDateTime": iso(detected),
        "userId": user_id,
        "userDisplayName": display,
        "userPrincipalName": upn,
        "additionalInfo": "[]",
    })
}

pub(crate) fn updated(first: &Value, state: &str, detail: &str, at: i64) -> Value {
    let mut v = first.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("riskState".into(), json!(state));
        o.insert("riskDetail".into(), json!(detail));
        o.insert("lastUpdatedDateTime".into(), json!(iso(at)));
    }
    v
}
