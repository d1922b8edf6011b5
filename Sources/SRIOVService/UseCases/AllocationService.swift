import Foundation
import SRIOVCore
import SRIOVStore

/// Handing VFs to consumers and taking them back.
///
/// Choosing a VF and recording the allocation happen in one store transaction on the single writer, and a
/// UNIQUE index on holding allocations per VF backs it up: a VF is never handed out twice.
struct AllocationService: Sendable {
    let core: ServiceCore

    /// What a first successful request answered, kept for replays under the same Idempotency-Key.
    struct Replay: Sendable {
        var status: Int
        var body: [UInt8]
        var location: String?
    }

    enum CreateOutcome: Sendable {
        case created(Allocation, body: [UInt8])
        case replayed(Replay)
    }

    /// Allocates a VF. With an idempotency key, a repeat of the same request replays the first answer and a
    /// different request under the same key is refused; the key is recorded in the same transaction.
    func allocate(
        _ request: AllocationRequest, idempotency: (key: String, requestHash: String)?, caller: Caller,
        render: @escaping @Sendable (Allocation) -> [UInt8]
    ) async throws(SRIOVError) -> CreateOutcome {
        let action = "allocation.create"
        let snapshot = core.inventory.snapshot
        let resizing = core.resizing
        let result: Result<CreateOutcome, SRIOVError> = try await core.perform { tx in
            if let idempotency, let record = try tx.idempotencyRecord(key: idempotency.key) {
                guard record.requestHash == idempotency.requestHash else {
                    let error = SRIOVError.idempotencyKeyReused(idempotency.key)
                    try tx.appendAudit(caller.failure(action, target: "idempotency:" + idempotency.key, error))
                    return .failure(error)
                }
                return .success(
                    .replayed(Replay(status: record.status, body: record.body, location: record.location)))
            }
            let target: String
            switch request.selection {
            case .pf(let pf): target = pf.description
            case .vf(let vf): target = vf.description
            case .selector: target = "selector"
            }
            do {
                let allocation = try Self.choose(request, in: snapshot, tx: tx, resizing: resizing)
                try tx.insertAllocation(allocation)
                try tx.appendAudit(
                    caller.event(
                        action, target: allocation.id, outcome: .success,
                        details: ["after": Self.json(allocation), "owner": .string(allocation.owner)]))
                let body = render(allocation)
                if let idempotency {
                    try tx.putIdempotencyRecord(
                        IdempotencyRecord(
                            key: idempotency.key, requestHash: idempotency.requestHash, status: 201, body: body,
                            location: "/allocations/" + allocation.id, createdAt: Timestamp.now()))
                }
                return .success(.created(allocation, body: body))
            } catch let error as SRIOVError {
                try tx.appendAudit(
                    caller.failure(action, target: target, error, details: ["owner": .string(request.owner)]))
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The lowest-index free VF that the request allows, made into a new allocation.
    private static func choose(
        _ request: AllocationRequest, in snapshot: InventorySnapshot, tx: Transaction, resizing: ResizingPFs
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
        let held = try tx.heldVFs()
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

    /// Releases an allocation. Fenced by its id: only the allocation that holds the VF can free it, so a
    /// late release of an older allocation of the same VF finds nothing to do (404) and touches nothing.
    func release(id: String, caller: Caller) async throws(SRIOVError) {
        let action = "allocation.release"
        let result: Result<Void, SRIOVError> = try await core.perform { tx in
            guard let allocation = try tx.allocation(id: id), allocation.state != .released else {
                let error = SRIOVError.allocationNotFound(id)
                try tx.appendAudit(caller.failure(action, target: id, error))
                return .failure(error)
            }
            let releasedAt = Timestamp.now()
            try tx.updateAllocation(id: id, state: .released, releasedAt: releasedAt)
            var after = allocation
            after.state = .released
            after.releasedAt = releasedAt
            try tx.appendAudit(
                caller.event(
                    action, target: id, outcome: .success,
                    details: [
                        "before": Self.json(allocation), "after": Self.json(after),
                        "vf": .string(allocation.vf.description),
                    ]))
            return .success(())
        }
        try result.get()
    }

    static func json(_ allocation: Allocation) -> JSONValue {
        (try? JSONValue.parse(String(decoding: JSONBody.encode(allocation), as: UTF8.self))) ?? .null
    }
}
