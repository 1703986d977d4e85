//! Crosswind's SQLite store: the only crate that knows SQL.
//!
//! Invariants:
//! - a record is stored once per `(source, record id)`; re-importing stores nothing new;
//! - the raw record is kept byte for byte next to its normalised event (compressed with a
//!   dictionary trained on the store's own records once there are enough, see [`codec`]; read
//!   back exactly through [`Store::raw_record`]);
//! - writes happen in a [`Batch`] (one transaction): records, quarantine rows and the checkpoint
//!   that covers them commit together or not at all;
//! - every query is a prepared statement with bound parameters, never a concatenated string.

#![forbid(unsafe_code)]

pub mod codec;
pub mod correlate;
pub mod cursor;
mod decode;
pub mod dedup;
pub mod feed;
pub mod marks;
mod migrations;
pub mod outbox;
pub mod report;
pub mod retention;
pub mod window;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crosswind_model::{CLASS_AUTHENTICATION, CloudProvider, Event, RecordSource, SourceFormat};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub use codec::{CodecError, PackedRecord, Packer};
pub use marks::Subset;
pub use migrations::latest_version as schema_version;

use codec::{Codecs, Part, UnpackError};
pub use rusqlite;

/// Store failures. Open failures name the path; everything else is SQLite or a corrupt row.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot open store at {path}: cannot create the file: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store at {path} has schema version {found}, newer than this build ({supported})")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("migration to schema version {version} failed: {message}")]
    Migration { version: i64, message: String },
    #[error("cannot serialise event: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored value cannot be compressed or read back: {0}")]
    Codec(#[source] CodecError),
    #[error("stored event {id} is not valid JSON: {source}")]
    CorruptEvent {
        id: i64,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<UnpackError> for StoreError {
    fn from(e: UnpackError) -> StoreError {
        match e {
            UnpackError::Sqlite(e) => StoreError::Sqlite(e),
            UnpackError::Codec(e) => StoreError::Codec(e),
        }
    }
}

/// An open store. One writer per process; readers may share the file (WAL).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    codecs: Codecs,
    /// Whether `events` has the `marks` column (schema 7): always, but in tests that build a
    /// store as an older version wrote it.
    marks: bool,
    /// Whether `events` has the integer dedup key (schema 8, see [`dedup`]); the same.
    keyed: bool,
}

/// A record ready to be stored: its normalised event and the exact bytes it came as.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    pub event: &'a Event,
    pub format: SourceFormat,
    pub raw: &'a [u8],
    /// The file or collector that brought it.
    pub origin: &'a str,
}

/// A record that could not be mapped, kept with the reason.
#[derive(Clone, Copy, Debug)]
pub struct QuarantineRecord<'a> {
    pub origin: &'a str,
    pub position: Option<&'a str>,
    pub reason: &'a str,
    pub raw: &'a [u8],
}

/// What one insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored as a new event with this row id.
    New(i64),
    /// Already stored under the same `(source, record id)`.
    Duplicate,
}

/// Counts for one committed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// Records [`Batch::quarantine_once`] found already quarantined for the same origin.
    pub quarantine_repeats: u64,
    /// Smallest event time (epoch ms) among newly stored events, if any.
    pub min_new_time: Option<i64>,
    pub max_new_time: Option<i64>,
    /// Compression dictionaries trained in this batch (usable by [`Packer`]s once it commits).
    pub dictionaries: u64,
}

/// Which events to read. Unset bounds are open.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Inclusive lower bound on event time (epoch ms).
    pub since: Option<i64>,
    /// Exclusive upper bound on event time (epoch ms).
    pub until: Option<i64>,
    pub provider: Option<CloudProvider>,
    pub class_uid: Option<u32>,
    pub success_only: bool,
    /// Read only this subset (through its partial index): hunts that select a few events. Rows
    /// stored before the subset's mark existed are included, so the caller still checks each.
    pub subset: Option<Subset>,
}

/// An event as stored, with its row id.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub id: i64,
    pub event: Event,
}

/// Sizes for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub events: u64,
    pub quarantined: u64,
    pub checkpoints: u64,
    pub file_bytes: u64,
}

