import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Finishing what a crash, or a commit the database refused, left open.
extension Reconciler {
    /// Every open intent that no change in this process is still carrying out: VF counts completed if the hardware
    /// shows them, else rolled back; allocations whose config was being applied rolled back (never acknowledged);
    /// releases retried; settings changes put back to the state recorded before them.
    func recoverIntents(caller: Caller, report: inout ReconcileReport) async throws(SRIOVError) {
        let intents: [Intent]
        do { intents = try core.store.read { try $0.openIntents() } } catch { throw .storage("\(error)") }
        guard !intents.isEmpty else { return }
        let snapshot = core.inventory.rescanAll(observed: true)
        for intent in intents where !core.live.contains(intent.target) {
            let payload = (try? JSONValue.parse(intent.payload)) ?? .null
            let outcome = try await recover(intent, payload: payload, snapshot: snapshot, caller: caller)
            report.add(
                "intent.recover", target: intent.target, outcome: .done, detail: "\(intent.kind.rawValue): \(outcome)")
            try await core.audit(
                caller.event(
                    "intent.recover", target: intent.target, outcome: .success,
                    details: [
                        "intent": .int(Int(intent.id)), "kind": .string(intent.kind.rawValue), "payload": payload,
                        "outcome": .string(outcome),
                    ]))
        }
    }

    /// Recovers one intent; what was done, in words.
    private func recover(_ intent: Intent, payload: JSONValue, snapshot: InventorySnapshot, caller: Caller)
        async throws(SRIOVError) -> String
    {
        switch intent.kind {
        case .vfCount:
            return try await recoverVFCount(intent, payload: payload, snapshot: snapshot)
        case .allocationApply:
            try await close(intent)
            if case .string(let key)? = payload["idempotency_key"] { try await markInterrupted(key: key) }
            return await release(intent.target, caller: caller, done: "rolled back: VF restored, allocation released")
        case .allocationRelease:
            try await close(intent)
            return await release(intent.target, caller: caller, done: "release finished")
        case .allocationUpdate, .vfUpdate:
            return await rollBack(intent, payload: payload, caller: caller)
        case .allocationReapply:
            try await close(intent)
            return "rolled back: the allocation is checked again by this run"
        case .allocationMove:
            return await recoverMove(intent, payload: payload, caller: caller)
        }
    }

    /// A move cut off: finished when the allocation's record names the new VF, else rolled back.
    private func recoverMove(_ intent: Intent, payload: JSONValue, caller: Caller) async -> String {
        guard let recovery = MoveRecovery(intent: intent, payload: payload, caller: caller) else {
            _ = try? await close(intent)
            return "rolled back: the intent names no VFs to return to"
        }
        do {
            return try await core.change(recovery, opening: .open(intent.id))
        } catch {
            return "recovery failed: \(error.problemSlug)"
        }
    }

    /// Completed when the hardware shows the count asked for, else rolled back.
    private func recoverVFCount(_ intent: Intent, payload: JSONValue, snapshot: InventorySnapshot)
        async throws(SRIOVError) -> String
    {
        let pf = PCIAddress(intent.target)
        let wanted: Int? = if case .int(let count)? = payload["to"] { count } else { nil }
        let completed = pf != nil && wanted != nil && snapshot.pf(pf!)?.pf.numVFs == wanted
        _ = try await core.perform { tx in
            if completed, let pf, let wanted { try tx.setDesiredVFs(pf: pf, wanted) }
            try tx.completeIntent(intent.id, outcome: completed ? .completed : .rolledBack)
        }
        return completed ? "completed" : "rolled back"
    }

    private func close(_ intent: Intent) async throws(SRIOVError) {
        _ = try await core.perform { tx in try tx.completeIntent(intent.id, outcome: .rolledBack) }
    }

    private func release(_ id: String, caller: Caller, done: String) async -> String {
        do {
            try await AllocationService(core: core).release(id: id, caller: caller)
            return done
        } catch {
            return "restore failed: \(error.problemSlug)"
        }
    }

    /// A settings change whose outcome was never recorded: the VF goes back to the state read before it.
    private func rollBack(_ intent: Intent, payload: JSONValue, caller: Caller) async -> String {
        guard case .string(let vfText)? = payload["vf"], let vf = PCIAddress(vfText),
            case .string(let pfText)? = payload["pf"], let pf = PCIAddress(pfText),
            let state = payload["restore_to"].flatMap({ VFState.decode($0.text) })
        else {
            _ = try? await close(intent)
            return "rolled back: the intent names no VF state to return to"
        }
        let rollback = IntentRollback(intent: intent, pf: pf, vf: vf, state: state, caller: caller)
        do {
            try await core.change(rollback, opening: .open(intent.id))
            return "rolled back: VF put back to the state before the change"
        } catch {
            return "roll back failed: \(error.problemSlug)"
        }
    }

    /// A retry under an Idempotency-Key whose first attempt a crash interrupted gets a clear answer.
    private func markInterrupted(key: String) async throws(SRIOVError) {
        _ = try await core.perform { tx in
            guard let record = try tx.idempotencyRecord(key: key) else { return }
            try tx.putIdempotencyRecord(
                IdempotentAnswer.failed(
                    .idempotentRequestInterrupted(key), key: key, requestHash: record.requestHash,
                    instance: "/allocations"))
        }
    }
}

/// An open settings intent rolled back: the VF restored to the state recorded before the change.
struct IntentRollback: PFChange {
    struct Plan: Sendable {
        var device: (pf: PhysicalFunction, vf: VirtualFunction)?
    }

    let intent: Intent
    let pf: PCIAddress
    let address: PCIAddress
    let state: VFState
    let caller: Caller

    init(intent: Intent, pf: PCIAddress, vf: PCIAddress, state: VFState, caller: Caller) {
        self.intent = intent
        self.pf = pf
        self.address = vf
        self.state = state
        self.caller = caller
    }

    var kind: IntentKind { intent.kind }
    var target: String { intent.target }
    var vf: PCIAddress? { address }
    var action: String { "intent.rollback" }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        Plan(device: core.inventory.snapshot.vf(address))
    }

    func payload(_ plan: Plan) -> JSONValue? { nil }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Void {
        guard let (pf, vf) = plan.device else { return }
        let (state, timeout) = (self.state, session.core.writeTimeout)
        try await session.vf(vf.address) { controller, record in
            try controller.restore(state, vf: vf, pf: pf, bindTimeout: timeout, onWrite: record)
        }
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) throws {
        if case .failure(let failure)? = result {
            try tx.appendAudit(caller.failure(action, target: target, failure.error))
        }
    }

    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool { true }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) {
        if let (pf, _) = plan.device { core.inventory.rescan(pf: pf.address) }
        if case .success? = result, plan.device != nil { core.dirtyVFs.remove(address) }
    }
}
