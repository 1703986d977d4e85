//! Retention: removes events (with their raw records), quarantined records and delivery history
//! older than the configured number of days, in short transactions so that the collectors and
//! the sink never wait long for the write lock.
//!
//! Invariant: an event the daemon's followers (outbox feeder, correlator) have not read yet is
//! never removed: the caller passes the lowest of their cursors as `keep_after_id`.

use rusqlite::params;

use crate::{Result, Store};

/// What one [`purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionStats {
    pub events: u64,
    pub quarantined: u64,
    pub delivered: u64,
}

impl RetentionStats {
    pub fn total(&self) -> u64 {
        self.events + self.quarantined + self.delivered
    }
}

/// Deletes rows older than `cutoff_ms` (epoch ms): events by event time (their `raw_records`
/// row goes with them), quarantine rows and outbox delivery history by when they were received
/// or delivered. Events with a row id above `keep_after_id` are kept whatever their age. Works in
/// transactions of at most `chunk` rows each.
pub fn purge(
    store: &mut Store,
    cutoff_ms: i64,
    keep_after_id: i64,
    chunk: usize,
) -> Result<RetentionStats> {
    let chunk = chunk.max(1) as i64;
    let mut stats = RetentionStats::default();
    loop {
        let batch = store.begin()?;
        let tx = batch.transaction();
        // Their raw_records rows go by ON DELETE CASCADE (foreign keys are on).
        let n = tx
            .prepare_cached(
                "DELETE FROM events WHERE id IN
                   (SELECT id FROM events WHERE time < ?1 AND id <= ?2 ORDER BY time LIMIT ?3)",
            )?
            .execute(params![cutoff_ms, keep_after_id, chunk])? as u64;
        batch.commit()?;
        stats.events += n;
        if (n as i64) < chunk {
            break;
        }
    }
    loop {
        let batch = store.begin()?;
        let n = batch
            .transaction()
            .prepare_cached(
                "DELETE FROM quarantine WHERE id IN
                   (SELECT id FROM quarantine WHERE received_at < ?1 ORDER BY id LIMIT ?2)",
            )?
            .execute(params![cutoff_ms, chunk])? as u64;
        batch.commit()?;
        stats.quarantined += n;
        if (n as i64) < chunk {
            break;
        }
    }
    stats.delivered = crate::outbox::prune_delivered(store, cutoff_ms)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QuarantineRecord;

    /// Rows written directly: the test is about deletion, not about events' shape.
    fn insert_event(store: &Store, uid: &str, time: i64) {
        let conn = store.connection();
        conn.execute(
            "INSERT INTO events (source, record_id, format, time, provider, class_uid, status_id,
                                 ingested_at, origin, event)
             VALUES ('cloudtrail', ?1, 'cloudtrail', ?2, 'AWS', 6003, 1, 0, 'test', '{}')",
            params![uid, time],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO raw_records (event_id, raw) VALUES (?1, x'7b7d')",
            [conn.last_insert_rowid()],
        )
        .unwrap();
    }

    #[test]
    fn purges_old_rows_but_keeps_unread_ones() {
        let mut store = Store::open_in_memory().unwrap();
        for (i, t) in [10, 20, 30, 40].into_iter().enumerate() {
            insert_event(&store, &format!("e{i}"), t);
        }
        let mut batch = store.begin().unwrap();
        batch
            .quarantine(&QuarantineRecord {
                origin: "test",
                position: None,
                reason: "bad",
                raw: b"x",
            })
            .unwrap();
        batch.commit().unwrap();
        // Rows older than 35 may go, but the followers have only read up to row 2.
        let stats = purge(&mut store, 35, 2, 1).unwrap();
        assert_eq!(stats.events, 2);
        assert_eq!(store.counts().unwrap().events, 2);
        let raw_left: i64 = store
            .connection()
            .query_row("SELECT count(*) FROM raw_records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(raw_left, 2, "raw records go with their events");
        // Quarantine rows are dated by wall clock: a cutoff far in the past keeps them.
        assert_eq!(stats.quarantined, 0);
        let stats = purge(&mut store, i64::MAX, i64::MAX, 100).unwrap();
        assert_eq!(stats.events, 2);
        assert_eq!(stats.quarantined, 1);
        assert_eq!(store.counts().unwrap().events, 0);
    }
}
