import SRIOVCore
import Synchronization

/// Serializes multi-step work per key (per PF: resize, binding and settings; one key for reconcile runs), in
/// FIFO order, without blocking a thread while waiting.
actor AsyncLocks<Key: Hashable & Sendable> {
    private var held: Set<Key> = []
    private var waiters: [Key: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ key: Key) async {
        if held.insert(key).inserted { return }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    func release(_ key: Key) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes straight to the next waiter
        } else {
            held.remove(key)
        }
    }
}

/// One lock per PF.
typealias PFLocks = AsyncLocks<PCIAddress>

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
