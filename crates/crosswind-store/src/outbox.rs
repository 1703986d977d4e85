//! The Splunk HEC outbox: pre-rendered HEC events waiting for Splunk to acknowledge them.
//!
//! Invariants:
//! - a record is enqueued in the same [`Batch`] (transaction) that stores it, so a committed record
//!   is always either queued, delivered (`outbox_delivered`) or dead-lettered (`outbox_dead`);
//! - a row leaves `outbox` only when Splunk acknowledged it (indexer ack), accepted it (2xx without
//!   acks, or the events before an invalid one in a rejected batch), or refused that one event for
//!   good; then it is moved to `outbox_dead` with Splunk's error text, never silently deleted
//!   ([`requeue_dead`] puts it back in line);
//! - the outbox is bounded: [`Quota::check`] refuses a batch when `max_rows` are queued, and the
//!   caller pauses collection; nothing is dropped;
//! - `in_doubt` marks a row a previous request may have indexed (the request was sent and its
//!   outcome is unknown: lost connection, unconfirmed ack, crash). Resending such a row is the only
//!   way a duplicate can reach Splunk, and the sink counts it.
//!
//! This module knows SQL only; rendering and HTTP live in `crosswind-hec`.

use rusqlite::{OptionalExtension, params};

use crate::{Batch, Store, StoreError};

/// What an outbox row carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// A raw source record, exactly as received.
    Raw,
    /// A risk event (one signal).
    Risk,
    /// A finding.
    Finding,
    /// A normalised event.
    Event,
}

impl OutboxKind {
    pub const ALL: [OutboxKind; 4] = [
        OutboxKind::Raw,
        OutboxKind::Risk,
        OutboxKind::Finding,
        OutboxKind::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Raw => "raw",
            OutboxKind::Risk => "risk",
            OutboxKind::Finding => "finding",
            OutboxKind::Event => "event",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Outbox failures: full (the caller pauses collection) or the store itself.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "splunk outbox is full: {depth} events queued, max_outbox_rows = {max_rows}; \
         collection must pause until the sink drains it"
    )]
    Full { depth: u64, max_rows: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError::Store(StoreError::Sqlite(e))
    }
}

impl OutboxError {
    pub fn is_full(&self) -> bool {
        matches!(self, OutboxError::Full { .. })
    }
}

/// A row to enqueue: the HEC event object already rendered (`{"time":..,"event":..}`).
#[derive(Clone, Copy, Debug)]
pub struct NewOutboxRow<'a> {
    pub kind: OutboxKind,
    pub sourcetype: &'a str,
    pub source: &'a str,
    /// Event time, epoch ms.
    pub time: i64,
    pub index: Option<&'a str>,
    pub payload: &'a [u8],
}

/// Room left in the outbox for one batch. Counting rows is O(rows), so it is done once per batch.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    max_rows: u64,
    depth: u64,
}

// === impl Quota ===

impl Quota {
    /// Counts the queued rows; [`OutboxError::Full`] when `max_rows` are already queued.
    pub fn check(batch: &Batch<'_>, max_rows: u64) -> Result<Quota, OutboxError> {
        let depth: i64 = batch
            .transaction()
            .prepare_cached("SELECT count(*) FROM outbox")?
            .query_row([], |r| r.get(0))?;
        let quota = Quota {
            max_rows,
            depth: depth.max(0) as u64,
        };
        if quota.depth >= max_rows {
            return Err(OutboxError::Full {
                depth: quota.depth,
                max_rows,
            });
        }
        Ok(quota)
    }

    /// No bound (tests, benches).
    pub fn unlimited() -> Quota {
        Quota {
            max_rows: u64::MAX,
            depth: 0,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.max_rows.saturating_sub(self.depth)
    }
}

/// Enqueues one rendered event in the batch's transaction; returns its outbox id.
pub fn enqueue(
    batch: &Batch<'_>,
    quota: &mut Quota,
    row: &NewOutboxRow<'_>,
) -> Result<i64, OutboxError> {
    if quota.depth >= quota.max_rows {
        return Err(OutboxError::Full {
            depth: quota.depth,
            max_rows: quota.max_rows,
        });
    }
    let tx = batch.transaction();
    tx.prepare_cached(
        "INSERT INTO outbox (kind, sourcetype, source, time, idx, enqueued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.kind.as_str(),
        row.sourcetype,
        row.source,
        row.time,
        row.index,
        batch.now,
    ])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO outbox_payload (id, payload) VALUES (?1, ?2)")?
        .execute(params![id, row.payload])?;
    quota.depth += 1;
    Ok(id)
}

