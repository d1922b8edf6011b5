import SRIOVCore

/// The queries both a `ReadView` and a `Transaction` answer.
public protocol StoreReading {
    /// The allocation with this id, in any state.
    func allocation(id: String) throws -> Allocation?
    /// One page of allocations matching `filter`, ordered by creation.
    func allocations(_ filter: AllocationFilter) throws -> AllocationPage
    /// The PF's allocations that hold their VF (every state but `released`).
    func holdingAllocations(pf: PCIAddress) throws -> [Allocation]
    /// The allocation holding the VF, if one does.
    func holdingAllocation(vf: PCIAddress) throws -> Allocation?
    /// Every VF some allocation holds.
    func heldVFs() throws -> Set<PCIAddress>
    /// Audit events matching `filter`, ascending by id.
    func auditEvents(_ filter: AuditFilter) throws -> [AuditEvent]
    /// Every PF ever recorded, by address.
    func storedPFs() throws -> [StoredPF]
    /// The VF count an operator asked for; nil when never set or the PF is unknown.
    func desiredVFs(pf: PCIAddress) throws -> Int?
    func idempotencyRecord(key: String) throws -> IdempotencyRecord?
    /// Intents not yet completed or rolled back, oldest first.
    func openIntents() throws -> [Intent]
    /// The VF's settings captured before sriovd first changed them, as JSON text.
    func originalState(vf: PCIAddress) throws -> String?
}

/// The queries of `StoreReading` over one connection, for as long as the `Store` body that received it runs:
/// the shared base of `ReadView` and `Transaction`. Calls after the body has returned throw `.closed`.
public class StoreView: StoreReading {
    private var database: Database?

    init(_ database: Database) {
        self.database = database
    }

    func invalidate() {
        database = nil
    }

    func connection() throws(StoreError) -> Database {
        guard let database else { throw .closed }
        return database
    }

    public func allocation(id: String) throws(StoreError) -> Allocation? {
        try connection().allocation(id: id)
    }

    public func allocations(_ filter: AllocationFilter) throws(StoreError) -> AllocationPage {
        try connection().allocations(filter)
    }

    public func holdingAllocations(pf: PCIAddress) throws(StoreError) -> [Allocation] {
        try connection().holdingAllocations(pf: pf)
    }

    public func holdingAllocation(vf: PCIAddress) throws(StoreError) -> Allocation? {
        try connection().holdingAllocation(vf: vf)
    }

    public func heldVFs() throws(StoreError) -> Set<PCIAddress> {
        try connection().heldVFs()
    }

    public func auditEvents(_ filter: AuditFilter) throws(StoreError) -> [AuditEvent] {
        try connection().auditEvents(filter)
    }

    public func storedPFs() throws(StoreError) -> [StoredPF] {
        try connection().storedPFs()
    }

    public func desiredVFs(pf: PCIAddress) throws(StoreError) -> Int? {
        try connection().desiredVFs(pf: pf)
    }

    public func idempotencyRecord(key: String) throws(StoreError) -> IdempotencyRecord? {
        try connection().idempotencyRecord(key: key)
    }

    /// The ids of the oldest and newest audit events; nil while there are none.
    public func auditIDRange() throws(StoreError) -> (first: Int64, last: Int64)? {
        try connection().auditIDRange()
    }

    public func openIntents() throws(StoreError) -> [Intent] {
        try connection().openIntents()
    }

    /// True while an intent of `kind` on `target` is open: a change announced and not yet recorded as done.
    public func hasOpenIntent(kind: IntentKind, target: String) throws(StoreError) -> Bool {
        try connection().hasOpenIntent(kind: kind, target: target)
    }

    public func originalState(vf: PCIAddress) throws(StoreError) -> String? {
        try connection().originalState(vf: vf)
    }
}

/// A consistent snapshot for reading, valid only inside the `Store.read` body that received it.
public final class ReadView: StoreView {}
