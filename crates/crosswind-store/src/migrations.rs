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
];

/// Applies every migration newer than the store's version, each in its own transaction.
pub(crate) fn apply(conn: &mut Connection, path: &Path) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
