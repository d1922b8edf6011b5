import Dispatch
import SRIOVCore
import Synchronization

extension InventoryCache {
    /// A kernel uevent about a PCI device: rescan what it touches, soon. Bursts (enabling 128 VFs sends 128
    /// `add` events) are coalesced into one rescan per PF within `delay`; an unknown device (a PF that just
    /// appeared) gets one full rescan.
    public func deviceChanged(_ address: PCIAddress?, delay: Duration = .milliseconds(200)) {
        let snapshot = snapshot
        let target: PCIAddress?
        if let address, snapshot.pf(address) != nil {
            target = address
        } else if let address, let (pf, _) = snapshot.vf(address) {
            target = pf.address
        } else if let address, let pf = physicalFunction(ofNewVF: address, in: snapshot) {
            target = pf
        } else {
            target = nil
        }
        guard pendingRescans.schedule(target) else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + delay.dispatchInterval) { [self] in
            pendingRescans.take(target)
            if let target { rescan(pf: target, observed: true) } else { rescanAll(observed: true) }
        }
    }

    /// The kernel reported a change of the link `name` (`RTNLGRP_LINK`): when it is a PF's netdev, that PF is read
    /// again, soon (VF settings written through the PF send the same notification, so bursts are coalesced).
    public func linkChanged(name: String, delay: Duration = .milliseconds(20)) {
        guard let pf = snapshot.host.pfs.first(where: { $0.pf.interfaces.contains(name) }) else { return }
        deviceChanged(pf.pf.address, delay: delay)
    }

    /// A PF whose VF count just changed. Drivers reset the PF as they enable or disable VFs (igb takes its link
    /// down for a few seconds), so its link state and speed read right after the write may be the reset's, and a
    /// link coming back up sends no uevent. The PF is read again after each delay, so the inventory shows the
    /// settled link without waiting for the periodic rescan.
    public func settle(pf address: PCIAddress, after delays: [Duration] = [.seconds(1), .seconds(3), .seconds(10)]) {
        for delay in delays {
            DispatchQueue.global().asyncAfter(deadline: .now() + delay.dispatchInterval) { [self] in
                rescan(pf: address, observed: true)
            }
        }
    }

    /// The PF whose VF routing-ID range holds `address`: a VF that was just created is not in the snapshot yet.
    private func physicalFunction(ofNewVF address: PCIAddress, in snapshot: InventorySnapshot) -> PCIAddress? {
        snapshot.host.pfs.first { entry in
            guard let offset = entry.pf.vfOffset, let stride = entry.pf.vfStride, stride > 0 else { return false }
            return (0..<entry.pf.totalVFs).contains { index in
                entry.pf.address.advanced(byRoutingIDs: offset + stride * index) == address
            }
        }?.pf.address
    }
}

/// Rescans waiting to run: at most one per PF (and one full rescan) at a time.
final class PendingRescans: Sendable {
    private let pending = Mutex<Set<PCIAddress?>>([])

    /// True when nothing was pending for `target`: the caller schedules it.
    func schedule(_ target: PCIAddress?) -> Bool { pending.withLock { $0.insert(target).inserted } }

    func take(_ target: PCIAddress?) { _ = pending.withLock { $0.remove(target) } }
}
