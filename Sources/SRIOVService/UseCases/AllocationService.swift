import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Handing VFs to consumers and taking them back.
///
/// Choosing a VF and recording the allocation happen in one store transaction on the single writer, and a
/// UNIQUE index on holding allocations per VF backs it up: a VF is never handed out twice. Hardware work
/// (capturing the VF's original settings, applying the config, restoring on release) runs under the PF's
/// lock on its hardware queue, after an intent is recorded, so a crash leaves nothing half-done for good.
struct AllocationService: Sendable {
    let core: ServiceCore

    /// What a first request answered, kept for replays under the same Idempotency-Key.
    struct Replay: Sendable {
        var status: Int
        var body: [UInt8]
        var location: String?
    }

    enum CreateOutcome: Sendable {
        case created(Allocation, body: [UInt8])
        case replayed(Replay)
    }

    /// What the first transaction decided.
    private enum Claim: Sendable {
        case replay(Replay)
        /// Recorded and acknowledged; `capture` when the VF's original settings are not stored yet.
        case done(Allocation, body: [UInt8], capture: Bool)
        /// Recorded with an open intent: the config must be applied before answering.
        case apply(Allocation, intent: Int64)
    }

    /// The answer stored under a key while its request is still being carried out.
    static let inProgressStatus = 409

    /// Allocates a VF. With an idempotency key, a repeat of the same request replays the first answer and a
    /// different request under the same key is refused; the key is recorded in the same transaction.
    func allocate(
        _ request: AllocationRequest, idempotency: (key: String, requestHash: String)?, caller: Caller,
        render: @escaping @Sendable (Allocation) -> [UInt8]
    ) async throws(SRIOVError) -> CreateOutcome {
        let action = "allocation.create"
        let snapshot = core.inventory.snapshot
        let resizing = core.resizing
        let dirty = core.dirtyVFs
        let claim: Result<Claim, SRIOVError> = try await core.perform { tx in
            if let idempotency, let record = try tx.idempotencyRecord(key: idempotency.key) {
                guard record.requestHash == idempotency.requestHash else {
                    let error = SRIOVError.idempotencyKeyReused(idempotency.key)
                    try tx.appendAudit(caller.failure(action, target: "idempotency:" + idempotency.key, error))
                    return .failure(error)
                }
                return .success(.replay(Replay(status: record.status, body: record.body, location: record.location)))
            }
            do {
                let allocation = try Self.choose(request, in: snapshot, tx: tx, resizing: resizing, dirty: dirty)
                try tx.insertAllocation(allocation)
                let location = "/allocations/" + allocation.id
                if request.config != nil {
                    let payload = JSONValue.object([
                        "vf": .string(allocation.vf.description),
                        "idempotency_key": idempotency.map { .string($0.key) } ?? .null,
                    ])
                    let intent = try tx.beginIntent(
                        kind: "allocation.apply", target: allocation.id, payload: payload.text)
                    if let idempotency {
                        let pending = SRIOVError.pfBusy(
                            allocation.pf, "the first request with this key is still running"
                        )
                        .problemBody(instance: "/allocations")
                        try tx.putIdempotencyRecord(
                            IdempotencyRecord(
                                key: idempotency.key, requestHash: idempotency.requestHash,
                                status: Self.inProgressStatus, body: pending, location: nil, createdAt: Timestamp.now())
                        )
                    }
                    return .success(.apply(allocation, intent: intent))
                }
                try tx.appendAudit(
                    caller.event(
                        action, target: allocation.id, outcome: .success,
                        details: ["after": Self.json(allocation), "owner": .string(allocation.owner)]))
                let body = render(allocation)
                if let idempotency {
                    try tx.putIdempotencyRecord(
                        IdempotencyRecord(
                            key: idempotency.key, requestHash: idempotency.requestHash, status: 201, body: body,
                            location: location, createdAt: Timestamp.now()))
                }
                let captured = try tx.originalState(vf: allocation.vf) != nil
                return .success(.done(allocation, body: body, capture: !captured))
            } catch let error as SRIOVError {
                try tx.appendAudit(
                    caller.failure(
                        action, target: Self.target(of: request), error, details: ["owner": .string(request.owner)]))
                return .failure(error)
            }
        }
        switch try claim.get() {
        case .replay(let replay):
            return .replayed(replay)
        case .done(let allocation, let body, let capture):
            if capture { await captureOriginal(allocation, caller: caller) }
            return .created(allocation, body: body)
        case .apply(let allocation, let intent):
            let body = try await applyConfig(
                allocation, intent: intent, idempotency: idempotency, caller: caller, render: render)
            return .created(allocation, body: body)
        }
    }

