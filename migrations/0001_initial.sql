-- sriovd schema, version 1.
--
-- A migration is never edited once it has shipped: sriovd records each migration's SHA-256 and refuses to
-- start when an applied one has changed. Change the schema with a new file, 0002_*.sql, and so on.
--
-- Conventions: STRICT tables; PCI addresses as canonical text `DDDD:BB:DD.F`; timestamps as RFC 3339 UTC
-- text with milliseconds (`2026-11-25T09:30:00.123Z`), which sort in time order; JSON as text checked
-- with json_valid.

-- SR-IOV physical functions ever seen on this host. Rows are never deleted: a PF that vanished keeps its
-- history and its desired VF count.
CREATE TABLE pfs (
    address     TEXT PRIMARY KEY NOT NULL CHECK (length(address) = 12),
    vendor_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    -- The VF count an operator asked for; NULL when never set.
    desired_vfs INTEGER CHECK (desired_vfs IS NULL OR desired_vfs >= 0),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
) STRICT;

-- Virtual functions ever seen. A VF address can come back under the same PF after a resize.
CREATE TABLE vfs (
    address    TEXT PRIMARY KEY NOT NULL CHECK (length(address) = 12),
    pf         TEXT NOT NULL REFERENCES pfs (address),
    vf_index   INTEGER NOT NULL CHECK (vf_index >= 0),
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL
) STRICT;

CREATE INDEX vfs_by_pf ON vfs (pf, vf_index);

-- The fencing token source: one row per VF, its generation only ever grows.
CREATE TABLE vf_generations (
    vf         TEXT PRIMARY KEY NOT NULL CHECK (length(vf) = 12),
    generation INTEGER NOT NULL CHECK (generation >= 1)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER vf_generations_only_grow
BEFORE UPDATE ON vf_generations
WHEN NEW.generation <= OLD.generation OR NEW.vf <> OLD.vf
BEGIN
    SELECT RAISE(ABORT, 'vf_generations: a generation only grows');
END;

CREATE TRIGGER vf_generations_no_delete
BEFORE DELETE ON vf_generations
BEGIN
    SELECT RAISE(ABORT, 'vf_generations: rows are never deleted');
END;

-- VFs handed to consumers, current and past. `seq` is the listing cursor (AUTOINCREMENT: never reused).
CREATE TABLE allocations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    vf          TEXT NOT NULL CHECK (length(vf) = 12),
    pf          TEXT NOT NULL CHECK (length(pf) = 12),
    vf_index    INTEGER NOT NULL CHECK (vf_index >= 0),
    owner       TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    state       TEXT NOT NULL CHECK (state IN ('active', 'released', 'dirty', 'orphaned', 'drifted')),
    created_at  TEXT NOT NULL,
    released_at TEXT,
    config      TEXT CHECK (config IS NULL OR (json_valid(config) AND json_type(config) = 'object')),
    generation  INTEGER NOT NULL CHECK (generation >= 1),
    CHECK (state <> 'released' OR released_at IS NOT NULL)
) STRICT;

-- THE guard against double allocation: at most one allocation holds a VF.
CREATE UNIQUE INDEX allocations_one_holder_per_vf ON allocations (vf) WHERE state <> 'released';

CREATE INDEX allocations_by_vf_generation ON allocations (vf, generation);
CREATE INDEX allocations_by_owner ON allocations (owner, seq);
CREATE INDEX allocations_by_pf ON allocations (pf, seq);
CREATE INDEX allocations_by_state ON allocations (state, seq);

-- A new allocation's fencing token must exceed every earlier one of the same VF.
CREATE TRIGGER allocations_generation_grows
BEFORE INSERT ON allocations
WHEN NEW.generation <= (SELECT coalesce(max(generation), 0) FROM allocations WHERE vf = NEW.vf)
BEGIN
    SELECT RAISE(ABORT, 'allocations: generation must exceed every earlier allocation of the VF');
END;

CREATE TRIGGER allocations_identity_is_fixed
BEFORE UPDATE OF seq, id, vf, pf, vf_index, created_at, generation ON allocations
BEGIN
    SELECT RAISE(ABORT, 'allocations: seq, id, vf, pf, vf_index, created_at and generation never change');
END;

-- A VF's settings as found before sriovd first changed them, to restore on release.
CREATE TABLE vf_original_state (
    vf          TEXT PRIMARY KEY NOT NULL CHECK (length(vf) = 12),
    settings    TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    captured_at TEXT NOT NULL
) STRICT;

-- The append-only history. `id` is AUTOINCREMENT so it only grows, even across restarts.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    error      TEXT,
    request_id TEXT,
    details    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
) STRICT;

CREATE INDEX audit_events_by_target ON audit_events (target, id);
CREATE INDEX audit_events_by_action ON audit_events (action, id);
CREATE INDEX audit_events_by_actor ON audit_events (actor, id);
CREATE INDEX audit_events_by_at ON audit_events (at);

CREATE TRIGGER audit_events_no_update
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: no UPDATE');
END;

CREATE TRIGGER audit_events_no_delete
BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: no DELETE');
END;

-- Responses to mutating requests that carried an Idempotency-Key, kept at least 24 hours.
CREATE TABLE idempotency_keys (
    key              TEXT PRIMARY KEY NOT NULL,
    request_hash     TEXT NOT NULL,
    status           INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    -- A JSON array of [name, value] pairs, in order.
    response_headers TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(response_headers)),
    response_body    BLOB NOT NULL,
    created_at       TEXT NOT NULL
) STRICT;

CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at);

-- Crash safety: an intent is written (and committed) before hardware is touched, and completed after.
-- At start, every open intent is finished or rolled back.
CREATE TABLE intents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    payload      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    outcome      TEXT CHECK (outcome IN ('completed', 'rolled_back')),
    CHECK ((completed_at IS NULL) = (outcome IS NULL))
) STRICT;

CREATE INDEX intents_open ON intents (id) WHERE completed_at IS NULL;
