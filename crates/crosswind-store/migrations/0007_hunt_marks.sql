-- Crosswind store, version 7: selective hunts read their candidates from partial indexes
-- instead of decoding every event in their window (see crosswind-store's marks module).
--
-- `marks` is a bit set written with each event (1: a successful Entra sign-in with some
-- Identity Protection risk, or a cross-tenant single-factor sign-in). Rows stored before this
-- version have NULL and are read as candidates of every mark, so nothing is missed; retention
-- ages them out.
--
-- The two subset indexes hold each candidate's (compressed) event and every column its query
-- reads, the columns of their WHERE too (SQLite counts those as read): a hunt reads candidates
-- in order from a few index pages instead of one table page each, scattered over the file.
-- They hold a few percent of the events, so import barely pays for them.
ALTER TABLE events ADD COLUMN marks INTEGER;
CREATE INDEX events_entra_risk ON events (time, id, marks, event, event_dict)
    WHERE (marks & 1) = 1;
CREATE INDEX events_unmarked ON events (time) WHERE marks IS NULL;
CREATE INDEX events_aws_console
    ON events (time, id, class_uid, status_id, provider, operation, event, event_dict)
    WHERE provider = 'AWS' AND operation = 'ConsoleLogin';
