import Foundation
import Netlink
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// `VFController` over the simulated kernel: the real controller code, the simulated sysfs and rtnetlink.
@Suite struct VFControllerTests {
    static let fullConfig = VFConfig(
        mac: "02:11:22:33:44:55", vlan: 100, qos: 3, vlanProto: .dot1AD, spoofCheck: false, trust: true,
        linkState: .enable, minTxRate: 100, maxTxRate: 500, driver: .vfioPCI)

    @Test func freshVFIsFactoryDefault() throws {
        let fixture = try VFFixture()
        let state = try fixture.state(Address.x710)
        #expect(
            state
                == VFState(
                    mac: VFState.zeroMAC, vlan: 0, qos: 0, vlanProto: .dot1Q, spoofCheck: true, trust: false,
                    linkState: .auto, minTxRate: 0, maxTxRate: 0, driver: "iavf"))
        #expect(state.hasFactoryDefaultSettings)
    }

    @Test func applyFullConfigReadsBackEveryField() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710, 1)
        let result = try fixture.controller.apply(Self.fullConfig, to: vf, pf: pf, onWrite: fixture.record)
        let expected = VFState(
            mac: "02:11:22:33:44:55", vlan: 100, qos: 3, vlanProto: .dot1AD, spoofCheck: false, trust: true,
            linkState: .enable, minTxRate: 100, maxTxRate: 500, driver: "vfio-pci")
        #expect(result.state == expected)
        #expect(try fixture.state(Address.x710, 1) == expected)
        #expect(!expected.hasFactoryDefaultSettings)
        // One setting per request, in the driver-friendly order, the driver last.
        #expect(
            fixture.operations == [
                "vf.vlan", "vf.spoofchk", "vf.mac", "vf.trust", "vf.rate", "vf.rate", "vf.link_state", "unbind",
                "driver_override", "drivers_probe",
            ])
        #expect(fixture.writes.allSatisfy { $0.succeeded && $0.target == vf.address })
        #expect(fixture.writes.filter { $0.kind == .netlink }.count == 7)
        let binding = try #require(result.binding)
        #expect(binding.driver == "vfio-pci")
        #expect(binding.interface == nil)
        #expect(binding.vfioDevice == "/dev/vfio/\(try #require(binding.vf.iommuGroup))")
        // The VF's other siblings are untouched.
        #expect(try fixture.state(Address.x710, 0).hasFactoryDefaultSettings)
    }

    static let singleFields: [(String, VFConfig)] = [
        ("mac", VFConfig(mac: "02:aa:bb:cc:dd:ee")),
        ("vlan", VFConfig(vlan: 42)),
        ("vlan+qos", VFConfig(vlan: 42, qos: 5)),
        ("vlan 802.1ad", VFConfig(vlan: 42, vlanProto: .dot1AD)),
        ("spoofchk", VFConfig(spoofCheck: false)),
        ("trust", VFConfig(trust: true)),
        ("link state", VFConfig(linkState: .disable)),
        ("min rate", VFConfig(minTxRate: 50)),
        ("max rate", VFConfig(maxTxRate: 800)),
        ("driver", VFConfig(driver: .vfioPCI)),
    ]

    @Test(arguments: singleFields)
    func applyOneFieldChangesOnlyIt(_ name: String, _ config: VFConfig) throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710)
        let before = try fixture.controller.state(of: vf, pf: pf)
        let result = try fixture.controller.apply(config, to: vf, pf: pf, onWrite: fixture.record)
        var expected = before
        if let mac = config.mac { expected.mac = mac }
        if let vlan = config.vlan { expected.vlan = vlan }
        if let qos = config.qos { expected.qos = qos }
        if let proto = config.vlanProto { expected.vlanProto = proto }
        if let on = config.spoofCheck { expected.spoofCheck = on }
        if let on = config.trust { expected.trust = on }
        if let state = config.linkState { expected.linkState = state }
        if let rate = config.minTxRate { expected.minTxRate = rate }
        if let rate = config.maxTxRate { expected.maxTxRate = rate }
        if config.driver == .vfioPCI { expected.driver = "vfio-pci" }
        #expect(result.state == expected, "\(name)")
        let netlinkWrites = fixture.writes.filter { $0.kind == .netlink }.count
        #expect(netlinkWrites == (config.driver == nil ? 1 : 0), "\(name)")
    }

    @Test func applyingWhatIsAlreadyThereWritesNothing() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710)
        let config = VFConfig(
            mac: "00:00:00:00:00:00", vlan: 0, qos: 0, spoofCheck: true, trust: false, linkState: .auto,
            minTxRate: 0, maxTxRate: 0, driver: .default)
        try fixture.controller.apply(config, to: vf, pf: pf, onWrite: fixture.record)
        #expect(fixture.writes.isEmpty)
    }

    static let igbRefusals: [(VFConfig, String, String)] = [
        (VFConfig(minTxRate: 10, maxTxRate: 100), "min_tx_rate", "EINVAL"),
        (VFConfig(linkState: .enable), "link_state", "EOPNOTSUPP"),
        (VFConfig(vlan: 10, vlanProto: .dot1AD), "vlan_proto", "EPROTONOSUPPORT"),
        (VFConfig(maxTxRate: 2000), "max_tx_rate", "EINVAL"),
    ]

    @Test(arguments: igbRefusals)
    func igbRefusalRollsEverythingBack(_ refused: VFConfig, _ setting: String, _ errno: String) throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.igb, 1)
        // Something set earlier, which the rollback must keep as it was.
        try fixture.controller.apply(
            VFConfig(mac: "02:00:00:00:00:07", vlan: 7, qos: 1), to: vf, pf: pf, onWrite: { _ in })
        let before = try fixture.controller.state(of: vf, pf: pf)
        // Every setting igb accepts, plus the refused one: the accepted ones go first and must be undone.
        var config = refused
        config.mac = "02:00:00:00:00:99"
        config.spoofCheck = false
        config.trust = true
        if config.vlan == nil {
            config.vlan = 20
            config.qos = 2
        }
        let error = expectVFError { () throws(VFHardwareError) in
            try fixture.controller.apply(config, to: vf, pf: pf, onWrite: fixture.record)
        }
        guard case .applyFailed(let step, let rollbackFailures)? = error else {
            Issue.record("expected applyFailed, got \(String(describing: error))")
            return
        }
        #expect(step.setting == setting)
        #expect(step.errnoName == errno)
        #expect(step.driver == "igb")
        #expect(rollbackFailures.isEmpty)
        #expect(error?.leavesVFChanged == false)
        #expect(
            error?.domainError(vf: vf.address) == .settingUnsupported(setting: setting, driver: "igb", errno: errno))
        #expect(try fixture.controller.state(of: vf, pf: pf) == before)
        #expect(fixture.writes.contains { $0.errno == errno })
    }

    @Test func restoreAfterApplyBringsBackTheCapturedOriginal() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710, 2)
        let original = try fixture.controller.state(of: vf, pf: pf)
        let interfaceBefore = try #require(vf.interface)
        try fixture.controller.apply(Self.fullConfig, to: vf, pf: pf, onWrite: { _ in })
        #expect(try fixture.controller.state(of: vf, pf: pf) != original)
        try fixture.controller.restore(original, vf: vf, pf: pf, onWrite: fixture.record)
        #expect(try fixture.controller.state(of: vf, pf: pf) == original)
        // Every field is written, in order, then the driver.
        #expect(
            fixture.operations == [
                "vf.vlan", "vf.spoofchk", "vf.mac", "vf.trust", "vf.rate", "vf.link_state", "unbind",
                "driver_override", "drivers_probe", "driver_override",
            ])
        let binding = try #require(fixture.controller.binding(of: vf.address))
        #expect(binding.driver == "iavf")
        #expect(binding.interface == interfaceBefore)
        #expect(try fixture.writer.driverOverride(of: vf.address) == nil)
    }

    @Test func restoreWritesFieldsEvenWhenUnchangedButTheLinkState() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710)
        let original = try fixture.controller.state(of: vf, pf: pf)
        try fixture.controller.restore(original, vf: vf, pf: pf, onWrite: fixture.record)
        #expect(fixture.operations == ["vf.vlan", "vf.spoofchk", "vf.mac", "vf.trust", "vf.rate"])
    }

    @Test func restoreOnIGBDoesNotAskForTheLinkStateItAlreadyHas() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.igb)
        let original = try fixture.controller.state(of: vf, pf: pf)
        try fixture.controller.apply(
            VFConfig(mac: "02:00:00:00:01:01", vlan: 5, qos: 2, spoofCheck: false, trust: true, maxTxRate: 300),
            to: vf, pf: pf, onWrite: { _ in })
        // igb refuses every link state, `auto` included. The VF still reads `auto`, so the link state is not
        // written at all: the restore is complete and records no refused write.
        try fixture.controller.restore(original, vf: vf, pf: pf, onWrite: fixture.record)
        #expect(try fixture.controller.state(of: vf, pf: pf) == original)
        #expect(!fixture.operations.contains("vf.link_state"))
        #expect(fixture.writes.filter { !$0.succeeded }.isEmpty, "\(fixture.writes)")
    }

    @Test func restoreReportsEveryFailedStepAndContinues() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.igb, 2)
        // An "original" igb cannot take: 802.1ad (the first step), a min rate and a forced link state.
        let original = VFState(
            mac: "02:00:00:00:02:02", vlan: 30, qos: 0, vlanProto: .dot1AD, spoofCheck: false, trust: true,
            linkState: .disable, minTxRate: 5, maxTxRate: 100, driver: "igbvf")
        let error = expectVFError { () throws(VFHardwareError) in
            try fixture.controller.restore(original, vf: vf, pf: pf, onWrite: fixture.record)
        }
        guard case .restoreIncomplete(let failures)? = error else {
            Issue.record("expected restoreIncomplete, got \(String(describing: error))")
            return
        }
        #expect(error?.leavesVFChanged == true)
        let byName = Dictionary(failures.map { ($0.setting, $0.errnoName) }, uniquingKeysWith: { first, _ in first })
        #expect(byName["vlan"] == "EPROTONOSUPPORT")
        #expect(byName["min_tx_rate"] == "EINVAL")
        #expect(byName["link_state"] == "EOPNOTSUPP")
        // The steps after the refusals still went through.
        let now = try fixture.controller.state(of: vf, pf: pf)
        #expect(now.mac == "02:00:00:00:02:02")
        #expect(now.spoofCheck == false)
        #expect(now.trust == true)
        #expect(
            fixture.operations.prefix(6) == [
                "vf.vlan", "vf.spoofchk", "vf.mac", "vf.trust", "vf.rate", "vf.link_state",
            ])
    }

    @Test func bindToVFIOAndBackToDefault() throws {
        let fixture = try VFFixture()
        let (vf, _) = try fixture.vf(Address.igb, 3)
        let netdev = try #require(vf.interface)
        let vfio = try fixture.controller.bind(vf, to: .vfioPCI, onWrite: fixture.record)
        #expect(vfio.driver == "vfio-pci")
        #expect(vfio.interface == nil)
        #expect(vfio.vfioDevice == "/dev/vfio/\(try #require(vf.iommuGroup))")
        #expect(fixture.operations == ["unbind", "driver_override", "drivers_probe"])
        #expect(fixture.writes.map(\.value) == ["igbvf", "vfio-pci", vf.address.description])
        // vfio-pci keeps its override.
        #expect(try fixture.writer.driverOverride(of: vf.address) == .vfioPCI)
        fixture.clearWrites()

        let back = try fixture.controller.bind(vf, to: .kernelDefault, onWrite: fixture.record)
        #expect(back.driver == "igbvf")
        #expect(back.interface == netdev)
        #expect(back.vfioDevice == nil)
        #expect(fixture.writes.map(\.value) == ["vfio-pci", "", vf.address.description])
        #expect(try fixture.writer.driverOverride(of: vf.address) == nil)
        #expect(!fixture.writes.contains { $0.operation.contains("new_id") })
    }

    @Test func bindToWhatIsBoundWritesNothing() throws {
        let fixture = try VFFixture()
        let (vf, _) = try fixture.vf(Address.x710)
        try fixture.controller.bind(vf, to: .kernelDefault, onWrite: fixture.record)
        try fixture.controller.bind(vf, to: .named(DriverName("iavf")!), onWrite: fixture.record)
        #expect(fixture.writes.isEmpty)
    }

    @Test func bindThatNeverHappensRevertsToThePreviousDriver() throws {
        let fixture = try VFFixture()
        let (vf, _) = try fixture.vf(Address.x710)
        let error = expectVFError { () throws(VFHardwareError) in
            try fixture.controller.bind(
                vf, to: .named(DriverName("no-such-driver")!), timeout: .milliseconds(200), onWrite: fixture.record)
        }
        guard case .bindFailed(let step, let revertFailures)? = error else {
            Issue.record("expected bindFailed, got \(String(describing: error))")
            return
        }
        #expect(step.errnoName == "ETIMEDOUT")
        #expect(revertFailures.isEmpty)
        #expect(error?.domainError(vf: vf.address) == .hardwareTimeout(vf.address, step.detail))
        #expect(try fixture.writer.driver(of: vf.address)?.rawValue == "iavf")
        #expect(try fixture.writer.driverOverride(of: vf.address) == nil)
        #expect(fixture.controller.binding(of: vf.address)?.interface == vf.interface)
    }

    @Test func nvmeVFHasOnlyADriverAndBindsToVFIO() throws {
        let fixture = try VFFixture()
        try fixture.writer.setNumVFs(Address.nvme, 2)
        let (vf, pf) = try fixture.vf(Address.nvme, 1)
        #expect(try fixture.controller.state(of: vf, pf: pf) == VFState(driver: nil))
        let error = expectVFError { () throws(VFHardwareError) in
            try fixture.controller.apply(VFConfig(mac: "02:00:00:00:00:01"), to: vf, pf: pf, onWrite: fixture.record)
        }
        #expect(error == .noNetdev(pf: Address.nvme))
        #expect(fixture.writes.isEmpty)
        let result = try fixture.controller.apply(VFConfig(driver: .vfioPCI), to: vf, pf: pf, onWrite: fixture.record)
        #expect(result.state == VFState(driver: "vfio-pci"))
        #expect(result.binding?.vfioDevice != nil)
        // Restoring "unbound" unbinds and clears the override.
        try fixture.controller.restore(VFState(driver: nil), vf: vf, pf: pf, onWrite: { _ in })
        #expect(try fixture.writer.driver(of: vf.address) == nil)
        #expect(try fixture.writer.driverOverride(of: vf.address) == nil)
    }

    static let invalidConfigs: [(VFConfig, String)] = [
        (VFConfig(vlan: 0, qos: 3), "config.qos"),
        (VFConfig(vlan: 0, vlanProto: .dot1AD), "config.vlan_proto"),
        (VFConfig(qos: 3), "config.vlan"),
        (VFConfig(vlan: 4096), "config.vlan"),
        (VFConfig(mac: "01:00:00:00:00:01"), "config.mac"),
    ]

    @Test(arguments: invalidConfigs)
    func invalidConfigWritesNothing(_ config: VFConfig, _ field: String) throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710)
        let error = expectVFError { () throws(VFHardwareError) in
            try fixture.controller.apply(config, to: vf, pf: pf, onWrite: fixture.record)
        }
        guard case .invalidConfig(let reported, _)? = error else {
            Issue.record("expected invalidConfig, got \(String(describing: error))")
            return
        }
        #expect(reported == field)
        #expect(fixture.writes.isEmpty)
    }

    @Test func numVFsZeroThenNForgetsSettings() throws {
        let fixture = try VFFixture()
        for pf in [Address.x710, Address.igb] {
            let (vf, snapshot) = try fixture.vf(pf)
            try fixture.controller.apply(
                VFConfig(mac: "02:00:00:00:00:42", vlan: 9, trust: true, maxTxRate: 100), to: vf, pf: snapshot,
                onWrite: { _ in })
            #expect(try !fixture.state(pf).hasFactoryDefaultSettings)
            try fixture.writer.setNumVFs(pf, 0)
            try fixture.writer.setNumVFs(pf, 4)
            #expect(try fixture.state(pf).hasFactoryDefaultSettings, "\(pf)")
        }
    }

    @Test func rebootForgetsSettings() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710)
        try fixture.controller.apply(
            VFConfig(mac: "02:00:00:00:00:43", spoofCheck: false, driver: .vfioPCI), to: vf, pf: pf, onWrite: { _ in })
        try SimulatedHost.reboot(at: fixture.folder.url)
        try fixture.writer.setNumVFs(Address.x710, 4)
        let state = try fixture.state(Address.x710)
        #expect(state.hasFactoryDefaultSettings)
        #expect(state.driver == "iavf")
    }

    @Test func netlinkOnAPFWithoutVFsIsAReadFailure() throws {
        let fixture = try VFFixture()
        let (vf, pf) = try fixture.vf(Address.x710, 3)
        try fixture.writer.setNumVFs(Address.x710, 0)
        let error = expectVFError { () throws(VFHardwareError) in
            _ = try fixture.controller.state(of: vf, pf: pf)
        }
        guard case .readFailed? = error else {
            Issue.record("expected readFailed, got \(String(describing: error))")
            return
        }
    }
}