    /// Stores the VF's settings as they are before its holder changes anything (the first capture wins).
    private func captureOriginal(_ allocation: Allocation, caller: Caller) async {
        guard let (pf, vf) = core.inventory.snapshot.vf(allocation.vf) else { return }
        await core.pfLocks.acquire(pf.address)
        defer { Task { await core.pfLocks.release(pf.address) } }
        do {
            let state = try await core.vfState(vf, pf: pf, caller: caller)
            _ = try await core.perform { tx in try tx.saveOriginalState(vf: vf.address, json: state.json) }
        } catch {
            core.logger.warning(
                "could not capture a VF's original settings; release will restore factory defaults",
                metadata: ["pci.address": "\(vf.address)", "error": "\(error)"])
        }
    }

    /// Captures the original settings, applies the allocation's config, and records the outcome. On failure
    /// the controller has rolled the VF back; the allocation is released (or `dirty` if the rollback was
    /// incomplete) and the error is the answer.
    private func applyConfig(
        _ allocation: Allocation, intent: Int64, idempotency: (key: String, requestHash: String)?, caller: Caller,
        render: @escaping @Sendable (Allocation) -> [UInt8]
    ) async throws(SRIOVError) -> [UInt8] {
        let action = "allocation.create"
        let config = allocation.config ?? VFConfig()
        await core.pfLocks.acquire(allocation.pf)
        defer { Task { await core.pfLocks.release(allocation.pf) } }

        var failure: SRIOVError?
        var leftChanged = false
        var original: VFState?
        if let (pf, vf) = core.inventory.snapshot.vf(allocation.vf) {
            let timeout = core.writeTimeout
            do {
                original = try await core.vfWork(pf: pf.address, caller: caller) { controller, record in
                    let before: VFState
                    do {
                        before = try controller.state(of: vf, pf: pf)
                        try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record)
                    } catch let error as VFHardwareError {
                        throw HardwareOutcome(
                            error: error.domainError(vf: vf.address), leftChanged: error.leavesVFChanged)
                    }
                    return before
                }
            } catch let outcome as HardwareOutcome {
                failure = outcome.error
                leftChanged = outcome.leftChanged
            } catch let error as SRIOVError {
                failure = error
                leftChanged = true
            } catch {
                failure = .kernel(operation: "apply VF config", errno: 0, name: "\(error)")
            }
            if leftChanged == false, failure == nil { core.inventory.rescan(pf: pf.address) }
        } else {
            failure = .vfNotFound(allocation.vf)
        }