/// A checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub value: String,
    pub updated_at: i64,
}

/// A quarantined record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineRow {
    pub id: i64,
    pub received_at: i64,
    pub origin: String,
    pub position: Option<String>,
    pub reason: String,
    pub raw: Vec<u8>,
}

// The source is spelt out, not bound: SQLite uses the partial index `events_risk_states`
// (schema 8) only for a query whose WHERE names its condition.
const RISK_STATES_ASC: &str = "SELECT id, event, event_dict FROM events
     WHERE source = 'entra_risk_detection' AND record_id >= ?1 AND record_id < ?2
       AND instr(substr(record_id, ?3), '@') = 0
     ORDER BY record_id ASC LIMIT ?4";
const RISK_STATES_DESC: &str = "SELECT id, event, event_dict FROM events
     WHERE source = 'entra_risk_detection' AND record_id >= ?1 AND record_id < ?2
       AND instr(substr(record_id, ?3), '@') = 0
     ORDER BY record_id DESC LIMIT ?4";

/// Wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// Decodes the event in column `col` of a row, its dictionary id in column `col + 1` (select
/// `event, event_dict`). Read as bytes: no copy into a `String`.
pub(crate) fn event_at(
    store: &Store,
    row: &rusqlite::Row<'_>,
    id: i64,
    col: usize,
) -> Result<Event> {
    let bytes = row
        .get_ref(col)?
        .as_bytes()
        .map_err(|e| StoreError::from(rusqlite::Error::from(e)))?;
    let dict: Option<i64> = row.get(col + 1)?;
    let mut buf = Vec::new();
    let json = store.codecs.unpack(&store.conn, dict, bytes, &mut buf)?;
    parse_event(id, json)
}

/// Parses a stored event's JSON. The bytes are checked as UTF-8 once, up front, so the parser
/// does not check every string again (a tenth of the parse).
pub(crate) fn parse_event(id: i64, json: &[u8]) -> Result<Event> {
    match std::str::from_utf8(json) {
        Ok(text) => serde_json::from_str(text),
        // Let the byte reader report where the bad byte is.
        Err(_) => serde_json::from_slice(json),
    }
    .map_err(|source| StoreError::CorruptEvent { id, source })
}

/// Decodes a `SELECT id, event, event_dict …` row.
pub(crate) fn stored_event(store: &Store, row: &rusqlite::Row<'_>) -> Result<StoredEvent> {
    let id: i64 = row.get(0)?;
    Ok(StoredEvent {
        id,
        event: event_at(store, row, id, 1)?,
    })
}

/// Streams the rows of a prepared `SELECT id, event, event_dict …` into `f` until it returns
/// `Ok(false)`.
pub(crate) fn stream_events<E>(
    store: &Store,
    mut rows: rusqlite::Rows<'_>,
    mut f: impl FnMut(StoredEvent) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E>
where
    E: From<StoreError>,
{
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        if !f(stored_event(store, row)?)? {
            break;
        }
    }
    Ok(())
}

