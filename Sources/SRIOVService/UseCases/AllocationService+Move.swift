import SRIOVCore
import SRIOVHardware
import SRIOVStore

extension AllocationService {
    /// Moves an active allocation to a free VF of another PF (or another VF of the same PF, when `pf` names it),
    /// keeping its id, owner, labels and identity. Either it ends on the new VF with its identity read back, or it
    /// stays on the old one as it was. One release or change of an allocation at a time.
    func move(id: String, to destination: MoveDestination, caller: Caller) async throws(SRIOVError)
        -> AllocationMove.Moved
    {
        let first = try await movable(id, caller: caller)
        guard core.releasing.claim(id) else {
            throw .pfBusy(first.pf, "allocation \(id) is being released or changed")
        }
        defer { core.releasing.finish(id) }
        let allocation = try await movable(id, caller: caller)
        let (vf, pf) = try await chooseDestination(for: allocation, destination, caller: caller)
        return try await core.change(
            AllocationMove(allocation: allocation, destination: vf, destinationPF: pf, caller: caller))
    }

    /// The allocation, if it is active and detached; a refusal is audited.
    private func movable(_ id: String, caller: Caller) async throws(SRIOVError) -> Allocation {
        let found: Allocation?
        do { found = try core.store.read { try $0.allocation(id: id) } } catch { throw .storage("\(error)") }
        let refusal: SRIOVError?
        if let found, found.state == .active {
            refusal = found.attachment.map { .allocationAttached(id, netns: $0.netns) }
        } else {
            refusal = .allocationNotFound(id)
        }
        if let refusal {
            try await core.audit(caller.failure("allocation.move", target: id, refusal))
            throw refusal
        }
        return found!
    }

    /// The free VF the move lands on, read from the inventory and the store (the intent's transaction checks it
    /// again). A refusal is audited.
    private func chooseDestination(for allocation: Allocation, _ destination: MoveDestination, caller: Caller)
        async throws(SRIOVError) -> (PCIAddress, PCIAddress)
    {
        do {
            return try pickDestination(for: allocation, destination)
        } catch {
            try await core.audit(
                caller.failure(
                    "allocation.move", target: allocation.id, error,
                    details: ["from_vf": .string(allocation.vf.description)]))
            throw error
        }
    }

    private func pickDestination(for allocation: Allocation, _ destination: MoveDestination) throws(SRIOVError)
        -> (PCIAddress, PCIAddress)
    {
        let snapshot = core.inventory.snapshot
        let dirty = core.dirtyVFs.all
        let (maintenance, held, busy): (MaintenanceMap, Set<PCIAddress>, OpenChanges)
        do {
            (maintenance, held, busy) = try core.store.read { view in
                (try view.maintenance(), try view.heldVFs(), OpenChanges(try view.openIntents()))
            }
        } catch { throw .storage("\(error)") }
        var candidates: [PlacementCandidate] = []
        for entry in snapshot.host.pfs {
            let pf = entry.pf
            switch destination {
            case .pf(let wanted):
                guard pf.address == wanted else { continue }
                if maintenance.isCordoned(wanted) { throw .pfCordoned(wanted) }
            case .selector(let selector):
                guard pf.address != allocation.pf, !maintenance.isCordoned(pf.address) else { continue }
                guard entry.vfs.contains(where: { selector.matches($0, of: pf) }) else { continue }
            }
            if busy.resizing.contains(pf.address) { continue }
            for vf in entry.vfs
            where maintenance[pf.address].manages(vfIndex: vf.index) && vf.address != allocation.vf
                && !held.contains(vf.address) && !dirty.contains(vf.address) && !busy.vfs.contains(vf.address)
            {
                candidates.append(
                    PlacementCandidate(
                        vf: vf.address, pf: pf.address, vfIndex: vf.index, numaNode: vf.numaNode ?? pf.numaNode))
            }
        }
        if case .pf(let wanted) = destination, snapshot.pf(wanted) == nil { throw .pfNotFound(wanted) }
        var options = PlacementRule.Options(mode: .spread)
        if case .selector(let selector) = destination {
            options.mode = selector.placement ?? .spread
            options.preferNUMANode = selector.preferNUMANode
        }
        var heldByPF: [PCIAddress: Int] = [:]
        for entry in snapshot.host.pfs {
            heldByPF[entry.pf.address] = entry.vfs.filter { held.contains($0.address) }.count
        }
        guard case .chosen(let chosen, _) = PlacementRule.choose(free: candidates, held: heldByPF, options: options)
        else { throw .noMoveDestination(allocation.id, from: allocation.vf) }
        return (chosen.vf, chosen.pf)
    }
}
