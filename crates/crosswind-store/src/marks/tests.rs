//! Hunt marks: which events are marked, that subsets read only their candidates through their
//! partial indexes, and that rows stored before marks existed are still read after an upgrade.

use crosswind_model::*;
use rusqlite::Connection;

use crate::marks::{ENTRA_RISK_MARK, marks_of};
use crate::tests::event;
use crate::*;

fn signin(uid: &str, time: i64, ok: bool, entra: EntraDetail) -> Event {
    Event {
        entra: Some(entra),
        ..event(uid, time, CloudProvider::Azure, ok)
    }
}

fn console_login(uid: &str, time: i64) -> Event {
    Event {
        api: Some(Api {
            operation: "ConsoleLogin".into(),
            service: Some("signin.amazonaws.com".into()),
            request_uid: None,
        }),
        ..event(uid, time, CloudProvider::Aws, true)
    }
}

fn detection(uid: &str, time: i64) -> Event {
    let mut e = event(uid, time, CloudProvider::Azure, true);
    e.class_uid = CLASS_DETECTION_FINDING;
    e.metadata.log_name = SourceFormat::GraphRiskDetection;
    e
}

fn high_risk() -> EntraDetail {
    EntraDetail {
        risk_level_during_signin: Some(" High ".into()),
        ..EntraDetail::default()
    }
}

fn store_all(store: &mut Store, events: &[Event]) {
    let mut batch = store.begin().unwrap();
    for e in events {
        batch
            .insert(&NewRecord {
                event: e,
                format: e.metadata.log_name,
                raw: b"{}",
                origin: "test",
            })
            .unwrap();
    }
    batch.commit().unwrap();
}

