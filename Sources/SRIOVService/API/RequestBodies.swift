import SRIOVCore

/// `POST /pfs/{address}/vfs`.
struct VFCountRequest: Decodable, Sendable {
    var count: Int
    var driversAutoprobe: Bool?

    enum CodingKeys: String, CodingKey {
        case count
        case driversAutoprobe = "drivers_autoprobe"
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["count", "drivers_autoprobe"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        count = try container.decode(Int.self, forKey: .count)
        driversAutoprobe = try container.decodeIfPresent(Bool.self, forKey: .driversAutoprobe)
        guard count >= 0 else { throw SRIOVError.invalidField("count", "must not be negative") }
        guard count <= 65_535 else { throw SRIOVError.invalidField("count", "must be at most 65535") }
    }
}

/// `POST /allocations`.
struct AllocationRequest: Decodable, Sendable, Equatable {
    var owner: String
    var selection: VFSelection
    var labels: [String: String]
    var config: VFConfig?
    /// Seconds until sriovd releases the allocation unless it is renewed; nil: held until released.
    var leaseSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case owner, pf, vf, selector, labels, config, identity
        case leaseSeconds = "lease_seconds"
    }

    static let maxOwnerLength = 256
    static let maxLabels = 64
    /// The longest lease: a year.
    static let maxLeaseSeconds = 366 * 24 * 3600

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys([
            "owner", "pf", "vf", "selector", "labels", "config", "lease_seconds", "identity",
        ])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // `identity` (from another host's GET /allocations/{id}/identity) gives owner, labels, config and lease;
        // a field given beside it wins.
        let identity = try container.decodeIfPresent(AllocationIdentity.self, forKey: .identity)
        guard let owner = try container.decodeIfPresent(String.self, forKey: .owner) ?? identity?.owner else {
            throw SRIOVError.invalidField("owner", "is required (or give identity)")
        }
        self.owner = owner
        guard !owner.isEmpty, owner.utf8.count <= Self.maxOwnerLength,
            owner.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        else {
            throw SRIOVError.invalidField(
                "owner", "must be 1 to \(Self.maxOwnerLength) bytes of printable text, e.g. k8s:ns/pod/uid")
        }
        let pf = try container.decodeIfPresent(PCIAddress.self, forKey: .pf)
        let vf = try container.decodeIfPresent(PCIAddress.self, forKey: .vf)
        let selector = try container.decodeIfPresent(Strict<VFSelector>.self, forKey: .selector)?.value
        switch (pf, vf, selector) {
        case (let pf?, nil, nil): selection = .pf(pf)
        case (nil, let vf?, nil): selection = .vf(vf)
        case (nil, nil, let selector?): selection = .selector(selector)
        case (nil, nil, nil): throw SRIOVError.invalidField("pf", "one of pf, vf or selector is required")
        default: throw SRIOVError.invalidField("selector", "give only one of pf, vf or selector")
        }
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? identity?.labels ?? [:]
        guard labels.count <= Self.maxLabels else {
            throw SRIOVError.invalidField("labels", "may hold at most \(Self.maxLabels) entries")
        }
        for (key, value) in labels where key.isEmpty || key.utf8.count > 128 || value.utf8.count > 1024 {
            throw SRIOVError.invalidField("labels.\(key.prefix(32))", "keys are 1-128 bytes, values up to 1024")
        }
        config = try container.decodeIfPresent(Strict<VFConfig>.self, forKey: .config)?.value ?? identity?.config
        try config?.validate()
        leaseSeconds = try Self.leaseSeconds(
            container.decodeIfPresent(Int.self, forKey: .leaseSeconds) ?? identity?.leaseSeconds)
        if let rule = selector?.antiAffinity {
            guard labels[rule.label] != nil else {
                throw SRIOVError.invalidField(
                    "selector.anti_affinity.label", "names label '\(rule.label.prefix(64))', which labels must carry")
            }
        }
    }

    /// A lease length as given, checked: 1 second to `maxLeaseSeconds`.
    static func leaseSeconds(_ value: Int?, field: String = "lease_seconds") throws(SRIOVError) -> Int? {
        guard let value else { return nil }
        guard (1...maxLeaseSeconds).contains(value) else {
            throw .invalidField(field, "must be 1 to \(maxLeaseSeconds) seconds")
        }
        return value
    }
}

/// `POST /allocations/{id}/renew`: an optional new lease length (default: the allocation's own).
struct LeaseRenewalRequest: Decodable, Sendable {
    var leaseSeconds: Int?

    enum CodingKeys: String, CodingKey { case leaseSeconds = "lease_seconds" }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["lease_seconds"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        leaseSeconds = try AllocationRequest.leaseSeconds(container.decodeIfPresent(Int.self, forKey: .leaseSeconds))
    }
}

