//! Follower cursors: ids never go back below a cursor, and a store where they did (written by a
//! version before 6) has its cursors moved back so that no row stays unread.

use rusqlite::params;

use crate::cursor::{FollowerCursor, follower_cursor, id_high_water, lag};
use crate::retention::purge;
use crate::tests::event;
use crate::*;

fn insert(store: &mut Store, uids: std::ops::Range<usize>, time: i64) {
    let mut batch = store.begin().unwrap();
    for i in uids {
        let e = event(
            &format!("e{i}"),
            time,
            crosswind_model::CloudProvider::Aws,
            true,
        );
        batch
            .insert(&NewRecord {
                event: &e,
                format: e.metadata.log_name,
                raw: b"{}",
                origin: "test",
            })
            .unwrap();
    }
    batch.commit().unwrap();
}

fn set_cursor(store: &mut Store, name: &str, value: i64) {
    let mut batch = store.begin().unwrap();
    batch.set_checkpoint(name, &value.to_string()).unwrap();
    batch.commit().unwrap();
}

fn ids_after(store: &Store, after: i64) -> Vec<i64> {
    store
        .events_after(after, 1_000)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Dates the rows and the cursor's last move so that "stored after the cursor moved" does not
/// depend on two writes landing in different milliseconds.
fn age(store: &Store, name: &str, ingested_at: i64, cursor_moved_at: i64) {
    let conn = store.connection();
    conn.execute("UPDATE events SET ingested_at = ?1", [ingested_at])
        .unwrap();
    conn.execute(
        "UPDATE checkpoints SET updated_at = ?1 WHERE name = ?2",
        params![cursor_moved_at, name],
    )
    .unwrap();
}

/// The bug: retention removes the newest rows (the followers have read them), and new records
/// got their ids again — at or below the cursors, so never read.
#[test]
fn records_after_retention_removed_the_newest_are_after_every_cursor() {
    let mut store = Store::open_in_memory().unwrap();
    insert(&mut store, 0..10, 1_000);
    set_cursor(&mut store, "correlate", 10);
    let purged = purge(&mut store, i64::MAX, 10, 100).unwrap();
    assert_eq!(purged.events, 10);
    insert(&mut store, 10..13, 2_000);
    let cursor = follower_cursor(&mut store, "correlate").unwrap();
    assert_eq!(
        cursor,
        FollowerCursor {
            after: 10,
            rebased_from: None
        }
    );
    assert_eq!(ids_after(&store, cursor.after), [11, 12, 13]);
    assert_eq!(id_high_water(&store).unwrap(), 13);
}

/// A version-5 store where it already happened: rows 6..=8 were stored after retention took
/// 6..=10 away, below the cursors (10). Migration 0006 moves the cursors back to just before the
/// first of them; a store with nothing unread gets its cursor at the newest id.
#[test]
fn migration_moves_cursors_ahead_of_every_id_back_to_the_first_unread_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    {
        let mut store = Store::open_at_version(&path, 5).unwrap();
        insert(&mut store, 0..5, 5_000);
        insert(&mut store, 5..10, 1_000);
        set_cursor(&mut store, "correlate", 10);
        set_cursor(&mut store, "daemon:outbox_feeder", 10);
        set_cursor(&mut store, "graph:corp", 2_000_000);
        age(&store, "correlate", 10_000, 20_000);
        age(&store, "daemon:outbox_feeder", 10_000, 20_000);
        assert_eq!(purge(&mut store, 2_000, 10, 100).unwrap().events, 5);
        insert(&mut store, 10..13, 6_000);
        assert_eq!(
            ids_after(&store, 0),
            [1, 2, 3, 4, 5, 6, 7, 8],
            "version 5 reuses ids"
        );
        assert_eq!(
            ids_after(&store, 10),
            Vec::<i64>::new(),
            "hidden from the cursors"
        );
    }
    let mut store = Store::open(&path).unwrap();
    for name in ["correlate", "daemon:outbox_feeder"] {
        assert_eq!(
            follower_cursor(&mut store, name).unwrap(),
            FollowerCursor {
                after: 5,
                rebased_from: None
            },
            "{name}"
        );
    }
    assert_eq!(ids_after(&store, 5), [6, 7, 8]);
    assert_eq!(
        store.checkpoint("graph:corp").unwrap().unwrap().value,
        "2000000",
        "other checkpoints are not cursors over events"
    );

    let path = dir.path().join("idle.db");
    {
        let mut store = Store::open_at_version(&path, 5).unwrap();
        insert(&mut store, 0..4, 5_000);
        set_cursor(&mut store, "correlate", 40);
        age(&store, "correlate", 10_000, 20_000);
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.checkpoint("correlate").unwrap().unwrap().value, "4");
    insert(&mut store, 4..5, 6_000);
    assert_eq!(ids_after(&store, 4), [5]);
}

/// After version 6, a cursor can only get ahead if the id counter itself went back (a store
/// edited by hand): the follower finds it on its next read and re-reads from the first row it
/// cannot have seen.
#[test]
fn a_cursor_ahead_of_every_id_handed_out_is_moved_back_on_read() {
    let mut store = Store::open_in_memory().unwrap();
    insert(&mut store, 0..10, 1_000);
    set_cursor(&mut store, "correlate", 10);
    age(&store, "correlate", 10_000, 20_000);
    let conn = store.connection();
    conn.execute("DELETE FROM events WHERE id > 5", []).unwrap();
    conn.execute("DELETE FROM sqlite_sequence", []).unwrap();
    insert(&mut store, 10..13, 2_000);
    assert_eq!(ids_after(&store, 0), [1, 2, 3, 4, 5, 6, 7, 8]);
    let cursor = follower_cursor(&mut store, "correlate").unwrap();
    assert_eq!(
        cursor,
        FollowerCursor {
            after: 5,
            rebased_from: Some(10)
        }
    );
    assert_eq!(ids_after(&store, cursor.after), [6, 7, 8]);
    // Stored: the next read needs no mending.
    assert_eq!(
        follower_cursor(&mut store, "correlate")
            .unwrap()
            .rebased_from,
        None
    );
    assert_eq!(store.checkpoint("correlate").unwrap().unwrap().value, "5");
}

/// A duplicate uses up no id (with AUTOINCREMENT `INSERT OR IGNORE` would), so ids stay dense
/// and the lag counts the records after the cursor.
#[test]
fn duplicates_use_up_no_ids_and_lag_counts_records() {
    let mut store = Store::open_in_memory().unwrap();
    insert(&mut store, 0..3, 1_000);
    set_cursor(&mut store, "correlate", 3);
    insert(&mut store, 0..3, 1_000);
    assert_eq!(id_high_water(&store).unwrap(), 3);
    assert_eq!(lag(&store, "correlate").unwrap(), 0);
    insert(&mut store, 2..5, 1_000);
    assert_eq!(ids_after(&store, 3), [4, 5]);
    assert_eq!(lag(&store, "correlate").unwrap(), 2);
}

#[test]
fn an_unset_cursor_reads_from_the_start() {
    let mut store = Store::open_in_memory().unwrap();
    insert(&mut store, 0..2, 1_000);
    assert_eq!(
        follower_cursor(&mut store, "correlate").unwrap(),
        FollowerCursor {
            after: 0,
            rebased_from: None
        }
    );
}
