import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware

/// One SR-IOV PF of the simulated host and the behaviour of its drivers. Kept in `.simulator/host.json` in the tree,
/// so the simulated kernel knows which driver each device matches.
public struct SimulatedPFProfile: Hashable, Sendable, Codable {
    public var address: PCIAddress
    /// The root complex folder under `devices/`, e.g. `pci0000:3a`.
    public var rootComplex: String
    /// The root port above the PF, e.g. `0000:3a:00.0`.
    public var bridge: PCIAddress
    /// Kernel form with `0x`, e.g. `0x8086`.
    public var vendor: String
    public var device: String
    public var pciClass: String
    public var driver: String
    /// `sriov_totalvfs` while the PF driver is bound (drivers may lower the device's own figure).
    public var totalVFs: Int
    /// `sriov_totalvfs` with no driver bound, when it differs: igb shows 8 unbound and 7 bound.
    public var deviceTotalVFs: Int?
    public var offset: Int
    public var stride: Int
    /// `sriov_vf_device` form, without `0x`, e.g. `154c`.
    public var vfDevice: String
    /// The driver whose id table matches the VFs.
    public var vfDriver: String
    /// True when the VF driver's probe fails (QEMU's NVMe VFs): autoprobed VFs stay unbound, and a `bind` write
    /// succeeds but leaves the VF unbound (nvme probes asynchronously; on the real kernel the VF shows the driver for
    /// a few seconds first).
    public var vfProbeFails: Bool
    /// The PF's netdev name; nil for non-network PFs.
    public var interface: String?
    public var mac: String?
    public var speedMbps: Int?
    public var numaNode: Int
    public var iommuGroup: Int
    /// VFs the default host starts with (a fresh tree only; a reboot leaves 0).
    public var initialVFs: Int

    public init(
        address: PCIAddress, rootComplex: String, bridge: PCIAddress, vendor: String, device: String,
        pciClass: String, driver: String, totalVFs: Int, offset: Int, stride: Int, vfDevice: String,
        vfDriver: String, vfProbeFails: Bool, interface: String?, mac: String?, speedMbps: Int?, numaNode: Int,
        iommuGroup: Int, initialVFs: Int, deviceTotalVFs: Int? = nil
    ) {
        self.address = address
        self.rootComplex = rootComplex
        self.bridge = bridge
        self.vendor = vendor
        self.device = device
        self.pciClass = pciClass
        self.driver = driver
        self.totalVFs = totalVFs
        self.deviceTotalVFs = deviceTotalVFs
        self.offset = offset
        self.stride = stride
        self.vfDevice = vfDevice
        self.vfDriver = vfDriver
        self.vfProbeFails = vfProbeFails
        self.interface = interface
        self.mac = mac
        self.speedMbps = speedMbps
        self.numaNode = numaNode
        self.iommuGroup = iommuGroup
        self.initialVFs = initialVFs
    }

    /// The folder of the PF relative to the sysfs root: `devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0`.
    var devicePath: String { "devices/\(rootComplex)/\(bridge)/\(address)" }

    var bridgePath: String { "devices/\(rootComplex)/\(bridge)" }
}

/// The file `.simulator/host.json`.
struct SimulatedHostDescription: Codable, Sendable {
    var version: Int
    var pfs: [SimulatedPFProfile]
}

