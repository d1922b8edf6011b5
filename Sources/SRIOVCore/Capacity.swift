/// VF counts of a PF, a group of PFs or the host: how many exist, how many could, and where they stand.
public struct CapacityCounts: Hashable, Sendable {
    /// The most VFs the PFs can have (`sriov_totalvfs`).
    public var totalVFs = 0
    /// VFs that exist now (`sriov_numvfs`).
    public var enabled = 0
    /// Enabled VFs that can be handed out now.
    public var free = 0
    /// VFs an allocation holds (active, orphaned or drifted).
    public var held = 0
    /// VFs kept out of the pool until reset: a failed restore, or settings that are not their baseline.
    public var dirty = 0
    /// VFs outside the PF's managed range (`PUT /pfs/{address}/managed`): another owner's, never handed out.
    public var reserved = 0
    /// Free VFs of a cordoned PF: not handed out until the cordon is lifted.
    public var cordoned = 0
    /// VFs the PFs could still create (`totalVFs - enabled`).
    public var headroom = 0

    public init() {}

    static func + (lhs: CapacityCounts, rhs: CapacityCounts) -> CapacityCounts {
        var sum = lhs
        sum.totalVFs += rhs.totalVFs
        sum.enabled += rhs.enabled
        sum.free += rhs.free
        sum.held += rhs.held
        sum.dirty += rhs.dirty
        sum.reserved += rhs.reserved
        sum.cordoned += rhs.cordoned
        sum.headroom += rhs.headroom
        return sum
    }
}

/// One PF's capacity with what it is grouped by.
public struct PFCapacity: Hashable, Sendable {
    public var pf: PCIAddress
    public var numaNode: Int?
    public var driver: String?
    /// `vendor:device` of the PF, e.g. `8086:159b`.
    public var vendorDevice: String
    public var counts: CapacityCounts
}

/// The capacity report: the host, each PF, and the PFs grouped by NUMA node, driver and vendor:device.
public struct CapacityReport: Sendable {
    public var host: CapacityCounts
    public var pfs: [PFCapacity]
    /// Keyed by NUMA node; PFs whose node is unknown under nil.
    public var byNUMANode: [(key: Int?, counts: CapacityCounts)]
    public var byDriver: [(key: String?, counts: CapacityCounts)]
    public var byVendorDevice: [(key: String, counts: CapacityCounts)]

    /// Counts every PF of `host`.
    /// - Parameters:
    ///   - held: VFs held by an allocation that is not dirty.
    ///   - dirty: VFs kept out of the pool (dirty allocations, and free VFs whose settings are not their baseline).
    ///   - maintenance: cordoned PFs (their free VFs count as `cordoned`) and managed ranges (VFs outside count as
    ///     `reserved`).
    public init(
        host snapshot: HostSnapshot, held: Set<PCIAddress>, dirty: Set<PCIAddress>,
        maintenance: MaintenanceMap = MaintenanceMap()
    ) {
        pfs = snapshot.pfs.map { entry in
            var counts = CapacityCounts()
            counts.totalVFs = entry.pf.totalVFs
            counts.enabled = entry.vfs.count
            let cordoned = maintenance.isCordoned(entry.pf.address)
            for vf in entry.vfs {
                if maintenance.isExternal(pf: entry.pf.address, vfIndex: vf.index) {
                    counts.reserved += 1
                } else if dirty.contains(vf.address) {
                    counts.dirty += 1
                } else if held.contains(vf.address) {
                    counts.held += 1
                } else if cordoned {
                    counts.cordoned += 1
                } else {
                    counts.free += 1
                }
            }
            counts.headroom = max(0, entry.pf.totalVFs - entry.vfs.count)
            return PFCapacity(
                pf: entry.pf.address, numaNode: entry.pf.numaNode, driver: entry.pf.driver,
                vendorDevice: entry.pf.vendorID + ":" + entry.pf.deviceID, counts: counts)
        }
        host = pfs.reduce(CapacityCounts()) { $0 + $1.counts }
        byNUMANode = Self.group(pfs, by: \.numaNode).sorted { ($0.key ?? -1) < ($1.key ?? -1) }
        byDriver = Self.group(pfs, by: \.driver).sorted { ($0.key ?? "") < ($1.key ?? "") }
        byVendorDevice = Self.group(pfs, by: \.vendorDevice).sorted { $0.key < $1.key }
    }

    private static func group<Key: Hashable>(_ pfs: [PFCapacity], by key: KeyPath<PFCapacity, Key>)
        -> [(key: Key, counts: CapacityCounts)]
    {
        var sums: [Key: CapacityCounts] = [:]
        for pf in pfs {
            let value = pf[keyPath: key]
            sums[value] = (sums[value] ?? CapacityCounts()) + pf.counts
        }
        return sums.map { (key: $0.key, counts: $0.value) }
    }
}
