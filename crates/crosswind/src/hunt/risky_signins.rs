//! The `risky-signins` hunt: the seed Entra risky sign-in detection. A successful sign-in is
//! scored on three dimensions — Identity Protection risk, risky event types, cross-tenant
//! single-factor — and `threat_score` is how many it meets. The checks are
//! `crosswind_correlate::seed_dimensions`, the ones the correlator's Entra risk detector applies
//! before its tuning.

// The checks are the correlator's own (one definition for the hunt and the engine).
pub use crosswind_correlate::{SeedDimensions, seed_dimensions};
use crosswind_model::{CLASS_AUTHENTICATION, CloudProvider, Event};
use crosswind_store::{EventQuery, Store, StoreError, Subset};
use serde_json::{Value, json};

use super::Range;
use crate::output::Rows;
use crate::timearg::format_time;

/// Columns of the rows, in order.
const COLUMNS: [&str; 12] = [
    "time",
    "user",
    "src_ip",
    "app",
    "country",
    "city",
    "risk_level",
    "risk_state",
    "risk_events",
    "cross_tenant_mfa_bypass",
    "threat_score",
    "threat_indicators",
];

pub(super) fn run(store: &Store, range: Range) -> anyhow::Result<Rows> {
    let query = EventQuery {
        since: range.since,
        until: range.until,
        provider: Some(CloudProvider::Azure),
        class_uid: Some(CLASS_AUTHENTICATION),
        success_only: true,
        // The candidates marked at import; each is checked below.
        subset: Some(Subset::EntraRisk),
    };
    // Each hit becomes its row as it streams by: keeping the events (over a kilobyte each)
    // until the sort cost more than the decoding at a million sign-ins.
    let mut hits: Vec<(u8, i64, Vec<Value>)> = Vec::new();
    store.for_each_event(&query, |stored| {
        if let Some(entra) = &stored.event.entra {
            let dims = seed_dimensions(entra, stored.event.cloud.account.uid.as_deref());
            if dims.threat_score() > 0 {
                hits.push((
                    dims.threat_score(),
                    stored.event.time,
                    row(stored.event, &dims),
                ));
            }
        }
        Ok::<_, StoreError>(true)
    })?;
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut rows = Rows::new(COLUMNS.to_vec());
    for (_, _, row) in hits {
        rows.push(row);
    }
    Ok(rows)
}

