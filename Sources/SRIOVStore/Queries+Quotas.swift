import FoundationEssentials
import SRIOVCore

// The SQL of quotas, leases and anti-affinity (migration 0005), and the views that forward to it.

extension Database {
    func quotas() throws(StoreError) -> [Quota] {
        try query("SELECT owner_prefix, max_vfs, per_numa_node, updated_at FROM quotas ORDER BY owner_prefix") {
            row throws(StoreError) in
            let text = row.text(2)
            let byNode: [String: Int]
            do {
                byNode = text == "{}" ? [:] : try jsonDecoder.decode([String: Int].self, from: Data(text.utf8))
            } catch {
                throw .corruptData("quotas.per_numa_node: \(error)")
            }
            var perNode: [Int: Int] = [:]
            for (key, limit) in byNode {
                guard let node = Int(key) else { throw .corruptData("quotas.per_numa_node key '\(key)'") }
                perNode[node] = limit
            }
            return Quota(ownerPrefix: row.text(0), maxVFs: row.int(1), perNUMANode: perNode, updatedAt: row.text(3))
        }
    }

    func putQuota(_ quota: Quota) throws(StoreError) {
        let byNode = quota.perNUMANode.keys.sorted().map { "\"\($0)\":\(quota.perNUMANode[$0]!)" }
        try execute(
            """
            INSERT INTO quotas (owner_prefix, max_vfs, per_numa_node, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (owner_prefix) DO UPDATE
            SET max_vfs = excluded.max_vfs, per_numa_node = excluded.per_numa_node, updated_at = excluded.updated_at
            """, quota.ownerPrefix, quota.maxVFs, "{" + byNode.joined(separator: ",") + "}", quota.updatedAt)
    }

    func deleteQuota(ownerPrefix: String) throws(StoreError) -> Bool {
        try execute("DELETE FROM quotas WHERE owner_prefix = ?", ownerPrefix)
        return changes == 1
    }

    /// VFs held by owners that start with `prefix`, by PF. The owner index is read as a range: every text
    /// starting with the prefix sorts at or after it and before the prefix followed by U+10FFFF.
    func heldByPF(ownerPrefix prefix: String) throws(StoreError) -> [PCIAddress: Int] {
        let rows = try query(
            """
            SELECT pf, count(*) FROM allocations
            WHERE owner >= ?1 AND owner < ?2 AND substr(owner, 1, length(?1)) = ?1 AND state <> 'released'
            GROUP BY pf
            """, [prefix, prefix + "\u{10FFFF}"]
        ) { row throws(StoreError) in (PCIAddress(row.text(0)), row.int(1)) }
        var byPF: [PCIAddress: Int] = [:]
        for case (let pf?, let count) in rows { byPF[pf, default: 0] += count }
        return byPF
    }

    /// PFs on which an allocation holding its VF carries `label` with `value`.
    func pfsHoldingLabel(_ label: String, value: String) throws(StoreError) -> Set<PCIAddress> {
        Set(
            try query(
                """
                SELECT DISTINCT a.pf FROM allocations AS a, json_each(a.labels) AS l
                WHERE a.state <> 'released' AND a.labels <> '{}' AND l.key = ? AND l.value = ?
                """, [label, value]
            ) { row throws(StoreError) in PCIAddress(row.text(0)) }.compactMap { $0 })
    }

    /// Allocations holding a VF (active, or orphaned or drifted awaiting reconciliation) whose lease ran out at or
    /// before `now`, soonest first. A dirty one is left: its VF failed to restore and stays out of the pool until a
    /// reset, whatever its lease says.
    func expiredLeases(now: String, limit: Int) throws(StoreError) -> [String] {
        // The first half uses the index of running leases; the second the index of holders (state <> 'released'),
        // which stays as small as the VFs held.
        try query(
            """
            SELECT id, expires_at FROM allocations
            WHERE expires_at IS NOT NULL AND state = 'active' AND expires_at <= ?1
            UNION ALL
            SELECT id, expires_at FROM allocations
            WHERE state <> 'released' AND state IN ('orphaned', 'drifted') AND expires_at <= ?1
            ORDER BY 2 LIMIT ?2
            """, [now, limit]
        ) { $0.text(0) }
    }

    func renewLease(id: String, leaseSeconds: Int, expiresAt: String) throws(StoreError) {
        try execute(
            "UPDATE allocations SET lease_seconds = ?, expires_at = ? WHERE id = ?", leaseSeconds, expiresAt, id)
        guard changes == 1 else { throw .allocationNotFound(id) }
    }
}

extension StoreView {
    /// Every quota, by owner prefix.
    public func quotas() throws(StoreError) -> [Quota] {
        try connection().quotas()
    }

    /// VFs held (in any holding state) by owners starting with `ownerPrefix`, by PF.
    public func heldByPF(ownerPrefix: String) throws(StoreError) -> [PCIAddress: Int] {
        try connection().heldByPF(ownerPrefix: ownerPrefix)
    }

    /// PFs with an allocation holding its VF whose labels have `label` = `value`.
    public func pfsHoldingLabel(_ label: String, value: String) throws(StoreError) -> Set<PCIAddress> {
        try connection().pfsHoldingLabel(label, value: value)
    }

    /// Ids of active allocations whose lease ran out at or before `now` (RFC 3339), soonest first.
    public func expiredLeases(now: String, limit: Int = 256) throws(StoreError) -> [String] {
        try connection().expiredLeases(now: now, limit: limit)
    }
}

extension Transaction {
    /// Creates or replaces the quota of its owner prefix.
    public func putQuota(_ quota: Quota) throws(StoreError) {
        try connection().putQuota(quota)
    }

    /// Removes the quota of `ownerPrefix`; false when there was none.
    @discardableResult
    public func deleteQuota(ownerPrefix: String) throws(StoreError) -> Bool {
        try connection().deleteQuota(ownerPrefix: ownerPrefix)
    }

    /// Sets an allocation's lease. Throws `.allocationNotFound`.
    public func renewLease(id: String, leaseSeconds: Int, expiresAt: String) throws(StoreError) {
        try connection().renewLease(id: id, leaseSeconds: leaseSeconds, expiresAt: expiresAt)
    }
}