/// `PUT /quotas/{owner_prefix}`.
struct QuotaRequest: Decodable, Sendable {
    var maxVFs: Int
    var perNUMANode: [Int: Int]

    enum CodingKeys: String, CodingKey {
        case maxVFs = "max_vfs"
        case perNUMANode = "per_numa_node"
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["max_vfs", "per_numa_node"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxVFs = try container.decode(Int.self, forKey: .maxVFs)
        guard (0...1_000_000).contains(maxVFs) else { throw SRIOVError.invalidField("max_vfs", "must be 0 to 1000000") }
        let byNode = try container.decodeIfPresent([String: Int].self, forKey: .perNUMANode) ?? [:]
        perNUMANode = [:]
        for (key, limit) in byNode {
            guard let node = Int(key), node >= 0, node < 1024 else {
                throw SRIOVError.invalidField(
                    "per_numa_node.\(key.prefix(16))", "keys are NUMA node numbers, 0 to 1023")
            }
            guard (0...maxVFs).contains(limit) else {
                throw SRIOVError.invalidField("per_numa_node.\(node)", "must be 0 to max_vfs (\(maxVFs))")
            }
            perNUMANode[node] = limit
        }
    }
}

/// A body of VF settings on its own: `PATCH /vfs/{address}` and `PATCH /allocations/{id}`.
struct VFConfigRequest: Decodable, Sendable {
    var config: VFConfig

    init(from decoder: any Decoder) throws {
        config = try Strict<VFConfig>(from: decoder).value
        try config.validate(fieldPrefix: "")
    }
}

/// Types whose JSON objects have a fixed set of keys.
protocol StrictlyKeyed: Decodable {
    static var knownKeys: Set<String> { get }
}

/// Decodes `Value`, refusing keys it does not know (a typo such as `vlans` must not pass silently).
struct Strict<Value: StrictlyKeyed>: Decodable {
    var value: Value

    init(from decoder: any Decoder) throws {
        let prefix = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        try decoder.rejectUnknownKeys(Value.knownKeys, prefix: prefix.isEmpty ? "" : prefix + ".")
        value = try Value(from: decoder)
    }
}

extension VFSelector: StrictlyKeyed {
    static let knownKeys: Set<String> = [
        "vendor_id", "device_id", "driver", "pf_interface", "numa_node", "placement", "prefer_numa_node",
        "anti_affinity",
    ]
}

extension VFConfig: StrictlyKeyed {
    static let knownKeys: Set<String> = [
        "mac", "vlan", "qos", "vlan_proto", "spoof_check", "trust", "link_state", "min_tx_rate", "max_tx_rate",
        "driver",
    ]
}

/// What another host's sriovd needs to recreate an allocation (`GET /allocations/{id}/identity`), taken back by
/// `POST /allocations` as `identity`. `source` (where it came from) is shown and not needed.
struct AllocationIdentity: Decodable, Sendable, Equatable {
    var owner: String
    var labels: [String: String]
    var config: VFConfig?
    var leaseSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case owner, labels, config, source
        case leaseSeconds = "lease_seconds"
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["owner", "labels", "config", "lease_seconds", "source"], prefix: "identity.")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        owner = try container.decode(String.self, forKey: .owner)
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        config = try container.decodeIfPresent(Strict<VFConfig>.self, forKey: .config)?.value
        leaseSeconds = try container.decodeIfPresent(Int.self, forKey: .leaseSeconds)
    }
}

/// `POST /allocations/{id}/move`: where to: a PF, or a selector over the other PFs.
struct MoveRequest: Decodable, Sendable {
    var destination: MoveDestination

    enum CodingKeys: String, CodingKey { case pf, selector }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["pf", "selector"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let pf = try container.decodeIfPresent(PCIAddress.self, forKey: .pf)
        let selector = try container.decodeIfPresent(Strict<VFSelector>.self, forKey: .selector)?.value
        switch (pf, selector) {
        case (let pf?, nil): destination = .pf(pf)
        case (nil, let selector?): destination = .selector(selector)
        case (nil, nil): destination = .selector(VFSelector())
        default: throw SRIOVError.invalidField("selector", "give pf or selector, not both")
        }
    }
}

/// `PUT /pfs/{address}/managed`: `{"vfs": "0-3"}`, or `{"vfs": null}` to manage every VF again.
struct ManagedRangeRequest: Decodable, Sendable {
    var range: ClosedRange<Int>?

    enum CodingKeys: String, CodingKey { case vfs }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["vfs"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.vfs) else { throw SRIOVError.invalidField("vfs", "is required (a range or null)") }
        guard let text = try container.decodeIfPresent(String.self, forKey: .vfs) else {
            range = nil
            return
        }
        guard let parsed = VFRangeText.parse(text) else {
            throw SRIOVError.invalidField("vfs", "must be a VF index range like \"0-3\" (or one index), lowest first")
        }
        range = parsed
    }
}
