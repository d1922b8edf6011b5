// vf-probe: drives sriovd's VFController (SRIOVHardware) against the real kernel inside the lab VM and checks
// every step against what the kernel itself reports (`ip -j -d link show`, sysfs, /dev/vfio). Built by build.sh.
//
//   vf-probe igb PF_ADDRESS VF_INDEX   capture, apply, refusals + rollback, restore, vfio-pci and back
//   vf-probe vfio PF_ADDRESS           bind every VF of the PF to vfio-pci, then restore each to its original
import Foundation
import Glibc
import Netlink
import SRIOVCore
import SRIOVHardware

nonisolated(unsafe) var failures = 0

func check(_ ok: Bool, _ what: String) {
    print((ok ? "ok   " : "FAIL ") + what)
    if !ok { failures += 1 }
}

func show(_ state: VFState) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return (try? encoder.encode(state)).map { String(decoding: $0, as: UTF8.self) } ?? "\(state)"
}

func printWrite(_ write: HardwareWrite) {
    let ms = Double(write.duration.components.attoseconds) / 1e15 + Double(write.duration.components.seconds) * 1e3
    print(
        "  write \(write.kind.rawValue) \(write.operation) = \(write.value.isEmpty ? "\"\"" : write.value) -> "
            + "\(write.errno ?? "ok") (\(String(format: "%.1f", ms)) ms)")
}

/// The VF as `ip -j -d link show IF` reports it, in VFState terms (driver left out).
func ipView(_ interface: String, vf index: Int) -> VFState? {
    // popen rather than Foundation's Process: Process needs a CFSocket wakeup pair the lab guest cannot make.
    guard let pipe = popen("ip -j -d link show \(interface) 2>/dev/null", "r") else { return nil }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, pipe)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    pclose(pipe)
    let data = Data(bytes)
    guard let links = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]],
        let list = links.first?["vfinfo_list"] as? [[String: Any]],
        let vf = list.first(where: { ($0["vf"] as? Int) == index })
    else { return nil }
    var state = VFState()
    state.mac = (vf["address"] as? String)?.lowercased()
    let vlan = (vf["vlan_list"] as? [[String: Any]])?.first
    state.vlan = vlan?["vlan"] as? Int ?? 0
    state.qos = vlan?["qos"] as? Int ?? 0
    state.vlanProto = (vlan?["protocol"] as? String).flatMap { VFConfig.VLANProtocol(rawValue: $0) }
    state.spoofCheck = vf["spoofchk"] as? Bool
    state.trust = vf["trust"] as? Bool
    state.linkState = (vf["link_state"] as? String).flatMap { VFConfig.LinkState(rawValue: $0) }
    let rate = vf["rate"] as? [String: Any]
    state.minTxRate = rate?["min_tx"] as? Int ?? 0
    state.maxTxRate = rate?["max_tx"] as? Int ?? 0
    return state
}

/// Compares the controller's view with iproute2's, field by field (iproute2 shows no protocol without a VLAN).
func compareWithIP(_ state: VFState, _ interface: String, vf: Int, _ label: String) {
    guard var ip = ipView(interface, vf: vf) else {
        check(false, "\(label): ip -j -d link show \(interface) has vf \(vf)")
        return
    }
    var mine = state
    mine.driver = nil
    if ip.vlan == 0 || ip.vlanProto == nil {
        mine.vlanProto = nil
        ip.vlanProto = nil
    }
    print("  ip:   \(show(ip))")
    check(mine == ip, "\(label): VFController's state equals ip -j -d link show \(interface)")
}

