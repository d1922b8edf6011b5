/// Everything about a VF that sriovd may change, as read from the kernel: the settings its PF's netdev reports
/// over rtnetlink, and the driver the VF is bound to.
///
/// A field is nil when the kernel did not report it: every network field of a VF whose PF has no netdev (NVMe),
/// `spoofCheck` and `trust` when the driver does not report them, `vlanProto` when the kernel sends a protocol this
/// code does not know (netdevsim reports 0 for a VF never given a VLAN). `driver` is nil for an unbound VF.
public struct VFState: Codable, Hashable, Sendable {
    /// `aa:bb:cc:dd:ee:ff`, lower case; all zero when the PF has not set one.
    public var mac: String?
    public var vlan: Int?
    public var qos: Int?
    public var vlanProto: VFConfig.VLANProtocol?
    public var spoofCheck: Bool?
    public var trust: Bool?
    public var linkState: VFConfig.LinkState?
    /// Mbit/s, 0 for no limit.
    public var minTxRate: Int?
    /// Mbit/s, 0 for no limit.
    public var maxTxRate: Int?
    /// The bound driver's name, nil when unbound.
    public var driver: String?

    public init(
        mac: String? = nil, vlan: Int? = nil, qos: Int? = nil, vlanProto: VFConfig.VLANProtocol? = nil,
        spoofCheck: Bool? = nil, trust: Bool? = nil, linkState: VFConfig.LinkState? = nil, minTxRate: Int? = nil,
        maxTxRate: Int? = nil, driver: String? = nil
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

    /// The all-zero MAC: a VF whose MAC the PF has not set.
    public static let zeroMAC = "00:00:00:00:00:00"

    /// True when the network settings are what a VF has when its PF creates it: MAC zero, VLAN 0, QoS 0, spoof
    /// check on or unknown, trust off or unknown, link state auto, no rate limits. Unreported fields count as
    /// default. The VLAN protocol is not looked at (it means nothing without a VLAN), nor is the driver: which
    /// driver is the default depends on the PF, so the caller compares it.
    public var hasFactoryDefaultSettings: Bool {
        (mac == nil || mac?.lowercased() == Self.zeroMAC) && (vlan ?? 0) == 0 && (qos ?? 0) == 0
            && spoofCheck != false && trust != true && (linkState ?? .auto) == .auto && (minTxRate ?? 0) == 0
            && (maxTxRate ?? 0) == 0
    }

    /// The JSON keys are the API names of the settings.
    typealias CodingKeys = VFSettingField

    // Unknown values are written as JSON null rather than left out, so a stored state always has every field.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .mac: mac, .vlan: vlan, .qos: qos, .vlanProto: vlanProto, .spoofCheck: spoofCheck, .trust: trust,
            .linkState: linkState, .minTxRate: minTxRate, .maxTxRate: maxTxRate, .driver: driver,
        ])
    }
}
