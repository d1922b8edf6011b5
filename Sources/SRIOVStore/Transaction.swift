import SRIOVCore

/// One `Store.write` body's view of the open write transaction. It sees its own writes and those of the
/// bodies before it in the same batch. Valid only inside the body: calls afterwards throw `.closed`.
public final class Transaction: StoreView {
    /// The intent with this id, open or not.
    public func intent(id: Int64) throws(StoreError) -> Intent? {
        try connection().intent(id: id)
    }

    // MARK: Writing

    /// Inserts a new allocation. Throws `.vfAlreadyHeld` when another allocation holds the VF (the unique
    /// partial index is the guard), and an SQLite constraint error when `generation` does not exceed every
    /// earlier allocation of the VF — take it from `nextGeneration(vf:)`.
    public func insertAllocation(_ allocation: Allocation) throws(StoreError) {
        try connection().insertAllocation(allocation)
    }

    /// The next fencing token for the VF: 1 the first time, then one more each call, never reused.
    public func nextGeneration(vf: PCIAddress) throws(StoreError) -> Int {
        try connection().nextGeneration(vf: vf)
    }

    /// Moves an allocation to `state`. `released` needs `releasedAt`. Throws `.allocationNotFound`, or
    /// `.vfAlreadyHeld` when moving back to a holding state while another allocation holds the VF.
    public func updateAllocation(id: String, state: AllocationState, releasedAt: String?) throws(StoreError) {
        try connection().updateAllocation(id: id, state: state, releasedAt: releasedAt)
    }

    /// Records (or, with nil, clears) where the allocation's netdev went. Throws `.allocationNotFound`.
    public func updateAllocationAttachment(id: String, attachment: Attachment?) throws(StoreError) {
        try connection().updateAllocationAttachment(id: id, attachment: attachment)
    }

    /// Replaces the allocation's applied VF settings. Throws `.allocationNotFound`.
    public func updateAllocationConfig(id: String, config: VFConfig?) throws(StoreError) {
        try connection().updateAllocationConfig(id: id, config: config)
    }

    /// Appends to the audit history and returns the event's id (`event.id` is ignored).
    @discardableResult
    public func appendAudit(_ event: AuditEvent) throws(StoreError) -> Int64 {
        try connection().appendAudit(event)
    }

    /// Records (or with nil forgets) the VF count an operator asked for. Throws `.unknownPF` for a PF that
    /// `recordInventory` never saw.
    public func setDesiredVFs(pf: PCIAddress, _ count: Int?) throws(StoreError) {
        try connection().setDesiredVFs(pf: pf, count)
    }

    /// Upserts every PF and VF of the snapshot: first_seen set once, last_seen to `seenAt`. Rows of PFs and
    /// VFs that vanished stay as they are.
    public func recordInventory(_ snapshot: HostSnapshot, seenAt: String) throws(StoreError) {
        try connection().recordInventory(snapshot, seenAt: seenAt)
    }

    /// Stores (or replaces) the response for an Idempotency-Key.
    public func putIdempotencyRecord(_ record: IdempotencyRecord) throws(StoreError) {
        try connection().putIdempotencyRecord(record)
    }

    /// Deletes idempotency records created before `cutoff` (RFC 3339); returns how many.
    @discardableResult
    public func purgeIdempotencyRecords(createdBefore cutoff: String) throws(StoreError) -> Int {
        try connection().purgeIdempotencyRecords(createdBefore: Timestamp.normalize(cutoff) ?? cutoff)
    }

    /// Records what is about to be done to the hardware; returns the intent's id. Once the write returns, the
    /// intent is durable, so hardware may be touched.
    public func beginIntent(kind: IntentKind, target: String, payload: String) throws(StoreError) -> Int64 {
        try connection().beginIntent(kind: kind, target: target, payload: payload, at: Timestamp.now())
    }

    /// Marks an open intent done (or rolled back). Throws when it is not open.
    public func completeIntent(_ id: Int64, outcome: Intent.Outcome = .completed) throws(StoreError) {
        try connection().completeIntent(id, outcome: outcome, at: Timestamp.now())
    }

    /// Keeps the VF's settings as found before sriovd changes them. The first capture wins: while one is
    /// stored, later calls change nothing and return false, so a crash can never overwrite the true original.
    @discardableResult
    public func saveOriginalState(vf: PCIAddress, json: String) throws(StoreError) -> Bool {
        try connection().saveOriginalState(vf: vf, json: json, at: Timestamp.now())
    }

    /// Forgets the captured settings, once they are restored.
    public func clearOriginalState(vf: PCIAddress) throws(StoreError) {
        try connection().clearOriginalState(vf: vf)
    }
}
