//! Store story test: open, ingest, dedup, quarantine, checkpoints, reopen, query.

use crosswind_model::*;

use crate::*;

pub(crate) fn event(uid: &str, time: i64, provider: CloudProvider, ok: bool) -> Event {
    let format = match provider {
        CloudProvider::Azure => SourceFormat::GraphSignIn,
        CloudProvider::Aws => SourceFormat::CloudTrail,
    };
    Event {
        schema_version: SCHEMA_VERSION,
        class_uid: CLASS_AUTHENTICATION,
        time,
        status_id: if ok { STATUS_SUCCESS } else { STATUS_FAILURE },
        status_code: None,
        status_detail: None,
        metadata: Metadata {
            uid: uid.into(),
            product: "test".into(),
            log_name: format,
            correlation_uid: None,
            event_types: vec![],
        },
        cloud: Cloud {
            provider,
            account: Account {
                uid: Some("acct".into()),
            },
            region: None,
        },
        src_endpoint: SrcEndpoint {
            ip: Some("203.0.113.7".into()),
            ..Default::default()
        },
        user: Some(User {
            name: Some("alice@corp.example".into()),
            ..Default::default()
        }),
        actor: None,
        api: None,
        service: None,
        http_request: None,
        is_mfa: None,
        finding_info: None,
        entra: None,
        aws: None,
    }
}

fn insert(store: &mut Store, events: &[Event]) -> BatchStats {
    let mut batch = store.begin().unwrap();
    for e in events {
        let raw = format!("{{\"id\":\"{}\"}}", e.metadata.uid);
        batch
            .insert(&NewRecord {
                event: e,
                format: e.metadata.log_name,
                raw: raw.as_bytes(),
                origin: "test",
            })
            .unwrap();
    }
    batch.commit().unwrap()
}

