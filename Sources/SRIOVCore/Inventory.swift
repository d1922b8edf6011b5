/// The network side of a PF as the kernel reports it under `class/net/<name>`.
public struct NetworkLink: Hashable, Sendable, Codable {
    /// `operstate`: `up`, `down`, `unknown`, ...
    public var state: String?
    /// Mbit/s, or nil when the kernel reports none (link down gives -1 or EINVAL).
    public var speedMbps: Int?
    public var mtu: Int?
    public var mac: String?

    public init(state: String?, speedMbps: Int?, mtu: Int?, mac: String?) {
        self.state = state
        self.speedMbps = speedMbps
        self.mtu = mtu
        self.mac = mac
    }

    enum CodingKeys: String, CodingKey {
        case state
        case speedMbps = "speed_mbps"
        case mtu
        case mac
    }
}

/// A PCI physical function with SR-IOV capability (`sriov_totalvfs` > 0), network or not.
public struct PhysicalFunction: Hashable, Sendable, Codable {
    public var address: PCIAddress
    public var vendorID: String
    public var deviceID: String
    /// The PCI class code, e.g. `0x020000`.
    public var pciClass: String
    /// The bound driver's name, nil when unbound.
    public var driver: String?
    /// Netdev names under the device's `net/` folder; empty for non-network PFs.
    public var interfaces: [String]
    /// nil when the kernel reports -1 (no NUMA affinity).
    public var numaNode: Int?
    public var totalVFs: Int
    public var numVFs: Int
    public var vfDeviceID: String?
    public var vfOffset: Int?
    public var vfStride: Int?
    public var driversAutoprobe: Bool?
    /// Link details of the first netdev, for network PFs.
    public var link: NetworkLink?

    public init(
        address: PCIAddress, vendorID: String, deviceID: String, pciClass: String, driver: String?,
        interfaces: [String], numaNode: Int?, totalVFs: Int, numVFs: Int, vfDeviceID: String?, vfOffset: Int?,
        vfStride: Int?, driversAutoprobe: Bool?, link: NetworkLink?
    ) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.pciClass = pciClass
        self.driver = driver
        self.interfaces = interfaces
        self.numaNode = numaNode
        self.totalVFs = totalVFs
        self.numVFs = numVFs
        self.vfDeviceID = vfDeviceID
        self.vfOffset = vfOffset
        self.vfStride = vfStride
        self.driversAutoprobe = driversAutoprobe
        self.link = link
    }

    /// True for PCI class 0x02xxxx (network controllers).
    public var isNetwork: Bool { pciClass.hasPrefix("0x02") }

    enum CodingKeys: String, CodingKey {
        case address
        case vendorID = "vendor_id"
        case deviceID = "device_id"
        case pciClass = "class"
        case driver
        case interfaces
        case numaNode = "numa_node"
        case totalVFs = "total_vfs"
        case numVFs = "num_vfs"
        case vfDeviceID = "vf_device_id"
        case vfOffset = "offset"
        case vfStride = "stride"
        case driversAutoprobe = "drivers_autoprobe"
        case link
    }
}

/// A virtual function, found through its PF's `virtfnN` link.
public struct VirtualFunction: Hashable, Sendable, Codable {
    /// N in the PF's `virtfnN`.
    public var index: Int
    public var address: PCIAddress
    public var pf: PCIAddress
    public var vendorID: String
    public var deviceID: String
    public var driver: String?
    /// The VF's own netdev name when a network VF driver is bound.
    public var interface: String?
    public var numaNode: Int?
    public var iommuGroup: Int?

    public init(
        index: Int, address: PCIAddress, pf: PCIAddress, vendorID: String, deviceID: String, driver: String?,
        interface: String?, numaNode: Int?, iommuGroup: Int?
    ) {
        self.index = index
        self.address = address
        self.pf = pf
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.driver = driver
        self.interface = interface
        self.numaNode = numaNode
        self.iommuGroup = iommuGroup
    }

    enum CodingKeys: String, CodingKey {
        case index
        case address
        case pf
        case vendorID = "vendor_id"
        case deviceID = "device_id"
        case driver
        case interface
        case numaNode = "numa_node"
        case iommuGroup = "iommu_group"
    }
}

/// One PF with its VFs, as one scan saw them.
public struct PFSnapshot: Hashable, Sendable {
    public var pf: PhysicalFunction
    /// Ordered by index.
    public var vfs: [VirtualFunction]

    public init(pf: PhysicalFunction, vfs: [VirtualFunction]) {
        self.pf = pf
        self.vfs = vfs
    }
}

/// Every SR-IOV PF of a host with its VFs, ordered by PF address.
public struct HostSnapshot: Hashable, Sendable {
    public var pfs: [PFSnapshot]

    public init(pfs: [PFSnapshot]) {
        self.pfs = pfs.sorted { $0.pf.address < $1.pf.address }
    }
}

// Absent values are written as JSON null rather than left out, so clients see every field of the schema.
extension NetworkLink {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([.state: state, .speedMbps: speedMbps, .mtu: mtu, .mac: mac])
    }
}

extension PhysicalFunction {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .address: address, .vendorID: vendorID, .deviceID: deviceID, .pciClass: pciClass, .driver: driver,
            .interfaces: interfaces, .numaNode: numaNode, .totalVFs: totalVFs, .numVFs: numVFs,
            .vfDeviceID: vfDeviceID, .vfOffset: vfOffset, .vfStride: vfStride, .driversAutoprobe: driversAutoprobe,
            .link: link,
        ])
    }
}

extension VirtualFunction {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .index: index, .address: address, .pf: pf, .vendorID: vendorID, .deviceID: deviceID, .driver: driver,
            .interface: interface, .numaNode: numaNode, .iommuGroup: iommuGroup,
        ])
    }
}
