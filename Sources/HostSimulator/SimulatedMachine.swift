import FoundationEssentials
import Glibc
import Netlink
import SRIOVCore
import SRIOVHardware

/// The device model of the simulated kernel: adds and removes PCI devices, binds and unbinds drivers, enables and
/// disables VFs, by changing the tree the way the real kernel changes sysfs. It checks nothing: the checks the kernel
/// makes on a write live in `SimulatedKernel`.
struct SimulatedMachine: Sendable {
    let tree: SimulatedTree
    /// Nil when the tree has no `.simulator/host.json` (then no device matches a driver by id).
    let profiles: [SimulatedPFProfile]?

    /// Drivers that register a netdev for each device they bind.
    static let networkDrivers: Set<String> = ["i40e", "ice", "iavf", "mlx5_core", "igb", "igbvf", "ixgbe", "ixgbevf"]
    /// VFs get IOMMU groups from here up, above the numbers of the host's other devices.
    static let firstVFGroup = 128

    init(tree: SimulatedTree, profiles: [SimulatedPFProfile]) {
        self.tree = tree
        self.profiles = profiles
    }

    init(tree: SimulatedTree) {
        self.tree = tree
        if let text = tree.readText(".simulator/host.json"),
            let description = try? JSONDecoder().decode(SimulatedHostDescription.self, from: Data(text.utf8))
        {
            profiles = description.pfs
        } else {
            profiles = nil
        }
    }

    // MARK: - Reading the model

    func profile(ofPF pf: PCIAddress) -> SimulatedPFProfile? {
        profiles?.first { $0.address == pf }
    }

    /// The device's folder relative to the root, found through its `bus/pci/devices` link.
    func devicePath(_ device: PCIAddress) -> String? {
        guard let target = tree.readLink("bus/pci/devices/\(device)") else { return nil }
        let path = TreePath.resolve(target, from: "bus/pci/devices")
        return tree.isDirectory(path) ? path : nil
    }