/// One claimed row: its place in [`Claimed::body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimedRow {
    pub id: i64,
    /// Byte range of its payload in the body.
    pub start: usize,
    pub end: usize,
    /// A previous request may already have indexed it: sending it again may duplicate it.
    pub was_in_doubt: bool,
    /// Requests it was handed to, this one included.
    pub attempts: u32,
}

/// Pending rows handed to one request: payloads joined by `\n` (HEC accepts concatenated events).
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    pub rows: Vec<ClaimedRow>,
    pub body: Vec<u8>,
    /// The in-flight record of this claim; [`settle`] it once Splunk answered.
    pub inflight: i64,
}

// === impl Claimed ===

impl Claimed {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn payload(&self, row: &ClaimedRow) -> &[u8] {
        self.body.get(row.start..row.end).unwrap_or_default()
    }
}

/// Claims the oldest pending rows, up to `max_bytes` of body (at least one row), and records the
/// claim as in flight: until it is [`settle`]d, the request may or may not index them, and a crash
/// leaves them in doubt ([`recover_inflight`]).
pub fn claim(store: &mut Store, max_bytes: usize, max_rows: usize) -> Result<Claimed, StoreError> {
    claim_after(store, 0, max_bytes, max_rows)
}

/// [`claim`], skipping ids up to `after` (rows already handed to a request, or a cursor). Pending
/// rows below `after` are not seen: the caller resets its cursor when it puts rows back.
pub fn claim_after(
    store: &mut Store,
    after: i64,
    max_bytes: usize,
    max_rows: usize,
) -> Result<Claimed, StoreError> {
    let batch = store.begin()?;
    let mut claimed = Claimed::default();
    {
        let tx = batch.transaction();
        let mut stmt = tx.prepare_cached(
            "SELECT o.id, p.payload, o.in_doubt, o.attempts
             FROM outbox o JOIN outbox_payload p ON p.id = o.id
             WHERE o.state = 'pending' AND o.id > ?1 ORDER BY o.id",
        )?;
        let mut rows = stmt.query([after])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let payload = row
                .get_ref(1)?
                .as_bytes()
                .map_err(|e| StoreError::from(rusqlite::Error::from(e)))?;
            let extra = payload.len() + usize::from(!claimed.body.is_empty());
            if !claimed.rows.is_empty()
                && (claimed.body.len() + extra > max_bytes || claimed.rows.len() >= max_rows)
            {
                break;
            }
            if !claimed.body.is_empty() {
                claimed.body.push(b'\n');
            }
            let start = claimed.body.len();
            claimed.body.extend_from_slice(payload);
            let in_doubt: i64 = row.get(2)?;
            let attempts: i64 = row.get(3)?;
            claimed.rows.push(ClaimedRow {
                id,
                start,
                end: claimed.body.len(),
                was_in_doubt: in_doubt != 0,
                attempts: (attempts.max(0) as u32).saturating_add(1),
            });
        }
    }
    let (Some(first), Some(last)) = (claimed.rows.first(), claimed.rows.last()) else {
        return Ok(claimed);
    };
    let tx = batch.transaction();
    tx.prepare_cached(
        "INSERT INTO outbox_inflight (first_id, last_id, claimed_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![first.id, last.id, batch.now])?;
    claimed.inflight = tx.last_insert_rowid();
    batch.commit()?;
    Ok(claimed)
}

/// The request for a claim was answered (or never sent): forget it. Rows the answer did not
/// move (busy, refused, not read) are plain pending rows again.
pub fn settle(store: &mut Store, inflight: i64) -> Result<(), StoreError> {
    store
        .connection()
        .prepare_cached("DELETE FROM outbox_inflight WHERE id = ?1")?
        .execute([inflight])?;
    Ok(())
}

/// The request's outcome is unknown (connection lost after sending): Splunk may have indexed
/// these rows, so sending them again may duplicate them.
pub fn mark_in_doubt(store: &mut Store, rows: &[ClaimedRow]) -> Result<(), StoreError> {
    store
        .connection()
        .prepare_cached(
            "UPDATE outbox SET in_doubt = 1, attempts = attempts + 1
             WHERE state = 'pending' AND id IN (SELECT value FROM json_each(?1))",
        )?
        .execute([ids_json(rows.iter().map(|r| r.id))])?;
    Ok(())
}

