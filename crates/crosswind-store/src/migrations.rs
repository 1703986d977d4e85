//! Embedded, versioned schema migrations, tracked in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// Migrations in order; index + 1 is the schema version they bring the store to.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_correlate.sql"),
    include_str!("../migrations/0003_outbox.sql"),
    include_str!("../migrations/0004_quarantine_once.sql"),
    include_str!("../migrations/0005_zstd_dicts.sql"),
    include_str!("../migrations/0006_events_ids_never_reused.sql"),
    include_str!("../migrations/0007_hunt_marks.sql"),
    include_str!("../migrations/0008_integer_dedup_key.sql"),
    include_str!("../migrations/0009_ip_index_covers_provider.sql"),
];

/// Applies every migration newer than the store's version up to schema version `target` (the
/// latest but in tests), each in its own transaction.
pub(crate) fn apply_up_to(conn: &mut Connection, path: &Path, target: usize) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            supported,
        });
    }
    if current >= target as i64 {
        return Ok(());
    }
    // A migration that rebuilds a table (new table, copy, drop, rename) needs foreign keys off:
    // with them on, dropping the old table deletes the rows that reference it (ON DELETE
    // CASCADE). The pragma cannot change inside a transaction, and each migration checks the
    // keys itself before it commits.
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let applied = (|| {
        for (index, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .take(target)
            .skip(current as usize)
        {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            let dangling: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if dangling > 0 {
                return Err(StoreError::Migration {
                    version: index as i64 + 1,
                    message: format!("{dangling} rows reference rows that do not exist"),
                });
            }
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", foreign_keys)?;
    applied
}

/// Schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests;
