import SRIOVCore
import SRIOVHardware
import SRIOVStore

extension AllocationService {
    /// Releases an allocation and restores its VF completely.
    ///
    /// Fenced by the id: only the allocation that holds the VF can reset it, so a late release of an older
    /// allocation of the same VF finds nothing to do (404) and touches nothing. While the VF is restored the
    /// allocation keeps holding it, so no one else can be handed a VF that is still being reset. When the
    /// restore fails the allocation becomes `dirty` and keeps the VF out of the pool.
    /// - Parameter generation: when given, the release is refused (`generationMismatch`) unless the allocation is at
    ///   that generation: a late release naming it before a move never reaches the VF it moved to.
    func release(id: String, generation: Int? = nil, caller: Caller) async throws(SRIOVError) {
        let first = try await active(id, action: "allocation.release", caller: caller) { $0.holdsVF }
        // One release or change (or move) of an allocation at a time (another is refused as busy), so a read of the
        // VF that finds nothing to restore stays true until the release is recorded.
        guard core.releasing.claim(id) else {
            throw .pfBusy(first.pf, "allocation \(id) is being released or changed")
        }
        defer { core.releasing.finish(id) }
        // Read again once claimed: a move that ended meanwhile changed its VF.
        let allocation = try await active(id, action: "allocation.release", caller: caller) { $0.holdsVF }
        if let generation, generation != allocation.generation {
            let error = SRIOVError.generationMismatch(id, given: generation, current: allocation.generation)
            try await core.audit(caller.failure("allocation.release", target: id, error))
            throw error
        }
        try await core.change(AllocationRelease(allocation: allocation, caller: caller)).get()
    }

    /// Changes the settings of a held VF. Either the whole change applies or the VF is left as it was.
    func update(id: String, config: VFConfig, caller: Caller) async throws(SRIOVError) -> Allocation {
        let first = try await active(id, action: "allocation.update", caller: caller) { $0 == .active }
        guard core.releasing.claim(id) else {
            throw .pfBusy(first.pf, "allocation \(id) is being released or changed")
        }
        defer { core.releasing.finish(id) }
        let allocation = try await active(id, action: "allocation.update", caller: caller) { $0 == .active }
        return try await core.change(AllocationUpdate(allocation: allocation, config: config, caller: caller))
    }

    /// The allocation with this id in a state `accepts`; otherwise a 404, audited.
    private func active(
        _ id: String, action: String, caller: Caller, accepts: (AllocationState) -> Bool
    ) async throws(SRIOVError) -> Allocation {
        let found: Allocation?
        do { found = try core.store.read { try $0.allocation(id: id) } } catch { throw .storage("\(error)") }
        guard let allocation = found, accepts(allocation.state) else {
            try await core.audit(caller.failure(action, target: id, .allocationNotFound(id)))
            throw .allocationNotFound(id)
        }
        return allocation
    }
}

/// A released allocation's VF put back to its captured original settings (or factory defaults when none was
/// captured), all fields unconditionally, when anything differs or the allocation applied a config. A VF that is
/// gone (its PF shrank or vanished) has nothing to restore, and a VF that reads as its baseline needs no write.
struct AllocationRelease: PFChange {
    struct Plan: Sendable {
        var device: (pf: PhysicalFunction, vf: VirtualFunction)?
        var original: VFState?
        /// Why nothing is written, when nothing is.
        var summary: String
        /// The VF could not be read: the release fails and the allocation turns `dirty`.
        var readFailure: SRIOVError? = nil
    }

    let allocation: Allocation
    let caller: Caller