/// After a crash: the pending rows of claims never settled may have been indexed; mark them in
/// doubt and count that possible send in `attempts` (as [`mark_in_doubt`] does), so a resend
/// shows in the delivery history. Returns the rows marked.
pub fn recover_inflight(store: &mut Store) -> Result<u64, StoreError> {
    let batch = store.begin()?;
    let tx = batch.transaction();
    let n = tx
        .prepare_cached(
            "UPDATE outbox SET in_doubt = 1, attempts = attempts + 1
             WHERE state = 'pending' AND in_doubt = 0 AND EXISTS (
               SELECT 1 FROM outbox_inflight f WHERE outbox.id BETWEEN f.first_id AND f.last_id)",
        )?
        .execute([])?;
    tx.prepare_cached("DELETE FROM outbox_inflight")?
        .execute([])?;
    batch.commit()?;
    Ok(n as u64)
}

/// Splunk accepted the request and will confirm indexing under `ack_id` on `channel`.
///
/// An ack id names one request only while no other request holds it: Splunk keeps ack state in
/// memory and counts ids from 0 again after an indexer restart, and indexers behind a load
/// balancer count separately. So rows of an earlier request still waiting for the same
/// `(channel, ack_id)` can no longer be confirmed (a "true" may be about this request): they go
/// back to pending, in doubt, in the same transaction. Returns how many went back.
pub fn mark_sent(
    store: &mut Store,
    rows: &[ClaimedRow],
    channel: &str,
    ack_id: u64,
    now: i64,
) -> Result<u64, StoreError> {
    let batch = store.begin()?;
    let tx = batch.transaction();
    let superseded = tx
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', channel = NULL, ack_id = NULL, sent_at = NULL,
                               in_doubt = 1
             WHERE state = 'sent' AND channel = ?1 AND ack_id = ?2",
        )?
        .execute(params![channel, ack_id as i64])?;
    tx.prepare_cached(
        "UPDATE outbox SET state = 'sent', channel = ?1, ack_id = ?2, sent_at = ?3,
                           attempts = attempts + 1
         WHERE id IN (SELECT value FROM json_each(?4))",
    )?
    .execute(params![
        channel,
        ack_id as i64,
        now,
        ids_json(rows.iter().map(|r| r.id))
    ])?;
    batch.commit()?;
    Ok(superseded as u64)
}

/// Splunk accepted these rows (2xx without acks, or the events before an invalid one): they leave
/// the outbox and enter the delivery history. Returns the rows delivered.
pub fn mark_delivered(
    store: &mut Store,
    rows: &[ClaimedRow],
    acked: bool,
    now: i64,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ids = ids_json(rows.iter().map(|r| r.id));
    let batch = store.begin()?;
    let tx = batch.transaction();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO outbox_delivered (id, delivered_at, acked, attempts)
         SELECT id, ?1, ?2, attempts + 1 FROM outbox WHERE id IN (SELECT value FROM json_each(?3))",
    )?
    .execute(params![now, acked as i64, ids])?;
    tx.prepare_cached("DELETE FROM outbox_payload WHERE id IN (SELECT value FROM json_each(?1))")?
        .execute([&ids])?;
    let n = tx
        .prepare_cached("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))")?
        .execute([&ids])?;
    batch.commit()?;
    Ok(n as u64)
}

/// A request whose events wait for Splunk's indexer acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingAck {
    pub ack_id: u64,
    /// When it was sent (epoch ms).
    pub sent_at: i64,
    pub rows: u64,
}

