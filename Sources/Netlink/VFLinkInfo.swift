/// The link state the PF forces on a VF (`IFLA_VF_LINK_STATE`).
public enum VFLinkState: UInt32, Sendable, Hashable, Codable, CaseIterable {
    /// The VF follows the PF's link (`IFLA_VF_LINK_STATE_AUTO`).
    case auto = 0
    /// The VF's link is up whatever the PF's (`IFLA_VF_LINK_STATE_ENABLE`).
    case enable = 1
    /// The VF's link is down (`IFLA_VF_LINK_STATE_DISABLE`).
    case disable = 2
}

/// The ethertype of a VF's port VLAN tag, as carried (big-endian) in `ifla_vf_vlan_info.vlan_proto`.
public struct VLANProtocol: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IEEE 802.1Q, ethertype 0x8100.
    public static let ieee8021Q = VLANProtocol(rawValue: 0x8100)
    /// IEEE 802.1ad (QinQ service tag), ethertype 0x88a8.
    public static let ieee8021AD = VLANProtocol(rawValue: 0x88a8)

    public var description: String {
        switch self {
        case .ieee8021Q: "802.1Q"
        case .ieee8021AD: "802.1ad"
        default: "0x" + String(rawValue, radix: 16)
        }
    }
}

/// One VF setting. Each travels alone in its own `RTM_NEWLINK`, so a rejection names exactly one setting.
public enum VFSetting: Sendable, Hashable {
    /// The VF's MAC address (`IFLA_VF_MAC`); six bytes for Ethernet, all zero to clear.
    case mac([UInt8])
    /// The port VLAN and its priority; 802.1Q goes as `IFLA_VF_VLAN`, any other protocol as
    /// `IFLA_VF_VLAN_LIST`. VLAN 0 with QoS 0 removes the port VLAN.
    case vlan(vlan: UInt16, qos: UInt8 = 0, proto: VLANProtocol = .ieee8021Q)
    /// Minimum and maximum transmit rate in Mbit/s, 0 meaning no limit (`IFLA_VF_RATE`).
    case rate(min: UInt32, max: UInt32)
    /// MAC anti-spoofing (`IFLA_VF_SPOOFCHK`).
    case spoofCheck(Bool)
    /// Trusted mode: the VF may change its MAC and enter promiscuous mode (`IFLA_VF_TRUST`).
    case trust(Bool)
    /// Forced link state (`IFLA_VF_LINK_STATE`).
    case linkState(VFLinkState)

    /// A short name for logs and errors: `mac`, `vlan`, `rate`, `spoofchk`, `trust`, `state`.
    public var name: String {
        switch self {
        case .mac: "mac"
        case .vlan: "vlan"
        case .rate: "rate"
        case .spoofCheck: "spoofchk"
        case .trust: "trust"
        case .linkState: "state"
        }
    }
}

/// What the kernel reports for one VF in the `IFLA_VFINFO_LIST` of an `RTM_GETLINK` reply.
public struct VFLinkInfo: Sendable, Hashable {
    /// The VF number on its PF (0-based).
    public var index: Int
    /// The VF's MAC address, as long as the PF's hardware address (six bytes for Ethernet).
    public var mac: [UInt8]
    /// The port VLAN, 0 for none.
    public var vlan: UInt16
    /// The port VLAN's priority (0-7).
    public var qos: UInt8
    /// The port VLAN's protocol when the kernel sent `IFLA_VF_VLAN_LIST`, nil otherwise.
    public var vlanProtocol: VLANProtocol?
    /// MAC anti-spoofing; nil when the driver does not report it.
    public var spoofCheck: Bool?
    /// Trusted mode; nil when the driver does not report it.
    public var trust: Bool?
    /// Forced link state; nil when absent or a value this code does not know.
    public var linkState: VFLinkState?
    /// Minimum transmit rate in Mbit/s (0 = none).
    public var minTxRate: UInt32
    /// Maximum transmit rate in Mbit/s (0 = none).
    public var maxTxRate: UInt32
    /// Traffic counters (`IFLA_VF_STATS`); nil when the reply carried none (asked with
    /// `RTEXT_FILTER_SKIP_STATS`, or a kernel that does not send them).
    public var stats: VFStats?

    public init(
        index: Int, mac: [UInt8] = [0, 0, 0, 0, 0, 0], vlan: UInt16 = 0, qos: UInt8 = 0,
        vlanProtocol: VLANProtocol? = nil, spoofCheck: Bool? = nil, trust: Bool? = nil,
        linkState: VFLinkState? = nil, minTxRate: UInt32 = 0, maxTxRate: UInt32 = 0
    ) {
        self.index = index
        self.mac = mac
        self.vlan = vlan
        self.qos = qos
        self.vlanProtocol = vlanProtocol
        self.spoofCheck = spoofCheck
        self.trust = trust
        self.linkState = linkState
        self.minTxRate = minTxRate
        self.maxTxRate = maxTxRate
    }

    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    public var macString: String { formatMAC(mac) }
}

/// A VF's traffic counters as the PF's driver reports them (`IFLA_VF_STATS`, from `ndo_get_vf_stats`). Each is nil
/// when its attribute was absent. A driver without `ndo_get_vf_stats` (igb) is reported by the kernel as zeros.
public struct VFStats: Sendable, Hashable {
    public var rxPackets: UInt64?
    public var txPackets: UInt64?
    public var rxBytes: UInt64?
    public var txBytes: UInt64?
    public var broadcast: UInt64?
    public var multicast: UInt64?
    public var rxDropped: UInt64?
    public var txDropped: UInt64?

    public init(
        rxPackets: UInt64? = nil, txPackets: UInt64? = nil, rxBytes: UInt64? = nil, txBytes: UInt64? = nil,
        broadcast: UInt64? = nil, multicast: UInt64? = nil, rxDropped: UInt64? = nil, txDropped: UInt64? = nil
    ) {
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.broadcast = broadcast
        self.multicast = multicast
        self.rxDropped = rxDropped
        self.txDropped = txDropped
    }
}

/// A network interface as an `RTM_NEWLINK` message describes it: the PF and its VFs.
public struct LinkInfo: Sendable, Hashable {
    /// `ifi_index`.
    public var index: Int32
    /// `IFLA_IFNAME`.
    public var name: String
    /// `IFLA_MTU`.
    public var mtu: UInt32?
    /// `IFLA_OPERSTATE` (RFC 2863: 2 = down, 6 = up, ...).
    public var operState: UInt8?
    /// `IFLA_ADDRESS`, the hardware address.
    public var address: [UInt8]?
    /// `IFLA_NUM_VF`: how many VFs the PF has enabled; nil when the request did not ask for VF data.
    public var numVFs: Int?
    /// `IFLA_VFINFO_LIST`, in the kernel's order.
    public var vfs: [VFLinkInfo] = []
}

/// How a request names its interface: by `ifi_index`, or by `IFLA_IFNAME` with `ifi_index` 0.
public enum LinkSelector: Sendable, Hashable {
    case index(Int32)
    case name(String)
}

/// `aa:bb:cc:dd:ee:ff` for any number of bytes.
public func formatMAC(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let hex = String(byte, radix: 16)
        return hex.count == 1 ? "0" + hex : hex
    }.joined(separator: ":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); nil unless it is six hexadecimal octets.
public func parseMAC(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    let fields = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
    guard fields.count == 6 else { return nil }
    var bytes: [UInt8] = []
    for field in fields {
        guard field.count == 2, let byte = UInt8(field, radix: 16) else { return nil }
        bytes.append(byte)
    }
    return bytes
}
