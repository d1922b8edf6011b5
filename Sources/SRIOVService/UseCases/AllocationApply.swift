import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// A new allocation's config applied to its VF. Its intent is opened by the claim that chose the VF; the state to
/// return to is the VF's baseline, captured and committed before the first write when none was stored.
struct AllocationApply: PFChange {
    struct Plan: Sendable {
        /// The VF and its PF; nil when the VF is gone.
        var device: (pf: PhysicalFunction, vf: VirtualFunction)?
        /// The baseline to return to.
        var original: VFState?
        /// Why the VF cannot be written, found while planning.
        var refusal: SRIOVError?
    }

    let allocation: Allocation
    let idempotency: AllocationService.Idempotency?
    let caller: Caller
    let render: @Sendable (Allocation) -> [UInt8]

    var kind: IntentKind { .allocationApply }
    var pf: PCIAddress { allocation.pf }
    var target: String { allocation.id }
    var vf: PCIAddress? { allocation.vf }
    var action: String { "allocation.create" }

    /// Never throws: the intent is already open, and every way this ends must complete it.
    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        guard let device = core.inventory.snapshot.vf(allocation.vf) else {
            return Plan(device: nil, original: nil, refusal: .vfNotFound(allocation.vf))
        }
        do {
            let stored = try core.store.read { try $0.originalState(vf: allocation.vf) }.flatMap(VFState.decode)
            if let stored { return Plan(device: device, original: stored, refusal: nil) }
            let now = try core.readState(of: device.vf, pf: device.pf)
            let vf = allocation.vf
            _ = try await core.perform { tx in try tx.saveOriginalState(vf: vf, json: now.json) }
            return Plan(device: device, original: now, refusal: nil)
        } catch {
            let refusal = error as? SRIOVError ?? .storage("\(error)")
            return Plan(device: device, original: nil, refusal: refusal)
        }
    }

    func payload(_ plan: Plan) -> JSONValue? { nil }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Void {
        guard let (pf, vf) = plan.device, plan.refusal == nil else {
            throw HardwareFailure(error: plan.refusal ?? .vfNotFound(allocation.vf), leftChanged: false)
        }
        let (config, timeout) = (allocation.config ?? VFConfig(), session.core.writeTimeout)
        try await session.vf(vf.address) { controller, record in
            try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record)
        }
        // The answer names the VF's device (netdev or /dev/vfio/N) as it is now.
        session.core.inventory.rescan(pf: pf.address)
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) throws -> [UInt8] {
        if case .failure(let failure)? = result {
            try recordFailure(tx, failure)
            return []
        }
        let body = render(allocation)
        try AllocationService.recordCreated(allocation, body: body, idempotency: idempotency, caller: caller, tx: tx)
        return body
    }

    /// The allocation ends: released when the VF is as before, `dirty` when the rollback was incomplete.
    private func recordFailure(_ tx: Transaction, _ failure: HardwareFailure) throws {
        let state: AllocationState = failure.leftChanged ? .dirty : .released
        try tx.updateAllocation(
            id: allocation.id, state: state, releasedAt: failure.leftChanged ? nil : Timestamp.now())
        try tx.appendAudit(
            caller.failure(
                action, target: allocation.id, failure.error,
                details: ["vf": .string(allocation.vf.description), "allocation_state": .string(state.rawValue)]))
        if let idempotency {
            try tx.putIdempotencyRecord(
                IdempotentAnswer.failed(
                    failure.error, key: idempotency.key, requestHash: idempotency.requestHash,
                    instance: "/allocations"))
        }
    }

    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool {
        guard let (pf, vf) = plan.device, let original = plan.original else { return false }
        return await session.restore(original, vf: vf, pf: pf)
    }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) {
        core.inventory.rescan(pf: allocation.pf)
    }
}
