import FoundationEssentials
import Netlink
import SRIOVCore
import SRIOVHardware
import Synchronization

extension HardwareHost {
    /// The simulated host in DIR (see `SimulatedHost`): `SimulatedKernel` for sysfs, and `SimulatedRTNetlink`
    /// keeping VF settings in `DIR/.simulator/vf-settings`. The rtnetlink side finds a netdev by reading the
    /// simulated sysfs tree through `Sysfs` and `HostScanner`, on every request, so it always sees the live
    /// driver, VF count, MTU, MAC and operstate.
    public static func simulated(at dir: URL) -> HardwareHost {
        let sysfs = Sysfs(backend: SimulatedKernel(root: dir))
        let known = Mutex<[String: (device: PCIAddress, index: Int32)]>([:])
        let transport = SimulatedRTNetlink(stateDirectory: vfSettingsFolder(of: dir)) { selector in
            // Fast path: a netdev seen before is read from its own device folder only (still live from sysfs).
            if case .name(let wanted) = selector, let (device, index) = known.withLock({ $0[wanted] }),
                let link = simulatedLink(device: device, index: index, name: wanted, sysfs: sysfs)
            {
                return link
            }
            // Slow path: walk the PCI devices once and remember every PF netdev found.
            let links = simulatedLinks(sysfs: sysfs)
            known.withLock { known in for found in links { known[found.name] = (found.device, found.link.index) } }
            return links.first { found in
                switch selector {
                case .name(let wanted): found.name == wanted
                case .index(let wanted): found.link.index == wanted
                }
            }?.link
        }
        return HardwareHost(sysfs: sysfs, netlink: RTNetlinkClient(transport: transport))
    }

    /// `DIR/.simulator/vf-settings`, where the simulated rtnetlink keeps VF settings.
    static func vfSettingsFolder(of dir: URL) -> URL {
        dir.appendingPathComponent(".simulator").appendingPathComponent("vf-settings")
    }

    /// Every PF netdev in the tree. Interface indexes are not kept in sysfs here: the simulated kernel numbers
    /// the PF netdevs 2, 3, ... in PCI address order (1 is `lo` on a real host).
    static func simulatedLinks(sysfs: Sysfs) -> [(link: SimulatedRTNetlink.Link, device: PCIAddress, name: String)] {
        let scanner = HostScanner(sysfs: sysfs)
        guard let devices = try? sysfs.pciDevices() else { return [] }
        var index: Int32 = 1
        var links: [(link: SimulatedRTNetlink.Link, device: PCIAddress, name: String)] = []
        for device in devices {
            guard let pf = scanner.physicalFunction(device), let name = pf.interfaces.first,
                let interface = InterfaceName(name)
            else { continue }
            index += 1
            links.append((link(pf, interface: interface, index: index, scanner: scanner), device, name))
        }
        return links
    }

    /// The netdev `name` of `device`, if it still is one: only the attributes a link needs are read.
    static func simulatedLink(device: PCIAddress, index: Int32, name: String, sysfs: Sysfs) -> SimulatedRTNetlink.Link?
    {
        guard let interface = InterfaceName(name), (try? sysfs.interfaces(of: device))?.contains(interface) == true
        else { return nil }
        let link = HostScanner(sysfs: sysfs).networkLink(interface, on: device)
        return SimulatedRTNetlink.Link(
            name: name, index: index, driver: (try? sysfs.driver(of: device))??.rawValue ?? "",
            numVFs: ((try? sysfs.readInt(.sriovNumVFs, of: device)) ?? nil) ?? 0,
            mtu: UInt32(max(0, link.mtu ?? 1500)), address: link.mac.flatMap(parseMAC) ?? [0, 0, 0, 0, 0, 0],
            isUp: link.state == "up")
    }

    private static func link(
        _ pf: PhysicalFunction, interface: InterfaceName, index: Int32, scanner: HostScanner
    ) -> SimulatedRTNetlink.Link {
        let link = scanner.networkLink(interface, on: pf.address)
        return SimulatedRTNetlink.Link(
            name: interface.rawValue, index: index, driver: pf.driver ?? "", numVFs: pf.numVFs,
            mtu: UInt32(max(0, link.mtu ?? 1500)), address: link.mac.flatMap(parseMAC) ?? [0, 0, 0, 0, 0, 0],
            isUp: link.state == "up")
    }
}
