-- Crosswind store, version 8: the dedup key is a 64-bit integer.
--
-- Dedup on (source, record_id) kept a UNIQUE index of ~50-byte text keys that every insert
-- searched and grew; it was the largest index cost of an import. `record_key` is a 64-bit hash
-- of (source, record_id) (`crosswind_record_key`, see crosswind-store's `record_key`), unique on
-- its own: an index of integers, a quarter of the size. Dedup is still exact: an insert whose
-- key is taken compares (source, record_id) with the row holding it, and a distinct record that
-- merely shares the hash (a collision) is stored with `record_key` NULL, where the partial index
-- `events_unkeyed` finds it by (source, record_id). Rows written by anything that does not set
-- the key are found there too.
--
-- The UNIQUE constraint is part of the table, so the table is rebuilt as in version 6 (foreign
-- keys off, ids, column values and the AUTOINCREMENT counter kept). Two rows of an old store
-- that share a hash keep it on the older one; the newer goes unkeyed.
CREATE TABLE events_v8 (
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
    marks       INTEGER,            -- hunt marks (version 7)
    record_key  INTEGER             -- 64-bit hash of (source, record_id); NULL: found by events_unkeyed
);
CREATE UNIQUE INDEX events_record_key ON events_v8 (record_key);
INSERT INTO events_v8
    (id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
     operation, account_uid, ingested_at, origin, event, event_dict, marks, record_key)
SELECT id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
       operation, account_uid, ingested_at, origin, event, event_dict, marks,
       crosswind_record_key(source, record_id)
FROM events WHERE true ORDER BY id
ON CONFLICT (record_key) DO NOTHING;
-- The rows left out above share their hash with an older row.
INSERT INTO events_v8
    (id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
     operation, account_uid, ingested_at, origin, event, event_dict, marks, record_key)
SELECT id, source, record_id, format, time, provider, class_uid, status_id, user_name, src_ip,
       operation, account_uid, ingested_at, origin, event, event_dict, marks, NULL
FROM events WHERE id NOT IN (SELECT id FROM events_v8) ORDER BY id;
-- Ids are never handed out twice (version 6): the counter goes on from the old table's.
DELETE FROM sqlite_sequence WHERE name = 'events_v8';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v8', seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_v8 RENAME TO events;
CREATE INDEX events_unkeyed ON events (source, record_id) WHERE record_key IS NULL;
-- A risk detection's states by record id range (`Store::risk_detection_states`): few rows.
CREATE INDEX events_risk_states ON events (record_id) WHERE source = 'entra_risk_detection';
CREATE INDEX events_time ON events (time);
CREATE INDEX events_user_time ON events (user_name, time);
CREATE INDEX events_ip_time ON events (src_ip, time);
CREATE INDEX events_entra_risk ON events (time, id, marks, event, event_dict)
    WHERE (marks & 1) = 1;
CREATE INDEX events_unmarked ON events (time) WHERE marks IS NULL;
CREATE INDEX events_aws_console
    ON events (time, id, class_uid, status_id, provider, operation, event, event_dict)
    WHERE provider = 'AWS' AND operation = 'ConsoleLogin';