/// A simulated host: a folder that has the shape of the real kernel's sysfs, played by `SimulatedKernel`.
///
/// Layout under DIR (the sysfs root), as on a real kernel:
/// ```
/// bus/pci/devices/<addr>            -> ../../../devices/pci0000:XX/<bridge>/<addr>
/// bus/pci/drivers/<drv>/{bind,unbind,new_id,remove_id,uevent}, <addr> -> ../../../../devices/...
/// bus/pci/drivers_probe, bus/pci/drivers_autoprobe
/// devices/pci0000:XX/<bridge>/<addr>/{vendor,device,class,numa_node,driver_override,sriov_*,...}
///     driver -> ../../../../bus/pci/drivers/<drv>, iommu_group -> ../../../../kernel/iommu_groups/N
///     virtfnN -> ../<vfaddr> (PF), physfn -> ../<pfaddr> (VF), net/<if>/{address,operstate,speed,mtu,...}
/// class/net/<if>                    -> ../../devices/.../<addr>/net/<if>
/// kernel/iommu_groups/N/devices/<addr> -> ../../../../devices/...
/// .simulator/host.json              the PF profiles (which driver matches what)
/// .simulator/faults.json            optional fault injection, see `SimulatedKernel`
/// .simulator/vf-creation-ms         optional per-driver VF creation delays, see `vfCreationDelays`
/// .simulator/vf-settings/           VF settings kept by the rtnetlink side; a reboot deletes it
/// ```
public enum SimulatedHost {
    /// The default host: Intel X710 and E810, NVIDIA ConnectX-6 Dx and a Samsung NVMe controller.
    public static let defaultProfiles: [SimulatedPFProfile] = [
        SimulatedPFProfile(
            address: PCIAddress("0000:3b:00.0")!, rootComplex: "pci0000:3a", bridge: PCIAddress("0000:3a:00.0")!,
            vendor: "0x8086", device: "0x1572", pciClass: "0x020000", driver: "i40e", totalVFs: 64, offset: 16,
            stride: 1, vfDevice: "154c", vfDriver: "iavf", vfProbeFails: false, interface: "ens785f0",
            mac: "3c:fd:fe:b4:6a:40", speedMbps: 10000, numaNode: 0, iommuGroup: 40, initialVFs: 4),
        SimulatedPFProfile(
            address: PCIAddress("0000:5e:00.0")!, rootComplex: "pci0000:5d", bridge: PCIAddress("0000:5d:00.0")!,
            vendor: "0x8086", device: "0x159b", pciClass: "0x020000", driver: "ice", totalVFs: 128, offset: 8,
            stride: 1, vfDevice: "1889", vfDriver: "iavf", vfProbeFails: false, interface: "ens801f0",
            mac: "b4:96:91:a7:3c:10", speedMbps: 25000, numaNode: 0, iommuGroup: 52, initialVFs: 0),
        SimulatedPFProfile(
            address: PCIAddress("0000:af:00.0")!, rootComplex: "pci0000:ae", bridge: PCIAddress("0000:ae:00.0")!,
            vendor: "0x15b3", device: "0x101d", pciClass: "0x020000", driver: "mlx5_core", totalVFs: 8, offset: 2,
            stride: 1, vfDevice: "101e", vfDriver: "mlx5_core", vfProbeFails: false, interface: "ens3f0np0",
            mac: "0c:42:a1:5e:77:d2", speedMbps: 100000, numaNode: 1, iommuGroup: 88, initialVFs: 2),
        SimulatedPFProfile(
            address: PCIAddress("0000:d8:00.0")!, rootComplex: "pci0000:d7", bridge: PCIAddress("0000:d7:00.0")!,
            vendor: "0x144d", device: "0xa824", pciClass: "0x010802", driver: "nvme", totalVFs: 4, offset: 1,
            stride: 1, vfDevice: "a824", vfDriver: "nvme", vfProbeFails: true, interface: nil, mac: nil,
            speedMbps: nil, numaNode: 1, iommuGroup: 101, initialVFs: 0),
    ]

    /// An Intel 82576 shaped like the real-kernel lab's (0000:02:00.0, eth0, igb with igbvf VFs): its rtnetlink
    /// profile refuses what the real igb refuses (min_tx_rate, link state, 802.1ad). Not in the default host;
    /// tests add it.
    public static let igb82576Profile = SimulatedPFProfile(
        address: PCIAddress("0000:02:00.0")!, rootComplex: "pci0000:00", bridge: PCIAddress("0000:00:01.0")!,
        vendor: "0x8086", device: "0x10c9", pciClass: "0x020000", driver: "igb", totalVFs: 7, offset: 128,
        stride: 2, vfDevice: "10ca", vfDriver: "igbvf", vfProbeFails: false, interface: "eth0",
        mac: "52:54:00:12:34:56", speedMbps: 1000, numaNode: 0, iommuGroup: 10, initialVFs: 4, deviceTotalVFs: 8)

    /// A large host for benchmarks: `pfCount` E810-like PFs (ice, iavf VFs), each with `vfsPerPF` VFs enabled,
    /// on buses 0x10, 0x20, ... and NUMA nodes 0 and 1 in turn.
    public static func scaledProfiles(pfCount: Int, vfsPerPF: Int) -> [SimulatedPFProfile] {
        return (0..<pfCount).map { n in
            let bus = UInt8(0x10 + n * 4)
            return SimulatedPFProfile(
                address: PCIAddress(domain: 0, bus: bus, device: 0, function: 0),
                rootComplex: "pci0000:\((Int(bus) - 1).zeroPadded(toWidth: 2, radix: 16))",
                bridge: PCIAddress(domain: 0, bus: bus - 1, device: 0, function: 0), vendor: "0x8086",
                device: "0x159b", pciClass: "0x020000", driver: "ice", totalVFs: max(vfsPerPF, 1), offset: 8, stride: 1,
                vfDevice: "1889", vfDriver: "iavf", vfProbeFails: false, interface: "ens\(n)f0",
                mac: "b4:96:91:a7:\(n.zeroPadded(toWidth: 2, radix: 16)):10", speedMbps: 25000, numaNode: n % 2,
                iommuGroup: 200 + n * 300, initialVFs: vfsPerPF)
        }
    }

    /// Drivers registered on the simulated PCI bus (a folder under `bus/pci/drivers` each), besides the PF and VF
    /// drivers of the profiles.
    static let registeredDrivers = ["vfio-pci", "pcieport"]

    /// Creates DIR if absent and writes the default host there, unless DIR already holds a tree (then it is left
    /// alone, so the simulated state survives daemon restarts).
    public static func ensureDefault(at dir: URL) throws {
        try ensure(at: dir, profiles: defaultProfiles)
    }

