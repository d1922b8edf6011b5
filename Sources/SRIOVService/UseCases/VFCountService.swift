import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// Creating and removing VFs through `sriov_numvfs`.
///
/// The sequence for one PF runs under that PF's lock: check holders and record the intent in one
/// transaction, write the hardware (each write bounded and audited), read back, then record the outcome.
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
        let action = "pf.vfs.set"
        let target = address.description
        guard core.inventory.snapshot.pf(address) != nil else {
            try await core.audit(caller.failure(action, target: target, .pfNotFound(address)))
            throw .pfNotFound(address)
        }
        await core.pfLocks.acquire(address)
        defer { Task { await core.pfLocks.release(address) } }

        guard let before = core.inventory.rescan(pf: address) else {
            try await core.audit(caller.failure(action, target: target, .pfNotFound(address)))
            throw .pfNotFound(address)
        }
        let current = before.pf.numVFs
        let autoprobeChange = autoprobe.flatMap { $0 == before.pf.driversAutoprobe ? nil : $0 }
        let details: [String: JSONValue] = [
            "requested": .int(count), "before": .int(current),
            "drivers_autoprobe": autoprobe.map(JSONValue.bool) ?? .null,
        ]
        if count > before.pf.totalVFs {
            let error = SRIOVError.countOutOfRange(requested: count, totalVFs: before.pf.totalVFs)
            try await core.audit(caller.failure(action, target: target, error, details: details))
            throw error
        }
        if count == current && autoprobeChange == nil {
            try await core.perform { tx in
                try tx.setDesiredVFs(pf: address, count)
                try tx.appendAudit(
                    caller.event(
                        action, target: target, outcome: .success,
                        details: details.merging(["changed": .bool(false)]) { $1 }))
            }
            return Outcome(
                detail: before, change: VFCountChange(requested: count, previous: current, enabled: current),
                changed: false)
        }

        // Claim the PF and record the intent, unless a VF that would be removed is held.
        let resizing = core.resizing
        let claim: Result<Int64, SRIOVError> = try await core.perform { tx in
            if current > 0, count != current {
                let held = try tx.holdingAllocations(pf: address)
                if !held.isEmpty {
                    let error = SRIOVError.vfsHeld(pf: address, vfs: held.map(\.vf).sorted())
                    try tx.appendAudit(caller.failure(action, target: target, error, details: details))
                    return .failure(error)
                }
            }
            resizing.insert(address)
            let payload = JSONValue.object(["from": .int(current), "to": .int(count)]).text
            return .success(try tx.beginIntent(kind: action, target: target, payload: payload))
        }
        let intent = try claim.get()
        defer { resizing.remove(address) }

        var failure: SRIOVError?
        do {
            if let autoprobeChange {
                try await core.hardwareWrite(
                    pf: address, attribute: "sriov_drivers_autoprobe", value: autoprobeChange ? "1" : "0",
                    caller: caller
                ) {
                    try $0.setDriversAutoprobe(address, autoprobeChange)
                }
            }
            if current > 0, count != current {
                try await core.hardwareWrite(pf: address, attribute: "sriov_numvfs", value: "0", caller: caller) {
                    try $0.setNumVFs(address, 0)
                }
            }
            if count > 0, count != current {
                try await core.hardwareWrite(
                    pf: address, attribute: "sriov_numvfs", value: String(count), caller: caller
                ) {
                    try $0.setNumVFs(address, count)
                }
            }
        } catch {
            let reread = core.inventory.rescan(pf: address)?.pf.numVFs
            failure = error.domainError(pf: address, requested: count, totalVFs: before.pf.totalVFs, reread: reread)
        }

        let after = core.inventory.rescan(pf: address)
        let enabled = after?.pf.numVFs ?? 0
        if enabled != current { core.inventory.settle(pf: address) }
        var afterDetails = details
        afterDetails["after"] = .int(enabled)
        let outcomeDetails = afterDetails
        let snapshotForStore = core.inventory.snapshot.host
        let recordedFailure = failure
        try await core.perform { tx in
            try tx.completeIntent(intent)
            if let recordedFailure {
                try tx.appendAudit(caller.failure(action, target: target, recordedFailure, details: outcomeDetails))
            } else {
                try tx.setDesiredVFs(pf: address, count)
                // Removed VFs take their captured settings with them: a VF the kernel creates anew starts clean.
                if current > 0 && count != current {
                    for vf in before.vfs { try tx.clearOriginalState(vf: vf.address) }
                }
                try tx.appendAudit(caller.event(action, target: target, outcome: .success, details: outcomeDetails))
            }
            try tx.recordInventory(snapshotForStore, seenAt: Timestamp.now())
        }
        if let failure { throw failure }
        guard let after else { throw .pfNotFound(address) }
        return Outcome(
            detail: after, change: VFCountChange(requested: count, previous: current, enabled: enabled), changed: true)
    }
}
