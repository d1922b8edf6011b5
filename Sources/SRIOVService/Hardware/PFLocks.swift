import SRIOVCore
import Synchronization

/// Serializes multi-step changes per PF (resize, later binding and settings), in FIFO order, without
/// blocking a thread while waiting.
actor PFLocks {
    private var held: Set<PCIAddress> = []
    private var waiters: [PCIAddress: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ pf: PCIAddress) async {
        if held.insert(pf).inserted { return }
        await withCheckedContinuation { waiters[pf, default: []].append($0) }
    }

    func release(_ pf: PCIAddress) {
        if var queue = waiters[pf], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[pf] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes straight to the next waiter
        } else {
            held.remove(pf)
        }
    }
}

/// PFs whose VF set is being changed. Allocation refuses their VFs until the change is done; both sides
/// check and set it inside the store's serial write path, so no allocation slips between check and write.
final class ResizingPFs: Sendable {
    private let pfs = Mutex<Set<PCIAddress>>([])

    func contains(_ pf: PCIAddress) -> Bool { pfs.withLock { $0.contains(pf) } }
    func insert(_ pf: PCIAddress) { _ = pfs.withLock { $0.insert(pf) } }
    func remove(_ pf: PCIAddress) { _ = pfs.withLock { $0.remove(pf) } }
}

/// Allocations being released or changed: one such request per allocation at a time.
final class ReleasingAllocations: Sendable {
    private let ids = Mutex<Set<String>>([])

    /// False when another release of the same allocation is under way.
    func claim(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }
    func finish(_ id: String) { _ = ids.withLock { $0.remove(id) } }
}