        let body = failure == nil ? render(allocation) : nil
        let outcome = failure
        let changed = leftChanged
        let captured = original
        let result: Result<[UInt8], SRIOVError> = try await core.perform { tx in
            if let captured { try tx.saveOriginalState(vf: allocation.vf, json: captured.json) }
            if let outcome {
                let state: AllocationState = changed ? .dirty : .released
                try tx.updateAllocation(id: allocation.id, state: state, releasedAt: changed ? nil : Timestamp.now())
                try tx.completeIntent(intent, outcome: .rolledBack)
                try tx.appendAudit(
                    caller.failure(
                        action, target: allocation.id, outcome,
                        details: [
                            "vf": .string(allocation.vf.description), "allocation_state": .string(state.rawValue),
                        ]))
                if let idempotency {
                    try tx.putIdempotencyRecord(
                        IdempotencyRecord(
                            key: idempotency.key, requestHash: idempotency.requestHash, status: outcome.httpStatus.code,
                            body: outcome.problemBody(instance: "/allocations"), location: nil,
                            createdAt: Timestamp.now()))
                }
                return .failure(outcome)
            }
            try tx.completeIntent(intent)
            try tx.appendAudit(
                caller.event(
                    action, target: allocation.id, outcome: .success,
                    details: ["after": Self.json(allocation), "owner": .string(allocation.owner)]))
            if let idempotency, let body {
                try tx.putIdempotencyRecord(
                    IdempotencyRecord(
                        key: idempotency.key, requestHash: idempotency.requestHash, status: 201, body: body,
                        location: "/allocations/" + allocation.id, createdAt: Timestamp.now()))
            }
            return .success(body ?? [])
        }
        return try result.get()
    }

    /// The lowest-index free VF that the request allows, made into a new allocation.
    private static func choose(
        _ request: AllocationRequest, in snapshot: InventorySnapshot, tx: Transaction, resizing: ResizingPFs,
        dirty: DirtyVFs
    ) throws -> Allocation {
        var candidates: [(pf: PhysicalFunction, vf: VirtualFunction)] = []
        switch request.selection {
        case .pf(let address):
            guard let entry = snapshot.pf(address) else { throw SRIOVError.pfNotFound(address) }
            candidates = entry.vfs.map { (entry.pf, $0) }
        case .vf(let address):
            guard let found = snapshot.vf(address) else { throw SRIOVError.vfNotFound(address) }
            if let holder = try tx.holdingAllocation(vf: address) {
                throw SRIOVError.vfHeld(address, allocationID: holder.id)
            }
            candidates = [found]
        case .selector(let selector):
            for entry in snapshot.host.pfs {
                candidates += entry.vfs.filter { selector.matches($0, of: entry.pf) }.map { (entry.pf, $0) }
            }
        }
        // Held VFs, and free VFs left with settings that are not their baseline, are not handed out.
        let held = try tx.heldVFs().union(dirty.all)
        var busy: PCIAddress?
        for candidate in candidates where !held.contains(candidate.vf.address) {
            if resizing.contains(candidate.pf.address) {
                busy = candidate.pf.address
                continue
            }
            let vf = candidate.vf
            return Allocation(
                id: UUID().uuidString.lowercased(), vf: vf.address, pf: vf.pf, vfIndex: vf.index,
                owner: request.owner, labels: request.labels, state: .active, createdAt: Timestamp.now(),
                releasedAt: nil, config: request.config, generation: try tx.nextGeneration(vf: vf.address))
        }
        if let busy { throw SRIOVError.pfBusy(busy, "its VF count is being changed; retry shortly") }
        let heldCount = candidates.filter { held.contains($0.vf.address) }.count
        throw SRIOVError.noFreeVF(total: candidates.count, held: heldCount)
    }

    private static func target(of request: AllocationRequest) -> String {
        switch request.selection {
        case .pf(let pf): pf.description
        case .vf(let vf): vf.description
        case .selector: "selector"
        }
    }

    /// The allocation as audit details, built directly (no encode-and-parse on the hot path).
    static func json(_ allocation: Allocation) -> JSONValue {
        .object([
            "id": .string(allocation.id), "vf": .string(allocation.vf.description),
            "pf": .string(allocation.pf.description), "vf_index": .int(allocation.vfIndex),
            "owner": .string(allocation.owner), "labels": .object(allocation.labels.mapValues(JSONValue.string)),
            "state": .string(allocation.state.rawValue), "created_at": .string(allocation.createdAt),
            "released_at": allocation.releasedAt.map(JSONValue.string) ?? .null,
            "config": allocation.config.flatMap {
                try? JSONValue.parse(String(decoding: JSONBody.encode($0), as: UTF8.self))
            }
                ?? .null,
            "generation": .int(allocation.generation),
        ])
    }
}

/// A hardware step's failure, with whether the VF may have been left changed.
struct HardwareOutcome: Error, Sendable {
    var error: SRIOVError
    var leftChanged: Bool
}

extension SRIOVError {
    /// The problem+json body this error answers with.
    func problemBody(instance: String) -> [UInt8] {
        response(instance: instance).body
    }
}
