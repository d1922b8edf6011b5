import Glibc
import SRIOVCore

/// A kernel driver name, checked to be one safe path component: `[A-Za-z0-9_.-]+`, at most 64 characters, and
/// neither `.` nor `..`.
public struct DriverName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(_ text: some StringProtocol) {
        guard let name = checkedComponent(text, maxLength: 64) else { return nil }
        rawValue = name
    }

    /// `vfio-pci`, the driver that hands a VF to VMs and DPDK.
    public static let vfioPCI = DriverName("vfio-pci")!

    public var description: String { rawValue }
}

/// A network interface name, checked to be one safe path component: `[A-Za-z0-9_.-]+`, at most 15 characters
/// (`IFNAMSIZ` - 1), and neither `.` nor `..`.
public struct InterfaceName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(_ text: some StringProtocol) {
        guard let name = checkedComponent(text, maxLength: 15) else { return nil }
        rawValue = name
    }

    public var description: String { rawValue }

    public static func < (lhs: InterfaceName, rhs: InterfaceName) -> Bool { lhs.rawValue < rhs.rawValue }
}

private func checkedComponent(_ text: some StringProtocol, maxLength: Int) -> String? {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty, bytes.count <= maxLength else { return nil }
    let allowed = bytes.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
    guard allowed else { return nil }
    let name = String(decoding: bytes, as: UTF8.self)
    guard name != "." && name != ".." else { return nil }
    return name
}

/// The one accessor through which all sysfs I/O goes, over a backend that plays the kernel.
///
/// Every path is built in this file, only from validated inputs: `PCIAddress`, the closed enums of attribute and link
/// names, `DriverName` and `InterfaceName`. No method takes a free-form path. A `DeviceFolder` reads the same files
/// relative to the device's folder opened once (the names it passes come from the same enums).
public struct Sysfs: Sendable {
    /// A PCI device's attribute file under `bus/pci/devices/<address>/`.
    public enum DeviceAttribute: String, CaseIterable, Hashable, Sendable {
        case vendor
        case device
        case pciClass = "class"
        case numaNode = "numa_node"
        case driverOverride = "driver_override"
        case sriovTotalVFs = "sriov_totalvfs"
        case sriovNumVFs = "sriov_numvfs"
        case sriovOffset = "sriov_offset"
        case sriovStride = "sriov_stride"
        case sriovVFDevice = "sriov_vf_device"
        case sriovDriversAutoprobe = "sriov_drivers_autoprobe"
    }

    /// A symlink in a PCI device's folder.
    public enum DeviceLink: Hashable, Sendable {
        case driver
        case physfn
        case iommuGroup
        /// `virtfnN`, N ≥ 0.
        case virtfn(Int)

        var component: String {
            switch self {
            case .driver: return "driver"
            case .physfn: return "physfn"
            case .iommuGroup: return "iommu_group"
            case .virtfn(let index): return "virtfn\(max(0, index))"
            }
        }
    }

    /// An attribute file of a netdev under `<device>/net/<interface>/`.
    public enum NetAttribute: String, CaseIterable, Hashable, Sendable {
        case address
        case operstate
        case speed
        case mtu
    }

    /// A write-only file of a PCI driver under `bus/pci/drivers/<driver>/`.
    public enum DriverControl: String, CaseIterable, Hashable, Sendable {
        case bind
        case unbind
    }

    public let backend: any SysfsBackend

    public init(backend: any SysfsBackend) {
        self.backend = backend
    }

    /// The real kernel's sysfs at `/sys` (or another mount point).
    public static func kernel(root: String = "/sys") -> Sysfs {
        Sysfs(backend: KernelSysfs(root: root))
    }

    // MARK: - Paths (the only place they are built)

    static let devicesFolder = "bus/pci/devices"
    static let driversProbe = "bus/pci/drivers_probe"

    static func path(of device: PCIAddress) -> String { devicesFolder + "/" + device.description }

    static func path(_ attribute: DeviceAttribute, of device: PCIAddress) -> String {
        path(of: device) + "/" + attribute.rawValue
    }

