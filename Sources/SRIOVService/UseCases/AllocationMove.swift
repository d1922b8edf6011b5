import FoundationEssentials
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// An allocation moved to another VF, keeping its id, owner, labels and identity (its settings and driver).
///
/// Both PFs are locked (in address order) for the whole change. The intent, committed before any write, names both
/// VFs, the identity, and the state each VF returns to. The writes: the identity applied to the new VF and read
/// back (`VFController.apply` undoes itself when the read-back differs), then the old VF restored to its baseline.
/// The completion points the allocation at the new VF with a grown generation, in one transaction with the audit
/// of every write and the `allocation.move` event naming both VFs. Until that commit the allocation is on the old
/// VF; recovery after a crash at any step puts the new VF back to its baseline and the identity back on the old VF.
struct AllocationMove: PFChange {
    struct Device: Sendable {
        var pf: PhysicalFunction
        var vf: VirtualFunction
    }

    struct Plan: Sendable {
        var from: Device
        var to: Device
        /// What the allocation's consumer sees: its config, with the MAC read from the old VF when it set none.
        var identity: VFConfig
        /// The state each VF returns to: the old one once the allocation left it, the new one on a roll back.
        var fromBaseline: VFState
        var toBaseline: VFState
        /// The new VF's baseline was read now, not stored yet: the intent's transaction stores it.
        var capturesBaseline: Bool

        /// Whether a driver is bound by the move: the identity names one, or the old VF's baseline has another.
        var touchesDriver: Bool { identity.driver != nil || fromBaseline.driver != from.vf.driver }
    }

    struct Moved: Sendable {
        var allocation: Allocation
        /// False when the old VF could not be put back: it is kept out of the pool.
        var oldRestored: Bool
    }

    let allocation: Allocation
    /// The VF to move to, and its PF.
    let destination: PCIAddress
    let destinationPF: PCIAddress
    let caller: Caller

    var kind: IntentKind { .allocationMove }
    var pf: PCIAddress { destinationPF }
    var pfs: [PCIAddress] { [allocation.pf, destinationPF] }
    var target: String { allocation.id }
    var vf: PCIAddress? { destination }
    var action: String { "allocation.move" }

