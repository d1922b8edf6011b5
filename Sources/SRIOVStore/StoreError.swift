import SRIOVCore

/// What the store reports. Errors from SQLite keep the extended result code, SQLite's message and the SQL,
/// never the bound values (they may hold labels or request bodies).
public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// SQLite failed: extended result code, its message and the statement, when there was one.
    case sqlite(code: Int32, message: String, sql: String?)
    /// The database holds migrations this binary does not know: a newer sriovd wrote it.
    case newerDatabase(unknown: [String])
    /// An applied migration's text differs from the one this binary carries.
    case migrationChanged(String)
    /// The file is not a sriovd database; why.
    case notASriovdDatabase(String)
    /// `PRAGMA quick_check` found damage, or SQLite reported it while the database was read at open: what
    /// they said (at most the first 100 findings).
    case damagedDatabase([String])
    /// The database file is missing or empty (`file`), yet files SQLite keeps beside a database are there
    /// (`found`: each name with its size), so this is not a new database.
    case sidecarsWithoutDatabase(path: String, file: String, found: [String])
    /// Another allocation already holds the VF.
    case vfAlreadyHeld(PCIAddress)
    /// No allocation has this id.
    case allocationNotFound(String)
    /// No PF with this address has been recorded.
    case unknownPF(PCIAddress)
    /// A listing cursor this store did not hand out.
    case invalidCursor(String)
    /// A row that cannot be read back into its value type: the table, the column and why.
    case corruptData(String)
    /// The store is closed, or a transaction or read view was used outside its body.
    case closed

    public var description: String {
        switch self {
        case .sqlite(let code, let message, let sql):
            let statement = sql.map { " in `\(Self.abbreviated($0))`" } ?? ""
            return "SQLite error \(code): \(message)\(statement)"
        case .newerDatabase(let unknown):
            return "the database holds migrations this sriovd does not know (\(unknown.joined(separator: ", "))): "
                + "a newer sriovd wrote it. Refusing to start; run that version or restore a backup."
        case .migrationChanged(let id):
            return "migration \(id) was applied with different text than this sriovd carries: "
                + "migrations must never change once shipped. Refusing to start."
        case .notASriovdDatabase(let why):
            return "not a sriovd database: \(why). Refusing to start and leaving the file as it is."
        case .damagedDatabase(let findings):
            let shown = findings.prefix(5).joined(separator: "; ")
            let more = findings.count > 5 ? " (and \(findings.count - 5) more)" : ""
            return "the database is damaged: PRAGMA quick_check reports \(shown)\(more). Refusing to start and "
                + "leaving the file as it is; restore a backup, or move the file and the files beside it away and "
                + "start with --init for a new, empty database."
        case .sidecarsWithoutDatabase(let path, let file, let found):
            return "the database \(path) is \(file), but \(found.joined(separator: ", ")) "
                + "\(found.count == 1 ? "is" : "are") beside it: a database was there (deleted or truncated?), so "
                + "this is not a new one. Refusing to start and touching nothing; --init (SRIOVD_INIT=1) creates a "
                + "new, empty database and moves those files aside."
        case .vfAlreadyHeld(let vf):
            return "VF \(vf) is already held by another allocation"
        case .allocationNotFound(let id):
            return "no allocation has id \(id)"
        case .unknownPF(let pf):
            return "PF \(pf) has never been recorded"
        case .invalidCursor(let cursor):
            return "invalid cursor '\(cursor)'"
        case .corruptData(let why):
            return "the database holds data that cannot be read back: \(why)"
        case .closed:
            return "the store is closed"
        }
    }

    private static func abbreviated(_ sql: String) -> String {
        let flat = sql.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.joined(separator: " ")
        return flat.count > 200 ? String(flat.prefix(200)) + "…" : flat
    }
}
