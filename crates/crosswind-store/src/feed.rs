//! Reads for the daemon's followers and gauges: stored records after a row-id cursor (with the
//! raw bytes, for the outbox feeder), cheap size figures and correlation counts for `/metrics`.
//!
//! Invariant: nothing here writes; a follower advances its cursor with
//! [`Batch::set_checkpoint`](crate::Batch::set_checkpoint) in the transaction that acts on what
//! it read.

use crosswind_model::{Event, SourceFormat};
use rusqlite::params;

use crate::{Result, Store};

/// One stored record as the outbox feeder needs it.
#[derive(Clone, Debug)]
pub struct FedRecord {
    /// Row id in `events`.
    pub id: i64,
    pub format: SourceFormat,
    /// The file or collector (`crosswind:<name>`) that brought it.
    pub origin: String,
    pub event: Event,
    /// The record exactly as received.
    pub raw: Vec<u8>,
}

/// Records stored after row id `after`, oldest row first, at most `limit`, keeping those whose
/// origin starts with `origin_prefix`. Returns them and the highest row id looked at (the cursor
/// to store), `after` when there was nothing.
pub fn records_after(
    store: &Store,
    after: i64,
    origin_prefix: &str,
    limit: usize,
) -> Result<(Vec<FedRecord>, i64)> {
    let mut stmt = store.connection().prepare_cached(
        "SELECT e.id, e.format, e.origin, e.event, e.event_dict, r.raw, r.dict
         FROM events e JOIN raw_records r ON r.event_id = e.id
         WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![after, limit as i64])?;
    let mut out = Vec::new();
    let mut last = after;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        last = last.max(id);
        let origin: String = row.get(2)?;
        if !origin.starts_with(origin_prefix) {
            continue;
        }
        let format: String = row.get(1)?;
        let Some(format) = SourceFormat::parse(&format) else {
            continue;
        };
        let event = crate::event_at(store, row, id, 3)?;
        let raw = store.unpack_raw(row.get(6)?, row.get(5)?)?;
        out.push(FedRecord {
            id,
            format,
            origin,
            event,
            raw,
        });
    }
    Ok((out, last))
}

/// The highest row id in `events` (0 when empty).
pub fn max_event_id(store: &Store) -> Result<i64> {
    Ok(store
        .connection()
        .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// The database file's size in bytes (pages in use times page size; no table scan).
pub fn file_bytes(store: &Store) -> Result<u64> {
    let conn = store.connection();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((pages.max(0) as u64) * (size.max(0) as u64))
}

/// Stored signals per signal name, and the number of findings.
pub fn correlation_counts(store: &Store) -> Result<(Vec<(String, u64)>, u64)> {
    let conn = store.connection();
    let mut stmt = conn
        .prepare_cached("SELECT signal, count(*) FROM signals GROUP BY signal ORDER BY signal")?;
    let signals = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let findings: i64 = conn
        .prepare_cached("SELECT count(*) FROM findings")?
        .query_row([], |r| r.get(0))?;
    Ok((signals, findings.max(0) as u64))
}
