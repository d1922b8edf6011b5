-- sriovd schema, version 8: audit retention.
--
-- (0006 and 0007 are other branches'; migrations are applied by name in order and need not be contiguous.)
--
-- With `--audit-retention DAYS`, audit events older than that are first appended to archive files (NDJSON, one
-- file a month, fsynced) and only then deleted. The history stays append-only for every other path: a DELETE of
-- an audit row is refused unless this table's one row, written in the same transaction by the retention run and
-- removed again before it commits, says the row's id is inside the window being removed.
CREATE TABLE audit_retention_window (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    -- Rows with an id up to this one, and only those, may be deleted while the row exists.
    through_id INTEGER NOT NULL CHECK (through_id >= 1),
    -- Events before this RFC 3339 time are the ones the run removes (kept for the record).
    cutoff     TEXT NOT NULL
) STRICT;

-- A window never covers an event newer than its cutoff.
CREATE TRIGGER audit_retention_window_covers_only_old_events
BEFORE INSERT ON audit_retention_window
WHEN EXISTS (SELECT 1 FROM audit_events WHERE id <= NEW.through_id AND at >= NEW.cutoff)
BEGIN
    SELECT RAISE(ABORT, 'audit_retention_window: the window holds events at or after its cutoff');
END;

CREATE TRIGGER audit_retention_window_no_update
BEFORE UPDATE ON audit_retention_window
BEGIN
    SELECT RAISE(ABORT, 'audit_retention_window: write a new window instead');
END;

DROP TRIGGER audit_events_no_delete;

CREATE TRIGGER audit_events_no_delete
BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_retention_window WHERE id = 1 AND OLD.id <= through_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: no DELETE outside an audit retention run');
END;