/// The `SELECT id, event, event_dict …` of [`Store::for_each_event`]: parameters ?1 since, ?2
/// until, ?3 provider, ?4 class, ?5 success only.
pub(crate) fn event_query_sql(subset: Option<Subset>) -> String {
    const FILTERS: &str = "time >= ?1 AND time < ?2
        AND (?3 IS NULL OR provider = ?3)
        AND (?4 IS NULL OR class_uid = ?4)
        AND (?5 = 0 OR status_id = 1)";
    // A subset's query repeats its partial index's WHERE terms literally (SQLite uses a partial
    // index only for a query whose WHERE contains them), names the index (the planner would
    // rather scan `events_time`, unaware how few rows a partial index holds) and reads only
    // columns the index holds, so no table page is read; what the subset implies stands in for
    // the other columns.
    match subset {
        None => {
            format!("SELECT id, event, event_dict FROM events WHERE {FILTERS} ORDER BY time, id")
        }
        // Marked rows (Azure sign-ins, successful), and rows from before marks existed.
        Some(Subset::EntraRisk) => format!(
            "SELECT id, event, event_dict, time FROM events INDEXED BY events_entra_risk
             WHERE (marks & 1) = 1 AND time >= ?1 AND time < ?2
               AND (?3 IS NULL OR ?3 = 'Azure') AND (?4 IS NULL OR ?4 = {CLASS_AUTHENTICATION})
             UNION ALL
             SELECT id, event, event_dict, time FROM events INDEXED BY events_unmarked
             WHERE marks IS NULL AND {FILTERS}
             ORDER BY time, id"
        ),
        Some(Subset::AwsConsoleLogins) => "SELECT id, event, event_dict
             FROM events INDEXED BY events_aws_console WHERE provider = 'AWS' AND operation = 'ConsoleLogin'
               AND time >= ?1 AND time < ?2 AND (?3 IS NULL OR ?3 = 'AWS')
               AND (?4 IS NULL OR class_uid = ?4) AND (?5 = 0 OR status_id = 1)
             ORDER BY time, id"
            .to_owned(),
        // Every stored detection, then the window: far fewer rows than the window's events.
        Some(Subset::RiskDetections) => format!(
            "SELECT id, event, event_dict FROM events INDEXED BY events_risk_states
             WHERE source = 'entra_risk_detection' AND {FILTERS}
             ORDER BY time, id"
        ),
    }
}

/// Every row of a prepared `SELECT id, event, event_dict …`, decoded.
pub(crate) fn collect_events(store: &Store, rows: rusqlite::Rows<'_>) -> Result<Vec<StoredEvent>> {
    let mut out = Vec::new();
    stream_events(store, rows, |e| {
        out.push(e);
        Ok::<_, StoreError>(true)
    })?;
    Ok(out)
}

/// Creates the store file empty with mode 0600 when it does not exist yet, so SQLite opens a
/// private file instead of creating one under the process umask.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

// === impl Store ===

/// SQLite's page cache, per connection.
const PAGE_CACHE_BYTES: i64 = 64 << 20;
/// The page cache while importing (see [`Store::bulk_import_cache`]). SQLite's freed pages stay
/// with the C allocator after the import, so this adds to the correlator's peak: 244 MB peak
/// RSS at a million sign-ins (203 MB with 64 MiB; the aim is under 300 MB).
const BULK_PAGE_CACHE_BYTES: i64 = 96 << 20;

/// How much of the file a read-only process maps ([`Store::map_for_reading`]); SQLite clamps
/// it to its compile-time limit.
const READ_MAP_BYTES: i64 = 1 << 40;

