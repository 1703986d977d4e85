-- Crosswind store: the Splunk HEC outbox.
--
-- A record is enqueued in the same transaction that stores it; a row leaves `outbox` only when
-- Splunk acknowledged it (indexer ack), accepted it (2xx without acks), or rejected that one event
-- for good (then it moves to `outbox_dead` with Splunk's error text). Never silently deleted.

-- AUTOINCREMENT: ids are never reused, so a delivered id in `outbox_delivered` names one record.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('raw', 'risk', 'finding', 'event')),
    sourcetype  TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    time        INTEGER NOT NULL,   -- event time, epoch ms
    idx         TEXT,               -- Splunk index, when not the token's default
    enqueued_at INTEGER NOT NULL,   -- wall clock, epoch ms
    attempts    INTEGER NOT NULL DEFAULT 0,   -- requests Splunk answered or may have indexed
    in_doubt    INTEGER NOT NULL DEFAULT 0,   -- 1: a previous request may have indexed it
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent')),
    channel     TEXT,               -- state 'sent': X-Splunk-Request-Channel
    ack_id      INTEGER,            -- state 'sent': the request's ackId
    sent_at     INTEGER             -- state 'sent': wall clock, epoch ms
);
-- No index on state: the sink claims pending rows by id from its own cursor, and every index
-- costs a b-tree write per state change.

-- The pre-rendered HEC event object (JSON bytes), apart from the row so that state changes
-- (claim, sent, requeue) rewrite a few bytes, not the payload.
CREATE TABLE outbox_payload (
    id      INTEGER PRIMARY KEY,   -- the outbox id
    payload BLOB    NOT NULL
);
CREATE INDEX outbox_ack ON outbox (channel, ack_id) WHERE state = 'sent';

-- Events Splunk refused for good (one poisoned event, a single event too large), with the reason.
CREATE TABLE outbox_dead (
    id          INTEGER PRIMARY KEY,   -- the outbox id
    kind        TEXT    NOT NULL,
    sourcetype  TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    idx         TEXT,
    payload     BLOB    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    dead_at     INTEGER NOT NULL,
    error       TEXT    NOT NULL
);

-- Delivery history: one row per delivered outbox id. `acked` = 1 when an indexer ack confirmed
-- it, 0 when Splunk accepted it without acks (2xx without ackId, or the events before an invalid
-- one in a rejected batch). `attempts` > 1 means it was handed to more than one request.
CREATE TABLE outbox_delivered (
    id           INTEGER PRIMARY KEY,
    delivered_at INTEGER NOT NULL,
    acked        INTEGER NOT NULL,
    attempts     INTEGER NOT NULL
);
CREATE INDEX outbox_delivered_at ON outbox_delivered (delivered_at);

-- Requests in flight: the id range claimed for a request whose answer is not in yet. A range
-- left here by a crash marks its pending rows in doubt (that request may have indexed them).
CREATE TABLE outbox_inflight (
    id         INTEGER PRIMARY KEY,
    first_id   INTEGER NOT NULL,
    last_id    INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL
);

-- Sink state that must survive restarts (the per-store HEC request channel).
CREATE TABLE outbox_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
