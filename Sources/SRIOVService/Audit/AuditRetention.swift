import FoundationEssentials
import Glibc
import Logging
import SRIOVCore
import SRIOVStore

/// `--audit-retention DAYS`: audit events older than that are appended to the archive (fsynced), and only then
/// deleted, through the retention window the audit's triggers allow for this path alone. Each deleting transaction
/// carries the run's own audit event (`audit.retention`, actor `retention`); a run that cannot archive is on record
/// as a failure and deletes nothing.
public struct AuditRetention: Sendable {
    let store: Store
    let logger: Logger
    /// Events older than this many days go.
    public let days: Int
    let archive: AuditArchive
    /// The most events one deleting transaction removes, so that the store's writer is never held long.
    var chunk = 5000
    /// Called after the archive is durable and before anything is deleted (tests cut a run off here).
    var afterArchiving: (@Sendable () throws -> Void)?

    static let caller = Caller(actor: "retention", requestID: nil)

    public init(store: Store, logger: Logger, days: Int, archiveDirectory: String) {
        self.store = store
        self.logger = logger
        self.days = days
        self.archive = AuditArchive(directory: archiveDirectory)
    }

    /// What one run did.
    public struct Outcome: Sendable, Equatable {
        public var cutoff: String
        /// Events deleted (each was archived first).
        public var removed: Int = 0
        /// Lines appended, per archive file name (events a file held already are not counted).
        public var archived: [String: Int] = [:]
    }

    /// One run: archive, then delete in chunks, each chunk on record in its own transaction.
    @discardableResult
    public func run(now: Int = Int(time(nil))) async throws -> Outcome {
        var outcome = Outcome(cutoff: Timestamp.format(seconds: now - days * 86_400, milliseconds: 0))
        let cutoff = outcome.cutoff
        guard
            let range = try store.read({ view in
                try view.auditRetentionBoundary(before: cutoff).map {
                    (first: try view.auditIDRange()?.first ?? 1, last: $0)
                }
            })
        else { return outcome }
        do {
            outcome.archived = try archiveEvents(range)
            try afterArchiving?()
        } catch {
            await recordFailure(error, cutoff: cutoff)
            throw error
        }
        var first = range.first
        while first <= range.last {
            let through = min(range.last, first + Int64(chunk) - 1)
            let details = eventDetails(outcome, first: first, through: through)
            outcome.removed += try await store.write { tx in
                let removed = try tx.removeAuditEvents(through: through, cutoff: cutoff)
                try tx.appendAudit(
                    Self.caller.event(
                        "audit.retention", target: "audit", outcome: .success,
                        details: details.merging(["removed": .int(removed)]) { $1 }))
                return removed
            }
            first = through + 1
        }
        logger.info(
            "audit events archived and removed",
            metadata: ["audit.removed": "\(outcome.removed)", "audit.cutoff": "\(cutoff)"])
        return outcome
    }

    /// Appends the events from `range.first` through `range.last` to the archive and makes it durable.
    private func archiveEvents(_ range: (first: Int64, last: Int64)) throws -> [String: Int] {
        let run = try archive.begin(oldest: range.first)
        var after = range.first - 1
        while after < range.last {
            let page = try store.read { try $0.auditEvents(AuditFilter(after: after, limit: AuditFilter.maximumLimit)) }
            guard let last = page.last else { break }
            for event in page where event.id <= range.last {
                try run.append(event) { id in
                    try store.read { try $0.auditEvents(AuditFilter(after: id - 1, limit: 1)) }.first { $0.id == id }
                }
            }
            after = last.id
        }
        try run.finish()
        return run.appended
    }

    private func eventDetails(_ outcome: Outcome, first: Int64, through: Int64) -> [String: JSONValue] {
        [
            "cutoff": .string(outcome.cutoff), "days": .int(days), "first_id": .int(Int(first)),
            "through_id": .int(Int(through)), "archive": .string(archive.directory),
            "files": .array(outcome.archived.keys.sorted().map(JSONValue.string)),
        ]
    }

    private func recordFailure(_ error: any Error, cutoff: String) async {
        logger.error(
            "audit retention: archiving failed or was cut off; nothing was deleted",
            metadata: ["error": "\(error)", "audit.archive": "\(archive.directory)"])
        let event = Self.caller.event(
            "audit.retention", target: "audit", outcome: .failure, error: "archive_failed: \(error)",
            details: ["cutoff": .string(cutoff), "days": .int(days), "archive": .string(archive.directory)])
        _ = try? await store.write { tx in try tx.appendAudit(event) }
    }

    /// Runs now, then every `interval`, until the task is cancelled. Failures are logged (and audited) and retried
    /// at the next interval.
    public func start(every interval: Duration) -> Task<Void, Never> {
        Task.detached {
            while !Task.isCancelled {
                do {
                    try await run()
                } catch StoreError.closed {
                    break
                } catch {
                    logger.warning("audit retention run failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