/// A new store and the WAL and shared-memory files SQLite creates beside it are private
/// (0600), whatever the process umask would give (tests run under 022: 0644).
#[test]
fn a_new_store_and_its_wal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let mut store = Store::open(&path).unwrap();
    insert(&mut store, &[]);
    store.checkpoint("probe").unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("private.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn story_ingest_dedup_query_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    let mut store = Store::open(&path).unwrap();
    let events = vec![
        event("a", 3_000, CloudProvider::Azure, true),
        event("b", 1_000, CloudProvider::Azure, false),
        event("c", 2_000, CloudProvider::Aws, true),
    ];
    let stats = insert(&mut store, &events);
    assert_eq!((stats.stored, stats.duplicates), (3, 0));
    assert_eq!(
        (stats.min_new_time, stats.max_new_time),
        (Some(1_000), Some(3_000))
    );

    // Same ids again: nothing new. Same id in the other source: new.
    let again = insert(&mut store, &events);
    assert_eq!((again.stored, again.duplicates), (0, 3));
    let other = insert(&mut store, &[event("a", 5_000, CloudProvider::Aws, true)]);
    assert_eq!(other.stored, 1);

    // Time order, filters, raw bytes kept exactly.
    let all: Vec<_> = store.events(&EventQuery::default()).unwrap();
    let uids: Vec<_> = all.iter().map(|e| e.event.metadata.uid.as_str()).collect();
    assert_eq!(uids, ["b", "c", "a", "a"]);
    let azure_ok = store
        .events(&EventQuery {
            provider: Some(CloudProvider::Azure),
            success_only: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(azure_ok.len(), 1);
    assert_eq!(azure_ok[0].event, events[0]);
    let window = store
        .events(&EventQuery {
            since: Some(1_000),
            until: Some(3_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(window.len(), 2, "since is inclusive, until exclusive");
    assert_eq!(
        store.raw_record(azure_ok[0].id).unwrap().unwrap(),
        br#"{"id":"a"}"#
    );

    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.counts().unwrap().events, 4);
    assert!(
        store
            .event_id(RecordSource::CloudTrail, "a")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.record_ids(RecordSource::EntraSignIn).unwrap(),
        ["a", "b"]
    );
    assert_eq!(store.events_after(2, 10).unwrap().len(), 2);
}

#[test]
fn quarantine_and_checkpoint_commit_with_the_batch() {
    let mut store = Store::open_in_memory().unwrap();
    {
        let mut batch = store.begin().unwrap();
        batch
            .quarantine(&QuarantineRecord {
                origin: "file.ndjson",
                position: Some("line 3"),
                reason: "invalid json",
                raw: b"{oops",
            })
            .unwrap();
        batch
            .set_checkpoint("azure_signins:corp", "2026-11-30T00:00:00Z")
            .unwrap();
        // Dropped without commit: rolled back.
    }
    assert_eq!(store.counts().unwrap().quarantined, 0);
    assert!(store.checkpoint("azure_signins:corp").unwrap().is_none());

    let mut batch = store.begin().unwrap();
    batch
        .quarantine(&QuarantineRecord {
            origin: "file.ndjson",
            position: Some("line 3"),
            reason: "invalid json",
            raw: b"{oops",
        })
        .unwrap();
    batch.set_checkpoint("azure_signins:corp", "t1").unwrap();
    batch.set_checkpoint("azure_signins:corp", "t2").unwrap();
    assert_eq!(batch.commit().unwrap().quarantined, 1);
    let q = store.quarantine(10).unwrap();
    assert_eq!(
        (q[0].reason.as_str(), q[0].raw.as_slice()),
        ("invalid json", &b"{oops"[..])
    );
    assert_eq!(
        store
            .checkpoint("azure_signins:corp")
            .unwrap()
            .unwrap()
            .value,
        "t2"
    );
    assert_eq!(store.checkpoints().unwrap().len(), 1);
}

#[test]
fn unopenable_path_names_the_path() {
    let err = Store::open(Path::new("/nonexistent-dir/x/cw.db"))
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent-dir/x/cw.db"), "{msg}");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn quarantine_once_keeps_one_row_per_origin_and_bytes() {
    let mut store = Store::open_in_memory().unwrap();
    let rec = |origin, raw| QuarantineRecord {
        origin,
        position: Some("page 0 item 1"),
        reason: "invalid status",
        raw,
    };
    for _ in 0..2 {
        let mut batch = store.begin().unwrap();
        batch
            .quarantine_once(&rec("crosswind:corp", b"{\"a\":1}"))
            .unwrap();
        batch
            .quarantine_once(&rec("crosswind:corp", b"{\"a\":2}"))
            .unwrap();
        batch
            .quarantine_once(&rec("crosswind:other", b"{\"a\":1}"))
            .unwrap();
        batch.commit().unwrap();
    }
    let mut batch = store.begin().unwrap();
    assert!(
        !batch
            .quarantine_once(&rec("crosswind:corp", b"{\"a\":1}"))
            .unwrap()
    );
    // Plain quarantine (import) still keeps every read.
    batch
        .quarantine(&rec("crosswind:corp", b"{\"a\":1}"))
        .unwrap();
    let stats = batch.commit().unwrap();
    assert_eq!((stats.quarantined, stats.quarantine_repeats), (1, 1));
    assert_eq!(store.counts().unwrap().quarantined, 4);
}

#[test]
fn prune_checkpoints_only_touches_old_ones_under_the_prefix() {
    let mut store = Store::open_in_memory().unwrap();
    let mut batch = store.begin().unwrap();
    for name in [
        "aws:corp:s3key:a",
        "aws:corp:s3key:b",
        "aws:corp:s3",
        "aws:corp2:s3key:a",
        "aws:corp:s3keyz",
    ] {
        batch.set_checkpoint(name, "v").unwrap();
    }
    batch.commit().unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(store.prune_checkpoints("aws:corp:s3key:", hour).unwrap(), 0);
    store
        .connection()
        .execute(
            "UPDATE checkpoints SET updated_at = updated_at - 7200000 WHERE name != 'aws:corp:s3key:b'",
            [],
        )
        .unwrap();
    assert_eq!(store.prune_checkpoints("aws:corp:s3key:", hour).unwrap(), 1);
    let left: Vec<String> = store
        .checkpoints()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        left,
        [
            "aws:corp2:s3key:a",
            "aws:corp:s3",
            "aws:corp:s3key:b",
            "aws:corp:s3keyz"
        ]
    );
}

/// A risk detection's states are separate records; the newest `lastUpdatedDateTime` is its
/// current state whatever order the states arrived in, and another detection whose id starts
/// the same way is not mixed in.
#[test]
fn risk_detection_states_and_the_latest() {
    let state = |detection: &str, updated: &str, risk_state: &str| {
        let mut e = event(
            &format!("{}{updated}", risk_detection_record_prefix(detection)),
            1_000,
            CloudProvider::Azure,
            true,
        );
        e.class_uid = CLASS_DETECTION_FINDING;
        e.status_id = STATUS_UNKNOWN;
        e.metadata.log_name = SourceFormat::GraphRiskDetection;
        e.finding_info = Some(FindingInfo {
            uid: detection.to_owned(),
            title: "leakedCredentials".to_owned(),
            types: vec![],
            created_time: None,
            modified_time: 0,
        });
        e.entra = Some(EntraDetail {
            risk_state: Some(risk_state.to_owned()),
            ..EntraDetail::default()
        });
        e
    };
    let mut store = Store::open_in_memory().unwrap();
    // The dismissal arrives before the state it replaces.
    insert(
        &mut store,
        &[
            state("d1", "2025-03-06T09:00:00.000Z", "dismissed"),
            state("d1@x", "2025-03-07T00:00:00.000Z", "atRisk"),
            state("d10", "2025-03-08T00:00:00.000Z", "atRisk"),
        ],
    );
    insert(
        &mut store,
        &[state("d1", "2025-03-04T20:53:12.198Z", "atRisk")],
    );
    let risk_state = |e: &StoredEvent| {
        e.event
            .entra
            .as_ref()
            .and_then(|d| d.risk_state.clone())
            .unwrap_or_default()
    };
    let states: Vec<String> = store
        .risk_detection_states("d1")
        .unwrap()
        .iter()
        .map(risk_state)
        .collect();
    assert_eq!(states, ["atRisk", "dismissed"]);
    let latest = store.latest_risk_detection("d1").unwrap();
    assert_eq!(
        latest.as_ref().map(risk_state).as_deref(),
        Some("dismissed")
    );
    assert_eq!(
        store
            .latest_risk_detection("d1@x")
            .unwrap()
            .map(|e| e.event.metadata.uid),
        Some("d1@x@2025-03-07T00:00:00.000Z".to_owned())
    );
    assert!(store.latest_risk_detection("d").unwrap().is_none());
    // An index range, not a scan of every event.
    let plan: String = store
        .connection()
        .prepare(&format!("EXPLAIN QUERY PLAN {RISK_STATES_DESC}"))
        .unwrap()
        .query_map(params!["a", "b", 1, 1], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(plan.contains("INDEX events_risk_states"), "{plan}");
}

/// A collector re-basing a checkpoint found ahead of the host clock asks for the newest event it
/// brought that is not in the future: other origins and future-dated records do not count.
#[test]
fn newest_event_time_of_an_origin() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.newest_event_time("test", i64::MAX).unwrap(), None);
    insert(
        &mut store,
        &[
            event("a", 1_000, CloudProvider::Aws, true),
            event("b", 5_000, CloudProvider::Aws, true),
            event("far", 9_000_000, CloudProvider::Aws, true),
        ],
    );
    let mut batch = store.begin().unwrap();
    let other = event("c", 7_000, CloudProvider::Aws, true);
    batch
        .insert(&NewRecord {
            event: &other,
            format: other.metadata.log_name,
            raw: b"{}",
            origin: "other",
        })
        .unwrap();
    batch.commit().unwrap();
    assert_eq!(store.newest_event_time("test", 8_000).unwrap(), Some(5_000));
    assert_eq!(store.newest_event_time("test", 4_999).unwrap(), Some(1_000));
    assert_eq!(
        store.newest_event_time("other", 8_000).unwrap(),
        Some(7_000)
    );
    assert_eq!(store.newest_event_time("test", 999).unwrap(), None);
}

/// A record the store refuses (here: over SQLite's length limit) fails alone: the batch stays
/// open, nothing of that record is left behind, and its neighbours commit.
#[test]
fn a_refused_record_leaves_nothing_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store
        .connection()
        .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 10_000)
        .unwrap();
    let events = [
        event("before", 1_000, CloudProvider::Aws, true),
        event("huge", 2_000, CloudProvider::Aws, true),
        event("after", 3_000, CloudProvider::Aws, true),
    ];
    let mut batch = store.begin().unwrap();
    let mut refused = Vec::new();
    for e in &events {
        let raw = if e.metadata.uid == "huge" {
            format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000))
        } else {
            format!("{{\"id\":\"{}\"}}", e.metadata.uid)
        };
        let new = NewRecord {
            event: e,
            format: e.metadata.log_name,
            raw: raw.as_bytes(),
            origin: "test",
        };
        if batch.insert(&new).is_err() {
            refused.push(e.metadata.uid.clone());
            assert!(batch.is_open());
        }
    }
    let stats = batch.commit().unwrap();
    assert_eq!(refused, ["huge"]);
    assert_eq!(stats.stored, 2);
    let count = |sql: &str| -> i64 { store.connection().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM events"), 2);
    assert_eq!(count("SELECT count(*) FROM raw_records"), 2);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE record_id = 'huge'"),
        0
    );
}

