-- sriovd schema, version 3: asynchronous operations.
--
-- A request made with `Prefer: respond-async` (a VF count change, a reconcile run, an allocation that binds a
-- driver) is answered 202 at once and carried out as an operation, whose state a client follows at
-- GET /operations/{id}. Operations outlive the process: one that a crash cut off is settled at the next start,
-- `succeeded` when the hardware shows it done, else `failed` with an `interrupted` problem.
CREATE TABLE operations (
    id          TEXT PRIMARY KEY NOT NULL,
    -- What is carried out: `pf.vfs.set`, `reconcile.run`, `allocation.create`.
    kind        TEXT NOT NULL,
    -- On what: a PF address, `host`, or the allocation id the operation creates.
    target      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    -- The request as the API took it (JSON).
    request     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(request)),
    -- How far it has come, where known (JSON).
    progress    TEXT CHECK (progress IS NULL OR json_valid(progress)),
    -- The answer the synchronous call would have given: its body on success, its problem on failure (JSON).
    result      TEXT CHECK (result IS NULL OR json_valid(result)),
    problem     TEXT CHECK (problem IS NULL OR json_valid(problem)),
    actor       TEXT NOT NULL,
    request_id  TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    CHECK ((state IN ('succeeded', 'failed')) = (finished_at IS NOT NULL)),
    CHECK ((state = 'failed') = (problem IS NOT NULL))
) STRICT;

CREATE INDEX operations_unfinished ON operations (id) WHERE finished_at IS NULL;
CREATE INDEX operations_by_created ON operations (created_at, id);
