import SRIOVCore
import Testing

/// The one comparison of VF settings, field by field.
@Suite struct VFSettingsComparisonTests {
    static let baseline = VFState(
        mac: "02:00:00:00:00:01", vlan: 100, qos: 2, vlanProto: .dot1Q, spoofCheck: true, trust: false,
        linkState: .auto, minTxRate: 0, maxTxRate: 500, driver: "iavf")

    /// Each field changed alone is found, and named as the API names it.
    @Test(arguments: VFSettingField.allCases)
    func eachFieldIsCompared(field: VFSettingField) {
        var actual = Self.baseline
        switch field {
        case .mac: actual.mac = "02:00:00:00:00:02"
        case .vlan: actual.vlan = 200
        case .qos: actual.qos = 5
        case .vlanProto: actual.vlanProto = .dot1AD
        case .spoofCheck: actual.spoofCheck = false
        case .trust: actual.trust = true
        case .linkState: actual.linkState = .disable
        case .minTxRate: actual.minTxRate = 10
        case .maxTxRate: actual.maxTxRate = 1000
        case .driver: actual.driver = "vfio-pci"
        }
        let differences = actual.differences(from: Self.baseline, fields: VFSettingField.all)
        #expect(differences.map(\.field) == [field])
        #expect(differences.first?.description.hasPrefix(field.rawValue + ": want ") == true)
        #expect(!actual.matchesBaseline(Self.baseline))
    }

    @Test func equalStatesMatchAndTheMACIgnoresCase() {
        var actual = Self.baseline
        actual.mac = "02:00:00:00:00:01".uppercased()
        #expect(actual.differences(from: Self.baseline, fields: VFSettingField.all).isEmpty)
        #expect(actual.matchesBaseline(Self.baseline))
    }

    /// A free VF left on 802.1ad with its VLAN is not at a baseline of 802.1Q (the finding behind this comparison).
    @Test func theVLANProtocolCountsWhenAVLANIsInPlay() {
        var actual = Self.baseline
        actual.vlanProto = .dot1AD
        #expect(!actual.matchesBaseline(Self.baseline))
        // On VLAN 0 the protocol means nothing: drivers report either.
        var untagged = VFState(vlan: 0, vlanProto: .dot1Q)
        let expected = VFState(vlan: 0, vlanProto: .dot1AD)
        #expect(untagged.differences(from: expected).isEmpty)
        untagged.vlan = 7
        #expect(
            untagged.differences(from: expected).map(\.field) == [.vlan],
            "the VLAN differs; 802.1ad on VLAN 0 says nothing")
    }

    @Test func unaskedFieldsAreNotLookedAtAndUnreportedOnesCannotDiffer() {
        let asked = VFState(vlan: 100)
        #expect(Self.baseline.differences(from: asked).isEmpty, "only the VLAN was asked for")
        let unreported = VFState(
            mac: "02:00:00:00:00:01", vlan: 100, qos: 2, vlanProto: .dot1Q, spoofCheck: nil, trust: nil,
            linkState: .auto, minTxRate: 0, maxTxRate: 500, driver: "iavf")
        #expect(unreported.matchesBaseline(Self.baseline), "a driver that reports no spoof check or trust")
    }

    @Test func theDriverIsComparedOnlyWhenAskedAndNilMeansUnbound() {
        var unbound = Self.baseline
        unbound.driver = nil
        #expect(unbound.differences(from: Self.baseline).isEmpty, "network fields only by default")
        let found = unbound.differences(from: Self.baseline, fields: VFSettingField.all)
        #expect(found == [VFSettingDifference(field: .driver, expected: "iavf", actual: "none")])
    }
}
