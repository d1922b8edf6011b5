import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Phase B: every allocation that holds a VF, and the free VFs.
extension Reconciler {
    func reconcileAllocations(
        _ reading: Reading, snapshot: InventorySnapshot, phaseA: PhaseA, dryRun: Bool, caller: Caller,
        report: inout ReconcileReport
    ) async {
        let states = readStates(snapshot)
        var held: Set<PCIAddress> = []
        for allocation in reading.holding where !phaseA.orphaned.contains(allocation.id) {
            held.insert(allocation.vf)
            guard let (pf, vf) = snapshot.vf(allocation.vf), vf.index == allocation.vfIndex, pf.address == allocation.pf
            else {
                if allocation.state != .orphaned {
                    await orphan(
                        allocation, why: "VF index \(allocation.vfIndex) is beyond the PF's current VFs",
                        dryRun: dryRun, caller: caller, report: &report)
                }
                continue
            }
            guard let state = states[vf.address] else {
                report.add(
                    "allocation.check", target: allocation.id, outcome: .failed,
                    detail: "the VF's state could not be read")
                continue
            }
            await check(
                allocation, vf: vf, pf: pf, state: state,
                fresh: phaseA.recreated.contains(pf.address) || allocation.state == .orphaned,
                dryRun: dryRun, caller: caller, report: &report)
        }
        await findDirtyFreeVFs(snapshot, states: states, held: held, report: &report)
    }

    func orphan(_ allocation: Allocation, why: String, dryRun: Bool, caller: Caller, report: inout ReconcileReport)
        async
    {
        guard !dryRun else {
            report.add("allocation.orphan", target: allocation.id, outcome: .planned, detail: why)
            return
        }
        await setState(allocation, to: .orphaned, why: why, caller: caller)
        report.add("allocation.orphan", target: allocation.id, outcome: .done, detail: why)
    }

    func setState(_ allocation: Allocation, to state: AllocationState, why: String, caller: Caller) async {
        do {
            _ = try await core.perform { tx in
                try Self.recordState(allocation, to: state, why: why, caller: caller, tx: tx)
            }
        } catch {
            core.logger.error("could not record an allocation's state", metadata: ["error": "\(error)"])
        }
    }

    /// The allocation moved to `state`, with its audit event.
    static func recordState(
        _ allocation: Allocation, to state: AllocationState, why: String, caller: Caller, tx: Transaction
    ) throws {
        try tx.updateAllocation(id: allocation.id, state: state, releasedAt: nil)
        var after = allocation
        after.state = state
        try tx.appendAudit(
            caller.event(
                "allocation.\(state.rawValue)", target: allocation.id, outcome: .success,
                details: [
                    "before": AllocationService.json(allocation), "after": AllocationService.json(after),
                    "reason": .string(why),
                ]))
    }

    /// Compares a held VF with its allocation's record and repairs what it may.
    private func check(
        _ allocation: Allocation, vf: VirtualFunction, pf: PhysicalFunction, state: VFState, fresh: Bool, dryRun: Bool,
        caller: Caller, report: inout ReconcileReport
    ) async {
        let config = allocation.config ?? VFConfig()
        let differences = Self.differences(config, state)
        if differences.isEmpty {
            if allocation.state == .orphaned || allocation.state == .drifted {
                if !dryRun {
                    await setState(allocation, to: .active, why: "the VF matches its record again", caller: caller)
                }
                report.add(
                    "allocation.readopt", target: allocation.id, outcome: dryRun ? .planned : .done,
                    detail: "VF \(vf.address) matches")
            }
            return
        }
        let detail = differences.joined(separator: "; ")
        let driverDrift = differences.contains { $0.hasPrefix("driver") }
        // A driver nobody asked for is left as found; without restore (or in a dry run) nothing is re-applied.
        let leftAlone: (kind: String, why: String, outcome: ReconcileReport.Outcome)? =
            if driverDrift && !fresh && allocation.state == .active {
                ("allocation.drift", "VF bound to a driver nobody asked for", .done)
            } else if !restore || dryRun {
                ("allocation.reapply", "settings differ and restore is off", .reported)
            } else {
                nil
            }
        if let leftAlone {
            if !dryRun && allocation.state != .drifted {
                await setState(allocation, to: .drifted, why: "\(leftAlone.why): \(detail)", caller: caller)
            }
            report.add(
                leftAlone.kind, target: allocation.id, outcome: dryRun ? .planned : leftAlone.outcome, detail: detail,
                differences: differences)
            return
        }
        let reapply = AllocationReapply(allocation: allocation, caller: caller)
        do {
            try await core.change(reapply)
            report.add(
                "allocation.reapply", target: allocation.id, outcome: .done, detail: detail, differences: differences)
        } catch {
            report.add(
                "allocation.reapply", target: allocation.id, outcome: .failed, detail: "\(detail): \(error)",
                differences: differences)
        }
    }

