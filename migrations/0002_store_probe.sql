-- sriovd schema, version 2: the store probe.
--
-- While the store cannot commit (a lock held elsewhere, a full disk), GET /readyz answers 503; to learn when
-- it can commit again without waiting for a client's write, it rewrites this table's one row in a durable
-- transaction, at most about once a second and only while the store is failing.
CREATE TABLE store_probe (
    id        INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    probed_at TEXT NOT NULL
) STRICT;