/// Requests sent on `channel` still waiting for their ack, oldest first.
pub fn pending_acks(store: &Store, channel: &str) -> Result<Vec<PendingAck>, StoreError> {
    let mut stmt = store.connection().prepare_cached(
        "SELECT ack_id, min(sent_at), count(*) FROM outbox
         WHERE state = 'sent' AND channel = ?1 GROUP BY ack_id ORDER BY min(sent_at), ack_id",
    )?;
    let acks = stmt
        .query_map([channel], |r| {
            Ok(PendingAck {
                ack_id: r.get::<_, i64>(0)?.max(0) as u64,
                sent_at: r.get(1)?,
                rows: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(acks)
}

/// Splunk confirmed these acks on `channel`: their rows are indexed and leave the outbox.
/// Returns the rows delivered.
pub fn confirm_acks(
    store: &mut Store,
    channel: &str,
    ack_ids: &[u64],
    now: i64,
) -> Result<u64, StoreError> {
    if ack_ids.is_empty() {
        return Ok(0);
    }
    let acks = ids_json(ack_ids.iter().map(|&a| a as i64));
    let batch = store.begin()?;
    let tx = batch.transaction();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO outbox_delivered (id, delivered_at, acked, attempts)
         SELECT id, ?1, 1, attempts FROM outbox
         WHERE state = 'sent' AND channel = ?2 AND ack_id IN (SELECT value FROM json_each(?3))",
    )?
    .execute(params![now, channel, acks])?;
    tx.prepare_cached(
        "DELETE FROM outbox_payload WHERE id IN (
           SELECT id FROM outbox
           WHERE state = 'sent' AND channel = ?1 AND ack_id IN (SELECT value FROM json_each(?2)))",
    )?
    .execute(params![channel, acks])?;
    let n = tx
        .prepare_cached(
            "DELETE FROM outbox
             WHERE state = 'sent' AND channel = ?1 AND ack_id IN (SELECT value FROM json_each(?2))",
        )?
        .execute(params![channel, acks])?;
    batch.commit()?;
    Ok(n as u64)
}

/// Puts back to pending every row whose ack was not confirmed: sent before `sent_before` (epoch
/// ms), or sent on another channel than `channel` (its acks can no longer be asked for). The rows
/// stay in doubt: Splunk may have indexed them. Returns the rows re-queued.
pub fn requeue_unacked(
    store: &mut Store,
    channel: &str,
    sent_before: i64,
) -> Result<u64, StoreError> {
    let n = store
        .connection()
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', channel = NULL, ack_id = NULL, sent_at = NULL,
                               in_doubt = 1
             WHERE state = 'sent' AND (sent_at < ?1 OR channel IS NOT ?2)",
        )?
        .execute(params![sent_before, channel])?;
    Ok(n as u64)
}

/// Moves one poisoned row to `outbox_dead` with Splunk's error text. Returns false when no such
/// row is queued.
pub fn dead_letter(store: &mut Store, id: i64, error: &str, now: i64) -> Result<bool, StoreError> {
    let batch = store.begin()?;
    let tx = batch.transaction();
    let moved = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO outbox_dead
               (id, kind, sourcetype, source, time, idx, payload, enqueued_at, attempts, dead_at, error)
             SELECT o.id, o.kind, o.sourcetype, o.source, o.time, o.idx, p.payload, o.enqueued_at,
                    o.attempts + 1, ?2, ?3
             FROM outbox o JOIN outbox_payload p ON p.id = o.id WHERE o.id = ?1",
        )?
        .execute(params![id, now, error])?;
    tx.prepare_cached("DELETE FROM outbox_payload WHERE id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    batch.commit()?;
    Ok(moved > 0)
}

/// Moves dead-lettered rows back into the outbox as pending, under their own ids (so they keep
/// their place in line): every one when `only` is `None` (`forward --retry-dead`, after the
/// cause was fixed), else just those ids. `in_doubt` lists the ids a previous request may have
/// indexed. Returns the rows re-queued.
pub fn requeue_dead(
    store: &mut Store,
    only: Option<&[i64]>,
    in_doubt: &[i64],
) -> Result<u64, StoreError> {
    let ids = only.map(|ids| ids_json(ids.iter().copied()));
    let in_doubt = ids_json(in_doubt.iter().copied());
    let batch = store.begin()?;
    let tx = batch.transaction();
    // `?1 IS NULL`: every dead row.
    let selected = "SELECT id FROM outbox_dead
                    WHERE ?1 IS NULL OR id IN (SELECT value FROM json_each(?1))";
    let n = tx
        .prepare_cached(&format!(
            "INSERT OR IGNORE INTO outbox
               (id, kind, sourcetype, source, time, idx, enqueued_at, attempts, in_doubt)
             SELECT id, kind, sourcetype, source, time, idx, enqueued_at, attempts,
                    id IN (SELECT value FROM json_each(?2))
             FROM outbox_dead WHERE id IN ({selected})"
        ))?
        .execute(params![ids, in_doubt])?;
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO outbox_payload (id, payload)
         SELECT id, payload FROM outbox_dead WHERE id IN ({selected})"
    ))?
    .execute(params![ids])?;
    tx.prepare_cached(&format!("DELETE FROM outbox_dead WHERE id IN ({selected})"))?
        .execute(params![ids])?;
    batch.commit()?;
    Ok(n as u64)
}

/// Outbox sizes, for `status`, metrics and `forward --once`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub awaiting_ack: u64,
    pub dead: u64,
    pub delivered: u64,
    /// Enqueue time (epoch ms) of the oldest queued row.
    pub oldest_enqueued_at: Option<i64>,
}

