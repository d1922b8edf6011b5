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

    /// Runs `body` holding the key's lock, and releases it however `body` ends.
    nonisolated func withLock<T: Sendable, E: Error>(
        _ key: Key, _ body: () async throws(E) -> T
    ) async throws(E) -> T {
        await acquire(key)
        do {
            let value = try await body()
            await release(key)
            return value
        } catch {
            await release(key)
            throw error
        }
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

/// The targets of changes under way in this process (PFs, VFs, allocation ids), so that a reconcile run does not
/// take an open intent of a change still running for one left behind by a fault.
final class LiveTargets: Sendable {
    private let targets = Mutex<[String: Int]>([:])

    func contains(_ target: String) -> Bool { targets.withLock { $0[target] != nil } }

    /// Runs `body` with `target` marked live.
    func during<T: Sendable, E: Error>(_ target: String, _ body: () async throws(E) -> T) async throws(E) -> T {
        targets.withLock { $0[target, default: 0] += 1 }
        defer {
            targets.withLock { targets in
                targets[target, default: 1] -= 1
                if targets[target] == 0 { targets[target] = nil }
            }
        }
        return try await body()
    }
}

/// Allocations being released or changed: one such request per allocation at a time.
final class ReleasingAllocations: Sendable {
    private let ids = Mutex<Set<String>>([])

    /// False when another release of the same allocation is under way.
    func claim(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }
    func finish(_ id: String) { _ = ids.withLock { $0.remove(id) } }
}