    /// Like `ensureDefault`, with other PFs.
    public static func ensure(at dir: URL, profiles: [SimulatedPFProfile]) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tree = SimulatedTree(root: dir.path)
        if tree.exists("bus/pci/devices") {
            try SimulatedKernel(root: dir).finishInterruptedChanges()
            return
        }
        try build(tree, profiles: profiles, withInitialVFs: true)
    }

    /// What a host reboot leaves: the same devices with 0 VFs, default drivers, autoprobe on, no overrides and no VF
    /// settings (`.simulator/vf-settings/` is deleted). Fault injection (`.simulator/faults.json`) stays.
    public static func reboot(at dir: URL) throws {
        let tree = SimulatedTree(root: dir.path)
        let profiles = SimulatedMachine(tree: tree).profiles ?? defaultProfiles
        for top in ["bus", "devices", "class", "kernel", ".simulator/vf-settings"] { tree.remove(top) }
        try build(tree, profiles: profiles, withInitialVFs: false)
    }

    static func build(_ tree: SimulatedTree, profiles: [SimulatedPFProfile], withInitialVFs: Bool) throws {
        try tree.makeDirectories(".simulator")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let description = SimulatedHostDescription(version: 1, pfs: profiles)
        try tree.putFile(
            ".simulator/host.json", String(decoding: try encoder.encode(description), as: UTF8.self) + "\n",
            mode: 0o644)

        try tree.makeDirectories("bus/pci/devices")
        try tree.makeDirectories("class/net")
        try tree.makeDirectories("kernel/iommu_groups")
        try tree.putFile("bus/pci/drivers_probe", "", mode: 0o200)
        try tree.putFile("bus/pci/drivers_autoprobe", "1\n", mode: 0o644)
        let drivers = Set(registeredDrivers + profiles.flatMap { [$0.driver, $0.vfDriver] })
        for driver in drivers.sorted() {
            let folder = "bus/pci/drivers/" + driver
            try tree.makeDirectories(folder)
            for control in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
                try tree.putFile(folder + "/" + control, "", mode: 0o200)
            }
        }

        let machine = SimulatedMachine(tree: tree, profiles: profiles)
        // A host bridge with no SR-IOV, which discovery must pass over.
        try machine.addDevice(
            PCIAddress("0000:00:00.0")!, in: "devices/pci0000:00",
            files: machine.commonFiles(vendor: "0x8086", device: "0x2020", pciClass: "0x060000", numaNode: 0),
            iommuGroup: 1)
        for profile in profiles {
            try tree.makeDirectories("devices/" + profile.rootComplex)
            try machine.addDevice(
                profile.bridge, in: "devices/" + profile.rootComplex,
                files: machine.commonFiles(
                    vendor: "0x8086", device: "0x2030", pciClass: "0x060400", numaNode: profile.numaNode),
                iommuGroup: profile.iommuGroup - 1)
            try machine.bind(profile.bridge, to: "pcieport")
            var files = machine.commonFiles(
                vendor: profile.vendor, device: profile.device, pciClass: profile.pciClass,
                numaNode: profile.numaNode)
            files += [
                ("sriov_totalvfs", "\(profile.totalVFs)\n", 0o444), ("sriov_numvfs", "0\n", 0o644),
                ("sriov_offset", "\(profile.offset)\n", 0o444), ("sriov_stride", "\(profile.stride)\n", 0o444),
                ("sriov_vf_device", profile.vfDevice + "\n", 0o444), ("sriov_drivers_autoprobe", "1\n", 0o644),
            ]
            try machine.addDevice(profile.address, in: profile.bridgePath, files: files, iommuGroup: profile.iommuGroup)
            try machine.bind(profile.address, to: profile.driver)
        }
        if withInitialVFs {
            for profile in profiles where profile.initialVFs > 0 {
                try machine.enableVFs(profile.address, count: profile.initialVFs)
            }
        }
    }
}

extension SimulatedHost {
    /// The VF creation delays measured on real drivers, per driver, in milliseconds per VF: an i40e (X710) takes
    /// about 22 s to create 64 VFs (nmstate #1704).
    public static let realDriverDelays = ["i40e": 344]

    /// Makes drivers of the simulated host in `dir` take `delays[driver]` milliseconds per VF they create (an empty
    /// map: at once, as by default), so tests and benchmarks see slow hardware.
    public static func setVFCreationDelays(_ delays: [String: Int], at dir: URL) throws {
        let path = dir.appendingPathComponent(".simulator/vf-creation-ms").path
        guard !delays.isEmpty else {
            unlink(path)
            return
        }
        let text = delays.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
        try SimulatedTree(root: dir.path).putFile(".simulator/vf-creation-ms", text, mode: 0o644)
    }

    /// The delays `setVFCreationDelays` set, by driver.
    static func vfCreationDelays(in tree: SimulatedTree) -> [String: Int] {
        guard let text = tree.readText(".simulator/vf-creation-ms") else { return [:] }
        var delays: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let milliseconds = Int(fields[1]) { delays[String(fields[0])] = milliseconds }
        }
        return delays
    }
}
