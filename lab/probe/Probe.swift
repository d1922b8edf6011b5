// netlink-probe: drives sriovd's Netlink code against a real kernel inside the lab VM, and the same steps
// against SimulatedRTNetlink with the matching driver profile, and fails on any difference from what the
// real driver is known to do. Built by build.sh from the Netlink and HostSimulator modules plus this file.
//
//   netlink-probe check IFNAME DRIVER NUMVFS     (DRIVER: igb | netdevsim)
//   netlink-probe uevents NUMVFS_FILE COUNT     (watch uevents while writing COUNT to a sriov_numvfs file)
import Foundation
import Glibc
import HostSimulator
import Netlink

/// One step: a setting on a VF and the outcome each driver gives (nil = accepted, else the errno name).
struct Step {
    var vf: Int
    var setting: VFSetting
    var igb: String?
    var netdevsim: String?
}

let steps: [Step] = [
    Step(vf: 0, setting: .mac([0x02, 0, 0, 0, 0, 0x01]), igb: nil, netdevsim: nil),
    Step(vf: 0, setting: .vlan(vlan: 10, qos: 3), igb: nil, netdevsim: nil),
    Step(vf: 0, setting: .spoofCheck(false), igb: nil, netdevsim: nil),
    Step(vf: 0, setting: .trust(true), igb: nil, netdevsim: nil),
    Step(vf: 0, setting: .rate(min: 0, max: 100), igb: nil, netdevsim: nil),
    Step(vf: 0, setting: .rate(min: 10, max: 100), igb: "EINVAL", netdevsim: nil),
    Step(vf: 0, setting: .linkState(.enable), igb: "EOPNOTSUPP", netdevsim: nil),
    Step(vf: 1, setting: .vlan(vlan: 20, qos: 0, proto: .ieee8021AD), igb: "EPROTONOSUPPORT", netdevsim: nil),
    Step(vf: 1, setting: .vlan(vlan: 4096, qos: 0), igb: "EINVAL", netdevsim: "EINVAL"),
    Step(vf: 1, setting: .vlan(vlan: 5, qos: 8), igb: "EINVAL", netdevsim: "EINVAL"),
    Step(vf: 7, setting: .trust(true), igb: "EINVAL", netdevsim: "EINVAL"),
    Step(vf: 1, setting: .mac([0x02, 0, 0, 0, 0, 0x02]), igb: nil, netdevsim: nil),
    Step(vf: 1, setting: .spoofCheck(true), igb: nil, netdevsim: nil),
]

func describe(_ setting: VFSetting) -> String {
    switch setting {
    case .mac(let mac): "mac \(formatMAC(mac))"
    case .vlan(let vlan, let qos, let proto): "vlan \(vlan) qos \(qos) proto \(proto)"
    case .rate(let min, let max): "rate min \(min) max \(max)"
    case .spoofCheck(let on): "spoofchk \(on ? "on" : "off")"
    case .trust(let on): "trust \(on ? "on" : "off")"
    case .linkState(let state): "state \(state)"
    }
}

func describe(_ vf: VFLinkInfo) -> String {
    let proto = vf.vlanProtocol.map { " proto \($0)" } ?? ""
    let spoof = vf.spoofCheck.map { $0 ? "on" : "off" } ?? "n/a"
    let trust = vf.trust.map { $0 ? "on" : "off" } ?? "n/a"
    let state = vf.linkState.map { "\($0)" } ?? "n/a"
    return "vf \(vf.index) mac \(vf.macString) vlan \(vf.vlan) qos \(vf.qos)\(proto) spoofchk \(spoof) "
        + "trust \(trust) state \(state) min_tx_rate \(vf.minTxRate) max_tx_rate \(vf.maxTxRate)"
}

