//! Migrations: a store written at an older schema version, with data, comes through the newer
//! migrations with every row, value, index and reference intact.

use crate::codec::tests::{TRAIN_AT, assert_exact, insert_range};
use crate::*;

fn scalar<T: rusqlite::types::FromSql>(store: &Store, sql: &str) -> T {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn index_names(store: &Store, table: &str) -> Vec<String> {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1
               AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
        )
        .unwrap();
    stmt.query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Version 6 rebuilds `events` with AUTOINCREMENT: a version-5 store full of plain and
/// dictionary-compressed rows keeps every event and raw record byte for byte, its indexes, the
/// `raw_records` → `events` cascade and its checkpoints, and from then on never hands out an id
/// twice.
#[test]
fn version_5_store_with_data_comes_through_the_events_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    {
        let mut store = Store::open_at_version(&path, 5).unwrap();
        assert_eq!(scalar::<i64>(&store, "PRAGMA user_version"), 5);
        store.set_train_at(TRAIN_AT, u64::MAX);
        insert_range(&mut store, 0..700);
        // Retention removed the newest rows: version 5 would give their ids out again.
        store
            .connection()
            .execute("DELETE FROM events WHERE id > 600", [])
            .unwrap();
        let mut batch = store.begin().unwrap();
        batch.set_checkpoint("correlate", "700").unwrap();
        batch
            .set_checkpoint("graph:corp", "2026-11-02T00:00:00Z")
            .unwrap();
        batch.commit().unwrap();
        assert!(scalar::<i64>(&store, "SELECT count(*) FROM zstd_dicts") > 0);
    }

    // Version 6 as it was: later migrations have their own tests.
    let mut store = Store::open_at_version(&path, 6).unwrap();
    assert_eq!(scalar::<i64>(&store, "PRAGMA user_version"), 6);
    assert_exact(&store, 600);
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM raw_records"),
        600
    );
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM events WHERE event_dict IS NOT NULL"
        ),
        600 - (TRAIN_AT as i64 - 1),
        "compressed events keep their dictionary"
    );
    assert_eq!(
        index_names(&store, "events"),
        ["events_ip_time", "events_time", "events_user_time"]
    );
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '%events_v6%'"
        ),
        0,
        "the temporary table is gone"
    );
    let sql: String = scalar(
        &store,
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    );
    assert!(sql.contains("AUTOINCREMENT"), "{sql}");
    assert!(scalar::<bool>(&store, "PRAGMA foreign_keys"));
    assert_eq!(scalar::<String>(&store, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    assert_eq!(
        store.checkpoint("graph:corp").unwrap().unwrap().value,
        "2026-11-02T00:00:00Z"
    );
    assert_eq!(crate::cursor::id_high_water(&store).unwrap(), 600);

    // Ids continue above every id used, even after the newest rows go again.
    insert_range(&mut store, 700..710);
    assert_eq!(
        scalar::<i64>(&store, "SELECT min(id) FROM events WHERE id > 600"),
        601
    );
    store
        .connection()
        .execute("DELETE FROM events WHERE id > 600", [])
        .unwrap();
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM raw_records"),
        600,
        "raw records still go with their events"
    );
    insert_range(&mut store, 710..711);
    assert_eq!(scalar::<i64>(&store, "SELECT max(id) FROM events"), 611);
}