impl Store {
    /// Opens (creating if needed) the store at `path`, enables WAL and applies migrations.
    ///
    /// A new store is created 0600 whatever the umask (it holds raw sign-ins and quarantined
    /// bytes), and SQLite gives its `-wal` and `-shm` files the database file's mode.
    pub fn open(path: &Path) -> Result<Store> {
        create_private(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::init(
            conn,
            path.to_path_buf(),
            migrations::latest_version() as usize,
        )
    }

    /// Test hook: a store at an older schema version (to test the migrations after it).
    #[cfg(test)]
    pub(crate) fn open_at_version(path: &Path, version: usize) -> Result<Store> {
        Store::init(Connection::open(path)?, path.to_path_buf(), version)
    }

    /// A private in-memory store (tests, dry runs).
    pub fn open_in_memory() -> Result<Store> {
        Store::init(
            Connection::open_in_memory()?,
            PathBuf::from(":memory:"),
            migrations::latest_version() as usize,
        )
    }

    fn init(mut conn: Connection, path: PathBuf, version: usize) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // busy_timeout first: a second process may hold the write lock briefly.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // 16 KiB pages: raw records are a few KiB each and would otherwise spill into overflow
        // pages. Takes effect only when the file is created (before WAL is switched on).
        conn.pragma_update(None, "page_size", 16_384i64)
            .map_err(open_err)?;
        // WAL: readers (hunts, status) never block the writer. NORMAL is durable in WAL mode
        // across process crashes (kill -9); only an OS crash may lose the last transactions.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_err)?;
        conn.pragma_update(None, "cache_size", -(PAGE_CACHE_BYTES >> 10))
            .map_err(open_err)?;
        // Checkpoint every ~64 MiB of WAL instead of 4 MiB: hot index pages are copied into the
        // database once per checkpoint, not once per few commits.
        conn.pragma_update(None, "wal_autocheckpoint", 4_096i64)
            .map_err(open_err)?;
        // A large import transaction grows the WAL past that; shrink it back once checkpointed.
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20)
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        dedup::register_sql_function(&conn).map_err(open_err)?;
        migrations::apply_up_to(&mut conn, &path, version)?;
        let codecs = Codecs::load(&conn)?;
        Ok(Store {
            conn,
            path,
            codecs,
            marks: version >= marks::SCHEMA_VERSION,
            keyed: version >= dedup::SCHEMA_VERSION,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for sibling modules that add their own tables.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write batch (one transaction).
    pub fn begin(&mut self) -> Result<Batch<'_>> {
        // Dictionaries made by a batch that never committed were rolled back with it.
        self.codecs.rolled_back();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Under the write lock: no other writer adds unkeyed rows until the batch ends.
        let unkeyed = self.keyed && dedup::any_unkeyed(&tx)?;
        Ok(Batch {
            tx,
            codecs: &mut self.codecs,
            marks: self.marks,
            keyed: self.keyed,
            unkeyed,
            now: now_ms(),
            stats: BatchStats::default(),
            json: Vec::with_capacity(4096),
            packed_event: Vec::with_capacity(4096),
            packed_raw: Vec::with_capacity(4096),
        })
    }

    /// Gives SQLite a larger page cache for a bulk import (`true`) or takes it back, freeing the
    /// pages over the usual size (`false`).
    ///
    /// An import inserts into indexes keyed by user, IP and record key, each page of them as
    /// likely as the next: once they outgrow the cache, inserts read their pages back from the
    /// file. At a million sign-ins those indexes hold about 100 MB. Measured there, interleaved:
    /// 64 MiB 21.8/21.4 s wall with 3.6-4.0 s in the kernel; 96 MiB 20.6 s with 2.5 s.
    pub fn bulk_import_cache(&self, on: bool) -> Result<()> {
        let bytes = if on {
            BULK_PAGE_CACHE_BYTES
        } else {
            PAGE_CACHE_BYTES
        };
        self.conn
            .pragma_update(None, "cache_size", -(bytes >> 10))?;
        if !on {
            self.conn.execute_batch("PRAGMA shrink_memory")?;
        }
        Ok(())
    }

    /// Reads the file through a memory map (up to SQLite's limit, 2 GiB in this build), for a
    /// process that only reads: `hunt`, `report`, `findings`, `explain`.
    ///
    /// A hunt over most of the store reads hundreds of MB of index and table pages; through
    /// `pread` each 16 KiB page is a system call and a copy, through the map a page-cache hit.
    /// Measured on a 1M+1M-event store, interleaved: `cross-cloud-ips` 0.63-0.86 s (0.31-0.55 s
    /// in the kernel) against 0.39-0.41 s (0.03 s); `identity-risk` 0.49 against 0.20 s.
    /// Writers (the daemon, `import`, `collect`) keep `pread`: a mapped read of a page the disk
    /// cannot return is a SIGBUS, not an error the collector can retry.
    pub fn map_for_reading(&self) -> Result<()> {
        self.conn.pragma_update(None, "mmap_size", READ_MAP_BYTES)?;
        Ok(())
    }

    /// A [`Packer`] for another thread: it serialises and compresses records with the
    /// dictionaries this store has committed, for [`Batch::insert_packed`].
    pub fn packer(&self) -> Packer {
        self.codecs.packer()
    }

    /// Test hook: how many records of a format are sampled before its dictionaries are trained,
    /// and how many values a dictionary compresses before a successor is trained.
    #[cfg(test)]
    pub(crate) fn set_train_at(&mut self, records: usize, retrain_after: u64) {
        self.codecs.set_train_at(records, retrain_after);
    }

    /// Streams the events matching `query` in event-time order (ties by row id) into `f`.
    /// `f` may stop early by returning `Ok(false)`.
    pub fn for_each_event<E>(
        &self,
        query: &EventQuery,
        f: impl FnMut(StoredEvent) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E>
    where
        E: From<StoreError>,
    {
        let sql = event_query_sql(query.subset);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(StoreError::from)?;
        let rows = stmt
            .query(params![
                query.since.unwrap_or(i64::MIN),
                query.until.unwrap_or(i64::MAX),
                query.provider.map(CloudProvider::as_str),
                query.class_uid,
                query.success_only as i64,
            ])
            .map_err(StoreError::from)?;
        decode::stream_events_decoding_ahead(self, rows, f)
    }

    /// Collects the events matching `query` (convenience for small results).
    pub fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        self.for_each_event(query, |e| {
            out.push(e);
            Ok::<_, StoreError>(true)
        })?;
        Ok(out)
    }

    /// Events stored after row id `after` (a follower's cursor), oldest row first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, event, event_dict FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query(params![after, limit as i64])?;
        collect_events(self, rows)
    }

