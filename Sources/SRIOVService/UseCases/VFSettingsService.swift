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

/// A free VF's settings changed; they become its baseline.
struct VFUpdate: VFSettingsChange {
    let pf: PCIAddress
    let address: PCIAddress
    let config: VFConfig
    let caller: Caller

    var kind: IntentKind { .vfUpdate }
    var target: String { address.description }
    var action: String { "vf.update" }

    func admit(_ tx: Transaction, _ plan: VFSettingsPlan) throws -> SRIOVError? {
        // A VF outside its PF's managed range is another owner's: never written.
        if let range = try tx.maintenance()[pf].managed, !range.contains(plan.vf.index) {
            return .vfExternal(address, pf: pf, managed: VFRangeText.text(range))
        }
        guard let holder = try tx.holdingAllocation(vf: address) else { return nil }
        return .vfHeld(address, allocationID: holder.id)
    }

    func complete(_ tx: Transaction, _ plan: VFSettingsPlan, _ result: Result<VFState, HardwareFailure>?) throws
        -> VFState
    {
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

    func settle(_ core: ServiceCore, _ plan: VFSettingsPlan, _ result: Result<VFState, HardwareFailure>?) {
        core.inventory.rescan(pf: pf)
        if case .success? = result { core.dirtyVFs.remove(address) }
    }
}
