import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Moves the hardware toward what sriovd promised, and says exactly what it did.
///
/// SQLite holds the promises (desired VF counts, allocations and their settings); the hardware is what is.
/// A run first finishes or rolls back what a crash (or a refused commit) left open, then compares PF by PF
/// (present, missing, new; VF count against desired) and allocation by allocation (VF present, settings, driver).
/// After a host reboot it recreates the VFs and re-applies every allocation's settings to the same VF index. What
/// cannot be repaired is kept and shown (`orphaned`, `drifted`), never deleted. Every action is an audit event with
/// actor `reconciler`, and every hardware write goes through `ServiceCore.change`; a run with nothing to do writes
/// no hardware.
struct Reconciler: Sendable {
    let core: ServiceCore
    /// Whether to write the hardware (reboot recovery); false only reports.
    let restore: Bool

    /// What the run read before comparing.
    struct Reading: Sendable {
        var before: InventorySnapshot
        var previouslyKnown: Set<PCIAddress>
        var stored: [StoredPF]
        var holding: [Allocation]
    }

    /// - Parameter rescan: walk sysfs first; false at startup, where the inventory was read a moment ago.
    func run(dryRun: Bool, rescan: Bool = true, caller: Caller = .reconciler) async throws(SRIOVError)
        -> ReconcileReport
    {
        try await core.reconcileState.gate.withLock("reconcile") { () async throws(SRIOVError) -> ReconcileReport in
            let clock = ContinuousClock()
            let started = clock.now
            var report = ReconcileReport(startedAt: Timestamp.now(), dryRun: dryRun, restore: restore && !dryRun)
            if !dryRun { try await recoverIntents(caller: caller, report: &report) }
            let reading = try await read(rescan: rescan, dryRun: dryRun)
            let phaseA = await reconcilePFs(reading, dryRun: dryRun, caller: caller, report: &report)
            let snapshot = core.inventory.snapshot
            await reconcileAllocations(
                reading, snapshot: snapshot, phaseA: phaseA, dryRun: dryRun, caller: caller, report: &report)
            report.finish(elapsed: clock.now - started)
            if !dryRun {
                await record(report, changed: snapshot.version != reading.before.version, caller: caller)
            }
            return report
        }
    }

    /// The inventory and the stored promises, with the inventory recorded first (unless a dry run).
    private func read(rescan: Bool, dryRun: Bool) async throws(SRIOVError) -> Reading {
        let before = rescan ? core.inventory.rescanAll(observed: true) : core.inventory.snapshot
        let previouslyKnown: Set<PCIAddress>
        do { previouslyKnown = Set(try core.store.read { try $0.storedPFs() }.map(\.address)) } catch {
            throw .storage("\(error)")
        }
        if !dryRun {
            let host = before.host
            _ = try await core.perform { tx in try tx.recordInventory(host, seenAt: Timestamp.now()) }
        }
        do {
            return Reading(
                before: before, previouslyKnown: previouslyKnown, stored: try core.store.read { try $0.storedPFs() },
                holding: try Self.holdingAllocations(core.store))
        } catch {
            throw .storage("\(error)")
        }
    }

    /// The run's summary on record, and kept as the last report.
    private func record(_ report: ReconcileReport, changed: Bool, caller: Caller) async {
        Metrics.shared.setReconcileDuration(report.durationMS / 1000, succeeded: report.counts["failed"] == nil)
        let snapshot = core.inventory.snapshot
        do {
            _ = try await core.perform { tx in
                if changed { try tx.recordInventory(snapshot.host, seenAt: Timestamp.now()) }
                try tx.appendAudit(
                    caller.event(
                        "reconcile.run", target: "host", outcome: .success,
                        details: [
                            "counts": .object(report.counts.mapValues(JSONValue.int)),
                            "duration_ms": .number(report.durationMS), "restore": .bool(report.restore),
                        ]))
            }
        } catch {
            core.logger.error("could not record the reconcile run", metadata: ["error": "\(error)"])
        }
        core.reconcileState.setLast(report)
    }

    /// Every allocation in a state that holds a VF, across pages.
    static func holdingAllocations(_ store: Store) throws -> [Allocation] {
        var result: [Allocation] = []
        for state in AllocationState.allCases where state.holdsVF {
            var cursor: String?
            repeat {
                let page = try store.read {
                    try $0.allocations(AllocationFilter(state: state, cursor: cursor, limit: 500))
                }
                result += page.items
                cursor = page.next
            } while cursor != nil
        }
        return result
    }