    static func path(_ link: DeviceLink, of device: PCIAddress) -> String {
        path(of: device) + "/" + link.component
    }

    static func netFolder(of device: PCIAddress) -> String { path(of: device) + "/net" }

    static func path(_ attribute: NetAttribute, of interface: InterfaceName, on device: PCIAddress) -> String {
        netFolder(of: device) + "/" + interface.rawValue + "/" + attribute.rawValue
    }

    static func path(_ control: DriverControl, of driver: DriverName) -> String {
        "bus/pci/drivers/" + driver.rawValue + "/" + control.rawValue
    }

    // MARK: - Reads

    /// Every PCI device the kernel lists under `bus/pci/devices`; names that are not PCI addresses are skipped.
    public func pciDevices() throws(SysfsError) -> [PCIAddress] {
        try backend.listDirectory(Self.devicesFolder).compactMap { PCIAddress($0) }.sorted()
    }

    /// Whether the device is (still) there.
    public func deviceExists(_ device: PCIAddress) -> Bool {
        backend.fileExists(Self.path(of: device))
    }

    /// Whether the device has this attribute file.
    public func hasAttribute(_ attribute: DeviceAttribute, of device: PCIAddress) -> Bool {
        backend.fileExists(Self.path(attribute, of: device))
    }

    /// An attribute's content without its trailing newline.
    public func read(_ attribute: DeviceAttribute, of device: PCIAddress) throws(SysfsError) -> String {
        trimmed(try backend.readFile(Self.path(attribute, of: device)))
    }

    /// An attribute read as a decimal integer; nil when it does not parse.
    public func readInt(_ attribute: DeviceAttribute, of device: PCIAddress) throws(SysfsError) -> Int? {
        Int(try read(attribute, of: device))
    }

    /// The raw target of one of the device's links.
    public func linkTarget(_ link: DeviceLink, of device: PCIAddress) throws(SysfsError) -> String {
        try backend.readLink(Self.path(link, of: device))
    }

    /// The last component of a link's target: a driver name, a PCI address, an IOMMU group number.
    public func linkBasename(_ link: DeviceLink, of device: PCIAddress) throws(SysfsError) -> String {
        let target = try linkTarget(link, of: device)
        return target.split(separator: "/").last.map(String.init) ?? ""
    }

    /// The bound driver, nil when the device has none (ENOENT on the `driver` link).
    public func driver(of device: PCIAddress) throws(SysfsError) -> DriverName? {
        do {
            return DriverName(try linkBasename(.driver, of: device))
        } catch {
            if error.isNotFound && deviceExists(device) { return nil }
            throw error
        }
    }

    /// The N of every `virtfnN` link of a PF, sorted.
    public func virtfnIndices(of pf: PCIAddress) throws(SysfsError) -> [Int] {
        Self.virtfnIndices(in: try backend.listDirectory(Self.path(of: pf)))
    }