@main
struct VFProbe {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3, let pfAddress = PCIAddress(arguments[2]) else {
            print("usage: vf-probe igb PF VF_INDEX | vf-probe vfio PF")
            exit(2)
        }
        let host: HardwareHost
        do {
            host = try HardwareHost.kernel()
        } catch {
            print("FAIL rtnetlink socket: \(error)")
            exit(1)
        }
        switch arguments[1] {
        case "igb": igb(host, pfAddress, Int(arguments.count > 3 ? arguments[3] : "0") ?? 0)
        case "vfio": vfio(host, pfAddress)
        default:
            print("unknown command \(arguments[1])")
            exit(2)
        }
        print("== vf-probe \(arguments[1]): \(failures == 0 ? "PASS" : "FAIL (\(failures))")")
        exit(failures == 0 ? 0 : 1)
    }

    static func scan(_ host: HardwareHost, _ pf: PCIAddress) -> PFSnapshot? {
        HostScanner(sysfs: host.sysfs).scan(pf: pf)
    }

    static func igb(_ host: HardwareHost, _ pfAddress: PCIAddress, _ index: Int) {
        let controller = VFController(host: host)
        guard let snapshot = scan(host, pfAddress), let vf = snapshot.vfs.first(where: { $0.index == index }),
            let interface = snapshot.pf.interfaces.first
        else {
            check(false, "PF \(pfAddress) with a netdev and VF \(index)")
            return
        }
        let pf = snapshot.pf
        print(
            "PF \(pf.address) \(pf.driver ?? "-") \(interface), VF \(index) \(vf.address) \(vf.driver ?? "-") "
                + "\(vf.interface ?? "-") group \(vf.iommuGroup.map(String.init) ?? "-")")

        print("== capture")
        guard let original = try? controller.state(of: vf, pf: pf) else {
            check(false, "capture VF state")
            return
        }
        print("  state: \(show(original))")
        compareWithIP(original, interface, vf: index, "capture")

        print("== apply mac/vlan/qos/spoofchk/trust/max rate")
        let config = VFConfig(
            mac: "02:00:00:00:10:01", vlan: 10, qos: 3, spoofCheck: false, trust: true, maxTxRate: 100)
        do {
            let result = try controller.apply(config, to: vf, pf: pf, onWrite: printWrite)
            print("  state: \(show(result.state))")
            compareWithIP(result.state, interface, vf: index, "apply")
            let expected = VFState(
                mac: "02:00:00:00:10:01", vlan: 10, qos: 3, vlanProto: result.state.vlanProto, spoofCheck: false,
                trust: true, linkState: original.linkState, minTxRate: 0, maxTxRate: 100, driver: original.driver)
            check(result.state == expected, "apply: every field reads back as asked")
        } catch {
            check(false, "apply: \(error)")
        }

        for (label, refused, setting, errno) in [
            (
                "min rate", VFConfig(mac: "02:00:00:00:10:02", vlan: 11, minTxRate: 10, maxTxRate: 100), "min_tx_rate",
                "EINVAL"
            ),
            (
                "link state", VFConfig(mac: "02:00:00:00:10:03", trust: false, linkState: .enable), "link_state",
                "EOPNOTSUPP"
            ),
            ("802.1ad", VFConfig(vlan: 12, vlanProto: .dot1AD), "vlan_proto", "EPROTONOSUPPORT"),
        ] {
            print("== refused: \(label), rolled back")
            let before = try? controller.state(of: vf, pf: pf)
            do {
                try controller.apply(refused, to: vf, pf: pf, onWrite: printWrite)
                check(false, "\(label): expected \(errno), it was accepted")
            } catch {
                if case .applyFailed(let step, let rollback) = error {
                    check(
                        step.setting == setting && step.errnoName == errno && step.driver == "igb"
                            && rollback.isEmpty,
                        "\(label): \(step.setting) \(step.errnoName ?? "-") from \(step.driver), rollback failures "
                            + "\(rollback.count)")
                } else {
                    check(false, "\(label): \(error)")
                }
            }
            let after = try? controller.state(of: vf, pf: pf)
            check(after != nil && after == before, "\(label): VF exactly as before")
        }

        print("== restore the captured original")
        do {
            try controller.restore(original, vf: vf, pf: pf, onWrite: printWrite)
            check(true, "restore reported complete")
        } catch {
            check(false, "restore: \(error)")
        }
        if let now = try? controller.state(of: vf, pf: pf) {
            print("  state: \(show(now))")
            check(now == original, "restore: state equals the capture")
            compareWithIP(now, interface, vf: index, "restore")
        }

        print("== bind to vfio-pci")
        do {
            let binding = try controller.bind(vf, to: .vfioPCI, onWrite: printWrite)
            let device = binding.vfioDevice ?? "-"
            check(binding.driver == "vfio-pci", "driver is vfio-pci")
            check(FileManager.default.fileExists(atPath: device), "\(device) exists")
            check(binding.interface == nil, "no netdev while on vfio-pci")
        } catch {
            check(false, "bind vfio-pci: \(error)")
        }
        print("== bind back to the default driver")
        do {
            let binding = try controller.bind(vf, to: .kernelDefault, onWrite: printWrite)
            check(binding.driver == original.driver, "driver is \(binding.driver ?? "none") again")
            check(binding.interface != nil, "netdev \(binding.interface ?? "none") is back")
            check(binding.vfioDevice == nil, "no vfio device")
        } catch {
            check(false, "bind default: \(error)")
        }
        if var now = try? controller.state(of: vf, pf: pf) {
            // igbvf picks a random MAC at probe when the PF set none, and igb then reports it for the VF.
            print("  state: \(show(now))")
            now.mac = original.mac
            check(now == original, "after the round trip only the MAC may differ from the capture")
        }
        print("== restore after the round trip")
        do {
            try controller.restore(original, vf: vf, pf: pf, onWrite: printWrite)
            check(true, "restore reported complete")
        } catch {
            check(false, "restore: \(error)")
        }
        if let now = try? controller.state(of: vf, pf: pf) {
            check(now == original, "restore: state equals the capture, MAC included")
        }
        print("== restore from vfio-pci (the driver rebind last, the MAC fixed up after it)")
        do {
            try controller.apply(
                VFConfig(vlan: 20, spoofCheck: false, driver: .vfioPCI), to: vf, pf: pf, onWrite: printWrite)
            try controller.restore(original, vf: vf, pf: pf, onWrite: printWrite)
            check(true, "restore reported complete")
        } catch {
            check(false, "apply + restore: \(error)")
        }
        if let now = try? controller.state(of: vf, pf: pf) {
            check(now == original, "restore: state equals the capture")
            check(controller.binding(of: vf.address)?.interface != nil, "netdev is back")
        }
    }

    static func vfio(_ host: HardwareHost, _ pfAddress: PCIAddress) {
        let controller = VFController(host: host)
        guard let snapshot = scan(host, pfAddress), !snapshot.vfs.isEmpty else {
            check(false, "PF \(pfAddress) with VFs")
            return
        }
        let pf = snapshot.pf
        print("PF \(pf.address) \(pf.driver ?? "-"), \(snapshot.vfs.count) VFs, interfaces \(pf.interfaces)")
        for vf in snapshot.vfs {
            guard let original = try? controller.state(of: vf, pf: pf) else {
                check(false, "capture \(vf.address)")
                continue
            }
            print("== VF \(vf.index) \(vf.address): \(show(original))")
            do {
                let result = try controller.apply(VFConfig(driver: .vfioPCI), to: vf, pf: pf, onWrite: printWrite)
                let device = result.binding?.vfioDevice ?? "-"
                check(result.state.driver == "vfio-pci", "\(vf.address) on vfio-pci")
                check(FileManager.default.fileExists(atPath: device), "\(device) exists")
            } catch {
                check(false, "\(vf.address) vfio-pci: \(error)")
            }
            do {
                try controller.restore(original, vf: vf, pf: pf, onWrite: printWrite)
                let now = try controller.state(of: vf, pf: pf)
                check(now == original, "\(vf.address) restored to \(now.driver ?? "no driver")")
            } catch {
                check(false, "\(vf.address) restore: \(error)")
            }
        }
    }
}
