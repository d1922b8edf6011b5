import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// A change that applies VF settings and, to undo or recover, restores the state read before it: a free VF's
/// settings (`PATCH /vfs`), a held VF's (`PATCH /allocations`), and reconciliation re-applying an allocation's.
/// The steps are shared; each change says only what it records.
protocol VFSettingsChange: PFChange where Plan == VFSettingsPlan, Output == VFState {
    /// The VF changed.
    var address: PCIAddress { get }
    /// The settings to apply.
    var config: VFConfig { get }
}

/// The VF, its PF, and the state read before the change: what undo and recovery return to.
struct VFSettingsPlan: Sendable {
    var pf: PhysicalFunction
    var vf: VirtualFunction
    var before: VFState
}

extension VFSettingsChange {
    var vf: PCIAddress? { address }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> VFSettingsPlan {
        guard let (pf, vf) = core.inventory.snapshot.vf(address) else { throw .vfNotFound(address) }
        return VFSettingsPlan(pf: pf, vf: vf, before: try core.readState(of: vf, pf: pf))
    }

    func payload(_ plan: VFSettingsPlan) -> JSONValue? {
        .object([
            "pf": .string(pf.description), "vf": .string(address.description), "restore_to": plan.before.jsonValue,
            "config": config.jsonValue,
        ])
    }

    func write(_ session: HardwareSession, _ plan: VFSettingsPlan) async throws(HardwareFailure) -> VFState {
        let (config, vf, pf, timeout) = (self.config, plan.vf, plan.pf, session.core.writeTimeout)
        return try await session.vf(address) { controller, record in
            try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record).state
        }
    }

    func undo(_ session: HardwareSession, _ plan: VFSettingsPlan) async -> Bool {
        await session.restore(plan.before, vf: plan.vf, pf: plan.pf)
    }

    func settle(_ core: ServiceCore, _ plan: VFSettingsPlan, _ result: Result<VFState, HardwareFailure>?) {
        core.inventory.rescan(pf: pf)
    }
}