    // MARK: - Phase A: PFs and their VF counts

    /// What phase A leaves for phase B.
    struct PhaseA: Sendable {
        var recreated: Set<PCIAddress> = []
        var orphaned: Set<String> = []
    }

    /// Missing PFs orphan their allocations; VFs found on a PF never seen become its desired count; PFs whose VFs
    /// are gone get them back (in parallel across PFs, as all PF writes may).
    private func reconcilePFs(_ reading: Reading, dryRun: Bool, caller: Caller, report: inout ReconcileReport) async
        -> PhaseA
    {
        var phase = PhaseA()
        var toRecreate: [(PCIAddress, Int)] = []
        for pf in reading.stored {
            guard let present = reading.before.pf(pf.address) else {
                report.add("pf.missing", target: pf.address.description, outcome: .reported, detail: "the PF is gone")
                for allocation in reading.holding where allocation.pf == pf.address && allocation.state != .orphaned {
                    phase.orphaned.insert(allocation.id)
                    await orphan(
                        allocation, why: "its PF \(pf.address) is gone", dryRun: dryRun, caller: caller, report: &report
                    )
                }
                continue
            }
            guard let desired = pf.desiredVFs else {
                await adopt(present, dryRun: dryRun, report: &report)
                continue
            }
            guard desired != present.pf.numVFs else { continue }
            if present.pf.numVFs == 0 && desired > 0 {
                guard restore && !dryRun else {
                    report.add(
                        "pf.vfs.recreate", target: pf.address.description, outcome: .planned,
                        detail: "sriov_numvfs is 0, desired \(desired)")
                    continue
                }
                toRecreate.append((pf.address, desired))
            } else {
                report.add(
                    "pf.vfs.count_mismatch", target: pf.address.description, outcome: .reported,
                    detail: "\(present.pf.numVFs) VFs, desired \(desired); left alone so VFs in use are not destroyed")
            }
        }
        for (pf, action, succeeded) in await recreate(toRecreate, caller: caller) {
            report.actions.append(action)
            if succeeded { phase.recreated.insert(pf) }
        }
        for entry in reading.before.host.pfs where !reading.previouslyKnown.contains(entry.pf.address) {
            report.add("pf.new", target: entry.pf.address.description, outcome: .reported, detail: "first seen")
        }
        return phase
    }

    /// VFs that were there before sriovd first saw the PF are adopted as its desired count, so a reboot does not
    /// lose them.
    private func adopt(_ present: PFSnapshot, dryRun: Bool, report: inout ReconcileReport) async {
        guard present.pf.numVFs > 0 else { return }
        let (pf, count) = (present.pf.address, present.pf.numVFs)
        if !dryRun { _ = try? await core.perform { tx in try tx.setDesiredVFs(pf: pf, count) } }
        report.add(
            "pf.vfs.adopt", target: pf.description, outcome: dryRun ? .planned : .done,
            detail: "desired VF count set to the \(count) found")
    }

    private func recreate(_ pfs: [(PCIAddress, Int)], caller: Caller) async -> [(
        PCIAddress, ReconcileReport.Action, Bool
    )] {
        await withTaskGroup(of: (PCIAddress, ReconcileReport.Action, Bool).self) { group in
            for (pf, count) in pfs {
                group.addTask { await recreate(pf, count: count, caller: caller) }
            }
            var results: [(PCIAddress, ReconcileReport.Action, Bool)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
    }

    private func recreate(_ pf: PCIAddress, count: Int, caller: Caller) async -> (
        PCIAddress, ReconcileReport.Action, Bool
    ) {
        func action(_ outcome: ReconcileReport.Outcome, _ detail: String) -> ReconcileReport.Action {
            ReconcileReport.Action(kind: "pf.vfs.recreate", target: pf.description, outcome: outcome, detail: detail)
        }
        // Nobody waits on an HTTP answer here, and creating hundreds of VFs (with their driver probes) can take far
        // longer than an API write may: a generous bound, still a bound.
        let change = VFCountSet(
            pf: pf, count: count, autoprobe: nil, caller: caller, timeout: core.writeTimeout * 12)
        do {
            let enabled = try await core.change(change).change.enabled
            let detail = "sriov_numvfs 0 → \(count); the kernel enabled \(enabled)"
            return (pf, action(enabled == count ? .done : .partial, detail), true)
        } catch {
            return (pf, action(.failed, "\(error)"), false)
        }
    }
}
