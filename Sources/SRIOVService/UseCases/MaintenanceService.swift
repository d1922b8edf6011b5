import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// A PF's maintenance state: its cordon and the VF range sriovd manages. Record-only changes of the PF, made
/// through `ServiceCore.change` under its lock (no intent: nothing is written to the hardware), each audited.
struct MaintenanceService: Sendable {
    let core: ServiceCore

    /// Cordons (or, with false, uncordons) the PF; returns its maintenance state.
    func setCordon(pf: PCIAddress, _ cordoned: Bool, caller: Caller) async throws(SRIOVError) -> PFMaintenance {
        try await core.change(MaintenanceChange(pf: pf, edit: .cordon(cordoned), caller: caller)).get()
    }

    /// Sets the VF indexes sriovd manages on the PF (nil: all of them).
    func setManaged(pf: PCIAddress, range: ClosedRange<Int>?, caller: Caller) async throws(SRIOVError)
        -> PFMaintenance
    {
        try await core.change(MaintenanceChange(pf: pf, edit: .managed(range), caller: caller)).get()
    }

    /// Every PF's state, as stored.
    func map() throws(SRIOVError) -> MaintenanceMap {
        do { return try core.store.read { try $0.maintenance() } } catch { throw .storage("\(error)") }
    }
}

/// One edit of a PF's maintenance record, with its audit event (`pf.cordon`, `pf.uncordon`, `pf.managed.set`).
struct MaintenanceChange: PFChange {
    enum Edit: Sendable {
        case cordon(Bool)
        case managed(ClosedRange<Int>?)
    }

    let pf: PCIAddress
    let edit: Edit
    let caller: Caller

    /// Never opened: `payload` is nil, as nothing is written to the hardware.
    var kind: IntentKind { .vfCount }
    var target: String { pf.description }
    var vf: PCIAddress? { nil }
    var action: String {
        switch edit {
        case .cordon(true): "pf.cordon"
        case .cordon(false): "pf.uncordon"
        case .managed: "pf.managed.set"
        }
    }

    /// The PF's VFs, to check a managed range against.
    func plan(_ core: ServiceCore) async throws(SRIOVError) -> [VirtualFunction] {
        guard let entry = core.inventory.snapshot.pf(pf) else { throw .pfNotFound(pf) }
        if case .managed(let range?) = edit, range.upperBound >= max(entry.pf.totalVFs, 1) {
            throw .invalidField(
                "vfs", "the range \(VFRangeText.text(range)) passes the PF's \(entry.pf.totalVFs) possible VFs")
        }
        return entry.vfs
    }

    func payload(_ plan: [VirtualFunction]) -> JSONValue? { nil }

    func write(_ session: HardwareSession, _ plan: [VirtualFunction]) async throws(HardwareFailure) {}

    /// The record and its audit event; a managed range that would leave a held VF outside is refused.
    func complete(_ tx: Transaction, _ plan: [VirtualFunction], _ result: Result<Void, HardwareFailure>?) throws
        -> Result<PFMaintenance, SRIOVError>
    {
        let before = try tx.maintenance()[pf]
        switch edit {
        case .cordon(let cordoned):
            try tx.setCordon(pf: pf, cordoned: cordoned)
        case .managed(let range):
            if let range {
                let outside = try tx.holdingAllocations(pf: pf).filter { !range.contains($0.vfIndex) }.map(\.vf)
                if !outside.isEmpty {
                    let error = SRIOVError.vfsHeld(pf: pf, vfs: outside.sorted())
                    try tx.appendAudit(caller.failure(action, target: target, error))
                    return .failure(error)
                }
            }
            try tx.setManagedRange(pf: pf, range: range)
        }
        let after = try tx.maintenance()[pf]
        try tx.appendAudit(
            caller.event(
                action, target: target, outcome: .success,
                details: ["before": Self.json(before), "after": Self.json(after)]))
        return .success(after)
    }

    func undo(_ session: HardwareSession, _ plan: [VirtualFunction]) async -> Bool { true }

    func settle(_ core: ServiceCore, _ plan: [VirtualFunction], _ result: Result<Void, HardwareFailure>?) {}

    static func json(_ state: PFMaintenance) -> JSONValue {
        .object([
            "cordoned": .bool(state.cordoned), "cordoned_at": state.cordonedAt.map(JSONValue.string) ?? .null,
            "managed_vfs": state.managed.map { .string(VFRangeText.text($0)) } ?? .null,
        ])
    }
}
