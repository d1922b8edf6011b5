import SRIOVCore
import SRIOVStore

/// Setting and removing quotas, audited; reading them with their use.
struct QuotaService: Sendable {
    let core: ServiceCore

    /// A quota with what its owners hold now.
    struct Standing: Sendable {
        var quota: Quota
        var use: QuotaUse
    }

    /// Creates or replaces the quota of `ownerPrefix`.
    func set(ownerPrefix: String, maxVFs: Int, perNUMANode: [Int: Int], caller: Caller) async throws(SRIOVError)
        -> Quota
    {
        let quota = Quota(
            ownerPrefix: ownerPrefix, maxVFs: maxVFs, perNUMANode: perNUMANode, updatedAt: Timestamp.now())
        return try await core.perform { tx in
            let before = try tx.quotas().first { $0.ownerPrefix == ownerPrefix }
            try tx.putQuota(quota)
            try tx.appendAudit(
                caller.event(
                    "quota.set", target: "quota:" + ownerPrefix, outcome: .success,
                    details: ["before": before.map(Self.json) ?? .null, "after": Self.json(quota)]))
            return quota
        }
    }

    /// Removes the quota of `ownerPrefix`; throws `quotaNotFound` when there is none.
    func delete(ownerPrefix: String, caller: Caller) async throws(SRIOVError) {
        let action = "quota.delete"
        let target = "quota:" + ownerPrefix
        let result: Result<Void, SRIOVError> = try await core.perform { tx in
            guard let before = try tx.quotas().first(where: { $0.ownerPrefix == ownerPrefix }) else {
                let error = SRIOVError.quotaNotFound(ownerPrefix)
                try tx.appendAudit(caller.failure(action, target: target, error))
                return .failure(error)
            }
            try tx.deleteQuota(ownerPrefix: ownerPrefix)
            try tx.appendAudit(
                caller.event(action, target: target, outcome: .success, details: ["before": Self.json(before)]))
            return .success(())
        }
        try result.get()
    }

    /// Every quota with its use, from one read.
    func standings() throws -> [Standing] {
        let snapshot = core.inventory.snapshot
        return try core.store.read { view in
            let quotas = try view.quotas()
            return try quotas.map { quota in
                Standing(
                    quota: quota, use: try AllocationService.quotaUse(quota, among: quotas, in: snapshot, read: view))
            }
        }
    }

    static func json(_ quota: Quota) -> JSONValue {
        .object([
            "owner_prefix": .string(quota.ownerPrefix), "max_vfs": .int(quota.maxVFs),
            "per_numa_node": .object(
                Dictionary(uniqueKeysWithValues: quota.perNUMANode.map { (String($0.key), JSONValue.int($0.value)) })),
        ])
    }
}
