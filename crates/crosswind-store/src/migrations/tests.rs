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
