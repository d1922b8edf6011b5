import Foundation
import Testing

@testable import HostSimulator
@testable import Netlink

/// The client against the simulated kernel: the same request and reply bytes as on a real kernel.
@Suite struct SimulatedRTNetlinkTests {
    @Test func neverConfiguredVFsHaveDefaults() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let link = try host.client.link(.name("eth0"))
        #expect(link.index == 2 && link.name == "eth0" && link.mtu == 1500 && link.operState == 6)
        #expect(link.numVFs == 2)
        #expect(
            link.vfs
                == [0, 1].map {
                    VFLinkInfo(
                        index: $0, mac: [0, 0, 0, 0, 0, 0], vlan: 0, qos: 0, vlanProtocol: .ieee8021Q, spoofCheck: true,
                        trust: false, linkState: .auto, minTxRate: 0, maxTxRate: 0)
                })
        #expect(try host.client.link(.index(3)).name == "ens1f0")
    }

    @Test(arguments: ["eth0", "ens1f0"])
    func everyAcceptedSettingReadsBack(interface: String) throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let client = host.client
        try client.apply(.mac([0x02, 0, 0, 0, 0, 0x01]), vf: 1, interface: interface)
        try client.apply(.vlan(vlan: 10, qos: 3), vf: 1, interface: interface)
        try client.apply(.spoofCheck(false), vf: 1, interface: interface)
        try client.apply(.trust(true), vf: 1, interface: interface)
        try client.apply(.rate(min: 0, max: 100), vf: 1, interface: interface)
        let vf = try client.vfs(ofInterface: interface)[1]
        #expect(vf.mac == [0x02, 0, 0, 0, 0, 0x01])
        #expect(vf.vlan == 10 && vf.qos == 3 && vf.vlanProtocol == .ieee8021Q)
        #expect(vf.spoofCheck == false && vf.trust == true)
        #expect(vf.minTxRate == 0 && vf.maxTxRate == 100)
        #expect(
            try client.vfs(ofInterface: interface)[0]
                == VFLinkInfo(
                    index: 0, vlanProtocol: .ieee8021Q, spoofCheck: true, trust: false, linkState: .auto))
    }

    @Test func permissiveProfileAcceptsWhatIgbRefuses() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let client = host.client
        try client.apply(.rate(min: 10, max: 100), vf: 3, interface: "ens1f0")
        try client.apply(.linkState(.disable), vf: 3, interface: "ens1f0")
        try client.apply(.vlan(vlan: 20, qos: 0, proto: .ieee8021AD), vf: 3, interface: "ens1f0")
        let vf = try client.vfs(ofInterface: "ens1f0")[3]
        #expect(vf.minTxRate == 10 && vf.maxTxRate == 100)
        #expect(vf.linkState == .disable)
        #expect(vf.vlan == 20 && vf.vlanProtocol == .ieee8021AD)
        try client.apply(.linkState(.enable), vf: 3, interface: "ens1f0")
        try client.apply(.vlan(vlan: 0, qos: 0), vf: 3, interface: "ens1f0")
        let cleared = try client.vfs(ofInterface: "ens1f0")[3]
        #expect(cleared.linkState == .enable && cleared.vlan == 0 && cleared.vlanProtocol == .ieee8021Q)
    }

    static let igbRejections: [(VFSetting, Int, Int32, String)] = [
        (.rate(min: 10, max: 100), 0, 22, "EINVAL"),
        (.rate(min: 0, max: 1001), 0, 22, "EINVAL"),
        (.linkState(.enable), 0, 95, "EOPNOTSUPP"),
        (.linkState(.auto), 0, 95, "EOPNOTSUPP"),
        (.vlan(vlan: 20, qos: 0, proto: .ieee8021AD), 1, 93, "EPROTONOSUPPORT"),
        (.vlan(vlan: 20, qos: 0, proto: VLANProtocol(rawValue: 0x9100)), 1, 93, "EPROTONOSUPPORT"),
        (.vlan(vlan: 4096, qos: 0), 0, 22, "EINVAL"),
        (.vlan(vlan: 1, qos: 8), 0, 22, "EINVAL"),
        (.mac([0x01, 0, 0x5e, 0, 0, 1]), 0, 22, "EINVAL"),
        (.trust(true), 2, 22, "EINVAL"),
        (.mac([2, 0, 0, 0, 0, 1]), 7, 22, "EINVAL"),
    ]

    @Test(arguments: igbRejections)
    func igbProfileRefuses(setting: VFSetting, vf: Int, errno: Int32, name: String) throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let before = try host.client.vfs(ofInterface: "eth0")
        do {
            try host.client.apply(setting, vf: vf, interface: "eth0")
            Issue.record("\(setting) on VF \(vf) was accepted")
        } catch {
            #expect(error.errno == errno)
            #expect(error.name == name)
            #expect(error.context.hasPrefix("igb: "))
        }
        #expect(try host.client.vfs(ofInterface: "eth0") == before)
    }

    @Test func unknownInterfaceIsENODEV() {
        let host = SimulatedHost()
        defer { host.remove() }
        #expect(throws: NetlinkError(errno: 19, context: "no such device")) {
            try host.client.vfs(ofInterface: "nope0")
        }
        #expect(throws: NetlinkError(errno: 19, context: "no such device")) {
            try host.client.apply(.trust(true), vf: 0, interface: "nope0")
        }
    }

    @Test func settingsPersistAcrossInstancesAndARebootForgetsThem() throws {
        let directory = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try SimulatedHost(directory: directory).client.apply(.trust(true), vf: 0, interface: "eth0")
        let second = SimulatedHost(directory: directory)
        #expect(try second.client.vfs(ofInterface: "eth0")[0].trust == true)
        let file = directory.appendingPathComponent("vf-settings/eth0.json")
        #expect(FileManager.default.fileExists(atPath: file.path))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("vf-settings"))
        #expect(try second.client.vfs(ofInterface: "eth0")[0].trust == false)
        try second.client.apply(.trust(true), vf: 1, interface: "eth0")
        second.kernel.forgetVFSettings(ofInterface: "eth0")
        #expect(try second.client.vfs(ofInterface: "eth0")[1].trust == false)
    }

    @Test func resolverSeesLiveVFCount() throws {
        let directory = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let count = LockedCount()
        let kernel = SimulatedRTNetlink(stateDirectory: directory) { selector in
            guard selector == .name("eth9") else { return nil }
            return .init(name: "eth9", index: 9, driver: "mlx5_core", numVFs: count.value)
        }
        let client = RTNetlinkClient(transport: kernel)
        #expect(try client.vfs(ofInterface: "eth9").isEmpty)
        #expect(throws: NetlinkError.self) { try client.apply(.trust(true), vf: 0, interface: "eth9") }
        count.value = 8
        try client.apply(.trust(true), vf: 7, interface: "eth9")
        #expect(try client.vfs(ofInterface: "eth9").count == 8)
    }

    /// One message with several VF attributes is applied in the kernel's order and stops at the first
    /// refusal, keeping what came before (observed on igb: mac and vlan stayed, min rate failed).
    @Test func severalAttributesStopAtTheFirstRefusal() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        var w = ByteWriter()
        NetlinkHeader(length: 0, type: 16, flags: 5, sequence: 1, portID: 0).write(to: &w)
        w.zeros(16)
        w.attribute(3, string: "eth0")
        w.nested(22) { list in
            list.nested(1) { info in
                info.attribute(6, hex("00 00 00 00 0a 00 00 00 64 00 00 00"))  // rate min 10: EINVAL on igb
                info.attribute(2, hex("00 00 00 00 0a 00 00 00 03 00 00 00"))  // vlan 10 qos 3
                info.attribute(1, hex("00 00 00 00 02 00 00 00 00 09") + Array(repeating: 0, count: 26))
                info.attribute(9, hex("00 00 00 00 01 00 00 00"))  // trust: after rate, never reached
            }
        }
        w.patchU32(at: 0, UInt32(w.count))
        let replies = try host.kernel.request(w.bytes).flatMap { try RTNetlinkCodec.parse($0) }
        #expect(replies.count == 1)
        guard case .error(let error) = replies.first else {
            Issue.record("expected an error, got \(replies)")
            return
        }
        #expect(error.errno == 22)
        let vf = try host.client.vfs(ofInterface: "eth0")[0]
        #expect(vf.mac == [2, 0, 0, 0, 0, 9] && vf.vlan == 10 && vf.trust == false)
    }

    @Test func getLinkWithoutVFFilterHasNoVFData() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let request = RTNetlinkCodec.makeGetLink(.name("eth0"), extMask: 0)
        let replies = try host.kernel.request(request).flatMap { try RTNetlinkCodec.parse($0) }
        guard case .link(let link) = replies.first else {
            Issue.record("no link in \(replies)")
            return
        }
        #expect(link.numVFs == nil && link.vfs.isEmpty)
        #expect(replies.last == .ack)
    }
}

final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
