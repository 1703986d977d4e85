//! The dedup key (migration 0008): `events.record_key`, a 64-bit hash of `(source, record_id)`
//! under a UNIQUE index, instead of a UNIQUE index on the text pair — a quarter of the size,
//! integers to compare, for the same exact dedup.
//!
//! Invariants:
//! - a record is stored once per `(source, record_id)`, whatever the hashes: a record whose key
//!   is taken by a *different* record (a collision) is stored with `record_key` NULL, and every
//!   lookup by `(source, record_id)` also searches those unkeyed rows (partial index
//!   `events_unkeyed`). Rows written without a key (older code, tests writing SQL) are found
//!   there as well;
//! - the key is stable: the same bytes on every platform and version (it is stored). Changing
//!   [`record_key`] needs a migration that rewrites every key.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// The schema version that added `events.record_key`.
pub(crate) const SCHEMA_VERSION: usize = 8;

/// The first 8 bytes (big-endian) of SHA-256 over the length-prefixed source and record id.
/// A cryptographic hash, so record ids chosen to collide cost a lookup each, not dedup.
pub fn record_key(source: &str, record_id: &str) -> i64 {
    let mut h = Sha256::new();
    for part in [source, record_id] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// `crosswind_record_key(source, record_id)`: [`record_key`] for SQL (migration 0008 keys the
/// rows it copies with it).
pub(crate) fn register_sql_function(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "crosswind_record_key",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let source = ctx.get_raw(0).as_str().map_err(rusqlite::Error::from)?;
            let record_id = ctx.get_raw(1).as_str().map_err(rusqlite::Error::from)?;
            Ok(record_key(source, record_id))
        },
    )
}

/// The row id of the event stored under `(source, record_id)`: the keyed row, else an unkeyed
/// one (a collision, or a row written without a key). `INDEXED BY`: without statistics SQLite
/// would walk the NULL entries of `events_record_key` instead, one row read per unkeyed row.
pub(crate) const FIND: &str = "SELECT id FROM events
     WHERE record_key = ?3 AND source = ?1 AND record_id = ?2
     UNION ALL
     SELECT id FROM events INDEXED BY events_unkeyed
     WHERE record_key IS NULL AND source = ?1 AND record_id = ?2
     LIMIT 1";

/// The same, for a store before [`SCHEMA_VERSION`] (tests of older schemas).
pub(crate) const FIND_UNKEYED_SCHEMA: &str =
    "SELECT id FROM events WHERE source = ?1 AND record_id = ?2";

/// Whether `(source, record_id)` is stored without a key.
pub(crate) fn stored_unkeyed(
    conn: &Connection,
    source: &str,
    record_id: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM events INDEXED BY events_unkeyed
             WHERE record_key IS NULL AND source = ?1 AND record_id = ?2",
        )?
        .query_row(params![source, record_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether any event is stored without a key: if none is, an insert need not search for one.
pub(crate) fn any_unkeyed(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE record_key IS NULL)")?
        .query_row([], |r| r.get(0))
}

/// Whether the row holding `key` is `(source, record_id)` (else: a collision).
pub(crate) fn key_holder_is(
    conn: &Connection,
    key: i64,
    source: &str,
    record_id: &str,
) -> rusqlite::Result<bool> {
    let holder: Option<(String, String)> = conn
        .prepare_cached("SELECT source, record_id FROM events WHERE record_key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(holder.is_some_and(|(s, r)| s == source && r == record_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_and_separates_source_from_id() {
        // Stored in every row: these values must never change (computed independently, with
        // Python's hashlib).
        assert_eq!(
            record_key("entra_signin", "66ea54eb-6301-4ee5-be62-ff5a759b0100"),
            -2_098_583_103_384_707_119
        );
        assert_eq!(record_key("cloudtrail", "a"), -1_212_169_445_119_845_507);
        assert_ne!(
            record_key("entra_signin", "a"),
            record_key("cloudtrail", "a")
        );
        // Length prefixes: moving bytes between the parts changes the key.
        assert_ne!(record_key("ab", "c"), record_key("a", "bc"));
    }
}
