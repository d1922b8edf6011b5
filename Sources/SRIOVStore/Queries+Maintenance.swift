import SRIOVCore

// The SQL of cordons, managed VF ranges and moves (migration 0007), and the views that forward to it.

extension Database {
    func maintenance() throws(StoreError) -> MaintenanceMap {
        let rows = try query(
            "SELECT pf, cordoned, cordoned_at, managed_first, managed_last FROM pf_maintenance ORDER BY pf"
        ) { row throws(StoreError) -> PFMaintenance? in
            guard let pf = PCIAddress(row.text(0)) else { return nil }
            let range = row.optionalInt(3).flatMap { first in row.optionalInt(4).map { first...max(first, $0) } }
            return PFMaintenance(pf: pf, cordoned: row.int(1) == 1, cordonedAt: row.optionalText(2), managed: range)
        }
        return MaintenanceMap(rows.compactMap { $0 })
    }

    func setCordon(pf: PCIAddress, cordoned: Bool, at: String) throws(StoreError) {
        try execute(
            """
            INSERT INTO pf_maintenance (pf, cordoned, cordoned_at, updated_at) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (pf) DO UPDATE SET cordoned = ?2,
                cordoned_at = CASE WHEN ?2 = 1 THEN coalesce(cordoned_at, ?3) END, updated_at = ?4
            """, pf.description, cordoned ? 1 : 0, cordoned ? at : nil, at)
    }

    func setManagedRange(pf: PCIAddress, range: ClosedRange<Int>?, at: String) throws(StoreError) {
        try execute(
            """
            INSERT INTO pf_maintenance (pf, managed_first, managed_last, updated_at) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (pf) DO UPDATE SET managed_first = ?2, managed_last = ?3, updated_at = ?4
            """, pf.description, range?.lowerBound, range?.upperBound, at)
    }

    /// Points the allocation at another VF with a generation above `above` and above every allocation the new VF
    /// had; returns that generation.
    func moveAllocation(id: String, to vf: PCIAddress, pf: PCIAddress, vfIndex: Int, above: Int) throws(StoreError)
        -> Int
    {
        let generation =
            try queryFirst(
                """
                INSERT INTO vf_generations (vf, generation) VALUES (?1, max(?2 + 1, 1))
                ON CONFLICT (vf) DO UPDATE SET generation = max(generation + 1, ?2 + 1)
                RETURNING generation
                """, [vf.description, above]
            ) { $0.int(0) } ?? (above + 1)
        do {
            try execute(
                "UPDATE allocations SET vf = ?, pf = ?, vf_index = ?, generation = ? WHERE id = ?", vf.description,
                pf.description, vfIndex, generation, id)
        } catch {
            throw heldError(error, vf: vf)
        }
        guard changes == 1 else { throw .allocationNotFound(id) }
        return generation
    }
}

extension StoreView {
    /// Every PF's cordon and managed range.
    public func maintenance() throws(StoreError) -> MaintenanceMap {
        try connection().maintenance()
    }
}

extension Transaction {
    /// Cordons (or uncordons) the PF; the first cordon's time is kept while it stays cordoned.
    public func setCordon(pf: PCIAddress, cordoned: Bool) throws(StoreError) {
        try connection().setCordon(pf: pf, cordoned: cordoned, at: Timestamp.now())
    }

    /// Sets the VF indexes sriovd manages on the PF; nil manages them all.
    public func setManagedRange(pf: PCIAddress, range: ClosedRange<Int>?) throws(StoreError) {
        try connection().setManagedRange(pf: pf, range: range, at: Timestamp.now())
    }

    /// Moves a holding allocation to another VF, its generation grown past `above` and past every allocation of
    /// the new VF; returns the new generation. Throws `.vfAlreadyHeld` when another allocation holds the VF.
    public func moveAllocation(id: String, to vf: PCIAddress, pf: PCIAddress, vfIndex: Int, above: Int)
        throws(StoreError) -> Int
    {
        try connection().moveAllocation(id: id, to: vf, pf: pf, vfIndex: vfIndex, above: above)
    }
}
