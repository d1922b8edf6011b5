import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

@Suite struct VFStateTests {
    @Test func encodesSnakeCaseWithExplicitNulls() throws {
        let state = VFState(mac: "02:00:00:00:00:01", vlan: 5, vlanProto: .dot1Q, spoofCheck: true, driver: nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(state), as: UTF8.self)
        #expect(
            text
                == #"{"driver":null,"link_state":null,"mac":"02:00:00:00:00:01","max_tx_rate":null,"#
                + #""min_tx_rate":null,"qos":null,"spoof_check":true,"trust":null,"vlan":5,"vlan_proto":"802.1Q"}"#)
        #expect(try JSONDecoder().decode(VFState.self, from: Data(text.utf8)) == state)
    }

    @Test func factoryDefault() {
        let fresh = VFState(
            mac: "00:00:00:00:00:00", vlan: 0, qos: 0, vlanProto: .dot1Q, spoofCheck: true, trust: false,
            linkState: .auto, minTxRate: 0, maxTxRate: 0, driver: "iavf")
        #expect(fresh.hasFactoryDefaultSettings)
        #expect(VFState(driver: "vfio-pci").hasFactoryDefaultSettings)  // unknown counts as default
        #expect(VFState(spoofCheck: nil, trust: nil).hasFactoryDefaultSettings)
        var dirty = fresh
        dirty.vlanProto = .dot1AD  // no VLAN: the protocol means nothing
        #expect(dirty.hasFactoryDefaultSettings)
        for change in [
            { (s: inout VFState) in s.mac = "02:00:00:00:00:01" }, { $0.vlan = 3 }, { $0.qos = 1 },
            { $0.spoofCheck = false }, { $0.trust = true }, { $0.linkState = .enable }, { $0.minTxRate = 1 },
            { $0.maxTxRate = 1 },
        ] {
            var state = fresh
            change(&state)
            #expect(!state.hasFactoryDefaultSettings, "\(state)")
        }
    }

    @Test func rateStepsNeverPutMinAboveMax() {
        let current = VFState(minTxRate: 400, maxTxRate: 500)
        let down = VFSettingPlan.steps(to: VFState(minTxRate: 100, maxTxRate: 200), from: current, force: false)
        #expect(down.map(\.request) == [.rate(min: 100, max: 500), .rate(min: 100, max: 200)])
        #expect(down.map(\.setting) == ["min_tx_rate", "max_tx_rate"])
        let up = VFSettingPlan.steps(to: VFState(minTxRate: 600, maxTxRate: 900), from: current, force: false)
        #expect(up.map(\.request) == [.rate(min: 400, max: 900), .rate(min: 600, max: 900)])
        #expect(up.map(\.setting) == ["max_tx_rate", "min_tx_rate"])
    }

    @Test func simulatedHostResolvesNetdevsByNameAndIndex() throws {
        let fixture = try VFFixture()
        let sysfs = fixture.host.sysfs
        let links = HardwareHost.simulatedLinks(sysfs: sysfs)
        let byName = try #require(links.first { $0.name == "eth0" }?.link)
        #expect(byName.driver == "igb")
        #expect(byName.numVFs == 4)
        #expect(byName.address == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(links.filter { $0.link.index == byName.index }.count == 1, "indexes are unique")
        #expect(!links.contains { $0.name == "nope0" })
        let device = try #require(links.first { $0.name == "eth0" }?.device)
        #expect(HardwareHost.simulatedLink(device: device, index: byName.index, name: "eth0", sysfs: sysfs) == byName)
        #expect(try fixture.host.netlink.link(.name("eth0")).numVFs == 4)
        #expect(try fixture.host.netlink.vfs(ofInterface: "ens3f0np0").count == 2)
    }
}
