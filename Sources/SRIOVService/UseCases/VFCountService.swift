import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Creating and removing VFs through `sriov_numvfs`.
struct VFCountService: Sendable {
    let core: ServiceCore

    struct Outcome: Sendable {
        var detail: PFSnapshot
        var change: VFCountChange
        var changed: Bool
    }

    func setVFCount(pf address: PCIAddress, count: Int, autoprobe: Bool?, caller: Caller) async throws(SRIOVError)
        -> Outcome
    {
        guard core.inventory.snapshot.pf(address) != nil else {
            try await core.audit(caller.failure("pf.vfs.set", target: address.description, .pfNotFound(address)))
            throw .pfNotFound(address)
        }
        return try await core.change(VFCountSet(pf: address, count: count, autoprobe: autoprobe, caller: caller))
    }
}

/// A PF's VF count (and `sriov_drivers_autoprobe`) set: the holders checked and the intent recorded in one
/// transaction, then `sriov_numvfs` written (through 0 when VFs exist), read back, and the outcome recorded.
/// Reconciliation recreating VFs after a reboot is the same change, with a longer bound.
struct VFCountSet: PFChange {
    struct Plan: Sendable {
        var before: PFSnapshot
        var autoprobeChange: Bool?
        var details: [String: JSONValue]

        var current: Int { before.pf.numVFs }
    }

    struct Output: Sendable {
        var after: PFSnapshot?
    }

    let pf: PCIAddress
    let count: Int
    let autoprobe: Bool?
    let caller: Caller
    /// The bound of each `sriov_numvfs` write; nil for the API's.
    var timeout: Duration?

    var kind: IntentKind { .vfCount }
    var target: String { pf.description }
    var vf: PCIAddress? { nil }
    var action: String { "pf.vfs.set" }

    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan {
        guard let before = core.inventory.rescan(pf: pf) else { throw .pfNotFound(pf) }
        let details: [String: JSONValue] = [
            "requested": .int(count), "before": .int(before.pf.numVFs),
            "drivers_autoprobe": autoprobe.map(JSONValue.bool) ?? .null,
        ]
        if count > before.pf.totalVFs { throw .countOutOfRange(requested: count, totalVFs: before.pf.totalVFs) }
        let autoprobeChange = autoprobe.flatMap { $0 == before.pf.driversAutoprobe ? nil : $0 }
        return Plan(before: before, autoprobeChange: autoprobeChange, details: details)
    }

    func payload(_ plan: Plan) -> JSONValue? {
        guard plan.current != count || plan.autoprobeChange != nil else { return nil }
        return .object([
            "from": .int(plan.current), "to": .int(count),
            "drivers_autoprobe": .object([
                "from": plan.before.pf.driversAutoprobe.map(JSONValue.bool) ?? .null,
                "to": plan.autoprobeChange.map(JSONValue.bool) ?? .null,
            ]),
        ])
    }

    /// VFs cannot be removed while one is held.
    func admit(_ tx: Transaction, _ plan: Plan) throws -> SRIOVError? {
        // A PF managed only in part shares its VFs with another owner: its VF count is not sriovd's to change.
        if let range = try tx.maintenance()[pf].managed {
            return .pfPartlyManaged(pf, managed: VFRangeText.text(range))
        }
        guard plan.current > 0, count != plan.current else { return nil }
        let held = try tx.holdingAllocations(pf: pf)
        return held.isEmpty ? nil : .vfsHeld(pf: pf, vfs: held.map(\.vf).sorted())
    }

    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Output {
        let (count, current) = (self.count, plan.current)
        do {
            if let autoprobe = plan.autoprobeChange {
                try await session.sysfs(attribute: "sriov_drivers_autoprobe", value: autoprobe ? "1" : "0") {
                    try $0.setDriversAutoprobe(pf, autoprobe)
                }
            }
            if current > 0, count != current {
                try await session.sysfs(attribute: "sriov_numvfs", value: "0", timeout: timeout) {
                    try $0.setNumVFs(pf, 0)
                }
            }
            if count > 0, count != current {
                try await session.sysfs(attribute: "sriov_numvfs", value: String(count), timeout: timeout) {
                    try $0.setNumVFs(pf, count)
                }
            }
        } catch {
            let reread = session.core.inventory.rescan(pf: pf)?.pf.numVFs
            let domain = error.domainError(pf: pf, requested: count, totalVFs: plan.before.pf.totalVFs, reread: reread)
            throw HardwareFailure(error: domain, leftChanged: reread != current)
        }
        return Output(after: session.core.inventory.rescan(pf: pf))
    }

    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Output, HardwareFailure>?) throws
        -> VFCountService.Outcome
    {
        let after = (try? result?.get())?.after ?? plan.before
        var details = plan.details
        details["after"] = .int(after.pf.numVFs)
        if case .failure(let failure)? = result {
            try tx.appendAudit(caller.failure(action, target: target, failure.error, details: details))
            return VFCountService.Outcome(detail: after, change: change(plan, enabled: after.pf.numVFs), changed: true)
        }
        try tx.setDesiredVFs(pf: pf, count)
        // Removed VFs take their captured settings with them: a VF the kernel creates anew starts clean.
        if count != plan.current {
            for vf in plan.before.vfs + after.vfs { try tx.clearOriginalState(vf: vf.address) }
        }
        details["changed"] = .bool(result != nil)
        try tx.appendAudit(caller.event(action, target: target, outcome: .success, details: details))
        if result != nil { try tx.recordInventory(HostSnapshot(pfs: [after]), seenAt: Timestamp.now()) }
        return VFCountService.Outcome(
            detail: after, change: change(plan, enabled: after.pf.numVFs), changed: result != nil)
    }

    private func change(_ plan: Plan, enabled: Int) -> VFCountChange {
        VFCountChange(requested: count, previous: plan.current, enabled: enabled)
    }

    /// Back to the VF count before (through 0), and the autoprobe setting before.
    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool {
        let (previous, autoprobe) = (plan.current, plan.before.pf.driversAutoprobe)
        do {
            if plan.autoprobeChange != nil, let autoprobe {
                try await session.sysfs(attribute: "sriov_drivers_autoprobe", value: autoprobe ? "1" : "0") {
                    try $0.setDriversAutoprobe(pf, autoprobe)
                }
            }
            try await session.sysfs(attribute: "sriov_numvfs", value: "0", timeout: timeout) { try $0.setNumVFs(pf, 0) }
            if previous > 0 {
                try await session.sysfs(attribute: "sriov_numvfs", value: String(previous), timeout: timeout) {
                    try $0.setNumVFs(pf, previous)
                }
            }
            return session.core.inventory.rescan(pf: pf)?.pf.numVFs == previous
        } catch {
            return false
        }
    }

    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Output, HardwareFailure>?) {
        guard result != nil else { return }
        let now = core.inventory.rescan(pf: pf)?.pf.numVFs
        if now != plan.current { core.inventory.settle(pf: pf) }
    }
}
