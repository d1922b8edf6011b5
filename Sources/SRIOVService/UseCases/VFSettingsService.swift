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
        let action = "vf.update"
        guard let (pf, _) = core.inventory.snapshot.vf(address) else {
            try await core.audit(caller.failure(action, target: address.description, .vfNotFound(address)))
            throw .vfNotFound(address)
        }
        await core.pfLocks.acquire(pf.address)
        defer { Task { await core.pfLocks.release(pf.address) } }
        let holder: Allocation?
        do { holder = try core.store.read { try $0.holdingAllocation(vf: address) } } catch {
            throw .storage("\(error)")
        }
        if let holder {
            let error = SRIOVError.vfHeld(address, allocationID: holder.id)
            try await core.audit(caller.failure(action, target: address.description, error))
            throw error
        }
        guard let (freshPF, vf) = core.inventory.snapshot.vf(address) else { throw .vfNotFound(address) }
        let timeout = core.writeTimeout
        let result: (before: VFState, after: VFState)
        do {
            result = try await core.vfWork(pf: freshPF.address, caller: caller) { controller, record in
                do {
                    let before = try controller.state(of: vf, pf: freshPF)
                    let applied = try controller.apply(
                        config, to: vf, pf: freshPF, bindTimeout: timeout, onWrite: record)
                    return (before, applied.state)
                } catch let error as VFHardwareError {
                    throw error.domainError(vf: address)
                }
            }
        } catch {
            let failure = error as? SRIOVError ?? .kernel(operation: "apply VF config", errno: 0, name: "\(error)")
            try await core.audit(caller.failure(action, target: address.description, failure))
            throw failure
        }
        core.inventory.rescan(pf: freshPF.address)
        core.dirtyVFs.remove(address)
        let (before, after) = result
        _ = try await core.perform { tx in
            try tx.clearOriginalState(vf: address)
            try tx.saveOriginalState(vf: address, json: after.json)
            try tx.appendAudit(
                caller.event(
                    action, target: address.description, outcome: .success,
                    details: [
                        "before": (try? JSONValue.parse(before.json)) ?? .null,
                        "after": (try? JSONValue.parse(after.json)) ?? .null,
                    ]))
        }
        return after
    }
}
