import ArgumentParser
import FoundationEssentials
import Logging
import SRIOVService
import SRIOVStore

/// `--audit-retention` and `--audit-archive`: how long the audit history stays in the database.
struct AuditOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Keep audit events this many days in the database: older ones are appended to the archive \
            (--audit-archive), fsynced, and only then deleted; at start and every hour. Off by default (the audit \
            grows without bound).
            """, valueName: "days"))
    var auditRetention: Int?

    @Option(
        help: ArgumentHelp(
            """
            With --audit-retention: the folder of archive files (NDJSON, one file a month, audit-YYYY-MM.ndjson). \
            Default: audit-archive beside the database.
            """, valueName: "dir"))
    var auditArchive: String?

    /// How often retention runs after the run at start.
    static let interval: Duration = .seconds(3600)

    func validate() throws {
        if let auditRetention, !(1...36_500).contains(auditRetention) {
            throw ValidationError("--audit-retention must be 1 to 36500 days.")
        }
        if auditArchive != nil && auditRetention == nil {
            throw ValidationError("--audit-archive needs --audit-retention DAYS (nothing is archived without it).")
        }
    }

    /// Starts the periodic retention runs when asked for; nil otherwise.
    func start(store: Store, databasePath: String, logger: Logger) -> Task<Void, Never>? {
        guard let auditRetention else { return nil }
        let folder =
            auditArchive ?? (URL(fileURLWithPath: databasePath).deletingLastPathComponent().path + "/audit-archive")
        logger.info(
            "audit retention on", metadata: ["audit.retention_days": "\(auditRetention)", "audit.archive": "\(folder)"])
        let retention = AuditRetention(store: store, logger: logger, days: auditRetention, archiveDirectory: folder)
        return retention.start(every: Self.interval)
    }
}