    /// The new VF named by a move intent's payload: kept out of the pool while the intent is open.
    static func destination(ofIntentPayload payload: String) -> PCIAddress? {
        guard case .string(let text)? = (try? JSONValue.parse(payload))?["to"]?["vf"] else { return nil }
        return PCIAddress(text)
    }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        let snapshot = core.inventory.snapshot
        guard let from = snapshot.vf(allocation.vf) else { throw .vfNotFound(allocation.vf) }
        guard let to = snapshot.vf(destination) else { throw .vfNotFound(destination) }
        let current = try core.readState(of: from.vf, pf: from.pf)
        var identity = allocation.config ?? VFConfig()
        if identity.mac == nil, let mac = current.mac, mac.lowercased() != VFState.zeroMAC { identity.mac = mac }
        let stored: (from: String?, to: String?)
        do {
            stored = try core.store.read { view in
                (try view.originalState(vf: from.vf.address), try view.originalState(vf: to.vf.address))
            }
        } catch { throw .storage("\(error)") }
        // The new VF's baseline, read now when none is stored; the intent's transaction stores it (first wins).
        let known = stored.to.flatMap(VFState.decode)
        let toBaseline: VFState
        if let known { toBaseline = known } else { toBaseline = try core.readState(of: to.vf, pf: to.pf) }
        let fromBaseline = stored.from.flatMap(VFState.decode) ?? VFState.factoryDefault(driver: current.driver)
        return Plan(
            from: Device(pf: from.pf, vf: from.vf), to: Device(pf: to.pf, vf: to.vf), identity: identity,
            fromBaseline: fromBaseline, toBaseline: toBaseline, capturesBaseline: known == nil)
    }

    func payload(_ plan: Plan) -> JSONValue? {
        func side(_ device: Device, _ baseline: VFState) -> JSONValue {
            .object([
                "pf": .string(device.pf.address.description), "vf": .string(device.vf.address.description),
                "vf_index": .int(device.vf.index), "restore_to": baseline.jsonValue,
            ])
        }
        return .object([
            "from": side(plan.from, plan.fromBaseline), "to": side(plan.to, plan.toBaseline),
            "identity": plan.identity.jsonValue, "generation": .int(allocation.generation),
        ])
    }

    /// Inside the intent's transaction: the allocation still active on its VF, the new VF free, managed, not being
    /// changed, on a PF that is not cordoned.
    func admit(_ tx: Transaction, _ plan: Plan) throws -> SRIOVError? {
        guard let current = try tx.allocation(id: allocation.id), current.state == .active,
            current.vf == allocation.vf, current.generation == allocation.generation
        else { return .allocationNotFound(allocation.id) }
        if let attachment = current.attachment { return .allocationAttached(allocation.id, netns: attachment.netns) }
        if let holder = try tx.holdingAllocation(vf: destination) {
            return .vfHeld(destination, allocationID: holder.id)
        }
        let busy = try OpenChanges(tx.openIntents())
        if busy.vfs.contains(destination) { return .pfBusy(destinationPF, "\(destination) is being changed") }
        if busy.resizing.contains(destinationPF) {
            return .pfBusy(destinationPF, "its VF count is being changed; retry shortly")
        }
        let maintenance = try tx.maintenance()
        if let range = maintenance[destinationPF].managed, !range.contains(plan.to.vf.index) {
            return .vfExternal(destination, pf: destinationPF, managed: VFRangeText.text(range))
        }
        if maintenance.isCordoned(destinationPF) { return .pfCordoned(destinationPF) }
        if plan.capturesBaseline { try tx.saveOriginalState(vf: destination, json: plan.toBaseline.json) }
        return nil
    }

    /// The identity on the new VF, read back; then the old VF restored. Output: whether the old VF reads back as
    /// its baseline.
    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Bool {
        let (identity, to, timeout) = (plan.identity, plan.to, session.core.writeTimeout)
        try await session.vf(to.vf.address, queue: to.pf.address) { controller, record in
            try controller.apply(identity, to: to.vf, pf: to.pf, bindTimeout: timeout, onWrite: record)
        }
        return await session.restore(plan.fromBaseline, vf: plan.from.vf, pf: plan.from.pf)
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Bool, HardwareFailure>?) throws -> Moved {
        var details: [String: JSONValue] = [
            "from_vf": .string(allocation.vf.description), "from_pf": .string(allocation.pf.description),
            "to_vf": .string(destination.description), "to_pf": .string(destinationPF.description),
            "before": AllocationService.json(allocation),
        ]
        guard case .success(let oldRestored)? = result else {
            let error: SRIOVError =
                if case .failure(let failure)? = result { failure.error } else { .vfNotFound(destination) }
            details["outcome"] = .string("stayed on \(allocation.vf)")
            try tx.appendAudit(caller.failure(action, target: allocation.id, error, details: details))
            return Moved(allocation: allocation, oldRestored: true)
        }
        var moved = allocation
        moved.generation = try tx.moveAllocation(
            id: allocation.id, to: destination, pf: destinationPF, vfIndex: plan.to.vf.index,
            above: allocation.generation)
        moved.vf = destination
        moved.pf = destinationPF
        moved.vfIndex = plan.to.vf.index
        moved.config = plan.identity
        try tx.updateAllocationConfig(id: allocation.id, config: plan.identity)
        details["after"] = AllocationService.json(moved)
        details["old_vf_restored"] = .bool(oldRestored)
        try tx.appendAudit(caller.event(action, target: allocation.id, outcome: .success, details: details))
        return Moved(allocation: moved, oldRestored: oldRestored)
    }

    /// The database refused the move: the identity goes back on the old VF and the new VF back to its baseline.
    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool {
        await Self.rollBack(session, from: plan.from, to: plan.to, identity: plan.identity, toBaseline: plan.toBaseline)
    }

    /// The new VF to its baseline, and the identity on the old VF; true when both read back so.
    static func rollBack(
        _ session: HardwareSession, from: Device, to: Device, identity: VFConfig, toBaseline: VFState
    ) async -> Bool {
        let newRestored = await session.restore(toBaseline, vf: to.vf, pf: to.pf)
        let timeout = session.core.writeTimeout
        do {
            try await session.vf(from.vf.address, queue: from.pf.address) { controller, record in
                try controller.apply(identity, to: from.vf, pf: from.pf, bindTimeout: timeout, onWrite: record)
            }
            return newRestored
        } catch {
            return false
        }
    }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Bool, HardwareFailure>?) {
        // Settings over rtnetlink leave the inventory (devices, drivers, netdevs) as it was; a driver bound or put
        // back changes it.
        if plan.touchesDriver {
            core.inventory.rescan(pf: plan.to.pf.address)
            if plan.from.pf.address != plan.to.pf.address { core.inventory.rescan(pf: plan.from.pf.address) }
        }
        switch result {
        case .success(false)?: core.dirtyVFs.insert(plan.from.vf.address)
        case .failure(let failure)? where failure.leftChanged: core.dirtyVFs.insert(destination)
        default: break
        }
    }
}
