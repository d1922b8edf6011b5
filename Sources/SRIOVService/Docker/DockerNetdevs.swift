import Glibc
import Netlink
import SRIOVCore

/// The VF netdevs in sriovd's network namespace that a Docker endpoint configures before libnetwork moves them
/// (its MTU) and puts back after (MTU and MAC). These are links of the host, reached over the kernel's rtnetlink
/// also when the PCI side is simulated: the tests give simulated VFs real (veth) netdevs.
public struct DockerNetdevs: Sendable {
    /// A netdev's index, MTU and MAC; nil when no link has that name here.
    let read: @Sendable (String) throws(NetlinkError) -> (index: Int32, mtu: Int, mac: String?)?
    /// Sets the MTU and/or the MAC of link `index`.
    let write: @Sendable (Int32, Int?, String?) throws(NetlinkError) -> Void

    /// The kernel's links, each call on a fresh rtnetlink socket.
    public static let kernel = DockerNetdevs(
        read: { name throws(NetlinkError) in
            let client = RTNetlinkClient(transport: try KernelRTNetlink())
            do throws(NetlinkError) {
                let link = try client.basicLink(.name(name))
                return (link.index, Int(link.mtu ?? 1500), link.address.map(formatMAC))
            } catch {
                if error.errno == ENODEV { return nil }
                throw error
            }
        },
        write: { index, mtu, mac throws(NetlinkError) in
            let client = RTNetlinkClient(transport: try KernelRTNetlink())
            let address = mac.map { $0.split(separator: ":").compactMap { UInt8($0, radix: 16) } }
            try client.setLink(index: index, LinkChange(mtu: mtu.map(UInt32.init), address: address))
        })
}
