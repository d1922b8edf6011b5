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
    /// read), and whether it is dirty. An attached VF's netdev lives in its holder's network namespace, where the
    /// host's sysfs does not show it: not missing.
    public static func of(
        _ vf: VirtualFunction, pf: PhysicalFunction, link: VFLinkInfo?, isDirty: Bool, isAttached: Bool = false
    ) -> Health {
        var reasons: Set<Reason> = []
        if vf.driver == nil { reasons.insert(.noDriver) }
        if pf.isNetwork, let driver = vf.driver, driver != "vfio-pci", vf.interface == nil, !isAttached {
            reasons.insert(.netdevMissing)
        }
        if Health.of(pf).reasons.contains(.pfLinkDown) { reasons.insert(.pfLinkDown) }
        if link?.linkState == .disable { reasons.insert(.vfLinkDown) }
        if isDirty { reasons.insert(.dirty) }
        return Health(reasons)
    }
}
