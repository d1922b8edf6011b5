import Dispatch
import SRIOVCore
import Synchronization

/// Discovery: reads the SR-IOV PFs of a host and their VFs through `Sysfs`.
///
/// A device can vanish at any moment (a VF removed by `sriov_numvfs=0`, a PF hot-unplugged). Whatever vanishes while
/// it is being read is left out of the answer; scanning never throws and never traps.
public struct HostScanner: Sendable {
    public let sysfs: Sysfs

    public init(sysfs: Sysfs) {
        self.sysfs = sysfs
    }

    /// Every PCI device with `sriov_totalvfs` > 0, network or not, with its VFs, ordered by address.
    public func scan() -> HostSnapshot {
        guard let devices = try? sysfs.pciDevices() else { return HostSnapshot(pfs: []) }
        // Devices are read in parallel (a host with thousands of VFs has thousands of device folders); the
        // snapshot orders the PFs by address whatever order they were read in.
        let found = Mutex<[PFSnapshot]>([])
        DispatchQueue.concurrentPerform(iterations: devices.count) { index in
            if let pf = scan(pf: devices[index]) { found.withLock { $0.append(pf) } }
        }
        return HostSnapshot(pfs: found.withLock { $0 })
    }

    /// One PF with its VFs; nil when it is gone or is not an SR-IOV PF.
    ///
    /// When the VFs change while they are read (a count that differs before and after, or VFs missing), the PF is
    /// read again, a few times at most; the last reading is returned, holding only the VFs that could be read whole.
    public func scan(pf address: PCIAddress) -> PFSnapshot? {
        var last: PFSnapshot?
        for _ in 0..<3 {
            guard let first = physicalFunction(address) else { return nil }
            let vfs = virtualFunctions(of: address)
            guard let second = physicalFunction(address) else { return nil }
            let snapshot = PFSnapshot(pf: second, vfs: vfs)
            last = snapshot
            if first.numVFs == second.numVFs && vfs.count == second.numVFs { break }
        }
        return last
    }

    /// One VF, found through its `physfn` link; nil when it is gone or is not a VF.
    public func virtualFunction(_ vf: PCIAddress) -> VirtualFunction? {
        guard let pfText = try? sysfs.linkBasename(.physfn, of: vf), let pf = PCIAddress(pfText),
            let indices = try? sysfs.virtfnIndices(of: pf)
        else { return nil }
        for index in indices where (try? sysfs.linkBasename(.virtfn(index), of: pf)) == vf.description {
            return virtualFunction(vf, index: index, pf: pf)
        }
        return nil
    }

    // MARK: - Reading one device

    /// The PF's own fields; nil when it vanished or has no SR-IOV capability.
    package func physicalFunction(_ address: PCIAddress) -> PhysicalFunction? {
        guard let totalVFs = try? sysfs.readInt(.sriovTotalVFs, of: address), totalVFs > 0,
            let vendor = try? sysfs.read(.vendor, of: address),
            let device = try? sysfs.read(.device, of: address),
            let pciClass = try? sysfs.read(.pciClass, of: address),
            let driver = attempt({ () throws(SysfsError) in try sysfs.driver(of: address) }),
            let interfaces = try? sysfs.interfaces(of: address)
        else { return nil }
        let numVFs = (try? sysfs.readInt(.sriovNumVFs, of: address)) ?? 0
        let vfDevice = (try? sysfs.read(.sriovVFDevice, of: address)).map(Self.normalizedID)
        let autoprobe = (try? sysfs.read(.sriovDriversAutoprobe, of: address)).flatMap { text -> Bool? in
            text == "1" ? true : text == "0" ? false : nil
        }
        let isNetwork = pciClass.hasPrefix("0x02")
        let link = isNetwork ? interfaces.first.map { networkLink($0, on: address) } : nil
        return PhysicalFunction(
            address: address, vendorID: Self.normalizedID(vendor), deviceID: Self.normalizedID(device),
            pciClass: pciClass, driver: driver?.rawValue, interfaces: interfaces.map(\.rawValue),
            numaNode: numaNode(of: address), totalVFs: totalVFs, numVFs: numVFs, vfDeviceID: vfDevice,
            vfOffset: try? sysfs.readInt(.sriovOffset, of: address),
            vfStride: try? sysfs.readInt(.sriovStride, of: address), driversAutoprobe: autoprobe, link: link)
    }

    /// The VFs behind the PF's `virtfnN` links, ordered by index, leaving out those that vanish while read. Each
    /// device's folder is opened once and its files read relative to it: thousands of VFs, ten files each.
    func virtualFunctions(of pf: PCIAddress) -> [VirtualFunction] {
        guard let folder = try? sysfs.folder(of: pf), let indices = try? folder.virtfnIndices() else { return [] }
        return indices.compactMap { index -> VirtualFunction? in
            guard let target = try? folder.linkBasename(.virtfn(index)), let vf = PCIAddress(target) else {
                return nil
            }
            return virtualFunction(vf, index: index, pf: pf)
        }
    }

    func virtualFunction(_ vf: PCIAddress, index: Int, pf: PCIAddress) -> VirtualFunction? {
        guard let folder = try? sysfs.folder(of: vf), let vendor = try? folder.read(.vendor),
            let device = try? folder.read(.device),
            let driver = attempt({ () throws(SysfsError) in try folder.driver() }),
            let interfaces = try? folder.interfaces()
        else { return nil }
        let group = (try? folder.linkBasename(.iommuGroup)).flatMap { Int($0) }
        let node = (try? folder.readInt(.numaNode)).flatMap { $0 >= 0 ? $0 : nil }
        let result = VirtualFunction(
            index: index, address: vf, pf: pf, vendorID: Self.normalizedID(vendor),
            deviceID: Self.normalizedID(device), driver: driver?.rawValue, interface: interfaces.first?.rawValue,
            numaNode: node, iommuGroup: group)
        // Read last, by the whole path: a VF removed while its files were read is not reported half-read.
        return sysfs.deviceExists(vf) ? result : nil
    }

    package func networkLink(_ interface: InterfaceName, on device: PCIAddress) -> NetworkLink {
        let speed = (try? sysfs.read(.speed, of: interface, on: device)).flatMap { Int($0) }
        return NetworkLink(
            state: try? sysfs.read(.operstate, of: interface, on: device),
            speedMbps: speed.flatMap { $0 < 0 ? nil : $0 },
            mtu: (try? sysfs.read(.mtu, of: interface, on: device)).flatMap { Int($0) },
            mac: try? sysfs.read(.address, of: interface, on: device))
    }

    func numaNode(of device: PCIAddress) -> Int? {
        guard let node = try? sysfs.readInt(.numaNode, of: device), node >= 0 else { return nil }
        return node
    }

    /// `0x8086` and `10ca` both become four lower-case hex digits: `8086`, `10ca`.
    static func normalizedID(_ text: String) -> String {
        var digits = Substring(text.lowercased())
        if digits.hasPrefix("0x") { digits = digits.dropFirst(2) }
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// The value, or nil when reading it failed. Unlike `try?`, an optional value stays nested: a `DriverName?` result
/// of nil (no driver bound) is `.some(nil)`, not a failure.
func attempt<T>(_ body: () throws(SysfsError) -> T) -> T? {
    do {
        return try body()
    } catch {
        return nil
    }
}
