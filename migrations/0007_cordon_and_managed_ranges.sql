-- sriovd schema, version 7: maintenance of a PF (cordon, managed VF ranges) and allocations that move.
--
-- (0006 and 0008 are other branches'; migrations are applied by name in order and need not be contiguous.)
--
-- A cordoned PF takes no new allocation: selectors skip it and an explicit `pf` or `vf` is refused. A PF may be
-- managed only in part: VFs whose index is outside [managed_first, managed_last] belong to another owner and are
-- never allocated, written, restored or reconciled. No row means not cordoned and wholly managed.
CREATE TABLE pf_maintenance (
    pf            TEXT PRIMARY KEY NOT NULL CHECK (length(pf) = 12),
    cordoned      INTEGER NOT NULL DEFAULT 0 CHECK (cordoned IN (0, 1)),
    cordoned_at   TEXT,
    managed_first INTEGER CHECK (managed_first IS NULL OR managed_first >= 0),
    managed_last  INTEGER,
    updated_at    TEXT NOT NULL,
    CHECK ((cordoned = 1) = (cordoned_at IS NOT NULL)),
    CHECK ((managed_first IS NULL) = (managed_last IS NULL)),
    CHECK (managed_last IS NULL OR managed_last >= managed_first)
) STRICT;

-- An allocation may now move to a VF of another PF (POST /allocations/{id}/move): its id, owner, labels and
-- settings stay, and its VF, PF, index and generation change together. The generation only grows, and past every
-- allocation the new VF ever had, so a late release naming the old generation cannot reach the new VF.
DROP TRIGGER allocations_identity_is_fixed;

CREATE TRIGGER allocations_identity_is_fixed
BEFORE UPDATE OF seq, id, created_at ON allocations
BEGIN
    SELECT RAISE(ABORT, 'allocations: seq, id and created_at never change');
END;

CREATE TRIGGER allocations_move_grows_generation
BEFORE UPDATE OF vf, pf, vf_index, generation ON allocations
WHEN NEW.generation <= OLD.generation
  OR NEW.generation <= (SELECT coalesce(max(generation), 0) FROM allocations WHERE vf = NEW.vf AND seq <> OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'allocations: a move must grow the generation past every allocation of the new VF');
END;
