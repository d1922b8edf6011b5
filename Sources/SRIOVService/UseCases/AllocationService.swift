import FoundationEssentials
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Handing VFs to consumers and taking them back.
///
/// Choosing a VF and recording the allocation happen in one store transaction on the single writer, and a
/// UNIQUE index on holding allocations per VF backs it up: a VF is never handed out twice. Hardware work
/// (applying the config, restoring on release) goes through `ServiceCore.change`, after an intent is recorded, so a
/// crash leaves nothing half-done for good.
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

    /// An Idempotency-Key and the hash of the request it came with.
    typealias Idempotency = (key: String, requestHash: String)

    /// Allocates a VF. With an idempotency key, a repeat of the same request replays the first answer and a
    /// different request under the same key is refused; the key is recorded in the same transaction.
    /// - Parameter id: the new allocation's id. It is known before the claim, so a reconcile run never takes this
    ///   allocation's intent for one a fault left behind, and an operation can name it.
    func allocate(
        _ request: AllocationRequest, id: String = UUID().uuidString.lowercased(), idempotency: Idempotency?,
        caller: Caller, render: @escaping @Sendable (Allocation) -> [UInt8]
    ) async throws(SRIOVError) -> CreateOutcome {
        return try await core.live.during(id) { () async throws(SRIOVError) -> CreateOutcome in
            let claim = try await self.claim(request, id: id, idempotency: idempotency, caller: caller, render: render)
            switch claim {
            case .replay(let replay):
                return .replayed(replay)
            case .done(let allocation, let body, let capture):
                if capture { await captureOriginal(allocation) }
                return .created(allocation, body: body)
            case .apply(let allocation, let intent):
                let apply = AllocationApply(
                    allocation: allocation, idempotency: idempotency, caller: caller, render: render)
                let body = try await core.change(apply, opening: .open(intent))
                return .created(allocation, body: body)
            }
        }
    }

    /// The first transaction: a replay, or the chosen VF recorded (with an intent when a config must be applied).
    private func claim(
        _ request: AllocationRequest, id: String, idempotency: Idempotency?, caller: Caller,
        render: @escaping @Sendable (Allocation) -> [UInt8]
    ) async throws(SRIOVError) -> Claim {
        let action = "allocation.create"
        let snapshot = core.inventory.snapshot
        let dirty = core.dirtyVFs
        // Matching the inventory touches no database: done here, off the single writer.
        let candidates = Result { () throws(SRIOVError) in try Self.candidates(request, in: snapshot) }
        let result: Result<Claim, SRIOVError> = try await core.perform { tx in
            if let idempotency, let record = try tx.idempotencyRecord(key: idempotency.key) {
                guard record.requestHash == idempotency.requestHash else {
                    let error = SRIOVError.idempotencyKeyReused(idempotency.key)
                    try tx.appendAudit(caller.failure(action, target: "idempotency:" + idempotency.key, error))
                    return .failure(error)
                }
                return .success(.replay(Replay(status: record.status, body: record.body, location: record.location)))
            }
            do {
                let allocation = try Self.choose(
                    request, id: id, among: candidates.get(), in: snapshot, tx: tx, dirty: dirty)
                try tx.insertAllocation(allocation)
                if request.config != nil {
                    return .success(try Self.openApply(allocation, idempotency: idempotency, tx: tx))
                }
                let body = render(allocation)
                try Self.recordCreated(allocation, body: body, idempotency: idempotency, caller: caller, tx: tx)
                let captured = try tx.originalState(vf: allocation.vf) != nil
                return .success(.done(allocation, body: body, capture: !captured))
            } catch let error as SRIOVError {
                try tx.appendAudit(
                    caller.failure(
                        action, target: Self.target(of: request), error, details: ["owner": .string(request.owner)]))
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The audit event of a new allocation, and its answer kept under its Idempotency-Key.
    static func recordCreated(
        _ allocation: Allocation, body: [UInt8], idempotency: Idempotency?, caller: Caller, tx: Transaction
    ) throws {
        try tx.appendAudit(
            caller.event(
                "allocation.create", target: allocation.id, outcome: .success,
                details: ["after": json(allocation), "owner": .string(allocation.owner)]))
        guard let idempotency else { return }
        try tx.putIdempotencyRecord(
            IdempotentAnswer.created(
                key: idempotency.key, requestHash: idempotency.requestHash, body: body,
                location: "/allocations/" + allocation.id))
    }

    /// The intent of applying the allocation's config, and the answer a retry gets meanwhile.
    private static func openApply(_ allocation: Allocation, idempotency: Idempotency?, tx: Transaction) throws -> Claim
    {
        let payload = JSONValue.object([
            "pf": .string(allocation.pf.description), "vf": .string(allocation.vf.description),
            "idempotency_key": idempotency.map { .string($0.key) } ?? .null,
            "restore_to": try tx.originalState(vf: allocation.vf).flatMap { try? JSONValue.parse($0) } ?? .null,
        ])
        let intent = try tx.beginIntent(kind: .allocationApply, target: allocation.id, payload: payload.text)
        if let idempotency {
            try tx.putIdempotencyRecord(
                IdempotentAnswer.failed(
                    .idempotentRequestInProgress(idempotency.key), key: idempotency.key,
                    requestHash: idempotency.requestHash, instance: "/allocations"))
        }
        return .apply(allocation, intent: intent)
    }

    /// Stores the VF's settings as they are before its holder changes anything (the first capture wins).
    private func captureOriginal(_ allocation: Allocation) async {
        guard let (pf, vf) = core.inventory.snapshot.vf(allocation.vf) else { return }
        do {
            let state = try await core.pfLocks.withLock(pf.address) { () async throws(SRIOVError) -> VFState in
                try core.readState(of: vf, pf: pf)
            }
            _ = try await core.perform { tx in try tx.saveOriginalState(vf: vf.address, json: state.json) }
        } catch {
            core.logger.warning(
                "could not capture a VF's original settings; release will restore factory defaults",
                metadata: ["pci.address": "\(vf.address)", "error": "\(error)"])
        }
    }

    /// The free VF that the request allows, made into a new allocation: the lowest-index one, or the one the
    /// selector's placement rule picks (`PlacementRule`), within the owner's quota. Held VFs, free VFs left with
    /// settings that are not their baseline, VFs being changed and VFs of a PF being resized are not handed out.
    /// Runs inside the transaction that records the allocation, so concurrent requests cannot pass a quota.
    private static func choose(
        _ request: AllocationRequest, id: String, among candidates: [PlacementCandidate],
        in snapshot: InventorySnapshot, tx: Transaction, dirty: DirtyVFs
    ) throws -> Allocation {
        if case .vf(let address) = request.selection, let holder = try tx.holdingAllocation(vf: address) {
            throw SRIOVError.vfHeld(address, allocationID: holder.id)
        }
        let maintenance = try tx.maintenance()
        try Self.checkExplicit(request.selection, maintenance: maintenance, in: snapshot)
        let busy = try OpenChanges(tx.openIntents())
        let held = try tx.heldVFs().union(dirty.all).union(busy.vfs)
        let options = Self.placementOptions(request)
        let quotaLimits = try Self.quotaLimits(owner: request.owner, in: snapshot, tx: tx)
        // The rule picks a PF, then the PF's first eligible VF: one free VF per PF and NUMA node is all it needs.
        var free: [PlacementCandidate] = []
        var represented = Set<PlacementKey>()
        var lastKey: PlacementKey?
        var heldByPF: [PCIAddress: Int] = [:]
        var resizing: PCIAddress?
        var quotaBlocked: QuotaRefusal?
        let firstFree = options == PlacementRule.Options()
        for candidate in candidates {
            if maintenance.isCordoned(candidate.pf)
                || maintenance.isExternal(pf: candidate.pf, vfIndex: candidate.vfIndex)
            {
                continue
            }
            if held.contains(candidate.vf) {
                heldByPF[candidate.pf, default: 0] += 1
                continue
            }
            if busy.resizing.contains(candidate.pf) {
                resizing = candidate.pf
                continue
            }
            if let node = candidate.numaNode, let refusal = quotaLimits?.full[node] {
                quotaBlocked = refusal
                continue
            }
            // VFs come grouped by PF: most repeat the key just seen, which needs no hashing.
            let key = PlacementKey(pf: candidate.pf, numaNode: candidate.numaNode)
            guard key != lastKey, represented.insert(key).inserted else { continue }
            lastKey = key
            free.append(candidate)
            if firstFree { break }
        }
        let conflicting = try options.antiAffinity.map { try tx.pfsHoldingLabel($0.label, value: $0.value) } ?? []
        switch PlacementRule.choose(free: free, held: heldByPF, options: options, conflicting: conflicting) {
        case .chosen(let chosen, let reason):
            return Allocation(
                id: id, vf: chosen.vf, pf: chosen.pf, vfIndex: chosen.vfIndex, owner: request.owner,
                labels: request.labels, state: .active, createdAt: Timestamp.now(), releasedAt: nil,
                config: request.config, generation: try tx.nextGeneration(vf: chosen.vf),
                leaseSeconds: request.leaseSeconds,
                expiresAt: request.leaseSeconds.map { Timestamp.after(seconds: $0) },
                placement: reason)
        case .antiAffinity(let label, let value, let pfs):
            throw SRIOVError.antiAffinityUnsatisfiable(label: label, value: value, pfs: pfs)
        case .noneFree:
            if let quotaBlocked { throw SRIOVError.quotaExceeded(quotaBlocked) }
            if let resizing { throw SRIOVError.pfBusy(resizing, "its VF count is being changed; retry shortly") }
            let heldCount = candidates.filter { held.contains($0.vf) }.count
            throw SRIOVError.noFreeVF(total: candidates.count, held: heldCount)
        }
    }

    /// An explicit `pf` or `vf` on a cordoned PF, or a `vf` outside its PF's managed range, is refused by name
    /// (a selector just skips them).
    static func checkExplicit(_ selection: VFSelection, maintenance: MaintenanceMap, in snapshot: InventorySnapshot)
        throws
    {
        switch selection {
        case .pf(let pf):
            if maintenance.isCordoned(pf) { throw SRIOVError.pfCordoned(pf) }
        case .vf(let vf):
            guard let (pf, found) = snapshot.vf(vf) else { return }
            if let range = maintenance[pf.address].managed, !range.contains(found.index) {
                throw SRIOVError.vfExternal(vf, pf: pf.address, managed: VFRangeText.text(range))
            }
            if maintenance.isCordoned(pf.address) { throw SRIOVError.pfCordoned(pf.address) }
        case .selector:
            break
        }
    }

    /// A PF and NUMA node: the placement rule needs one free VF of each.
    private struct PlacementKey: Hashable {
        var pf: PCIAddress
        var numaNode: Int?
    }

    /// What a selector asks of placement; nothing for `pf` and `vf` requests.
    private static func placementOptions(_ request: AllocationRequest) -> PlacementRule.Options {
        guard case .selector(let selector) = request.selection else { return PlacementRule.Options() }
        return PlacementRule.Options(
            mode: selector.placement, preferNUMANode: selector.preferNUMANode,
            antiAffinity: selector.antiAffinity.flatMap { rule in
                request.labels[rule.label].map { PlacementRule.LabelValue(label: rule.label, value: $0) }
            })
    }

    /// The owner's quota as it stands: throws when its total is reached; otherwise the NUMA nodes whose own limit
    /// is reached, each with the refusal to give if only they have free VFs. Nil when no quota governs the owner.
    private static func quotaLimits(owner: String, in snapshot: InventorySnapshot, tx: Transaction) throws
        -> (quota: Quota, full: [Int: QuotaRefusal])?
    {
        let quotas = try tx.quotas()
        guard let quota = Quota.governing(owner, among: quotas) else { return nil }
        let use = try quotaUse(quota, among: quotas, in: snapshot, read: tx)
        if let refusal = quota.totalRefusal(use) { throw SRIOVError.quotaExceeded(refusal) }
        var full: [Int: QuotaRefusal] = [:]
        for node in quota.fullNUMANodes(use) {
            full[node] = QuotaRefusal(
                ownerPrefix: quota.ownerPrefix, limit: quota.perNUMANode[node] ?? 0, used: use.byNUMANode[node] ?? 0,
                numaNode: node)
        }
        return (quota, full)
    }

    /// What the owners a quota governs hold, in total and by the NUMA node of each VF's PF. Owners under a longer
    /// prefix that has its own quota are that quota's, not this one's.
    static func quotaUse(_ quota: Quota, among quotas: [Quota], in snapshot: InventorySnapshot, read view: StoreView)
        throws -> QuotaUse
    {
        let nested = quota.nestedPrefixes(among: quotas)
        var use = QuotaUse()
        for (prefix, sign) in [(quota.ownerPrefix, 1)] + nested.map({ ($0, -1) }) {
            for (pf, count) in try view.heldByPF(ownerPrefix: prefix) {
                use.total += sign * count
                if let node = snapshot.pf(pf)?.pf.numaNode { use.byNUMANode[node, default: 0] += sign * count }
            }
        }
        return use
    }

    /// The VFs the request may be given, in order.
    /// The VFs the request may be given, in inventory order, as plain values (no strings to retain while the writer
    /// walks them).
    private static func candidates(_ request: AllocationRequest, in snapshot: InventorySnapshot)
        throws(SRIOVError) -> [PlacementCandidate]
    {
        func candidate(_ vf: VirtualFunction, of pf: PhysicalFunction) -> PlacementCandidate {
            PlacementCandidate(vf: vf.address, pf: pf.address, vfIndex: vf.index, numaNode: vf.numaNode ?? pf.numaNode)
        }
        switch request.selection {
        case .pf(let address):
            guard let entry = snapshot.pf(address) else { throw SRIOVError.pfNotFound(address) }
            return entry.vfs.map { candidate($0, of: entry.pf) }
        case .vf(let address):
            guard let found = snapshot.vf(address) else { throw SRIOVError.vfNotFound(address) }
            return [candidate(found.vf, of: found.pf)]
        case .selector(let selector):
            var list: [PlacementCandidate] = []
            for entry in snapshot.host.pfs {
                for vf in entry.vfs where selector.matches(vf, of: entry.pf) {
                    list.append(candidate(vf, of: entry.pf))
                }
            }
            return list
        }
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
            "config": allocation.config?.jsonValue ?? .null,
            "generation": .int(allocation.generation),
            "lease_seconds": allocation.leaseSeconds.map(JSONValue.int) ?? .null,
            "expires_at": allocation.expiresAt.map(JSONValue.string) ?? .null,
            "placement": allocation.placement.map(Self.json) ?? .null,
        ])
    }

    /// Why the VF was chosen, as audit details.
    static func json(_ placement: PlacementReason) -> JSONValue {
        .object([
            "rule": .string(placement.rule), "reason": .string(placement.reason),
            "numa_node": placement.numaNode.map(JSONValue.int) ?? .null,
            "avoided_pfs": .array(placement.avoidedPFs.map { .string($0.description) }),
        ])
    }
}

/// What the open intents say is being changed: VFs (settings being applied or restored) and PFs (VF counts).
struct OpenChanges {
    var vfs: Set<PCIAddress> = []
    var resizing: Set<PCIAddress> = []

    init(_ intents: [Intent]) {
        for intent in intents {
            switch intent.kind {
            case .vfCount:
                if let pf = PCIAddress(intent.target) { resizing.insert(pf) }
            case .vfUpdate:
                if let vf = PCIAddress(intent.target) { vfs.insert(vf) }
            case .allocationMove:
                // The VF being moved to is not held yet: the intent keeps it.
                if let vf = AllocationMove.destination(ofIntentPayload: intent.payload) { vfs.insert(vf) }
            case .allocationApply, .allocationRelease, .allocationUpdate, .allocationReapply:
                // Their VF is held by the allocation until the intent ends.
                break
            }
        }
    }
}
