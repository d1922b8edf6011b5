/// The settings of a VF that sriovd can set: applied at allocation, by PATCH, and restored on release.
/// Every field is optional: nil means "leave as it is".
public struct VFConfig: Hashable, Sendable, Codable {
    public enum VLANProtocol: String, Hashable, Sendable, Codable {
        case dot1Q = "802.1Q"
        case dot1AD = "802.1ad"
    }

    public enum LinkState: String, Hashable, Sendable, Codable {
        case auto
        case enable
        case disable
    }

    /// The driver a VF should be bound to.
    public enum DriverChoice: String, Hashable, Sendable, Codable {
        /// vfio-pci, for VMs and DPDK.
        case vfioPCI = "vfio-pci"
        /// The VF's own kernel driver, with its netdev.
        case `default`
    }

    public var mac: String?
    public var vlan: Int?
    public var qos: Int?
    public var vlanProto: VLANProtocol?
    public var spoofCheck: Bool?
    public var trust: Bool?
    public var linkState: LinkState?
    public var minTxRate: Int?
    public var maxTxRate: Int?
    public var driver: DriverChoice?

    public init(
        mac: String? = nil, vlan: Int? = nil, qos: Int? = nil, vlanProto: VLANProtocol? = nil,
        spoofCheck: Bool? = nil, trust: Bool? = nil, linkState: LinkState? = nil, minTxRate: Int? = nil,
        maxTxRate: Int? = nil, driver: DriverChoice? = nil
    ) {
        self.mac = mac
        self.vlan = vlan
        self.qos = qos
        self.vlanProto = vlanProto
        self.spoofCheck = spoofCheck
        self.trust = trust
        self.linkState = linkState
        self.minTxRate = minTxRate
        self.maxTxRate = maxTxRate
        self.driver = driver
    }

    /// The JSON keys are the API names of the settings.
    typealias CodingKeys = VFSettingField

    /// Checks ranges and formats. Throws `.invalidField` naming the first bad field.
    public func validate(fieldPrefix: String = "config.") throws(SRIOVError) {
        if let mac, !MACAddress.isValidUnicast(mac) {
            throw .invalidField(fieldPrefix + "mac", "must be a unicast MAC address like 02:00:00:00:00:01")
        }
        if let vlan, !(0...4095).contains(vlan) {
            throw .invalidField(fieldPrefix + "vlan", "must be between 0 and 4095")
        }
        if let qos, !(0...7).contains(qos) {
            throw .invalidField(fieldPrefix + "qos", "must be between 0 and 7")
        }
        if let minTxRate, minTxRate < 0 {
            throw .invalidField(fieldPrefix + "min_tx_rate", "must not be negative")
        }
        if let maxTxRate, maxTxRate < 0 {
            throw .invalidField(fieldPrefix + "max_tx_rate", "must not be negative")
        }
        if let minTxRate, let maxTxRate, maxTxRate != 0, minTxRate > maxTxRate {
            throw .invalidField(fieldPrefix + "min_tx_rate", "must not exceed max_tx_rate")
        }
        if (qos != nil || vlanProto != nil) && vlan == nil {
            throw .invalidField(fieldPrefix + "vlan", "is required when qos or vlan_proto is set")
        }
    }
}

/// MAC address text rules.
public enum MACAddress {
    /// `xx:xx:xx:xx:xx:xx` in hex, not multicast (low bit of the first octet clear).
    /// The all-zero address is allowed: it is how a VF's MAC is cleared.
    public static func isValidUnicast(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return false }
        var octets: [UInt8] = []
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return false }
            octets.append(octet)
        }
        return octets[0] & 1 == 0
    }
}