    /// Free VFs whose settings are not their baseline are kept out of the pool until reset.
    private func findDirtyFreeVFs(
        _ snapshot: InventorySnapshot, states: [PCIAddress: VFState], held: Set<PCIAddress>,
        report: inout ReconcileReport
    ) async {
        let originals: [PCIAddress: VFState]
        do {
            originals = try core.store.read { view in
                var found: [PCIAddress: VFState] = [:]
                for vf in snapshot.allVFs where !held.contains(vf.address) {
                    if let json = try view.originalState(vf: vf.address), let state = VFState.decode(json) {
                        found[vf.address] = state
                    }
                }
                return found
            }
        } catch {
            return
        }
        var dirty: Set<PCIAddress> = []
        for vf in snapshot.allVFs where !held.contains(vf.address) {
            guard let state = states[vf.address] else { continue }
            let clean: Bool
            if let original = originals[vf.address] {
                clean = state.matchesBaseline(original)
            } else {
                clean = state.hasFactoryDefaultSettings && state.driver != "vfio-pci"
            }
            if !clean {
                dirty.insert(vf.address)
                report.add(
                    "vf.dirty", target: vf.address.description, outcome: .reported,
                    detail: "free, with settings that are not its baseline")
            }
        }
        core.dirtyVFs.replace(with: dirty)
    }

    /// The VF states of every PF, one read per PF.
    private func readStates(_ snapshot: InventorySnapshot) -> [PCIAddress: VFState] {
        var states: [PCIAddress: VFState] = [:]
        for entry in snapshot.host.pfs where !entry.vfs.isEmpty {
            if let found = try? core.vfs.states(of: entry.vfs, pf: entry.pf) {
                states.merge(found) { $1 }
            }
        }
        return states
    }

    /// Where the VF's state differs from what the allocation asked, one entry per field.
    static func differences(_ config: VFConfig, _ state: VFState) -> [String] {
        var result = state.differences(from: VFState(settingsOf: config)).map(\.description)
        switch config.driver {
        case .vfioPCI? where state.driver != "vfio-pci":
            result.append("driver: want vfio-pci, have \(state.driver ?? "none")")
        case .default? where state.driver == "vfio-pci" || state.driver == nil:
            result.append("driver: want the VF's kernel driver, have \(state.driver ?? "none")")
        case nil where state.driver == "vfio-pci":
            result.append("driver: nobody asked for vfio-pci, have vfio-pci")
        default:
            break
        }
        return result
    }
}

/// Reconciliation putting an allocation's settings back on its VF; the allocation turns `active` again, or
/// `drifted` when the driver refuses.
struct AllocationReapply: VFSettingsChange {
    let allocation: Allocation
    let caller: Caller

    var kind: IntentKind { .allocationReapply }
    var pf: PCIAddress { allocation.pf }
    var address: PCIAddress { allocation.vf }
    var target: String { allocation.id }
    var action: String { "allocation.reapply" }
    var config: VFConfig { allocation.config ?? VFConfig() }

    func complete(_ tx: Transaction, _ plan: VFSettingsPlan, _ result: Result<VFState, HardwareFailure>?) throws {
        if case .failure(let failure)? = result {
            try Reconciler.recordState(
                allocation, to: .drifted, why: "re-applying failed: \(failure.error)", caller: caller, tx: tx)
        } else if allocation.state != .active {
            try Reconciler.recordState(allocation, to: .active, why: "settings re-applied", caller: caller, tx: tx)
        }
    }
}
