import FoundationEssentials
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// A move whose outcome a crash (or a refused commit) left unrecorded, finished from its intent.
///
/// The allocation's record is switched to the new VF in the same transaction that completes the intent, so a record
/// still naming the old VF means the move never happened: the new VF goes back to its baseline and the identity back
/// on the old VF (whatever step the crash cut: the old VF may have been restored already). A record naming the new
/// VF means only the old VF's restore may be missing: it is done again.
struct MoveRecovery: PFChange {
    struct Side: Sendable {
        var pf: PCIAddress
        var vf: PCIAddress
        var baseline: VFState
    }

    struct Plan: Sendable {
        var from: AllocationMove.Device?
        var to: AllocationMove.Device?
        /// The allocation's record names the new VF.
        var switched: Bool
    }

    let intent: Intent
    let from: Side
    let to: Side
    let identity: VFConfig
    let caller: Caller

    /// Nil when the payload does not name both VFs and their baselines.
    init?(intent: Intent, payload: JSONValue, caller: Caller) {
        func side(_ value: JSONValue?) -> Side? {
            guard case .string(let pf)? = value?["pf"], case .string(let vf)? = value?["vf"],
                let pfAddress = PCIAddress(pf), let vfAddress = PCIAddress(vf),
                let baseline = value?["restore_to"].flatMap({ VFState.decode($0.text) })
            else { return nil }
            return Side(pf: pfAddress, vf: vfAddress, baseline: baseline)
        }
        guard let from = side(payload["from"]), let to = side(payload["to"]),
            let identityText = payload["identity"]?.text,
            let identity = try? JSONDecoder().decode(VFConfig.self, from: Data(identityText.utf8))
        else { return nil }
        (self.intent, self.from, self.to, self.identity, self.caller) = (intent, from, to, identity, caller)
    }

    var kind: IntentKind { .allocationMove }
    var pf: PCIAddress { to.pf }
    var pfs: [PCIAddress] { [from.pf, to.pf] }
    var target: String { intent.target }
    var vf: PCIAddress? { to.vf }
    var action: String { "allocation.move.recover" }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        let record: Allocation?
        do { record = try core.store.read { try $0.allocation(id: intent.target) } } catch {
            throw .storage("\(error)")
        }
        let snapshot = core.inventory.snapshot
        func device(_ vf: PCIAddress) -> AllocationMove.Device? {
            snapshot.vf(vf).map { AllocationMove.Device(pf: $0.pf, vf: $0.vf) }
        }
        return Plan(from: device(from.vf), to: device(to.vf), switched: record?.vf == to.vf)
    }

    func payload(_ plan: Plan) -> JSONValue? { nil }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Void {
        if plan.switched {
            guard let old = plan.from else { return }
            guard await session.restore(from.baseline, vf: old.vf, pf: old.pf) else {
                throw HardwareFailure(error: .pfBusy(from.pf, "\(from.vf) could not be restored"), leftChanged: true)
            }
            return
        }
        if let new = plan.to, !(await session.restore(to.baseline, vf: new.vf, pf: new.pf)) {
            throw HardwareFailure(error: .pfBusy(to.pf, "\(to.vf) could not be restored"), leftChanged: true)
        }
        guard let old = plan.from else { return }
        let (identity, timeout) = (self.identity, session.core.writeTimeout)
        try await session.vf(old.vf.address, queue: old.pf.address) { controller, record in
            try controller.apply(identity, to: old.vf, pf: old.pf, bindTimeout: timeout, onWrite: record)
        }
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) throws -> String {
        let outcome =
            plan.switched
            ? "completed: the allocation is on \(to.vf); \(from.vf) restored"
            : "rolled back: the allocation stays on \(from.vf) with its identity; \(to.vf) restored"
        if case .failure(let failure)? = result {
            try tx.appendAudit(
                caller.failure(action, target: target, failure.error, details: ["plan": .string(outcome)]))
            return "recovery failed: \(failure.error.problemSlug)"
        }
        try tx.appendAudit(
            caller.event(action, target: target, outcome: .success, details: ["outcome": .string(outcome)]))
        return outcome
    }

    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool { false }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) {
        core.inventory.rescan(pf: to.pf)
        if from.pf != to.pf { core.inventory.rescan(pf: from.pf) }
        if case .failure? = result { core.dirtyVFs.insert(plan.switched ? from.vf : to.vf) }
    }
}
