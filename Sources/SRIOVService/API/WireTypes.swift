import FoundationEssentials
import Glibc
import Netlink
import SRIOVCore

/// `{"items": [...]}`, with an optional cursor for the next page.
struct Collection<Item: Encodable>: Encodable {
    var items: [Item]
    var next: String?

    init(items: [Item], next: String? = nil) {
        self.items = items
        self.next = next
    }

    enum CodingKeys: String, CodingKey { case items, next }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([.items: items, .next: next])
    }
}

/// A PF with its health: the items of `GET /pfs`.
struct PFView: Encodable {
    var pf: PhysicalFunction
    /// Its cordon and managed VF range (`POST /pfs/{address}/cordon`, `PUT /pfs/{address}/managed`).
    var maintenance: PFMaintenance

    init(pf: PhysicalFunction, maintenance: PFMaintenance? = nil) {
        self.pf = pf
        self.maintenance = maintenance ?? PFMaintenance(pf: pf.address)
    }

    enum CodingKeys: String, CodingKey { case health, cordoned, managedVFs = "managed_vfs" }

    func encode(to encoder: any Encoder) throws {
        try pf.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Health.of(pf), forKey: .health)
        try maintenance.encodeFields(to: &container, cordoned: .cordoned, managed: .managedVFs)
    }
}

extension PFMaintenance {
    /// `cordoned` and `managed_vfs` (`"0-3"`, or null when every VF is managed).
    func encodeFields<Key: CodingKey>(to container: inout KeyedEncodingContainer<Key>, cordoned: Key, managed: Key)
        throws
    {
        try container.encode(self.cordoned, forKey: cordoned)
        try container.encode(self.managed.map(VFRangeText.text), forKey: managed)
    }
}

/// A PF with its VFs: `GET /pfs/{address}` and the answer to a VF count change.
struct PFDetail: Encodable {
    var pf: PhysicalFunction
    var vfs: [VFView]
    /// Set by a VF count change: what was asked and what the kernel enabled.
    var change: VFCountChange?
    var maintenance: PFMaintenance? = nil

    enum CodingKeys: String, CodingKey { case vfs, change, health, cordoned, managedVFs = "managed_vfs" }

    func encode(to encoder: any Encoder) throws {
        try pf.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Health.of(pf), forKey: .health)
        try (maintenance ?? PFMaintenance(pf: pf.address)).encodeFields(
            to: &container, cordoned: .cordoned, managed: .managedVFs)
        try container.encode(vfs, forKey: .vfs)
        try container.encodeIfPresent(change, forKey: .change)
    }
}

struct VFCountChange: Encodable {
    var requested: Int
    var previous: Int
    var enabled: Int

    var isPartial: Bool { enabled != requested }

    enum CodingKeys: String, CodingKey { case requested, previous, enabled, partial }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([.requested: requested, .previous: previous, .enabled: enabled, .partial: isPartial])
    }
}

/// A VF with who holds it and its health.
struct VFView: Encodable {
    var vf: VirtualFunction
    var holder: Allocation?
    var health: Health = .ok
    /// The settings as the kernel reports them, on `GET /vfs/{address}` only.
    var settings: VFState?
    /// The traffic counters, on `GET /vfs/{address}` only: `.some(nil)` when the driver reported none.
    var stats: VFStatsView??
    /// Outside its PF's managed range: another owner's (`status: external`).
    var external = false

    enum CodingKeys: String, CodingKey { case allocation, status, health, settings, stats }

    struct Holder: Encodable {
        var id: String
        var owner: String
        var state: AllocationState
        var generation: Int
    }

    func encode(to encoder: any Encoder) throws {
        try vf.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        let summary = holder.map { Holder(id: $0.id, owner: $0.owner, state: $0.state, generation: $0.generation) }
        try container.encode(summary, forKey: .allocation)
        try container.encode(external ? "external" : holder == nil ? "free" : "allocated", forKey: .status)
        try container.encode(health, forKey: .health)
        try container.encodeIfPresent(settings, forKey: .settings)
        if let stats { try container.encode(stats, forKey: .stats) }
    }
}

