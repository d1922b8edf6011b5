import SRIOVCore

// The SQL of audit retention: which old events may go, and their removal through the retention window
// (migrations/0008_audit_retention.sql), the one path the audit's triggers let delete rows.

extension Database {
    /// The newest id such that it and every event before it are older than `cutoff`; nil when the oldest event is
    /// not. Retention removes a prefix of the log by id, so an event stamped out of order (a clock stepped back)
    /// waits until every event before it is old too.
    func auditRetentionBoundary(before cutoff: String) throws(StoreError) -> Int64? {
        try queryFirst(
            """
            SELECT coalesce((SELECT min(id) FROM audit_events WHERE at >= ?1) - 1, max(id)), min(id)
            FROM audit_events
            """, [cutoff]
        ) { row -> Int64? in
            guard !row.isNull(0), !row.isNull(1) else { return nil }
            let (through, oldest) = (row.int64(0), row.int64(1))
            return through >= oldest ? through : nil
        } ?? nil
    }

    /// Deletes the events with ids up to `through` (all older than `cutoff`) by opening the retention window, and
    /// closes it again; returns how many. Must run inside a transaction, with the run's audit event.
    func removeAuditEvents(through: Int64, cutoff: String) throws(StoreError) -> Int {
        try execute("INSERT INTO audit_retention_window (id, through_id, cutoff) VALUES (1, ?, ?)", through, cutoff)
        try execute("DELETE FROM audit_events WHERE id <= ?", through)
        let removed = changes
        try execute("DELETE FROM audit_retention_window")
        return removed
    }
}

extension StoreView {
    /// The id up to which every audit event is older than `cutoff` (RFC 3339): what retention may remove. Nil when
    /// the oldest event is not older.
    public func auditRetentionBoundary(before cutoff: String) throws(StoreError) -> Int64? {
        try connection().auditRetentionBoundary(before: Timestamp.normalize(cutoff) ?? cutoff)
    }
}

extension Transaction {
    /// Deletes the audit events with ids up to `through`, every one older than `cutoff`, through the retention
    /// window; returns how many. The window refuses events at or after the cutoff. Append the run's own audit event
    /// in the same body, so the removal is on record in the transaction that makes it.
    public func removeAuditEvents(through: Int64, cutoff: String) throws(StoreError) -> Int {
        try connection().removeAuditEvents(through: through, cutoff: Timestamp.normalize(cutoff) ?? cutoff)
    }
}