impl OutboxStats {
    /// Rows still queued (pending or awaiting their ack).
    pub fn depth(&self) -> u64 {
        self.pending + self.awaiting_ack
    }

    /// Age of the oldest queued row at `now` (epoch ms).
    pub fn oldest_age_ms(&self, now: i64) -> Option<i64> {
        self.oldest_enqueued_at
            .map(|t| now.saturating_sub(t).max(0))
    }
}

pub fn stats(store: &Store) -> Result<OutboxStats, StoreError> {
    let conn = store.connection();
    let count = |sql: &str| -> Result<u64, StoreError> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    };
    Ok(OutboxStats {
        pending: count("SELECT count(*) FROM outbox WHERE state = 'pending'")?,
        awaiting_ack: count("SELECT count(*) FROM outbox WHERE state = 'sent'")?,
        dead: count("SELECT count(*) FROM outbox_dead")?,
        delivered: count("SELECT count(*) FROM outbox_delivered")?,
        oldest_enqueued_at: conn
            .prepare_cached("SELECT enqueued_at FROM outbox ORDER BY id LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?,
    })
}

/// A dead-lettered row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadRow {
    pub id: i64,
    pub kind: String,
    pub sourcetype: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
    pub dead_at: i64,
    pub error: String,
}

/// Dead-lettered rows, newest first, at most `limit`.
pub fn dead_letters(store: &Store, limit: usize) -> Result<Vec<DeadRow>, StoreError> {
    let mut stmt = store.connection().prepare_cached(
        "SELECT id, kind, sourcetype, payload, attempts, dead_at, error FROM outbox_dead
         ORDER BY dead_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok(DeadRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                sourcetype: r.get(2)?,
                payload: r.get(3)?,
                attempts: r.get::<_, i64>(4)?.max(0) as u32,
                dead_at: r.get(5)?,
                error: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Dead-lettered rows bound for one Splunk index, with the latest reason (for `status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadByIndex {
    /// `None`: the HEC token's default index.
    pub index: Option<String>,
    pub count: u64,
    pub last_error: String,
}

/// Dead-lettered rows counted per index, ordered by index.
pub fn dead_by_index(store: &Store) -> Result<Vec<DeadByIndex>, StoreError> {
    let mut stmt = store.connection().prepare_cached(
        "SELECT d.idx, count(*),
                (SELECT e.error FROM outbox_dead e WHERE e.idx IS d.idx
                 ORDER BY e.dead_at DESC, e.id DESC LIMIT 1)
         FROM outbox_dead d GROUP BY d.idx ORDER BY d.idx",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(DeadByIndex {
                index: r.get(0)?,
                count: r.get::<_, i64>(1)?.max(0) as u64,
                last_error: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One delivered row, from the delivery history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveredRow {
    pub id: i64,
    pub delivered_at: i64,
    pub acked: bool,
    pub attempts: u32,
}

/// The delivery history, by outbox id.
pub fn delivered(store: &Store) -> Result<Vec<DeliveredRow>, StoreError> {
    let mut stmt = store.connection().prepare_cached(
        "SELECT id, delivered_at, acked, attempts FROM outbox_delivered ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(DeliveredRow {
                id: r.get(0)?,
                delivered_at: r.get(1)?,
                acked: r.get::<_, i64>(2)? != 0,
                attempts: r.get::<_, i64>(3)?.max(0) as u32,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Forgets delivery history older than `before` (epoch ms). Returns the rows removed.
pub fn prune_delivered(store: &mut Store, before: i64) -> Result<u64, StoreError> {
    let n = store
        .connection()
        .prepare_cached("DELETE FROM outbox_delivered WHERE delivered_at < ?1")?
        .execute([before])?;
    Ok(n as u64)
}

/// The sink's persisted value for `name`, set to `value` on first use. Used for the per-store
/// HEC request channel, which must survive restarts so unconfirmed acks can still be asked for.
pub fn meta_get_or_insert(
    store: &mut Store,
    name: &str,
    value: &str,
) -> Result<String, StoreError> {
    let conn = store.connection();
    conn.prepare_cached("INSERT OR IGNORE INTO outbox_meta (name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(conn
        .prepare_cached("SELECT value FROM outbox_meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?)
}

/// `[1,2,3]`: ids bound as one JSON parameter and unpacked with `json_each`.
fn ids_json(ids: impl Iterator<Item = i64>) -> String {
    use std::fmt::Write;
    let mut out = String::from("[");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
    out
}