fn subset_uids(store: &Store, subset: Subset) -> Vec<String> {
    store
        .events(&EventQuery {
            subset: Some(subset),
            ..EventQuery::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.event.metadata.uid)
        .collect()
}

fn query_plan(store: &Store, subset: Subset) -> String {
    let sql = crate::event_query_sql(Some(subset));
    let mut stmt = store
        .connection()
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let rows = stmt
        .query_map(
            rusqlite::params![0i64, 1i64, None::<String>, None::<i64>, 0i64],
            |r| r.get::<_, String>(3),
        )
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

#[test]
fn marks_name_the_risky_signin_candidates() {
    let cases = [
        (
            "high",
            signin("high", 1, true, high_risk()),
            ENTRA_RISK_MARK,
        ),
        (
            "high but failed",
            signin("failed", 1, false, high_risk()),
            0,
        ),
        (
            "at risk",
            signin(
                "state",
                1,
                true,
                EntraDetail {
                    risk_state: Some("CONFIRMEDCOMPROMISED".into()),
                    ..EntraDetail::default()
                },
            ),
            ENTRA_RISK_MARK,
        ),
        (
            "any risk event type",
            signin(
                "type",
                1,
                true,
                EntraDetail {
                    risk_event_types: vec!["".into(), "somethingNew".into()],
                    ..EntraDetail::default()
                },
            ),
            ENTRA_RISK_MARK,
        ),
        (
            "blank risk event types",
            signin(
                "blank",
                1,
                true,
                EntraDetail {
                    risk_event_types: vec![" ".into()],
                    risk_level_during_signin: Some("low".into()),
                    risk_state: Some("dismissed".into()),
                    ..EntraDetail::default()
                },
            ),
            0,
        ),
        (
            "single factor from another tenant",
            signin(
                "xt",
                1,
                true,
                EntraDetail {
                    authentication_requirement: Some("singleFactorAuthentication".into()),
                    home_tenant_id: Some("home".into()),
                    resource_tenant_id: Some("resource".into()),
                    ..EntraDetail::default()
                },
            ),
            ENTRA_RISK_MARK,
        ),
        (
            // No resource tenant in the record: the collected tenant ("acct") stands in.
            "single factor, collected tenant differs",
            signin(
                "xt2",
                1,
                true,
                EntraDetail {
                    authentication_requirement: Some("singleFactorAuthentication".into()),
                    home_tenant_id: Some("home".into()),
                    ..EntraDetail::default()
                },
            ),
            ENTRA_RISK_MARK,
        ),
        (
            "single factor, same tenant",
            signin(
                "same",
                1,
                true,
                EntraDetail {
                    authentication_requirement: Some("singleFactorAuthentication".into()),
                    home_tenant_id: Some("ACCT".into()),
                    ..EntraDetail::default()
                },
            ),
            0,
        ),
        (
            "no entra detail",
            event("plain", 1, CloudProvider::Azure, true),
            0,
        ),
        ("aws", console_login("aws", 1), 0),
    ];
    for (what, event, want) in cases {
        assert_eq!(marks_of(&event), want, "{what}");
    }
}

#[test]
fn subsets_read_only_their_candidates_through_partial_indexes() {
    let mut store = Store::open_in_memory().unwrap();
    store_all(
        &mut store,
        &[
            signin("risky", 3_000, true, high_risk()),
            signin("benign", 2_000, true, EntraDetail::default()),
            signin("risky-failed", 1_000, false, high_risk()),
            console_login("console", 4_000),
            event("api", 5_000, CloudProvider::Aws, true),
            detection("detection@2", 6_000),
            detection("detection@1", 500),
        ],
    );
    assert_eq!(subset_uids(&store, Subset::EntraRisk), ["risky"]);
    assert_eq!(subset_uids(&store, Subset::AwsConsoleLogins), ["console"]);
    assert_eq!(
        subset_uids(&store, Subset::RiskDetections),
        ["detection@1", "detection@2"]
    );
    let detections = query_plan(&store, Subset::RiskDetections);
    assert!(detections.contains("events_risk_states"), "{detections}");
    let entra = query_plan(&store, Subset::EntraRisk);
    // Covering: the candidates come from the index alone, not one table page each.
    assert!(
        entra.contains("COVERING INDEX events_entra_risk") && entra.contains("events_unmarked"),
        "{entra}"
    );
    let console = query_plan(&store, Subset::AwsConsoleLogins);
    assert!(
        console.contains("COVERING INDEX events_aws_console"),
        "{console}"
    );
}

/// A store written by version 6 (no marks) is upgraded in place: its rows keep NULL marks and
/// are read as candidates, the new partial index covers them, and new rows are marked.
#[test]
fn rows_from_before_marks_are_read_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    let old = [
        signin("old-risky", 1_000, true, high_risk()),
        signin("old-benign", 2_000, true, EntraDetail::default()),
        console_login("old-console", 3_000),
    ];
    {
        let mut conn = Connection::open(&path).unwrap();
        crate::migrations::apply_up_to(&mut conn, &path, 6).unwrap();
        for e in &old {
            conn.execute(
                "INSERT INTO events (source, record_id, format, time, provider, class_uid,
                    status_id, operation, ingested_at, origin, event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 'v5', ?9)",
                rusqlite::params![
                    e.metadata.log_name.record_source().as_str(),
                    e.metadata.uid,
                    e.metadata.log_name.as_str(),
                    e.time,
                    e.cloud.provider.as_str(),
                    e.class_uid,
                    e.status_id,
                    e.operation(),
                    serde_json::to_string(e).unwrap(),
                ],
            )
            .unwrap();
        }
    }
    let mut store = Store::open(&path).unwrap();
    let marks: Vec<Option<i64>> = store
        .connection()
        .prepare("SELECT marks FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(marks, [None, None, None]);
    store_all(
        &mut store,
        &[
            signin("new-risky", 4_000, true, high_risk()),
            signin("new-benign", 5_000, true, EntraDetail::default()),
        ],
    );
    // Old rows are candidates whatever they hold (the hunt checks each); new rows only if marked.
    assert_eq!(
        subset_uids(&store, Subset::EntraRisk),
        ["old-risky", "old-benign", "old-console", "new-risky"]
    );
    assert_eq!(
        subset_uids(&store, Subset::AwsConsoleLogins),
        ["old-console"]
    );
}
