import Glibc
import SRIOVCore

/// The host namespace's name for a VF's netdev, read where the kernel lists it: `/sys/bus/pci/devices/<vf>/net/`.
/// The plugin runs in the host namespace, so this sysfs shows the host's netdevs only.
enum VFNetdev {
    static let devices = "/sys/bus/pci/devices/"

    /// The netdev's name now, or nil when the VF has none in the host namespace (or is not a PCI device here).
    static func name(of vf: String) -> String? {
        guard let address = PCIAddress(vf.lowercased()), let folder = opendir(devices + "\(address)/net") else {
            return nil
        }
        defer { closedir(folder) }
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { return name }
        }
        return nil
    }

    /// Waits up to `timeout` for the kernel to give a VF's netdev back to the host namespace (a namespace's end
    /// returns its physical netdevs from a work queue, shortly after the last reference goes), polling every 50 ms.
    /// Nil at once for an address that is not a PCI device here.
    static func awaitName(of vf: String, timeout: Duration = .seconds(2)) -> String? {
        guard let address = PCIAddress(vf.lowercased()), access(devices + "\(address)", F_OK) == 0 else { return nil }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let name = name(of: vf) { return name }
            guard clock.now < deadline else { return nil }
            usleep(50_000)
        }
    }
}
