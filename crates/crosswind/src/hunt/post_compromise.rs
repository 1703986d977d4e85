//! `post-compromise`: per identity, what a stolen AWS credential did next (the post-compromise
//! signals of docs/detections.md: messaging abuse, credential persistence, infrastructure in an
//! unused region) and the risky Entra evidence of the same identity in the week before the first
//! of them — one timeline per identity, oldest first, so an analyst reads the chain in order.

use std::collections::{BTreeMap, BTreeSet};

use crosswind_correlate::SignalKind;
use crosswind_model::Signal;
use crosswind_store::Store;
use crosswind_store::correlate::signals_of_kinds_between;
use serde_json::{Value, json};

use super::{Filters, Range};
use crate::output::Rows;
use crate::timearg::format_time;

/// The AWS signals that follow a compromise (docs/detections.md, "More evidence"), by catalog
/// name: a name the catalog does not know (yet) selects nothing.
pub(super) const POST_COMPROMISE: [&str; 3] = [
    "aws_messaging_abuse",
    "aws_credential_persistence",
    "aws_unused_region",
];

/// The Entra signals that make an identity's sign-in risky (the Entra side of
/// `cross_cloud_risky_then_aws`, and the spray that took the password).
pub(super) const ENTRA_EVIDENCE: [&str; 7] = [
    "azure_high_risk_signin",
    "azure_risky_event",
    "azure_risk_detection",
    "azure_password_spray",
    "azure_cross_tenant_sfa",
    "azure_mfa_fatigue",
    "azure_legacy_auth_signin",
];

/// How far before an identity's first post-compromise signal its Entra evidence is shown:
/// offline detections (leaked credentials) are scored at their activity, often days earlier.
pub(super) const EVIDENCE_LOOKBACK_MS: i64 = 7 * 86_400_000;

fn kinds(names: &[&str]) -> BTreeSet<&'static str> {
    names
        .iter()
        .filter_map(|n| SignalKind::from_name(n))
        .map(SignalKind::name)
        .collect()
}

pub(super) fn run(store: &Store, range: Range, filters: &Filters) -> anyhow::Result<Rows> {
    let post = kinds(&POST_COMPROMISE);
    let evidence = kinds(&ENTRA_EVIDENCE);
    let since = range.since.unwrap_or(i64::MIN);
    let until = range.until.unwrap_or(i64::MAX);
    let wanted = filters.user.as_deref().map(str::to_lowercase);
    let from = since.saturating_sub(EVIDENCE_LOOKBACK_MS);
    let mut by_identity: BTreeMap<String, Vec<Signal>> = BTreeMap::new();
    let post_names: Vec<&str> = post.iter().copied().collect();
    for s in signals_of_kinds_between(store, &post_names, from, until)? {
        if s.risk_object.is_empty()
            || wanted
                .as_deref()
                .is_some_and(|w| !s.risk_object.eq_ignore_ascii_case(w))
        {
            continue;
        }
        by_identity
            .entry(s.risk_object.clone())
            .or_default()
            .push(s);
    }
    // Entra evidence (by far the more numerous signals) only for identities with AWS activity.
    if !by_identity.is_empty() {
        let evidence_names: Vec<&str> = evidence.iter().copied().collect();
        for s in signals_of_kinds_between(store, &evidence_names, from, until)? {
            if let Some(signals) = by_identity.get_mut(&s.risk_object) {
                signals.push(s);
            }
        }
    }
    let mut timelines = Vec::new();
    for (identity, mut signals) in by_identity {
        signals.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        // Withdrawn evidence (a detection later dismissed: a negative signal extending it) is
        // shown as withdrawn; the negative signal itself is not a row.
        let withdrawn: BTreeSet<String> = signals
            .iter()
            .filter(|s| s.risk_score < 0.0)
            .filter_map(|s| s.extends.clone())
            .collect();
        signals.retain(|s| s.risk_score >= 0.0);
        let Some(first_post) = signals
            .iter()
            .filter(|s| post.contains(s.signal.as_str()) && s.time >= since)
            .map(|s| s.time)
            .min()
        else {
            continue;
        };
        let last_post = signals
            .iter()
            .filter(|s| post.contains(s.signal.as_str()))
            .map(|s| s.time)
            .max()
            .unwrap_or(first_post);
        signals.retain(|s| {
            post.contains(s.signal.as_str()) && s.time >= since
                || s.time <= last_post && s.time >= first_post - EVIDENCE_LOOKBACK_MS
        });
        timelines.push((identity, first_post, last_post, signals, withdrawn));
    }
    // Most recent post-compromise activity first; each identity's rows oldest first.
    timelines.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut rows = Rows::new(vec![
        "identity",
        "time",
        "stage",
        "signal",
        "score",
        "before_first_aws",
        "src_ip",
        "withdrawn",
        "message",
    ]);
    for (identity, first_post, _, signals, withdrawn) in timelines {
        for s in signals {
            let is_post = post.contains(s.signal.as_str());
            let before = first_post - s.time;
            rows.push(vec![
                json!(identity),
                json!(format_time(s.time)),
                json!(if is_post {
                    "aws_post_compromise"
                } else {
                    "entra_evidence"
                }),
                json!(s.signal),
                json!((s.risk_score * 10.0).round() / 10.0),
                if is_post {
                    Value::Null
                } else {
                    json!(duration_text(before))
                },
                s.threat_object.as_ref().map_or(Value::Null, |t| json!(t)),
                json!(withdrawn.contains(&s.id)),
                json!(s.risk_message),
            ]);
        }
    }
    Ok(rows)
}

/// `3h05m`, `2d04h`, `0m`: how long before the first AWS post-compromise signal.
fn duration_text(ms: i64) -> String {
    let mins = ms.max(0) / 60_000;
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_an_analyst_writes_them() {
        assert_eq!(duration_text(0), "0m");
        assert_eq!(duration_text(-5), "0m");
        assert_eq!(duration_text(185 * 60_000), "3h05m");
        assert_eq!(duration_text((2 * 1440 + 4 * 60 + 7) * 60_000), "2d04h");
    }

    #[test]
    fn every_name_the_hunt_reads_is_in_the_catalog() {
        // A rename in the catalog would otherwise silently empty the hunt.
        for n in POST_COMPROMISE.iter().chain(ENTRA_EVIDENCE.iter()) {
            assert!(
                SignalKind::from_name(n).is_some(),
                "{n} is not in the catalog"
            );
        }
    }

    #[test]
    fn the_entra_evidence_the_catalog_has_is_named_as_it_names_it() {
        // Names of the catalog today must resolve (a rename would silently empty the hunt).
        for k in [
            SignalKind::AzureHighRiskSignin,
            SignalKind::AzureRiskyEvent,
            SignalKind::AzureRiskDetection,
            SignalKind::AzurePasswordSpray,
            SignalKind::AzureCrossTenantSfa,
        ] {
            assert!(kinds(&ENTRA_EVIDENCE).contains(k.name()), "{}", k.name());
        }
    }
}
