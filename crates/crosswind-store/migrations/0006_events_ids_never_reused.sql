-- Crosswind store, version 6: `events.id` is never handed out twice.
--
-- The daemon's followers (the correlator and the outbox feeder) read `events` by row id after a
-- cursor. Without AUTOINCREMENT SQLite gives a new row max(id) + 1, so once retention removed the
-- newest rows (a backfill longer than the retention, an import of old exports, a store idle
-- longer than the retention) new records took ids at or below the cursors and were never
-- correlated or forwarded. With AUTOINCREMENT an id is larger than every id ever used.
--
-- SQLite cannot add AUTOINCREMENT to a table, so it is rebuilt (SQLite's documented procedure:
-- new table, copy, drop, rename, indexes). The migration runs with foreign keys off, otherwise
-- dropping the old table would delete every `raw_records` row through ON DELETE CASCADE; their
-- ids are kept, so `raw_records` still references the right events. Columns, their order and
-- values (including the zstd `event_dict`) are unchanged.
--
-- The copy sets the id counter to the largest id stored. A store where retention already let ids
-- go back below a follower's cursor is mended at the end.
CREATE TABLE events_v6 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    time        INTEGER NOT NULL,   -- event time, epoch ms
    provider    TEXT    NOT NULL,   -- 'Azure' | 'AWS'
    class_uid   INTEGER NOT NULL,
    status_id   INTEGER NOT NULL,
    user_name   TEXT,
    src_ip      TEXT,
    operation   TEXT,
    account_uid TEXT,
    ingested_at INTEGER NOT NULL,   -- wall clock, epoch ms
    origin      TEXT    NOT NULL,   -- file or collector that brought it
    event       TEXT    NOT NULL,   -- the normalised Event as JSON (zstd-compressed when event_dict is set)
    event_dict  INTEGER,            -- events.event compressed with zstd_dicts.id
    UNIQUE (source, record_id)
);
INSERT INTO events_v6
    (id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
     operation, account_uid, ingested_at, origin, event, event_dict)
SELECT id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
       operation, account_uid, ingested_at, origin, event, event_dict
FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v6 RENAME TO events;
CREATE INDEX events_time ON events (time);
CREATE INDEX events_user_time ON events (user_name, time);
CREATE INDEX events_ip_time ON events (src_ip, time);

-- A store where it already happened: a follower's cursor (the correlator's `correlate`, the
-- daemon's outbox feeder's `daemon:outbox_feeder`) is ahead of every stored id. The rows stored
-- since that cursor last moved were never read by it: move it back to just before the first of
-- them, or to the newest id when there is none. (At or after its last move: a tie costs a re-read,
-- not a loss.)
UPDATE checkpoints
SET value = CAST(coalesce(
        (SELECT min(e.id) - 1 FROM events e
         WHERE e.id <= CAST(checkpoints.value AS INTEGER)
           AND e.ingested_at >= checkpoints.updated_at),
        (SELECT coalesce(max(id), 0) FROM events)) AS TEXT)
WHERE name IN ('correlate', 'daemon:outbox_feeder')
  AND CAST(value AS INTEGER) > (SELECT coalesce(max(id), 0) FROM events);
