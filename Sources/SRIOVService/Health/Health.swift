import FoundationEssentials
import Netlink
import SRIOVCore
import Synchronization

/// How usable a PF or VF is now: `ok`, `degraded` (usable, but something is wrong: a link down, settings not
/// yet restored) or `unavailable` (cannot be used as it is: no driver, its netdev missing), with the reasons.
public struct Health: Sendable, Hashable, Encodable {
    public enum Status: String, Sendable, Hashable, Encodable, CaseIterable {
        case ok, degraded, unavailable
    }

    /// Why a device is not `ok`, in the order the API lists them.
    public enum Reason: String, Sendable, Hashable, Encodable, CaseIterable, Comparable {
        /// The device has no driver bound (unavailable).
        case noDriver = "no_driver"
        /// A network device's driver is bound but it has no netdev (unavailable).
        case netdevMissing = "netdev_missing"
        /// The PF's link is down: every VF of it is cut off (degraded).
        case pfLinkDown = "pf_link_down"
        /// The PF forces the VF's link down (`link_state disable`) (degraded).
        case vfLinkDown = "vf_link_down"
        /// Released but not restored, or settings that are not its baseline: kept out of the pool (degraded).
        case dirty

        var makesUnavailable: Bool { self == .noDriver || self == .netdevMissing }

        public static func < (lhs: Reason, rhs: Reason) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    public var status: Status
    public var reasons: [Reason]

    public init(_ reasons: Set<Reason>) {
        self.reasons = reasons.sorted()
        status =
            reasons.contains(where: \.makesUnavailable) ? .unavailable : reasons.isEmpty ? .ok : .degraded
    }

    public static let ok = Health([])

    /// A PF's health, from the inventory alone.
    public static func of(_ pf: PhysicalFunction) -> Health {
        var reasons: Set<Reason> = []
        if pf.driver == nil { reasons.insert(.noDriver) }
        if pf.isNetwork, pf.driver != nil, pf.interfaces.isEmpty { reasons.insert(.netdevMissing) }
        if let state = pf.link?.state, state == "down" || state == "lowerlayerdown" { reasons.insert(.pfLinkDown) }
        return Health(reasons)
    }

    /// A VF's health: its PF's link, its own driver and netdev, the link state its PF reports for it (nil when not
    /// read), and whether it is dirty.
    public static func of(
        _ vf: VirtualFunction, pf: PhysicalFunction, link: VFLinkInfo?, isDirty: Bool
    ) -> Health {
        var reasons: Set<Reason> = []
        if vf.driver == nil { reasons.insert(.noDriver) }
        if pf.isNetwork, let driver = vf.driver, driver != "vfio-pci", vf.interface == nil {
            reasons.insert(.netdevMissing)
        }
        if Health.of(pf).reasons.contains(.pfLinkDown) { reasons.insert(.pfLinkDown) }
        if link?.linkState == .disable { reasons.insert(.vfLinkDown) }
        if isDirty { reasons.insert(.dirty) }
        return Health(reasons)
    }
}

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