    /// The record exactly as received.
    pub fn raw_record(&self, event_id: i64) -> Result<Option<Vec<u8>>> {
        let stored: Option<(Vec<u8>, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT raw, dict FROM raw_records WHERE event_id = ?1")?
            .query_row([event_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        stored
            .map(|(raw, dict)| self.unpack_raw(dict, raw))
            .transpose()
    }

    /// A `raw_records` value as received: decompressed when `dict` names a dictionary.
    pub(crate) fn unpack_raw(&self, dict: Option<i64>, raw: Vec<u8>) -> Result<Vec<u8>> {
        if dict.is_none() {
            return Ok(raw);
        }
        let mut out = Vec::new();
        self.codecs.unpack(&self.conn, dict, &raw, &mut out)?;
        Ok(out)
    }

    /// Looks an event up by its dedup key.
    pub fn event_id(&self, source: RecordSource, record_id: &str) -> Result<Option<i64>> {
        let source = source.as_str();
        Ok(if self.keyed {
            self.conn
                .prepare_cached(dedup::FIND)?
                .query_row(
                    params![source, record_id, dedup::record_key(source, record_id)],
                    |r| r.get(0),
                )
                .optional()?
        } else {
            self.conn
                .prepare_cached(dedup::FIND_UNKEYED_SCHEMA)?
                .query_row(params![source, record_id], |r| r.get(0))
                .optional()?
        })
    }

    /// Every state stored of the risk detection whose own id (Graph `id`, the event's
    /// `finding_info.uid`) is `detection_uid`, oldest state first. A detection is stored once per
    /// state (`<id>@<lastUpdatedDateTime>`), so a dismissal or remediation that arrives later —
    /// or before the state it replaces — is one more row here.
    pub fn risk_detection_states(&self, detection_uid: &str) -> Result<Vec<StoredEvent>> {
        self.risk_detection_query(detection_uid, false, i64::MAX)
    }

    /// The current state of a risk detection: of its stored states, the one with the newest
    /// `lastUpdatedDateTime` (whatever order they arrived in). `None` when none is stored.
    pub fn latest_risk_detection(&self, detection_uid: &str) -> Result<Option<StoredEvent>> {
        Ok(self
            .risk_detection_query(detection_uid, true, 1)?
            .into_iter()
            .next())
    }

    /// States of one detection by record id: an index range on `record_id` over
    /// `<id>@…` (`'A'` follows `'@'`), excluding ids of other detections that merely start with
    /// `<id>@` (the version part holds no `@`).
    fn risk_detection_query(
        &self,
        detection_uid: &str,
        newest_first: bool,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let prefix = crosswind_model::risk_detection_record_prefix(detection_uid);
        let upper = format!("{detection_uid}A");
        let sql = if newest_first {
            RISK_STATES_DESC
        } else {
            RISK_STATES_ASC
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query(params![prefix, upper, prefix.len() as i64 + 1, limit])?;
        collect_events(self, rows)
    }

    /// All record ids stored for `source` (tests and collectors' exactness checks).
    pub fn record_ids(&self, source: RecordSource) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_id FROM events WHERE source = ?1 ORDER BY record_id")?;
        let ids = stmt
            .query_map([source.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// The newest event time (epoch ms) at or before `not_after_ms` among the records `origin`
    /// brought. Event times come from the source's clock, not ours: a collector whose checkpoint
    /// is ahead of the host clock re-bases on this (walks the time index from `not_after_ms` down).
    pub fn newest_event_time(&self, origin: &str, not_after_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT time FROM events INDEXED BY events_time
                 WHERE time <= ?2 AND origin = ?1 ORDER BY time DESC LIMIT 1",
            )?
            .query_row(params![origin, not_after_ms], |r| r.get(0))
            .optional()?)
    }

    pub fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        Ok(self
            .conn
            .prepare_cached("SELECT name, value, updated_at FROM checkpoints WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(Checkpoint {
                    name: r.get(0)?,
                    value: r.get(1)?,
                    updated_at: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Deletes one checkpoint; whether it was there.
    pub fn delete_checkpoint(&self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM checkpoints WHERE name = ?1")?
            .execute([name])?;
        Ok(n > 0)
    }

    /// Deletes the checkpoints named `prefix…` that were last advanced more than `age` ago
    /// (wall clock); returns how many. For per-item checkpoints (one per S3 trail file) that
    /// would otherwise grow without bound.
    pub fn prune_checkpoints(&self, prefix: &str, age: Duration) -> Result<u64> {
        // Names in [prefix, prefix + U+10FFFF): an index range on the primary key, not a scan.
        let upper = format!("{prefix}\u{10FFFF}");
        let cutoff = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let deleted = self
            .conn
            .prepare_cached(
                "DELETE FROM checkpoints WHERE name >= ?1 AND name < ?2 AND updated_at < ?3",
            )?
            .execute(params![prefix, upper, cutoff])?;
        Ok(deleted as u64)
    }

    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value, updated_at FROM checkpoints ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Checkpoint {
                    name: r.get(0)?,
                    value: r.get(1)?,
                    updated_at: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Quarantined records, newest first, at most `limit`.
    pub fn quarantine(&self, limit: usize) -> Result<Vec<QuarantineRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, received_at, origin, position, reason, raw FROM quarantine
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(QuarantineRow {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    origin: r.get(2)?,
                    position: r.get(3)?,
                    reason: r.get(4)?,
                    raw: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn counts(&self) -> Result<StoreCounts> {
        let count = |sql: &str| -> Result<u64> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let page_count = count("PRAGMA page_count")?;
        let page_size = count("PRAGMA page_size")?;
        Ok(StoreCounts {
            events: count("SELECT count(*) FROM events")?,
            quarantined: count("SELECT count(*) FROM quarantine")?,
            checkpoints: count("SELECT count(*) FROM checkpoints")?,
            file_bytes: page_count * page_size,
        })
    }
}

/// One write transaction. Dropping it without [`Batch::commit`] rolls everything back.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
    codecs: &'a mut Codecs,
    marks: bool,
    keyed: bool,
    /// Whether some event may be stored without a key, so an insert must search those too (see
    /// [`dedup`]): almost never.
    unkeyed: bool,
    now: i64,
    stats: BatchStats,
    /// Reused buffers (serialised event, compressed event and raw): allocated per batch, not
    /// per event.
    json: Vec<u8>,
    packed_event: Vec<u8>,
    packed_raw: Vec<u8>,
}

// === impl Batch ===

impl Batch<'_> {
    /// Stores a record unless its `(source, record id)` is already stored.
    pub fn insert(&mut self, rec: &NewRecord<'_>) -> Result<Inserted> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, rec.event).map_err(StoreError::Serialize)?;
        let json = std::mem::take(&mut self.json);
        let inserted = self.insert_values(rec, &json, None, None);
        self.json = json;
        inserted
    }

    /// Like [`Batch::insert`], with the event JSON and raw bytes already serialised and
    /// compressed by a [`Packer`] (`packed` must come from `rec`).
    pub fn insert_packed(
        &mut self,
        rec: &NewRecord<'_>,
        packed: &PackedRecord,
    ) -> Result<Inserted> {
        self.insert_values(
            rec,
            &packed.event,
            packed.event_dict,
            packed.raw_dict.map(|dict| (dict, &packed.raw[..])),
        )
    }

    /// `event` is the event's JSON, compressed with `event_dict` when that is set; `raw` is the
    /// record compressed with a dictionary, when it was.
    fn insert_values(
        &mut self,
        rec: &NewRecord<'_>,
        event_value: &[u8],
        mut event_dict: Option<i64>,
        raw_packed: Option<(i64, &[u8])>,
    ) -> Result<Inserted> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        let event = rec.event;
        let mut event_value = event_value;
        if event_dict.is_some() {
            // Packed on another thread: counted, and its JSON kept as a sample while a successor
            // dictionary is due.
            let key = (rec.format, Part::Event);
            let plain = if self.codecs.due(key) {
                self.json.clear();
                serde_json::to_writer(&mut self.json, event).map_err(StoreError::Serialize)?;
                Some(&self.json[..])
            } else {
                None
            };
            self.codecs
                .observe_packed(&mut self.stats, &self.tx, key, plain, self.now)?;
        } else {
            // Plain JSON: compress it here if a dictionary exists (or is trained on it now).
            event_dict = self.codecs.pack(
                &mut self.stats,
                &self.tx,
                (rec.format, Part::Event),
                event_value,
                self.now,
                &mut self.packed_event,
            )?;
            if event_dict.is_some() {
                event_value = &self.packed_event;
            }
        }
        // serde_json writes UTF-8: uncompressed, bound as TEXT so SQLite's json functions read it.
        let event_value = match event_dict {
            Some(_) => ToSqlOutput::Borrowed(ValueRef::Blob(event_value)),
            None => ToSqlOutput::Borrowed(ValueRef::Text(event_value)),
        };
        let principal = event.principal();
        let source = rec.format.record_source().as_str();
        let record_id = &event.metadata.uid;
        let mut record_key = self.keyed.then(|| dedup::record_key(source, record_id));
        if self.unkeyed && dedup::stored_unkeyed(&self.tx, source, record_id)? {
            self.stats.duplicates += 1;
            return Ok(Inserted::Duplicate);
        }
        // A plain INSERT, a duplicate being the violation of the UNIQUE dedup key: with
        // AUTOINCREMENT, `INSERT OR IGNORE` would use up an id for every duplicate (collectors
        // re-read an overlap window on every poll), while a failed statement takes its id back.
        let (sql, columns) = if self.keyed {
            (
                "INSERT INTO events
                   (source, record_id, format, time, provider, class_uid, status_id, user_name,
                    src_ip, operation, account_uid, ingested_at, origin, event, event_dict, marks,
                    record_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17)",
                17,
            )
        } else if self.marks {
            (
                "INSERT INTO events
                   (source, record_id, format, time, provider, class_uid, status_id, user_name,
                    src_ip, operation, account_uid, ingested_at, origin, event, event_dict, marks)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                16,
            )
        } else {
            (
                "INSERT INTO events
                   (source, record_id, format, time, provider, class_uid, status_id, user_name,
                    src_ip, operation, account_uid, ingested_at, origin, event, event_dict)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                15,
            )
        };
        let marks = marks::marks_of(event);
        loop {
            let values: [&dyn rusqlite::ToSql; 17] = [
                &source,
                record_id,
                &rec.format.as_str(),
                &event.time,
                &event.cloud.provider.as_str(),
                &event.class_uid,
                &event.status_id,
                &principal.and_then(|u| u.name.as_deref()),
                &event.src_ip(),
                &event.operation(),
                &event.cloud.account.uid.as_deref(),
                &self.now,
                &rec.origin,
                &event_value,
                &event_dict,
                &marks,
                &record_key,
            ];
            let inserted = self.tx.prepare_cached(sql)?.execute(&values[..columns]);
            match inserted {
                Ok(_) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                {
                    // Schema 8: the key is taken, by this record or by another one with the
                    // same hash, which is then stored unkeyed (see `dedup`).
                    if let Some(key) = record_key.take()
                        && !dedup::key_holder_is(&self.tx, key, source, record_id)?
                    {
                        self.unkeyed = true;
                        continue;
                    }
                    self.stats.duplicates += 1;
                    return Ok(Inserted::Duplicate);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let id = self.tx.last_insert_rowid();
        let (raw, raw_dict) = match raw_packed {
            Some((dict, bytes)) => {
                self.codecs.observe_packed(
                    &mut self.stats,
                    &self.tx,
                    (rec.format, Part::Raw),
                    Some(rec.raw),
                    self.now,
                )?;
                (bytes, Some(dict))
            }
            None => match self.codecs.pack(
                &mut self.stats,
                &self.tx,
                (rec.format, Part::Raw),
                rec.raw,
                self.now,
                &mut self.packed_raw,
            )? {
                Some(dict) => (&self.packed_raw[..], Some(dict)),
                None => (rec.raw, None),
            },
        };
        let stored_raw = self
            .tx
            .prepare_cached("INSERT INTO raw_records (event_id, raw, dict) VALUES (?1, ?2, ?3)")?
            .execute(params![id, raw, raw_dict]);
        if let Err(e) = stored_raw {
            // Refused (e.g. over SQLite's length limit): the event goes too, so the record is
            // stored whole or not at all and the batch can go on without it.
            if !self.tx.is_autocommit() {
                self.tx
                    .prepare_cached("DELETE FROM events WHERE id = ?1")?
                    .execute([id])?;
            }
            return Err(e.into());
        }
        self.stats.stored += 1;
        self.stats.min_new_time = Some(
            self.stats
                .min_new_time
                .map_or(event.time, |t| t.min(event.time)),
        );
        self.stats.max_new_time = Some(
            self.stats
                .max_new_time
                .map_or(event.time, |t| t.max(event.time)),
        );
        Ok(Inserted::New(id))
    }

    /// Keeps a record that could not be mapped, with the reason.
    pub fn quarantine(&mut self, q: &QuarantineRecord<'_>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO quarantine (received_at, origin, position, reason, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![self.now, q.origin, q.position, q.reason, q.raw])?;
        self.stats.quarantined += 1;
        Ok(())
    }

    /// Like [`Batch::quarantine`], but once per origin and record bytes: a collector re-reading
    /// its overlap window meets the same unmappable records again and again. Returns whether a
    /// row was added.
    pub fn quarantine_once(&mut self, q: &QuarantineRecord<'_>) -> Result<bool> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(q.raw);
        let added = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO quarantine
                   (received_at, origin, position, reason, raw, raw_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                self.now,
                q.origin,
                q.position,
                q.reason,
                q.raw,
                digest.as_slice()
            ])?
            > 0;
        if added {
            self.stats.quarantined += 1;
        } else {
            self.stats.quarantine_repeats += 1;
        }
        Ok(added)
    }

    /// Advances a checkpoint; it becomes visible only with the records of this batch.
    pub fn set_checkpoint(&mut self, name: &str, value: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO checkpoints (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value,
                                                  updated_at = excluded.updated_at",
            )?
            .execute(params![name, value, self.now])?;
        Ok(())
    }

    /// A checkpoint's value as this transaction sees it (under its write lock: no other process
    /// can move it until the batch ends).
    pub fn checkpoint_value(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM checkpoints WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    /// The open transaction, for sibling modules writing their own tables in the same batch.
    pub fn transaction(&self) -> &rusqlite::Transaction<'_> {
        &self.tx
    }

    /// Whether the transaction is still open: SQLite undoes only the failed statement for most
    /// errors (a value over its length limit, a constraint), but the whole transaction for some
    /// (a full disk, I/O errors).
    pub fn is_open(&self) -> bool {
        !self.tx.is_autocommit()
    }

    pub fn stats(&self) -> BatchStats {
        self.stats
    }

    /// Commits everything in the batch atomically.
    pub fn commit(self) -> Result<BatchStats> {
        self.tx.commit()?;
        self.codecs.committed();
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests;
