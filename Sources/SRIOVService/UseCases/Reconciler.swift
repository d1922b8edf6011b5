import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore
import Synchronization

/// Moves the hardware toward what sriovd promised, and says exactly what it did.
///
/// SQLite holds the promises (desired VF counts, allocations and their settings); the hardware is what is.
/// A run first finishes or rolls back what a crash interrupted, then compares PF by PF (present, missing, new;
/// VF count against desired) and allocation by allocation (VF present, settings, driver). After a host
/// reboot it recreates the VFs and re-applies every allocation's settings to the same VF index. What cannot
/// be repaired is kept and shown (`orphaned`, `drifted`), never deleted. Every action is an audit event with
/// actor `reconciler`; a run with nothing to do writes no hardware.
struct Reconciler: Sendable {
    let core: ServiceCore
    /// Whether to write the hardware (reboot recovery); false only reports.
    let restore: Bool

    /// - Parameter rescan: walk sysfs first; false at startup, where the inventory was read a moment ago.
    func run(dryRun: Bool, rescan: Bool = true, caller: Caller = .reconciler) async throws(SRIOVError)
        -> ReconcileReport
    {
        await core.reconcileState.gate.acquire("reconcile")
        defer { Task { await core.reconcileState.gate.release("reconcile") } }
        let clock = ContinuousClock()
        let started = clock.now
        var report = ReconcileReport(startedAt: Timestamp.now(), dryRun: dryRun, restore: restore && !dryRun)
        let writes = restore && !dryRun

        if !dryRun { try await recoverIntents(caller: caller, report: &report) }
        let before = rescan ? core.inventory.rescanAll() : core.inventory.snapshot
        let previouslyKnown: Set<PCIAddress>
        do { previouslyKnown = Set(try core.store.read { try $0.storedPFs() }.map(\.address)) } catch {
            throw .storage("\(error)")
        }
        if !dryRun {
            let host = before.host
            _ = try await core.perform { tx in try tx.recordInventory(host, seenAt: Timestamp.now()) }
        }
        let stored: [StoredPF]
        let holding: [Allocation]
        do {
            stored = try core.store.read { try $0.storedPFs() }
            holding = try Self.holdingAllocations(core.store)
        } catch {
            throw .storage("\(error)")
        }

        // Phase A: PFs and their VF counts. Recreations run in parallel across PFs, as all PF writes may.
        var recreated: Set<PCIAddress> = []
        var orphaned: Set<String> = []
        var toRecreate: [(PCIAddress, Int)] = []
        for pf in stored {
            guard let present = before.pf(pf.address) else {
                report.add("pf.missing", target: pf.address.description, outcome: "reported", detail: "the PF is gone")
                for allocation in holding where allocation.pf == pf.address && allocation.state != .orphaned {
                    orphaned.insert(allocation.id)
                    await orphan(
                        allocation, why: "its PF \(pf.address) is gone", dryRun: dryRun, caller: caller, report: &report
                    )
                }
                continue
            }
            guard let desired = pf.desiredVFs else {
                // VFs that were there before sriovd first saw the PF are adopted as its desired count, so a
                // reboot does not lose them.
                if present.pf.numVFs > 0 {
                    let count = present.pf.numVFs
                    if !dryRun { _ = try? await core.perform { tx in try tx.setDesiredVFs(pf: pf.address, count) } }
                    report.add(
                        "pf.vfs.adopt", target: pf.address.description, outcome: dryRun ? "planned" : "done",
                        detail: "desired VF count set to the \(count) found")
                }
                continue
            }
            guard desired != present.pf.numVFs else { continue }
            if present.pf.numVFs == 0 && desired > 0 {
                guard writes else {
                    report.add(
                        "pf.vfs.recreate", target: pf.address.description, outcome: "planned",
                        detail: "sriov_numvfs is 0, desired \(desired)")
                    continue
                }
                toRecreate.append((pf.address, desired))
            } else {
                report.add(
                    "pf.vfs.count_mismatch", target: pf.address.description, outcome: "reported",
                    detail: "\(present.pf.numVFs) VFs, desired \(desired); left alone so VFs in use are not destroyed")
            }
        }
        let recreations = await withTaskGroup(of: (PCIAddress, ReconcileReport.Action, Bool).self) { group in
            for (pf, count) in toRecreate {
                group.addTask { await recreate(pf, count: count, caller: caller) }
            }
            var results: [(PCIAddress, ReconcileReport.Action, Bool)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
        for (pf, action, succeeded) in recreations {
            report.actions.append(action)
            if succeeded { recreated.insert(pf) }
        }
        for entry in before.host.pfs where !previouslyKnown.contains(entry.pf.address) {
            report.add("pf.new", target: entry.pf.address.description, outcome: "reported", detail: "first seen")
        }

        // Phase B: every allocation that holds a VF, and the free VFs.
        let snapshot = core.inventory.snapshot
        let states = readStates(snapshot)
        var held: Set<PCIAddress> = []
        for allocation in holding where !orphaned.contains(allocation.id) {
            held.insert(allocation.vf)
            guard let (pf, vf) = snapshot.vf(allocation.vf), vf.index == allocation.vfIndex, pf.address == allocation.pf
            else {
                if allocation.state != .orphaned {
                    await orphan(
                        allocation, why: "VF index \(allocation.vfIndex) is beyond the PF's current VFs",
                        dryRun: dryRun,
                        caller: caller, report: &report)
                }
                continue
            }
            guard let state = states[vf.address] else {
                report.add(
                    "allocation.check", target: allocation.id, outcome: "failed",
                    detail: "the VF's state could not be read")
                continue
            }
            await check(
                allocation, vf: vf, pf: pf, state: state,
                fresh: recreated.contains(pf.address) || allocation.state == .orphaned,
                dryRun: dryRun, caller: caller, report: &report)
        }
        await findDirtyFreeVFs(snapshot, states: states, held: held, report: &report)

        report.finish(elapsed: clock.now - started)
        if !dryRun {
            Metrics.shared.setReconcileDuration(report.durationMS / 1000, succeeded: report.counts["failed"] == nil)
            let summary = report
            do {
                let changed = snapshot.version != before.version
                _ = try await core.perform { tx in
                    if changed { try tx.recordInventory(snapshot.host, seenAt: Timestamp.now()) }
                    try tx.appendAudit(
                        caller.event(
                            "reconcile.run", target: "host", outcome: .success,
                            details: [
                                "counts": .object(summary.counts.mapValues(JSONValue.int)),
                                "duration_ms": .number(summary.durationMS), "restore": .bool(summary.restore),
                            ]))
                }
            } catch {
                core.logger.error("could not record the reconcile run", metadata: ["error": "\(error)"])
            }
            core.reconcileState.setLast(report)
        }
        return report
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

    // MARK: - Steps

    /// Finishes what a crash interrupted: VF count changes (completed if the hardware shows them, else rolled
    /// back), allocations whose config was being applied (rolled back: never acknowledged), and releases whose
    /// restore was under way (retried).
    private func recoverIntents(caller: Caller, report: inout ReconcileReport) async throws(SRIOVError) {
        let intents: [Intent]
        do { intents = try core.store.read { try $0.openIntents() } } catch { throw .storage("\(error)") }
        guard !intents.isEmpty else { return }
        let snapshot = core.inventory.rescanAll()
        for intent in intents {
            let payload = (try? JSONValue.parse(intent.payload)) ?? .null
            var outcome = "rolled back"
            switch intent.kind {
            case "pf.vfs.set":
                var completed = false
                if let pf = PCIAddress(intent.target), case .object(let fields) = payload,
                    case .int(let wanted)? = fields["to"],
                    snapshot.pf(pf)?.pf.numVFs == wanted
                {
                    completed = true
                    outcome = "completed"
                    _ = try await core.perform { tx in try tx.setDesiredVFs(pf: pf, wanted) }
                }
                let done = completed
                _ = try await core.perform { tx in
                    try tx.completeIntent(intent.id, outcome: done ? .completed : .rolledBack)
                }
            case "allocation.apply", "allocation.release":
                _ = try await core.perform { tx in try tx.completeIntent(intent.id, outcome: .rolledBack) }
                if intent.kind == "allocation.apply", case .object(let fields) = payload,
                    case .string(let key)? = fields["idempotency_key"]
                {
                    try await markInterrupted(key: key)
                }
                do {
                    try await AllocationService(core: core).release(id: intent.target, caller: caller)
                    outcome =
                        intent.kind == "allocation.apply"
                        ? "rolled back: VF restored, allocation released" : "release finished"
                } catch {
                    outcome = "restore failed: \(error.problemSlug)"
                }
            default:
                _ = try await core.perform { tx in try tx.completeIntent(intent.id, outcome: .rolledBack) }
            }
            report.add("intent.recover", target: intent.target, outcome: "done", detail: "\(intent.kind): \(outcome)")
            try await core.audit(
                caller.event(
                    "intent.recover", target: intent.target, outcome: .success,
                    details: [
                        "intent": .int(Int(intent.id)), "kind": .string(intent.kind), "payload": payload,
                        "outcome": .string(outcome),
                    ]))
        }
    }

    /// A retry under an Idempotency-Key whose first attempt a crash interrupted gets a clear answer.
    private func markInterrupted(key: String) async throws(SRIOVError) {
        _ = try await core.perform { tx in
            guard var record = try tx.idempotencyRecord(key: key) else { return }
            record.status = 409
            record.location = nil
            record.body = SRIOVError.pfBusy(
                PCIAddress(domain: 0, bus: 0, device: 0, function: 0),
                "the first request with this key was interrupted by a restart and rolled back; retry with a new key"
            ).problemBody(instance: "/allocations")
            try tx.putIdempotencyRecord(record)
        }
    }

    private func orphan(
        _ allocation: Allocation, why: String, dryRun: Bool, caller: Caller, report: inout ReconcileReport
    ) async {
        guard !dryRun else {
            report.add("allocation.orphan", target: allocation.id, outcome: "planned", detail: why)
            return
        }
        await setState(allocation, to: .orphaned, why: why, caller: caller)
        report.add("allocation.orphan", target: allocation.id, outcome: "done", detail: why)
    }

    private func setState(_ allocation: Allocation, to state: AllocationState, why: String, caller: Caller) async {
        do {
            _ = try await core.perform { tx in
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
        } catch {
            core.logger.error("could not record an allocation's state", metadata: ["error": "\(error)"])
        }
    }

    private func recreate(_ pf: PCIAddress, count: Int, caller: Caller) async -> (
        PCIAddress, ReconcileReport.Action, Bool
    ) {
        await core.pfLocks.acquire(pf)
        defer { Task { await core.pfLocks.release(pf) } }
        func action(_ outcome: String, _ detail: String) -> ReconcileReport.Action {
            ReconcileReport.Action(kind: "pf.vfs.recreate", target: pf.description, outcome: outcome, detail: detail)
        }
        do {
            // Nobody waits on an HTTP answer here, and creating hundreds of VFs (with their driver probes) can take
            // far longer than an API write may: a generous bound, still a bound.
            try await core.hardwareWrite(
                pf: pf, attribute: "sriov_numvfs", value: String(count), caller: caller, timeout: core.writeTimeout * 12
            ) {
                try $0.setNumVFs(pf, count)
            }
            let enabled = core.inventory.rescan(pf: pf)?.pf.numVFs ?? 0
            core.inventory.settle(pf: pf)
            // The kernel made new VFs: settings captured from the old ones no longer apply.
            let gone = core.inventory.snapshot.pf(pf)?.vfs.map(\.address) ?? []
            _ = try? await core.perform { tx in for vf in gone { try tx.clearOriginalState(vf: vf) } }
            let detail = "sriov_numvfs 0 → \(count); the kernel enabled \(enabled)"
            return (pf, action(enabled == count ? "done" : "partial", detail), true)
        } catch {
            return (pf, action("failed", "\(error)"), false)
        }
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
                    "allocation.readopt", target: allocation.id, outcome: dryRun ? "planned" : "done",
                    detail: "VF \(vf.address) matches")
            }
            return
        }
        let detail = differences.joined(separator: "; ")
        let driverDrift = differences.contains { $0.hasPrefix("driver") }
        if driverDrift && !fresh && allocation.state == .active {
            if !dryRun {
                await setState(
                    allocation, to: .drifted, why: "VF bound to a driver nobody asked for: \(detail)", caller: caller)
            }
            report.add(
                "allocation.drift", target: allocation.id, outcome: dryRun ? "planned" : "done", detail: detail,
                differences: differences)
            return
        }
        guard restore && !dryRun else {
            if !dryRun && allocation.state != .drifted {
                await setState(
                    allocation, to: .drifted, why: "settings differ and restore is off: \(detail)", caller: caller)
            }
            report.add(
                "allocation.reapply", target: allocation.id, outcome: dryRun ? "planned" : "reported", detail: detail,
                differences: differences)
            return
        }
        await core.pfLocks.acquire(pf.address)
        defer { Task { await core.pfLocks.release(pf.address) } }
        do {
            try await core.apply(config, to: vf, pf: pf, caller: caller)
            core.inventory.rescan(pf: pf.address)
            if allocation.state != .active {
                await setState(allocation, to: .active, why: "settings re-applied", caller: caller)
            }
            report.add(
                "allocation.reapply", target: allocation.id, outcome: "done", detail: detail, differences: differences)
        } catch {
            await setState(allocation, to: .drifted, why: "re-applying failed: \(error)", caller: caller)
            report.add(
                "allocation.reapply", target: allocation.id, outcome: "failed", detail: "\(detail): \(error)",
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
                clean = state.sameSettings(as: original)
            } else {
                clean = state.hasFactoryDefaultSettings && state.driver != "vfio-pci"
            }
            if !clean {
                dirty.insert(vf.address)
                report.add(
                    "vf.dirty", target: vf.address.description, outcome: "reported",
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
        var result: [String] = []
        func compare<T: Equatable>(_ name: String, _ wanted: T?, _ actual: T?) {
            if let wanted, let actual, wanted != actual { result.append("\(name): want \(wanted), have \(actual)") }
        }
        compare("mac", config.mac?.lowercased(), state.mac?.lowercased())
        compare("vlan", config.vlan, state.vlan)
        compare("qos", config.qos, state.qos)
        compare("vlan_proto", config.vlanProto, state.vlanProto)
        compare("spoof_check", config.spoofCheck, state.spoofCheck)
        compare("trust", config.trust, state.trust)
        compare("link_state", config.linkState, state.linkState)
        compare("min_tx_rate", config.minTxRate, state.minTxRate)
        compare("max_tx_rate", config.maxTxRate, state.maxTxRate)
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

extension VFState {
    /// Equal settings and driver, ignoring fields either side does not report.
    func sameSettings(as other: VFState) -> Bool {
        func same<T: Equatable>(_ a: T?, _ b: T?) -> Bool { a == nil || b == nil || a == b }
        return same(mac?.lowercased(), other.mac?.lowercased()) && same(vlan, other.vlan) && same(qos, other.qos)
            && same(spoofCheck, other.spoofCheck) && same(trust, other.trust) && same(linkState, other.linkState)
            && same(minTxRate, other.minTxRate) && same(maxTxRate, other.maxTxRate) && driver == other.driver
    }
}

/// What a reconcile run found and did.
public struct ReconcileReport: Sendable, Encodable {
    public struct Action: Sendable, Encodable {
        var kind: String
        var target: String
        /// `done`, `planned` (dry run), `reported` (nothing to do or nothing allowed), `partial` or `failed`.
        var outcome: String
        var detail: String
        var differences: [String]?
    }

    var startedAt: String
    var finishedAt: String = ""
    var durationMS: Double = 0
    var dryRun: Bool
    var restore: Bool
    var counts: [String: Int] = [:]
    var actions: [Action] = []

    enum CodingKeys: String, CodingKey {
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationMS = "duration_ms"
        case dryRun = "dry_run"
        case restore, counts, actions
    }

    mutating func add(_ kind: String, target: String, outcome: String, detail: String, differences: [String]? = nil) {
        actions.append(Action(kind: kind, target: target, outcome: outcome, detail: detail, differences: differences))
    }

    mutating func finish(elapsed: Duration) {
        finishedAt = Timestamp.now()
        durationMS = elapsed.milliseconds
        counts = Dictionary(actions.map { ($0.outcome, 1) }, uniquingKeysWith: +)
    }

    /// One line per action, for `sriovd reconcile --dry-run`.
    public var lines: [String] {
        actions.map {
            "\($0.outcome.padded(toWidth: 9)) \($0.kind) \($0.target): \($0.detail)"
        }
    }
}

/// The reconciler's memory: the last report, the setting it runs with, and the gate that serializes runs.
final class ReconcileState: Sendable {
    let gate = AsyncLocks<String>()
    private let last = Mutex<ReconcileReport?>(nil)
    private let restoreSetting = Mutex(true)

    var lastReport: ReconcileReport? { last.withLock { $0 } }
    func setLast(_ report: ReconcileReport) { last.withLock { $0 = report } }

    var restore: Bool {
        get { restoreSetting.withLock { $0 } }
        set { restoreSetting.withLock { $0 = newValue } }
    }
}

/// Free VFs found with settings that are not their baseline: not handed out until reset.
final class DirtyVFs: Sendable {
    private let vfs = Mutex<Set<PCIAddress>>([])

    func replace(with set: Set<PCIAddress>) { vfs.withLock { $0 = set } }
    func remove(_ vf: PCIAddress) { _ = vfs.withLock { $0.remove(vf) } }
    var all: Set<PCIAddress> { vfs.withLock { $0 } }
}