/// The dedup key is a hash (schema 8): a record whose key another record already holds (a
/// collision, forged here by moving a row's key) is still stored, once, and found by its id;
/// rows written without a key dedup too. Dedup stays exact on `(source, record id)`.
#[test]
fn dedup_is_exact_when_keys_collide_or_are_missing() {
    let mut store = Store::open_in_memory().unwrap();
    let a = event("a", 1_000, CloudProvider::Azure, true);
    let b = event("b", 2_000, CloudProvider::Azure, true);
    assert_eq!(insert(&mut store, std::slice::from_ref(&a)).stored, 1);
    // Row "a" now holds the key "b" hashes to: "b" collides with it. (Only "b" is looked up
    // below: "a" no longer holds its own key, which no real row does.)
    let key_b = dedup::record_key("entra_signin", "b");
    store
        .connection()
        .execute(
            "UPDATE events SET record_key = ?1 WHERE record_id = 'a'",
            [key_b],
        )
        .unwrap();
    let stats = insert(&mut store, &[b.clone(), b.clone()]);
    assert_eq!((stats.stored, stats.duplicates), (1, 1), "same batch");
    assert_eq!(insert(&mut store, std::slice::from_ref(&b)).duplicates, 1);
    let unkeyed: Vec<String> = store
        .connection()
        .prepare("SELECT record_id FROM events WHERE record_key IS NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(unkeyed, ["b"]);
    let id_b = store.event_id(RecordSource::EntraSignIn, "b").unwrap();
    assert!(id_b.is_some());
    let found = correlate::events_by_record_ids(&store, &["b".into()]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(Some(found[0].id), id_b);

    // The key holder goes (retention): "b" is still found unkeyed, never stored twice.
    store
        .connection()
        .execute("DELETE FROM events WHERE record_id = 'a'", [])
        .unwrap();
    assert_eq!(insert(&mut store, std::slice::from_ref(&b)).duplicates, 1);
    assert_eq!(
        store.event_id(RecordSource::EntraSignIn, "b").unwrap(),
        id_b
    );
    // "a" again: its own key is free, it is new.
    assert_eq!(insert(&mut store, std::slice::from_ref(&a)).stored, 1);

    // A row written by SQL without a key.
    store
        .connection()
        .execute(
            "INSERT INTO events (source, record_id, format, time, provider, class_uid, status_id,
                                 ingested_at, origin, event)
             VALUES ('cloudtrail', 'c', 'cloudtrail', 3000, 'AWS', 6003, 1, 0, 'test', '{}')",
            [],
        )
        .unwrap();
    let c = event("c", 3_000, CloudProvider::Aws, true);
    assert_eq!(insert(&mut store, std::slice::from_ref(&c)).duplicates, 1);
    assert_eq!(store.counts().unwrap().events, 3);
    assert_eq!(
        store.record_ids(RecordSource::EntraSignIn).unwrap(),
        ["a", "b"]
    );
}

/// A store mapped for reading reads the same events, including what another connection writes
/// after the map was set up (WAL frames are read as before).
#[test]
fn a_store_mapped_for_reading_sees_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    let mut writer = Store::open(&path).unwrap();
    insert(&mut writer, &[event("a", 10, CloudProvider::Azure, true)]);
    let reader = Store::open(&path).unwrap();
    reader.map_for_reading().unwrap();
    let mapped: i64 = reader
        .connection()
        .query_row("PRAGMA mmap_size", [], |r| r.get(0))
        .unwrap();
    assert!(mapped > 0, "mmap_size {mapped}");
    insert(&mut writer, &[event("b", 20, CloudProvider::Aws, true)]);
    let uids: Vec<String> = reader
        .events(&EventQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.event.metadata.uid)
        .collect();
    assert_eq!(uids, ["a", "b"]);
}
