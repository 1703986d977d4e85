-- Crosswind store, version 1: raw records, normalised events, quarantine, checkpoints.

-- One row per distinct source record. (source, record_id) is the dedup key: Graph `id`,
-- CloudTrail `eventID`, or `sha256:<hex>` of the record when its shape has no id.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
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
    event       TEXT    NOT NULL,   -- the normalised Event as JSON
    UNIQUE (source, record_id)
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_user_time ON events (user_name, time);
CREATE INDEX events_ip_time ON events (src_ip, time);

-- The record exactly as received, byte for byte (forwarded to Splunk as is).
CREATE TABLE raw_records (
    event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    raw      BLOB    NOT NULL
);

-- Records that could not be mapped, with the reason. Never silently dropped.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    origin      TEXT    NOT NULL,
    position    TEXT,
    reason      TEXT    NOT NULL,
    raw         BLOB    NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received_at);

-- Collector checkpoints: advanced in the same transaction as the records they cover.
CREATE TABLE checkpoints (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