    /// The N of every `virtfnN` among a device folder's names, sorted.
    static func virtfnIndices(in names: [String]) -> [Int] {
        names.compactMap { name -> Int? in
            guard name.hasPrefix("virtfn") else { return nil }
            let digits = name.dropFirst("virtfn".count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(digits)
        }.sorted()
    }

    /// Netdev names under the device's `net/` folder, sorted; empty when it has none.
    public func interfaces(of device: PCIAddress) throws(SysfsError) -> [InterfaceName] {
        do {
            return try backend.listDirectory(Self.netFolder(of: device)).compactMap { InterfaceName($0) }.sorted()
        } catch {
            if error.isNotFound && deviceExists(device) { return [] }
            throw error
        }
    }

    /// A netdev attribute, read through the device's `net/<interface>/` folder, without its trailing newline.
    public func read(_ attribute: NetAttribute, of interface: InterfaceName, on device: PCIAddress)
        throws(SysfsError) -> String
    {
        trimmed(try backend.readFile(Self.path(attribute, of: interface, on: device)))
    }

    // MARK: - Writes

    /// Writes a device attribute (one `write()`; the kernel's errno comes back as the error).
    public func write(_ attribute: DeviceAttribute, of device: PCIAddress, _ value: String) throws(SysfsError) {
        try backend.writeFile(Self.path(attribute, of: device), value)
    }

    /// Writes the device's address to `bus/pci/drivers/<driver>/bind` or `unbind`.
    public func write(_ control: DriverControl, of driver: DriverName, device: PCIAddress) throws(SysfsError) {
        try backend.writeFile(Self.path(control, of: driver), device.description)
    }

    /// Writes the device's address to `bus/pci/drivers_probe`.
    public func probe(_ device: PCIAddress) throws(SysfsError) {
        try backend.writeFile(Self.driversProbe, device.description)
    }

    private func trimmed(_ text: String) -> String { Self.trimmed(text) }

    static func trimmed(_ text: String) -> String {
        var result = Substring(text)
        while let last = result.last, last == "\n" || last == " " || last == "\0" { result.removeLast() }
        return String(result)
    }
}

extension Sysfs {
    /// One PCI device's folder, `bus/pci/devices/<address>`, opened once when the backend can (`KernelSysfs` and the
    /// simulated host can): its attributes and links are then read relative to it, not each by its whole path. Over
    /// a backend that reads by whole paths only, it reads those paths; the answers and errors are the same.
    ///
    /// Its entry names come only from the closed enums of `Sysfs`. Keep it for one pass over the device: a device
    /// removed meanwhile makes its reads fail, as path reads would.
    public struct DeviceFolder {
        public let sysfs: Sysfs
        public let device: PCIAddress
        let handle: SysfsFolderHandle?

        /// The content of `name` in the folder, read relative to the open folder or by its whole path.
        func readFile(_ name: String) throws(SysfsError) -> String {
            if let handle { return try handle.readFile(name) }
            return try sysfs.backend.readFile(Sysfs.path(of: device) + "/" + name)
        }

        func readLink(_ name: String) throws(SysfsError) -> String {
            if let handle { return try handle.readLink(name) }
            return try sysfs.backend.readLink(Sysfs.path(of: device) + "/" + name)
        }

        func listDirectory(_ name: String) throws(SysfsError) -> [String] {
            if let handle { return try handle.listDirectory(name) }
            return try sysfs.backend.listDirectory(Sysfs.path(of: device) + (name.isEmpty ? "" : "/" + name))
        }

        /// As `Sysfs.read(_:of:)`.
        public func read(_ attribute: DeviceAttribute) throws(SysfsError) -> String {
            Sysfs.trimmed(try readFile(attribute.rawValue))
        }

        /// As `Sysfs.readInt(_:of:)`.
        public func readInt(_ attribute: DeviceAttribute) throws(SysfsError) -> Int? {
            Int(try read(attribute))
        }

        /// As `Sysfs.linkBasename(_:of:)`.
        public func linkBasename(_ link: DeviceLink) throws(SysfsError) -> String {
            let target = try readLink(link.component)
            return target.split(separator: "/").last.map(String.init) ?? ""
        }

        /// As `Sysfs.driver(of:)`.
        public func driver() throws(SysfsError) -> DriverName? {
            do {
                return DriverName(try linkBasename(.driver))
            } catch {
                if error.isNotFound && sysfs.deviceExists(device) { return nil }
                throw error
            }
        }

        /// As `Sysfs.virtfnIndices(of:)`.
        public func virtfnIndices() throws(SysfsError) -> [Int] {
            Sysfs.virtfnIndices(in: try listDirectory(""))
        }

        /// As `Sysfs.interfaces(of:)`.
        public func interfaces() throws(SysfsError) -> [InterfaceName] {
            do {
                return try listDirectory("net").compactMap { InterfaceName($0) }.sorted()
            } catch {
                if error.isNotFound && sysfs.deviceExists(device) { return [] }
                throw error
            }
        }
    }

    /// The device's folder, opened once when the backend can; ENOENT when the device is gone.
    public func folder(of device: PCIAddress) throws(SysfsError) -> DeviceFolder {
        DeviceFolder(sysfs: self, device: device, handle: try backend.openFolder(Self.path(of: device)))
    }
}