    func driver(of device: PCIAddress) -> String? {
        guard let path = devicePath(device), let target = tree.readLink(path + "/driver") else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    func isPF(_ device: PCIAddress) -> Bool {
        guard let path = devicePath(device) else { return false }
        return tree.exists(path + "/sriov_totalvfs")
    }

    func physfn(of vf: PCIAddress) -> PCIAddress? {
        guard let path = devicePath(vf), let target = tree.readLink(path + "/physfn") else { return nil }
        return target.split(separator: "/").last.flatMap { PCIAddress($0) }
    }

    func driverOverride(of device: PCIAddress) -> String? {
        guard let path = devicePath(device), let text = tree.readLine(path + "/driver_override"),
            text != "(null)", !text.isEmpty
        else { return nil }
        return text
    }

    /// The VF addresses behind the PF's `virtfnN` links, by index.
    func virtfns(of pf: PCIAddress) -> [(index: Int, address: PCIAddress)] {
        guard let path = devicePath(pf) else { return [] }
        return tree.list(path).compactMap { name -> (Int, PCIAddress)? in
            guard name.hasPrefix("virtfn"), let index = Int(name.dropFirst(6)),
                let target = tree.readLink(path + "/" + name),
                let address = target.split(separator: "/").last.flatMap({ PCIAddress($0) })
            else { return nil }
            return (index, address)
        }.sorted { $0.0 < $1.0 }
    }

    func vfIndex(of vf: PCIAddress, pf: PCIAddress) -> Int? {
        virtfns(of: pf).first { $0.address == vf }?.index
    }

    /// The driver whose id table matches the device: the profile's PF driver, or its VF driver for a VF.
    func defaultDriver(of device: PCIAddress) -> String? {
        if let pf = physfn(of: device) { return profile(ofPF: pf)?.vfDriver }
        return profile(ofPF: device)?.driver
    }

    /// `pci_device_can_probe`: a VF probes only when its PF has autoprobe on or the VF has a driver_override.
    func canProbe(_ device: PCIAddress) -> Bool {
        guard let pf = physfn(of: device), let pfPath = devicePath(pf) else { return true }
        return tree.readLine(pfPath + "/sriov_drivers_autoprobe") == "1" || driverOverride(of: device) != nil
    }

    /// Whether the driver's probe of this device fails (QEMU's NVMe VFs under `nvme`: -ENODEV).
    func probeFails(_ device: PCIAddress, driver: String) -> Bool {
        guard let pf = physfn(of: device), let profile = profile(ofPF: pf) else { return false }
        return profile.vfProbeFails && driver == profile.vfDriver
    }

    func isRegistered(_ driver: String) -> Bool {
        tree.isDirectory("bus/pci/drivers/" + driver)
    }

    // MARK: - Devices

    func commonFiles(vendor: String, device: String, pciClass: String, numaNode: Int) -> [(String, String, mode_t)] {
        [
            ("vendor", vendor + "\n", 0o444), ("device", device + "\n", 0o444), ("class", pciClass + "\n", 0o444),
            ("numa_node", "\(numaNode)\n", 0o644), ("driver_override", "(null)\n", 0o644),
            ("subsystem_vendor", vendor + "\n", 0o444), ("subsystem_device", "0x0000\n", 0o444),
            ("revision", "0x02\n", 0o444), ("enable", "1\n", 0o644), ("local_cpulist", "0-7\n", 0o444),
            ("remove", "", 0o200), ("reset", "", 0o200),
        ]
    }

    /// Adds a device folder under `parent` with its files, its IOMMU group and its `bus/pci/devices` link.
    func addDevice(_ address: PCIAddress, in parent: String, files: [(String, String, mode_t)], iommuGroup: Int)
        throws(SysfsError)
    {
        let path = parent + "/" + address.description
        try tree.makeDirectories(path)
        for (name, content, mode) in files { try tree.putFile(path + "/" + name, content, mode: mode) }
        try tree.link(path + "/subsystem", to: TreePath.upToRoot(from: path) + "bus/pci")
        let group = "kernel/iommu_groups/\(iommuGroup)"
        try tree.makeDirectories(group + "/devices")
        if !tree.exists(group + "/type") { try tree.putFile(group + "/type", "DMA\n", mode: 0o644) }
        try tree.link(group + "/devices/" + address.description, to: "../../../../" + path)
        try tree.link(path + "/iommu_group", to: TreePath.upToRoot(from: path) + group)
        try tree.link("bus/pci/devices/" + address.description, to: "../../../" + path)
    }

    /// Removes a device, its links and its IOMMU group (when the group is left empty).
    func removeDevice(_ address: PCIAddress) {
        guard let path = devicePath(address) else { return }
        if let target = tree.readLink(path + "/iommu_group") {
            let group = TreePath.resolve(target, from: path)
            tree.remove(group + "/devices/" + address.description)
            if tree.list(group + "/devices").isEmpty { tree.remove(group) }
        }
        tree.remove("bus/pci/devices/" + address.description)
        tree.remove(path)
    }

    func lowestFreeGroup() -> Int {
        let used = Set(tree.list("kernel/iommu_groups").compactMap { Int($0) })
        var group = Self.firstVFGroup
        while used.contains(group) { group += 1 }
        return group
    }

    // MARK: - Drivers

    /// The netdev a driver registers for the device: the profile's name for a PF, `<pf-if>v<N>` for VF N.
    func interfaceName(for device: PCIAddress, driver: String) -> String? {
        guard Self.networkDrivers.contains(driver) else { return nil }
        if let pf = physfn(of: device) {
            guard let base = profile(ofPF: pf)?.interface, let index = vfIndex(of: device, pf: pf) else { return nil }
            return base + "v\(index)"
        }
        return profile(ofPF: device)?.interface
    }

    /// Binds without checks: the `driver` link, the driver's link to the device and the netdev if any.
    func bind(_ device: PCIAddress, to driver: String) throws(SysfsError) {
        guard let path = devicePath(device) else { return }
        let folder = "bus/pci/drivers/" + driver
        try tree.link(path + "/driver", to: TreePath.upToRoot(from: path) + folder)
        try tree.link(folder + "/" + device.description, to: "../../../../" + path)
        if let profile = profile(ofPF: device), driver == profile.driver {
            // The PF driver sets its own limit (pci_sriov_set_totalvfs).
            try tree.replaceFile(path + "/sriov_totalvfs", "\(profile.totalVFs)\n")
        }
        if let name = interfaceName(for: device, driver: driver) {
            try addInterface(name, to: device, at: path)
        }
    }

    private func addInterface(_ name: String, to device: PCIAddress, at path: String) throws(SysfsError) {
        let folder = path + "/net/" + name
        try tree.makeDirectories(folder)
        let pfProfile = profile(ofPF: device)
        let mac = pfProfile?.mac ?? Self.generatedMAC(device)
        let speed = pfProfile?.speedMbps ?? -1
        let files: [(String, String, mode_t)] = [
            ("address", mac + "\n", 0o444), ("operstate", (pfProfile == nil ? "down" : "up") + "\n", 0o444),
            ("speed", "\(speed)\n", 0o444), ("mtu", "1500\n", 0o644), ("type", "1\n", 0o444),
            ("carrier", (pfProfile == nil ? "0" : "1") + "\n", 0o644),
        ]
        for (file, content, mode) in files { try tree.putFile(folder + "/" + file, content, mode: mode) }
        try tree.link(folder + "/device", to: "../../../" + device.description)
        try tree.link("class/net/" + name, to: "../../" + folder)
    }

    /// A locally administered MAC derived from the address, as a VF driver picks a random one.
    static func generatedMAC(_ device: PCIAddress) -> String {
        let bytes = [0x02, 0x5f, Int(device.domain & 0xff), Int(device.bus), Int(device.device), Int(device.function)]
        return bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
    }

    /// Unbinds without checks. A PF's driver disables its VFs on the way out (as i40e, ice, mlx5_core and nvme do).
    func unbind(_ device: PCIAddress) throws(SysfsError) {
        guard let path = devicePath(device), let driver = driver(of: device) else { return }
        if isPF(device) { try disableVFs(device) }
        for name in tree.list(path + "/net") {
            tree.remove("class/net/" + name)
            tree.remove(path + "/net/" + name)
        }
        tree.remove(path + "/net")
        tree.remove("bus/pci/drivers/" + driver + "/" + device.description)
        tree.remove(path + "/driver")
        if let profile = profile(ofPF: device) {
            // Unbinding resets the limit to the device's own TotalVFs (pci_iov_remove).
            try tree.replaceFile(path + "/sriov_totalvfs", "\(profile.deviceTotalVFs ?? profile.totalVFs)\n")
        }
    }

    /// The kernel's probe of a device: the override driver if set, else the id-table match; nothing when the device
    /// may not probe, the driver is not registered or its probe fails.
    func probe(_ device: PCIAddress) throws(SysfsError) {
        guard driver(of: device) == nil, canProbe(device) else { return }
        guard let driver = driverOverride(of: device) ?? defaultDriver(of: device), isRegistered(driver),
            !probeFails(device, driver: driver)
        else { return }
        try bind(device, to: driver)
    }

    // MARK: - SR-IOV

    /// Creates `count` VFs (addresses from offset and stride), each with its links and IOMMU group, sets
    /// `sriov_numvfs`, then probes each VF (which binds it when autoprobe is on).
    func enableVFs(_ pf: PCIAddress, count: Int) throws(SysfsError) {
        guard let pfPath = devicePath(pf), count > 0 else { return }
        let parent = pfPath.split(separator: "/").dropLast().joined(separator: "/")
        let offset = tree.readInt(pfPath + "/sriov_offset") ?? 1
        let stride = tree.readInt(pfPath + "/sriov_stride") ?? 1
        let vendor = tree.readLine(pfPath + "/vendor") ?? "0xffff"
        let vfDevice = tree.readLine(pfPath + "/sriov_vf_device") ?? "ffff"
        let pciClass = tree.readLine(pfPath + "/class") ?? "0x000000"
        let numaNode = tree.readInt(pfPath + "/numa_node") ?? -1
        var created: [PCIAddress] = []
        for index in 0..<count {
            guard let vf = pf.advanced(byRoutingIDs: offset + stride * index) else { break }
            let files = commonFiles(vendor: vendor, device: "0x" + vfDevice, pciClass: pciClass, numaNode: numaNode)
            try addDevice(vf, in: parent, files: files, iommuGroup: lowestFreeGroup())
            let vfPath = parent + "/" + vf.description
            try tree.link(vfPath + "/physfn", to: "../" + pf.description)
            try tree.link(pfPath + "/virtfn\(index)", to: "../" + vf.description)
            created.append(vf)
        }
        try tree.replaceFile(pfPath + "/sriov_numvfs", "\(created.count)\n")
        for vf in created { try probe(vf) }
    }

    /// Removes every VF of the PF (links first, as `pci_iov_remove_virtfn` does) and sets `sriov_numvfs` to 0.
    /// The PF's netdevs forget their VF settings, as igb, i40e, ice and mlx5_core do when their VFs are destroyed
    /// (netdevsim keeps them; the simulated drivers are real ones).
    func disableVFs(_ pf: PCIAddress) throws(SysfsError) {
        guard let pfPath = devicePath(pf) else { return }
        if tree.readInt(pfPath + "/sriov_numvfs") != 0 {
            let settings = SimulatedRTNetlink(
                stateDirectory: HardwareHost.vfSettingsFolder(of: URL(fileURLWithPath: tree.root)), links: [])
            for name in tree.list(pfPath + "/net") { settings.forgetVFSettings(ofInterface: name) }
        }
        for (index, vf) in virtfns(of: pf).reversed() {
            tree.remove(pfPath + "/virtfn\(index)")
            if let vfPath = devicePath(vf) { tree.remove(vfPath + "/physfn") }
            try unbind(vf)
            removeDevice(vf)
        }
        try tree.replaceFile(pfPath + "/sriov_numvfs", "0\n")
    }
}
