import SRIOVCore
import SRIOVStore

/// Emptying a PF for maintenance: cordon it, then move every allocation that can move to another PF. One that
/// cannot stays, named with the reason; nothing is released.
struct DrainService: Sendable {
    let core: ServiceCore

    /// What became of one allocation.
    struct Fate: Sendable {
        var id: String
        var fromVF: PCIAddress
        /// Where it went; nil when it stayed.
        var toVF: PCIAddress?
        var toPF: PCIAddress?
        var reason: String?
    }

    struct Report: Sendable {
        var pf: PCIAddress
        var fates: [Fate]
        var durationMS: Double
    }

    func drain(pf: PCIAddress, caller: Caller) async throws(SRIOVError) -> Report {
        let clock = ContinuousClock()
        let started = clock.now
        _ = try await MaintenanceService(core: core).setCordon(pf: pf, true, caller: caller)
        let holding: [Allocation]
        do { holding = try core.store.read { try $0.holdingAllocations(pf: pf) } } catch { throw .storage("\(error)") }
        var fates: [Fate] = []
        let service = AllocationService(core: core)
        for allocation in holding.sorted(by: { $0.vfIndex < $1.vfIndex }) {
            fates.append(await move(allocation, with: service, caller: caller))
        }
        let report = Report(pf: pf, fates: fates, durationMS: (clock.now - started).milliseconds)
        try await core.audit(
            caller.event(
                "pf.drain", target: pf.description, outcome: fates.allSatisfy { $0.toVF != nil } ? .success : .failure,
                details: [
                    "moved": .int(fates.filter { $0.toVF != nil }.count),
                    "stayed": .int(fates.filter { $0.toVF == nil }.count), "duration_ms": .number(report.durationMS),
                ]))
        return report
    }

    private func move(_ allocation: Allocation, with service: AllocationService, caller: Caller) async -> Fate {
        var fate = Fate(id: allocation.id, fromVF: allocation.vf)
        guard allocation.state == .active else {
            fate.reason = "it is \(allocation.state.rawValue), not active: only an active allocation moves"
            return fate
        }
        do {
            let moved = try await service.move(id: allocation.id, to: .selector(VFSelector()), caller: caller)
            fate.toVF = moved.allocation.vf
            fate.toPF = moved.allocation.pf
            if !moved.oldRestored {
                fate.reason = "moved; the old VF could not be restored and is kept out of the pool"
            }
        } catch {
            fate.reason = "\(error.problemSlug): \(error.detailAndExtensions.0)"
        }
        return fate
    }
}

extension DrainService.Report {
    var json: JSONValue {
        .object([
            "pf": .string(pf.description), "cordoned": .bool(true),
            "moved": .int(fates.filter { $0.toVF != nil }.count), "stayed": .int(fates.filter { $0.toVF == nil }.count),
            "duration_ms": .number(durationMS),
            "allocations": .array(
                fates.map { fate in
                    .object([
                        "id": .string(fate.id), "outcome": .string(fate.toVF == nil ? "stayed" : "moved"),
                        "from_vf": .string(fate.fromVF.description),
                        "to_vf": fate.toVF.map { .string($0.description) } ?? .null,
                        "to_pf": fate.toPF.map { .string($0.description) } ?? .null,
                        "reason": fate.reason.map(JSONValue.string) ?? .null,
                    ])
                }),
        ])
    }
}
