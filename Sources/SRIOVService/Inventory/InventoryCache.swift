import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import Synchronization

/// The in-memory inventory every GET reads from.
///
/// It is kept fresh by every write (the writer rescans the PF it touched), by a periodic full rescan and by
/// kernel uevents. A snapshot is immutable; readers take one reference under a lock and never touch sysfs.
public final class InventoryCache: Sendable {
    private let scanner: HostScanner
    private let current: Mutex<InventorySnapshot>
    let pendingRescans = PendingRescans()
    private let observers = Mutex<[@Sendable ([InventoryChange]) -> Void]>([])

    public init(scanner: HostScanner) {
        self.scanner = scanner
        self.current = Mutex(InventorySnapshot(host: scanner.scan(), version: 1))
    }

    /// The latest snapshot. Cheap: one lock, no I/O.
    public var snapshot: InventorySnapshot { current.withLock { $0 } }

    /// Calls `observer` with the changes an observed rescan finds: changes sriovd did not make itself.
    public func observeChanges(_ observer: @escaping @Sendable ([InventoryChange]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Walks all of sysfs again. For the periodic rescan and for startup, never for a request. `observed`: the
    /// rescan looks for changes made behind sriovd's back (periodic, uevents), and tells the observers.
    @discardableResult
    public func rescanAll(observed: Bool = false) -> InventorySnapshot {
        let host = scanner.scan()
        let (before, after) = replace { _ in host.pfs }
        if observed { report(before.host.pfs, after.host.pfs) }
        return after
    }

    /// Re-reads one PF (after a write to it, or a uevent about it) and returns its fresh state.
    @discardableResult
    public func rescan(pf address: PCIAddress, observed: Bool = false) -> PFSnapshot? {
        let fresh = scanner.scan(pf: address)
        let (before, _) = replace { pfs in pfs.filter { $0.pf.address != address } + (fresh.map { [$0] } ?? []) }
        if observed { report(before.pf(address).map { [$0] } ?? [], fresh.map { [$0] } ?? []) }
        return fresh
    }

    /// Swaps in the PFs `update` makes of the current ones; the snapshots before and after.
    private func replace(_ update: ([PFSnapshot]) -> [PFSnapshot]) -> (InventorySnapshot, InventorySnapshot) {
        current.withLock { snapshot in
            let before = snapshot
            let host = HostSnapshot(pfs: update(snapshot.host.pfs))
            if host != snapshot.host { snapshot = InventorySnapshot(host: host, version: snapshot.version + 1) }
            return (before, snapshot)
        }
    }

    private func report(_ old: [PFSnapshot], _ new: [PFSnapshot]) {
        let changes = InventoryChange.between(old, new)
        guard !changes.isEmpty else { return }
        for observer in observers.withLock({ $0 }) { observer(changes) }
    }
}

/// One immutable view of the host, indexed for lookups, with its JSON rendering cached.
public final class InventorySnapshot: Sendable {
    public let host: HostSnapshot
    public let version: Int
    private let pfIndex: [PCIAddress: Int]
    private let vfIndex: [PCIAddress: (pf: Int, vf: Int)]
    private let renderedPFList = Mutex<[UInt8]?>(nil)

    init(host: HostSnapshot, version: Int) {
        self.host = host
        self.version = version
        var pfIndex: [PCIAddress: Int] = [:]
        var vfIndex: [PCIAddress: (pf: Int, vf: Int)] = [:]
        for (p, entry) in host.pfs.enumerated() {
            pfIndex[entry.pf.address] = p
            for (v, vf) in entry.vfs.enumerated() { vfIndex[vf.address] = (p, v) }
        }
        self.pfIndex = pfIndex
        self.vfIndex = vfIndex
    }

    public func pf(_ address: PCIAddress) -> PFSnapshot? {
        pfIndex[address].map { host.pfs[$0] }
    }

    public func vf(_ address: PCIAddress) -> (pf: PhysicalFunction, vf: VirtualFunction)? {
        guard let (p, v) = vfIndex[address] else { return nil }
        let entry = host.pfs[p]
        return (entry.pf, entry.vfs[v])
    }

    public var allVFs: [VirtualFunction] { host.pfs.flatMap(\.vfs) }

    /// `{"items": [PF...]}` for an unfiltered `GET /pfs`, rendered once per snapshot.
    func pfListJSON(render: ([PhysicalFunction]) -> [UInt8]) -> [UInt8] {
        if let cached = renderedPFList.withLock({ $0 }) { return cached }
        let body = render(host.pfs.map(\.pf))
        renderedPFList.withLock { $0 = body }
        return body
    }
}
