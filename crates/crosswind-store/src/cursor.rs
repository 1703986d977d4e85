//! Follower cursors over `events.id`: the correlator and the outbox feeder each read the rows
//! after their cursor (a checkpoint) and advance it in the transaction that acts on them.
//!
//! Invariant: a cursor is never ahead of the largest id the store has handed out. Since schema
//! version 6 ids are never reused (AUTOINCREMENT), so this holds by itself, and migration 0006
//! mended the cursors of stores where an older crosswind's retention had let ids go back. A store
//! whose id counter was reset anyway (edited by hand, restored in parts) would hide every new row
//! from the follower: [`follower_cursor`] finds that, moves the cursor back to just before the
//! first row the follower cannot have read, and says so. Reading a row twice is harmless
//! (correlation is idempotent, the feeder resends at most what it already queued); never reading
//! it is not.

use rusqlite::{OptionalExtension, params};

use crate::{Result, Store};

/// A follower's position, as [`follower_cursor`] read (and, if needed, mended) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerCursor {
    /// Read the rows with `id > after`.
    pub after: i64,
    /// The stored cursor was ahead of every id ever handed out and has been moved back from this
    /// value to `after`.
    pub rebased_from: Option<i64>,
}

/// The largest `events.id` ever handed out (0 for an empty store): the AUTOINCREMENT counter, or
/// the largest id stored when that is higher (a counter removed by hand). SQLite also counts the
/// ids of rows `INSERT OR IGNORE` left out as duplicates, so this is an upper bound, not a row.
pub fn id_high_water(store: &Store) -> Result<i64> {
    Ok(store
        .connection()
        .prepare_cached(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                    coalesce((SELECT max(id) FROM events), 0))",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The cursor checkpoint `name` as stored (0 when unset or unreadable); reads only.
pub fn stored_cursor(store: &Store, name: &str) -> Result<i64> {
    Ok(store
        .checkpoint(name)?
        .and_then(|c| c.value.parse().ok())
        .unwrap_or(0))
}

/// How far the follower `name` is behind: the ids of stored rows after its cursor (for gauges
/// and `status`; reads only). A cursor past the newest row is not behind: ids are never reused,
/// and [`follower_cursor`] mends a store where they were.
pub fn lag(store: &Store, name: &str) -> Result<u64> {
    let behind = crate::feed::max_event_id(store)?.saturating_sub(stored_cursor(store, name)?);
    Ok(behind.max(0) as u64)
}

/// The cursor checkpoint `name` (0 when unset or unreadable), checked against the ids handed out.
///
/// A cursor ahead of [`id_high_water`] means ids went back below it: every row stored since the
/// cursor last moved may hold an id the follower will never read. The cursor is then moved back,
/// in its own transaction, to just before the first such row (or to the high-water mark when there
/// is none) and the old value is reported in [`FollowerCursor::rebased_from`].
pub fn follower_cursor(store: &mut Store, name: &str) -> Result<FollowerCursor> {
    let Some(checkpoint) = store.checkpoint(name)? else {
        return Ok(FollowerCursor {
            after: 0,
            rebased_from: None,
        });
    };
    let after: i64 = checkpoint.value.parse().unwrap_or(0);
    let high = id_high_water(store)?;
    if after <= high {
        return Ok(FollowerCursor {
            after,
            rebased_from: None,
        });
    }
    // Rows stored at or after the cursor's last move were not there when it moved; with ids at or
    // below it they were never read. (At or after: a tie costs a re-read, not a loss.)
    let first_unread: Option<i64> = store
        .connection()
        .prepare_cached("SELECT min(id) FROM events WHERE id <= ?1 AND ingested_at >= ?2")?
        .query_row(params![after, checkpoint.updated_at], |r| r.get(0))
        .optional()?
        .flatten();
    let rebased = first_unread.map_or(high, |id| id - 1);
    let mut batch = store.begin()?;
    batch.set_checkpoint(name, &rebased.to_string())?;
    batch.commit()?;
    Ok(FollowerCursor {
        after: rebased,
        rebased_from: Some(after),
    })
}

#[cfg(test)]
mod tests;
