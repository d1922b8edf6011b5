/// Where an allocation stands.
public enum AllocationState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Held by its owner.
    case active
    /// Given back; kept as history.
    case released
    /// Released, but restoring the VF failed: the VF stays out of the free pool until a retry succeeds.
    case dirty
    /// Its PF or VF is gone and could not be restored; kept and shown, never deleted.
    case orphaned
    /// The hardware differs from the record and could not be put back.
    case drifted

    /// States in which the allocation still holds its VF (no one else may get it).
    public var holdsVF: Bool { self != .released }
}

/// A VF handed to a consumer.
public struct Allocation: Hashable, Sendable, Codable {
    public var id: String
    public var vf: PCIAddress
    public var pf: PCIAddress
    public var vfIndex: Int
    public var owner: String
    public var labels: [String: String]
    public var state: AllocationState
    public var createdAt: String
    public var releasedAt: String?
    public var config: VFConfig?
    /// The fencing token: how many allocations this VF has had, this one included.
    public var generation: Int
    /// The lease, when the allocation has one: sriovd releases it at `expiresAt` unless it is renewed.
    public var leaseSeconds: Int?
    public var expiresAt: String?
    /// Why this VF was chosen (allocations made before placement was recorded have none).
    public var placement: PlacementReason?
    /// Where its netdev went, when a client (the CNI plugin) recorded it.
    public var attachment: Attachment?

    public init(
        id: String, vf: PCIAddress, pf: PCIAddress, vfIndex: Int, owner: String, labels: [String: String],
        state: AllocationState, createdAt: String, releasedAt: String?, config: VFConfig?, generation: Int,
        leaseSeconds: Int? = nil, expiresAt: String? = nil, placement: PlacementReason? = nil,
        attachment: Attachment? = nil
    ) {
        self.id = id
        self.vf = vf
        self.pf = pf
        self.vfIndex = vfIndex
        self.owner = owner
        self.labels = labels
        self.state = state
        self.createdAt = createdAt
        self.releasedAt = releasedAt
        self.config = config
        self.generation = generation
        self.leaseSeconds = leaseSeconds
        self.expiresAt = expiresAt
        self.placement = placement
        self.attachment = attachment
    }

    enum CodingKeys: String, CodingKey {
        case id
        case vf
        case pf
        case vfIndex = "vf_index"
        case owner
        case labels
        case state
        case createdAt = "created_at"
        case releasedAt = "released_at"
        case config
        case generation
        case leaseSeconds = "lease_seconds"
        case expiresAt = "expires_at"
        case placement
        case attachment
    }
}

/// How a caller picks the VF for a new allocation.
public enum VFSelection: Hashable, Sendable {
    /// Any free VF of this PF.
    case pf(PCIAddress)
    /// Exactly this VF.
    case vf(PCIAddress)
    /// Any free VF whose PF matches every given criterion.
    case selector(VFSelector)
}

/// Criteria for `VFSelection.selector`; nil fields match anything.
public struct VFSelector: Hashable, Sendable, Codable {
    public var vendorID: String?
    public var deviceID: String?
    public var driver: String?
    public var pfInterface: String?
    public var numaNode: Int?
    /// `pack` or `spread`; nil keeps the lowest-index free VF in inventory order.
    public var placement: PlacementMode?
    /// A soft NUMA rule: VFs on this node first, any other node when it has none free.
    public var preferNUMANode: Int?
    /// Keeps allocations with the same value of a label on different PFs.
    public var antiAffinity: AntiAffinity?

    /// A selector that matches every VF.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case vendorID = "vendor_id"
        case deviceID = "device_id"
        case driver
        case pfInterface = "pf_interface"
        case numaNode = "numa_node"
        case placement
        case preferNUMANode = "prefer_numa_node"
        case antiAffinity = "anti_affinity"
    }

    /// Whether the VF (of the PF) matches. vendor/device ids match either the VF's or the PF's.
    public func matches(_ vf: VirtualFunction, of pf: PhysicalFunction) -> Bool {
        if let vendorID, vendorID != vf.vendorID && vendorID != pf.vendorID { return false }
        if let deviceID, deviceID != vf.deviceID && deviceID != pf.deviceID { return false }
        if let driver, driver != vf.driver && driver != pf.driver { return false }
        if let pfInterface, !pf.interfaces.contains(pfInterface) { return false }
        if let numaNode, numaNode != (vf.numaNode ?? pf.numaNode) { return false }
        return true
    }
}

extension Allocation {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .id: id, .vf: vf, .pf: pf, .vfIndex: vfIndex, .owner: owner, .labels: labels, .state: state,
            .createdAt: createdAt, .releasedAt: releasedAt, .config: config, .generation: generation,
            .leaseSeconds: leaseSeconds, .expiresAt: expiresAt, .placement: placement,
            .attachment: attachment,
        ])
    }
}