/// A VF's traffic counters (`IFLA_VF_STATS`); each `null` when the driver did not report it.
struct VFStatsView: Encodable {
    var stats: VFStats

    enum CodingKeys: String, CodingKey {
        case rxPackets = "rx_packets"
        case txPackets = "tx_packets"
        case rxBytes = "rx_bytes"
        case txBytes = "tx_bytes"
        case rxDropped = "rx_dropped"
        case txDropped = "tx_dropped"
        case broadcast, multicast
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let values: [(CodingKeys, UInt64?)] = [
            (.rxPackets, stats.rxPackets), (.txPackets, stats.txPackets), (.rxBytes, stats.rxBytes),
            (.txBytes, stats.txBytes), (.rxDropped, stats.rxDropped), (.txDropped, stats.txDropped),
            (.broadcast, stats.broadcast), (.multicast, stats.multicast),
        ]
        for (key, value) in values { try container.encode(value, forKey: key) }
    }
}

/// An allocation with what its consumer needs to use the VF: the netdev, or the VFIO device.
struct AllocationView: Encodable {
    var allocation: Allocation
    var vf: VirtualFunction?

    enum CodingKeys: String, CodingKey { case device }

    struct Device: Encodable {
        var driver: String?
        var interface: String?
        var iommuGroup: Int?
        var vfioDevice: String?

        enum CodingKeys: String, CodingKey {
            case driver, interface
            case iommuGroup = "iommu_group"
            case vfioDevice = "vfio_device"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeAll(
                [.driver: driver, .interface: interface, .iommuGroup: iommuGroup, .vfioDevice: vfioDevice])
        }
    }

    func encode(to encoder: any Encoder) throws {
        try allocation.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        let device = vf.map { vf in
            Device(
                driver: vf.driver, interface: vf.interface, iommuGroup: vf.iommuGroup,
                vfioDevice: vf.driver == "vfio-pci" ? vf.iommuGroup.map { "/dev/vfio/\($0)" } : nil)
        }
        try container.encode(device, forKey: .device)
    }
}

/// An audit event with `details` as a JSON object rather than text.
struct AuditEventView: Encodable {
    var event: AuditEvent

    enum CodingKeys: String, CodingKey {
        case id, at, actor, action, target, outcome, error
        case requestID = "request_id"
        case details
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .id: event.id, .at: event.at, .actor: event.actor, .action: event.action, .target: event.target,
            .outcome: event.outcome, .error: event.error, .requestID: event.requestID,
            .details: RawJSON(text: event.details),
        ])
    }
}

/// JSON text embedded as a value (decoded once so the output stays one well-formed document).
struct RawJSON: Encodable {
    var text: String

    func encode(to encoder: any Encoder) throws {
        let value = (try? JSONValue.parse(text)) ?? .object([:])
        try value.encode(to: encoder)
    }
}

/// A JSON value, for audit details.
enum JSONValue: Encodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case int(Int)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(DecodableJSON.self, from: Data(text.utf8)).value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The member `key` of an object; nil for anything else or a missing member.
    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// Compact JSON text with sorted keys, written directly: audit details are built on every mutation.
    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .number(let value): out += value.isFinite ? String(value) : "null"
        case .string(let value): Self.write(string: value, to: &out)
        case .array(let values):
            out += "["
            for (n, value) in values.enumerated() {
                if n > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (n, key) in members.keys.sorted().enumerated() {
                if n > 0 { out += "," }
                Self.write(string: key, to: &out)
                out += ":"
                members[key]?.write(to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
    private static func write(string: String, to out: inout String) {
        string.appendQuoted(to: &out)
    }
}

private struct DecodableJSON: Decodable {
    var value: JSONValue

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            value = .null
        } else if let bool = try? container.decode(Bool.self) {
            value = .bool(bool)
        } else if let int = try? container.decode(Int.self) {
            value = .int(int)
        } else if let double = try? container.decode(Double.self) {
            value = .number(double)
        } else if let string = try? container.decode(String.self) {
            value = .string(string)
        } else if let array = try? container.decode([DecodableJSON].self) {
            value = .array(array.map(\.value))
        } else {
            value = .object(try container.decode([String: DecodableJSON].self).mapValues(\.value))
        }
    }
}
