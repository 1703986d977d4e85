//! The outbox feeder: follows the `events` table by row id and queues for Splunk the raw records
//! the collectors stored (and their normalised events, when forwarded), advancing its cursor in
//! the same transaction as the enqueue: a crash re-reads from the cursor, nothing is lost and
//! nothing doubled. Records brought by `crosswind import` (origin not `crosswind:<collector>`)
//! were queued by the import itself and are skipped.
//!
//! The daemon runs it after every committed poll; `crosswind collect` after its cycle, so that
//! `collect` then `forward` delivers what the daemon would have. Both may run at once on one
//! store: the cursor is checked again inside the write transaction, and a batch read by the other
//! process meanwhile is dropped, not queued twice.

use crosswind_hec::Renderer;
use crosswind_store::outbox::Quota;
use crosswind_store::{Store, cursor, feed};

/// The feeder's cursor: the highest `events` row id it has read. (The store's migration 0006 names
/// it too: never rename it.)
pub const FEEDER_CHECKPOINT: &str = "daemon:outbox_feeder";
/// Rows read and enqueued per transaction.
pub const FEED_BATCH: usize = 500;
/// Origin prefix of records brought by the collectors.
const COLLECTOR_ORIGIN: &str = "crosswind:";

/// What one [`feed`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Records queued (one or two outbox rows each).
    pub records: u64,
    /// Stopped because the outbox is full (`[splunk] max_outbox_rows`): the rest stays behind the
    /// cursor for a later run.
    pub full: bool,
    /// The cursor was ahead of every stored event id and was moved back (see
    /// `crosswind_store::cursor`).
    pub rebased: bool,
}

/// Queues collected records until caught up, the outbox is full, or `keep_going` returns false
/// (asked between transactions).
pub fn feed(
    store: &mut Store,
    renderer: &Renderer,
    max_outbox_rows: u64,
    mut keep_going: impl FnMut() -> bool,
) -> anyhow::Result<Fed> {
    let mut fed = Fed::default();
    while keep_going() {
        let c = cursor::follower_cursor(store, FEEDER_CHECKPOINT)?;
        if let Some(from) = c.rebased_from {
            fed.rebased = true;
            tracing::warn!(
                cursor = from,
                rebased_to = c.after,
                "The outbox feeder's cursor was ahead of every stored event id (ids went back); \
                 re-reading from the first record it cannot have seen."
            );
        }
        let after = c.after;
        let room = {
            let batch = store.begin()?;
            match Quota::check(&batch, max_outbox_rows) {
                Ok(q) => q.remaining(),
                Err(e) if e.is_full() => {
                    fed.full = true;
                    return Ok(fed);
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Two outbox rows per record at most (raw + normalised event).
        let limit = FEED_BATCH.min((room / 2).max(1) as usize);
        let (records, last) = feed::records_after(store, after, COLLECTOR_ORIGIN, limit)?;
        if last == after {
            return Ok(fed);
        }
        let mut batch = store.begin()?;
        let now_at = batch
            .checkpoint_value(FEEDER_CHECKPOINT)?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if now_at != after {
            // Another process fed this batch meanwhile (the daemon beside `collect`).
            continue;
        }
        let mut quota = Quota::check(&batch, max_outbox_rows)?;
        let mut queued = 0u64;
        for r in &records {
            let name = r.origin.strip_prefix(COLLECTOR_ORIGIN).unwrap_or(&r.origin);
            let rendered = [
                renderer.raw(r.format, &r.raw, &r.event, name),
                renderer.event(&r.event, name),
            ];
            for x in rendered.iter().flatten() {
                match crosswind_hec::enqueue(&batch, &mut quota, x) {
                    Ok(_) => {}
                    Err(e) if e.is_full() => {
                        // Rolled back with the batch: the cursor stays, nothing is lost.
                        fed.full = true;
                        return Ok(fed);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            queued += 1;
        }
        batch.set_checkpoint(FEEDER_CHECKPOINT, &last.to_string())?;
        batch.commit()?;
        fed.records += queued;
        if queued > 0 {
            tracing::debug!(
                records = queued,
                cursor = last,
                "Queued collected records for Splunk."
            );
        }
    }
    Ok(fed)
}
