import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Admin changes to the settings of a free VF (`PATCH /vfs/{address}`).
///
/// The change becomes the VF's new baseline: its captured original is replaced, so the next release of an
/// allocation on it restores to what the admin set, not to what was there before.
struct VFSettingsService: Sendable {
    let core: ServiceCore

    func update(vf address: PCIAddress, config: VFConfig, caller: Caller) async throws(SRIOVError) -> VFState {
        guard let (pf, _) = core.inventory.snapshot.vf(address) else {
            try await core.audit(caller.failure("vf.update", target: address.description, .vfNotFound(address)))
            throw .vfNotFound(address)
        }
        return try await core.change(VFUpdate(pf: pf.address, address: address, config: config, caller: caller))
    }
}

/// A free VF's settings changed; they become its baseline. Undone (and recovered) by restoring the state read
/// before.
struct VFUpdate: PFChange {
    struct Plan: Sendable {
        var pf: PhysicalFunction
        var vf: VirtualFunction
        var before: VFState
    }

    let pf: PCIAddress
    let address: PCIAddress
    let config: VFConfig
    let caller: Caller

    var kind: IntentKind { .vfUpdate }
    var target: String { address.description }
    var vf: PCIAddress? { address }
    var action: String { "vf.update" }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        guard let (pf, vf) = core.inventory.snapshot.vf(address) else { throw .vfNotFound(address) }
        return Plan(pf: pf, vf: vf, before: try core.readState(of: vf, pf: pf))
    }

    func payload(_ plan: Plan) -> JSONValue? {
        .object([
            "pf": .string(pf.description), "vf": .string(address.description), "restore_to": plan.before.jsonValue,
            "config": config.jsonValue,
        ])
    }

    func admit(_ tx: Transaction, _ plan: Plan) throws -> SRIOVError? {
        guard let holder = try tx.holdingAllocation(vf: address) else { return nil }
        return .vfHeld(address, allocationID: holder.id)
    }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> VFState {
        let (config, vf, pf, timeout) = (self.config, plan.vf, plan.pf, session.core.writeTimeout)
        return try await session.vf(address) { controller, record in
            try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record).state
        }
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<VFState, HardwareFailure>?) throws -> VFState {
        guard case .success(let after)? = result else {
            if case .failure(let failure)? = result {
                try tx.appendAudit(caller.failure(action, target: target, failure.error))
            }
            return plan.before
        }
        try tx.clearOriginalState(vf: address)
        try tx.saveOriginalState(vf: address, json: after.json)
        try tx.appendAudit(
            caller.event(
                action, target: target, outcome: .success,
                details: ["before": plan.before.jsonValue, "after": after.jsonValue]))
        return after
    }

    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool {
        await session.restore(plan.before, vf: plan.vf, pf: plan.pf)
    }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<VFState, HardwareFailure>?) {
        core.inventory.rescan(pf: pf)
        if case .success? = result { core.dirtyVFs.remove(address) }
    }
}
