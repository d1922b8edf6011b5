/// One setting of a VF, named as the API names it (and as `VFConfig` and `VFState` are coded in JSON).
public enum VFSettingField: String, CaseIterable, Hashable, Sendable, CodingKey {
    case mac
    case vlan
    case qos
    case vlanProto = "vlan_proto"
    case spoofCheck = "spoof_check"
    case trust
    case linkState = "link_state"
    case minTxRate = "min_tx_rate"
    case maxTxRate = "max_tx_rate"
    case driver

    /// The network settings, which rtnetlink carries; everything but the driver.
    public static let network: Set<VFSettingField> = Set(allCases.filter { $0 != .driver })
    /// The network settings and the driver.
    public static let all: Set<VFSettingField> = Set(allCases)
}

/// A setting that does not read as expected.
public struct VFSettingDifference: Hashable, Sendable, CustomStringConvertible {
    public var field: VFSettingField
    public var expected: String
    public var actual: String

    public init(field: VFSettingField, expected: String, actual: String) {
        self.field = field
        self.expected = expected
        self.actual = actual
    }

    /// `vlan: want 100, have 200`.
    public var description: String { "\(field.rawValue): want \(expected), have \(actual)" }
}

extension VFState {
    /// The one comparison of VF settings: where this state (as read from the kernel) differs from `expected`.
    ///
    /// - A field nil in `expected` is not looked at: nobody asked for it.
    /// - A network field nil in this state is one the driver does not report: it cannot be checked and counts as
    ///   matching.
    /// - The MAC is compared without regard to case.
    /// - The VLAN protocol is compared only when a VLAN is in play (the expected VLAN, or the one read when none
    ///   was asked for, is not 0): 802.1ad means nothing on VLAN 0, and drivers report either protocol there.
    /// - The driver is compared only when `fields` has `.driver`, and then exactly: nil means unbound.
    public func differences(
        from expected: VFState, fields: Set<VFSettingField> = VFSettingField.network
    ) -> [VFSettingDifference] {
        var result: [VFSettingDifference] = []
        func compare<T: Equatable>(_ field: VFSettingField, _ want: T?, _ have: T?) {
            guard fields.contains(field), let want, let have, want != have else { return }
            result.append(VFSettingDifference(field: field, expected: "\(want)", actual: "\(have)"))
        }
        compare(.mac, expected.mac?.lowercased(), mac?.lowercased())
        compare(.vlan, expected.vlan, vlan)
        compare(.qos, expected.qos, qos)
        if (expected.vlan ?? vlan ?? 0) != 0 {
            compare(.vlanProto, expected.vlanProto?.rawValue, vlanProto?.rawValue)
        }
        compare(.spoofCheck, expected.spoofCheck, spoofCheck)
        compare(.trust, expected.trust, trust)
        compare(.linkState, expected.linkState?.rawValue, linkState?.rawValue)
        compare(.minTxRate, expected.minTxRate, minTxRate)
        compare(.maxTxRate, expected.maxTxRate, maxTxRate)
        if fields.contains(.driver), expected.driver != driver {
            result.append(
                VFSettingDifference(
                    field: .driver, expected: expected.driver ?? "none", actual: driver ?? "none"))
        }
        return result
    }

    /// True when every setting and the driver read as `baseline` does (see `differences(from:fields:)`).
    public func matchesBaseline(_ baseline: VFState) -> Bool {
        differences(from: baseline, fields: VFSettingField.all).isEmpty
    }
}
