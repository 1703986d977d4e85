//! Decoding ahead on a second thread: every event in row order across many hand-overs, plain
//! and compressed alike; an early stop hands nothing more over; a damaged row is an error at its
//! place, after every event before it.

use crate::codec::tests::{TRAIN_AT, insert_range, record_event};
use crate::*;

/// More rows than several hand-overs, the first ones stored plain, the rest compressed.
const ROWS: usize = 3 * super::CHUNK + 17;

fn uids(store: &Store, stop_after: Option<usize>) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    crate::correlate::for_each_event_ordered(store, i64::MIN, i64::MAX, |e| {
        seen.push(e.event.metadata.uid.clone());
        Ok::<_, StoreError>(stop_after != Some(seen.len()))
    })?;
    Ok(seen)
}

fn stored_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);
    insert_range(&mut store, 0..ROWS);
    (dir, store)
}

#[test]
fn events_arrive_in_order_and_exactly() {
    let (_dir, store) = stored_store();
    let compressed: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM events WHERE event_dict IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(compressed > 2 * super::CHUNK as i64, "{compressed}");
    let want: Vec<String> = (0..ROWS).map(|i| record_event(i).metadata.uid).collect();
    assert_eq!(uids(&store, None).unwrap(), want);
    let mut events = Vec::new();
    store
        .for_each_event(&EventQuery::default(), |e| {
            events.push(e.event);
            Ok::<_, StoreError>(true)
        })
        .unwrap();
    assert_eq!(events, (0..ROWS).map(record_event).collect::<Vec<_>>());
}

#[test]
fn early_stop_hands_nothing_more_over() {
    let (_dir, store) = stored_store();
    for stop in [1, super::CHUNK, super::CHUNK + 1, ROWS - 1] {
        assert_eq!(uids(&store, Some(stop)).unwrap().len(), stop);
    }
}

#[test]
fn a_damaged_row_is_an_error_after_every_event_before_it() {
    let (_dir, store) = stored_store();
    let bad = super::CHUNK + 100;
    let uid = record_event(bad).metadata.uid;
    store
        .connection()
        .execute(
            "UPDATE events SET event = substr(event, 1, 10) WHERE record_id = ?1",
            [&uid],
        )
        .unwrap();
    let mut seen = 0;
    let err = crate::correlate::for_each_event_ordered(&store, i64::MIN, i64::MAX, |_| {
        seen += 1;
        Ok::<_, StoreError>(true)
    })
    .unwrap_err();
    assert!(matches!(err, StoreError::Codec(_)), "{err}");
    assert_eq!(seen, bad);
}
