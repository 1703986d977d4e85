-- Crosswind store, version 4: collectors re-read an overlap window on every poll, so the same
-- unmappable record would be quarantined again each time. Collectors now quarantine a record
-- once per origin, keyed by the SHA-256 of its bytes. `import` keeps one row per read (NULL key).
ALTER TABLE quarantine ADD COLUMN raw_sha256 BLOB;
CREATE UNIQUE INDEX quarantine_once ON quarantine (origin, raw_sha256)
    WHERE raw_sha256 IS NOT NULL;
