/// A limit on how many VFs the owners under a prefix may hold at once, in total and optionally per NUMA node.
public struct Quota: Hashable, Sendable, Codable {
    /// Applies to every owner that starts with it; when several match, the longest applies.
    public var ownerPrefix: String
    public var maxVFs: Int
    /// Limits per NUMA node (the VF's node), on top of `maxVFs`.
    public var perNUMANode: [Int: Int]
    public var updatedAt: String

    public init(ownerPrefix: String, maxVFs: Int, perNUMANode: [Int: Int] = [:], updatedAt: String) {
        self.ownerPrefix = ownerPrefix
        self.maxVFs = maxVFs
        self.perNUMANode = perNUMANode
        self.updatedAt = updatedAt
    }

    /// The quota that governs `owner`: the one with the longest prefix of it; nil when none matches.
    public static func governing(_ owner: String, among quotas: [Quota]) -> Quota? {
        quotas.filter { owner.utf8.starts(with: $0.ownerPrefix.utf8) }.max {
            $0.ownerPrefix.utf8.count < $1.ownerPrefix.utf8.count
        }
    }
}

/// What the owners under a quota hold now.
public struct QuotaUse: Hashable, Sendable {
    public var total: Int
    /// Held VFs by their NUMA node (VFs whose node is unknown count only in `total`).
    public var byNUMANode: [Int: Int]

    public init(total: Int = 0, byNUMANode: [Int: Int] = [:]) {
        self.total = total
        self.byNUMANode = byNUMANode
    }
}

/// Why an allocation is past its quota: the quota, its use and the limit that was reached.
public struct QuotaRefusal: Hashable, Sendable {
    public var ownerPrefix: String
    public var limit: Int
    public var used: Int
    /// Set when a per-NUMA-node limit was reached (with `limit` and `used` that node's).
    public var numaNode: Int?

    public init(ownerPrefix: String, limit: Int, used: Int, numaNode: Int?) {
        self.ownerPrefix = ownerPrefix
        self.limit = limit
        self.used = used
        self.numaNode = numaNode
    }
}

extension Quota {
    /// The prefixes of the quotas directly inside this one (longer, starting with its prefix, and not inside another
    /// of them): their owners are theirs, so this quota's use leaves them out.
    public func nestedPrefixes(among quotas: [Quota]) -> [String] {
        let inside = quotas.map(\.ownerPrefix).filter {
            $0.utf8.count > ownerPrefix.utf8.count && $0.utf8.starts(with: ownerPrefix.utf8)
        }
        return inside.filter { prefix in
            !inside.contains { $0 != prefix && prefix.utf8.starts(with: $0.utf8) }
        }.sorted()
    }

    /// NUMA nodes whose per-node limit `use` has reached: no VF on them may be added.
    public func fullNUMANodes(_ use: QuotaUse) -> Set<Int> {
        Set(perNUMANode.filter { node, limit in (use.byNUMANode[node] ?? 0) >= limit }.keys)
    }

    /// The refusal when one more VF would pass the total limit; nil while there is room.
    public func totalRefusal(_ use: QuotaUse) -> QuotaRefusal? {
        guard use.total >= maxVFs else { return nil }
        return QuotaRefusal(ownerPrefix: ownerPrefix, limit: maxVFs, used: use.total, numaNode: nil)
    }
}