/// What SQLite's planner says it does for `sql`, one line per step.
fn plan(store: &Store, sql: &str, args: impl rusqlite::Params) -> String {
    let mut stmt = store
        .connection()
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    stmt.query_map(args, |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
        .join("\n")
}

/// Version 8 rebuilds `events` with the integer dedup key: a version-7 store keeps every event,
/// raw record, id and the id counter, every row gets its key, and dedup goes on exactly —
/// records stored before the migration are duplicates after it.
#[test]
fn version_7_store_with_data_comes_through_the_dedup_key_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    {
        let mut store = Store::open_at_version(&path, 7).unwrap();
        store.set_train_at(TRAIN_AT, u64::MAX);
        insert_range(&mut store, 0..700);
        // Retention removed the newest rows: the counter stays ahead of the stored ids.
        store
            .connection()
            .execute("DELETE FROM events WHERE id > 600", [])
            .unwrap();
        let mut batch = store.begin().unwrap();
        batch.set_checkpoint("correlate", "600").unwrap();
        batch.commit().unwrap();
        let sql: String = scalar(
            &store,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        );
        assert!(sql.contains("UNIQUE (source, record_id)"), "{sql}");
    }

    // Version 8 as it was: version 9 has its own test.
    let mut store = Store::open_at_version(&path, 8).unwrap();
    assert_eq!(scalar::<i64>(&store, "PRAGMA user_version"), 8);
    assert_exact(&store, 600);
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM raw_records"),
        600
    );
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM events WHERE marks IS NOT NULL AND event_dict IS NOT NULL"
        ),
        600 - (TRAIN_AT as i64 - 1),
        "marks and dictionaries kept"
    );
    // Every row keyed, with the key the inserts compute.
    let mut stmt = store
        .connection()
        .prepare("SELECT source, record_id, record_key FROM events")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    drop(stmt);
    assert_eq!(rows.len(), 600);
    for (source, record_id, key) in rows {
        assert_eq!(key, Some(crate::dedup::record_key(&source, &record_id)));
    }
    let sql: String = scalar(
        &store,
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    );
    assert!(!sql.contains("UNIQUE"), "{sql}");
    assert_eq!(
        index_names(&store, "events"),
        [
            "events_aws_console",
            "events_entra_risk",
            "events_ip_time",
            "events_record_key",
            "events_risk_states",
            "events_time",
            "events_unkeyed",
            "events_unmarked",
            "events_user_time"
        ]
    );
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%events_v8%'"
        ),
        0,
        "the temporary table is gone"
    );
    assert!(scalar::<bool>(&store, "PRAGMA foreign_keys"));
    assert_eq!(scalar::<String>(&store, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        scalar::<i64>(&store, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    assert_eq!(crate::cursor::id_high_water(&store).unwrap(), 700);

    // The lookups use the new indexes.
    let find = plan(
        &store,
        crate::dedup::FIND,
        rusqlite::params!["entra_signin", "x", 1i64],
    );
    assert!(find.contains("events_record_key"), "{find}");
    assert!(find.contains("events_unkeyed"), "{find}");
    let risk = plan(
        &store,
        crate::RISK_STATES_ASC,
        rusqlite::params!["a@", "aA", 3, 1],
    );
    assert!(risk.contains("events_risk_states"), "{risk}");

    // Dedup goes on: the stored records are duplicates, the deleted ones are new, under ids
    // above every id used.
    let again = insert_range(&mut store, 0..700);
    assert_eq!((again.stored, again.duplicates), (100, 600));
    assert_eq!(
        scalar::<i64>(&store, "SELECT min(id) FROM events WHERE id > 600"),
        701
    );
}

/// Version 9 rebuilds the IP index to cover the cloud and user, for events with an IP only, and
/// indexes signals by kind: a version-8 store keeps its rows and gets an IP index holding exactly
/// those with an IP.
#[test]
fn version_8_store_gets_the_covering_ip_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    {
        let mut store = Store::open_at_version(&path, 8).unwrap();
        insert_range(&mut store, 0..300);
        // AWS service calls carry a host name, not an IP.
        store
            .connection()
            .execute("UPDATE events SET src_ip = NULL WHERE id % 3 = 0", [])
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(scalar::<i64>(&store, "PRAGMA user_version"), 9);
    let sql: String = scalar(
        &store,
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_ip_time'",
    );
    assert!(
        sql.contains("(src_ip, provider, time, user_name)")
            && sql.contains("WHERE src_ip IS NOT NULL"),
        "{sql}"
    );
    assert!(index_names(&store, "signals").contains(&"signals_signal_time".to_string()));
    assert_eq!(scalar::<i64>(&store, "SELECT count(*) FROM events"), 300);
    assert_eq!(
        scalar::<i64>(
            &store,
            "SELECT count(*) FROM events INDEXED BY events_ip_time WHERE src_ip IS NOT NULL"
        ),
        200
    );
    assert_eq!(scalar::<String>(&store, "PRAGMA integrity_check"), "ok");
}
