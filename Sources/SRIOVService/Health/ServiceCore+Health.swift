import FoundationEssentials
import SRIOVCore
import SRIOVStore
import Synchronization

extension ServiceCore {
    /// A VF's health now, from the inventory, the last rtnetlink reading and what sriovd knows to be dirty.
    func health(of vf: VirtualFunction, pf: PhysicalFunction, holder: Allocation?, dirty: Set<PCIAddress>) -> Health {
        Health.of(
            vf, pf: pf, link: telemetry.info(pf: pf.address, vf: vf.index),
            isDirty: holder?.state == .dirty || dirty.contains(vf.address), isAttached: holder?.attachment != nil)
    }

    /// Reads the VFs' links and stats from the kernel, works out every PF's and VF's health, and records each change
    /// since the last sweep as an event: `pf.health.changed` or `vf.health.changed`, with `from`, `to` and the
    /// reasons. The actor is `kernel` when what changed was seen on the hardware, `sriovd` when it is sriovd's own
    /// bookkeeping (a VF turning dirty or clean). Returns the changes recorded.
    @discardableResult
    public func sweepHealth() async -> Int {
        let snapshot = inventory.snapshot
        telemetry.refresh(snapshot, netlink: host.netlink)
        let dirty = dirtyVFs.all
        let holders: [PCIAddress: Allocation]
        do {
            holders = try store.read { view in
                var byVF: [PCIAddress: Allocation] = [:]
                for entry in snapshot.host.pfs {
                    for allocation in try view.holdingAllocations(pf: entry.pf.address) {
                        byVF[allocation.vf] = allocation
                    }
                }
                return byVF
            }
        } catch {
            logger.warning("health sweep: could not read allocations", metadata: ["error": "\(error)"])
            return 0
        }
        var now: [PCIAddress: Health] = [:]
        var pfOf: [PCIAddress: PCIAddress] = [:]
        for entry in snapshot.host.pfs {
            now[entry.pf.address] = Health.of(entry.pf)
            for vf in entry.vfs {
                now[vf.address] = health(of: vf, pf: entry.pf, holder: holders[vf.address], dirty: dirty)
                pfOf[vf.address] = entry.pf.address
            }
        }
        let changes = healthLedger.update(now)
        guard !changes.isEmpty else { return 0 }
        let events = changes.map { change in
            let pf = pfOf[change.address]
            let moved = Set(change.from.reasons).symmetricDifference(change.to.reasons)
            let caller = moved == [.dirty] ? Caller(actor: "sriovd", requestID: nil) : Caller.kernel
            return caller.event(
                pf == nil ? "pf.health.changed" : "vf.health.changed", target: change.address.description,
                outcome: .success,
                details: [
                    "pf": .string((pf ?? change.address).description),
                    "vf": pf == nil ? .null : .string(change.address.description),
                    "from": .string(change.from.status.rawValue), "to": .string(change.to.status.rawValue),
                    "reasons": .array(change.to.reasons.map { .string($0.rawValue) }),
                    "previous_reasons": .array(change.from.reasons.map { .string($0.rawValue) }),
                ])
        }
        do {
            try await store.write { tx in for event in events { try tx.appendAudit(event) } }
        } catch {
            logger.error("could not record health changes", metadata: ["error": "\(error)"])
        }
        return events.count
    }

    /// Sweeps health every `interval`, and soon after each change of the host sriovd observes (a link going down
    /// is an event within a moment, not at the next tick). Cancel the task to stop.
    public func startHealthMonitor(interval: Duration) -> Task<Void, Never> {
        let wake = HealthWake()
        inventory.observeChanges { _ in wake.signal() }
        return Task.detached { [self] in
            await sweepHealth()
            while !Task.isCancelled {
                await wake.wait(upTo: interval)
                if Task.isCancelled { break }
                await sweepHealth()
            }
        }
    }
}

/// Wakes the health monitor early: `wait(upTo:)` returns after the interval, at once after `signal()` (a signal
/// while nobody waits is kept for the next wait), or when the waiting task is cancelled. No polling.
final class HealthWake: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Counts the waits, so a timer or cancellation of an earlier wait cannot end a later one.
        var generation = 0
        /// The last wait ended (by its timer or a cancellation) before it had begun to wait.
        var ended = 0
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(upTo interval: Duration) async {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            end(generation)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.signalled || state.ended >= generation || Task.isCancelled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            end(generation)
        }
    }

    /// Ends the wait numbered `generation` if it is still the one waiting.
    private func end(_ generation: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation else { return nil }
            guard let waiter = state.waiter else {
                state.ended = generation
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
