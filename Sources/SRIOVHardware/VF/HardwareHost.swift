import Netlink

/// What plays the kernel for VF work: sysfs (drivers, VFs) and rtnetlink (VF settings on the PF's netdev). The
/// real kernel and the simulated one (`HardwareHost.simulated(at:)` in HostSimulator) are interchangeable behind it.
public struct HardwareHost: Sendable {
    public let sysfs: Sysfs
    public let netlink: RTNetlinkClient

    public init(sysfs: Sysfs, netlink: RTNetlinkClient) {
        self.sysfs = sysfs
        self.netlink = netlink
    }

    /// The real kernel: sysfs mounted at `sysfsRoot` and an `AF_NETLINK` socket (which can fail to open).
    public static func kernel(sysfsRoot: String = "/sys") throws(NetlinkError) -> HardwareHost {
        HardwareHost(sysfs: .kernel(root: sysfsRoot), netlink: RTNetlinkClient(transport: try KernelRTNetlink()))
    }
}