func outcome(_ body: () throws(NetlinkError) -> Void) -> String {
    do {
        try body()
        return "ok"
    } catch {
        return error.name + (error.context.isEmpty ? "" : " (\(error.context))")
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func check(interface: String, driver: String, numVFs: Int) -> Int32 {
    var failures = 0
    func fail(_ message: String) {
        failures += 1
        print("FAIL \(message)")
    }
    let kernel: RTNetlinkClient
    do {
        kernel = RTNetlinkClient(transport: try KernelRTNetlink(receiveTimeout: .seconds(10)))
    } catch {
        print("FAIL cannot open rtnetlink: \(error)")
        return 1
    }
    let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("probe-sim-\(getpid())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let simulated = SimulatedRTNetlink(
        stateDirectory: folder,
        links: [.init(name: interface, index: 99, driver: driver, numVFs: numVFs)])
    let sim = RTNetlinkClient(transport: simulated)
    print("profile: real \(driver) vs SimulatedRTNetlink(\(SimulatedRTNetlink.DriverProfile.forDriver(driver).name))")

    let start = Date()
    let link: LinkInfo
    do {
        link = try kernel.link(.name(interface))
    } catch {
        print("FAIL RTM_GETLINK \(interface): \(error)")
        return 1
    }
    print(
        "link \(link.name) ifindex \(link.index) mtu \(link.mtu ?? 0) operstate \(link.operState ?? 0) "
            + "address \(formatMAC(link.address ?? [])) num_vf \(link.numVFs.map(String.init) ?? "-")")
    for vf in link.vfs { print("  before: \(describe(vf))") }
    if link.numVFs != numVFs || link.vfs.count != numVFs {
        fail("expected \(numVFs) VFs, kernel reports num_vf \(link.numVFs ?? -1) and \(link.vfs.count) entries")
    }

    print("\(pad("step", 44)) \(pad("expected", 16)) \(pad("kernel", 16)) simulated")
    for step in steps {
        let expected = (driver == "igb" ? step.igb : step.netdevsim) ?? "ok"
        let real = outcome { () throws(NetlinkError) in
            try kernel.apply(step.setting, vf: step.vf, interface: interface)
        }
        let simulatedResult = outcome { () throws(NetlinkError) in
            try sim.apply(step.setting, vf: step.vf, interface: interface)
        }
        let realName = String(real.prefix { $0 != " " })
        let simName = String(simulatedResult.prefix { $0 != " " })
        let verdict = realName == expected && simName == expected ? "ok  " : "FAIL"
        if verdict == "FAIL" { failures += 1 }
        print(
            "\(verdict) \(pad("vf \(step.vf) \(describe(step.setting))", 39)) \(pad(expected, 16)) "
                + "\(pad(realName, 16)) \(simName)")
    }

    do {
        let after = try kernel.link(.name(interface))
        let simAfter = try sim.link(.name(interface))
        for (index, vf) in after.vfs.enumerated() {
            print("  after:  \(describe(vf))")
            guard index < simAfter.vfs.count else { continue }
            let model = simAfter.vfs[index]
            // Fields every step above set; the defaults of untouched fields differ between drivers.
            let same =
                vf.mac == model.mac && vf.vlan == model.vlan && vf.qos == model.qos
                && vf.minTxRate == model.minTxRate && vf.maxTxRate == model.maxTxRate
                && (vf.index != 0 || (vf.trust == model.trust && vf.spoofCheck == model.spoofCheck))
                && (vf.vlanProtocol == nil || vf.vlanProtocol == model.vlanProtocol)
            if !same { fail("read-back of vf \(index) differs from the simulator: \(describe(model))") }
            if driver == "igb" && vf != model {
                print("  note: full record differs from the simulator's: \(describe(model))")
            }
        }
        let expected0 = VFLinkInfo(
            index: 0, mac: [2, 0, 0, 0, 0, 1], vlan: 10, qos: 3, vlanProtocol: .ieee8021Q, spoofCheck: false,
            trust: true, linkState: driver == "igb" ? .auto : .enable, minTxRate: driver == "igb" ? 0 : 10,
            maxTxRate: 100)
        if after.vfs.first != expected0 { fail("vf 0 read back as \(after.vfs.first.map(describe) ?? "nothing")") }
    } catch {
        fail("read-back: \(error)")
    }
    print(String(format: "elapsed %.2f s, %d failure(s)", Date().timeIntervalSince(start), failures))
    return failures == 0 ? 0 : 1
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [UEvent] = []
    func add(_ event: UEvent) { lock.withLock { events.append(event) } }
    var all: [UEvent] { lock.withLock { events } }
}

func watchUEvents(numVFsFile: String, count: Int) -> Int32 {
    let log = EventLog()
    let monitor: UEventMonitor
    do {
        monitor = try UEventMonitor(onEvent: { log.add($0) })
    } catch {
        print("FAIL uevent socket: \(error)")
        return 1
    }
    do {
        try "\(count)\n".write(toFile: numVFsFile, atomically: false, encoding: .utf8)
    } catch {
        print("FAIL write \(numVFsFile): \(error)")
        return 1
    }
    Thread.sleep(forTimeInterval: 3)
    monitor.stop()
    let events = log.all
    for event in events {
        let extra = [event.pciSlotName, event.driver, event.interface].compactMap { $0 }.joined(separator: " ")
        print("uevent \(event.action) \(event.subsystem ?? "-") \(event.devpath) \(extra)")
    }
    let added = events.filter { $0.action == "add" && $0.subsystem == "pci" }.count
    print("pci add events: \(added) (expected \(count))")
    return added == count ? 0 : 1
}

@main
struct NetlinkProbe {
    static func main() {
        let args = CommandLine.arguments
        if args.count == 5, args[1] == "check", let numVFs = Int(args[4]) {
            exit(check(interface: args[2], driver: args[3], numVFs: numVFs))
        }
        if args.count == 4, args[1] == "uevents", let count = Int(args[3]) {
            exit(watchUEvents(numVFsFile: args[2], count: count))
        }
        print("usage: netlink-probe check IFNAME igb|netdevsim NUMVFS | uevents NUMVFS_FILE COUNT")
        exit(2)
    }
}
