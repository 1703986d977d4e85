-- Crosswind store, version 5: raw records and events compressed with zstd dictionaries trained on
-- the store's own records (see crosswind-store's codec module). A record alone barely shrinks; with
-- a dictionary trained on earlier records of its format, real CloudTrail shrinks about 7×.
--
-- A value that names a dictionary is one zstd frame (content size included) made
-- with it; NULL means stored as received (the first records of each format, and every row
-- written before version 5). `crosswind` reads both; a plain SQLite reader sees compressed bytes
-- where a dictionary is named.

-- Dictionaries are never changed or deleted: rows of any age may name one.
CREATE TABLE zstd_dicts (
    id         INTEGER PRIMARY KEY,
    format     TEXT    NOT NULL,   -- source format of the records it was trained on
    part       TEXT    NOT NULL CHECK (part IN ('raw', 'event')),
    created_at INTEGER NOT NULL,   -- wall clock, epoch ms
    samples    INTEGER NOT NULL,   -- records it was trained on
    dict       BLOB    NOT NULL
);

-- No REFERENCES: a foreign-key check per insert buys nothing for a table never deleted from.
ALTER TABLE raw_records ADD COLUMN dict INTEGER;   -- raw_records.raw compressed with zstd_dicts.id
ALTER TABLE events ADD COLUMN event_dict INTEGER;  -- events.event compressed with zstd_dicts.id
