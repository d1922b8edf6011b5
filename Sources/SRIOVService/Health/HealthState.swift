import FoundationEssentials
import Netlink
import SRIOVCore
import Synchronization

/// What the PFs' drivers last reported for their VFs over rtnetlink, stats included (`RTM_GETLINK` without
/// `RTEXT_FILTER_SKIP_STATS`), by PF. Refreshed by the health sweep; read by `/metrics` and the VF views, so
/// neither asks the kernel on the event loop.
final class VFTelemetry: Sendable {
    private let readings = Mutex<[PCIAddress: [Int: VFLinkInfo]]>([:])

    /// Reads every network PF that has VFs, one request per PF; a PF that cannot be read keeps no reading.
    func refresh(_ snapshot: InventorySnapshot, netlink: RTNetlinkClient) {
        var fresh: [PCIAddress: [Int: VFLinkInfo]] = [:]
        for entry in snapshot.host.pfs where !entry.vfs.isEmpty {
            if let reading = Self.read(entry.pf, netlink: netlink) { fresh[entry.pf.address] = reading }
        }
        readings.withLock { $0 = fresh }
    }

    /// Reads one PF now and keeps the reading.
    func refresh(pf: PhysicalFunction, netlink: RTNetlinkClient) -> [Int: VFLinkInfo]? {
        let reading = Self.read(pf, netlink: netlink)
        readings.withLock { $0[pf.address] = reading }
        return reading
    }

    private static func read(_ pf: PhysicalFunction, netlink: RTNetlinkClient) -> [Int: VFLinkInfo]? {
        guard let netdev = pf.interfaces.first, let link = try? netlink.linkWithStats(.name(netdev)) else {
            return nil
        }
        return Dictionary(link.vfs.map { ($0.index, $0) }, uniquingKeysWith: { $1 })
    }

    /// The last reading of one VF, nil when its PF was not read.
    func info(pf: PCIAddress, vf index: Int) -> VFLinkInfo? {
        readings.withLock { $0[pf]?[index] }
    }

    /// Every reading, by PF.
    var all: [PCIAddress: [Int: VFLinkInfo]] { readings.withLock { $0 } }
}

/// The health last seen of every PF and VF, to tell changes. Nil until the first sweep, which records without
/// reporting.
final class HealthLedger: Sendable {
    private let last = Mutex<[PCIAddress: Health]?>(nil)

    /// Replaces the ledger with `now`, returning the devices whose health differs from the previous sweep's (devices
    /// that appeared or vanished in between are not changes: their own events say so).
    func update(_ now: [PCIAddress: Health]) -> [(address: PCIAddress, from: Health, to: Health)] {
        last.withLock { last in
            defer { last = now }
            guard let previous = last else { return [] }
            return now.compactMap { address, health in
                guard let before = previous[address], before != health else { return nil }
                return (address, before, health)
            }.sorted { $0.address < $1.address }
        }
    }
}