    var kind: IntentKind { .allocationRelease }
    var pf: PCIAddress { allocation.pf }
    var target: String { allocation.id }
    var vf: PCIAddress? { allocation.vf }
    var action: String { "allocation.release" }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        let absent = Plan(device: nil, original: nil, summary: "vf absent: nothing to restore")
        guard let (pf, vf) = core.inventory.snapshot.vf(allocation.vf), vf.index == allocation.vfIndex else {
            return absent
        }
        let stored: String?
        do { stored = try core.store.read { try $0.originalState(vf: vf.address) } } catch {
            throw .storage("\(error)")
        }
        let current: VFState
        do { current = try core.readState(of: vf, pf: pf) } catch {
            // The VF may have just gone (its PF's VFs removed behind sriovd's back, the uevent's rescan still
            // pending): look again before calling the read a failure.
            let stillThere = core.inventory.rescan(pf: pf.address)?.vfs.contains {
                $0.address == vf.address && $0.index == vf.index
            }
            guard stillThere == true else { return absent }
            return Plan(device: (pf, vf), original: nil, summary: "could not read the VF", readFailure: error)
        }
        let original = stored.flatMap(VFState.decode) ?? VFState.factoryDefault(driver: current.driver)
        if allocation.config == nil && current.matchesBaseline(original) {
            return Plan(device: (pf, vf), original: nil, summary: "unchanged: nothing to restore")
        }
        return Plan(device: (pf, vf), original: original, summary: "restored every setting and the driver")
    }

    func payload(_ plan: Plan) -> JSONValue? {
        guard let original = plan.original, plan.device != nil else { return nil }
        return .object([
            "pf": .string(pf.description), "vf": .string(allocation.vf.description), "restore_to": original.jsonValue,
        ])
    }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Void {
        guard let (pf, vf) = plan.device, let original = plan.original else { return }
        let timeout = session.core.writeTimeout
        try await session.vf(vf.address) { controller, record in
            try controller.restore(original, vf: vf, pf: pf, bindTimeout: timeout, onWrite: record)
        }
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) throws -> Result<
        Void, SRIOVError
    > {
        // Re-read inside the writer: a concurrent release of the same id may have won.
        guard let current = try tx.allocation(id: allocation.id), current.state.holdsVF else {
            let error = SRIOVError.allocationNotFound(allocation.id)
            try tx.appendAudit(caller.failure(action, target: allocation.id, error))
            return .failure(error)
        }
        var details: [String: JSONValue] = [
            "before": AllocationService.json(current), "vf": .string(current.vf.description),
        ]
        var after = current
        let failure: SRIOVError? =
            if case .failure(let failure)? = result { failure.error } else { plan.readFailure }
        if let failure {
            after.state = .dirty
            try tx.updateAllocation(id: allocation.id, state: .dirty, releasedAt: nil)
            details["restore"] = .string(result == nil ? plan.summary : "restore incomplete")
            details["after"] = AllocationService.json(after)
            try tx.appendAudit(caller.failure(action, target: allocation.id, failure, details: details))
            return .failure(failure)
        }
        after.state = .released
        after.releasedAt = Timestamp.now()
        try tx.updateAllocation(id: allocation.id, state: .released, releasedAt: after.releasedAt)
        details["restore"] = .string(plan.summary)
        details["after"] = AllocationService.json(after)
        try tx.appendAudit(caller.event(action, target: allocation.id, outcome: .success, details: details))
        return .success(())
    }

    /// The allocation still holds the VF in the database: its config goes back on.
    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool {
        guard let (pf, vf) = plan.device, let config = allocation.config else { return true }
        let timeout = session.core.writeTimeout
        do {
            try await session.vf(vf.address) { controller, record in
                try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record)
            }
            return true
        } catch {
            return false
        }
    }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Void, HardwareFailure>?) {
        guard plan.device != nil else { return }
        if plan.original != nil || plan.readFailure != nil { core.inventory.rescan(pf: pf) }
        if case .success? = result { core.dirtyVFs.remove(allocation.vf) }
    }
}

/// A held VF's settings changed, merged into the allocation's record.
struct AllocationUpdate: VFSettingsChange {
    let allocation: Allocation
    let config: VFConfig
    let caller: Caller

    var kind: IntentKind { .allocationUpdate }
    var pf: PCIAddress { allocation.pf }
    var address: PCIAddress { allocation.vf }
    var target: String { allocation.id }
    var action: String { "allocation.update" }

    func admit(_ tx: Transaction, _ plan: VFSettingsPlan) throws -> SRIOVError? {
        guard let current = try tx.allocation(id: allocation.id), current.state == .active else {
            return .allocationNotFound(allocation.id)
        }
        return nil
    }

    func complete(_ tx: Transaction, _ plan: VFSettingsPlan, _ result: Result<VFState, HardwareFailure>?) throws
        -> Allocation
    {
        if case .failure(let failure)? = result {
            try tx.appendAudit(
                caller.failure(
                    action, target: allocation.id, failure.error, details: ["vf": .string(allocation.vf.description)]))
            return allocation
        }
        var merged = allocation
        merged.config = (allocation.config ?? VFConfig()).merging(config)
        try tx.updateAllocationConfig(id: allocation.id, config: merged.config)
        try tx.appendAudit(
            caller.event(
                action, target: allocation.id, outcome: .success,
                details: ["before": AllocationService.json(allocation), "after": AllocationService.json(merged)]))
        return merged
    }
}

extension VFConfig {
    /// These settings with `other`'s non-nil fields laid over them.
    func merging(_ other: VFConfig) -> VFConfig {
        VFConfig(
            mac: other.mac ?? mac, vlan: other.vlan ?? vlan, qos: other.qos ?? qos,
            vlanProto: other.vlanProto ?? vlanProto,
            spoofCheck: other.spoofCheck ?? spoofCheck, trust: other.trust ?? trust,
            linkState: other.linkState ?? linkState,
            minTxRate: other.minTxRate ?? minTxRate, maxTxRate: other.maxTxRate ?? maxTxRate,
            driver: other.driver ?? driver)
    }
}
