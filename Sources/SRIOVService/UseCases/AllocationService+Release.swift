import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import SRIOVStore

extension AllocationService {
    /// Releases an allocation and restores its VF completely.
    ///
    /// Fenced by the id: only the allocation that holds the VF can reset it, so a late release of an older
    /// allocation of the same VF finds nothing to do (404) and touches nothing. While the VF is restored the
    /// allocation keeps holding it, so no one else can be handed a VF that is still being reset. When the
    /// restore fails the allocation becomes `dirty`: the VF stays out of the pool, and a later DELETE retries.
    func release(id: String, caller: Caller) async throws(SRIOVError) {
        let action = "allocation.release"
        let found: Allocation?
        do { found = try core.store.read { try $0.allocation(id: id) } } catch { throw .storage("\(error)") }
        guard let allocation = found, allocation.state.holdsVF else {
            try await core.audit(caller.failure(action, target: id, .allocationNotFound(id)))
            throw .allocationNotFound(id)
        }
        // One release or change of an allocation at a time (the other answers 409), so a read of the VF that
        // finds nothing to restore stays true until the release is recorded.
        guard core.releasing.claim(id) else {
            throw .pfBusy(allocation.pf, "allocation \(id) is being released or changed")
        }
        defer { core.releasing.finish(id) }

        let restore = try await restoreVF(of: allocation, caller: caller)
        let result: Result<Void, SRIOVError> = try await core.perform { tx in
            // Re-read inside the writer: a concurrent release of the same id may have won.
            guard let current = try tx.allocation(id: id), current.state.holdsVF else {
                let error = SRIOVError.allocationNotFound(id)
                try tx.appendAudit(caller.failure(action, target: id, error))
                return .failure(error)
            }
            if let intent = restore.intent {
                try tx.completeIntent(intent, outcome: restore.failure == nil ? .completed : .rolledBack)
            }
            var after = current
            var details: [String: JSONValue] = [
                "before": Self.json(current), "vf": .string(current.vf.description),
                "restore": .string(restore.summary),
            ]
            if let failure = restore.failure {
                after.state = .dirty
                try tx.updateAllocation(id: id, state: .dirty, releasedAt: nil)
                details["after"] = Self.json(after)
                try tx.appendAudit(caller.failure(action, target: id, failure, details: details))
                return .failure(failure)
            }
            after.state = .released
            after.releasedAt = Timestamp.now()
            try tx.updateAllocation(id: id, state: .released, releasedAt: after.releasedAt)
            details["after"] = Self.json(after)
            try tx.appendAudit(caller.event(action, target: id, outcome: .success, details: details))
            return .success(())
        }
        try result.get()
    }

    /// What restoring a VF on release did.
    struct RestoreOutcome: Sendable {
        var intent: Int64?
        var failure: SRIOVError?
        var summary: String
    }

    /// Puts the VF back to its captured original settings (or factory defaults when none was captured), all
    /// fields unconditionally, when anything differs or the allocation applied a config. A VF that is gone
    /// (its PF shrank or vanished) has nothing to restore.
    func restoreVF(of allocation: Allocation, caller: Caller) async throws(SRIOVError) -> RestoreOutcome {
        guard let (pf, vf) = core.inventory.snapshot.vf(allocation.vf), vf.index == allocation.vfIndex else {
            return RestoreOutcome(intent: nil, failure: nil, summary: "vf absent: nothing to restore")
        }
        let stored: String?
        do { stored = try core.store.read { try $0.originalState(vf: vf.address) } } catch {
            throw .storage("\(error)")
        }
        // A read only: it does not queue behind the PF's writes.
        let current: VFState
        do { current = try core.vfs.state(of: vf, pf: pf) } catch {
            // The VF may have just gone (its PF's VFs removed behind sriovd's back, the uevent's rescan still
            // pending): look again before calling the read a failure.
            let stillThere = core.inventory.rescan(pf: pf.address)?.vfs.contains {
                $0.address == vf.address && $0.index == vf.index
            }
            if stillThere != true {
                return RestoreOutcome(intent: nil, failure: nil, summary: "vf absent: nothing to restore")
            }
            return RestoreOutcome(
                intent: nil, failure: error.domainError(vf: vf.address), summary: "could not read the VF")
        }
        let original = stored.flatMap(VFState.decode) ?? VFState.factoryDefault(driver: current.driver)
        if allocation.config == nil && current == original {
            return RestoreOutcome(intent: nil, failure: nil, summary: "unchanged: nothing to restore")
        }
        await core.pfLocks.acquire(pf.address)
        defer { Task { await core.pfLocks.release(pf.address) } }
        let payload = JSONValue.object([
            "vf": .string(vf.address.description), "original": (try? JSONValue.parse(original.json)) ?? .null,
        ])
        let intent = try await core.perform { tx in
            try tx.beginIntent(kind: "allocation.release", target: allocation.id, payload: payload.text)
        }
        do {
            try await core.restore(original, vf: vf, pf: pf, caller: caller)
        } catch {
            core.inventory.rescan(pf: pf.address)
            return RestoreOutcome(intent: intent, failure: error, summary: "restore incomplete")
        }
        core.inventory.rescan(pf: pf.address)
        core.dirtyVFs.remove(vf.address)
        return RestoreOutcome(intent: intent, failure: nil, summary: "restored every setting and the driver")
    }

    /// Changes the settings of a held VF. Either the whole change applies or the VF is left as it was.
    func update(id: String, config: VFConfig, caller: Caller) async throws(SRIOVError) -> Allocation {
        let action = "allocation.update"
        let found: Allocation?
        do { found = try core.store.read { try $0.allocation(id: id) } } catch { throw .storage("\(error)") }
        guard let allocation = found, allocation.state == .active else {
            let error = SRIOVError.allocationNotFound(id)
            try await core.audit(caller.failure(action, target: id, error))
            throw error
        }
        guard core.releasing.claim(id) else {
            throw .pfBusy(allocation.pf, "allocation \(id) is being released or changed")
        }
        defer { core.releasing.finish(id) }
        await core.pfLocks.acquire(allocation.pf)
        defer { Task { await core.pfLocks.release(allocation.pf) } }
        guard let (pf, vf) = core.inventory.snapshot.vf(allocation.vf) else {
            let error = SRIOVError.vfNotFound(allocation.vf)
            try await core.audit(caller.failure(action, target: id, error))
            throw error
        }
        var updated = allocation
        updated.config = (allocation.config ?? VFConfig()).merging(config)
        let merged = updated
        do {
            try await core.apply(config, to: vf, pf: pf, caller: caller)
        } catch {
            try await core.audit(
                caller.failure(action, target: id, error, details: ["vf": .string(vf.address.description)]))
            throw error
        }
        core.inventory.rescan(pf: pf.address)
        _ = try await core.perform { tx in
            try tx.updateAllocationConfig(id: id, config: merged.config)
            try tx.appendAudit(
                caller.event(
                    action, target: id, outcome: .success,
                    details: ["before": Self.json(allocation), "after": Self.json(merged)]))
        }
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
