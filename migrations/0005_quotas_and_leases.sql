-- sriovd schema, version 5: placement reasons, leases and quotas.
--
-- (0004 is another branch's; migrations are applied by name in order and need not be contiguous.)
--
-- An allocation may carry a lease: sriovd releases it at `expires_at` unless it is renewed first. The expiry is
-- stored so that it outlives the process: a start after a long stop releases what expired meanwhile. Why the VF
-- was chosen (the placement rule and its reason) is kept with the allocation as JSON.
ALTER TABLE allocations ADD COLUMN lease_seconds INTEGER CHECK (lease_seconds IS NULL OR lease_seconds > 0);
ALTER TABLE allocations ADD COLUMN expires_at TEXT;
ALTER TABLE allocations ADD COLUMN placement TEXT
    CHECK (placement IS NULL OR (json_valid(placement) AND json_type(placement) = 'object'));

-- The leases still running, soonest first: what the expiry sweep reads.
CREATE INDEX allocations_leases_running ON allocations (expires_at) WHERE expires_at IS NOT NULL AND state = 'active';

-- What a quota counts: the VFs held by owners under a prefix, read as a range of this index.
CREATE INDEX allocations_holding_by_owner ON allocations (owner, pf) WHERE state <> 'released';

-- How many VFs the owners under a prefix may hold at once; the longest matching prefix applies.
CREATE TABLE quotas (
    owner_prefix  TEXT PRIMARY KEY NOT NULL CHECK (length(owner_prefix) BETWEEN 1 AND 256),
    max_vfs       INTEGER NOT NULL CHECK (max_vfs >= 0),
    -- Limits per NUMA node: {"0": 4, "1": 6}.
    per_numa_node TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(per_numa_node) AND json_type(per_numa_node) = 'object'),
    updated_at    TEXT NOT NULL
) STRICT;