fn row(event: Event, dims: &SeedDimensions) -> Vec<Value> {
    let principal = event.principal().and_then(|u| u.name.clone());
    let entra = event.entra.unwrap_or_default();
    let location = event.src_endpoint.location.unwrap_or_default();
    let opt = |v: Option<String>| v.map_or(Value::Null, Value::String);
    vec![
        json!(format_time(event.time)),
        opt(principal),
        opt(event.src_endpoint.ip),
        opt(event.service.and_then(|s| s.name)),
        opt(location.country),
        opt(location.city),
        opt(entra.risk_level_during_signin),
        opt(entra.risk_state),
        json!(entra.risk_event_types),
        json!(dims.cross_tenant_mfa_bypass),
        json!(dims.threat_score()),
        json!(dims.indicators()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosswind_model::*;

    fn entra() -> EntraDetail {
        EntraDetail {
            risk_level_during_signin: Some("none".into()),
            risk_state: Some("none".into()),
            authentication_requirement: Some("multiFactorAuthentication".into()),
            home_tenant_id: Some("t1".into()),
            resource_tenant_id: Some("t1".into()),
            ..EntraDetail::default()
        }
    }

    fn seed_dimensions_t(entra: &EntraDetail) -> SeedDimensions {
        seed_dimensions(entra, None)
    }

    /// The hunt reads only the events the store marked at import: every sign-in it would
    /// select must be marked, whatever the case, spacing or tenant fallback.
    #[test]
    fn every_sign_in_the_hunt_selects_is_marked() {
        use crosswind_store::marks::{ENTRA_RISK_MARK, marks_of};
        let opt = |v: &str| (v != "-").then(|| v.to_string());
        let mut selected = 0;
        for level in ["-", "high", " Medium ", "low", "hidden"] {
            for state in ["-", "atRisk", "CONFIRMEDcompromised", "dismissed"] {
                for types in [&[][..], &["anonymizedIPAddress"], &["somethingNew"], &[" "]] {
                    for requirement in ["-", "singleFactorAuthentication", "mfa"] {
                        for home in ["-", "A", "a", " "] {
                            for resource in ["-", "A", "B"] {
                                for tenant in ["-", "a", "b"] {
                                    let entra = EntraDetail {
                                        risk_level_during_signin: opt(level),
                                        risk_state: opt(state),
                                        risk_event_types: types
                                            .iter()
                                            .map(|t| t.to_string())
                                            .collect(),
                                        authentication_requirement: opt(requirement),
                                        home_tenant_id: opt(home),
                                        resource_tenant_id: opt(resource),
                                        ..EntraDetail::default()
                                    };
                                    let tenant = opt(tenant);
                                    if seed_dimensions(&entra, tenant.as_deref()).threat_score()
                                        == 0
                                    {
                                        continue;
                                    }
                                    selected += 1;
                                    let mut event = signin("x", 1, STATUS_SUCCESS, entra);
                                    event.cloud.account.uid = tenant;
                                    assert_eq!(
                                        marks_of(&event) & ENTRA_RISK_MARK,
                                        ENTRA_RISK_MARK,
                                        "{:?}",
                                        event.entra
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(
            selected > 1_000,
            "the grid must exercise the hunt: {selected}"
        );
    }

    #[test]
    fn benign_sign_in_meets_nothing() {
        assert_eq!(seed_dimensions_t(&entra()).threat_score(), 0);
        assert_eq!(
            seed_dimensions_t(&EntraDetail::default()).threat_score(),
            0,
            "all fields missing"
        );
    }

    #[test]
    fn high_risk_alone() {
        for (level, state) in [
            ("high", "none"),
            ("MEDIUM", "none"),
            ("low", "atRisk"),
            ("none", "ConfirmedCompromised"),
        ] {
            let d = seed_dimensions_t(&EntraDetail {
                risk_level_during_signin: Some(level.into()),
                risk_state: Some(state.into()),
                ..entra()
            });
            assert_eq!(
                (d.threat_score(), d.indicators()),
                (1, vec!["HighRiskSignIn".to_string()]),
                "{level}/{state}"
            );
        }
        for (level, state) in [("low", "dismissed"), ("hidden", "remediated"), ("", "")] {
            let d = seed_dimensions_t(&EntraDetail {
                risk_level_during_signin: Some(level.into()),
                risk_state: Some(state.into()),
                ..entra()
            });
            assert_eq!(d.threat_score(), 0, "{level}/{state}");
        }
    }

    #[test]
    fn risky_event_alone_is_case_insensitive() {
        let d = seed_dimensions_t(&EntraDetail {
            risk_event_types: vec![
                "generic".into(),
                "AnonymizedIpAddress".into(),
                "leakedCredentials".into(),
            ],
            ..entra()
        });
        assert_eq!(d.threat_score(), 1);
        assert_eq!(
            d.indicators(),
            ["RiskyEvent:AnonymizedIpAddress,leakedCredentials"]
        );
        let none = seed_dimensions_t(&EntraDetail {
            risk_event_types: vec!["generic".into(), "".into()],
            ..entra()
        });
        assert_eq!(none.threat_score(), 0);
    }

    #[test]
    fn cross_tenant_single_factor_alone() {
        let d = seed_dimensions_t(&EntraDetail {
            authentication_requirement: Some("SingleFactorAuthentication".into()),
            home_tenant_id: Some("AAAA".into()),
            resource_tenant_id: Some("bbbb".into()),
            ..entra()
        });
        assert_eq!(d.indicators(), ["CrossTenantMFABypass"]);
        let same_tenant = seed_dimensions_t(&EntraDetail {
            authentication_requirement: Some("singleFactorAuthentication".into()),
            home_tenant_id: Some("AAAA".into()),
            resource_tenant_id: Some("aaaa".into()),
            ..entra()
        });
        assert_eq!(
            same_tenant.threat_score(),
            0,
            "tenant ids compare case-insensitively"
        );
        let no_home = seed_dimensions_t(&EntraDetail {
            authentication_requirement: Some("singleFactorAuthentication".into()),
            home_tenant_id: Some("  ".into()),
            ..entra()
        });
        assert_eq!(
            no_home.threat_score(),
            0,
            "blank home tenant is not cross-tenant"
        );
        let mfa = seed_dimensions_t(&EntraDetail {
            home_tenant_id: Some("AAAA".into()),
            resource_tenant_id: Some("bbbb".into()),
            ..entra()
        });
        assert_eq!(
            mfa.threat_score(),
            0,
            "multi-factor cross-tenant sign-in is fine"
        );
    }

    /// A Graph sign-in with these Entra details.
    fn signin(uid: &str, time: i64, status: u8, entra: EntraDetail) -> Event {
        Event {
            schema_version: SCHEMA_VERSION,
            class_uid: CLASS_AUTHENTICATION,
            time,
            status_id: status,
            status_code: Some(
                if status == STATUS_SUCCESS {
                    "0"
                } else {
                    "50126"
                }
                .into(),
            ),
            status_detail: None,
            metadata: Metadata {
                uid: uid.into(),
                product: "Microsoft Entra ID".into(),
                log_name: SourceFormat::GraphSignIn,
                correlation_uid: None,
                event_types: vec![],
            },
            cloud: Cloud {
                provider: CloudProvider::Azure,
                account: Account::default(),
                region: None,
            },
            src_endpoint: SrcEndpoint {
                ip: Some("203.0.113.9".into()),
                ..SrcEndpoint::default()
            },
            user: Some(User {
                name: Some(format!("{uid}@corp.example")),
                ..User::default()
            }),
            actor: None,
            api: None,
            service: None,
            http_request: None,
            is_mfa: None,
            finding_info: None,
            entra: Some(entra),
            aws: None,
        }
    }

    /// Through the store: failures never count, rows sort by threat_score then time, both
    /// descending, and the time range applies.
    #[test]
    fn hunt_over_the_store_excludes_failures_and_sorts() {
        use crosswind_store::NewRecord;

        let high = EntraDetail {
            risk_level_during_signin: Some("high".into()),
            ..entra()
        };
        let two = EntraDetail {
            risk_event_types: vec!["anonymizedIPAddress".into()],
            ..high.clone()
        };
        let events = [
            signin("failed-high", 5_000, STATUS_FAILURE, two.clone()),
            signin("old-one", 1_000, STATUS_SUCCESS, high.clone()),
            signin("new-one", 3_000, STATUS_SUCCESS, high),
            signin("two", 2_000, STATUS_SUCCESS, two),
            signin("benign", 4_000, STATUS_SUCCESS, entra()),
        ];
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = store.begin().unwrap();
        for e in &events {
            let new = NewRecord {
                event: e,
                format: SourceFormat::GraphSignIn,
                raw: b"{}",
                origin: "t",
            };
            batch.insert(&new).unwrap();
        }
        batch.commit().unwrap();
        let users = |range: Range| -> Vec<String> {
            run(&store, range)
                .unwrap()
                .rows
                .iter()
                .map(|r| r[1].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            users(Range::default()),
            [
                "two@corp.example",
                "new-one@corp.example",
                "old-one@corp.example"
            ]
        );
        assert_eq!(
            users(Range {
                since: Some(2_500),
                until: None
            }),
            ["new-one@corp.example"]
        );
    }

    #[test]
    fn all_three_together() {
        let d = seed_dimensions_t(&EntraDetail {
            risk_level_during_signin: Some("high".into()),
            risk_state: Some("atRisk".into()),
            risk_event_types: vec!["anonymizedIPAddress".into()],
            authentication_requirement: Some("singleFactorAuthentication".into()),
            home_tenant_id: Some("other".into()),
            resource_tenant_id: Some("ours".into()),
            ..EntraDetail::default()
        });
        assert_eq!(d.threat_score(), 3);
        assert_eq!(
            d.indicators(),
            [
                "HighRiskSignIn",
                "RiskyEvent:anonymizedIPAddress",
                "CrossTenantMFABypass"
            ]
        );
    }
}
